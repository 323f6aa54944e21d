/// A request's path and query, decoded: the path split into segments before each is
/// percent-decoded (so `clients/a%2Fb` is the client id `a/b`), query values decoded with `+`
/// as a space (HTML forms' rule). Invalid escapes or bytes that are not UTF-8 are refused.
public struct RequestTarget: Equatable, Sendable {
    public var segments: [String]
    public var query: [String: String]

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case badEscape(String)
        case notUTF8(String)
        case duplicateParameter(String)

        public var description: String {
            switch self {
            case .badEscape(let s): "invalid percent-escape in '\(s)'"
            case .notUTF8(let s): "'\(s)' does not decode to UTF-8 text"
            case .duplicateParameter(let s): "query parameter '\(s)' given more than once"
            }
        }
    }

    /// - Parameters:
    ///   - rawPath: the path as sent (starting with "/"); empty segments (`//`, a trailing `/`) are dropped.
    ///   - rawQuery: the query's name/value pairs as sent (nil: a name without `=`).
    public init(rawPath: String, rawQuery: [(name: String, value: String?)]) throws(Failure) {
        var segments: [String] = []
        for part in rawPath.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            segments.append(try Self.decode(Array(part), plusIsSpace: false))
        }
        var query: [String: String] = [:]
        for (name, value) in rawQuery {
            let n = try Self.decode(Array(name.utf8), plusIsSpace: true)
            guard query[n] == nil else { throw .duplicateParameter(n) }
            query[n] = try Self.decode(Array((value ?? "").utf8), plusIsSpace: true)
        }
        self.segments = segments
        self.query = query
    }

    /// Percent-decodes `bytes` into UTF-8 text.
    public static func decode(_ bytes: [UInt8], plusIsSpace: Bool) throws(Failure) -> String {
        guard bytes.contains(UInt8(ascii: "%")) || (plusIsSpace && bytes.contains(UInt8(ascii: "+"))) else {
            guard let s = String(validating: bytes, as: UTF8.self) else { throw .notUTF8(String(decoding: bytes, as: UTF8.self)) }
            return s
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else {
                    throw .badEscape(String(decoding: bytes, as: UTF8.self))
                }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(plusIsSpace && b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
                i += 1
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw .notUTF8(String(decoding: bytes, as: UTF8.self)) }
        return s
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// `page` and `limit` (EMQX's paging): page from 1, limit 1…10000, defaults 1 and 100.
public struct Paging: Equatable, Sendable {
    public var page = 1
    public var limit = 100
    public static let maxLimit = 10_000

    public init(page: Int = 1, limit: Int = 100) { self.page = page; self.limit = limit }

    /// Nil and a message when a value is not a whole number in range.
    public static func parse(_ query: [String: String]) -> Result<Paging, PagingError> {
        var p = Paging()
        if let s = query["page"] {
            guard let n = Int(s), n >= 1 else { return .failure(PagingError(message: "page must be a whole number from 1, not '\(s)'")) }
            p.page = n
        }
        if let s = query["limit"] {
            guard let n = Int(s), (1...maxLimit).contains(n) else {
                return .failure(PagingError(message: "limit must be a whole number from 1 to \(maxLimit), not '\(s)'"))
            }
            p.limit = n
        }
        return .success(p)
    }

    /// The page's items and EMQX's `meta`.
    public func apply<T>(_ all: [T]) -> (items: ArraySlice<T>, meta: [String: Any]) {
        apply(all, count: all.count)
    }

    /// The same when `first` holds only the first items of a list of `count` (at least up to
    /// this page's end, or all of them).
    public func apply<T>(_ first: [T], count: Int) -> (items: ArraySlice<T>, meta: [String: Any]) {
        let (start, overflow) = (page - 1).multipliedReportingOverflow(by: limit)
        let from = overflow ? first.count : min(first.count, start)
        let to = min(first.count, from + limit)
        return (first[from..<to], ["page": page, "limit": limit, "count": count, "hasnext": to < count])
    }
}

public struct PagingError: Error, Equatable, Sendable {
    public let message: String
}
