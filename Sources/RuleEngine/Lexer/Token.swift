/// One lexical token with where it starts; `offset`/`endOffset` index the file's Unicode scalars,
/// so the parser can quote the exact text of an expression (the key of an unaliased column).
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case identifier(String)
        case keyword(Keyword)
        /// `'…'`; the value with escapes resolved.
        case singleQuoted(String)
        /// `"…"`: topic filters in FROM, and also string literals in expressions.
        case doubleQuoted(String)
        case integer(Int64)
        case float(Double)
        case leftParen, rightParen, leftBracket, rightBracket
        case comma, dot, semicolon, star
        case plus, minus, slash
        case equal, notEqual, less, lessEqual, greater, greaterEqual, match
        case endOfFile
    }

    var kind: Kind
    var location: SourceLocation
    var offset: Int
    var endOffset: Int

    /// How the token reads in an error message ("unexpected ','").
    var display: String {
        switch kind {
        case .identifier(let s): return "identifier '\(s)'"
        case .keyword(let k): return "'\(k.spelling)'"
        case .singleQuoted: return "string"
        case .doubleQuoted: return "quoted string"
        case .integer(let i): return "number \(i)"
        case .float(let f): return "number \(f)"
        case .leftParen: return "'('"
        case .rightParen: return "')'"
        case .leftBracket: return "'['"
        case .rightBracket: return "']'"
        case .comma: return "','"
        case .dot: return "'.'"
        case .semicolon: return "';'"
        case .star: return "'*'"
        case .plus: return "'+'"
        case .minus: return "'-'"
        case .slash: return "'/'"
        case .equal: return "'='"
        case .notEqual: return "'!='"
        case .less: return "'<'"
        case .lessEqual: return "'<='"
        case .greater: return "'>'"
        case .greaterEqual: return "'>='"
        case .match: return "'=~'"
        case .endOfFile: return "end of file"
        }
    }
}
