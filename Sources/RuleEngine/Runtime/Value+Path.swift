/// Field and element access, as `payload.a.b` and `x[2]` do it.
extension Value {
    /// `self.key`: a map member; a string holding a JSON object is decoded first (EMQX decodes
    /// nested JSON strings on access). Anything else gives `undefined`.
    public func member(_ key: String) -> Value {
        switch self {
        case .map(let m):
            return m[key] ?? .undefined
        case .string, .binary:
            if case .map(let m) = decodedJSON() { return m[key] ?? .undefined }
            return .undefined
        default:
            return .undefined
        }
    }

    /// `self[i]`: 1-based; negative counts from the end (`-1` is the last); 0 or out of range is
    /// `undefined`. A string holding a JSON array is decoded first.
    public func element(_ index: Int) -> Value {
        switch self {
        case .array(let a):
            return Value.pick(a, index) ?? .undefined
        case .string, .binary:
            if case .array(let a) = decodedJSON() { return Value.pick(a, index) ?? .undefined }
            return .undefined
        default:
            return .undefined
        }
    }

    static func pick(_ a: [Value], _ index: Int) -> Value? {
        if index > 0 && index <= a.count { return a[index - 1] }
        if index < 0 && -index <= a.count { return a[a.count + index] }
        return nil
    }

    /// The JSON a string holds, or `undefined` when it is not JSON.
    func decodedJSON() -> Value {
        switch self {
        case .string(let s):
            var s = s
            return s.withUTF8 { JSONParser.parseValue($0) } ?? .undefined
        case .binary(let b):
            return b.withUnsafeBufferPointer { JSONParser.parseValue($0) } ?? .undefined
        default:
            return .undefined
        }
    }
}
