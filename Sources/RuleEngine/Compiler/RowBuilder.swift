/// Builds output rows from compiled columns. When every column has a single, distinct key the
/// keys array is computed once and shared by every row (one allocation per row for the values).
struct RowBuilder: Sendable {
    enum Column: Sendable {
        /// `*`: every field of the input.
        case all
        /// A column and the key path it lands on (`payload.a.b` without alias nests).
        case value([String], CompiledExpression)
    }

    let columns: [Column]
    private let flatKeys: [String]?

    init(columns: [Column]) {
        self.columns = columns
        var keys: [String] = []
        var flat = true
        for column in columns {
            guard case .value(let path, _) = column, path.count == 1, !keys.contains(path[0]) else { flat = false; break }
            keys.append(path[0])
        }
        self.flatKeys = flat ? keys : nil
    }

    func build(_ ctx: EvaluationContext) throws(EvalError) -> Value {
        if let flatKeys {
            var values: [Value] = []
            values.reserveCapacity(columns.count)
            var complete = true
            for column in columns {
                guard case .value(_, let e) = column else { continue }
                let v = try e.evaluate(ctx)
                if v.isUndefined { complete = false }
                values.append(v)
            }
            if complete { return .map(ValueMap(keys: flatKeys, values: values)) }
            var row = ValueMap()
            for (k, v) in zip(flatKeys, values) { row[k] = v }
            return .map(row)
        }
        var row = ValueMap()
        for column in columns {
            switch column {
            case .all:
                for field in ctx.input.event.fields { row[field.name] = ctx.value(of: field) }
            case .value(let path, let e):
                RowBuilder.insert(try e.evaluate(ctx), at: path[...], into: &row)
            }
        }
        return .map(row)
    }

    static func insert(_ value: Value, at path: ArraySlice<String>, into map: inout ValueMap) {
        guard let key = path.first else { return }
        if path.count == 1 { map[key] = value; return }
        if value.isUndefined { return }
        var inner = map[key]?.mapValue ?? ValueMap()
        insert(value, at: path.dropFirst(), into: &inner)
        map[key] = .map(inner)
    }
}
