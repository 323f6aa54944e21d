/// Maps and arrays: map_get map_put map_keys map_values map_size, nth first last length contains
/// sublist. Positions are 1-based (EMQX); an index outside the array is an error, as in Erlang.
/// A string holding JSON is accepted where a map or array is expected.
enum CollectionFunctions {
    static func mapGet(_ key: String, _ map: ValueMap) -> Value? {
        if let v = map[key] { return v }
        // "a.b" reaches into nested maps when there is no such flat key.
        guard key.contains(".") else { return nil }
        var v = Value.map(map)
        for part in key.split(separator: ".", omittingEmptySubsequences: false) {
            v = v.member(String(part))
            if v.isUndefined { return nil }
        }
        return v
    }

    static let all: [BuiltinFunction] = [
        BuiltinFunction("map_get", arity: 2...3) { args throws(EvalError) in
            let key = try Arguments.text("map_get", args[0])
            let map = try Arguments.map("map_get", args[1])
            return mapGet(key, map) ?? (args.count == 3 ? args[2] : .undefined)
        },
        .ternary("map_put") { k, v, m throws(EvalError) in
            var map = try Arguments.map("map_put", m)
            map[try Arguments.text("map_put", k)] = v
            return .map(map)
        },
        .unary("map_keys") { m throws(EvalError) in .array(try Arguments.map("map_keys", m).keys.map(Value.string)) },
        .unary("map_values") { m throws(EvalError) in .array(try Arguments.map("map_values", m).values) },
        .unary("map_size") { m throws(EvalError) in .int(Int64(try Arguments.map("map_size", m).count)) },
        .binary("nth") { n, a throws(EvalError) in
            let index = try Arguments.int("nth", n)
            let array = try Arguments.array("nth", a)
            guard index >= 1 && index <= array.count else {
                throw EvalError("nth: index \(index) is outside 1…\(array.count)")
            }
            return array[index - 1]
        },
        .unary("first") { a throws(EvalError) in
            guard let v = try Arguments.array("first", a).first else { throw EvalError("first: the array is empty") }
            return v
        },
        .unary("last") { a throws(EvalError) in
            guard let v = try Arguments.array("last", a).last else { throw EvalError("last: the array is empty") }
            return v
        },
        .unary("length") { a throws(EvalError) in .int(Int64(try Arguments.array("length", a).count)) },
        .binary("contains") { item, a throws(EvalError) in
            .bool(try Arguments.array("contains", a).contains { Operators.compare(.equal, $0, item) })
        },
        BuiltinFunction("sublist", arity: 2...3) { args throws(EvalError) in
            let array = try Arguments.array("sublist", args[args.count - 1])
            var start = 1
            if args.count == 3 { start = try Arguments.int("sublist", args[0]) }
            let length = try Arguments.int("sublist", args[args.count - 2])
            guard start >= 1, length >= 0 else { throw EvalError("sublist: start must be ≥ 1 and length ≥ 0") }
            guard start <= array.count else { return .array([]) }
            let end = min(array.count, start - 1 + length)
            return .array(Array(array[(start - 1)..<end]))
        },
    ]
}
