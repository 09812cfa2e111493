// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP mode on the tunnel client; see httpupstream.h.
 *
 * An Exchange is one request stream from the tunnel; an UpConn one HTTP/1.1 connection to an
 * upstream (plain or TLS), busy with one exchange at a time or idle in the pool. The request
 * head is written when the connection is ready, and its body follows as DATA arrives (chunked
 * when its length is unknown); body bytes that come before are held, bounded by the stream
 * window. The response is parsed as it arrives and submitted head, body, trailers; reading
 * from the upstream stops while the stream holds enough. After a 101, both directions are
 * plain bytes. A connection goes back to the pool only when both messages ended cleanly and
 * the upstream did not say close.
 *
 * Memory: an exchange ends (exchange_fail(), freeing it and its connection) or lets go of its
 * connection (to the pool, or freed) deep inside the response path, called from the
 * connection's own io callback and from the stream's writable callback. Everything on that path
 * returns whether the two are still there and still together (bool, true: yes); a caller that
 * gets false touches neither again. */

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "http1.h"
#include "proxy-protocol.h"
#include "resolve.h"
#include "string-util.h"
#include "httpguard.h"
#include "httpupstream.h"
#include "log.h"
#include "macro.h"
#include "ratelimit.h"
#include "time-util.h"
#include "socket-util.h"
#include "tls.h"

#define OUT_HIGH_WATER (256 * 1024)
#define MAX_IDLE_PER_UPSTREAM 256

typedef struct UpConn UpConn;
typedef struct Exchange Exchange;

typedef struct Target {
        HttpUpstream u;
        SocketAddress *addrs;
        size_t n_addrs;
        HttpUpstreams *owner;
        ResolveQuery *query;    /* its name, being resolved: exchanges for it wait (parked) */
        uint64_t asked;         /* CLOCK_MONOTONIC µs of the last question */
        bool failing;           /* the last answer was an error: said once */
} Target;

/* The Upstream= table, shared by the exchanges and connections made with it: a reload makes
 * a new one, and the old one goes when the last of those is done. */
typedef struct Targets {
        unsigned refs;
        Target *t;
        size_t n;
} Targets;

struct HttpUpstreams {
        Manager *manager;
        Targets *targets;
        HttpGuard *guard;       /* BasicAuthFile=, BearerTokenFile=, RateLimit= */
        uint64_t refused;       /* requests this client's own AllowFrom=/DenyFrom= refused */
        RateLimit refused_log;
        gnutls_certificate_credentials_t creds;
        UpConn *conns;
        Exchange *parked;       /* waiting for their target's name to be resolved */
        size_t waiting_body;    /* body bytes held by exchanges waiting for a password check */
};

/* Body bytes a request may send before its credentials are checked: they wait unacknowledged
 * and count against the session's buffer budget, so an unauthenticated visitor must not hold
 * much of it (past either bound: 503 and the stream reset). */
#define WAIT_BODY_MAX (256 * 1024)
#define WAIT_BODY_TOTAL (8 * 1024 * 1024)

typedef enum UpState {
        UP_CONNECTING,
        UP_HANDSHAKE,
        UP_BUSY,
        UP_IDLE,
} UpState;

struct UpConn {
        HttpUpstreams *owner;
        UpConn *prev, *next;
        Targets *targets;
        size_t target;
        UpState state;
        int fd;                 /* while connecting */
        size_t next_addr;
        TlsConn *conn;
        sd_event_source *io, *timer;
        HttpMsgParser parser;
        Exchange *x;
        bool reusable;          /* the response allowed keep-alive */
        bool reused;            /* taken from the pool for this exchange */
        /* ProxyProtocol=: the PROXY header written first, and the public connection it names
         * (the pool gives this upstream connection to requests of that one only) */
        uint8_t proxy_header[PROXY_HEADER_WRITE_MAX];
        size_t proxy_len;
        char *visitor_key;
        uint32_t io_events;     /* as last given to the io source */
        uint64_t started;       /* CLOCK_MONOTONIC µs: the dial, for the metrics */
};

struct Exchange {
        HttpUpstreams *owner;
        MuxStream *s;
        UpConn *uc;
        HttpHead *req;          /* until its head is written */
        Targets *targets;
        size_t target;
        uint8_t *pre;           /* body bytes that came before the connection was ready */
        size_t pre_len, unacked;
        size_t pre_held;        /* of pre_len: bytes of an upgrade not answered yet, not in unacked */
        unsigned refused_status; /* an upgrade answered with a 2xx instead of 101 */
        bool has_body, chunked, body_end, body_end_written, head_written;
        bool head_request, upgrade, upgraded, interim, responded, resp_done, resp_no_body, retried;
        HttpHead *end_trailers;
        uint8_t proxy_header[PROXY_HEADER_WRITE_MAX]; /* ProxyProtocol=: see UpConn */
        size_t proxy_len;
        char *visitor_key;
        HttpGuardWait *wait;    /* a password check under way: no connection yet */
        bool parked;            /* in owner->parked: its target's name is being resolved */
        size_t waiting_body;    /* of pre_len: bytes that came while a password check waited */
        Exchange *prev, *next;  /* in owner->parked */
};

static const Definition *def(HttpUpstreams *u) {
        return u->manager->def;
}

static Targets *targets_ref(Targets *t) {
        t->refs++;
        return t;
}

static Targets *targets_unref(Targets *t) {
        if (!t || --t->refs > 0)
                return NULL;
        for (size_t i = 0; i < t->n; i++) {
                resolve_query_cancel(t->t[i].query);
                http_upstream_done(&t->t[i].u);
                free(t->t[i].addrs);
        }
        free(t->t);
        free(t);
        return NULL;
}

#define TARGET(x) (&(x)->targets->t[(x)->target])

/* These return false when the exchange ended or left the connection: both may be gone. */
static bool up_process(UpConn *uc) __attribute__((warn_unused_result));
static bool up_read(UpConn *uc) __attribute__((warn_unused_result));
static bool up_connected(UpConn *uc) __attribute__((warn_unused_result));
static bool exchange_maybe_done(Exchange *x) __attribute__((warn_unused_result));
/* May end (free) x. */
static void exchange_start(Exchange *x);
static void target_resolve(Target *t);
static const MuxStreamOps exchange_ops;

/* ---- replies of our own ---- */

static void respond_error(MuxStream *s, unsigned status, const char *format, ...) _printf_(3, 4);
static void respond_error(MuxStream *s, unsigned status, const char *format, ...) {
        HttpHeader h[] = { { (char *) "content-type", (char *) "text/plain; charset=utf-8" },
                           { (char *) "cache-control", (char *) "no-store" } };
        char body[512];
        va_list ap;
        size_t n;

        assert(s);

        va_start(ap, format);
        n = http_format_line(body, sizeof(body), format, ap);
        va_end(ap);
        log_info("HTTP %u for the exit server: %.*s", status, (int) n - 1, body);
        mux_stream_set_ops(s, NULL, NULL); /* what else arrives is dropped */
        if (mux_respond(s, status, h, ELEMENTSOF(h), false) < 0 || mux_stream_write(s, body, n) < 0 ||
            mux_stream_end(s, NULL, 0) < 0)
                mux_stream_reset(s);
}

/* An answer of the access rules (401, 429, 503): not an error of ours, so logged at debug
 * level; the visitor may try as often as it likes. */
static void respond_verdict(MuxStream *s, const HttpVerdict *v) {
        char retry[16];
        HttpHeader h[] = { { (char *) "content-type", (char *) "text/plain; charset=utf-8" },
                           { (char *) "cache-control", (char *) "no-store" },
                           { (char *) (v->status == 401 ? "www-authenticate" : "retry-after"),
                             v->status == 401 ? (char *) v->challenge : retry } };
        const char *body = v->status == 403 ? "Not allowed from your address.\n"
                         : v->status == 401 ? "Authentication required.\n"
                         : v->status == 429 ? "Too many requests; try again later.\n"
                                            : "Busy checking passwords; try again in a second.\n";

        snprintf(retry, sizeof(retry), "%u", v->retry_after_sec);
        log_debug("HTTP %u for the exit server (HTTP access rules).", v->status);
        mux_stream_set_ops(s, NULL, NULL);
        if (mux_respond(s, v->status, h, ELEMENTSOF(h) - (v->status == 403), false) < 0 || mux_stream_write(s, body, strlen(body)) < 0 ||
            mux_stream_end(s, NULL, 0) < 0)
                mux_stream_reset(s);
}

/* The visitor's address as the exit server saw it: the last entry of X-Forwarded-For, which
 * the exit server appends itself (anything before it came from elsewhere); "" without one. */
static const char *visitor_of(const HttpHead *h, char *buf, size_t size) {
        const char *xff = http_head_get(h, "x-forwarded-for"), *last;
        size_t n;

        if (!xff)
                return "";
        last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        last += strspn(last, " \t");
        n = strcspn(last, " \t");
        if (n == 0 || n >= size)
                return "";
        memcpy(buf, last, n);
        buf[n] = 0;
        return buf;
}

/* ---- connections ---- */

static UpConn *up_free(UpConn *uc) {
        if (!uc)
                return NULL;
        if (uc->x)
                uc->x->uc = NULL;
        LIST_REMOVE(uc->owner->conns, uc);
        sd_event_source_disable_unref(uc->io);
        sd_event_source_disable_unref(uc->timer);
        safe_close(uc->fd);
        tls_conn_free(uc->conn);
        http_msg_parser_done(&uc->parser);
        targets_unref(uc->targets);
        free(uc->visitor_key);
        free(uc);
        return NULL;
}

static Exchange *exchange_free(Exchange *x) {
        if (!x)
                return NULL;
        if (x->uc) {
                x->uc->x = NULL;
                up_free(x->uc); /* cut mid-exchange: the connection's state is unknown */
        }
        http_guard_cancel(x->wait);
        x->owner->waiting_body -= x->waiting_body;
        if (x->parked)
                LIST_REMOVE(x->owner->parked, x);
        http_head_free(x->req);
        http_head_free(x->end_trailers);
        targets_unref(x->targets);
        free(x->pre);
        free(x->visitor_key);
        free(x);
        return NULL;
}

/* The exchange ends here: stream reset (or answered with an error page), memory freed. */
static void exchange_fail(Exchange *x, unsigned status, const char *format, ...) _printf_(3, 4);
static void exchange_fail(Exchange *x, unsigned status, const char *format, ...) {
        char msg[384];
        va_list ap;

        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        if (x->s) {
                if (!x->responded && status > 0)
                        respond_error(x->s, status, "%s", msg);
                else {
                        log_debug("HTTP upstream, request reset: %s", msg);
                        mux_stream_reset(x->s);
                }
                x->s = NULL;
        }
        exchange_free(x);
}

/* sd-event re-arms an EPOLLET source with epoll_ctl() on every call, changed or not. */
static void up_set_io(UpConn *uc, uint32_t ev) {
        if (ev != uc->io_events && sd_event_source_set_io_events(uc->io, ev) >= 0)
                uc->io_events = ev;
}

/* Connected sockets are edge-triggered with EPOLLIN always on (as in httpfront.c): no socket
 * the loop has not come to yet is polled again on each epoll_wait(), and no epoll_ctl() goes
 * with each exchange. */
static void up_set_events(UpConn *uc) {
        Exchange *x = uc->x;
        uint32_t ev = EPOLLIN | EPOLLRDHUP | EPOLLET;

        if (!uc->io)
                return;
        if (uc->state == UP_BUSY) {
                /* A whole request (or bytes of an upgraded connection) goes out now: waiting
                 * for EPOLLOUT would cost two epoll_ctl() and a round through the loop. A body
                 * still coming collects until the socket says it is writable. */
                if (tls_conn_pending(uc->conn) > 0 && x && (x->body_end_written || x->upgraded))
                        (void) tls_conn_flush(uc->conn); /* errors: up_process() hears of them */
                if (tls_conn_pending(uc->conn) > 0)
                        ev |= EPOLLOUT;
        } else if (uc->state != UP_IDLE)
                return;
        up_set_io(uc, ev);
}

/* Back to the pool, or closed. */
static void up_release(UpConn *uc) {
        HttpUpstreams *u = uc->owner;
        unsigned idle = 0;

        assert(uc->state == UP_BUSY);

        if (uc->x)
                uc->x->uc = NULL;
        uc->x = NULL;
        for (UpConn *i = u->conns; i; i = i->next)
                if (i->state == UP_IDLE && i->targets == uc->targets && i->target == uc->target)
                        idle++;
        if (!uc->reusable || uc->targets != u->targets || idle >= MAX_IDLE_PER_UPSTREAM ||
            tls_conn_pending(uc->conn) > 0 || tls_conn_readable(uc->conn)) {
                up_free(uc);
                return;
        }
        uc->state = UP_IDLE;
        http_msg_parser_next(&uc->parser);
        (void) sd_event_source_set_time_relative(uc->timer, def(u)->idle_timeout_usec);
        (void) sd_event_source_set_enabled(uc->timer, SD_EVENT_ONESHOT);
        up_set_events(uc);
}

/* Both messages done? Then the stream closes on its own, and the connection is free (pooled
 * or freed: false). */
static bool exchange_maybe_done(Exchange *x) {
        UpConn *uc = x->uc;

        if (!uc || x->upgraded || !x->resp_done)
                return true;
        if (!x->body_end_written) {
                /* The upstream answered before it had the whole body: the connection is not
                 * in a state to reuse; what still comes from the tunnel is dropped. */
                uc->reusable = false;
        }
        up_release(uc);
        return false;
}

/* ---- the request, towards the upstream ---- */

static void up_send(UpConn *uc, const void *p, size_t n) {
        if (n > 0)
                (void) tls_conn_send(uc->conn, p, n);
}

/* up_send() as an HttpOutFunc, for the writers of http1.h. */
static void up_send_func(const void *p, size_t n, void *userdata) {
        up_send(userdata, p, n);
}

static void up_sendf(UpConn *uc, const char *format, ...) _printf_(2, 3);
static void up_sendf(UpConn *uc, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        http_vwritef(up_send_func, uc, 256, format, ap);
        va_end(ap);
}

static void send_body(Exchange *x, const uint8_t *p, size_t n) {
        if (n > 0)
                http_write_body(p, n, x->chunked, up_send_func, x->uc);
}

static void send_body_end(Exchange *x) {
        if (x->body_end_written || !x->body_end || !x->head_written || (x->upgrade && !x->upgraded))
                return;
        x->body_end_written = true;
        if (x->upgraded) {
                /* The public side finished sending; tell the upstream. */
                tls_conn_bye(x->uc->conn);
                (void) tls_conn_flush(x->uc->conn);
                (void) shutdown(tls_conn_fd(x->uc->conn), SHUT_WR);
                return;
        }
        if (x->chunked) {
                up_send(x->uc, "0\r\n", 3);
                if (x->end_trailers)
                        http_write_fields(x->end_trailers, up_send_func, x->uc);
                up_send(x->uc, "\r\n", 2);
        }
}

static void exchange_ack(Exchange *x) {
        if (x->unacked > 0 && x->s && x->uc && tls_conn_pending(x->uc->conn) < OUT_HIGH_WATER) {
                mux_stream_consume(x->s, x->unacked);
                x->unacked = 0;
        }
}

/* What came before the connection was ready (or before an upgrade was answered) goes out. */
static void send_pre(Exchange *x) {
        if (x->pre_len > 0) {
                send_body(x, x->pre, x->pre_len);
                x->pre = mfree(x->pre);
                x->pre_len = 0;
        }
        x->unacked += x->pre_held;
        x->pre_held = 0;
}

/* The connection is ready: the head, what body came already, maybe its end. */
static void exchange_write_head(Exchange *x) {
        const HttpUpstream *t = &TARGET(x)->u;
        UpConn *uc = x->uc;
        HttpHead *h = x->req;

        assert(uc);
        assert(h);
        assert(!x->head_written);

        up_sendf(uc, "%s ", x->upgrade ? "GET" : h->method);
        if (!streq(h->url, "*") || !*t->prefix)
                up_send(uc, t->prefix, strlen(t->prefix));
        up_send(uc, h->url, strlen(h->url));
        up_send(uc, " HTTP/1.1\r\nHost: ", 17);
        up_send(uc, t->authority, strlen(t->authority));
        up_send(uc, "\r\n", 2);
        for (size_t i = 0; i < h->n_headers; i++) {
                const char *name = h->headers[i].name;
                if (http_header_is_hop_by_hop(h, name) || (x->chunked && strcaseeq(name, "content-length")))
                        continue;
                up_send(uc, name, strlen(name));
                up_send(uc, ": ", 2);
                up_send(uc, h->headers[i].value, strlen(h->headers[i].value));
                up_send(uc, "\r\n", 2);
        }
        if (x->upgrade)
                up_sendf(uc, "Connection: Upgrade\r\nUpgrade: %s\r\n", h->protocol);
        else if (x->chunked)
                up_send(uc, "Transfer-Encoding: chunked\r\n", 28);
        up_send(uc, "\r\n", 2);
        x->head_written = true;
        if (!x->upgrade)
                send_pre(x);
        send_body_end(x);
        exchange_ack(x);
}

/* ---- the response, from the upstream ---- */

static int on_response_head(void *userdata, HttpHead *h_) {
        _cleanup_(http_head_freep) HttpHead *h = h_;
        _cleanup_(http_head_freep) HttpHead *fwd = NULL;
        UpConn *uc = userdata;
        Exchange *x = uc->x;
        bool no_body;
        int r;

        if (!x || !x->s)
                return -ECANCELED;
        if (h->status == 101 && x->upgrade) {
                x->interim = false;
        } else if (h->status < 200) {
                x->interim = true; /* 100 Continue and friends: not passed on */
                return 0;
        }
        uc->reusable = h->keep_alive;
        x->req = http_head_free(x->req); /* answered: no retry will need it */
        fwd = http_head_new(false);
        if (!fwd)
                return -ENOMEM;
        for (size_t i = 0; i < h->n_headers; i++) {
                const char *name = h->headers[i].name;
                if (http_header_is_hop_by_hop(h, name) || (h->chunked && strcaseeq(name, "content-length")))
                        continue;
                r = http_head_add(fwd, name, strlen(name), h->headers[i].value, strlen(h->headers[i].value));
                if (r < 0)
                        return r;
        }
        r = http_rules_apply(def(x->owner)->http_rules.response_headers, def(x->owner)->http_rules.n_response_headers,
                             TARGET(x)->u.match, fwd);
        if (r < 0)
                return r;
        if (h->status == 101) {
                r = mux_respond(x->s, 200, fwd->headers, fwd->n_headers, false);
                if (r < 0)
                        return r;
                x->responded = x->upgraded = true;
                uc->reusable = false;
                send_pre(x);
                send_body_end(x);
                exchange_ack(x);
                return 2; /* what follows is not HTTP */
        }
        if (x->upgrade && h->status < 300) {
                /* Over extended CONNECT a 2xx means "switched" (RFC 8441): an upstream that
                 * ignored the Upgrade and answered 200 must not be passed on as one. */
                uc->reusable = false;
                x->refused_status = h->status;
                return -EPROTONOSUPPORT;
        }
        no_body = x->head_request || h->status == 204 || h->status == 304;
        r = mux_respond(x->s, h->status, fwd->headers, fwd->n_headers, no_body);
        if (r < 0)
                return r;
        x->responded = true;
        x->resp_no_body = no_body;
        if (x->upgrade)
                uc->reusable = false; /* refused upgrade: the request may have left state behind */
        return x->head_request ? 1 : 0;
}

static int on_response_body(void *userdata, const uint8_t *p, size_t n) {
        UpConn *uc = userdata;
        Exchange *x = uc->x;

        if (!x || !x->s)
                return -ECANCELED;
        return mux_stream_write(x->s, p, n) < 0 ? -EPIPE : 0;
}

static int on_response_complete(void *userdata, HttpHead *trailers_) {
        _cleanup_(http_head_freep) HttpHead *trailers = trailers_;
        UpConn *uc = userdata;
        Exchange *x = uc->x;

        if (!x || !x->s)
                return -ECANCELED;
        if (x->interim) {
                x->interim = false;
                return 0; /* the final response follows; up_process() resumes the parser */
        }
        if (!x->resp_no_body && mux_stream_end(x->s, trailers ? trailers->headers : NULL,
                                               trailers ? trailers->n_headers : 0) < 0)
                return -EPIPE;
        x->resp_done = true;
        return 0;
}

static const HttpMsgCallbacks response_callbacks = {
        .head = on_response_head,
        .body = on_response_body,
        .complete = on_response_complete,
};

/* A pooled connection the upstream closed just as we sent on it: a request without a body
 * goes again, once, on a new connection (RFC 9112 §9.3.1 allows it when nothing came back).
 * True when it did: the old connection is freed, and x has a new one or failed (freed). */
static bool exchange_retry(Exchange *x) {
        UpConn *uc = x->uc;

        if (!uc || !uc->reused || x->responded || x->has_body || x->retried || !x->req)
                return false;
        log_debug("HTTP upstream %s closed a reused connection; sending the request again.", TARGET(x)->u.authority);
        uc->x = NULL;
        x->uc = NULL;
        up_free(uc);
        x->retried = true;
        x->head_written = x->body_end_written = false;
        exchange_start(x);
        return true;
}

static bool up_read(UpConn *uc) {
        for (;;) {
                Exchange *x = uc->x;
                uint8_t *p;
                size_t n, off = 0;
                int r;

                if (!x || !x->s || x->resp_done || mux_stream_full(x->s))
                        return true;
                if (!tls_conn_readable(uc->conn))
                        return true; /* the next edge tells when there is more */
                r = tls_conn_recv(uc->conn, &p, &n);
                if (r == -EAGAIN)
                        return true;
                if (r < 0) {
                        if (!exchange_retry(x))
                                exchange_fail(x, 502, "Upstream %s: %s", TARGET(x)->u.authority,
                                              tls_conn_error(uc->conn));
                        return false;
                }
                if (r == 0) {
                        if (x->upgraded) {
                                /* The upstream is done sending; the stream ends when both are. */
                                (void) mux_stream_end(x->s, NULL, 0);
                                x->resp_done = true;
                                return true;
                        }
                        /* A body delimited by the close ends here; anything else was cut. */
                        uc->reusable = false;
                        if (http_msg_parser_idle(&uc->parser) && exchange_retry(x))
                                return false;
                        if (http_msg_parser_feed(&uc->parser, NULL, 0) < 0 || !x->resp_done) {
                                exchange_fail(x, 502, "Upstream %s closed the connection %s.",
                                              TARGET(x)->u.authority,
                                              x->responded ? "in the middle of the response" : "without a response");
                                return false;
                        }
                        return exchange_maybe_done(x);
                }
                while (off < n) {
                        ssize_t used;

                        if (x->upgraded) {
                                (void) mux_stream_write(x->s, p + off, n - off);
                                break;
                        }
                        used = http_msg_parser_feed(&uc->parser, p + off, n - off);
                        if (used == -EPROTONOSUPPORT && x->refused_status > 0) {
                                exchange_fail(x, 502, "Upstream %s answered the upgrade with %u, not 101 Switching "
                                              "Protocols.", TARGET(x)->u.authority, x->refused_status);
                                return false;
                        }
                        if (used < 0) {
                                exchange_fail(x, 502, "Upstream %s sent a malformed response (%s).",
                                              TARGET(x)->u.authority,
                                              used == -E2BIG || used == -EMLINK ? "head too large" : "parse error");
                                return false;
                        }
                        off += (size_t) used;
                        if (uc->parser.complete) {
                                if (x->resp_done) {
                                        if (off < n)
                                                uc->reusable = false; /* bytes nobody asked for */
                                        return exchange_maybe_done(x);
                                }
                                http_msg_parser_next(&uc->parser); /* after an interim response */
                        } else if (uc->parser.stopped) {
                                continue; /* the 101: the rest is raw */
                        } else if (used == 0)
                                break;
                }
        }
}

static bool up_process(UpConn *uc) {
        Exchange *x = uc->x;
        int r;

        if (uc->state != UP_BUSY)
                return true;
        r = tls_conn_flush(uc->conn);
        if (r < 0 && r != -EAGAIN) {
                if (x)
                        exchange_fail(x, 502, "Upstream %s: %s", TARGET(uc)->u.authority,
                                      tls_conn_error(uc->conn));
                else
                        up_free(uc);
                return false;
        }
        if (x)
                exchange_ack(x);
        return up_read(uc);
}

static bool up_connected(UpConn *uc) {
        assert(uc->state == UP_HANDSHAKE);

        manager_note_upstream(uc->owner->manager, 0, now_usec() - uc->started);
        uc->state = UP_BUSY;
        (void) sd_event_source_set_enabled(uc->timer, SD_EVENT_OFF);
        if (uc->x)
                exchange_write_head(uc->x);
        return up_process(uc);
}

static int up_io(sd_event_source *src, int fd, uint32_t revents, void *userdata);

static void up_dial_failed(UpConn *uc, int error) {
        Exchange *x = uc->x;
        const HttpUpstream *t = &TARGET(uc)->u;

        manager_note_upstream(uc->owner->manager, error, 0);
        if (x)
                exchange_fail(x, error == -ETIMEDOUT ? 504 : 502, "Upstream %s: %s", t->authority,
                              error == -EPERM || error == -EPROTO ? tls_conn_error(uc->conn) : strerror(-error));
        else
                up_free(uc);
}

static int up_dial_next(UpConn *uc) {
        Target *t = TARGET(uc);
        int fd = socket_connect_next(t->addrs, t->n_addrs, &uc->next_addr, t->u.port, NULL), r;

        if (fd < 0)
                return fd;
        uc->fd = fd;
        uc->io = sd_event_source_disable_unref(uc->io);
        uc->io_events = EPOLLOUT;
        r = sd_event_add_io(uc->owner->manager->event, &uc->io, fd, uc->io_events, up_io, uc);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(uc->io, "http-upstream-io");
        return 0;
}

static int up_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        UpConn *uc = userdata;
        Target *t = TARGET(uc);
        int r;

        if (uc->conn)
                tls_conn_edge(uc->conn, revents);
        switch (uc->state) {
        case UP_CONNECTING: {
                int err = 0;
                socklen_t l = sizeof(err);
                (void) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err != 0) {
                        uc->fd = safe_close(uc->fd);
                        r = up_dial_next(uc);
                        if (r < 0)
                                up_dial_failed(uc, -err);
                        return 0;
                }
                /* ProxyProtocol=: before anything else, TLS included; a fresh socket takes it
                 * whole in one send(). */
                if (uc->proxy_len > 0 &&
                    send(uc->fd, uc->proxy_header, uc->proxy_len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t) uc->proxy_len) {
                        up_dial_failed(uc, -EIO);
                        return 0;
                }
                if (t->u.tls && !uc->owner->creds) { /* an https:// upstream came with a reload */
                        _cleanup_free_ char *why = NULL;
                        r = tls_client_credentials(def(uc->owner)->upstream_ca_file, &uc->owner->creds, &why);
                        if (r < 0) {
                                log_error("%s", why ?: "Failed to set up TLS for upstreams");
                                up_dial_failed(uc, r);
                                return 0;
                        }
                }
                r = t->u.tls ? tls_conn_new_client(TAKE_FD(uc->fd), uc->owner->creds, t->u.host, NULL, &uc->conn)
                             : tls_conn_new_server(TAKE_FD(uc->fd), NULL, &uc->conn);
                if (r < 0) {
                        up_dial_failed(uc, r);
                        return 0;
                }
                uc->state = UP_HANDSHAKE;
        }
                _fallthrough_;
        case UP_HANDSHAKE:
                r = tls_conn_handshake(uc->conn);
                if (r < 0) {
                        up_dial_failed(uc, -EPROTO);
                        return 0;
                }
                if (r == 0) {
                        up_set_io(uc, tls_conn_handshake_wants_write(uc->conn) ? EPOLLOUT : EPOLLIN);
                        return 0;
                }
                if (!up_connected(uc))
                        return 0;
                break;
        case UP_BUSY:
                if (!up_process(uc))
                        return 0;
                break;
        case UP_IDLE:
                if (tls_conn_readable(uc->conn)) {
                        up_free(uc); /* the upstream closed it, or sent what nobody asked for */
                        return 0;
                }
                break;
        }
        up_set_events(uc);
        return 0;
}

static int up_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        UpConn *uc = userdata;

        if (uc->state == UP_IDLE)
                up_free(uc);
        else
                up_dial_failed(uc, -ETIMEDOUT);
        return 0;
}

/* ---- exchanges ---- */

static void on_request_data(MuxStream *s, const uint8_t *p, size_t n, void *userdata) {
        Exchange *x = userdata;

        if (x->body_end_written || (x->resp_done && !x->upgraded) || !x->has_body) {
                mux_stream_consume(s, n); /* nobody wants it any more */
                return;
        }
        /* Bytes after an upgrade request belong to the new protocol: they go to the upstream
         * only once it answered 101. Sent on an HTTP connection that was not switched, they
         * would be a second request that never passed the exit server (smuggling). They are
         * held unacknowledged (pre_held): the stream window bounds them. Before the connection
         * is ready, bytes wait too, acknowledged as usual. */
        bool hold = x->upgrade && !x->upgraded && x->head_written;
        if (x->wait) {
                if (x->waiting_body + n > WAIT_BODY_MAX || x->owner->waiting_body + n > WAIT_BODY_TOTAL) {
                        exchange_fail(x, 503, "The request body came before its credentials were checked and "
                                              "is too large to hold; try again.");
                        return;
                }
                x->waiting_body += n;
                x->owner->waiting_body += n;
        }
        if (hold || !x->head_written || !x->uc) {
                uint8_t *t = realloc(x->pre, x->pre_len + n);
                if (!t) {
                        exchange_fail(x, 500, "Out of memory.");
                        return;
                }
                memcpy(t + x->pre_len, p, n);
                x->pre = t;
                x->pre_len += n;
                if (hold)
                        x->pre_held += n;
                else
                        x->unacked += n;
                return;
        }
        send_body(x, p, n);
        x->unacked += n;
        exchange_ack(x);
        up_set_events(x->uc);
}

static void on_request_end(MuxStream *s, HttpHead *trailers, void *userdata) {
        Exchange *x = userdata;

        x->body_end = true;
        http_head_free(x->end_trailers);
        x->end_trailers = trailers;
        if (x->uc && x->head_written) {
                send_body_end(x);
                exchange_ack(x);
                up_set_events(x->uc);
        }
}

static void on_request_writable(MuxStream *s, void *userdata) {
        Exchange *x = userdata;

        if (x->uc && x->uc->state == UP_BUSY && !up_process(x->uc))
                return; /* x, its connection, or both are gone */
        if (x->uc)
                up_set_events(x->uc);
}

static void on_request_closed(MuxStream *s, bool reset, void *userdata) {
        Exchange *x = userdata;

        if (reset)
                log_debug("HTTP: the exit server reset a request (%s).",
                          x->responded ? "during the response" : "before the response");
        x->s = NULL;
        if (!reset && x->uc && x->resp_done && !x->upgraded)
                up_release(x->uc);
        exchange_free(x); /* a connection still attached was cut mid-exchange */
}

static const MuxStreamOps exchange_ops = {
        .data = on_request_data,
        .end = on_request_end,
        .writable = on_request_writable,
        .closed = on_request_closed,
};

static int up_new(HttpUpstreams *u, Targets *targets, size_t target, UpConn **ret) {
        UpConn *uc = calloc(1, sizeof(*uc));
        int r;

        if (!uc)
                return -ENOMEM;
        uc->owner = u;
        uc->target = target;
        uc->targets = targets_ref(targets);
        uc->fd = -1;
        uc->started = now_usec();
        LIST_PREPEND(u->conns, uc);
        http_msg_parser_init(&uc->parser, false, def(u)->max_header_bytes, def(u)->max_headers, &response_callbacks, uc);
        r = sd_event_add_time_relative(u->manager->event, &uc->timer, CLOCK_MONOTONIC, def(u)->handshake_timeout_usec,
                                       0, up_timeout, uc);
        if (r < 0) {
                up_free(uc);
                return r;
        }
        (void) sd_event_source_set_description(uc->timer, "http-upstream-timer");
        r = up_dial_next(uc);
        if (r < 0) {
                up_free(uc);
                return r;
        }
        *ret = uc;
        return 0;
}

static void exchange_start(Exchange *x) {
        HttpUpstreams *u = x->owner;
        UpConn *uc = NULL;
        int r;

        assert(!x->uc);
        Target *t = TARGET(x);
        if (!t->query && now_usec() >= t->asked + (t->n_addrs == 0 ? RESOLVE_RETRY_USEC : RESOLVE_REFRESH_USEC))
                target_resolve(t); /* none yet, or old: asked again (the old ones serve meanwhile) */
        if (t->query && t->n_addrs == 0) {
                /* Its name is being resolved (a reload brought it): the request waits. */
                x->parked = true;
                LIST_PREPEND(u->parked, x);
                return;
        }

        for (UpConn *i = u->conns; i && !x->retried; i = i->next)
                if (i->state == UP_IDLE && i->targets == x->targets && i->target == x->target &&
                    streq_ptr(i->visitor_key, x->visitor_key)) {
                        uc = i;
                        break;
                }
        if (uc) {
                (void) sd_event_source_set_enabled(uc->timer, SD_EVENT_OFF);
                uc->state = UP_BUSY;
                uc->reused = true;
                uc->x = x;
                x->uc = uc;
                exchange_write_head(x);
                up_set_events(uc);
                return;
        }
        r = up_new(u, x->targets, x->target, &uc);
        if (r < 0) {
                manager_note_upstream(u->manager, r, 0);
                exchange_fail(x, 502, "Upstream %s: %s", TARGET(x)->u.authority,
                              r == -EHOSTUNREACH ? "no address to connect to" : strerror(-r));
                return;
        }
        memcpy(uc->proxy_header, x->proxy_header, x->proxy_len);
        uc->proxy_len = x->proxy_len;
        uc->visitor_key = x->visitor_key ? strdup(x->visitor_key) : NULL;
        if (x->visitor_key && !uc->visitor_key) {
                up_free(uc);
                exchange_fail(x, 500, "Out of memory.");
                return;
        }
        uc->x = x;
        x->uc = uc;
}

/* The host of an authority as the exit server routes it (http_front_normalize_host()): lower
 * case, no port, no trailing dot; false if it does not fit. */
static bool authority_host(const char *authority, char host[static 256]) {
        size_t n = authority[0] == '[' ? strcspn(authority, "]") + 1 : strcspn(authority, ":");

        if (n >= 256)
                return false;
        for (size_t i = 0; i < n; i++)
                host[i] = ascii_tolower(authority[i]);
        if (n > 1 && host[0] != '[' && host[n - 1] == '.')
                n--;
        host[n] = 0;
        return true;
}

/* This client's own AllowFrom=/DenyFrom= for a request: judged on the visitor the exit server
 * names (the last X-Forwarded-For entry), by the host asked for; a request without one is
 * refused when there are lists (fail closed). */
static bool request_allowed(HttpUpstreams *u, const HttpHead *h) {
        const AccessList *l = &def(u)->access;
        char vbuf[64], host[256];
        const char *visitor;
        SocketAddress a;

        if (l->n_rules == 0)
                return true;
        visitor = visitor_of(h, vbuf, sizeof(vbuf));
        /* A numeric address only ("" or "*" would parse as the any address). */
        a = (SocketAddress) {};
        if (inet_pton(AF_INET, visitor, &a.in.sin_addr) == 1)
                a.sa.sa_family = AF_INET, a.len = sizeof(a.in);
        else if (inet_pton(AF_INET6, visitor, &a.in6.sin6_addr) == 1)
                a.sa.sa_family = AF_INET6, a.len = sizeof(a.in6);
        if (a.len > 0 && authority_host(h->authority ?: "", host) && access_list_allows(l, host, &a))
                return true;
        u->refused++;
        if (ratelimit_below(&u->refused_log))
                log_info("HTTP %s: refused %s (this client's AllowFrom=/DenyFrom=).", h->authority ?: "",
                         *visitor ? visitor : "a visitor the server did not name");
        return false;
}

/* ProxyProtocol= in HTTP mode: the header for the public connection a request came on, from
 * x-inlets-peer and x-inlets-local (docs/protocol.md; a header without addresses when they are
 * missing or malformed), and the key that keeps upstream connections to that public one. The
 * x-inlets-* fields never go on to the upstream. */
static int exchange_proxy_header(HttpUpstreams *u, Exchange *x, HttpHead *h) {
        ProxyProtocol v = def(u)->proxy_protocol;
        const char *peer = http_head_get(h, "x-inlets-peer"), *local = http_head_get(h, "x-inlets-local");
        SocketAddress source, destination;
        int n;

        if (v > PROXY_PROTOCOL_NO) {
                bool known = proxy_address_parse(peer, &source) >= 0 && proxy_address_parse(local, &destination) >= 0;
                n = known ? proxy_header_write(v, &source, &destination, x->proxy_header)
                          : proxy_header_write_unknown(v, x->proxy_header);
                x->proxy_len = n > 0 ? (size_t) n : 0;
                x->visitor_key = asprintf_safe("%s %s", known ? peer : "?", known ? local : "?");
                if (!x->visitor_key)
                        return -ENOMEM;
        }
        (void) http_head_remove(h, "x-inlets-peer");
        (void) http_head_remove(h, "x-inlets-local");
        return 0;
}

uint64_t http_upstreams_refused(HttpUpstreams *u) {
        return u ? u->refused : 0;
}

static ssize_t find_target(HttpUpstreams *u, const char *authority) {
        char host[256];
        ssize_t fallback = -1;

        if (!authority_host(authority, host))
                return -1;
        for (size_t i = 0; i < u->targets->n; i++) {
                if (!u->targets->t[i].u.match) {
                        if (fallback < 0)
                                fallback = (ssize_t) i;
                } else if (streq(u->targets->t[i].u.match, host))
                        return (ssize_t) i;
        }
        return fallback;
}

static bool token_ok(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (*s <= ' ' || *s >= 127 || strchr("\"(),/:;<=>?@[\\]{}", *s))
                        return false;
        return true;
}

/* The access rules answered: the request goes on to its upstream, or the verdict goes back. */
static void exchange_verdict(Exchange *x, const HttpVerdict *v) {
        HttpUpstreams *u = x->owner;

        if (v->status > 0) {
                respond_verdict(x->s, v);
                x->s = NULL;
                exchange_free(x);
                return;
        }
        if (v->strip_authorization)
                /* It was for the tunnel's own rules, not for the upstream. */
                (void) http_head_remove(x->req, "authorization");
        if (http_rules_apply(def(u)->http_rules.request_headers, def(u)->http_rules.n_request_headers,
                             TARGET(x)->u.match, x->req) < 0) {
                exchange_fail(x, 500, "Out of memory.");
                return;
        }
        exchange_start(x);
}

static void on_verdict(const HttpVerdict *v, void *userdata) {
        Exchange *x = userdata;

        x->wait = NULL; /* done with, freed by the guard */
        x->owner->waiting_body -= x->waiting_body;
        x->waiting_body = 0;
        exchange_verdict(x, v);
}

void http_upstreams_request(HttpUpstreams *u, MuxStream *s, HttpHead *h, bool end_stream) {
        Exchange *x;
        ssize_t t;

        assert(u);
        assert(s);

        if (!h || !h->method || !h->url || !token_ok(h->method) || (h->url[0] != '/' && !streq(h->url, "*")) ||
            strpbrk(h->url, " \t\r\n") || (h->protocol && !token_ok(h->protocol))) {
                http_head_free(h);
                respond_error(s, 400, "Malformed request from the exit server.");
                return;
        }
        t = find_target(u, h->authority ?: "");
        if (t < 0) {
                respond_error(s, 502, "No Upstream= for host %s on this tunnel client.", h->authority ?: "(none)");
                http_head_free(h);
                return;
        }
        if (!request_allowed(u, h)) {
                http_head_free(h);
                respond_verdict(s, &(HttpVerdict) { .status = 403 });
                return;
        }
        x = calloc(1, sizeof(*x));
        if (!x) {
                http_head_free(h);
                respond_error(s, 500, "Out of memory.");
                return;
        }
        if (exchange_proxy_header(u, x, h) < 0) {
                free(x);
                http_head_free(h);
                respond_error(s, 500, "Out of memory.");
                return;
        }
        x->owner = u;
        x->s = s;
        x->targets = targets_ref(u->targets);
        x->target = (size_t) t;
        x->req = h;
        x->upgrade = !!h->protocol;
        x->head_request = streq(h->method, "HEAD");
        x->has_body = !end_stream;
        x->body_end = end_stream;
        x->chunked = x->has_body && !x->upgrade && !http_head_get(h, "content-length");
        mux_stream_set_ops(s, &exchange_ops, x);
        if (!http_rules_empty(&def(u)->http_rules)) {
                char vbuf[64];
                HttpVerdict v;

                /* A password check waits for the worker thread; the body waits in x->pre, as
                 * it does for a connection being made. */
                if (http_guard_check(u->guard, &def(u)->http_rules, TARGET(x)->u.match,
                                     visitor_of(h, vbuf, sizeof(vbuf)), h, &v, on_verdict, x, &x->wait) > 0)
                        return;
                exchange_verdict(x, &v);
                return;
        }
        exchange_start(x);
}

char *http_upstreams_offer(const Definition *d) {
        size_t size = 0;
        char *s;

        assert(d);

        for (size_t i = 0; i < d->n_upstreams; i++)
                size += strlen(d->upstreams[i]) + 2;
        s = calloc(1, size + 2);
        if (!s)
                return NULL;
        for (size_t i = 0; i < d->n_upstreams; i++) {
                HttpUpstream u;
                if (http_upstream_parse(d->upstreams[i], &u) < 0)
                        continue;
                if (*s)
                        strcat(s, ",");
                strcat(s, u.match ?: "*");
                http_upstream_done(&u);
        }
        return s;
}

static void target_answer(Target *t, int error, SocketAddress *addrs, size_t n) {
        t->asked = now_usec(); /* the retry and refresh intervals count from the answer */
        if (error < 0) {
                /* The addresses of before (if any) stay: better than none. */
                free(addrs);
                log_full_errno(t->failing ? LOG_DEBUG : LOG_WARNING, 0, "Cannot resolve upstream %s: %s%s", t->u.host,
                               resolve_strerror(error), t->n_addrs > 0 ? " (its previous addresses serve)" : "");
                t->failing = true;
                return;
        }
        if (t->failing)
                log_info("Upstream %s resolves again.", t->u.host);
        t->failing = false;
        free(t->addrs);
        t->addrs = addrs;
        t->n_addrs = n;
}

static void on_target_resolved(int error, SocketAddress *addrs, size_t n, void *userdata) {
        Target *t = userdata;
        HttpUpstreams *u = t->owner;

        t->query = NULL;
        target_answer(t, error, addrs, n);
        /* The requests that waited for it go on (to a 502 if it has no address). */
        for (Exchange *x = u->parked, *next; x; x = next) {
                next = x->next;
                if (TARGET(x) != t)
                        continue;
                LIST_REMOVE(u->parked, x);
                x->parked = false;
                exchange_start(x);
        }
}

/* Asks for t's addresses: a numeric one is there at once, a name's answer comes later. */
static void target_resolve(Target *t) {
        SocketAddress *l = NULL;
        size_t k = 0;
        int r;

        t->asked = now_usec();
        r = resolver_query(t->owner->manager->resolver, t->u.host, on_target_resolved, t, &l, &k, &t->query);
        if (r != 0)
                target_answer(t, r < 0 ? r : 0, l, k);
}

/* The target of the table before with the same host, if any. */
static const Target *old_target(HttpUpstreams *u, const char *host) {
        for (size_t i = 0; u->targets && i < u->targets->n; i++)
                if (streq(u->targets->t[i].u.host, host))
                        return &u->targets->t[i];
        return NULL;
}

int http_upstreams_refresh(HttpUpstreams *u) {
        const Definition *d = def(u);
        Targets *t;
        int r;

        assert(u);

        /* Checks still waiting under the rules of before answer 503, never their verdict. */
        http_guard_set_rules(u->guard, &d->http_rules);
        t = new0(Targets, 1);
        if (!t)
                return -ENOMEM;
        t->refs = 1;
        t->t = new0(Target, d->n_upstreams);
        if (!t->t) {
                free(t);
                return -ENOMEM;
        }
        for (size_t i = 0; i < d->n_upstreams; i++) {
                Target *x = &t->t[i];
                r = http_upstream_parse(d->upstreams[i], &x->u);
                if (r < 0) {
                        targets_unref(t);
                        return log_error_errno(r, "Bad Upstream=%s", d->upstreams[i]);
                }
                t->n++;
                x->owner = u;
                /* What the host resolved to before serves until the new answer (a reconnect must
                 * not make requests wait for DNS, nor fail while it is down). */
                const Target *old = old_target(u, x->u.host);
                if (old && old->n_addrs > 0 && (x->addrs = new0(SocketAddress, old->n_addrs))) {
                        memcpy(x->addrs, old->addrs, sizeof(SocketAddress) * old->n_addrs);
                        x->n_addrs = old->n_addrs;
                }
                x->failing = old && old->failing;
                /* Names on the resolver's thread: requests for a target without an address wait. */
                target_resolve(x);
        }
        /* Idle connections belong to the old table; busy ones finish with it. */
        for (UpConn *i = u->conns, *next; i; i = next) {
                next = i->next;
                if (i->state == UP_IDLE)
                        up_free(i);
        }
        targets_unref(u->targets);
        u->targets = t;
        return 0;
}

void http_upstreams_drain(HttpUpstreams *u) {
        assert(u);

        while (u->parked) {
                Exchange *x = u->parked;
                LIST_REMOVE(u->parked, x);
                x->parked = false;
                exchange_fail(x, 503, "Upstream %s: shutting down before its name resolved", TARGET(x)->u.authority);
        }
}

HttpUpstreams *http_upstreams_free(HttpUpstreams *u) {
        if (!u)
                return NULL;
        while (u->conns)
                up_free(u->conns);
        targets_unref(u->targets);
        http_guard_free(u->guard);
        if (u->creds)
                gnutls_certificate_free_credentials(u->creds);
        free(u);
        return NULL;
}

/* The trust store costs megabytes: only loaded when some Upstream= is https://. */
static int upstreams_load_trust(HttpUpstreams *u) {
        const Definition *d = def(u);

        for (size_t i = 0; i < d->n_upstreams; i++)
                if (strstr(d->upstreams[i], "https://")) {
                        _cleanup_free_ char *err = NULL;
                        int r = tls_client_credentials(d->upstream_ca_file, &u->creds, &err);
                        if (r < 0)
                                return log_error_errno(r, "%s", err ?: "Failed to set up TLS for upstreams");
                        break;
                }
        return 0;
}

int http_upstreams_new(Manager *m, HttpUpstreams **ret) {
        _cleanup_(http_upstreams_freep) HttpUpstreams *u = NULL;
        int r;

        assert(m);
        assert(ret);

        u = new0(HttpUpstreams, 1);
        if (!u)
                return -ENOMEM;
        u->manager = m;
        u->refused_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        r = http_guard_new(m->event, &u->guard);
        if (r < 0)
                return r;
        r = upstreams_load_trust(u);
        if (r >= 0)
                r = http_upstreams_refresh(u);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(u);
        return 0;
}
