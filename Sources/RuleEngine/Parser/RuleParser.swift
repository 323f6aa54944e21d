/// Entry point: rule file text in, compiled `Rule` out.
public enum RuleParser {
    /// Lexes, parses and compiles one rule file.
    /// - Parameters:
    ///   - file: the name errors are reported under (e.g. `rules/overspeed.sql`).
    public static func parse(_ text: String, file: String) throws(RuleError) -> Rule {
        let source = SourceText(file: file, text: text)
        let statement = try parseStatement(text, source: source)
        var compiler = Compiler(source: source)
        return try compiler.compile(statement)
    }

    /// Only the syntax tree (no name resolution), e.g. for printing back.
    public static func parseStatement(_ text: String, file: String) throws(RuleError) -> RuleStatement {
        try parseStatement(text, source: SourceText(file: file, text: text))
    }

    static func parseStatement(_ text: String, source: SourceText) throws(RuleError) -> RuleStatement {
        let (tokens, scalars) = try Lexer.tokenize(text, source: source)
        var parser = Parser(tokens: tokens, scalars: scalars, source: source)
        return try parser.parseRule()
    }
}
