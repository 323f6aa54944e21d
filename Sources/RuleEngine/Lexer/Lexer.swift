/// Turns rule text into tokens. Comments (`-- …` to the end of the line, `/* … */`) and
/// whitespace are skipped; strings take backslash escapes (`\\ \' \" \n \t \r`) and SQL's doubled
/// quote (`'it''s'`).
struct Lexer {
    private let scalars: [Unicode.Scalar]
    private let source: SourceText
    private var index = 0
    private var line = 1
    private var column = 1

    init(text: String, source: SourceText) {
        self.scalars = Array(text.unicodeScalars)
        self.source = source
    }

    /// The whole file as tokens, ending with `.endOfFile`.
    static func tokenize(_ text: String, source: SourceText) throws(RuleError) -> (tokens: [Token], scalars: [Unicode.Scalar]) {
        var lexer = Lexer(text: text, source: source)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .endOfFile { break }
        }
        return (tokens, lexer.scalars)
    }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }
    private func peek(_ ahead: Int = 1) -> Unicode.Scalar? {
        index + ahead < scalars.count ? scalars[index + ahead] : nil
    }

    private mutating func advance() {
        guard let c = current else { return }
        index += 1
        if c == "\n" {
            line += 1; column = 1
        } else if c == "\r" {
            if current != "\n" { line += 1; column = 1 } else { column += 1 }
        } else {
            column += 1
        }
    }

    private var location: SourceLocation { SourceLocation(line: line, column: column) }

    private func error(_ message: String, _ at: SourceLocation) -> RuleError {
        source.error(.syntax, message, at: at)
    }

    private mutating func skipTrivia() throws(RuleError) {
        while let c = current {
            if c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}" {
                advance()
            } else if c == "-" && peek() == "-" {
                while let d = current, d != "\n", d != "\r" { advance() }
            } else if c == "/" && peek() == "*" {
                let start = location
                advance(); advance()
                var closed = false
                while let d = current {
                    if d == "*" && peek() == "/" { advance(); advance(); closed = true; break }
                    advance()
                }
                if !closed { throw error("unterminated comment", start) }
            } else {
                return
            }
        }
    }

    mutating func next() throws(RuleError) -> Token {
        try skipTrivia()
        let start = location
        let startOffset = index
        func make(_ kind: Token.Kind, _ lexer: Lexer) -> Token {
            Token(kind: kind, location: start, offset: startOffset, endOffset: lexer.index)
        }
        guard let c = current else { return make(.endOfFile, self) }

        if isIdentifierStart(c) {
            var text = ""
            while let d = current, isIdentifierPart(d) { text.unicodeScalars.append(d); advance() }
            if let keyword = Keyword.match(text) { return make(.keyword(keyword), self) }
            return make(.identifier(text), self)
        }
        if isDigit(c) {
            return make(try number(start), self)
        }
        switch c {
        case "'", "\"":
            let value = try string(quote: c, start: start)
            return make(c == "'" ? .singleQuoted(value) : .doubleQuoted(value), self)
        case "(": advance(); return make(.leftParen, self)
        case ")": advance(); return make(.rightParen, self)
        case "[": advance(); return make(.leftBracket, self)
        case "]": advance(); return make(.rightBracket, self)
        case ",": advance(); return make(.comma, self)
        case ".": advance(); return make(.dot, self)
        case ";": advance(); return make(.semicolon, self)
        case "*": advance(); return make(.star, self)
        case "+": advance(); return make(.plus, self)
        case "-": advance(); return make(.minus, self)
        case "/": advance(); return make(.slash, self)
        case "=":
            advance()
            if current == "~" { advance(); return make(.match, self) }
            return make(.equal, self)
        case "!":
            advance()
            if current == "=" { advance(); return make(.notEqual, self) }
            throw error("unexpected character '!' (did you mean '!='?)", start)
        case "<":
            advance()
            if current == "=" { advance(); return make(.lessEqual, self) }
            if current == ">" { advance(); return make(.notEqual, self) }
            return make(.less, self)
        case ">":
            advance()
            if current == "=" { advance(); return make(.greaterEqual, self) }
            return make(.greater, self)
        default:
            throw error("unexpected character '\(c.escaped(asASCII: true))'", start)
        }
    }

    private mutating func number(_ start: SourceLocation) throws(RuleError) -> Token.Kind {
        var text = ""
        var isFloat = false
        while let d = current, isDigit(d) { text.unicodeScalars.append(d); advance() }
        if current == ".", let n = peek(), isDigit(n) {
            isFloat = true
            text.append("."); advance()
            while let d = current, isDigit(d) { text.unicodeScalars.append(d); advance() }
        }
        if current == "e" || current == "E" {
            let sign = peek()
            let digitAfter: Unicode.Scalar? = (sign == "+" || sign == "-") ? peek(2) : sign
            if let d = digitAfter, isDigit(d) {
                isFloat = true
                text.append("e"); advance()
                if sign == "+" || sign == "-" { text.unicodeScalars.append(sign!); advance() }
                while let d = current, isDigit(d) { text.unicodeScalars.append(d); advance() }
            }
        }
        if let d = current, isIdentifierStart(d) {
            throw error("invalid number: letter '\(d)' after digits", location)
        }
        if isFloat {
            guard let value = Double(text) else { throw error("invalid number '\(text)'", start) }
            return .float(value)
        }
        guard let value = Int64(text) else { throw error("integer '\(text)' is too large", start) }
        return .integer(value)
    }

    private mutating func string(quote: Unicode.Scalar, start: SourceLocation) throws(RuleError) -> String {
        advance()
        var value = ""
        while true {
            guard let c = current else { throw error("unterminated string", start) }
            if c == quote {
                if peek() == quote {  // SQL doubling: 'it''s'
                    value.unicodeScalars.append(c); advance(); advance(); continue
                }
                advance()
                return value
            }
            if c == "\\" {
                let escapeAt = location
                advance()
                guard let e = current else { throw error("unterminated string", start) }
                switch e {
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "r": value.append("\r")
                case "0": value.append("\u{0}")
                case "\\", "'", "\"", "/": value.unicodeScalars.append(e)
                default: throw error("unknown escape '\\\(e)' in string", escapeAt)
                }
                advance()
                continue
            }
            value.unicodeScalars.append(c)
            advance()
        }
    }

    private func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 48 && c.value <= 57 }
    private func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        (c.value >= 65 && c.value <= 90) || (c.value >= 97 && c.value <= 122) || c == "_"
    }
    private func isIdentifierPart(_ c: Unicode.Scalar) -> Bool { isIdentifierStart(c) || isDigit(c) }
}
