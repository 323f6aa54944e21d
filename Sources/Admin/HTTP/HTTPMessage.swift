/// One HTTP request as the handlers see it: the path and query still percent-encoded (the
/// router decodes them, see RequestTarget.swift), the body read whole.
public struct HTTPRequest: Sendable {
    public var method: String
    public var rawPath: String
    public var rawQuery: [(name: String, value: String?)]
    /// The `Authorization` header, if sent.
    public var authorization: String?
    public var body: [UInt8]

    public init(method: String, rawPath: String, rawQuery: [(name: String, value: String?)] = [],
                authorization: String? = nil, body: [UInt8] = []) {
        self.method = method; self.rawPath = rawPath; self.rawQuery = rawQuery
        self.authorization = authorization; self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var headers: [(name: String, value: String)]

    public init(status: Int, contentType: String = "application/json", body: [UInt8] = [],
                headers: [(name: String, value: String)] = []) {
        self.status = status; self.contentType = contentType; self.body = body; self.headers = headers
    }

    public static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, contentType: contentType, body: Array(text.utf8))
    }

    /// 204 No Content.
    public static let noContent = HTTPResponse(status: 204, contentType: "")
}
