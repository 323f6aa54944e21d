/// One compiled `INTO` action. Every argument is a `Template` (numbers and booleans become
/// constant templates of their text); defaults are filled in (republish: `payload = '${.}'`,
/// `qos = 0`, `retain = false`; log: `level = 'info'`, `message = '${.}'`).
public struct Action: Sendable {
    public let target: ActionTarget
    public let arguments: [String: Template]
    /// Argument names in the order written (defaults after them).
    public let argumentNames: [String]
    public let location: SourceLocation

    public subscript(argument name: String) -> Template? { arguments[name] }

    /// Known bridge kinds; whether the named bridge exists is checked by the broker.
    public static let bridgeKinds: Set<String> = ["kafka", "postgres", "webhook"]
    static let republishArguments: Set<String> = ["topic", "payload", "qos", "retain", "user_properties"]
    static let logArguments: Set<String> = ["level", "message"]
    /// Arguments each bridge kind takes (EMQX's names).
    static let bridgeArguments: [String: Set<String>] = [
        "webhook": ["method", "path", "headers", "body", "ack"],
        "kafka": ["topic", "key", "value", "headers", "ack"],
        "postgres": ["statement", "ack"],
    ]
    static let httpMethods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    static let logLevels: Set<String> = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]

    /// Checks the written action and fills in defaults.
    static func compile(_ call: ActionCall, source: SourceText) throws(RuleError) -> Action {
        func fail(_ message: String, _ at: SourceLocation) -> RuleError { source.error(.semantic, message, at: at) }
        let target: ActionTarget
        let allowed: Set<String>?
        switch (call.name, call.bridge) {
        case ("republish", nil): target = .republish; allowed = republishArguments
        case ("log", nil): target = .log; allowed = logArguments
        case (let kind, let name?) where bridgeKinds.contains(kind):
            target = .bridge(kind: kind, name: name)
            allowed = bridgeArguments[kind]
            if let ack = call.arguments.first(where: { $0.name == "ack" }) {
                guard case .string(let s) = ack.value, s == "after_sink" || s == "routed" else {
                    throw fail("ack must be 'after_sink' (the publisher's acknowledgement waits for the sink) or 'routed' (the default)", ack.valueLocation)
                }
            }
        case (let kind, nil) where bridgeKinds.contains(kind):
            throw fail("bridge action '\(kind)' needs a bridge name: \(kind).NAME(…)", call.location)
        case (let name, _):
            throw fail("unknown action '\(name)' (expected republish, log, kafka.NAME, postgres.NAME or webhook.NAME)", call.location)
        }
        var arguments: [String: Template] = [:]
        var names: [String] = []
        for argument in call.arguments {
            if let allowed, !allowed.contains(argument.name) {
                throw fail("unknown argument '\(argument.name)' for \(call.name) (expected \(allowed.sorted().joined(separator: ", ")))", argument.location)
            }
            if arguments[argument.name] != nil { throw fail("duplicate argument '\(argument.name)'", argument.location) }
            let template: Template
            switch argument.value {
            case .string(let s):
                do throws(Template.ParseError) {
                    template = try Template(parsing: s)
                } catch {
                    // +1 for the opening quote; escapes before the spot make this approximate.
                    var at = argument.valueLocation
                    at.column += 1 + error.offset
                    throw fail(error.message, at)
                }
            case .integer(let i): template = Template(literal: String(i))
            case .float(let d): template = Template(literal: ValueFormatter.float(d))
            case .bool(let b): template = Template(literal: b ? "true" : "false")
            case .null: template = Template(literal: "")
            }
            arguments[argument.name] = template
            names.append(argument.name)
        }
        func argumentLocation(_ name: String) -> SourceLocation {
            call.arguments.first { $0.name == name }?.valueLocation ?? call.location
        }
        switch target {
        case .republish:
            guard let topic = arguments["topic"] else { throw fail("republish needs a topic argument", call.location) }
            if topic.isConstant && (topic.text.isEmpty || topic.text.contains("+") || topic.text.contains("#")) {
                throw fail("republish topic must be a topic name without wildcards", argumentLocation("topic"))
            }
            if let qos = arguments["qos"], qos.isConstant, !["0", "1", "2"].contains(qos.text) {
                throw fail("qos must be 0, 1 or 2", argumentLocation("qos"))
            }
            if let retain = arguments["retain"], retain.isConstant, !["true", "false"].contains(retain.text) {
                throw fail("retain must be true or false", argumentLocation("retain"))
            }
            for (name, value) in [("payload", "${.}"), ("qos", "0"), ("retain", "false")] where arguments[name] == nil {
                arguments[name] = try! Template(parsing: value)  // constant, known to parse
                names.append(name)
            }
        case .log:
            if let level = arguments["level"], level.isConstant, !logLevels.contains(level.text) {
                throw fail("unknown log level '\(level.text)' (expected \(logLevels.sorted().joined(separator: ", ")))", argumentLocation("level"))
            }
            for (name, value) in [("level", "info"), ("message", "${.}")] where arguments[name] == nil {
                arguments[name] = try! Template(parsing: value)  // constant, known to parse
                names.append(name)
            }
        case .bridge(let kind, _):
            if kind == "webhook", let m = arguments["method"], m.isConstant, !httpMethods.contains(m.text.uppercased()) {
                throw fail("method must be one of \(httpMethods.sorted().joined(separator: ", "))", argumentLocation("method"))
            }
            if kind == "kafka" && arguments["topic"] == nil { throw fail("kafka needs a topic argument", call.location) }
            if kind == "postgres" && arguments["statement"] == nil { throw fail("postgres needs a statement argument", call.location) }
        }
        return Action(target: target, arguments: arguments, argumentNames: names, location: call.location)
    }
}
