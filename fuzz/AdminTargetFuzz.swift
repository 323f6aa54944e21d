// libFuzzer entry point for the admin listener's request-input parsing (RequestTarget: path
// segments, percent-decoding, query parameters; Paging; Router). Input: the raw path, then
// query pairs, separated by NUL bytes, each pair split at its first '='. Every input must parse
// or be refused, never crash; what parses must survive re-encoding: encoding every byte of the
// decoded segments and values and parsing again gives the same target.
import AdminTargetFuzzed

private func encode(_ s: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for b in s.utf8 {
        out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
    }
    return String(decoding: out, as: UTF8.self)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdminTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let parts = UnsafeBufferPointer(start: data, count: size).split(separator: 0, omittingEmptySubsequences: false)
    guard let first = parts.first else { return 0 }
    let path = String(decoding: first, as: UTF8.self)
    var query: [(name: String, value: String?)] = []
    for p in parts.dropFirst() {
        if let eq = p.firstIndex(of: UInt8(ascii: "=")) {
            query.append((String(decoding: p[p.startIndex..<eq], as: UTF8.self), String(decoding: p[(eq + 1)...], as: UTF8.self)))
        } else {
            query.append((String(decoding: p, as: UTF8.self), nil))
        }
    }
    guard let target = try? RequestTarget(rawPath: path, rawQuery: query) else { return 0 }
    let again = try? RequestTarget(rawPath: "/" + target.segments.map(encode).joined(separator: "/"),
                                   rawQuery: target.query.map { (encode($0.key), encode($0.value)) })
    precondition(again == target, "re-encoded target parsed differently")
    _ = Paging.parse(target.query)
    for method in ["GET", "POST", "PUT", "DELETE", "HEAD"] {
        if case .found(let route, let parameters) = Router.match(method: method, segments: target.segments) {
            precondition(route.pattern.split(separator: "/").count == target.segments.count, "route length mismatch")
            for (_, v) in parameters { precondition(target.segments.contains(v), "parameter not from the path") }
        }
    }
    return 0
}
