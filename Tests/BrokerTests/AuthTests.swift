@testable import Broker
import COpenSSL
import Foundation
import MQTTCodec
import XCTest

// Password file, JWT, ACL and CONNECT decisions. Keys for RS256/ES256 are generated per run with
// libcrypto, and tokens are signed here, so nothing secret is committed.

/// Test-side JWT signing.
private enum TokenMaker {
    static func b64url(_ bytes: [UInt8]) -> String {
        Base64.encode(bytes).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func json(_ d: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) // plain dictionaries: cannot fail
    }

    static func signingInput(alg: String, claims: [String: Any]) -> String {
        b64url(json(["alg": alg, "typ": "JWT"])) + "." + b64url(json(claims))
    }

    static func hs256(_ claims: [String: Any], secret: String, alg: String = "HS256") -> String {
        let input = signingInput(alg: alg, claims: claims)
        var mac = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 0
        let key = Array(secret.utf8), data = Array(input.utf8)
        _ = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &mac, &n)
        return input + "." + b64url(mac)
    }

    static func generate(_ type: String) -> OpaquePointer {
        let ctx = EVP_PKEY_CTX_new_from_name(nil, type, nil)!
        defer { EVP_PKEY_CTX_free(ctx) }
        XCTAssertEqual(EVP_PKEY_keygen_init(ctx), 1)
        if type == "RSA" {
            XCTAssertEqual(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1)
        } else {
            XCTAssertEqual(EVP_PKEY_CTX_set_group_name(ctx, "P-256"), 1)
        }
        var key: OpaquePointer?
        XCTAssertEqual(EVP_PKEY_generate(ctx, &key), 1)
        return key!
    }

    static func publicPEM(_ key: OpaquePointer) -> String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        XCTAssertEqual(PEM_write_bio_PUBKEY(bio, key), 1)
        var out = [UInt8](repeating: 0, count: 4096)
        let n = BIO_read(bio, &out, Int32(out.count))
        return String(decoding: out[0..<Int(n)], as: UTF8.self)
    }

    static func sign(_ claims: [String: Any], key: OpaquePointer, alg: String) -> String {
        let input = signingInput(alg: alg, claims: claims)
        let data = Array(input.utf8)
        let ctx = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(ctx) }
        XCTAssertEqual(EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, key), 1)
        var length = 0
        XCTAssertEqual(EVP_DigestSign(ctx, nil, &length, data, data.count), 1)
        var sig = [UInt8](repeating: 0, count: length)
        XCTAssertEqual(EVP_DigestSign(ctx, &sig, &length, data, data.count), 1)
        sig = Array(sig[0..<length])
        if alg == "ES256" { sig = rawSignature(der: sig) }
        return input + "." + b64url(sig)
    }

    /// DER ECDSA-Sig-Value -> 32-byte r || 32-byte s (RFC 7518 §3.4).
    static func rawSignature(der: [UInt8]) -> [UInt8] {
        var i = 2 // SEQUENCE tag and short length
        func integer() -> [UInt8] {
            precondition(der[i] == 0x02)
            let n = Int(der[i + 1])
            var v = Array(der[(i + 2)..<(i + 2 + n)])
            i += 2 + n
            while v.count > 32 { v.removeFirst() }
            return [UInt8](repeating: 0, count: 32 - v.count) + v
        }
        return integer() + integer()
    }
}

final class AuthTests: XCTestCase {
    let now = Int64(Date().timeIntervalSince1970)

    // MARK: Base64

    func testBase64RoundTripAndStrictness() {
        for n in 0..<20 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            XCTAssertEqual(Base64.decode(Base64.encode(bytes)), bytes)
        }
        XCTAssertEqual(Base64.encode(Array("foobar".utf8)), "Zm9vYmFy")
        XCTAssertEqual(Base64.encode(Array("fo".utf8)), "Zm8=")
        XCTAssertNil(Base64.decode("Zm8=x"))
        XCTAssertNil(Base64.decode("Z==="))
        XCTAssertEqual(Base64.decodeURL("-_8"), [0xFB, 0xFF])
        XCTAssertNil(Base64.decodeURL("+/8"))
    }

    // MARK: Password file

    /// Made by Debian's `mosquitto_passwd -c -b file alice secret` (mosquitto 2.0.11).
    static let mosquittoLine = "alice:$7$101$0Iqq/+gBt4nuWcMN$tMtWam6A+LaVUYcjjCH/tM4nctCO1Nc8/r3NFmGGYFg5Di9+1LzyQY8sQcg8UDp8obQ4Q6YfYKzUh6DNfwyy6A=="

    func testMosquittoPasswdLineVerifies() throws {
        let file = try PasswordFile(text: "# users\n\n" + Self.mosquittoLine + "\n", path: "pw")
        XCTAssertTrue(file.verify(user: "alice", password: Array("secret".utf8)))
        XCTAssertFalse(file.verify(user: "alice", password: Array("Secret".utf8)))
        XCTAssertFalse(file.verify(user: "alice", password: []))
        XCTAssertFalse(file.verify(user: "bob", password: Array("secret".utf8)))
        XCTAssertEqual(file.entries["alice"]?.scheme, .pbkdf2SHA512(iterations: 101))
    }

    func testLegacySHA512LineVerifies() throws {
        // $6$: SHA-512(password || salt), salt "0123456789ab".
        let line = "old:$6$MDEyMzQ1Njc4OWFi$o+kR64O3R9PIRAxj/pouFubH2DpGd/QHCgnAHw+gTru54VOqAOzQtUlYQ3pgNcUzyhfoF5eZLv3spn06FR8NnA=="
        let file = try PasswordFile(text: line, path: "pw")
        XCTAssertTrue(file.verify(user: "old", password: Array("legacy".utf8)))
        XCTAssertFalse(file.verify(user: "old", password: Array("legacY".utf8)))
    }

    func testMakeLineRoundTripsWithFreshSalts() throws {
        let a = try XCTUnwrap(PasswordFile.makeLine(user: "car-1", password: Array("pw".utf8), iterations: 1000))
        let b = try XCTUnwrap(PasswordFile.makeLine(user: "car-2", password: Array("pw".utf8), iterations: 1000))
        XCTAssertTrue(a.hasPrefix("car-1:$7$1000$"))
        let file = try PasswordFile(text: a + "\r\n" + b + "\n", path: "pw")
        XCTAssertTrue(file.verify(user: "car-1", password: Array("pw".utf8)))
        XCTAssertTrue(file.verify(user: "car-2", password: Array("pw".utf8)))
        XCTAssertNotEqual(file.entries["car-1"]?.salt, file.entries["car-2"]?.salt)
        let empty = try XCTUnwrap(PasswordFile.makeLine(user: "e", password: [], iterations: 10))
        XCTAssertTrue(try PasswordFile(text: empty, path: "pw").verify(user: "e", password: []))
    }

    func testPasswordFileErrorsNameTheLine() {
        func error(_ text: String) -> String? {
            do { _ = try PasswordFile(text: text, path: "pw.txt"); return nil } catch { return error.description }
        }
        XCTAssertEqual(error("# c\nalice\n"), "pw.txt:2: expected 'user:$7$iterations$salt$hash'")
        XCTAssertTrue(error("\n\nbob:$7$x$abc$def")?.hasPrefix("pw.txt:3: unreadable hash for 'bob'") ?? false)
        XCTAssertTrue(error("bob:$7$10$AAAA$AAAA")?.hasPrefix("pw.txt:1: unreadable hash") ?? false, "short hash")
        XCTAssertTrue(error(Self.mosquittoLine + "\n" + Self.mosquittoLine)?.hasPrefix("pw.txt:2: user 'alice' appears twice") ?? false)
        XCTAssertEqual(error(":$7$1$AAAA$AAAA"), "pw.txt:1: empty user name")
    }

    /// Measures one verification at the default iteration count (it runs on a loop thread).
    func testVerifyCostAtDefaultIterations() throws {
        let line = try XCTUnwrap(PasswordFile.makeLine(user: "u", password: Array("pw".utf8)))
        let file = try PasswordFile(text: line, path: "pw")
        let start = DispatchTime.now().uptimeNanoseconds
        XCTAssertTrue(file.verify(user: "u", password: Array("pw".utf8)))
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        print("PBKDF2-SHA512 verify at \(PasswordFile.defaultIterations) iterations: \(String(format: "%.1f", ms)) ms")
    }

    // MARK: JWT

    func testHS256() throws {
        let v = try JWTVerifier(secret: Array("s3cret".utf8))
        let good = TokenMaker.hs256(["sub": "car-1", "exp": now + 60], secret: "s3cret")
        XCTAssertTrue(JWTVerifier.looksLikeToken(Array(good.utf8)))
        XCTAssertEqual(try v.verify(Array(good.utf8), now: now).get().subject, "car-1")
        let expired = TokenMaker.hs256(["sub": "car-1", "exp": now - 60], secret: "s3cret")
        XCTAssertEqual(v.verify(Array(expired.utf8), now: now).failure, .expired)
        let withinLeeway = TokenMaker.hs256(["sub": "car-1", "exp": now - 5], secret: "s3cret")
        XCTAssertNotNil(try? v.verify(Array(withinLeeway.utf8), now: now).get())
        let early = TokenMaker.hs256(["sub": "car-1", "nbf": now + 60], secret: "s3cret")
        XCTAssertEqual(v.verify(Array(early.utf8), now: now).failure, .notYetValid)
        let wrongKey = TokenMaker.hs256(["sub": "car-1"], secret: "other")
        XCTAssertEqual(v.verify(Array(wrongKey.utf8), now: now).failure, .badSignature)
        let noneAlg = TokenMaker.signingInput(alg: "none", claims: ["sub": "x"]) + "."
        XCTAssertEqual(v.verify(Array(noneAlg.utf8), now: now).failure, .wrongAlgorithm("none"))
        let otherAlg = TokenMaker.hs256(["sub": "car-1"], secret: "s3cret", alg: "HS512")
        XCTAssertEqual(v.verify(Array(otherAlg.utf8), now: now).failure, .wrongAlgorithm("HS512"))
        // A tampered payload keeps the old signature.
        var parts = good.split(separator: ".").map(String.init)
        parts[1] = TokenMaker.b64url(TokenMaker.json(["sub": "admin", "exp": now + 60]))
        XCTAssertEqual(v.verify(Array(parts.joined(separator: ".").utf8), now: now).failure, .badSignature)
        XCTAssertFalse(JWTVerifier.looksLikeToken(Array("plain password".utf8)))
        if case .malformed = v.verify(Array("a.b".utf8), now: now).failure {} else { XCTFail("two parts") }
    }

    func testRS256() throws {
        let key = TokenMaker.generate("RSA")
        defer { EVP_PKEY_free(key) }
        let v = try JWTVerifier(algorithm: .rs256, publicKeyPEM: TokenMaker.publicPEM(key))
        let good = TokenMaker.sign(["sub": "car-7", "exp": now + 60, "fleet": "north"], key: key, alg: "RS256")
        let claims = try v.verify(Array(good.utf8), now: now).get()
        XCTAssertEqual(claims.subject, "car-7")
        XCTAssertEqual(claims.string("fleet"), "north")
        let expired = TokenMaker.sign(["sub": "car-7", "exp": now - 3600], key: key, alg: "RS256")
        XCTAssertEqual(v.verify(Array(expired.utf8), now: now).failure, .expired)
        let other = TokenMaker.generate("RSA")
        defer { EVP_PKEY_free(other) }
        let forged = TokenMaker.sign(["sub": "car-7"], key: other, alg: "RS256")
        XCTAssertEqual(v.verify(Array(forged.utf8), now: now).failure, .badSignature)
        // An HS256 token made with the public key as the secret must not pass.
        let confused = TokenMaker.hs256(["sub": "car-7"], secret: TokenMaker.publicPEM(key))
        XCTAssertEqual(v.verify(Array(confused.utf8), now: now).failure, .wrongAlgorithm("HS256"))
        XCTAssertThrowsError(try JWTVerifier(algorithm: .es256, publicKeyPEM: TokenMaker.publicPEM(key)))
    }

    func testES256() throws {
        let key = TokenMaker.generate("EC")
        defer { EVP_PKEY_free(key) }
        let v = try JWTVerifier(algorithm: .es256, publicKeyPEM: TokenMaker.publicPEM(key))
        for _ in 0..<8 { // different signatures exercise leading-zero and high-bit r/s
            let good = TokenMaker.sign(["sub": "car-9", "nbf": now - 10, "exp": now + 60], key: key, alg: "ES256")
            XCTAssertEqual(try v.verify(Array(good.utf8), now: now).get().subject, "car-9")
        }
        let expired = TokenMaker.sign(["sub": "car-9", "exp": now - 3600], key: key, alg: "ES256")
        XCTAssertEqual(v.verify(Array(expired.utf8), now: now).failure, .expired)
        let other = TokenMaker.generate("EC")
        defer { EVP_PKEY_free(other) }
        let forged = TokenMaker.sign(["sub": "car-9"], key: other, alg: "ES256")
        XCTAssertEqual(v.verify(Array(forged.utf8), now: now).failure, .badSignature)
        XCTAssertThrowsError(try JWTVerifier(algorithm: .rs256, publicKeyPEM: TokenMaker.publicPEM(key)))
        XCTAssertThrowsError(try JWTVerifier(algorithm: .es256, publicKeyPEM: "-----BEGIN PUBLIC KEY-----\nnope\n"))
    }

    func testDERSignatureEncoding() {
        let r = [UInt8](repeating: 0, count: 31) + [5]
        let s = [0x80] + [UInt8](repeating: 1, count: 31)
        let der = JWTVerifier.derSignature(r: r[...], s: s[...])
        XCTAssertEqual(Array(der[0..<5]), [0x30, UInt8(der.count - 2), 0x02, 0x01, 0x05])
        XCTAssertEqual(Array(der[5..<8]), [0x02, 0x21, 0x00], "high bit gets a zero byte")
        XCTAssertEqual(TokenMaker.rawSignature(der: der), r + s)
    }

    func testJSONParser() {
        XCTAssertEqual(JSONValue.parse(Array(#"{"a":[1,2.5,-3e2],"b":"x\u00e9\n\ud83d\ude00","c":true,"d":null}"#.utf8)),
                       .object(["a": .array([.number(1), .number(2.5), .number(-300)]), "b": .string("xé\n😀"),
                                "c": .bool(true), "d": .null]))
        for bad in ["{", #"{"a":}"#, "[1,]", #""\x""#, "{} x", "tru"] {
            XCTAssertNil(JSONValue.parse(Array(bad.utf8)), bad)
        }
    }

    // MARK: ACL

    static let fleetACL = """
        # backend reads and commands every car
        user backend
        allow readwrite cars/#

        client car-admin
        allow read cars/+/telemetry

        pattern
        allow write cars/%c/#
        allow read cars/%c/cmd
        allow read fleet/%{fleet}/news
        deny readwrite #
        """

    func compiled(_ text: String, user: String?, client: String, claims: JWTClaims? = nil,
                  defaultAllows: Bool = false, sysReaders: Set<String>? = nil) throws -> ConnectionAuth {
        var auth = BrokerConfiguration.Auth()
        auth.acl = try ACL(text: text, path: "acl")
        auth.aclDefaultAllows = defaultAllows
        auth.sysReaders = sysReaders
        return ConnectionAuth(configuration: auth, username: user, clientId: client, claims: claims)
    }

    func testCarsReachOnlyTheirOwnTopics() throws {
        let a = try compiled(Self.fleetACL, user: "car-A", client: "car-A")
        XCTAssertTrue(a.mayPublish("cars/car-A/telemetry"))
        XCTAssertTrue(a.mayPublish("cars/car-A"), "cars/%c/# covers its parent")
        XCTAssertTrue(a.maySubscribe("cars/car-A/cmd"))
        XCTAssertTrue(a.maySubscribe("$share/g/cars/car-A/cmd"), "shared: the inner filter is checked")
        XCTAssertFalse(a.mayPublish("cars/car-B/telemetry"))
        XCTAssertFalse(a.mayPublish("cars/car-B/cmd"))
        XCTAssertFalse(a.maySubscribe("cars/car-B/cmd"))
        XCTAssertFalse(a.maySubscribe("cars/+/cmd"), "a wildcard would reach car-B")
        XCTAssertFalse(a.maySubscribe("cars/car-A/#"), "only cmd is readable")
        XCTAssertFalse(a.maySubscribe("#"))
        XCTAssertFalse(a.mayPublish("other/topic"))

        let backend = try compiled(Self.fleetACL, user: "backend", client: "be-1")
        XCTAssertTrue(backend.maySubscribe("cars/+/telemetry"))
        XCTAssertTrue(backend.maySubscribe("$share/backend/cars/#"))
        XCTAssertTrue(backend.mayPublish("cars/car-B/cmd"))
        XCTAssertFalse(backend.maySubscribe("#"), "# is wider than cars/#; deny # overlaps")

        let admin = try compiled(Self.fleetACL, user: nil, client: "car-admin")
        XCTAssertTrue(admin.maySubscribe("cars/+/telemetry"))
        XCTAssertFalse(admin.maySubscribe("cars/+/cmd"))
    }

    func testClaimsAndUnsafeIdentities() throws {
        let withClaim = try compiled(Self.fleetACL, user: "car-A", client: "car-A", claims: JWTClaims(["fleet": .string("north")]))
        XCTAssertTrue(withClaim.maySubscribe("fleet/north/news"))
        XCTAssertFalse(withClaim.maySubscribe("fleet/south/news"))
        let noClaim = try compiled(Self.fleetACL, user: "car-A", client: "car-A")
        XCTAssertFalse(noClaim.maySubscribe("fleet/north/news"), "missing claim: the allow rule never matches")

        // A client id with '/' or a wildcard must not widen %c.
        for id in ["car-B/x", "+", "#"] {
            let sneaky = try compiled(Self.fleetACL, user: nil, client: id)
            XCTAssertFalse(sneaky.mayPublish("cars/car-B/x/telemetry"), id)
            XCTAssertFalse(sneaky.maySubscribe("cars/car-B/cmd"), id)
        }
        // A deny rule whose placeholder cannot be filled denies everything after it.
        let rules = "pattern\ndeny write private/%u/#\nallow readwrite #\n"
        let anonymous = try compiled(rules, user: nil, client: "c")
        XCTAssertFalse(anonymous.mayPublish("public/x"))
        let named = try compiled(rules, user: "u", client: "c")
        XCTAssertTrue(named.mayPublish("public/x"))
        XCTAssertFalse(named.mayPublish("private/u/x"))
    }

    func testFirstMatchWinsAndDefault() throws {
        let rules = """
            pattern
            deny write a/secret
            allow write a/#
            allow read b/+
            deny read b/x
            """
        let c = try compiled(rules, user: nil, client: "c")
        XCTAssertFalse(c.mayPublish("a/secret"))
        XCTAssertTrue(c.mayPublish("a/open"))
        XCTAssertTrue(c.maySubscribe("b/x"), "allow b/+ comes first")
        XCTAssertFalse(c.maySubscribe("a/#"), "write-only rules do not grant read; default deny")
        XCTAssertFalse(c.mayPublish("z"))
        let open = try compiled(rules, user: nil, client: "c", defaultAllows: true)
        XCTAssertTrue(open.mayPublish("z"))
        XCTAssertTrue(open.maySubscribe("z/#"))

        // A deny that overlaps part of a subscription refuses all of it.
        let partial = try compiled("pattern\ndeny read cars/secret/#\nallow read cars/#\n", user: nil, client: "c")
        XCTAssertFalse(partial.maySubscribe("cars/+/x"))
        XCTAssertFalse(partial.maySubscribe("cars/#"))
        XCTAssertTrue(partial.maySubscribe("cars/open/#"))
    }

    func testSysIsOnlyForSysReaders() throws {
        let rules = "pattern\nallow readwrite #\n"
        let reader = try compiled(rules, user: "ops", client: "c", sysReaders: ["ops"])
        XCTAssertTrue(reader.maySubscribe("$SYS/#"))
        XCTAssertTrue(reader.maySubscribe("$SYS/broker/uptime"))
        let other = try compiled(rules, user: "car", client: "c2", sysReaders: ["ops"])
        XCTAssertFalse(other.maySubscribe("$SYS/#"))
        XCTAssertFalse(other.maySubscribe("$share/g/$SYS/broker/#"))
        XCTAssertTrue(other.maySubscribe("#"), "# does not reach $SYS")
        XCTAssertFalse(other.mayPublish("$SYS/broker/fake"), "only the broker writes $SYS")
        XCTAssertFalse(try compiled(rules, user: nil, client: "c3").maySubscribe("$SYS/#"), "ACL without sys_readers: nobody")
    }

    func testFilterRelations() {
        func covers(_ p: String, _ f: String) -> Bool { ConnectionAuth.covers(ConnectionAuth.levels(p), ConnectionAuth.levels(f)) }
        func overlaps(_ a: String, _ b: String) -> Bool { ConnectionAuth.overlaps(ConnectionAuth.levels(a), ConnectionAuth.levels(b)) }
        XCTAssertTrue(covers("a/#", "a/+/c"))
        XCTAssertTrue(covers("a/#", "a"))
        XCTAssertTrue(covers("a/+", "a/+"))
        XCTAssertFalse(covers("a/+", "a/#"))
        XCTAssertFalse(covers("a/b", "a/+"))
        XCTAssertFalse(covers("#", "$SYS/x"))
        XCTAssertTrue(covers("$SYS/#", "$SYS/x/+"))
        XCTAssertTrue(overlaps("a/+/c", "a/b/#"))
        XCTAssertTrue(overlaps("a/#", "a"))
        XCTAssertFalse(overlaps("a/b", "a/c"))
        XCTAssertFalse(overlaps("a/+", "a/b/c"))
        XCTAssertFalse(overlaps("#", "$SYS/#"))
        XCTAssertFalse(overlaps("+/x", "$SYS/x"))
    }

    func testACLErrorsNameTheLine() {
        func error(_ text: String) -> String? {
            do { _ = try ACL(text: text, path: "acl.conf"); return nil } catch { return error.description }
        }
        XCTAssertEqual(error("allow read a"), "acl.conf:1: rule before any 'user', 'client' or 'pattern' line")
        XCTAssertEqual(error("pattern\n\nallow sub a"), "acl.conf:3: access must be read, write or readwrite, not 'sub'")
        XCTAssertEqual(error("user x\nallow read a/#/b"), "acl.conf:2: 'a/#/b' is not a valid topic filter")
        XCTAssertEqual(error("pattern\nallow read a/%x"), "acl.conf:2: unknown placeholder '%x' in 'a/%x' (use %c, %u or %{claim})")
        XCTAssertEqual(error("pattern\nallow read a/%{x"), "acl.conf:2: unclosed '%{' in 'a/%{x'")
        XCTAssertEqual(error("topic read a"), "acl.conf:1: unknown keyword 'topic' (expected user, client, pattern, allow or deny)")
        XCTAssertEqual(error("pattern # all"), "acl.conf:1: 'pattern' takes nothing after it (comments need their own line)")
        XCTAssertEqual(error("user\n"), "acl.conf:1: 'user' needs a name")
        XCTAssertEqual(error("client c\ndeny write"), "acl.conf:2: 'deny write' needs a topic filter")
        XCTAssertEqual(error("pattern\nallow read $share/g/a"), "acl.conf:2: '$share/g/a' is not a valid topic filter")
        XCTAssertNil(error("  # comment\n\tpattern\r\n  allow   read   a b/c  \n"))
        XCTAssertEqual(try ACL(text: "pattern\nallow read a b/c%c", path: "x").rules.first?.filter, [.literal("a b/c"), .clientId])
    }

    // MARK: CONNECT decisions

    func testAuthenticatorDecisions() throws {
        var auth = BrokerConfiguration.Auth()
        func decide(_ user: String?, _ pass: String?, client: String = "c", cert: String? = nil) -> Authenticator.Decision {
            Authenticator.decide(auth, allowAnonymous: auth.allowAnonymous ?? true, username: user, password: pass.map { Array($0.utf8) }, clientId: client,
                                 certificateIdentity: cert, now: now)
        }
        XCTAssertEqual(decide(nil, nil), .accept(username: nil, claims: nil))
        XCTAssertEqual(decide("u", "anything"), .accept(username: "u", claims: nil), "nothing checks credentials")
        auth.allowAnonymous = false
        if case .refuse(let code, _) = decide(nil, nil) { XCTAssertEqual(code, .notAuthorized) } else { XCTFail() }
        if case .refuse(let code, _) = decide("u", "x") { XCTAssertEqual(code, .notAuthorized) } else { XCTFail() }
        XCTAssertEqual(decide(nil, nil, cert: "car-5"), .accept(username: "car-5", claims: nil), "certificate identity")

        auth.passwords = try PasswordFile(text: Self.mosquittoLine, path: "pw")
        XCTAssertEqual(decide("alice", "secret"), .accept(username: "alice", claims: nil))
        for (u, p) in [("alice", "wrong"), ("bob", "secret")] as [(String, String)] {
            if case .refuse(let code, _) = decide(u, p) { XCTAssertEqual(code, .badUserNameOrPassword) } else { XCTFail() }
        }
        if case .refuse(let code, _) = decide("alice", nil) { XCTAssertEqual(code, .badUserNameOrPassword) } else { XCTFail() }

        auth.jwt = try JWTVerifier(secret: Array("k".utf8))
        let token = TokenMaker.hs256(["sub": "car-3", "client_id": "car-3", "exp": now + 60], secret: "k")
        if case .accept(let name, let claims) = decide("ignored", token, client: "car-3") {
            XCTAssertEqual(name, "car-3")
            XCTAssertEqual(claims?.clientId, "car-3")
        } else { XCTFail("good token") }
        if case .refuse(let code, _) = decide("x", token, client: "car-4") { XCTAssertEqual(code, .notAuthorized) } else { XCTFail() }
        let expired = TokenMaker.hs256(["sub": "car-3", "exp": now - 600], secret: "k")
        if case .refuse(let code, let why) = decide("x", expired, client: "car-3") {
            XCTAssertEqual(code, .badUserNameOrPassword)
            XCTAssertTrue(why.contains("expired"), why)
        } else { XCTFail() }
        XCTAssertEqual(decide("alice", "secret"), .accept(username: "alice", claims: nil), "password file still works")
        let dotted = try XCTUnwrap(PasswordFile.makeLine(user: "dot", password: Array("ab.cd.ef".utf8), iterations: 10))
        auth.passwords = try PasswordFile(text: dotted, path: "pw")
        XCTAssertEqual(decide("dot", "ab.cd.ef"), .accept(username: "dot", claims: nil), "a token-shaped password")
    }
}

private extension Result {
    var failure: Failure? { if case .failure(let f) = self { return f }; return nil }
}
