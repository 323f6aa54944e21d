extension BrokerConfiguration {
    /// Authentication and authorization (`[auth]` in turnpike.toml). The files it names are loaded
    /// and checked by whoever builds the configuration, so a broker never starts with a bad one.
    public struct Auth: Sendable {
        /// Clients that prove no identity (no checked credentials, no verified client certificate)
        /// may connect; refused with CONNACK 0x87 / return code 5 when false. Unset (nil): only
        /// over loopback (`BrokerConfiguration.allowsAnonymous`); a listener may override it.
        public var allowAnonymous: Bool?
        /// Users and password hashes (`password_file`).
        public var passwords: PasswordFile?
        /// JWTs accepted as passwords (`jwt_secret` or `jwt_public_key_file` + `jwt_algorithm`).
        public var jwt: JWTVerifier?
        /// Publish/subscribe rules (`acl_file`).
        public var acl: ACL?
        /// What happens when no ACL rule matches (`acl_default`).
        public var aclDefaultAllows = false
        /// User names that may subscribe to `$SYS/…` (`sys_readers`); nil when the key is absent.
        public var sysReaders: Set<String>?

        public init() {}

        /// Whether publish and subscribe are checked at all. When false, every connection skips
        /// the checks (no per-connection state).
        public var isAuthorizationActive: Bool { acl != nil || sysReaders != nil }

        /// Whether deciding this CONNECT means hashing a password or verifying a JWT signature
        /// (work for the credential thread, not a loop).
        func checksCredentials(username: String?, password: [UInt8]?, certificateIdentity: String?) -> Bool {
            certificateIdentity == nil && password != nil && (passwords != nil || jwt != nil)
        }
    }
}
