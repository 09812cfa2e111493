// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl status --url: GET /status from an exit server's control port, over the same TLS
 * checks as the tunnel client (a CA file, a pinned certificate, or the system's CAs), with the
 * token from a file. Blocking, with one deadline for the whole exchange. */

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf-token.h"
#include "conf-url.h"
#include "ctl.h"
#include "encoding.h"
#include "http1.h"
#include "parse-util.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"
#include "tls.h"
#include "version.h"

#define REMOTE_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define REMOTE_RESPONSE_MAX (16 * 1024 * 1024)
#define REMOTE_STRUCTURES_MAX 100000u   /* '{' and '[' in an answer: ~50,000 clients */

/* Waits for events on fd until the deadline: 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline) {
        for (;;) {
                uint64_t now = now_usec();
                struct pollfd p = { .fd = fd, .events = events };
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) ((deadline - now + 999) / 1000));
                if (r > 0)
                        return 0;
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

static int dial(const TunnelURL *u, uint64_t deadline, int *ret_fd) {
        _cleanup_free_ SocketAddress *addrs = NULL;
        size_t n = 0, next = 0;
        int r, last = -EHOSTUNREACH;

        r = resolve_addresses(u->host, &addrs, &n);
        if (r < 0) {
                fprintf(stderr, "Cannot resolve %s: %s\n", u->host, resolve_strerror(r));
                return r;
        }
        for (;;) {
                bool connected = false;
                int err = 0;
                socklen_t len = sizeof(err);
                int fd = socket_connect_next(addrs, n, &next, u->port, &connected);

                if (fd < 0) {
                        if (fd != -EHOSTUNREACH)
                                last = fd;
                        break;
                }
                if (!connected) {
                        r = wait_fd(fd, POLLOUT, deadline);
                        if (r >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                                err = errno;
                        if (r < 0 || err != 0) {
                                last = r < 0 ? r : -err;
                                safe_close(fd);
                                if (r == -ETIMEDOUT)
                                        break;
                                continue;
                        }
                }
                *ret_fd = fd;
                return 0;
        }
        fprintf(stderr, "Cannot connect to %s port %u: %s\n", u->host, u->port, strerror(-last));
        return last;
}

/* Where the head ends and how long the body is (SIZE_MAX: until the close), found once. */
typedef struct Answer {
        size_t searched;        /* bytes looked at for the blank line */
        size_t head_len;        /* 0: not found yet */
        size_t body_len;
} Answer;

/* Whether buf (len bytes) holds a head with Content-Length and all of the body it announces.
 * Each byte is looked at once, whatever size the records come in. */
static bool complete(Answer *a, const char *buf, size_t len) {
        if (a->head_len == 0) {
                size_t from = a->searched >= 3 ? a->searched - 3 : 0;
                const char *end = memmem(buf + from, len - from, "\r\n\r\n", 4);
                _cleanup_(http_head_freep) HttpHead *h = NULL;
                const char *cl;
                unsigned n;

                a->searched = len;
                if (!end)
                        return false;
                a->head_len = (size_t) (end - buf) + 4;
                a->body_len = SIZE_MAX;
                if (http_head_parse(buf, a->head_len, false, HTTP_HEADERS_MAX_DEFAULT, &h) >= 0 &&
                    (cl = http_head_get(h, "content-length")) && parse_unsigned(cl, &n) >= 0)
                        a->body_len = n;
        }
        return a->body_len != SIZE_MAX && len - a->head_len >= a->body_len;
}

/* The whole response: what Content-Length announces, else until the server closes (with
 * close_notify: a cut answer is an error). */
static int exchange(TlsConn *c, const char *request, uint64_t deadline, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        Answer a = {};
        size_t len = 0;
        int r;

        for (;;) {
                if (now_usec() >= deadline)
                        goto timeout;
                r = tls_conn_handshake(c);
                if (r > 0)
                        break;
                if (r < 0) {
                        fprintf(stderr, "TLS handshake failed: %s\n", tls_conn_error(c));
                        return -ECONNABORTED;
                }
                r = wait_fd(tls_conn_fd(c), POLLIN | (tls_conn_handshake_wants_write(c) ? POLLOUT : 0), deadline);
                if (r < 0)
                        goto timeout;
        }
        r = tls_conn_send(c, request, strlen(request));
        if (r < 0)
                goto failed;
        while ((r = tls_conn_flush(c)) == -EAGAIN)
                if ((r = wait_fd(tls_conn_fd(c), POLLOUT, deadline)) < 0)
                        goto timeout;
        if (r < 0)
                goto failed;
        for (;;) {
                uint8_t *p;
                size_t n;

                /* Checked at each record too: a server that dribbles bytes never lets the socket
                 * run dry, and the wait below would never see the deadline. */
                if (now_usec() >= deadline)
                        goto timeout;
                r = tls_conn_recv(c, &p, &n);
                if (r == -EAGAIN) {
                        if ((r = wait_fd(tls_conn_fd(c), POLLIN, deadline)) < 0)
                                goto timeout;
                        continue;
                }
                if (r == 0)
                        break;
                if (r < 0)
                        goto failed;
                if (len + n > REMOTE_RESPONSE_MAX) {
                        fprintf(stderr, "The answer is larger than 16 MiB; not an inletsd exit server?\n");
                        return -EFBIG;
                }
                char *t = realloc(buf, len + n + 1);
                if (!t)
                        return -ENOMEM;
                buf = t;
                memcpy(buf + len, p, n);
                len += n;
                buf[len] = 0;
                if (complete(&a, buf, len))
                        break; /* all that Content-Length announced: no need to wait for the close */
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
timeout:
        fprintf(stderr, "No answer within %u s.\n", (unsigned) (REMOTE_TIMEOUT_USEC / USEC_PER_SEC));
        return -ETIMEDOUT;
failed:
        fprintf(stderr, "Connection failed: %s\n", tls_conn_error(c) ?: strerror(-r));
        return r;
}

/* The length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t utf8_len(const unsigned char *s) {
        size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
        uint32_t c;

        if (n == 0 || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
                return 0;
        c = n == 1 ? s[0] : s[0] & (0x7f >> n);
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = c << 6 | (s[i] & 0x3f);
        }
        if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (n == 4 && (c < 0x10000 || c > 0x10ffff)))
                return 0;
        return n;
}

/* What another machine sent goes to a terminal: no control character survives (C0, DEL, C1
 * such as CSI written as U+009B, the bidi overrides), nor a byte that is not UTF-8 (a Latin-1
 * terminal reads 0x9b as CSI). Each byte of what is dropped becomes '?'. */
static void sanitize(char *p) {
        unsigned char *s = (unsigned char *) p;

        while (s && *s) {
                size_t n = utf8_len(s);
                uint32_t c = 0;

                if (n == 2)
                        c = (uint32_t) (s[0] & 0x1f) << 6 | (s[1] & 0x3f);
                else if (n == 3)
                        c = (uint32_t) (s[0] & 0x0f) << 12 | (uint32_t) (s[1] & 0x3f) << 6 | (s[2] & 0x3f);
                if (n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7f)) || (n == 2 && c <= 0x9f) ||
                    (n == 3 && ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e ||
                                c == 0x200f || c == 0x061c))) {
                        for (size_t i = 0; i < MAX(n, (size_t) 1); i++)
                                s[i] = '?';
                        n = MAX(n, (size_t) 1);
                }
                s += n;
        }
}

static void sanitize_info(TunnelInfo *t) {
        char **strings[] = { &t->name, &t->role, &t->mode, &t->state, &t->config, &t->control, &t->url, &t->last_error };

        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                sanitize(*strings[i]);
        for (size_t i = 0; i < t->n_upstreams; i++)
                sanitize(t->upstreams[i]);
        for (size_t i = 0; i < t->n_cert_names; i++)
                sanitize(t->cert_names[i]);
        for (size_t i = 0; i < t->n_clients; i++) {
                sanitize(t->clients[i].id);
                sanitize(t->clients[i].address);
        }
}

/* The status line and body of what came: the tunnels in it, or an exit code. */
static int read_answer(const char *buf, size_t len, TunnelInfo **ret, size_t *ret_n) {
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *end = buf ? strstr(buf, "\r\n\r\n") : NULL;
        unsigned structures = 0;
        TunnelInfo *t;
        size_t n;

        if (!end || http_head_parse(buf, (size_t) (end - buf) + 4, false, HTTP_HEADERS_MAX_DEFAULT, &h) < 0) {
                fprintf(stderr, "The server's answer is not HTTP; is the URL an inletsd control port?\n");
                return EXIT_ERROR;
        }
        if (h->status == 401) {
                fprintf(stderr, "Permission denied: the server refused the token (401).\n");
                return EXIT_DENIED;
        }
        if (h->status == 404) {
                fprintf(stderr, "The server has no /status (404): an inletsd exit server older than this "
                                "inletsctl, or not inletsd.\n");
                return EXIT_ERROR;
        }
        if (h->status != 200) {
                _cleanup_free_ char *body = strndup(end + 4, 200);
                sanitize(body);
                fprintf(stderr, "The server answered %u: %s\n", h->status, body ?: "");
                return EXIT_ERROR;
        }
        /* json-c builds every object before we can look at one, some hundreds of bytes each: a
         * body of 16 MiB of "{}," would take gigabytes. A real answer has one object per tunnel
         * and per client. */
        for (const char *q = end + 4; *q; q++)
                if ((*q == '{' || *q == '[') && ++structures > REMOTE_STRUCTURES_MAX) {
                        fprintf(stderr, "The server's answer has more than %u objects and arrays; not a status.\n",
                                REMOTE_STRUCTURES_MAX);
                        return EXIT_ERROR;
                }
        o = json_tokener_parse(end + 4);
        if (!o || !json_object_is_type(o, json_type_array)) {
                fprintf(stderr, "The server's answer is not the JSON of a status.\n");
                return EXIT_ERROR;
        }
        n = json_object_array_length(o);
        t = calloc(n ?: 1, sizeof(TunnelInfo));
        if (!t)
                return EXIT_ERROR;
        for (size_t i = 0; i < n; i++)
                if (tunnel_info_from_json(json_object_array_get_idx(o, i), &t[i]) < 0) {
                        for (size_t k = 0; k < i; k++)
                                tunnel_info_done(&t[k]);
                        free(t);
                        fprintf(stderr, "The server's status has a member of the wrong type.\n");
                        return EXIT_ERROR;
                }
        for (size_t i = 0; i < n; i++)
                sanitize_info(&t[i]);
        *ret = t;
        *ret_n = n;
        return EXIT_OK;
}

int ctl_remote_status(TunnelInfo **ret, size_t *ret_n) {
        _cleanup_(tunnel_url_done) TunnelURL u = {};
        _cleanup_(tls_conn_freep) TlsConn *c = NULL;
        _cleanup_free_ char *err = NULL, *answer = NULL, *request = NULL;
        gnutls_certificate_credentials_t creds = NULL;
        Definition d = { .name = (char *) "--token-file" };
        uint8_t pin[32];
        uint64_t deadline = now_usec() + REMOTE_TIMEOUT_USEC;
        size_t len = 0;
        int fd = -1, r, ret_code = EXIT_ERROR;

        assert(ret);
        assert(ret_n);

        if (tunnel_url_parse(arg.url, &u) < 0) {
                fprintf(stderr, "--url: expected wss://HOST[:PORT] (or ws://), not '%s'\n", arg.url);
                return EXIT_USAGE;
        }
        if (!arg.token_file) {
                fprintf(stderr, "--url needs --token-file FILE: the server's token (never on the command line)\n");
                return EXIT_USAGE;
        }
        if (arg.fingerprint && arg.tls_ca) {
                fprintf(stderr, "--fingerprint and --tls-ca exclude each other\n");
                return EXIT_USAGE;
        }
        if (arg.fingerprint && (strncasecmp(arg.fingerprint, "sha256:", 7) != 0 ||
                                strlen(arg.fingerprint + 7) != 64 || unhexmem(arg.fingerprint + 7, pin, 32) < 0)) {
                fprintf(stderr, "--fingerprint: expected sha256: and 64 hex digits (as ServerFingerprint=)\n");
                return EXIT_USAGE;
        }
        if (!u.tls && (arg.fingerprint || arg.tls_ca)) {
                fprintf(stderr, "--fingerprint and --tls-ca are for wss:// URLs\n");
                return EXIT_USAGE;
        }
        if (!u.tls)
                fprintf(stderr, "Warning: %s is ws://: the token goes out unencrypted.\n", arg.url);
        d.token_file = (char *) arg.token_file;
        r = definition_load_token(&d, &err);
        d.token_file = NULL;
        if (r < 0) {
                fprintf(stderr, "%s\n", err ?: strerror(-r));
                return EXIT_ERROR;
        }
        r = asprintf(&request, "GET /status HTTP/1.1\r\nHost: %s%s%s:%u\r\nAuthorization: Bearer %s\r\n"
                               "User-Agent: inletsctl/%s\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                     strchr(u.host, ':') ? "[" : "", u.host, strchr(u.host, ':') ? "]" : "", u.port, d.token,
                     PROJECT_VERSION);
        explicit_bzero(d.token, strlen(d.token));
        d.token = mfree(d.token);
        if (r < 0)
                return EXIT_ERROR;
        if (u.tls) {
                r = tls_client_credentials(arg.fingerprint ? NULL : arg.tls_ca, &creds, &err);
                if (r < 0) {
                        fprintf(stderr, "%s\n", err ?: strerror(-r));
                        goto finish;
                }
        }
        if (dial(&u, deadline, &fd) < 0)
                goto finish;
        r = tls_conn_new_client(fd, creds, u.host, arg.fingerprint ? pin : NULL, &c);
        if (r < 0) {
                fprintf(stderr, "TLS setup failed: %s\n", strerror(-r));
                goto finish;
        }
        if (exchange(c, request, deadline, &answer, &len) < 0)
                goto finish;
        ret_code = read_answer(answer, len, ret, ret_n);
finish:
        if (request)
                explicit_bzero(request, strlen(request));
        c = tls_conn_free(c);
        if (creds)
                gnutls_certificate_free_credentials(creds);
        return ret_code;
}
