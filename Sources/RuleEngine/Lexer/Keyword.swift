/// Reserved words of rule SQL; matched case-insensitively, so `select` and `SELECT` are the same.
enum Keyword: String, Sendable, CaseIterable {
    case create, rule, `as`, select, from, `where`, into
    case foreach, `do`, incase
    case `case`, when, then, `else`, end
    case and, or, not, div, mod
    case `true`, `false`, null

    /// The keyword spelled by `text` in any letter case, or nil.
    static func match(_ text: String) -> Keyword? {
        // Keywords are ASCII and short: lower-case by hand rather than allocate for every identifier.
        guard text.utf8.count <= 8 else { return nil }
        var lower = ""
        for scalar in text.unicodeScalars {
            if scalar.value >= 65 && scalar.value <= 90 {
                lower.unicodeScalars.append(Unicode.Scalar(scalar.value + 32)!)
            } else {
                lower.unicodeScalars.append(scalar)
            }
        }
        return Keyword(rawValue: lower)
    }

    /// How the keyword is printed back (upper case).
    var spelling: String { rawValue.uppercased() }
}
