/// Everything that can go wrong with a rule: a file that does not lex or parse, a name the
/// compiler cannot resolve, or one message's evaluation (wrong argument type, division by zero).
/// All carry the position in the rule file, so one printer serves the CLI, the logs and the tests.
public struct RuleError: Error, Sendable, CustomStringConvertible {
    /// Which stage found the problem.
    public enum Kind: Sendable, Equatable {
        /// The text is not a rule: bad characters, unterminated strings or comments, grammar.
        case syntax
        /// The rule parses but names something that does not exist (function, field, event,
        /// action) or uses it wrongly (arity, constant argument).
        case semantic
        /// Evaluating the rule for one message failed; counted by the broker, never a crash.
        case evaluation
    }

    public var kind: Kind
    public var message: String
    public var file: String
    public var line: Int
    public var column: Int
    /// The offending source line, without its newline.
    public var sourceLine: String

    public init(kind: Kind, message: String, file: String, line: Int, column: Int, sourceLine: String) {
        self.kind = kind
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.sourceLine = sourceLine
    }

    /// `file:line:col: message`, then the line, then a caret under the column (tabs kept so the
    /// caret lines up in a terminal).
    public var description: String {
        var caret = ""
        var col = 1
        for scalar in sourceLine.unicodeScalars {
            if col >= column { break }
            caret.unicodeScalars.append(scalar == "\t" ? "\t" : " ")
            col += 1
        }
        while col < column { caret.append(" "); col += 1 }
        caret.append("^")
        return "\(file):\(line):\(column): \(message)\n\(sourceLine)\n\(caret)"
    }
}

/// The text of a rule file split into lines, to quote a line in an error.
struct SourceText: Sendable {
    let file: String
    let lines: [String]

    init(file: String, text: String) {
        self.file = file
        var lines: [String] = []
        var current = ""
        var lastWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n" {
                if !lastWasCR { lines.append(current) }
                current = ""
                lastWasCR = false
            } else if scalar == "\r" {
                lines.append(current)
                current = ""
                lastWasCR = true
            } else {
                current.unicodeScalars.append(scalar)
                lastWasCR = false
            }
        }
        lines.append(current)
        self.lines = lines
    }

    func line(_ n: Int) -> String {
        n >= 1 && n <= lines.count ? lines[n - 1] : ""
    }

    func error(_ kind: RuleError.Kind, _ message: String, at location: SourceLocation) -> RuleError {
        RuleError(kind: kind, message: message, file: file, line: location.line,
                  column: location.column, sourceLine: line(location.line))
    }
}
