import COpenSSL
import CSystemShims

/// TLS over one non-blocking socket: OpenSSL reads and writes the fd itself; the loop calls
/// `handshake`, `read` and `write` when epoll says so and follows what each asks for next.
public final class TLSStream {
    private let ssl: OpaquePointer
    public let context: TLSContext
    public private(set) var isHandshakeComplete = false

    public enum Result {
        case done(Int)
        /// Call again when the socket is readable.
        case wantRead
        /// Call again when the socket is writable.
        case wantWrite
        /// The peer closed the TLS session (close_notify) or the socket.
        case closed
        case failed(TLSError)
    }

    /// `serverName` (client side) is sent as SNI and checked against the server's certificate.
    public init(context: TLSContext, fd: Int32, serverName: String? = nil) throws(TLSError) {
        guard let ssl = SSL_new(context.ctx) else { throw .openssl("SSL_new") }
        self.ssl = ssl
        self.context = context
        guard SSL_set_fd(ssl, fd) == 1 else { SSL_free(ssl); throw .openssl("SSL_set_fd") }
        // Partial writes let one SSL_write take part of a large chunk; the buffer may move between
        // retries because the write queue's arrays are not pinned. Released buffers: an idle
        // connection holds no 16 KiB+ record buffers (idle cars are most of a fleet); measured
        // in bench (f), RSS per idle TLS connection.
        _ = copenssl_set_mode(ssl, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS))
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            _ = copenssl_set_alpn_mqtt(ssl)
            if let name = serverName {
                _ = copenssl_set_tlsext_host_name(ssl, name)
                if context.configuration.verifyPeer { SSL_set1_host(ssl, name) }
            }
        }
    }

    deinit { SSL_free(ssl) }

    /// False until the first `handshake()` call (for a server: before the ClientHello, whose
    /// answer carries the expensive signature).
    public var hasStarted: Bool { SSL_in_before(ssl) == 0 }

    private func outcome(_ r: Int32, _ what: String) -> Result {
        let err = SSL_get_error(ssl, r)
        switch err {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let e = cshim_errno()
            ERR_clear_error()
            if r == 0 || e == ECONNRESET || e == EPIPE || e == 0 { return .closed }
            return .failed(TLSError("\(what): \(String(cString: strerror(e)))"))
        default:
            if err == SSL_ERROR_SSL && copenssl_is_unexpected_eof() != 0 {
                ERR_clear_error()
                return .closed
            }
            var buf = [CChar](repeating: 0, count: 256)
            let code = copenssl_error_string(&buf, buf.count)
            let verify = SSL_get_verify_result(ssl)
            var message = code == 0 ? "\(what) failed (SSL error \(err))" : "\(what): \(String(cString: buf))"
            if verify != X509_V_OK, let s = X509_verify_cert_error_string(verify) {
                message += " (certificate: \(String(cString: s)))"
            }
            return .failed(TLSError(message))
        }
    }

    public func handshake() -> Result {
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            isHandshakeComplete = true
            return .done(0)
        }
        return outcome(r, "TLS handshake")
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Result {
        var n = 0
        let r = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n)
        if r == 1 { return .done(n) }
        return outcome(r, "TLS read")
    }

    public func write(_ bytes: UnsafeRawBufferPointer) -> Result {
        var n = 0
        let r = SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &n)
        if r == 1 { return .done(n) }
        return outcome(r, "TLS write")
    }

    /// Decrypted bytes OpenSSL holds that the socket will not signal again.
    public var hasBufferedPlaintext: Bool { SSL_pending(ssl) > 0 }

    /// Sends close_notify (best effort, never blocks).
    public func shutdown() { _ = SSL_shutdown(ssl) }

    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }
    public var resumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The peer sent a certificate and it verified against the CA file.
    public var hasVerifiedPeerCertificate: Bool {
        guard SSL_get_verify_result(ssl) == X509_V_OK, let cert = SSL_get1_peer_certificate(ssl) else { return false }
        X509_free(cert)
        return true
    }

    /// The verified peer certificate's subject: its CN, or the whole subject in RFC 2253 form.
    public func peerIdentity(wholeSubject: Bool) -> String? {
        guard SSL_get_verify_result(ssl) == X509_V_OK, let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        guard let name = X509_get_subject_name(cert) else { return nil }
        if wholeSubject {
            guard let bio = BIO_new(BIO_s_mem()) else { return nil }
            defer { BIO_free(bio) }
            guard X509_NAME_print_ex(bio, name, 0, copenssl_xn_flag_rfc2253) >= 0 else { return nil }
            var out = [UInt8](repeating: 0, count: 1024)
            let n = BIO_read(bio, &out, Int32(out.count))
            return n > 0 ? String(decoding: out[0..<Int(n)], as: UTF8.self) : nil
        }
        var cn = [CChar](repeating: 0, count: 256)
        let n = X509_NAME_get_text_by_NID(name, NID_commonName, &cn, Int32(cn.count))
        return n > 0 ? String(cString: cn) : nil
    }
}
