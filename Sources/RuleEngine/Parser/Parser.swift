/// Recursive-descent parser for one rule file; expressions go through the Pratt loop in
/// `Parser+Expression.swift`.
///
///     rule      := CREATE RULE name AS query INTO action ("," action)* [";"]
///     query     := SELECT items FROM sources [WHERE expr]
///                | FOREACH expr [AS name] [DO items] [INCASE expr] FROM sources [WHERE expr]
///     items     := item ("," item)*          item := "*" | expr [AS name]
///     sources   := "filter" ("," "filter")*
///     action    := name ["." name] "(" [name "=" literal ("," name "=" literal)*] ")"
struct Parser {
    let tokens: [Token]
    let scalars: [Unicode.Scalar]
    let source: SourceText
    var position = 0
    /// Nesting depth of the expression being parsed; user files are not trusted.
    var depth = 0
    static let maximumDepth = 100

    init(tokens: [Token], scalars: [Unicode.Scalar], source: SourceText) {
        self.tokens = tokens
        self.scalars = scalars
        self.source = source
    }

    var current: Token { tokens[position] }
    var previous: Token { tokens[max(position - 1, 0)] }

    func peekKind(_ ahead: Int = 1) -> Token.Kind {
        let i = min(position + ahead, tokens.count - 1)
        return tokens[i].kind
    }

    mutating func advance() {
        if position < tokens.count - 1 { position += 1 }
    }

    func error(_ message: String, at token: Token) -> RuleError {
        source.error(.syntax, message, at: token.location)
    }

    func unexpected(_ expected: String) -> RuleError {
        error("expected \(expected), found \(current.display)", at: current)
    }

    mutating func accept(_ keyword: Keyword) -> Bool {
        if current.kind == .keyword(keyword) { advance(); return true }
        return false
    }

    mutating func accept(_ kind: Token.Kind) -> Bool {
        if current.kind == kind { advance(); return true }
        return false
    }

    mutating func expect(_ keyword: Keyword) throws(RuleError) {
        guard accept(keyword) else { throw unexpected("'\(keyword.spelling)'") }
    }

    mutating func expect(_ kind: Token.Kind, _ what: String) throws(RuleError) {
        guard accept(kind) else { throw unexpected(what) }
    }

    mutating func identifier(_ what: String) throws(RuleError) -> (String, SourceLocation) {
        guard case .identifier(let name) = current.kind else { throw unexpected(what) }
        let location = current.location
        advance()
        return (name, location)
    }

    /// The source text between two token offsets (for unaliased column names).
    func text(from start: Int, to end: Int) -> String {
        var s = ""
        s.unicodeScalars.append(contentsOf: scalars[start..<end])
        return s
    }

    mutating func parseRule() throws(RuleError) -> RuleStatement {
        try expect(.create)
        try expect(.rule)
        let (name, nameLocation) = try identifier("a rule name")
        try expect(.as)

        let projection: RuleStatement.Projection
        if accept(.select) {
            projection = .select(try parseItems(allowStar: true))
        } else if accept(.foreach) {
            let list = try parseExpression()
            var itemName: String?
            if accept(.as) { itemName = try identifier("a name for the FOREACH item").0 }
            var columns: [SelectItem]?
            if accept(.do) { columns = try parseItems(allowStar: false) }
            var incase: Expression?
            if accept(.incase) { incase = try parseExpression() }
            projection = .foreach(list, itemName: itemName, columns: columns, incase: incase)
        } else {
            throw unexpected("'SELECT' or 'FOREACH'")
        }

        try expect(.from)
        var sources: [(filter: String, location: SourceLocation)] = []
        repeat {
            guard case .doubleQuoted(let filter) = current.kind else {
                throw unexpected("a topic filter in double quotes")
            }
            sources.append((filter, current.location))
            advance()
        } while accept(.comma)

        var whereClause: Expression?
        if accept(.where) { whereClause = try parseExpression() }

        try expect(.into)
        var actions: [ActionCall] = []
        repeat { actions.append(try parseAction()) } while accept(.comma)
        _ = accept(.semicolon)
        guard current.kind == .endOfFile else {
            throw unexpected(actions.isEmpty ? "an action" : "',' or the end of the rule")
        }
        return RuleStatement(name: name, nameLocation: nameLocation, projection: projection,
                             sources: sources, whereClause: whereClause, actions: actions)
    }

    mutating func parseItems(allowStar: Bool) throws(RuleError) -> [SelectItem] {
        var items: [SelectItem] = []
        repeat {
            let start = current
            if current.kind == .star {
                guard allowStar else { throw error("'*' is only allowed in SELECT", at: current) }
                advance()
                items.append(SelectItem(kind: .all, location: start.location))
                continue
            }
            let expression = try parseExpression()
            let text = self.text(from: start.offset, to: previous.endOffset)
            var alias: String?
            if accept(.as) { alias = try identifier("an alias name").0 }
            items.append(SelectItem(kind: .expression(expression, alias: alias, text: text), location: start.location))
        } while accept(.comma)
        return items
    }

    mutating func parseAction() throws(RuleError) -> ActionCall {
        let (name, location) = try identifier("an action (republish, log, kafka.NAME, postgres.NAME, webhook.NAME)")
        var bridge: String?
        if accept(.dot) { bridge = try identifier("a bridge name").0 }
        try expect(.leftParen, "'('")
        var arguments: [ActionArgument] = []
        if !accept(.rightParen) {
            repeat {
                let (argName, argLocation) = try identifier("an argument name")
                try expect(.equal, "'='")
                let valueLocation = current.location
                let value: Literal
                switch current.kind {
                case .singleQuoted(let s), .doubleQuoted(let s): value = .string(s)
                case .integer(let i): value = .integer(i)
                case .float(let d): value = .float(d)
                case .keyword(.true): value = .bool(true)
                case .keyword(.false): value = .bool(false)
                case .keyword(.null): value = .null
                default: throw unexpected("a string, number or boolean")
                }
                advance()
                arguments.append(ActionArgument(name: argName, value: value, location: argLocation, valueLocation: valueLocation))
            } while accept(.comma)
            try expect(.rightParen, "',' or ')'")
        }
        return ActionCall(name: name, bridge: bridge, arguments: arguments, location: location)
    }
}
