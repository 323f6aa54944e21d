import Admin
import Foundation
import TOMLKit

// `[admin]`: the admin listener (HTTP API and Prometheus metrics). Absent from a configuration
// file, there is none; the embedded default (no file) listens on 127.0.0.1:18083 with a
// development key made at start (Turnpike.swift). Errors name the file, line and column.

extension ConfigFile {
    /// The admin listener read by the last `load` (nil: none).
    nonisolated(unsafe) static var admin: AdminConfiguration?

    private static let adminKeys: Set<String> = [
        "enable", "bind", "port", "certfile", "keyfile", "api_key", "api_secret", "api_keys", "token", "tokens",
        "metrics_auth", "max_connections",
    ]

    static func loadAdmin(_ section: TOMLTable, path: String, text: String) throws -> AdminConfiguration? {
        func at(_ key: String, value: Bool = true) -> String {
            guard let (line, column) = position(ofKey: key, inTable: "admin", text: text, atValue: value) else { return path }
            return "\(path):\(line):\(column)"
        }
        func invalid(_ key: String, _ expected: String) -> Error {
            Error(description: "\(at(key)): invalid value for '\(key)' in [admin]: expected \(expected)")
        }
        func string(_ key: String) throws -> String? {
            guard let v = section[key] else { return nil }
            guard let s = v.string, !s.isEmpty else { throw invalid(key, "a non-empty string") }
            return s
        }
        for key in section.keys.sorted() where !adminKeys.contains(key) {
            throw Error(description: "\(at(key, value: false)): unknown key '\(key)' in [admin] (expected \(adminKeys.sorted().joined(separator: ", ")))")
        }
        var c = AdminConfiguration()
        if let v = section["enable"] {
            guard let b = v.bool else { throw invalid("enable", "true or false") }
            if !b { return nil }
        }
        if let s = try string("bind") { c.bind = s }
        if let v = section["port"] {
            guard let i = v.int, (0...65535).contains(i) else { throw invalid("port", "a port number, 0 to 65535") }
            c.port = i
        }
        if let v = section["max_connections"] {
            guard let i = v.int, (1...10_000).contains(i) else { throw invalid("max_connections", "1 to 10000") }
            c.connectionLimit = i
        }
        if let v = section["metrics_auth"] {
            guard let b = v.bool else { throw invalid("metrics_auth", "true or false") }
            c.metricsAuth = b
        }
        let dir = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") || dir.isEmpty ? p : dir + "/" + p }
        c.certificateFile = try string("certfile").map(resolve)
        c.privateKeyFile = try string("keyfile").map(resolve)
        if (c.certificateFile == nil) != (c.privateKeyFile == nil) {
            let missing = c.certificateFile == nil ? "certfile" : "keyfile"
            let given = c.certificateFile == nil ? "keyfile" : "certfile"
            throw Error(description: "\(at(given, value: false)): [admin] has \(given) but no \(missing): HTTPS needs both")
        }
        for key in ["certfile", "keyfile"] {
            let file = key == "certfile" ? c.certificateFile : c.privateKeyFile
            if let file, !FileManager.default.isReadableFile(atPath: file) {
                throw Error(description: "\(at(key)): '\(key)' in [admin]: cannot read \(file)")
            }
        }
        switch (try string("api_key"), try string("api_secret")) {
        case (nil, nil): break
        case (let k?, let s?): c.apiKeys.append(.init(key: k, secret: s))
        case (nil, _?): throw Error(description: "\(at("api_secret", value: false)): [admin] has api_secret but no api_key")
        case (_?, nil): throw Error(description: "\(at("api_key", value: false)): [admin] has api_key but no api_secret")
        }
        if let v = section["api_keys"] {
            guard let array = v.array else { throw invalid("api_keys", "an array of { key = \"…\", secret = \"…\" }") }
            for item in array {
                guard let t = item.table, let k = t["key"]?.string, let s = t["secret"]?.string, !k.isEmpty, !s.isEmpty,
                      Set(t.keys) == ["key", "secret"] else {
                    throw invalid("api_keys", "an array of { key = \"…\", secret = \"…\" } with non-empty strings")
                }
                c.apiKeys.append(.init(key: k, secret: s))
            }
        }
        if let t = try string("token") { c.tokens.append(t) }
        if let v = section["tokens"] {
            guard let array = v.array else { throw invalid("tokens", "an array of non-empty strings") }
            for item in array {
                guard let s = item.string, !s.isEmpty else { throw invalid("tokens", "an array of non-empty strings") }
                c.tokens.append(s)
            }
        }
        if c.apiKeys.contains(where: { $0.key.contains(":") }) {
            throw invalid("api_key", "a key without ':' (HTTP Basic separates key and secret with it)")
        }
        return c
    }

    /// Where `key` is set in `[table]` of a TOML text: its line and column (1-based), at the
    /// value when `atValue`, else at the key. A plain line scan for error messages only (TOMLKit
    /// does not say where a value came from); nil when the key is not written that way.
    static func position(ofKey key: String, inTable table: String, text: String, atValue: Bool) -> (Int, Int)? {
        var current = ""
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.hasPrefix("[") {
                let inner = trimmed.drop(while: { $0 == "[" }).prefix(while: { $0 != "]" })
                current = inner.trimmingCharacters(in: .whitespaces)
                continue
            }
            guard current == table, trimmed.hasPrefix(key) else { continue }
            let after = trimmed.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" })
            guard after.first == "=" else { continue }
            let keyColumn = line.distance(from: line.startIndex, to: trimmed.startIndex) + 1
            guard atValue else { return (n + 1, keyColumn) }
            let value = after.dropFirst().drop(while: { $0 == " " || $0 == "\t" })
            return (n + 1, line.distance(from: line.startIndex, to: value.startIndex) + 1)
        }
        return nil
    }
}
