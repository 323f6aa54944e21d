/// An expression ready to run: names are resolved to fields, slots and function values, paths to
/// key byte arrays, constant topic filters and regexes are pre-parsed. Evaluation is a switch
/// over this tree (`CompiledExpression+Evaluate.swift`) with no lookups by name.
indirect enum CompiledExpression: Sendable {
    case constant(Value)
    case field(Field)
    /// `payload.a.b[1]`: walked on the message's JSON tape; only the final value is materialized.
    case payloadPath([PathStep])
    /// The current FOREACH item.
    case local(Int)
    case path(CompiledExpression, [PathStep])
    case not(CompiledExpression, SourceLocation)
    case negate(CompiledExpression, SourceLocation)
    case and(CompiledExpression, CompiledExpression, SourceLocation)
    case or(CompiledExpression, CompiledExpression, SourceLocation)
    case compare(BinaryOperator, CompiledExpression, CompiledExpression)
    case arithmetic(BinaryOperator, CompiledExpression, CompiledExpression, SourceLocation)
    /// `topic =~ 'a/+/b'` with a constant filter.
    case matchFilter(CompiledExpression, TopicFilter, SourceLocation)
    /// `=~` with a filter computed per message.
    case matchDynamic(CompiledExpression, CompiledExpression, SourceLocation)
    case call(BuiltinFunction, [CompiledExpression], SourceLocation)
    case caseWhen(subject: CompiledExpression?, branches: [(CompiledExpression, CompiledExpression)], otherwise: CompiledExpression?)
    case array([CompiledExpression])

    var constantValue: Value? {
        if case .constant(let v) = self { return v }
        return nil
    }
}
