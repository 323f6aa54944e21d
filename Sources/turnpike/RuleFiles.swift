import Foundation
import RuleEngine

/// Reads rule files for `turnpike serve` (at start and on SIGHUP) and `turnpike rules check`.
enum RuleFiles {
    /// Everything wrong with a rule directory: every `RuleError` description (file:line:col,
    /// the line, a caret), one after the other, or a line about the path itself.
    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    /// Every `*.sql` in `path` (sorted by name; names starting with `.` are skipped) or the one
    /// file `path`. Each file must parse, have a rule name no other file uses, and use only known
    /// actions: `republish`, `log`, and bridges named in `bridges` (`"kind.name"`, e.g.
    /// `"kafka.fleet"`). All files are read before failing, so the error lists every problem.
    /// - Parameter mustExist: false for serve's default directory, where a missing `path`
    ///   means no rules; true for a path the user named.
    static func load(path: String, bridges: Set<String> = [], mustExist: Bool) throws(LoadError) -> [Rule] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            if mustExist { throw LoadError(description: "\(path): no such file or directory") }
            return []
        }
        var files: [String]
        if isDirectory.boolValue {
            let names: [String]
            do {
                names = try fm.contentsOfDirectory(atPath: path)
            } catch {
                throw LoadError(description: "\(path): cannot read directory: \(reason(error))")
            }
            let base = path.hasSuffix("/") ? path : path + "/"
            files = names.filter { $0.hasSuffix(".sql") && !$0.hasPrefix(".") }.sorted().map { base + $0 }
            // A directory named x.sql, or a dangling link, is not a rule file.
            files = files.filter { var dir: ObjCBool = false; return fm.fileExists(atPath: $0, isDirectory: &dir) && !dir.boolValue }
        } else {
            files = [path]
        }

        var rules: [Rule] = []
        var errors: [String] = []
        var seen: [String: String] = [:]  // rule name -> file
        for file in files {
            let text: String
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                guard let s = String(data: data, encoding: .utf8) else {
                    errors.append("\(file): not UTF-8 text")
                    continue
                }
                text = s
            } catch {
                errors.append("\(file): cannot read: \(reason(error))")
                continue
            }
            do throws(RuleError) {
                let rule = try RuleParser.parse(text, file: file)
                if let other = seen[rule.name] {
                    throw semanticError("duplicate rule name '\(rule.name)' (also in \(other))",
                                        file: file, text: text, at: rule.statement.nameLocation)
                }
                seen[rule.name] = file
                try checkActions(rule, text: text, bridges: bridges)
                rules.append(rule)
            } catch {
                errors.append(error.description)
            }
        }
        if !errors.isEmpty { throw LoadError(description: errors.joined(separator: "\n")) }
        return rules
    }

    /// Bridge actions must name a configured bridge.
    static func checkActions(_ rule: Rule, text: String, bridges: Set<String>) throws(RuleError) {
        for action in rule.actions {
            guard case .bridge(let kind, let name) = action.target else { continue }
            if bridges.contains("\(kind).\(name)") { continue }
            let message = bridges.isEmpty
                ? "bridge '\(kind).\(name)' is not configured (no [bridges.\(kind).\(name)] in the configuration)"
                : "bridge '\(kind).\(name)' is not configured (configured: \(bridges.sorted().joined(separator: ", ")))"
            throw semanticError(message, file: rule.file, text: text, at: action.location)
        }
    }

    /// A `.semantic` RuleError quoting line `at.line` of `text`, so it prints like the parser's.
    static func semanticError(_ message: String, file: String, text: String, at: SourceLocation) -> RuleError {
        RuleError(kind: .semantic, message: message, file: file, line: at.line, column: at.column,
                  sourceLine: line(at.line, of: text))
    }

    /// Line `n` (1-based) of `text`, without its terminator; lines end at LF, CR LF or CR, as the
    /// rule lexer counts them.
    static func line(_ n: Int, of text: String) -> String {
        var number = 1
        var current = ""
        var lastWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n" && lastWasCR { lastWasCR = false; continue }
            lastWasCR = scalar == "\r"
            if scalar == "\n" || scalar == "\r" {
                if number == n { return current }
                number += 1
                current = ""
            } else if number == n {
                current.unicodeScalars.append(scalar)
            }
        }
        return number == n ? current : ""
    }

    private static func reason(_ error: any Error) -> String {
        if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return (error as NSError).localizedDescription
    }
}
