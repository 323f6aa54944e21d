/// What a rule outputs per input: one SELECT row, or one row per FOREACH element.
enum CompiledProjection: Sendable {
    case select(RowBuilder)
    /// `row` nil means `{itemName: element}`.
    case foreach(list: CompiledExpression, slot: Int, itemName: String, row: RowBuilder?, incase: CompiledExpression?)
}
