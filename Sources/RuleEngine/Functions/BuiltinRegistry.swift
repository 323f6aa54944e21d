/// Every built-in function by its EMQX name; consulted only by the compiler.
enum BuiltinRegistry {
    static let functions: [String: BuiltinFunction] = {
        var table: [String: BuiltinFunction] = [:]
        let families: [[BuiltinFunction]] = [
            MathFunctions.all, TypeFunctions.all, StringFunctions.all, CollectionFunctions.all,
            HashFunctions.all, EncodingFunctions.all, TimeFunctions.all, MiscFunctions.all,
        ]
        for family in families {
            for f in family {
                precondition(table[f.name] == nil, "duplicate built-in \(f.name)")
                table[f.name] = f
            }
        }
        return table
    }()

    static func lookup(_ name: String) -> BuiltinFunction? {
        functions[name] ?? functions[name.lowercased()]
    }
}
