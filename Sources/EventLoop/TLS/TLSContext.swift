import COpenSSL

/// A TLS failure, with OpenSSL's own words.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// The message plus the first queued OpenSSL error (the queue is cleared).
    static func openssl(_ what: String) -> TLSError {
        var buf = [CChar](repeating: 0, count: 256)
        let code = copenssl_error_string(&buf, buf.count)
        return TLSError(code == 0 ? what : "\(what): \(String(cString: buf))")
    }
}

/// What a TLS endpoint needs: files, versions, ciphers, and how to treat peer certificates.
public struct TLSConfiguration: Sendable, Equatable {
    public enum Version: String, Sendable { case tls12 = "tlsv1.2", tls13 = "tlsv1.3" }

    /// PEM certificate chain (leaf first) and its private key. Required on a server.
    public var certificateChainFile: String?
    public var privateKeyFile: String?
    /// PEM CA bundle that peer certificates must chain to. On a server, setting it asks clients for a certificate.
    public var caFile: String?
    /// Server: refuse clients without a valid certificate (mutual TLS).
    public var requireClientCertificate = false
    /// Client: check the server's certificate (and host name) against `caFile` or the system store.
    public var verifyPeer = true
    public var minimumVersion: Version = .tls12
    /// OpenSSL cipher list for TLS 1.2 and the TLS 1.3 ciphersuites; nil keeps OpenSSL's defaults.
    public var ciphers: String?
    public var ciphersuites: String?

    public init() {}
}

/// One `SSL_CTX`: immutable once made, shared by every connection of a listener (or client).
/// A reload makes a new context; connections keep the one they started with.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    public let isServer: Bool
    public let configuration: TLSConfiguration

    public init(server configuration: TLSConfiguration) throws(TLSError) {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw .openssl("SSL_CTX_new") }
        self.ctx = ctx
        self.isServer = true
        self.configuration = configuration
        try apply(configuration)
        guard let chain = configuration.certificateChainFile, let key = configuration.privateKeyFile else {
            throw TLSError("a TLS listener needs certfile and keyfile")
        }
        guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else { throw .openssl("certificate chain \(chain)") }
        guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else { throw .openssl("private key \(key)") }
        guard SSL_CTX_check_private_key(ctx) == 1 else { throw .openssl("\(key) does not match \(chain)") }
        if let ca = configuration.caFile {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else { throw .openssl("CA file \(ca)") }
            var mode = SSL_VERIFY_PEER
            if configuration.requireClientCertificate { mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT }
            SSL_CTX_set_verify(ctx, mode, nil)
            // Resumption with client certificates needs a session id context.
            var sid: [UInt8] = Array("turnpike".utf8)
            SSL_CTX_set_session_id_context(ctx, &sid, UInt32(sid.count))
        } else if configuration.requireClientCertificate {
            throw TLSError("require_certificate needs cafile to verify client certificates against")
        }
        // Session resumption: a server-side cache for TLS 1.2 ids and stateless tickets (TLS 1.2 and 1.3).
        _ = copenssl_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER))
        _ = copenssl_set_num_tickets(ctx, 2)
        copenssl_enable_mqtt_alpn(ctx)
    }

    public init(client configuration: TLSConfiguration) throws(TLSError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw .openssl("SSL_CTX_new") }
        self.ctx = ctx
        self.isServer = false
        self.configuration = configuration
        try apply(configuration)
        if let chain = configuration.certificateChainFile {
            guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else { throw .openssl("certificate chain \(chain)") }
            let key = configuration.privateKeyFile ?? chain
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else { throw .openssl("private key \(key)") }
        }
        if configuration.verifyPeer {
            if let ca = configuration.caFile {
                guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else { throw .openssl("CA file \(ca)") }
            } else {
                SSL_CTX_set_default_verify_paths(ctx)
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
    }

    private func apply(_ c: TLSConfiguration) throws(TLSError) {
        let version = c.minimumVersion == .tls13 ? TLS1_3_VERSION : TLS1_2_VERSION
        guard copenssl_set_min_proto(ctx, version) == 1 else { throw .openssl("minimum TLS version") }
        if let ciphers = c.ciphers, SSL_CTX_set_cipher_list(ctx, ciphers) != 1 { throw .openssl("ciphers '\(ciphers)'") }
        if let suites = c.ciphersuites, SSL_CTX_set_ciphersuites(ctx, suites) != 1 { throw .openssl("ciphersuites '\(suites)'") }
    }

    deinit { SSL_CTX_free(ctx) }
}
