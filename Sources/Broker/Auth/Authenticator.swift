import MQTTCodec

/// Decides a CONNECT from its credentials (see `BrokerConfiguration.Auth`). In order:
/// 1. A certificate identity (set by TLS with use_identity_as_username/use_subject_as_username)
///    is the user name; no password is checked.
/// 2. No user name and no password: anonymous, accepted only when `allowAnonymous` (the
///    listener's resolved policy, `BrokerConfiguration.allowsAnonymous`, or a verified client
///    certificate) says so (else CONNACK 0x87 / v3 return code 5).
/// 3. A password shaped like a JWT (three base64url parts, the first decoding to a JSON header),
///    when JWT is configured: the token must verify and be within
///    `exp`/`nbf`; its `sub` (else the CONNECT user name) becomes the user name; a `client_id`
///    claim must equal the CONNECT client id (else 0x87 / 5).
/// 4. A password file: the user must be in it with that password.
/// 5. Otherwise, when nothing can check credentials, the client counts as anonymous (rule 2)
///    but keeps its user name. Bad credentials are CONNACK 0x86 / v3 return code 4.
enum Authenticator {
    enum Decision: Equatable {
        case accept(username: String?, claims: JWTClaims?)
        case refuse(ReasonCode, String)
    }

    static func decide(_ auth: BrokerConfiguration.Auth, allowAnonymous: Bool, username: String?, password: [UInt8]?,
                       clientId: String, certificateIdentity: String?, now: Int64) -> Decision {
        if let identity = certificateIdentity {
            return .accept(username: identity, claims: nil)
        }
        guard username != nil || password != nil else {
            return allowAnonymous ? .accept(username: nil, claims: nil)
                                  : .refuse(.notAuthorized, "anonymous clients are not allowed here")
        }
        let checksCredentials = auth.passwords != nil || auth.jwt != nil
        guard let password else {
            return checksCredentials ? .refuse(.badUserNameOrPassword, "user '\(username ?? "")' sent no password")
                                     : unchecked(allowAnonymous, username)
        }
        if let jwt = auth.jwt, JWTVerifier.looksLikeToken(password) {
            switch jwt.verify(password, now: now) {
            case .failure(.malformed) where auth.passwords != nil:
                break // a password that only looks like a token: try the password file
            case .failure(let why):
                return .refuse(.badUserNameOrPassword, "JWT refused: \(why)")
            case .success(let claims):
                if let bound = claims.clientId, bound != clientId {
                    return .refuse(.notAuthorized, "JWT is for client id '\(bound)', not '\(clientId)'")
                }
                guard let name = claims.subject ?? username else {
                    return .refuse(.badUserNameOrPassword, "JWT has no 'sub' and CONNECT has no user name")
                }
                return .accept(username: name, claims: claims)
            }
        }
        if let passwords = auth.passwords {
            guard let username, passwords.verify(user: username, password: password) else {
                return .refuse(.badUserNameOrPassword, "wrong user name or password for '\(username ?? "")'")
            }
            return .accept(username: username, claims: nil)
        }
        return checksCredentials ? .refuse(.badUserNameOrPassword, "password is not a valid JWT")
                                 : unchecked(allowAnonymous, username)
    }

    /// Nothing can check the credentials: they prove nothing, so the client counts as anonymous
    /// (but keeps its user name for the ACL).
    private static func unchecked(_ allowAnonymous: Bool, _ username: String?) -> Decision {
        allowAnonymous ? .accept(username: username, claims: nil)
                            : .refuse(.notAuthorized, "no password_file or JWT key to check credentials, and anonymous clients are not allowed here")
    }
}
