import Broker
import Foundation
import TOMLKit

// `[auth]`: reads the files it names at start-up, so a bad password file, ACL or key stops the
// start with an error naming the file (and the line, for the password file and the ACL).
// Relative paths are resolved against the configuration file's directory.

extension ConfigFile {
    private static let authKeys: Set<String> = [
        "allow_anonymous", "password_file", "jwt_secret", "jwt_public_key_file", "jwt_algorithm",
        "acl_file", "acl_default", "sys_readers",
    ]

    static func loadAuth(_ section: TOMLTable, path: String, into config: inout BrokerConfiguration) throws {
        func invalid(_ name: String, _ why: String) -> Error {
            Error(description: "\(path): invalid value for '\(name)' in [auth]: \(why)")
        }
        func string(_ name: String) throws -> String? {
            guard let v = section[name] else { return nil }
            guard let s = v.string, !s.isEmpty else { throw invalid(name, "expected a non-empty string") }
            return s
        }
        for name in section.keys where !authKeys.contains(name) {
            throw Error(description: "\(path): unknown key '\(name)' in [auth]")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolve(_ file: String) -> String {
            file.hasPrefix("/") ? file : base.appendingPathComponent(file).path
        }
        func read(_ name: String, _ file: String) throws -> String {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw Error(description: "\(path): '\(name)' in [auth]: cannot read \(file)")
            }
            return text
        }

        var auth = BrokerConfiguration.Auth()
        if let v = section["allow_anonymous"] {
            guard let b = v.bool else { throw invalid("allow_anonymous", "expected true or false") }
            auth.allowAnonymous = b
        }
        if let f = try string("password_file") {
            let file = resolve(f)
            auth.passwords = try PasswordFile(text: try read("password_file", file), path: file)
        }

        let secret = try string("jwt_secret")
        let keyFile = try string("jwt_public_key_file")
        let algorithmName = try string("jwt_algorithm")
        let algorithm = try algorithmName.map { name -> JWTVerifier.Algorithm in
            guard let a = JWTVerifier.Algorithm(rawValue: name) else { throw invalid("jwt_algorithm", "expected HS256, RS256 or ES256") }
            return a
        }
        switch (secret, keyFile) {
        case (nil, nil):
            if algorithm != nil { throw invalid("jwt_algorithm", "needs jwt_secret (HS256) or jwt_public_key_file (RS256, ES256)") }
        case (let s?, nil):
            guard algorithm ?? .hs256 == .hs256 else { throw invalid("jwt_algorithm", "jwt_secret is for HS256; RS256 and ES256 take jwt_public_key_file") }
            auth.jwt = try JWTVerifier(secret: Array(s.utf8))
        case (nil, let k?):
            guard let algorithm, algorithm != .hs256 else {
                throw invalid("jwt_algorithm", "jwt_public_key_file needs jwt_algorithm = \"RS256\" or \"ES256\"")
            }
            let file = resolve(k)
            do {
                auth.jwt = try JWTVerifier(algorithm: algorithm, publicKeyPEM: try read("jwt_public_key_file", file))
            } catch let e as JWTVerifier.KeyError {
                throw Error(description: "\(file): \(e.description)")
            }
        case (_?, _?):
            throw invalid("jwt_secret", "set jwt_secret or jwt_public_key_file, not both")
        }

        if let f = try string("acl_file") {
            let file = resolve(f)
            auth.acl = try ACL(text: try read("acl_file", file), path: file)
        }
        if let d = try string("acl_default") {
            guard auth.acl != nil else { throw invalid("acl_default", "needs acl_file") }
            guard d == "allow" || d == "deny" else { throw invalid("acl_default", "expected \"allow\" or \"deny\"") }
            auth.aclDefaultAllows = d == "allow"
        }
        if let v = section["sys_readers"] {
            guard let array = v.array else { throw invalid("sys_readers", "expected an array of user names") }
            var names: Set<String> = []
            for item in array {
                guard let s = item.string else { throw invalid("sys_readers", "expected an array of user names") }
                names.insert(s)
            }
            auth.sysReaders = names
        }
        config.auth = auth
    }
}
