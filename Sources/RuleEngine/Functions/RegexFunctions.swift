/// regex_match, regex_replace, regex_extract on Swift's `Regex` (no Foundation). A pattern
/// written as a constant is compiled once at rule compile time (a bad one is a compile error).
/// Matching is unanchored, like Erlang's `re:run`; replacements expand `\0`…`\9` and `&`.
enum RegexFunctions {
    /// A compiled pattern shared by rule evaluations on several threads: `Regex` is immutable
    /// once built, so sharing it is safe even where the type does not declare `Sendable`.
    final class Compiled: @unchecked Sendable {
        let regex: Regex<AnyRegexOutput>
        init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
    }

    static func compile(_ f: String, _ pattern: Value) throws(EvalError) -> Compiled {
        let text = try Arguments.string(f, pattern)
        do {
            return Compiled(try Regex(text))
        } catch {
            throw EvalError("\(f): invalid regular expression '\(text)'")
        }
    }

    static func match(_ s: String, _ re: Compiled) throws(EvalError) -> Value {
        .bool((try? re.regex.firstMatch(in: s)) != nil)
    }

    static func extract(_ s: String, _ re: Compiled) throws(EvalError) -> Value {
        guard let m = try? re.regex.firstMatch(in: s) else { return .array([]) }
        if m.output.count <= 1 { return .array([.string(String(s[m.range]))]) }
        var groups: [Value] = []
        for i in 1..<m.output.count {
            groups.append(m.output[i].substring.map { .string(String($0)) } ?? .string(""))
        }
        return .array(groups)
    }

    static func replace(_ s: String, _ re: Compiled, _ replacement: String) throws(EvalError) -> Value {
        var out = ""
        var from = s.startIndex
        var searchFrom = s.startIndex
        while searchFrom <= s.endIndex, let m = try? re.regex.firstMatch(in: s[searchFrom...]) {
            out += s[from..<m.range.lowerBound]
            out += expand(replacement, m)
            from = m.range.upperBound
            if m.range.isEmpty {
                guard m.range.upperBound < s.endIndex else { break }
                out.append(s[m.range.upperBound])
                from = s.index(after: m.range.upperBound)
            }
            searchFrom = from
            if from == s.endIndex { break }
        }
        if from < s.endIndex { out += s[from...] }
        return .string(out)
    }

    private static func expand(_ replacement: String, _ m: Regex<AnyRegexOutput>.Match) -> String {
        var out = ""
        var chars = replacement.makeIterator()
        func group(_ n: Int) -> String {
            guard n < m.output.count, let sub = m.output[n].substring else { return "" }
            return String(sub)
        }
        while let c = chars.next() {
            if c == "&" { out += group(0); continue }
            if c == "\\" {
                guard let d = chars.next() else { out.append(c); break }
                if let n = d.wholeNumberValue { out += group(n) } else { out.append(d) }
                continue
            }
            out.append(c)
        }
        return out
    }

    /// With a constant pattern, a call whose regex is compiled now.
    static func specialize(_ f: BuiltinFunction, _ args: [CompiledExpression], _ at: SourceLocation) throws(EvalError) -> CompiledExpression? {
        guard f.name.hasPrefix("regex_"), args.count >= 2, let pattern = args[1].constantValue else { return nil }
        let compiled: Compiled
        do throws(EvalError) {
            compiled = try compile(f.name, pattern)
        } catch {
            throw error.located(at)
        }
        var rest = args
        rest.remove(at: 1)
        let name = f.name
        let body: BuiltinFunction.Body
        switch name {
        case "regex_match":
            body = .unary { s throws(EvalError) in try match(try Arguments.string(name, s), compiled) }
        case "regex_extract":
            body = .unary { s throws(EvalError) in try extract(try Arguments.string(name, s), compiled) }
        case "regex_replace":
            body = .binary { s, r throws(EvalError) in
                try replace(try Arguments.string(name, s), compiled, try Arguments.string(name, r))
            }
        default:
            return nil
        }
        return .call(BuiltinFunction(name, body), rest, at)
    }
}
