/// Expressions: a Pratt loop over the table in `Precedence.swift`.
extension Parser {
    mutating func parseExpression(_ minimum: Precedence = .lowest) throws(RuleError) -> Expression {
        depth += 1
        defer { depth -= 1 }
        if depth > Parser.maximumDepth {
            throw error("expression nested too deeply (more than \(Parser.maximumDepth) levels)", at: current)
        }
        var left = try parsePrefix()
        while let (op, precedence) = Precedence.infix(current.kind), precedence > minimum {
            let location = current.location
            advance()
            let right = try parseExpression(precedence)
            left = Expression(.binary(op, left, right), at: location)
        }
        return left
    }

    private mutating func parsePrefix() throws(RuleError) -> Expression {
        let token = current
        switch token.kind {
        case .keyword(.not):
            advance()
            return Expression(.unary(.not, try parseExpression(.not)), at: token.location)
        case .minus:
            advance()
            let operand = try parseExpression(.prefix)
            // Fold `-3` into a literal so it prints and compiles as a constant.
            if case .literal(.integer(let i)) = operand.kind { return Expression(.literal(.integer(-i)), at: token.location) }
            if case .literal(.float(let d)) = operand.kind { return Expression(.literal(.float(-d)), at: token.location) }
            return Expression(.unary(.negate, operand), at: token.location)
        default:
            return try parsePostfix(try parsePrimary())
        }
    }

    private mutating func parsePostfix(_ base: Expression) throws(RuleError) -> Expression {
        var e = base
        while true {
            if current.kind == .dot {
                let location = current.location
                advance()
                switch current.kind {
                case .identifier(let name):
                    advance(); e = Expression(.member(e, name), at: location)
                case .keyword(let k):
                    // `payload.from`: after a dot every word is a key.
                    var name = ""
                    name.unicodeScalars.append(contentsOf: scalars[current.offset..<current.endOffset])
                    _ = k
                    advance(); e = Expression(.member(e, name), at: location)
                case .singleQuoted(let name), .doubleQuoted(let name):
                    advance(); e = Expression(.member(e, name), at: location)
                default:
                    throw unexpected("a field name after '.'")
                }
            } else if current.kind == .leftBracket {
                let location = current.location
                advance()
                let index = try parseExpression()
                try expect(.rightBracket, "']'")
                e = Expression(.index(e, index), at: location)
            } else {
                return e
            }
        }
    }

    private mutating func parsePrimary() throws(RuleError) -> Expression {
        let token = current
        let at = token.location
        switch token.kind {
        case .integer(let i): advance(); return Expression(.literal(.integer(i)), at: at)
        case .float(let d): advance(); return Expression(.literal(.float(d)), at: at)
        case .singleQuoted(let s), .doubleQuoted(let s): advance(); return Expression(.literal(.string(s)), at: at)
        case .keyword(.true): advance(); return Expression(.literal(.bool(true)), at: at)
        case .keyword(.false): advance(); return Expression(.literal(.bool(false)), at: at)
        case .keyword(.null): advance(); return Expression(.literal(.null), at: at)
        case .leftParen:
            advance()
            let inner = try parseExpression()
            try expect(.rightParen, "')'")
            return inner
        case .leftBracket:
            advance()
            var items: [Expression] = []
            if !accept(.rightBracket) {
                repeat { items.append(try parseExpression()) } while accept(.comma)
                try expect(.rightBracket, "',' or ']'")
            }
            return Expression(.array(items), at: at)
        case .keyword(.case):
            advance()
            return try parseCase(at)
        case .identifier(let name):
            advance()
            if current.kind == .leftParen {
                advance()
                var args: [Expression] = []
                if !accept(.rightParen) {
                    repeat { args.append(try parseExpression()) } while accept(.comma)
                    try expect(.rightParen, "',' or ')'")
                }
                return Expression(.call(name, args), at: at)
            }
            return Expression(.identifier(name), at: at)
        default:
            throw unexpected("an expression")
        }
    }

    private mutating func parseCase(_ at: SourceLocation) throws(RuleError) -> Expression {
        var subject: Expression?
        if current.kind != .keyword(.when) { subject = try parseExpression() }
        var branches: [CaseBranch] = []
        while accept(.when) {
            let condition = try parseExpression()
            try expect(.then)
            let result = try parseExpression()
            branches.append(CaseBranch(condition: condition, result: result))
        }
        if branches.isEmpty { throw unexpected("'WHEN'") }
        var otherwise: Expression?
        if accept(.else) { otherwise = try parseExpression() }
        guard accept(.end) else { throw unexpected("'WHEN', 'ELSE' or 'END'") }
        return Expression(.caseWhen(subject: subject, branches: branches, otherwise: otherwise), at: at)
    }
}
