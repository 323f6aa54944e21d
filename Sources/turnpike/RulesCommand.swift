import ArgumentParser
import Foundation
import Broker
import RuleEngine

/// `turnpike rules check|test`: validate rule files, or run one rule on a sample message
/// without a broker.
struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check rule files, or try a rule on a sample message.",
        subcommands: [Check.self, Test.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse and check every *.sql in a directory (or one file).",
            discussion: """
                Each file must parse, rule names must be unique, and actions must be republish, log \
                or a bridge configured in --config (webhook.NAME, kafka.NAME or postgres.NAME). \
                Prints "ok: N rules (names)" and exits 0, or prints every error as \
                file:line:col: message, the line and a caret, and exits 1.
                """)

        @Argument(help: "A rule directory or one rule file.")
        var path: String = "rules"

        @Option(name: .long, help: "Configuration file naming the bridges rules may use. Default: ./turnpike.toml when present.")
        var config: String?

        func run() throws {
            let rules: [Rule]
            var bridges: Set<String> = []
            if let file = config ?? (FileManager.default.fileExists(atPath: "turnpike.toml") ? "turnpike.toml" : nil) {
                var cfg = BrokerConfiguration()
                do {
                    _ = try ConfigFile.load(path: file, into: &cfg)
                } catch {
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                    throw ExitCode(1)
                }
                bridges = Set(ConfigFile.bridges.map(\.id))
            }
            do {
                rules = try RuleFiles.load(path: path, bridges: bridges, mustExist: true)
            } catch {
                FileHandle.standardError.write(Data("\(error.description)\n".utf8))
                throw ExitCode(1)
            }
            let names = rules.map(\.name).joined(separator: ", ")
            print("ok: \(rules.count) \(rules.count == 1 ? "rule" : "rules") (\(names))")
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one rule on a sample PUBLISH and print what it would do; nothing is sent.",
            discussion: """
                Prints each output row as JSON and, for each row, every action with its arguments \
                rendered for that row (bridge actions too, marked "(not sent)"). Exits 1 when the \
                rule does not parse, its FROM does not match --topic, or evaluation fails.
                """)

        @Argument(help: "The rule file.")
        var file: String

        @Option(name: .long, help: "Topic of the sample message.")
        var topic: String

        @Option(name: .long, help: "Payload of the sample message (normally JSON; used as given).")
        var payload: String

        @Option(name: .long, help: "Client id of the publisher.")
        var clientid: String = "turnpike-rules-test"

        @Option(name: .long, help: "User name of the publisher (default: none, which reads as null).")
        var username: String?

        @Option(name: .long, help: "QoS of the sample message.")
        var qos: Int = 0

        func validate() throws {
            if !(0...2).contains(qos) { throw ValidationError("--qos must be 0, 1 or 2") }
            if topic.isEmpty || topic.contains("+") || topic.contains("#") {
                throw ValidationError("--topic must be a topic name without wildcards")
            }
        }

        func run() throws {
            let text: String
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                guard let s = String(data: data, encoding: .utf8) else { fail("\(file): not UTF-8 text") }
                text = s
            } catch {
                fail("\(file): cannot read: \((error as NSError).localizedDescription)")
            }
            let rule: Rule
            do throws(RuleError) {
                rule = try RuleParser.parse(text, file: file)
            } catch {
                fail(error.description)
            }
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            let input = RuleInput.publish(
                id: UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                clientid: clientid, username: username, topic: topic, qos: qos,
                payload: Array(payload.utf8), peerhost: "127.0.0.1", timestamp: now)
            guard rule.accepts(input) else {
                let from = rule.filters.map { "\"\($0)\"" }.joined(separator: ", ")
                fail("rule '\(rule.name)' does not match topic '\(topic)' (FROM \(from))")
            }
            let rows: [Value]
            do throws(RuleError) {
                rows = try rule.evaluate(EvaluationContext(input))
            } catch {
                fail(error.description)
            }
            if rows.isEmpty {
                print("\(rule.name): no rows (WHERE rejected the message); nothing would be sent")
                return
            }
            print("\(rule.name): \(rows.count) \(rows.count == 1 ? "row" : "rows") (nothing is sent)")
            for (i, row) in rows.enumerated() {
                print("row \(i + 1): \(Self.rowJSON.render(row))")
                for action in rule.actions {
                    print("  " + Self.title(action.target))
                    let names = Self.order(action)
                    let width = names.map(\.count).max() ?? 0
                    for name in names {
                        guard let template = action[argument: name] else { continue }
                        let value: String
                        if name == "payload" {
                            let bytes = template.renderBytes(row)
                            value = String(validating: bytes, as: UTF8.self)
                                ?? "<\(bytes.count) bytes, not UTF-8>"
                        } else {
                            value = template.render(row)
                        }
                        print("    \(name.padding(toLength: width, withPad: " ", startingAt: 0)) = \(value)")
                    }
                }
            }
        }

        /// The `${.}` template (a row as JSON, exactly as the broker writes republish payloads);
        /// RuleEngine's JSON writer is internal, so it is taken from log()'s default message.
        static let rowJSON: Template = {
            let rule = try! RuleParser.parse(#"CREATE RULE row_json AS SELECT * FROM "t" INTO log()"#, file: "<builtin>")
            return rule.actions[0][argument: "message"]!
        }()

        static func title(_ target: ActionTarget) -> String {
            switch target {
            case .republish: return "republish"
            case .log: return "log"
            case .bridge(let kind, let name): return "\(kind).\(name) (not sent)"
            }
        }

        /// Republish arguments in a fixed order; others as written.
        static func order(_ action: Action) -> [String] {
            guard action.target == .republish else { return action.argumentNames }
            let fixed = ["topic", "qos", "retain", "payload", "user_properties"]
            return fixed.filter { action[argument: $0] != nil }
                + action.argumentNames.filter { !fixed.contains($0) }
        }

        private func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("\(message)\n".utf8))
            Foundation.exit(1)
        }
    }
}
