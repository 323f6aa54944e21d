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

/// JSON in and out through Foundation's JSONSerialization (the admin listener is off the
/// message path, where Foundation is kept out).
enum JSON {
    static func encode(_ value: Any) -> [UInt8] {
        guard JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return Array(#"{"code":"INTERNAL_ERROR","message":"response not encodable as JSON"}"#.utf8)
        }
        return Array(data)
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
