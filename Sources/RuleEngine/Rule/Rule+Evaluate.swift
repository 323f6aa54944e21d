/// Running a compiled rule for one input.
extension Rule {
    /// The output rows for the context's input: none when WHERE rejects it, one for SELECT,
    /// one per element passing INCASE for FOREACH. Each row is a `.map`.
    /// The caller checks `accepts(_:)` (or routes by `topicFilters`) first.
    /// - Throws: `RuleError` of kind `.evaluation` with the position of the failing expression.
    public func evaluate(_ ctx: EvaluationContext) throws(RuleError) -> [Value] {
        do throws(EvalError) {
            if let whereClause, !Operators.passes(try whereClause.evaluate(ctx)) { return [] }
            switch projection {
            case .select(let row):
                return [try row.build(ctx)]
            case .foreach(let list, let slot, let itemName, let row, let incase):
                let items: [Value]
                switch try list.evaluate(ctx) {
                case .array(let a): items = a
                case .undefined, .null: return []
                case let other: throw EvalError("FOREACH needs an array, got \(other.typeName)")
                }
                while ctx.locals.count <= slot { ctx.locals.append(.undefined) }
                defer { ctx.locals[slot] = .undefined }
                var rows: [Value] = []
                for item in items {
                    ctx.locals[slot] = item
                    if let incase, !Operators.passes(try incase.evaluate(ctx)) { continue }
                    if let row {
                        rows.append(try row.build(ctx))
                    } else {
                        rows.append(.map(ValueMap(keys: [itemName], values: [item])))
                    }
                }
                return rows
            }
        } catch {
            let at = error.location ?? statement.nameLocation
            throw source.error(.evaluation, error.message, at: at)
        }
    }
}
