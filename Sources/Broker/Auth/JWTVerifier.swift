import COpenSSL

// JSON Web Tokens as MQTT passwords (RFC 7519, JWS compact serialisation RFC 7515):
// `base64url(header) . base64url(claims) . base64url(signature)`.
//
// - One algorithm is configured and the header's `alg` must name exactly it, so a token can
//   neither choose `none` nor switch an RSA key into an HMAC secret (the classic confusion).
// - HS256: HMAC-SHA256 with a shared secret. RS256: RSASSA-PKCS1-v1_5 with SHA-256. ES256: ECDSA
//   P-256 with SHA-256, whose JWS signature is the raw 64-byte r || s (RFC 7518 §3.4), turned into
//   the DER `ECDSA-Sig-Value` that EVP_DigestVerify expects.
// - `exp` and `nbf` (NumericDate seconds) are checked with `leeway` seconds of clock skew; a token
//   without `exp` never expires.

/// Verifies JWTs with one configured algorithm and key. Immutable after init, so one verifier is
/// shared by every loop (OpenSSL 3 allows concurrent read-only use of an EVP_PKEY).
public final class JWTVerifier: @unchecked Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256", rs256 = "RS256", es256 = "ES256"
    }

    /// Why a token was refused.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case wrongAlgorithm(String)
        case badSignature
        case expired
        case notYetValid

        public var description: String {
            switch self {
            case .malformed(let why): return "malformed token: \(why)"
            case .wrongAlgorithm(let alg): return "token algorithm '\(alg)' is not the configured one"
            case .badSignature: return "bad token signature"
            case .expired: return "token expired"
            case .notYetValid: return "token not yet valid (nbf)"
            }
        }
    }

    /// A key that cannot be used, found at start-up.
    public struct KeyError: Error, CustomStringConvertible {
        public let description: String
    }

    public let algorithm: Algorithm
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    public let leeway: Int64
    private let secret: [UInt8]
    private let key: OpaquePointer?

    /// HS256 with a shared secret.
    public init(secret: [UInt8], leeway: Int64 = 10) throws(KeyError) {
        guard !secret.isEmpty else { throw KeyError(description: "jwt_secret is empty") }
        self.algorithm = .hs256
        self.secret = secret
        self.key = nil
        self.leeway = leeway
    }

    /// RS256 or ES256 with a PEM public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    public init(algorithm: Algorithm, publicKeyPEM: String, leeway: Int64 = 10) throws(KeyError) {
        guard algorithm != .hs256 else { throw KeyError(description: "HS256 takes jwt_secret, not a public key") }
        let pem = Array(publicKeyPEM.utf8)
        let pkey: OpaquePointer? = pem.withUnsafeBytes { buf in
            guard let bio = BIO_new_mem_buf(buf.baseAddress, Int32(buf.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        ERR_clear_error()
        guard let pkey else { throw KeyError(description: "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)") }
        switch algorithm {
        case .rs256:
            guard EVP_PKEY_is_a(pkey, "RSA") == 1 else {
                EVP_PKEY_free(pkey)
                throw KeyError(description: "RS256 needs an RSA public key")
            }
        case .es256:
            guard EVP_PKEY_is_a(pkey, "EC") == 1, EVP_PKEY_get_bits(pkey) == 256 else {
                EVP_PKEY_free(pkey)
                throw KeyError(description: "ES256 needs a P-256 EC public key")
            }
        case .hs256: break
        }
        self.algorithm = algorithm
        self.secret = []
        self.key = pkey
        self.leeway = leeway
    }

    deinit {
        if let key { EVP_PKEY_free(key) }
    }

    /// Does the password look like a compact JWS (three base64url parts)? Cheap; no crypto.
    public static func looksLikeToken(_ password: [UInt8]) -> Bool {
        var dots = 0
        for b in password {
            if b == UInt8(ascii: ".") { dots += 1; continue }
            let ok = (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
            if !ok { return false }
        }
        return dots == 2 && password.count > 4
    }

    /// Checks signature, `exp` and `nbf` at wall-clock second `now`; returns the claims.
    public func verify(_ token: [UInt8], now: Int64) -> Result<JWTClaims, Failure> {
        let parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformed("expected header.claims.signature")) }
        guard let headerBytes = Base64.decodeURL(String(decoding: parts[0], as: UTF8.self)),
              let header = JSONValue.parse(headerBytes)?.object else {
            return .failure(.malformed("header is not base64url JSON"))
        }
        guard let alg = header["alg"]?.string else { return .failure(.malformed("no 'alg' in header")) }
        guard alg == algorithm.rawValue else { return .failure(.wrongAlgorithm(alg)) }
        guard let signature = Base64.decodeURL(String(decoding: parts[2], as: UTF8.self)) else {
            return .failure(.malformed("signature is not base64url"))
        }
        let signed = Array(token[token.startIndex..<parts[1].endIndex])
        guard checkSignature(signed, signature) else { return .failure(.badSignature) }

        guard let claimBytes = Base64.decodeURL(String(decoding: parts[1], as: UTF8.self)),
              let claims = JSONValue.parse(claimBytes)?.object else {
            return .failure(.malformed("claims are not a base64url JSON object"))
        }
        if let exp = claims["exp"] {
            guard let e = exp.number else { return .failure(.malformed("'exp' is not a number")) }
            if Double(now) >= e + Double(leeway) { return .failure(.expired) }
        }
        if let nbf = claims["nbf"] {
            guard let n = nbf.number else { return .failure(.malformed("'nbf' is not a number")) }
            if Double(now) + Double(leeway) < n { return .failure(.notYetValid) }
        }
        return .success(JWTClaims(claims))
    }

    private func checkSignature(_ signed: [UInt8], _ signature: [UInt8]) -> Bool {
        switch algorithm {
        case .hs256:
            var mac = [UInt8](repeating: 0, count: 32)
            var length: UInt32 = 0
            let ok = signed.withUnsafeBufferPointer { d in
                secret.withUnsafeBytes { k in
                    HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &mac, &length)
                }
            }
            guard ok != nil, length == 32, signature.count == 32 else { return false }
            return CRYPTO_memcmp(mac, signature, 32) == 0
        case .rs256:
            return digestVerify(signed, signature)
        case .es256:
            guard signature.count == 64 else { return false }
            return digestVerify(signed, Self.derSignature(r: signature[0..<32], s: signature[32..<64]))
        }
    }

    private func digestVerify(_ signed: [UInt8], _ signature: [UInt8]) -> Bool {
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, EVP_sha256(), nil, key) == 1 else {
            ERR_clear_error()
            return false
        }
        let rc = EVP_DigestVerify(ctx, signature, signature.count, signed, signed.count)
        if rc != 1 { ERR_clear_error() }
        return rc == 1
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` from the fixed-width big-endian halves.
    static func derSignature(r: ArraySlice<UInt8>, s: ArraySlice<UInt8>) -> [UInt8] {
        func integer(_ v: ArraySlice<UInt8>) -> [UInt8] {
            var bytes = Array(v.drop(while: { $0 == 0 }))
            if bytes.isEmpty { bytes = [0] }
            if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) } // keep it positive
            return [0x02, UInt8(bytes.count)] + bytes
        }
        let body = integer(r) + integer(s)
        return [0x30, UInt8(body.count)] + body // at most 70 bytes: short-form lengths
    }
}

/// The verified claims of a JWT, kept on the connection for the ACL.
public struct JWTClaims: Sendable, Equatable {
    /// Every claim as parsed.
    public let all: [String: JSONValue]
    /// `sub`: becomes the connection's user name (`%u` in the ACL).
    public var subject: String? { all["sub"]?.string }
    /// `client_id`: when present, the CONNECT client id must equal it.
    public var clientId: String? { all["client_id"]?.string }

    public init(_ all: [String: JSONValue]) { self.all = all }

    /// A string claim for `%{name}` in ACL topics.
    public func string(_ name: String) -> String? { all[name]?.string }
}
