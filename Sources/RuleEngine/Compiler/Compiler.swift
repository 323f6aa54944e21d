/// Resolves a parsed rule: FROM topics to filters and events, names to fields, aliases and the
/// FOREACH item, functions to their bodies, paths to precomputed keys. Anything it cannot
/// resolve is a `.semantic` error at the name's position.
struct Compiler {
    let source: SourceText
    /// Fields every FROM source can supply.
    private(set) var available: Set<Field> = []
    private(set) var events: Set<RuleEvent> = []
    private(set) var filters: [TopicFilter] = []
    /// Alias name → the compiled column (inlined where used).
    private var aliases: [String: CompiledExpression] = [:]
    private var locals: [String: Int] = [:]
    private var sourceDescription = ""

    init(source: SourceText) {
        self.source = source
    }

    private func fail(_ message: String, _ at: SourceLocation) -> RuleError {
        source.error(.semantic, message, at: at)
    }

    mutating func compile(_ statement: RuleStatement) throws(RuleError) -> Rule {
        for (filter, location) in statement.sources {
            if filter.hasPrefix("$events/") {
                guard let event = RuleEvent(eventTopic: filter) else {
                    let known = RuleEvent.allCases.compactMap(\.topic).joined(separator: ", ")
                    throw fail("unknown event topic '\(filter)' (known: \(known))", location)
                }
                events.insert(event)
            } else {
                guard let f = TopicFilter(filter) else { throw fail("invalid topic filter '\(filter)'", location) }
                filters.append(f)
                events.insert(.messagePublish)
            }
        }
        for event in events { available.formUnion(event.fields) }
        sourceDescription = statement.sources.map { "\"\($0.filter)\"" }.joined(separator: ", ")

        let projection: CompiledProjection
        var whereClause: CompiledExpression?
        switch statement.projection {
        case .select(let items):
            let row = try compileColumns(items)
            if let w = statement.whereClause { whereClause = try compile(w) }
            projection = .select(row)
        case .foreach(let list, let itemName, let columns, let incase):
            // WHERE filters the input before iterating: it sees fields, not the item or DO aliases.
            if let w = statement.whereClause { whereClause = try compile(w) }
            let compiledList = try compile(list)
            let name = itemName ?? "item"
            locals[name] = 0
            let row = try columns.map { (c) throws(RuleError) in try compileColumns(c) }
            let compiledIncase = try incase.map { (e) throws(RuleError) in try compile(e) }
            projection = .foreach(list: compiledList, slot: 0, itemName: name, row: row, incase: compiledIncase)
        }
        var actions: [Action] = []
        for call in statement.actions { actions.append(try Action.compile(call, source: source)) }
        return Rule(name: statement.name, file: source.file, statement: statement, filters: filters,
                    events: events, actions: actions, whereClause: whereClause, projection: projection,
                    source: source)
    }

    private mutating func compileColumns(_ items: [SelectItem]) throws(RuleError) -> RowBuilder {
        var columns: [RowBuilder.Column] = []
        for item in items {
            switch item.kind {
            case .all:
                columns.append(.all)
            case .expression(let e, let alias, let text):
                let compiled = try compile(e)
                let path: [String]
                if let alias {
                    path = [alias]
                    aliases[alias] = compiled
                } else {
                    path = Compiler.keyPath(e) ?? [text]
                }
                columns.append(.value(path, compiled))
            }
        }
        return RowBuilder(columns: columns)
    }

    /// `a.b.c` as ["a", "b", "c"] for an unaliased column; nil for anything else.
    private static func keyPath(_ e: Expression) -> [String]? {
        switch e.kind {
        case .identifier(let name): return [name]
        case .member(let base, let name): return keyPath(base).map { $0 + [name] }
        default: return nil
        }
    }

    func compile(_ e: Expression) throws(RuleError) -> CompiledExpression {
        switch e.kind {
        case .literal(let l):
            return .constant(l.value)
        case .identifier(let name):
            return try resolve(name, e.location)
        case .member, .index:
            return try compilePath(e)
        case .unary(.not, let operand):
            return .not(try compile(operand), e.location)
        case .unary(.negate, let operand):
            return fold(.negate(try compile(operand), e.location))
        case .binary(let op, let l, let r):
            let left = try compile(l)
            let right = try compile(r)
            switch op {
            case .and: return .and(left, right, e.location)
            case .or: return .or(left, right, e.location)
            case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual:
                return fold(.compare(op, left, right))
            case .match:
                if case .constant(let v) = right {
                    guard let text = v.stringValue, let filter = TopicFilter(text) else {
                        throw fail("'=~' needs a valid topic filter on its right", r.location)
                    }
                    return .matchFilter(left, filter, e.location)
                }
                return .matchDynamic(left, right, e.location)
            case .add, .subtract, .multiply, .divide, .intDivide, .modulo:
                return fold(.arithmetic(op, left, right, e.location))
            }
        case .call(let name, let args):
            guard let function = BuiltinRegistry.lookup(name) else {
                throw fail("unknown function '\(name)'", e.location)
            }
            guard args.count >= function.minArity && args.count <= function.maxArity else {
                throw fail("\(function.name) takes \(function.arityDescription), got \(args.count)", e.location)
            }
            var compiled: [CompiledExpression] = []
            for a in args { compiled.append(try compile(a)) }
            do throws(EvalError) {
                if let special = try RegexFunctions.specialize(function, compiled, e.location) { return special }
            } catch {
                let at = error.location ?? e.location
                throw fail(error.message, at)
            }
            let call = CompiledExpression.call(function, compiled, e.location)
            return function.isPure ? fold(call) : call
        case .caseWhen(let subject, let branches, let otherwise):
            var compiledBranches: [(CompiledExpression, CompiledExpression)] = []
            for b in branches { compiledBranches.append((try compile(b.condition), try compile(b.result))) }
            return .caseWhen(subject: try subject.map { (s) throws(RuleError) in try compile(s) },
                             branches: compiledBranches,
                             otherwise: try otherwise.map { (o) throws(RuleError) in try compile(o) })
        case .array(let items):
            var compiled: [CompiledExpression] = []
            for item in items { compiled.append(try compile(item)) }
            return fold(.array(compiled))
        }
    }

    private func resolve(_ name: String, _ at: SourceLocation) throws(RuleError) -> CompiledExpression {
        if let slot = locals[name] { return .local(slot) }
        if let alias = aliases[name] { return alias }
        if let field = Field(rawValue: name) {
            guard available.contains(field) else {
                throw fail("field '\(name)' is not available from \(sourceDescription)", at)
            }
            return .field(field)
        }
        throw fail("unknown field '\(name)'", at)
    }

    /// A chain of `.name` and `[index]` on a root.
    private func compilePath(_ e: Expression) throws(RuleError) -> CompiledExpression {
        var steps: [PathStep] = []
        var root = e
        var reversed: [Expression.Kind] = []
        while true {
            if case .member(let base, _) = root.kind { reversed.append(root.kind); root = base; continue }
            if case .index(let base, _) = root.kind { reversed.append(root.kind); root = base; continue }
            break
        }
        for kind in reversed.reversed() {
            switch kind {
            case .member(_, let name):
                steps.append(.key(name, Array(name.utf8)))
            case .index(_, let index):
                let compiled = try compile(index)
                switch compiled {
                case .constant(.int(let i)): steps.append(.index(Int(i)))
                case .constant(.string(let k)): steps.append(.key(k, Array(k.utf8)))
                default: steps.append(.dynamic(compiled))
                }
            default:
                break
            }
        }
        let base = try compile(root)
        if case .field(.payload) = base { return .payloadPath(steps) }
        return .path(base, steps)
    }

    /// Evaluates an expression over constants now, when that succeeds.
    private func fold(_ e: CompiledExpression) -> CompiledExpression {
        let operands: [CompiledExpression]
        switch e {
        case .negate(let x, _): operands = [x]
        case .compare(_, let l, let r), .arithmetic(_, let l, let r, _): operands = [l, r]
        case .call(_, let args, _): operands = args
        case .array(let items): operands = items
        default: return e
        }
        guard operands.allSatisfy({ $0.constantValue != nil }) else { return e }
        let scratch = EvaluationContext(RuleInput(event: .messagePublish))
        guard let v = try? e.evaluate(scratch) else { return e }
        return .constant(v)
    }
}
