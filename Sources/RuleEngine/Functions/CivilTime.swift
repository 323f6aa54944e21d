#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A proleptic Gregorian date and time at some UTC offset, converted to and from Unix time with
/// Howard Hinnant's day-count algorithms (no Foundation, no time zone database).
struct CivilTime: Equatable {
    var year: Int64, month: Int, day: Int
    var hour: Int, minute: Int, second: Int
    var nanosecond: Int
    /// Seconds east of UTC.
    var offset: Int

    static func daysFromCivil(_ y: Int64, _ m: Int, _ d: Int) -> Int64 {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((m + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z: Int64) -> (Int64, Int, Int) {
        let z = z + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysInMonth(_ y: Int64, _ m: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Nanoseconds since the epoch shown at `offset` seconds east of UTC.
    init(unixNanoseconds ns: Int64, offset: Int) {
        let local = ns.addingReportingOverflow(Int64(offset) * 1_000_000_000).partialValue
        var seconds = local / 1_000_000_000
        var nanos = local % 1_000_000_000
        if nanos < 0 { nanos += 1_000_000_000; seconds -= 1 }
        var days = seconds / 86400
        var rest = seconds % 86400
        if rest < 0 { rest += 86400; days -= 1 }
        (year, month, day) = CivilTime.civilFromDays(days)
        hour = Int(rest / 3600); minute = Int(rest % 3600 / 60); second = Int(rest % 60)
        nanosecond = Int(nanos)
        self.offset = offset
    }

    init(year: Int64, month: Int, day: Int, hour: Int, minute: Int, second: Int, nanosecond: Int, offset: Int) {
        self.year = year; self.month = month; self.day = day
        self.hour = hour; self.minute = minute; self.second = second
        self.nanosecond = nanosecond; self.offset = offset
    }

    var unixNanoseconds: Int64 {
        let days = CivilTime.daysFromCivil(year, month, day)
        let seconds = days * 86400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset)
        return seconds * 1_000_000_000 + Int64(nanosecond)
    }

    static func pad(_ n: Int64, _ width: Int) -> String {
        let s = String(Swift.abs(n))
        return (n < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// `+hh:mm` (or `+hhmm` without the colon, `+hh:mm:ss` with seconds).
    static func offsetText(_ offset: Int, colon: Bool = true, seconds: Bool = false) -> String {
        let sign = offset < 0 ? "-" : "+"
        let a = Swift.abs(offset)
        var s = sign + pad(Int64(a / 3600), 2) + (colon ? ":" : "") + pad(Int64(a % 3600 / 60), 2)
        if seconds { s += ":" + pad(Int64(a % 60), 2) }
        return s
    }

    /// RFC 3339 with `fractionDigits` (0, 3, 6 or 9) decimals of the second.
    func rfc3339(fractionDigits: Int) -> String {
        var s = "\(CivilTime.pad(year, 4))-\(CivilTime.pad(Int64(month), 2))-\(CivilTime.pad(Int64(day), 2))T"
        s += "\(CivilTime.pad(Int64(hour), 2)):\(CivilTime.pad(Int64(minute), 2)):\(CivilTime.pad(Int64(second), 2))"
        if fractionDigits > 0 {
            var divisor = 1
            for _ in 0..<(9 - fractionDigits) { divisor *= 10 }
            s += "." + CivilTime.pad(Int64(nanosecond / divisor), fractionDigits)
        }
        return s + CivilTime.offsetText(offset)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)` (`t`/space separator and `z` allowed).
    static func parseRFC3339(_ text: String) -> CivilTime? {
        let c = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= c.count else { return nil }
            var v = 0
            for k in 0..<n {
                let d = c[i + k] &- 48
                guard d < 10 else { return nil }
                v = v * 10 + Int(d)
            }
            i += n
            return v
        }
        func expect(_ chars: [Character]) -> Bool {
            guard i < c.count, chars.contains(Character(Unicode.Scalar(c[i]))) else { return false }
            i += 1
            return true
        }
        guard let y = digits(4), expect(["-"]), let mo = digits(2), expect(["-"]), let d = digits(2),
              expect(["T", "t", " "]), let h = digits(2), expect([":"]), let mi = digits(2), expect([":"]),
              let s = digits(2) else { return nil }
        var nanos = 0
        if i < c.count && c[i] == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while i < c.count, c[i] &- 48 < 10 {
                if count < 9 { nanos = nanos * 10 + Int(c[i] - 48); count += 1 }
                i += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<9 { nanos *= 10 }
        }
        var offset = 0
        if expect(["Z", "z"]) {
            offset = 0
        } else {
            guard i < c.count, c[i] == UInt8(ascii: "+") || c[i] == UInt8(ascii: "-") else { return nil }
            let negative = c[i] == UInt8(ascii: "-")
            i += 1
            guard let oh = digits(2), expect([":"]), let om = digits(2), oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (negative ? -1 : 1)
        }
        guard i == c.count, (1...12).contains(mo), d >= 1, d <= daysInMonth(Int64(y), mo),
              h < 24, mi < 60, s < 61 else { return nil }
        return CivilTime(year: Int64(y), month: mo, day: d, hour: h, minute: mi, second: min(s, 59),
                         nanosecond: nanos, offset: offset)
    }

    /// Nanoseconds since the Unix epoch, now.
    static func nowNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
