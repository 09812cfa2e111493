// SPDX-License-Identifier: LGPL-2.1-or-later
/* GnuTLS on non-blocking sockets; see tls.h. The push function never blocks: ciphertext
 * goes to an output buffer that the owner flushes when the socket is writable, and the
 * owner stops producing while that buffer is above its high-water mark. */

#include <arpa/inet.h>
#include <assert.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "buffer.h"
#include "crypto-util.h"
#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "string-util.h"
#include "tls.h"

#define TLS_READ_SIZE (256 * 1024)
#define TLS_FLUSH_THRESHOLD (128 * 1024)
#define TLS_HOLD_MAX 32
/* Writes below this size are corked: an HTTP head written field by field, a chunk size line,
 * the small HTTP/2 frames of many streams all leave in one record at the next flush, instead
 * of one record (and its AEAD setup and 22 bytes) each. Larger writes go straight to records,
 * after what is corked, so bulk data is never copied into the cork buffer. */
#define TLS_CORK_BELOW 4096
#define TLS_CORK_MAX (64 * 1024)

struct TlsConn {
        int fd;
        gnutls_session_t session; /* NULL: plaintext */
        bool pinned;            /* client: pin[] is the only trust anchor */
        uint8_t pin[32];
        char *host;             /* client: the name or address dialled */

        uint8_t *in;
        size_t in_off, in_len;
        EdgeInput edge;         /* edge-triggered owners: the socket may hold bytes not read yet */

        uint8_t *out;
        size_t out_off, out_len, out_cap;
        int write_error;
        uint64_t sent;          /* bytes the socket took, ever */
        bool corked;
        bool blocked;           /* the last send() found the socket full */

        gnutls_packet_t packet;
        gnutls_packet_t held[TLS_HOLD_MAX]; /* records handed out and still in use */
        unsigned n_held;
        bool hold;
        char error[256];
};

static int set_err(TlsConn *c, int r, const char *what, int gnutls_error) {
        snprintf(c->error, sizeof(c->error), "%s: %s", what, gnutls_strerror(gnutls_error));
        return r;
}

const char *tls_conn_error(TlsConn *c) {
        assert(c);
        return c->error[0] ? c->error : "unknown error";
}

int tls_conn_fd(TlsConn *c) {
        assert(c);
        return c->fd;
}

bool tls_conn_is_tls(TlsConn *c) {
        assert(c);
        return c->session != NULL;
}

int tls_conn_exporter(TlsConn *c, const char *label, const char *context, uint8_t *ret, size_t n) {
        assert(c);
        assert(label);
        assert(context);
        assert(ret);

        if (!c->session)
                return -EOPNOTSUPP;
        if (gnutls_prf_rfc5705(c->session, strlen(label), label, strlen(context), context, n, (char *) ret) < 0)
                return -EIO;
        return 0;
}

static int out_reserve(TlsConn *c, size_t n) {
        return buffer_reserve(&c->out, &c->out_off, c->out_len, &c->out_cap, n);
}

/* Turns what is corked into records in the output buffer. */
static int uncork(TlsConn *c) {
        ssize_t n;

        if (!c->corked)
                return 0;
        c->corked = false;
        do
                n = gnutls_record_uncork(c->session, 0);
        while (n == GNUTLS_E_INTERRUPTED);
        if (n < 0) {
                if (c->write_error)
                        return c->write_error;
                return c->write_error = set_err(c, -EPROTO, "TLS send", (int) n);
        }
        return 0;
}

int tls_conn_flush(TlsConn *c) {
        assert(c);
        if (c->write_error)
                return c->write_error;
        if (uncork(c) < 0)
                return c->write_error;
        while (c->out_len > 0) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                c->blocked = true;
                                return -EAGAIN;
                        }
                        snprintf(c->error, sizeof(c->error), "send: %m");
                        return c->write_error = -errno;
                }
                c->out_off += (size_t) n;
                c->out_len -= (size_t) n;
                c->sent += (uint64_t) n;
        }
        c->out_off = 0;
        c->blocked = false;
        return 0;
}

uint64_t tls_conn_sent(TlsConn *c) {
        assert(c);
        return c->sent;
}

static bool buffered(TlsConn *c) {
        return c->session && (c->in_len > 0 || gnutls_record_check_pending(c->session) > 0);
}

void tls_conn_edge(TlsConn *c, uint32_t revents) {
        assert(c);
        edge_input_event(&c->edge, revents);
}

bool tls_conn_readable(TlsConn *c) {
        assert(c);
        return c->edge.readable || buffered(c);
}

size_t tls_conn_pending(TlsConn *c) {
        assert(c);
        return c->out_len + (c->corked ? gnutls_record_check_corked(c->session) : 0);
}

static int queue(TlsConn *c, const void *p, size_t n) {
        int r = out_reserve(c, n);
        if (r < 0)
                return r;
        memcpy(c->out + c->out_off + c->out_len, p, n);
        c->out_len += n;
        if (c->out_len >= TLS_FLUSH_THRESHOLD && !c->blocked) {
                r = tls_conn_flush(c);
                if (r < 0 && r != -EAGAIN)
                        return r;
        }
        return 0;
}

static ssize_t vec_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt) {
        TlsConn *c = p;
        size_t total = 0;

        for (int i = 0; i < iovcnt; i++)
                total += iov[i].iov_len;
        if (out_reserve(c, total) < 0) {
                gnutls_transport_set_errno(c->session, ENOMEM);
                return -1;
        }
        for (int i = 0; i < iovcnt; i++) {
                memcpy(c->out + c->out_off + c->out_len, iov[i].iov_base, iov[i].iov_len);
                c->out_len += iov[i].iov_len;
        }
        /* Records leave in large send()s while they are made -- unless the socket was full at
         * the last try: then the owner flushes when it says it has room (a send() per record
         * into a full socket made six failed calls per 256 KiB moved). */
        if (c->out_len >= TLS_FLUSH_THRESHOLD && !c->blocked)
                (void) tls_conn_flush(c); /* errors surface at the owner's next flush */
        return (ssize_t) total;
}

/* One recv() into the input buffer. */
static ssize_t socket_read(TlsConn *c) {
        ssize_t n;

        do
                n = recv(c->fd, c->in, TLS_READ_SIZE, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        edge_input_read(&c->edge, n, TLS_READ_SIZE);
        return n;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *data, size_t size) {
        TlsConn *c = p;
        size_t k;

        if (c->in_len == 0) {
                ssize_t n = socket_read(c);
                if (n < 0) {
                        gnutls_transport_set_errno(c->session, errno);
                        return -1;
                }
                if (n == 0)
                        return 0;
                c->in_off = 0;
                c->in_len = (size_t) n;
        }
        k = MIN(size, c->in_len);
        memcpy(data, c->in + c->in_off, k);
        c->in_off += k;
        c->in_len -= k;
        return (ssize_t) k;
}

static int pull_timeout(gnutls_transport_ptr_t p, unsigned ms) {
        TlsConn *c = p;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

        if (c->in_len > 0)
                return 1;
        /* Never wait: the event loop does the waiting. */
        return poll(&pfd, 1, 0);
}

static int session_setup(TlsConn *c, unsigned flags, gnutls_certificate_credentials_t creds) {
        const char *err_pos = NULL;
        int r;

        r = gnutls_init(&c->session, flags | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
        if (r < 0)
                return set_err(c, -ENOMEM, "gnutls_init", r);
        /* The system's priority string, minus protocol versions older than TLS 1.2. */
        r = gnutls_set_default_priority_append(c->session, "-VERS-TLS1.1:-VERS-TLS1.0", &err_pos, 0);
        if (r < 0)
                return set_err(c, -EINVAL, "priority", r);
        r = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, creds);
        if (r < 0)
                return set_err(c, -EINVAL, "credentials", r);
        gnutls_transport_set_ptr(c->session, c);
        gnutls_transport_set_vec_push_function(c->session, vec_push);
        gnutls_transport_set_pull_function(c->session, pull);
        gnutls_transport_set_pull_timeout_function(c->session, pull_timeout);
        gnutls_handshake_set_timeout(c->session, 0); /* the owner's timer bounds it */
        return 0;
}

/* The constructors' shared part. Takes ownership of fd, also on failure. With creds, a GnuTLS
 * session in the role flags names; without, plaintext. */
static int conn_new(int fd, unsigned flags, gnutls_certificate_credentials_t creds, TlsConn **ret) {
        _cleanup_(tls_conn_freep) TlsConn *c = NULL;
        int r;

        assert(fd >= 0);
        assert(ret);

        c = new0(TlsConn, 1);
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->fd = fd;
        c->in = malloc(TLS_READ_SIZE);
        if (!c->in)
                return -ENOMEM;
        if (creds) {
                r = session_setup(c, flags, creds);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int tls_conn_new_server(int fd, gnutls_certificate_credentials_t creds, TlsConn **ret) {
        TlsConn *c;
        int r;

        assert(ret);

        r = conn_new(fd, GNUTLS_SERVER, creds, &c);
        if (r < 0)
                return r;
        if (c->session)
                gnutls_certificate_server_set_request(c->session, GNUTLS_CERT_IGNORE);
        *ret = c;
        return 0;
}

int tls_conn_set_alpn(TlsConn *c, const char *const *protocols, size_t n) {
        gnutls_datum_t d[4];

        assert(c);
        assert(protocols || n == 0);

        if (!c->session)
                return 0;
        if (n > ELEMENTSOF(d))
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                d[i] = (gnutls_datum_t) { (unsigned char *) protocols[i], (unsigned) strlen(protocols[i]) };
        return gnutls_alpn_set_protocols(c->session, d, (unsigned) n, GNUTLS_ALPN_SERVER_PRECEDENCE) < 0 ? -EINVAL : 0;
}

bool tls_conn_alpn_is(TlsConn *c, const char *protocol) {
        gnutls_datum_t d = {};

        assert(c);
        assert(protocol);

        if (!c->session || gnutls_alpn_get_selected_protocol(c->session, &d) < 0)
                return false;
        return d.size == strlen(protocol) && memcmp(d.data, protocol, d.size) == 0;
}

static bool is_ip_address(const char *host) {
        uint8_t buf[16];
        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int tls_conn_new_client(int fd, gnutls_certificate_credentials_t creds, const char *host, const uint8_t *pin,
                        TlsConn **ret) {
        _cleanup_(tls_conn_freep) TlsConn *c = NULL;
        int r;

        assert(host);
        assert(ret);

        r = conn_new(fd, GNUTLS_CLIENT, creds, &c);
        if (r < 0)
                return r;
        if (pin) {
                c->pinned = true;
                memcpy(c->pin, pin, sizeof(c->pin));
        }
        c->host = strdup(host);
        if (!c->host)
                return -ENOMEM;
        if (c->session) {
                if (!is_ip_address(host)) {
                        r = gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, host, strlen(host));
                        if (r < 0)
                                return set_err(c, -EINVAL, "server name", r);
                }
                /* Chain and name (or IP SAN) are checked inside the handshake, which then fails
                 * with a verification error rather than continuing. GnuTLS keeps the pointer, not
                 * a copy: ours, which lives as long as the session (the caller's went with a
                 * reload in the middle of a handshake: a use-after-free ASan caught). */
                if (!pin)
                        gnutls_session_set_verify_cert(c->session, c->host, 0);
        }
        *ret = TAKE_PTR(c);
        return 0;
}

TlsConn *tls_conn_free(TlsConn *c) {
        if (!c)
                return NULL;
        tls_conn_release(c);
        if (c->packet)
                gnutls_packet_deinit(c->packet);
        if (c->session)
                gnutls_deinit(c->session);
        safe_close(c->fd);
        free(c->in);
        free(c->out);
        free(c->host);
        free(c);
        return NULL;
}

bool tls_conn_handshake_wants_write(TlsConn *c) {
        assert(c);
        return c->out_len > 0 || (c->session && gnutls_record_get_direction(c->session) == 1);
}

static int check_pin(TlsConn *c);

int tls_conn_handshake(TlsConn *c) {
        int r;

        assert(c);

        if (!c->session)
                return 1;
        r = gnutls_handshake(c->session);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_WARNING_ALERT_RECEIVED ||
            r == GNUTLS_E_GOT_APPLICATION_DATA) {
                r = tls_conn_flush(c);
                return r == -EAGAIN ? 0 : r;
        }
        if (r < 0) {
                if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
                        gnutls_datum_t out = {};
                        unsigned status = gnutls_session_get_verify_cert_status(c->session);
                        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) >= 0) {
                                snprintf(c->error, sizeof(c->error), "server certificate rejected: %s",
                                         (const char *) out.data);
                                gnutls_free(out.data);
                        } else
                                set_err(c, 0, "server certificate rejected", r);
                        (void) tls_conn_flush(c);
                        return -EPERM;
                }
                (void) tls_conn_flush(c); /* deliver our alert if we can */
                set_err(c, 0, "TLS handshake failed", r);
                return r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR ? -ECONNRESET : -EPROTO;
        }
        /* Nothing is written on a pinned connection until the pin has been checked. */
        if (c->pinned) {
                r = check_pin(c);
                if (r < 0)
                        return r;
        }
        r = tls_conn_flush(c);
        if (r < 0 && r != -EAGAIN)
                return r;
        return 1;
}

int tls_cert_fingerprint(const gnutls_datum_t *der, uint8_t ret[static 32]) {
        assert(der);
        assert(ret);
        return sha256(der->data, der->size, ret);
}

static gnutls_x509_trust_list_t trust_list_free(gnutls_x509_trust_list_t l) {
        if (l)
                gnutls_x509_trust_list_deinit(l, 1);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_trust_list_t, trust_list_free);

static void crt_list_free(gnutls_x509_crt_t *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (l[i])
                        gnutls_x509_crt_deinit(l[i]);
}

/* The pin is the only trust anchor. A pin of the leaf is an exact identity: the handshake has
 * proven the server holds that certificate's key, so nothing else is asked of it. A pin of a
 * CA (or intermediate) sent in the chain must be where the chain verifies to, and then, as
 * with CAFile=, the certificate must name the host or IP address dialled and be fit for a TLS
 * server: a pinned CA may have signed certificates for other hosts. Some certificate of the
 * chain merely hashing to the pin proves nothing -- the CA certificate is public. */
static int check_pin(TlsConn *c) {
        _cleanup_(trust_list_freep) gnutls_x509_trust_list_t tl = NULL;
        gnutls_x509_crt_t chain[16] = {}, anchor = NULL;
        const gnutls_datum_t *certs;
        gnutls_datum_t out = {};
        size_t n_chain = 0;
        unsigned n = 0, status = 0, anchor_at = 0;
        uint8_t d[32];
        int r;

        certs = c->session ? gnutls_certificate_get_peers(c->session, &n) : NULL;
        if (!certs || n == 0) {
                snprintf(c->error, sizeof(c->error), "the server sent no certificate");
                return -EPERM;
        }
        if (tls_cert_fingerprint(&certs[0], d) >= 0 && memcmp(d, c->pin, 32) == 0)
                return 0;
        for (unsigned i = 1; i < n && anchor_at == 0; i++)
                if (tls_cert_fingerprint(&certs[i], d) >= 0 && memcmp(d, c->pin, 32) == 0)
                        anchor_at = i;
        if (anchor_at == 0) {
                snprintf(c->error, sizeof(c->error),
                         "no certificate of the server's chain is the one ServerFingerprint= pins (%u certificates)", n);
                return -EPERM;
        }

        /* The anchor alone is trusted; every other certificate sent may serve as an
         * intermediate, and must chain up to it with valid signatures. */
        r = gnutls_x509_trust_list_init(&tl, 0);
        if (r < 0)
                return set_err(c, -ENOMEM, "trust list", r);
        if (gnutls_x509_crt_init(&anchor) < 0)
                return -ENOMEM;
        r = gnutls_x509_crt_import(anchor, &certs[anchor_at], GNUTLS_X509_FMT_DER);
        if (r < 0) {
                gnutls_x509_crt_deinit(anchor);
                return set_err(c, -EPERM, "pinned certificate", r);
        }
        r = gnutls_x509_trust_list_add_cas(tl, &anchor, 1, 0); /* the list owns it now */
        if (r != 1) {
                gnutls_x509_crt_deinit(anchor);
                return set_err(c, -ENOMEM, "trust list", r < 0 ? r : GNUTLS_E_MEMORY_ERROR);
        }
        for (unsigned i = 0; i < n && n_chain < ELEMENTSOF(chain); i++) {
                if (i == anchor_at)
                        continue;
                if (gnutls_x509_crt_init(&chain[n_chain]) < 0) {
                        crt_list_free(chain, n_chain);
                        return -ENOMEM;
                }
                r = gnutls_x509_crt_import(chain[n_chain++], &certs[i], GNUTLS_X509_FMT_DER);
                if (r < 0) {
                        crt_list_free(chain, n_chain);
                        return set_err(c, -EPERM, "server certificate", r);
                }
        }
        gnutls_typed_vdata_st vdata[] = {
                { .type = GNUTLS_DT_DNS_HOSTNAME, .data = (unsigned char *) c->host },
                { .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *) GNUTLS_KP_TLS_WWW_SERVER },
        };
        r = gnutls_x509_trust_list_verify_crt2(tl, chain, (unsigned) n_chain, vdata, ELEMENTSOF(vdata), 0, &status,
                                               NULL);
        crt_list_free(chain, n_chain);
        if (r < 0)
                return set_err(c, -EPERM, "server certificate", r);
        if (status == 0)
                return 0;
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) >= 0) {
                snprintf(c->error, sizeof(c->error), "server certificate rejected against the pinned CA: %s",
                         (const char *) out.data);
                gnutls_free(out.data);
        } else
                snprintf(c->error, sizeof(c->error), "server certificate rejected against the pinned CA");
        return -EPERM;
}

char *tls_conn_describe(TlsConn *c) {
        char *d;
        assert(c);

        if (!c->session)
                return strdup("plaintext");
        d = gnutls_session_get_desc(c->session);
        if (d) {
                char *s = strdup(d);
                gnutls_free(d);
                return s;
        }
        return strdup("TLS");
}

void tls_conn_hold(TlsConn *c, bool hold) {
        assert(c);
        c->hold = hold;
}

bool tls_conn_can_hold(TlsConn *c) {
        assert(c);
        /* Plaintext is handed out from the input buffer, which the next read overwrites. */
        return c->hold && c->session && c->n_held < TLS_HOLD_MAX;
}

void tls_conn_release(TlsConn *c) {
        assert(c);
        assert(c->n_held <= TLS_HOLD_MAX);
        while (c->n_held > 0)
                gnutls_packet_deinit(c->held[--c->n_held]);
}

int tls_conn_recv(TlsConn *c, uint8_t **ret, size_t *ret_len) {
        ssize_t n;

        assert(c);
        assert(ret);
        assert(ret_len);

        if (!c->session) {
                /* Plaintext: the input buffer itself holds what we hand out. */
                n = socket_read(c);
                if (n < 0) {
                        if (errno == EAGAIN)
                                return -EAGAIN;
                        snprintf(c->error, sizeof(c->error), "recv: %m");
                        return -errno;
                }
                *ret = c->in;
                *ret_len = (size_t) n;
                return n > 0;
        }

        if (c->packet) {
                if (c->hold && c->n_held < TLS_HOLD_MAX)
                        c->held[c->n_held++] = c->packet;
                else
                        gnutls_packet_deinit(c->packet);
                c->packet = NULL;
        }
        for (;;) {
                /* The packet API hands out the decrypted record without copying it. */
                n = gnutls_record_recv_packet(c->session, &c->packet);
                if (n > 0) {
                        gnutls_datum_t d;
                        gnutls_packet_get(c->packet, &d, NULL);
                        *ret = d.data;
                        *ret_len = d.size;
                        return 1;
                }
                if (n == 0)
                        return 0;
                if (c->packet) {
                        gnutls_packet_deinit(c->packet);
                        c->packet = NULL;
                }
                switch (n) {
                case GNUTLS_E_AGAIN:
                        /* Also after a post-handshake message (a TLS 1.3 session ticket), with
                         * records still in our buffer: those need no event to be read. */
                        if (c->in_len > 0 || gnutls_record_check_pending(c->session) > 0)
                                continue;
                        return -EAGAIN;
                case GNUTLS_E_INTERRUPTED:
                case GNUTLS_E_WARNING_ALERT_RECEIVED:
                case GNUTLS_E_REHANDSHAKE:
                        continue;
                case GNUTLS_E_PREMATURE_TERMINATION:
                        return set_err(c, -ECONNRESET, "connection closed without close_notify", (int) n);
                case GNUTLS_E_PULL_ERROR:
                        return set_err(c, -ECONNRESET, "recv", (int) n);
                default:
                        return set_err(c, -EPROTO, "TLS", (int) n);
                }
        }
}

int tls_conn_send(TlsConn *c, const void *buf, size_t len) {
        const uint8_t *p = buf;

        assert(c);
        assert(buf || len == 0);

        if (c->write_error)
                return c->write_error;
        if (!c->session)
                return queue(c, buf, len);
        if (len < TLS_CORK_BELOW && (!c->corked || gnutls_record_check_corked(c->session) < TLS_CORK_MAX)) {
                if (!c->corked) {
                        gnutls_record_cork(c->session);
                        c->corked = true;
                }
        } else if (uncork(c) < 0)
                return c->write_error;
        while (len > 0) {
                ssize_t n = gnutls_record_send(c->session, p, len);
                if (n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n < 0) {
                        if (c->write_error)
                                return c->write_error;
                        return set_err(c, -EPROTO, "TLS send", (int) n);
                }
                p += n;
                len -= (size_t) n;
        }
        return c->write_error;
}

void tls_conn_bye(TlsConn *c) {
        assert(c);
        if (c->session && uncork(c) >= 0)
                (void) gnutls_bye(c->session, GNUTLS_SHUT_WR);
        (void) tls_conn_flush(c);
}

/* ---- credentials ---- */

static gnutls_certificate_credentials_t creds_free(gnutls_certificate_credentials_t c) {
        if (c)
                gnutls_certificate_free_credentials(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_certificate_credentials_t, creds_free);

int tls_server_credentials(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                           gnutls_certificate_credentials_t *ret, char **ret_error) {
        _cleanup_(creds_freep) gnutls_certificate_credentials_t creds = NULL;
        gnutls_datum_t cd = { (unsigned char *) cert_pem, (unsigned) cert_len };
        gnutls_datum_t kd = { (unsigned char *) key_pem, (unsigned) key_len };
        int r;

        assert(cert_pem);
        assert(key_pem);
        assert(ret);

        r = gnutls_certificate_allocate_credentials(&creds);
        if (r < 0)
                return -ENOMEM;
        r = gnutls_certificate_set_x509_key_mem2(creds, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0)
                return errorf(ret_error, -EINVAL, "Failed to load certificate and key: %s", gnutls_strerror(r));
        *ret = TAKE_PTR(creds);
        return 0;
}

int tls_server_credentials_from_files(const char *cert_file, const char *key_file,
                                      gnutls_certificate_credentials_t *ret, char **ret_error) {
        _cleanup_(creds_freep) gnutls_certificate_credentials_t creds = NULL;
        int r;

        assert(cert_file);
        assert(key_file);
        assert(ret);

        r = gnutls_certificate_allocate_credentials(&creds);
        if (r < 0)
                return -ENOMEM;
        r = gnutls_certificate_set_x509_key_file2(creds, cert_file, key_file, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0)
                return errorf(ret_error, r == GNUTLS_E_FILE_ERROR ? -ENOENT : -EINVAL,
                              "Failed to load certificate/key %s: %s", cert_file, gnutls_strerror(r));
        *ret = TAKE_PTR(creds);
        return 0;
}

int tls_client_credentials(const char *ca_file, gnutls_certificate_credentials_t *ret, char **ret_error) {
        _cleanup_(creds_freep) gnutls_certificate_credentials_t creds = NULL;
        int r;

        assert(ret);

        r = gnutls_certificate_allocate_credentials(&creds);
        if (r < 0)
                return -ENOMEM;
        if (ca_file)
                r = gnutls_certificate_set_x509_trust_file(creds, ca_file, GNUTLS_X509_FMT_PEM);
        else
                r = gnutls_certificate_set_x509_system_trust(creds);
        if (r <= 0 && ca_file)
                return errorf(ret_error, -EINVAL, "Failed to load CA certificates from %s: %s", ca_file,
                              gnutls_strerror(r == 0 ? GNUTLS_E_NO_CERTIFICATE_FOUND : r));
        *ret = TAKE_PTR(creds);
        return 0;
}

uint64_t tls_credentials_not_after(gnutls_certificate_credentials_t creds) {
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t der;
        time_t t = 0;

        if (!creds || gnutls_certificate_get_crt_raw(creds, 0, 0, &der) < 0)
                return 0;
        if (gnutls_x509_crt_init(&crt) >= 0 && gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) >= 0)
                t = gnutls_x509_crt_get_expiration_time(crt);
        if (crt)
                gnutls_x509_crt_deinit(crt);
        return t > 0 ? (uint64_t) t : 0;
}
