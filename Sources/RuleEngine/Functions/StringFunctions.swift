/// String functions with EMQX's semantics: positions count characters, `substr` is 0-based,
/// `split` drops empty parts, `find` returns the rest of the string from the match ('' if none).
enum StringFunctions {
    private static func isSpace(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" }

    private static func mapString(_ name: String, _ f: @escaping @Sendable (String) -> String) -> BuiltinFunction {
        .unary(name) { v throws(EvalError) in .string(f(try Arguments.string(name, v))) }
    }

    /// Ranges of every occurrence of `needle` in `haystack`, left to right, not overlapping.
    static func occurrences(of needle: String, in haystack: String) -> [Range<String.Index>] {
        var result: [Range<String.Index>] = []
        guard !needle.isEmpty else { return result }
        var searchStart = haystack.startIndex
        while searchStart < haystack.endIndex, let r = haystack[searchStart...].firstRange(of: needle) {
            result.append(r)
            searchStart = r.upperBound
        }
        return result
    }

    static let all: [BuiltinFunction] = [
        mapString("lower") { $0.lowercased() },
        mapString("upper") { $0.uppercased() },
        mapString("trim") { s in String(s.drop(while: isSpace).reversed().drop(while: isSpace).reversed()) },
        mapString("ltrim") { s in String(s.drop(while: isSpace)) },
        mapString("rtrim") { s in String(s.reversed().drop(while: isSpace).reversed()) },
        mapString("reverse") { String($0.reversed()) },
        .unary("strlen") { v throws(EvalError) in .int(Int64(try Arguments.string("strlen", v).count)) },
        BuiltinFunction("concat", arity: 1...Int.max) { args throws(EvalError) in
            var out = ""
            for a in args { out += try Arguments.text("concat", a) }
            return .string(out)
        },
        BuiltinFunction("substr", arity: 2...3) { args throws(EvalError) in
            let s = try Arguments.string("substr", args[0])
            let start = try Arguments.int("substr", args[1])
            guard start >= 0 else { throw EvalError("substr: start must be 0 or more, got \(start)") }
            let chars = Array(s)
            guard start < chars.count else { return .string("") }
            var end = chars.count
            if args.count == 3 {
                let length = try Arguments.int("substr", args[2])
                guard length >= 0 else { throw EvalError("substr: length must be 0 or more, got \(length)") }
                end = min(chars.count, start + length)
            }
            return .string(String(chars[start..<end]))
        },
        BuiltinFunction("split", arity: 2...3) { args throws(EvalError) in
            let s = try Arguments.string("split", args[0])
            let sep = try Arguments.string("split", args[1])
            guard !sep.isEmpty else { throw EvalError("split: separator is empty") }
            let ranges = occurrences(of: sep, in: s)
            if args.count == 3 {
                let mode = try Arguments.option("split", args[2], ["leading", "trailing", "notrim"])
                if mode == "notrim" {
                    var parts: [Value] = []
                    var from = s.startIndex
                    for r in ranges { parts.append(.string(String(s[from..<r.lowerBound]))); from = r.upperBound }
                    parts.append(.string(String(s[from...])))
                    return .array(parts)
                }
                guard let r = mode == "leading" ? ranges.first : ranges.last else { return .array([.string(s)]) }
                return .array([String(s[..<r.lowerBound]), String(s[r.upperBound...])].filter { !$0.isEmpty }.map(Value.string))
            }
            var parts: [Value] = []
            var from = s.startIndex
            for r in ranges {
                if from < r.lowerBound { parts.append(.string(String(s[from..<r.lowerBound]))) }
                from = r.upperBound
            }
            if from < s.endIndex { parts.append(.string(String(s[from...]))) }
            return .array(parts)
        },
        BuiltinFunction("tokens", arity: 2...3) { args throws(EvalError) in
            let s = try Arguments.string("tokens", args[0])
            var separators = Set(try Arguments.string("tokens", args[1]).unicodeScalars)
            if args.count == 3 {
                _ = try Arguments.option("tokens", args[2], ["nocrlf"])
                separators.insert("\r"); separators.insert("\n")
            }
            var parts: [Value] = []
            var current = ""
            for c in s.unicodeScalars {
                if separators.contains(c) {
                    if !current.isEmpty { parts.append(.string(current)); current = "" }
                } else {
                    current.unicodeScalars.append(c)
                }
            }
            if !current.isEmpty { parts.append(.string(current)) }
            return .array(parts)
        },
        BuiltinFunction("replace", arity: 3...4) { args throws(EvalError) in
            let s = try Arguments.string("replace", args[0])
            let search = try Arguments.string("replace", args[1])
            let replacement = try Arguments.string("replace", args[2])
            guard !search.isEmpty else { throw EvalError("replace: search string is empty") }
            let mode = args.count == 4 ? try Arguments.option("replace", args[3], ["all", "leading", "trailing"]) : "all"
            let ranges = occurrences(of: search, in: s)
            let chosen: [Range<String.Index>]
            switch mode {
            case "leading": chosen = ranges.first.map { [$0] } ?? []
            case "trailing": chosen = ranges.last.map { [$0] } ?? []
            default: chosen = ranges
            }
            var out = ""
            var from = s.startIndex
            for r in chosen { out += s[from..<r.lowerBound]; out += replacement; from = r.upperBound }
            out += s[from...]
            return .string(out)
        },
        BuiltinFunction("find", arity: 2...3) { args throws(EvalError) in
            let s = try Arguments.string("find", args[0])
            let needle = try Arguments.string("find", args[1])
            let mode = args.count == 3 ? try Arguments.option("find", args[2], ["leading", "trailing"]) : "leading"
            if needle.isEmpty { return .string(s) }
            let ranges = occurrences(of: needle, in: s)
            guard let r = mode == "leading" ? ranges.first : ranges.last else { return .string("") }
            return .string(String(s[r.lowerBound...]))
        },
        BuiltinFunction("pad", arity: 2...4) { args throws(EvalError) in
            let s = try Arguments.string("pad", args[0])
            let length = try Arguments.int("pad", args[1])
            let mode = args.count >= 3 ? try Arguments.option("pad", args[2], ["trailing", "leading", "both"]) : "trailing"
            var fill: Character = " "
            if args.count == 4 {
                let f = try Arguments.string("pad", args[3])
                guard f.count == 1, let c = f.first else { throw EvalError("pad: the pad character must be one character") }
                fill = c
            }
            let missing = length - s.count
            guard missing > 0 else { return .string(s) }
            switch mode {
            case "leading": return .string(String(repeating: fill, count: missing) + s)
            case "both":
                let left = missing / 2
                return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: missing - left))
            default: return .string(s + String(repeating: fill, count: missing))
            }
        },
        BuiltinFunction("join_to_string", arity: 1...2) { args throws(EvalError) in
            let separator = args.count == 2 ? try Arguments.string("join_to_string", args[0]) : ", "
            let items = try Arguments.array("join_to_string", args[args.count - 1])
            var parts: [String] = []
            for item in items { parts.append(try Arguments.text("join_to_string", item)) }
            return .string(parts.joined(separator: separator))
        },
        BuiltinFunction("sprintf", arity: 1...Int.max) { args throws(EvalError) in
            .string(try Sprintf.format(try Arguments.string("sprintf", args[0]), Array(args.dropFirst())))
        },
        .unary("ascii") { v throws(EvalError) in
            let s = try Arguments.string("ascii", v)
            guard let c = s.unicodeScalars.first, s.unicodeScalars.count == 1, c.isASCII else {
                throw EvalError("ascii: expected one ASCII character")
            }
            return .int(Int64(c.value))
        },
        BuiltinFunction("regex_match", arity: 2...2) { args throws(EvalError) in
            try RegexFunctions.match(try Arguments.string("regex_match", args[0]), try RegexFunctions.compile("regex_match", args[1]))
        },
        BuiltinFunction("regex_replace", arity: 3...3) { args throws(EvalError) in
            try RegexFunctions.replace(try Arguments.string("regex_replace", args[0]),
                                       try RegexFunctions.compile("regex_replace", args[1]),
                                       try Arguments.string("regex_replace", args[2]))
        },
        BuiltinFunction("regex_extract", arity: 2...2) { args throws(EvalError) in
            try RegexFunctions.extract(try Arguments.string("regex_extract", args[0]), try RegexFunctions.compile("regex_extract", args[1]))
        },
    ]
}
