import MQTTCodec

// The ACL file. One rule or section header per line; blank lines and lines starting with '#'
// (after leading spaces) are comments. Comments take whole lines only, because '#' is also the
// multi-level wildcard.
//
//     user NAME             rules below apply to the client whose user name is NAME
//     client ID             rules below apply to the client whose client id is ID
//     pattern               rules below apply to every client
//     allow ACCESS FILTER   ACCESS: read (subscribe), write (publish) or readwrite (both)
//     deny ACCESS FILTER    FILTER: the rest of the line, an MQTT topic filter
//
// FILTER may contain %c (client id), %u (user name) and %{claim} (a string claim of the
// client's JWT), substituted once when the client connects.
//
// Decision: the rules are read top to bottom, across sections, and the first rule that applies
// to the client and matches decides; when none does, `acl_default` decides.
// - PUBLISH to topic T: a rule matches when its access includes write and its filter matches T.
// - SUBSCRIBE to filter F (the inner filter for $share/group/F): a deny rule matches when some
//   topic could match both its filter and F; an allow rule matches only when its filter covers
//   every topic F can match. So a subscription is granted only if every message it could receive
//   would be allowed to it, and the broker checks nothing per delivered message.
// - A substituted value that is missing (no user name, no such claim) or contains '/', '+' or
//   '#' makes its allow rule never match and its deny rule match everything, so a client id such
//   as "car-B/x" cannot reach into car-B's topics.
// - As in topic matching, a filter starting with a wildcard does not match topics starting with
//   '$' [MQTT-4.7.2-1]; `$SYS` has its own switch (`sys_readers`).

/// A parsed ACL file: rules in file order, each scoped to a user, a client id or everyone.
public struct ACL: Sendable {
    /// Which operations a rule covers.
    public struct Access: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Subscribe.
        public static let read = Access(rawValue: 1)
        /// Publish (and the will topic at CONNECT).
        public static let write = Access(rawValue: 2)
        public static let readWrite: Access = [.read, .write]
    }

    /// Which clients a rule applies to: the section it is in.
    public enum Scope: Sendable, Equatable {
        case user(String)
        case client(String)
        case everyone
    }

    /// A filter with placeholders, split where substitution happens.
    public enum Piece: Sendable, Equatable {
        case literal(String)
        case clientId
        case username
        case claim(String)
    }

    public struct Rule: Sendable, Equatable {
        public var scope: Scope
        public var isAllow: Bool
        public var access: Access
        public var filter: [Piece]
        /// 1-based line in the file, for logs.
        public var line: Int
    }

    /// A line that cannot be read.
    public struct ParseError: Error, CustomStringConvertible {
        public let path: String
        public let line: Int
        public let message: String
        public var description: String { "\(path):\(line): \(message)" }
    }

    public private(set) var rules: [Rule] = []

    public init(rules: [Rule] = []) { self.rules = rules }

    /// Parses the file's text; `path` only names the file in errors.
    public init(text: String, path: String) throws(ParseError) {
        var scope: Scope?
        var number = 0
        // "\r\n" is one Character, so CRLF files need their own separator.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            let line = Self.trimmed(Substring(raw))
            if line.isEmpty || line.first == "#" { continue }
            let (keyword, rest) = Self.firstWord(line)
            func fail(_ message: String) -> ParseError { ParseError(path: path, line: number, message: message) }
            switch keyword {
            case "user", "client":
                guard !rest.isEmpty else { throw fail("'\(keyword)' needs a name") }
                scope = keyword == "user" ? .user(String(rest)) : .client(String(rest))
            case "pattern":
                guard rest.isEmpty else { throw fail("'pattern' takes nothing after it (comments need their own line)") }
                scope = .everyone
            case "allow", "deny":
                guard let scope else { throw fail("rule before any 'user', 'client' or 'pattern' line") }
                let (accessWord, filterText) = Self.firstWord(rest)
                let access: Access
                switch accessWord {
                case "read": access = .read
                case "write": access = .write
                case "readwrite": access = .readWrite
                default: throw fail("access must be read, write or readwrite, not '\(accessWord)'")
                }
                guard !filterText.isEmpty else { throw fail("'\(keyword) \(accessWord)' needs a topic filter") }
                let pieces: [Piece]
                switch Self.pieces(filterText) {
                case .success(let p): pieces = p
                case .failure(let message): throw fail(message.description)
                }
                // Validate the shape with every placeholder standing for one plain level name.
                let sample = pieces.map { piece -> String in
                    if case .literal(let s) = piece { return s }
                    return "x"
                }.joined()
                guard Topic.isValidFilter(sample), !sample.hasPrefix("$share/") else {
                    throw fail("'\(filterText)' is not a valid topic filter")
                }
                rules.append(Rule(scope: scope, isAllow: keyword == "allow", access: access, filter: pieces, line: number))
            default:
                throw fail("unknown keyword '\(keyword)' (expected user, client, pattern, allow or deny)")
            }
        }
    }

    private static func isSpace(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" }

    static func trimmed(_ s: Substring) -> Substring {
        var s = s
        while let f = s.first, isSpace(f) { s = s.dropFirst() }
        while let l = s.last, isSpace(l) { s = s.dropLast() }
        return s
    }

    static func firstWord(_ s: Substring) -> (Substring, Substring) {
        guard let end = s.firstIndex(where: isSpace) else { return (s, "") }
        return (s[..<end], trimmed(s[end...]))
    }

    /// Splits "cars/%c/#" into [.literal("cars/"), .clientId, .literal("/#")].
    static func pieces(_ text: Substring) -> Result<[Piece], ParseErrorMessage> {
        var out: [Piece] = []
        var literal = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            guard c == "%" else { literal.append(c); i = text.index(after: i); continue }
            let next = text.index(after: i)
            guard next < text.endIndex else { return .failure(ParseErrorMessage("'%' at the end of '\(text)' (use %c, %u or %{claim})")) }
            let piece: Piece
            switch text[next] {
            case "c": piece = .clientId; i = text.index(after: next)
            case "u": piece = .username; i = text.index(after: next)
            case "{":
                guard let close = text[next...].firstIndex(of: "}") else {
                    return .failure(ParseErrorMessage("unclosed '%{' in '\(text)'"))
                }
                let name = text[text.index(after: next)..<close]
                guard !name.isEmpty else { return .failure(ParseErrorMessage("empty claim name '%{}' in '\(text)'")) }
                piece = .claim(String(name))
                i = text.index(after: close)
            default:
                return .failure(ParseErrorMessage("unknown placeholder '%\(text[next])' in '\(text)' (use %c, %u or %{claim})"))
            }
            if !literal.isEmpty { out.append(.literal(literal)); literal = "" }
            out.append(piece)
        }
        if !literal.isEmpty { out.append(.literal(literal)) }
        return .success(out)
    }

    struct ParseErrorMessage: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}
