/// Whole-document JSON decoding to `Value` (for `json_decode` and JSON held in strings).
enum JSONParser {
    /// The value, or nil when the bytes are not one JSON document.
    static func parseValue(_ bytes: UnsafeBufferPointer<UInt8>) -> Value? {
        JSONTape(parsing: Array(bytes)).root
    }

    static func parseValue(_ text: String) -> Value? {
        JSONTape(parsing: Array(text.utf8)).root
    }
}
