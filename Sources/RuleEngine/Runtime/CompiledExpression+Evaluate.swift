/// The tree-walking evaluator for compiled expressions.
extension CompiledExpression {
    func evaluate(_ ctx: EvaluationContext) throws(EvalError) -> Value {
        switch self {
        case .constant(let v):
            return v
        case .field(let f):
            return ctx.value(of: f)
        case .payloadPath(let steps):
            return try CompiledExpression.payloadPath(steps, ctx)
        case .local(let slot):
            return ctx.locals[slot]
        case .path(let base, let steps):
            return try CompiledExpression.apply(steps[...], to: try base.evaluate(ctx), ctx)
        case .not(let e, let at):
            do throws(EvalError) { return .bool(!(try Operators.truth(try e.evaluate(ctx), "NOT"))) } catch { throw error.located(at) }
        case .negate(let e, let at):
            do throws(EvalError) { return try Operators.negate(try e.evaluate(ctx)) } catch { throw error.located(at) }
        case .and(let l, let r, let at):
            do throws(EvalError) {
                guard try Operators.truth(try l.evaluate(ctx), "AND") else { return .bool(false) }
                return .bool(try Operators.truth(try r.evaluate(ctx), "AND"))
            } catch { throw error.located(at) }
        case .or(let l, let r, let at):
            do throws(EvalError) {
                if try Operators.truth(try l.evaluate(ctx), "OR") { return .bool(true) }
                return .bool(try Operators.truth(try r.evaluate(ctx), "OR"))
            } catch { throw error.located(at) }
        case .compare(let op, let l, let r):
            return .bool(Operators.compare(op, try l.evaluate(ctx), try r.evaluate(ctx)))
        case .arithmetic(let op, let l, let r, let at):
            let a = try l.evaluate(ctx)
            let b = try r.evaluate(ctx)
            do throws(EvalError) { return try Operators.arithmetic(op, a, b) } catch { throw error.located(at) }
        case .matchFilter(let e, let filter, _):
            guard let topic = try e.evaluate(ctx).stringValue else { return .bool(false) }
            return .bool(filter.matches(topic))
        case .matchDynamic(let e, let f, let at):
            let topic = try e.evaluate(ctx)
            let filterValue = try f.evaluate(ctx)
            guard let t = topic.stringValue, let fs = filterValue.stringValue else { return .bool(false) }
            guard let filter = TopicFilter(fs) else { throw EvalError("'=~': invalid topic filter '\(fs)'", at: at) }
            return .bool(filter.matches(t))
        case .call(let function, let args, let at):
            do throws(EvalError) {
                switch function.body {
                case .nullary(let f): return try f()
                case .unary(let f): return try f(try args[0].evaluate(ctx))
                case .binary(let f): return try f(try args[0].evaluate(ctx), try args[1].evaluate(ctx))
                case .ternary(let f):
                    return try f(try args[0].evaluate(ctx), try args[1].evaluate(ctx), try args[2].evaluate(ctx))
                case .variadic(let f):
                    var values: [Value] = []
                    values.reserveCapacity(args.count)
                    for a in args { values.append(try a.evaluate(ctx)) }
                    return try f(values)
                }
            } catch { throw error.located(at) }
        case .caseWhen(let subject, let branches, let otherwise):
            if let subject {
                let s = try subject.evaluate(ctx)
                for (candidate, result) in branches where Operators.compare(.equal, s, try candidate.evaluate(ctx)) {
                    return try result.evaluate(ctx)
                }
            } else {
                for (condition, result) in branches where Operators.passes(try condition.evaluate(ctx)) {
                    return try result.evaluate(ctx)
                }
            }
            return try otherwise?.evaluate(ctx) ?? .undefined
        case .array(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try item.evaluate(ctx)) }
            return .array(values)
        }
    }

    /// Walks `payload.…` on the message's JSON tape, materializing only the value at the end.
    private static func payloadPath(_ steps: [PathStep], _ ctx: EvaluationContext) throws(EvalError) -> Value {
        // Dynamic steps evaluate expressions (which may read the payload again), so resolve them first.
        var resolved = steps
        for n in steps.indices {
            guard case .dynamic(let e) = steps[n] else { continue }
            switch try e.evaluate(ctx) {
            case .int(let i): resolved[n] = .index(Int(i))
            case .string(let k): resolved[n] = .key(k, Array(k.utf8))
            default: return .undefined
            }
        }
        return ctx.withPayloadTape { (tape: borrowing JSONTape) -> Value in
            guard tape.isValid else { return .undefined }
            var node = 0
            for n in resolved.indices {
                var next: Int?
                switch resolved[n] {
                case .key(_, let bytes): next = tape.member(of: node, key: bytes)
                case .index(let i): next = tape.element(of: node, index: i)
                case .dynamic: next = nil
                }
                guard let found = next else {
                    // A string holding JSON is decoded and walked as a value (EMQX does the same).
                    if tape.nodes[node].kind == .string {
                        return (try? apply(resolved[n...], to: tape.value(at: node), ctx)) ?? .undefined
                    }
                    return .undefined
                }
                node = found
            }
            return tape.value(at: node)
        }
    }

    static func apply(_ steps: ArraySlice<PathStep>, to value: Value, _ ctx: EvaluationContext) throws(EvalError) -> Value {
        var v = value
        for step in steps {
            switch step {
            case .key(let k, _): v = v.member(k)
            case .index(let i): v = v.element(i)
            case .dynamic(let e):
                switch try e.evaluate(ctx) {
                case .int(let i): v = v.element(Int(i))
                case .string(let k): v = v.member(k)
                default: return .undefined
                }
            }
            if v.isUndefined { return v }
        }
        return v
    }
}

extension EvalError {
    /// The error with `location` filled in if nothing more precise set it.
    func located(_ at: SourceLocation) -> EvalError {
        var e = self
        if e.location == nil { e.location = at }
        return e
    }
}
