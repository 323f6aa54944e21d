/// JSON-syntax numbers from bytes: integers that fit stay `Int64`; decimals take an exact fast
/// path (mantissa < 2^53, power of ten ≤ 22) and fall back to the standard library's parser.
enum NumberParser {
    /// Exact powers of ten up to 1e22, as a switch (a static array would cost a retain per use).
    @inline(__always)
    private static func powerOfTen(_ n: Int) -> Double {
        switch n {
        case 0: return 1e0
        case 1: return 1e1
        case 2: return 1e2
        case 3: return 1e3
        case 4: return 1e4
        case 5: return 1e5
        case 6: return 1e6
        case 7: return 1e7
        case 8: return 1e8
        case 9: return 1e9
        case 10: return 1e10
        case 11: return 1e11
        case 12: return 1e12
        case 13: return 1e13
        case 14: return 1e14
        case 15: return 1e15
        case 16: return 1e16
        case 17: return 1e17
        case 18: return 1e18
        case 19: return 1e19
        case 20: return 1e20
        case 21: return 1e21
        default: return 1e22
        }
    }

    /// Parses the number starting at `i`, leaving `i` after it; nil if it is not valid JSON syntax.
    static func parse(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Value? {
        var bits: UInt64 = 0
        switch scan(p, &i, &bits) {
        case 1: return .int(Int64(bitPattern: bits))
        case 2: return .float(Double(bitPattern: bits))
        default: return nil
        }
    }

    /// Steps over a JSON-syntax number starting at `i` without converting it; false if the
    /// syntax is invalid. Must accept exactly what `scan` accepts (JSONTests checks both agree):
    /// the tape validates with this one and converts with `scan` later.
    @inline(__always)
    static func skip(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Bool {
        if i < p.count && p[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        while i < p.count, p[i] &- 48 < 10 { i += 1 }
        if i == intStart { return false }
        if p[intStart] == UInt8(ascii: "0") && i - intStart > 1 { return false }
        if i < p.count && p[i] == UInt8(ascii: ".") {
            i += 1
            let fracStart = i
            while i < p.count, p[i] &- 48 < 10 { i += 1 }
            if i == fracStart { return false }
        }
        if i < p.count && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            if i < p.count && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
            let expStart = i
            while i < p.count, p[i] &- 48 < 10 { i += 1 }
            if i == expStart { return false }
        }
        return true
    }

    /// The tape's form of `parse`: 1 for an integer, 2 for a float (value bits in `bits`), 0 if invalid.
    @inline(__always)
    static func scan(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ bits: inout UInt64) -> Int {
        let start = i
        var negative = false
        if i < p.count && p[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var overflow = false
        let intStart = i
        while i < p.count, p[i] &- 48 < 10 {
            if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48) } else { overflow = true }
            digits += 1
            i += 1
        }
        if i == intStart { return 0 }
        if p[intStart] == UInt8(ascii: "0") && i - intStart > 1 { return 0 }
        var isFloat = false
        var fractionDigits = 0
        if i < p.count && p[i] == UInt8(ascii: ".") {
            isFloat = true
            i += 1
            let fracStart = i
            while i < p.count, p[i] &- 48 < 10 {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48)
                    fractionDigits += 1
                } else if p[i] != UInt8(ascii: "0") {
                    overflow = true
                }
                digits += 1
                i += 1
            }
            if i == fracStart { return 0 }
        }
        var exponent = 0
        if i < p.count && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            isFloat = true
            i += 1
            var expNegative = false
            if i < p.count && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) {
                expNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            let expStart = i
            while i < p.count, p[i] &- 48 < 10 {
                if exponent < 100_000 { exponent = exponent * 10 + Int(p[i] &- 48) }
                i += 1
            }
            if i == expStart { return 0 }
            if expNegative { exponent = -exponent }
        }
        if !isFloat && !overflow {
            if negative {
                if mantissa <= UInt64(Int64.max) + 1 { bits = UInt64(bitPattern: mantissa == UInt64(Int64.max) + 1 ? Int64.min : -Int64(mantissa)); return 1 }
            } else if mantissa <= UInt64(Int64.max) {
                bits = mantissa; return 1
            }
        }
        let power = exponent - fractionDigits
        if !overflow && mantissa < (1 << 53) && power >= -22 && power <= 22 {
            var d = Double(mantissa)
            d = power < 0 ? d / powerOfTen(-power) : d * powerOfTen(power)
            bits = (negative ? -d : d).bitPattern; return 2
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
        guard let d = Double(text) else { return 0 }
        bits = d.bitPattern; return 2
    }

    /// A whole string as a number (for `'42' = 42` and `int('42')`); surrounding spaces allowed.
    static func parse(_ s: String) -> Value? {
        var s = s
        return s.withUTF8 { p -> Value? in
            var lo = 0, hi = p.count
            while lo < hi && p[lo] == 32 { lo += 1 }
            while hi > lo && p[hi - 1] == 32 { hi -= 1 }
            guard lo < hi else { return nil }
            let slice = UnsafeBufferPointer(rebasing: p[lo..<hi])
            var i = 0
            if slice[0] == UInt8(ascii: "+") { i = 1 }
            guard let v = parse(slice, &i), i == slice.count else { return nil }
            return v
        }
    }
}
