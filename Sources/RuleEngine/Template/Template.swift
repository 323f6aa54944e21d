/// An action argument with `${…}` placeholders, split into segments once at compile time.
/// `${name}` reads a column of the output row, `${a.b}` a nested field (a string holding JSON is
/// decoded on the way, so `${payload.x}` works when the row carries the raw payload), `${.}` is
/// the whole row as JSON. A missing field renders as `undefined`, as EMQX renders it; maps and
/// arrays render as JSON, strings as they are.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    public enum Segment: Sendable, Equatable {
        case literal(String)
        /// `${.}`
        case wholeRow
        /// `${a.b.c}` as its path.
        case field([String])
    }

    public let segments: [Segment]
    /// The template as written.
    public let text: String

    public var description: String { text }

    /// Where a template is malformed: the offset in Unicode scalars from the start of the text.
    struct ParseError: Error {
        var message: String
        var offset: Int
    }

    init(parsing text: String) throws(ParseError) {
        self.text = text
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var literal = ""
        var i = 0
        while i < scalars.count {
            if scalars[i] == "$" && i + 1 < scalars.count && scalars[i + 1] == "{" {
                guard let close = scalars[(i + 2)...].firstIndex(of: "}") else {
                    throw ParseError(message: "unterminated '${' in template", offset: i)
                }
                var name = ""
                name.unicodeScalars.append(contentsOf: scalars[(i + 2)..<close])
                let trimmed = Template.trim(name)
                if trimmed.isEmpty { throw ParseError(message: "empty '${}' in template", offset: i) }
                if !literal.isEmpty { segments.append(.literal(literal)); literal = "" }
                if trimmed == "." {
                    segments.append(.wholeRow)
                } else {
                    let path = trimmed.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                    if path.contains(where: \.isEmpty) {
                        throw ParseError(message: "bad field path '\(trimmed)' in template", offset: i + 2)
                    }
                    segments.append(.field(path))
                }
                i = close + 1
            } else {
                literal.unicodeScalars.append(scalars[i])
                i += 1
            }
        }
        if !literal.isEmpty { segments.append(.literal(literal)) }
        self.segments = segments
    }

    /// A template that is plain text.
    public init(literal text: String) {
        self.text = text
        self.segments = text.isEmpty ? [] : [.literal(text)]
    }

    /// True when there is no placeholder.
    public var isConstant: Bool {
        segments.allSatisfy { if case .literal = $0 { return true } else { return false } }
    }

    /// The text, rendered for `row`.
    public func render(_ row: Value) -> String {
        if segments.count == 1, case .literal(let s) = segments[0] { return s }
        var out = ""
        for segment in segments {
            switch segment {
            case .literal(let s): out += s
            case .wholeRow: out += JSONWriter.string(row)
            case .field(let path): out += ValueFormatter.text(Template.lookup(path, in: row))
            }
        }
        return out
    }

    /// The rendered text as bytes (payloads).
    public func renderBytes(_ row: Value) -> [UInt8] {
        var out: [UInt8] = []
        for segment in segments {
            switch segment {
            case .literal(let s): out.append(contentsOf: s.utf8)
            case .wholeRow: JSONWriter.write(row, into: &out)
            case .field(let path):
                switch Template.lookup(path, in: row) {
                case .binary(let b): out.append(contentsOf: b)
                case let v: out.append(contentsOf: ValueFormatter.text(v).utf8)
                }
            }
        }
        return out
    }

    /// For a template that is exactly one placeholder, the typed value (`qos = '${qos}'`, SQL
    /// parameters); otherwise the rendered string. A missing field gives `.undefined`.
    public func value(_ row: Value) -> Value {
        if segments.count == 1 {
            switch segments[0] {
            case .field(let path): return Template.lookup(path, in: row)
            case .wholeRow: return row
            case .literal(let s): return .string(s)
            }
        }
        return .string(render(row))
    }

    /// Each placeholder's value in order (for prepared statements: `${a}` becomes `$1`).
    public func placeholderValues(_ row: Value) -> [Value] {
        segments.compactMap { segment -> Value? in
            switch segment {
            case .literal: return nil
            case .wholeRow: return .string(JSONWriter.string(row))
            case .field(let path): return Template.lookup(path, in: row)
            }
        }
    }

    static func lookup(_ path: [String], in row: Value) -> Value {
        var v = row
        for key in path {
            v = v.member(key)
            if v.isUndefined { return v }
        }
        return v
    }

    private static func trim(_ s: String) -> String {
        var scalars = Substring(s).unicodeScalars[...]
        while let f = scalars.first, f == " " { scalars = scalars.dropFirst() }
        while let l = scalars.last, l == " " { scalars = scalars.dropLast() }
        var out = ""
        out.unicodeScalars.append(contentsOf: scalars)
        return out
    }
}
