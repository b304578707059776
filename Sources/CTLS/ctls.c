#include "ctls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct ctls_context {
    SSL_CTX *ctx;
};

struct ctls_session {
    SSL *ssl;
    BIO *network_in;    // ciphertext from the peer, read by OpenSSL
    BIO *network_out;   // ciphertext written by OpenSSL, for the peer
    SSL_SESSION *ticket;
    int capped;         // offering only TLS 1.2, to resume a TLS 1.2 session
    char reason[256];
};

static void copy_error(char *error, size_t size, const char *prefix) {
    if (error == NULL || size == 0) return;
    unsigned long code = ERR_peek_last_error();
    const char *why = code ? ERR_reason_error_string(code) : NULL;
    snprintf(error, size, "%s%s%s", prefix, why ? ": " : "", why ? why : "");
    ERR_clear_error();
}

static int remember_ticket(SSL *ssl, SSL_SESSION *session) {
    ctls_session *owner = SSL_get_app_data(ssl);
    if (owner == NULL) return 0;
    // A capped connection the server did not resume negotiated 1.2 only because we offered
    // no more: its session is not kept, so the next connection offers TLS 1.3 again.
    if (owner->capped && !SSL_session_reused(ssl)) return 0;
    if (owner->ticket) SSL_SESSION_free(owner->ticket);
    owner->ticket = session;   // the reference OpenSSL hands over (returning 1 keeps it)
    return 1;
}

/* The certificates of a PEM bundle, or -1 when it cannot be read as PEM. OpenSSL loads a
   bundle that holds no certificate (an empty file, a key, CRLs only) without complaint: the
   server would start trusting nothing more than the system store. */
static int count_pem_certificates(const char *path) {
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL) return -1;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (infos == NULL) return -1;
    int count = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        if (sk_X509_INFO_value(infos, i)->x509 != NULL) count++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return count;
}

ctls_context *ctls_context_new(const char *ca_file, char *error, size_t error_size) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        copy_error(error, error_size, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        copy_error(error, error_size, "cannot load the system trust store");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca_file != NULL) {
        int certificates = count_pem_certificates(ca_file);
        if (certificates <= 0) {
            if (certificates == 0) ERR_clear_error();
            copy_error(error, error_size, certificates < 0 ? "cannot read TLS_CA_FILE as PEM"
                                                            : "TLS_CA_FILE holds no PEM certificate");
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    if (ca_file != NULL && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        copy_error(error, error_size, "cannot load TLS_CA_FILE");
        SSL_CTX_free(ctx);
        return NULL;
    }
    // Sessions are kept by the caller, per origin: OpenSSL hands each new one over.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, remember_ticket);
    ctls_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        SSL_CTX_free(ctx);
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    context->ctx = ctx;
    return context;
}

void ctls_context_free(ctls_context *context) {
    if (context == NULL) return;
    SSL_CTX_free(context->ctx);
    free(context);
}

static int is_ip_address(const char *host) {
    unsigned char address[16];
    return inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
}

ctls_session *ctls_session_new(ctls_context *context, const char *host, ctls_ticket *resume,
                               char *error, size_t error_size) {
    ERR_clear_error();
    ctls_session *session = calloc(1, sizeof *session);
    if (session == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    session->ssl = SSL_new(context->ctx);
    session->network_in = BIO_new(BIO_s_mem());
    session->network_out = BIO_new(BIO_s_mem());
    if (session->ssl == NULL || session->network_in == NULL || session->network_out == NULL) {
        copy_error(error, error_size, "cannot create a TLS session");
        BIO_free(session->network_in);
        BIO_free(session->network_out);
        SSL_free(session->ssl);
        free(session);
        return NULL;
    }
    // An empty input buffer means "wait for more", not end of stream.
    BIO_set_mem_eof_return(session->network_in, -1);
    SSL_set_bio(session->ssl, session->network_in, session->network_out);
    SSL_set_app_data(session->ssl, session);
    SSL_set_connect_state(session->ssl);
    int ok;
    if (is_ip_address(host)) {
        // No SNI for an address (RFC 6066 §3); the certificate must name the address.
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(session->ssl), host);
    } else {
        SSL_set_hostflags(session->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(session->ssl, host) == 1 && SSL_set1_host(session->ssl, host) == 1;
    }
    if (ok && resume != NULL) ok = SSL_set_session(session->ssl, (SSL_SESSION *)resume) == 1;
    // Resuming a TLS 1.2 session, a TLS 1.3 key share would be generated for nothing (an
    // X25519 key pair, most of the client's CPU in such a handshake): offer 1.2 only. That
    // session was negotiated while offering 1.3 (with the downgrade check), and a capped
    // connection that ends in a full handshake keeps nothing (see remember_ticket).
    if (ok && resume != NULL
        && SSL_SESSION_get_protocol_version((SSL_SESSION *)resume) == TLS1_2_VERSION) {
        ok = SSL_set_max_proto_version(session->ssl, TLS1_2_VERSION) == 1;
        session->capped = 1;
    }
    if (!ok) {
        copy_error(error, error_size, "cannot set the TLS peer name");
        ctls_session_free(session);
        return NULL;
    }
    return session;
}

void ctls_session_free(ctls_session *session) {
    if (session == NULL) return;
    SSL_set_app_data(session->ssl, NULL);
    SSL_free(session->ssl);   // frees both BIOs
    if (session->ticket) SSL_SESSION_free(session->ticket);
    free(session);
}

int ctls_feed(ctls_session *session, const void *bytes, size_t count) {
    if (count == 0) return 0;
    return BIO_write(session->network_in, bytes, (int)count) == (int)count ? 0 : -1;
}

static void record_failure(ctls_session *session, int code) {
    long verify = SSL_get_verify_result(session->ssl);
    unsigned long error = ERR_peek_last_error();
    if (verify != X509_V_OK) {
        snprintf(session->reason, sizeof session->reason, "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
    } else if (error != 0) {
        const char *why = ERR_reason_error_string(error);
        snprintf(session->reason, sizeof session->reason, "%s", why ? why : "TLS error");
    } else if (code == SSL_ERROR_SYSCALL) {
        snprintf(session->reason, sizeof session->reason, "unexpected end of the TLS stream");
    } else {
        snprintf(session->reason, sizeof session->reason, "TLS error %d", code);
    }
    ERR_clear_error();
}

int ctls_handshake(ctls_session *session) {
    ERR_clear_error();
    int result = SSL_do_handshake(session->ssl);
    if (result == 1) return CTLS_OK;
    int code = SSL_get_error(session->ssl, result);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return CTLS_WANT_MORE;
    record_failure(session, code);
    return CTLS_ERROR;
}

int ctls_write(ctls_session *session, const void *bytes, size_t count) {
    if (count == 0) return CTLS_OK;
    ERR_clear_error();
    size_t written = 0;
    int result = SSL_write_ex(session->ssl, bytes, count, &written);
    if (result == 1 && written == count) return CTLS_OK;
    record_failure(session, SSL_get_error(session->ssl, result));
    return CTLS_ERROR;
}

long ctls_read(ctls_session *session, void *buffer, size_t capacity) {
    ERR_clear_error();
    size_t count = 0;
    int result = SSL_read_ex(session->ssl, buffer, capacity, &count);
    if (result == 1) return (long)count;
    int code = SSL_get_error(session->ssl, result);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return CTLS_WANT_MORE;
    if (code == SSL_ERROR_ZERO_RETURN) return CTLS_CLOSED;
    record_failure(session, code);
    return CTLS_ERROR;
}

void ctls_shutdown(ctls_session *session) {
    ERR_clear_error();
    if (SSL_is_init_finished(session->ssl)) SSL_shutdown(session->ssl);
    ERR_clear_error();
}

int ctls_peer_closed(ctls_session *session) {
    return (SSL_get_shutdown(session->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}

size_t ctls_take_output(ctls_session *session, void *buffer, size_t capacity) {
    if (BIO_ctrl_pending(session->network_out) == 0) return 0;
    int count = BIO_read(session->network_out, buffer, (int)capacity);
    return count > 0 ? (size_t)count : 0;
}

const char *ctls_reason(ctls_session *session) {
    return session->reason[0] ? session->reason : "unknown TLS error";
}

int ctls_resumed(ctls_session *session) {
    return SSL_session_reused(session->ssl);
}

int ctls_capped(ctls_session *session) {
    return session->capped;
}

ctls_ticket *ctls_take_ticket(ctls_session *session) {
    SSL_SESSION *ticket = session->ticket;
    session->ticket = NULL;
    return (ctls_ticket *)ticket;
}

void ctls_ticket_free(ctls_ticket *ticket) {
    if (ticket) SSL_SESSION_free((SSL_SESSION *)ticket);
}

const char *ctls_version(ctls_session *session) {
    return SSL_get_version(session->ssl);
}

const char *ctls_library_version(void) {
    return OpenSSL_version(OPENSSL_VERSION);
}
