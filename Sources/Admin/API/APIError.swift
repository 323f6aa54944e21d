import Foundation

/// A 4xx/5xx answer with EMQX's body: `{"code": "NOT_FOUND", "message": "…"}`.
struct APIError: Error {
    let status: Int
    let code: String
    let message: String

    static func badRequest(_ message: String) -> APIError { APIError(status: 400, code: "BAD_REQUEST", message: message) }
    static func notFound(_ code: String, _ message: String) -> APIError { APIError(status: 404, code: code, message: message) }
    static func unavailable(_ message: String) -> APIError { APIError(status: 503, code: "SERVICE_UNAVAILABLE", message: message) }

    var response: HTTPResponse {
        HTTPResponse(status: status, body: JSON.encode(["code": code, "message": message]))
    }
}

/// JSON in and out. Parsing is Foundation's JSONSerialization (the admin listener is off the
/// message path, where Foundation is kept out); writing is JSONWriter below, because
/// JSONSerialization's `sortedKeys` compares keys through ICU collation and made a page of 100
/// clients cost ~60 ms.
enum JSON {
    static func encode(_ value: Any) -> [UInt8] {
        var w = JSONWriter()
        guard w.write(value) else {
            return Array(#"{"code":"INTERNAL_ERROR","message":"response not encodable as JSON"}"#.utf8)
        }
        return w.bytes
    }

    static func response(_ value: Any, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, body: encode(value))
    }

    /// A request body that must be a JSON object.
    static func object(_ body: [UInt8]) throws(APIError) -> [String: Any] {
        guard !body.isEmpty else { throw .badRequest("the request needs a JSON object as its body") }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(body), options: [])
        } catch {
            throw .badRequest("the body is not valid JSON: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)")")
        }
        guard let o = parsed as? [String: Any] else { throw .badRequest("the body must be a JSON object") }
        return o
    }

    /// `nil` as JSON null.
    static func orNull(_ v: Any?) -> Any { v ?? NSNull() }
}

/// Typed reads of a JSON object's fields, with 400s naming the field.
struct Fields {
    let object: [String: Any]
    let allowed: Set<String>

    init(_ object: [String: Any], allowed: Set<String>) throws(APIError) {
        self.object = object
        self.allowed = allowed
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .badRequest("unknown field '\(unknown)' (expected \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ name: String) throws(APIError) -> String? {
        guard let v = object[name], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw .badRequest("'\(name)' must be a string") }
        return s
    }

    func int(_ name: String) throws(APIError) -> Int? {
        guard let v = object[name], !(v is NSNull) else { return nil }
        // JSONSerialization gives NSNumber for numbers and booleans alike.
        guard let n = v as? NSNumber, !Fields.isBool(n), let i = Int(exactly: n.doubleValue) else {
            throw .badRequest("'\(name)' must be a whole number")
        }
        return i
    }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let v = object[name], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, Fields.isBool(n) else { throw .badRequest("'\(name)' must be true or false") }
        return n.boolValue
    }

    func object(_ name: String) throws(APIError) -> [String: Any]? {
        guard let v = object[name], !(v is NSNull) else { return nil }
        guard let o = v as? [String: Any] else { throw .badRequest("'\(name)' must be a JSON object") }
        return o
    }

    /// JSON true/false come back as boolean NSNumbers, whose type code is "c" (numbers are "i",
    /// "q" or "d").
    static func isBool(_ n: NSNumber) -> Bool {
        String(cString: n.objCType) == "c"
    }
}

/// Writes the values the handlers build (String, Bool, integers, Double, NSNumber, NSNull,
/// arrays and `[String: Any]`) as compact JSON with keys in order and `/` unescaped, as
/// `JSONSerialization` with `.sortedKeys` and `.withoutEscapingSlashes` did.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(4096) }

    /// False when `value` holds something JSON cannot say (the output is then unusable).
    mutating func write(_ value: Any) -> Bool {
        // Parsed request values are NSNumbers, which would also cast to Bool and Int: told
        // apart by their type code (Fields.isBool). Native Swift values never are NSNumbers.
        if type(of: value) is NSNumber.Type, let n = value as? NSNumber {
            if Fields.isBool(n) { bytes += Array((n.boolValue ? "true" : "false").utf8) }
            else if let i = Int(exactly: n.doubleValue) { bytes += String(i).utf8 }
            else { double(n.doubleValue) }
            return true
        }
        switch value {
        case let s as String: string(s)
        case let b as Bool: bytes += b ? Array("true".utf8) : Array("false".utf8)
        case let n as Int: bytes += String(n).utf8
        case let o as [String: Any]:
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for key in o.keys.sorted() {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                string(key)
                bytes.append(UInt8(ascii: ":"))
                guard write(o[key]!) else { return false }
            }
            bytes.append(UInt8(ascii: "}"))
        case let a as [Any]:
            bytes.append(UInt8(ascii: "["))
            for (i, e) in a.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                guard write(e) else { return false }
            }
            bytes.append(UInt8(ascii: "]"))
        case let d as Double: double(d)
        case let n as Int64: bytes += String(n).utf8
        case let n as UInt64: bytes += String(n).utf8
        case let n as Int32: bytes += String(n).utf8
        case let n as UInt32: bytes += String(n).utf8
        case is NSNull: bytes += Array("null".utf8)
        default:
            return false
        }
        return true
    }

    private mutating func double(_ d: Double) {
        guard d.isFinite else { bytes += Array("null".utf8); return }
        if d == d.rounded(), abs(d) < 1e15 { bytes += String(Int(d)).utf8 } else { bytes += String(d).utf8 }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                bytes += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                          Self.hex[Int(b >> 4)], Self.hex[Int(b & 15)]]
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
