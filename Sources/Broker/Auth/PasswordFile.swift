import COpenSSL
import Synchronization

// The password file, one user per line, compatible with mosquitto_passwd 2.0:
//
//     username:$7$ITERATIONS$SALT$HASH
//
// `$7$` is PBKDF2-HMAC-SHA512: SALT is 12 random bytes and HASH 64 bytes, both standard base64
// with padding. mosquitto's older `$6$SALT$HASH` lines (one SHA-512 over password || salt) are
// accepted for verification too, but never written. Blank lines and lines starting with '#' are
// skipped. Verification always uses the iteration count stored in the line.

/// Users and their salted password hashes, loaded once at start-up.
public struct PasswordFile: Sendable {
    /// Passwords that already passed, so reconnects skip the slow hash.
    private let verified = VerifiedPasswords()
    /// One user's stored hash.
    public struct Entry: Sendable, Equatable {
        public enum Scheme: Sendable, Equatable {
            /// `$7$`: PBKDF2-HMAC-SHA512 with this many iterations.
            case pbkdf2SHA512(iterations: Int)
            /// `$6$`: SHA-512(password || salt), mosquitto 1.x.
            case sha512
        }
        public var scheme: Scheme
        public var salt: [UInt8]
        public var hash: [UInt8]
    }

    /// A line that cannot be read, with its 1-based line number.
    public struct ParseError: Error, CustomStringConvertible {
        public let path: String
        public let line: Int
        public let message: String
        public var description: String { "\(path):\(line): \(message)" }
    }

    public private(set) var entries: [String: Entry] = [:]

    /// mosquitto_passwd's salt length.
    public static let saltLength = 12
    /// SHA-512 output, the derived key length mosquitto uses.
    public static let hashLength = 64
    /// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA512 (mosquitto_passwd writes 101).
    public static let defaultIterations = 210_000

    public init() {}

    /// Parses the file's text; `path` only names the file in errors.
    public init(text: String, path: String) throws(ParseError) {
        var number = 0
        // "\r\n" is one Character, so CRLF files need their own separator.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            var line = Substring(raw)
            if line.last == "\r" { line = line.dropLast() }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.first == "#" { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw ParseError(path: path, line: number, message: "expected 'user:$7$iterations$salt$hash'")
            }
            let user = String(line[..<colon])
            guard !user.isEmpty else { throw ParseError(path: path, line: number, message: "empty user name") }
            guard let entry = Self.parseHash(line[line.index(after: colon)...]) else {
                throw ParseError(path: path, line: number, message: "unreadable hash for '\(user)' (expected $7$iterations$salt$hash as written by 'turnpike passwd' or mosquitto_passwd)")
            }
            guard entries[user] == nil else {
                throw ParseError(path: path, line: number, message: "user '\(user)' appears twice")
            }
            entries[user] = entry
        }
    }

    static func parseHash(_ s: Substring) -> Entry? {
        let parts = s.split(separator: "$", omittingEmptySubsequences: false)
        // "$7$101$salt$hash" splits into ["", "7", "101", "salt", "hash"].
        guard parts.count >= 4, parts[0].isEmpty else { return nil }
        switch parts[1] {
        case "7":
            guard parts.count == 5, let n = Int(parts[2]), n >= 1,
                  let salt = Base64.decode(parts[3]), !salt.isEmpty,
                  let hash = Base64.decode(parts[4]), hash.count == hashLength else { return nil }
            return Entry(scheme: .pbkdf2SHA512(iterations: n), salt: salt, hash: hash)
        case "6":
            guard parts.count == 4, let salt = Base64.decode(parts[2]), !salt.isEmpty,
                  let hash = Base64.decode(parts[3]), hash.count == hashLength else { return nil }
            return Entry(scheme: .sha512, salt: salt, hash: hash)
        default:
            return nil
        }
    }

    /// Is `password` right for `user`? False for unknown users. Costs one full hash: about
    /// `iterations` HMAC-SHA512 computations for `$7$` lines, run on the caller's thread.
    public func verify(user: String, password: [UInt8]) -> Bool {
        guard let entry = entries[user] else { return false }
        // A car reconnecting all day would pay the slow hash each time: a password that already
        // passed is remembered as a keyed SHA-256 (key random per process), checked in microseconds.
        if verified.matches(user: user, password: password) { return true }
        guard Self.verify(entry, password: password) else { return false }
        verified.remember(user: user, password: password)
        return true
    }

    static func verify(_ entry: Entry, password: [UInt8]) -> Bool {
        guard let computed = derive(entry.scheme, password: password, salt: entry.salt) else { return false }
        return computed.count == entry.hash.count && computed.withUnsafeBytes { a in
            entry.hash.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 }
        }
    }

    static func derive(_ scheme: Entry.Scheme, password: [UInt8], salt: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: hashLength)
        switch scheme {
        case .pbkdf2SHA512(let iterations):
            guard iterations <= Int(Int32.max) else { return nil }
            // A NUL-terminated copy, so an empty password still has a valid pointer.
            let pass = password.map { CChar(bitPattern: $0) } + [0]
            let ok = salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    PKCS5_PBKDF2_HMAC(pass, Int32(password.count), s.baseAddress, Int32(s.count),
                                      Int32(iterations), EVP_sha512(), Int32(hashLength), o.baseAddress)
                }
            }
            return ok == 1 ? out : nil
        case .sha512:
            let data = password + salt
            var length: UInt32 = 0
            let ok = data.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in
                    EVP_Digest(d.baseAddress, d.count, o.baseAddress, &length, EVP_sha512(), nil)
                }
            }
            return ok == 1 && Int(length) == hashLength ? out : nil
        }
    }

    /// A new `user:$7$…` line with a fresh random salt (RAND_bytes); nil if the system's random
    /// source fails. `user` must not contain ':' or a line break.
    public static func makeLine(user: String, password: [UInt8], iterations: Int = defaultIterations) -> String? {
        var salt = [UInt8](repeating: 0, count: saltLength)
        guard salt.withUnsafeMutableBufferPointer({ RAND_bytes($0.baseAddress, Int32($0.count)) }) == 1,
              let hash = derive(.pbkdf2SHA512(iterations: iterations), password: password, salt: salt) else { return nil }
        return "\(user):$7$\(iterations)$\(Base64.encode(salt))$\(Base64.encode(hash))"
    }
}

/// Passwords that passed the slow check, as HMAC-SHA256 under a random per-process key: a memory
/// dump does not give the passwords away, and a hit costs one HMAC instead of PBKDF2.
final class VerifiedPasswords: @unchecked Sendable {
    private let key: [UInt8]
    private let entries = Mutex<[String: [UInt8]]>([:])

    init() {
        var k = [UInt8](repeating: 0, count: 32)
        if RAND_bytes(&k, Int32(k.count)) != 1 {
            // No randomness: never hit, always run the slow check.
            k = []
        }
        key = k
    }

    private func mac(_ user: String, _ password: [UInt8]) -> [UInt8]? {
        guard !key.isEmpty else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let data = Array(user.utf8) + [0] + password
        let ok = key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &out, &length)
            }
        }
        return ok == nil ? nil : out
    }

    func matches(user: String, password: [UInt8]) -> Bool {
        guard let m = mac(user, password), let known = entries.withLock({ $0[user] }) else { return false }
        return m.withUnsafeBytes { a in known.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, 32) == 0 } }
    }

    func remember(user: String, password: [UInt8]) {
        guard let m = mac(user, password) else { return }
        entries.withLock { $0[user] = m }
    }
}
