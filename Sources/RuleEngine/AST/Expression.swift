/// An expression as written: plain data, printed back as SQL by `description`.
public struct Expression: Sendable, CustomStringConvertible {
    public indirect enum Kind: Sendable {
        case literal(Literal)
        /// A bare name: a field of the input, an alias, or the FOREACH item.
        case identifier(String)
        /// `base.name` (also `base.'quoted name'`).
        case member(Expression, String)
        /// `base[index]`: 1-based, negative counts from the end; a string index is a key.
        case index(Expression, Expression)
        case unary(UnaryOperator, Expression)
        case binary(BinaryOperator, Expression, Expression)
        case call(String, [Expression])
        /// `CASE [subject] WHEN … THEN … [ELSE …] END`.
        case caseWhen(subject: Expression?, branches: [CaseBranch], otherwise: Expression?)
        case array([Expression])
    }

    public var kind: Kind
    public var location: SourceLocation

    public init(_ kind: Kind, at location: SourceLocation) {
        self.kind = kind
        self.location = location
    }

    public var description: String {
        switch kind {
        case .literal(let l): return l.description
        case .identifier(let name): return name
        case .member(let base, let name):
            return isPlainName(name) ? "\(base).\(name)" : "\(base).'\(Literal.escape(name))'"
        case .index(let base, let i): return "\(base)[\(i)]"
        case .unary(.not, let e): return "(NOT \(e))"
        case .unary(.negate, let e): return "(-\(e))"
        case .binary(let op, let l, let r): return "(\(l) \(op.rawValue) \(r))"
        case .call(let name, let args): return "\(name)(\(args.map(\.description).joined(separator: ", ")))"
        case .caseWhen(let subject, let branches, let otherwise):
            var s = "CASE"
            if let subject { s += " \(subject)" }
            for b in branches { s += " WHEN \(b.condition) THEN \(b.result)" }
            if let otherwise { s += " ELSE \(otherwise)" }
            return s + " END"
        case .array(let items): return "[\(items.map(\.description).joined(separator: ", "))]"
        }
    }

    private func isPlainName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, Keyword.match(name) == nil else { return false }
        func letter(_ c: Unicode.Scalar) -> Bool {
            (c.value >= 65 && c.value <= 90) || (c.value >= 97 && c.value <= 122) || c == "_"
        }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ($0.value >= 48 && $0.value <= 57) }
    }
}

/// One `WHEN condition THEN result` of a CASE.
public struct CaseBranch: Sendable {
    public var condition: Expression
    public var result: Expression
}
