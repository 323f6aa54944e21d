/// `sprintf(format, args…)`: EMQX passes the format to Erlang's `io_lib:format`, so `~s ~p ~w
/// ~n ~~` work as there; C-style `%s %d %i %f %.Nf %x %X %%` are accepted too.
/// Too few arguments, or a number directive given a non-number, is an evaluation error.
enum Sprintf {
    static func format(_ format: String, _ args: [Value]) throws(EvalError) -> String {
        var out = ""
        var next = 0
        func take() throws(EvalError) -> Value {
            guard next < args.count else { throw EvalError("sprintf: not enough arguments for '\(format)'") }
            defer { next += 1 }
            return args[next]
        }
        var chars = Array(format)
        var i = 0
        chars.append("\u{0}")
        while i < chars.count - 1 {
            let c = chars[i]
            if c == "~" {
                let d = chars[i + 1]
                i += 2
                switch d {
                case "~": out.append("~")
                case "n": out.append("\n")
                case "s": out += ValueFormatter.text(try take())
                case "p", "w":
                    let v = try take()
                    if case .string(let s) = v { out += "<<\"\(s)\">>" } else { out += ValueFormatter.text(v) }
                default: throw EvalError("sprintf: unsupported directive '~\(d)'")
                }
                continue
            }
            if c == "%" {
                i += 1
                if chars[i] == "%" { out.append("%"); i += 1; continue }
                var precision: Int?
                if chars[i] == "." {
                    i += 1
                    var p = 0
                    while let n = chars[i].wholeNumberValue { p = p * 10 + n; i += 1 }
                    precision = p
                }
                let d = chars[i]
                i += 1
                switch d {
                case "s": out += ValueFormatter.text(try take())
                case "d", "i":
                    let v = try take()
                    switch v {
                    case .int(let n): out += String(n)
                    case .float(let x): out += String(Int64(x.rounded(.towardZero)))
                    default: throw EvalError.type("sprintf", "a number for %\(d)", v)
                    }
                case "f":
                    out += fixed(try Arguments.number("sprintf", try take()), precision ?? 6)
                case "x", "X":
                    let n = try Arguments.integer("sprintf", try take())
                    let hex = String(n, radix: 16, uppercase: d == "X")
                    out += hex
                default: throw EvalError("sprintf: unsupported directive '%\(d)'")
                }
                continue
            }
            out.append(c)
            i += 1
        }
        return out
    }

    /// `x` with exactly `digits` decimals (rounded half away from zero), without Foundation.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.description }
        let digits = min(digits, 15)
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (Swift.abs(x) * scale).rounded(.toNearestOrAwayFromZero)
        guard scaled < 9e18 else { return x.description }
        let n = UInt64(scaled)
        let whole = n / UInt64(scale)
        let frac = n % UInt64(scale)
        var s = (x < 0 && n != 0 ? "-" : "") + String(whole)
        if digits > 0 {
            let f = String(frac)
            s += "." + String(repeating: "0", count: digits - f.count) + f
        }
        return s
    }
}
