// OpenSSL 3 (libssl, libcrypto) through pkg-config `openssl`; Debian: libssl-dev.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// Macros Swift cannot import.
static inline long copenssl_set_min_proto(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
static inline long copenssl_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline long copenssl_set_mode(SSL *ssl, long m) { return SSL_set_mode(ssl, m); }
static inline int copenssl_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline long copenssl_set_num_tickets(SSL_CTX *ctx, size_t n) { return SSL_CTX_set_num_tickets(ctx, n); }

/// ALPN on the server: choose "mqtt" when the client offers it; a client that offers other
/// protocols only, or none, proceeds without ALPN (mosquitto does the same).
static int copenssl_alpn_select_mqtt(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                     const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char mqtt[] = { 4, 'm', 'q', 't', 't' };
    unsigned char *selected = NULL;
    unsigned char selectedLength = 0;
    if (SSL_select_next_proto(&selected, &selectedLength, mqtt, sizeof(mqtt), in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        *outlen = selectedLength;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}
static inline void copenssl_enable_mqtt_alpn(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, copenssl_alpn_select_mqtt, NULL);
}
static inline int copenssl_set_alpn_mqtt(SSL *ssl) {
    static const unsigned char mqtt[] = { 4, 'm', 'q', 't', 't' };
    return SSL_set_alpn_protos(ssl, mqtt, sizeof(mqtt));
}
static const unsigned long copenssl_xn_flag_rfc2253 = XN_FLAG_RFC2253;

/// A peer that closed TCP without close_notify: OpenSSL 3 reports it as an error; for us it is
/// an ordinary disconnect.
static inline int copenssl_is_unexpected_eof(void) {
    unsigned long e = ERR_peek_error();
    return e != 0 && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/// The first error on this thread's OpenSSL error queue, as text; clears the queue.
static inline unsigned long copenssl_error_string(char *buf, size_t len) {
    unsigned long e = ERR_get_error();
    if (e != 0) ERR_error_string_n(e, buf, len); else if (len > 0) buf[0] = 0;
    ERR_clear_error();
    return e;
}
#endif
