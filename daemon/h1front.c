// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/1.x connections on the public HTTP port of an exit server in HTTP mode; see httpfront.h.
 *
 * One HttpConn per public connection, one request at a time (pipelined requests wait in the
 * input buffer until the response before them is out). A request's head is parsed whole
 * (libhttp-parser, size and count limited), routed by Host, and submitted as an HTTP/2 request
 * stream with X-Forwarded-* added and hop-by-hop fields removed; its body follows as it
 * arrives, and reading stops while the stream holds enough. The response head becomes an
 * HTTP/1.1 status line; its body goes out as it comes, chunked when its length is unknown,
 * and the stream's window reopens only as the socket drains. Until then those bytes count
 * against the session's buffer budget (mux.c), so the exchange -- and the next pipelined
 * request -- ends only once they have left. Upgrade requests (WebSocket)
 * travel as extended CONNECT; after the 101 both directions are plain bytes.
 *
 * Connections are freed only from the loop (conn_close() defers), never from inside a
 * parser or mux callback. */

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include "acme.h"
#include "http1.h"
#include "httpfront-internal.h"
#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"
#include "tls.h"

#define OUT_HIGH_WATER (256 * 1024)
#define LINGER_USEC (2 * USEC_PER_SEC)

typedef enum ConnTimer {
        TIMER_HEAD,      /* a request head (or the TLS handshake) must complete */
        TIMER_IDLE,      /* keep-alive: waiting for the next request */
        TIMER_RESPONSE,  /* the response head must come */
        TIMER_LINGER,    /* closing: draining what the peer still sends */
        TIMER_SEND,      /* output waits for a peer that takes none of it */
        TIMER_NONE,
} ConnTimer;


struct HttpConn {
        HttpFront *front;
        HttpConn *prev, *next;
        TlsConn *conn;
        sd_event_source *io, *timer, *kick;
        ConnTimer timer_kind;
        SocketAddress peer_addr; /* what access lists judge */
        char peer[SOCKADDR_STR_MAX];
        char peer_ip[INET6_ADDRSTRLEN + 2];
        char local[SOCKADDR_STR_MAX]; /* the public socket's own address ("" if unknown) */
        bool handshake_done, eof, closing, lingering, dead;
        bool via_proxy;         /* from a trusted load balancer (AcceptProxyProtocol=) */
        uint32_t io_events;     /* as last given to the io source */
        uint64_t sent_mark;     /* tls_conn_sent() when TIMER_SEND was last armed */
        size_t outq_mark;       /* and socket_outq() then */
        HttpMsgParser parser;
        uint8_t *in;            /* plaintext the parser has not taken yet */
        size_t in_len;

        /* the exchange in progress */
        MuxStream *stream;
        char *protocol;         /* an upgrade: the Upgrade token */
        uint64_t body_bytes;
        unsigned short minor;
        bool busy, req_done, resp_started, resp_done, resp_chunked, resp_close, upgraded, head_request,
                keep_alive, read_paused;
        HttpReqStat stat;
        size_t unacked;
};

static const Definition *def(HttpConn *c) {
        return c->front->manager->def;
}

static void conn_update(HttpConn *c);
static void conn_finish_exchange(HttpConn *c);
static const MuxStreamOps conn_stream_ops;

/* The request's tunnel stream is given up: what it carried still counts for its host. */
static void conn_drop_stream(HttpConn *c) {
        http_req_stat_bytes(&c->stat, c->stream);
        mux_stream_reset(TAKE_PTR(c->stream));
}

static HttpConn *conn_free(HttpConn *c) {
        if (!c)
                return NULL;
        if (c->stream)
                conn_drop_stream(c);
        LIST_REMOVE(c->front->conns, c);
        c->front->n_conns--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->kick);
        http_msg_parser_done(&c->parser);
        tls_conn_free(c->conn);
        free(c->in);
        free(c->protocol);
        free(c);
        return NULL;
}

/* Drops the connection; the memory goes from the loop. */
static void conn_close(HttpConn *c) {
        assert(c);

        if (c->stream)
                conn_drop_stream(c);
        c->dead = true;
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
}

static void set_timer(HttpConn *c, ConnTimer kind) {
        uint64_t usec = 0;

        assert(c);

        c->timer_kind = kind;
        switch (kind) {
        case TIMER_HEAD:
                usec = def(c)->handshake_timeout_usec;
                break;
        case TIMER_IDLE:
        case TIMER_SEND:
                usec = def(c)->idle_timeout_usec;
                break;
        case TIMER_RESPONSE:
                usec = def(c)->response_timeout_usec;
                break;
        case TIMER_LINGER:
                usec = LINGER_USEC;
                break;
        case TIMER_NONE:
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time_relative(c->timer, usec);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void out(HttpConn *c, const void *p, size_t n) {
        if (n > 0 && tls_conn_send(c->conn, p, n) < 0)
                conn_close(c);
}

/* out() as an HttpOutFunc, for the writers of http1.h. */
static void out_func(const void *p, size_t n, void *userdata) {
        out(userdata, p, n);
}

static void outf(HttpConn *c, const char *format, ...) _printf_(2, 3);
static void outf(HttpConn *c, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        http_vwritef(out_func, c, 1024, format, ap);
        va_end(ap);
}

/* After what is queued: no more requests on this connection. */
static void conn_close_after(HttpConn *c) {
        c->closing = true;
        conn_update(c);
}

/* A response of our own (text/plain), before any response started; the connection ends
 * after it when the request's body may still be on its way. */
static void reply_text(HttpConn *c, unsigned status, const char *extra_headers, const char *body, size_t n) {
        assert(c);
        assert(body || n == 0);

        if (c->resp_started || c->dead)
                return;
        c->resp_started = c->resp_done = true;
        http_req_stat_end(&c->stat, status);
        if (!c->req_done || c->protocol)
                c->resp_close = true;
        outf(c, "HTTP/1.1 %u %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
             "Cache-Control: no-store\r\n%s%s\r\n", status, http_status_reason(status), c->head_request ? 0 : n,
             extra_headers ?: "", c->resp_close || !c->keep_alive ? "Connection: close\r\n" : "");
        if (!c->head_request)
                out(c, body, n);
}

/* A status page of our own: one line saying what went wrong. */
static void reply_error(HttpConn *c, unsigned status, const char *format, ...) _printf_(3, 4);
static void reply_error(HttpConn *c, unsigned status, const char *format, ...) {
        char body[512];
        va_list ap;
        size_t n;

        va_start(ap, format);
        n = http_format_line(body, sizeof(body), format, ap);
        va_end(ap);
        reply_text(c, status, NULL, body, n);
        log_debug("HTTP %s: %u %.*s", c->peer, status, (int) n - 1, body);
}

/* ---- the response, from the tunnel ---- */

static bool conn_exchange_complete(HttpConn *c) {
        return c->busy && c->req_done && c->resp_done && !c->closing && !c->dead;
}

/* Reopens the stream's window for what the socket took. */
static void conn_ack(HttpConn *c) {
        if (c->unacked > 0 && c->stream && tls_conn_pending(c->conn) < OUT_HIGH_WATER) {
                mux_stream_consume(c->stream, c->unacked);
                c->unacked = 0;
                if (conn_exchange_complete(c))
                        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT); /* it waited for this */
        }
}

/* Input that no edge will announce again: read ahead, held by TLS, or left in the socket. */
static bool conn_has_input(HttpConn *c) {
        return c->in_len > 0 || tls_conn_readable(c->conn);
}

/* What the tunnel delivered goes out once its batch is handled: the head and the body of a
 * small response leave in one send(), and the peer wakes once. */
static void conn_schedule(HttpConn *c) {
        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
}

static void on_stream_head(MuxStream *s, HttpHead *h_, void *userdata) {
        _cleanup_(http_head_freep) HttpHead *h = h_;
        HttpConn *c = userdata;
        bool no_body;

        assert(c);
        assert(h);

        if (c->dead || c->resp_started)
                return;
        set_timer(c, TIMER_NONE);
        c->resp_started = true;
        http_req_stat_end(&c->stat, c->protocol && h->status == 200 ? 101 : h->status);

        if (c->protocol && h->status == 200) {
                /* The upstream switched protocols (RFC 8441 answers 200 for 101). */
                outf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n", c->protocol);
                http_write_fields(h, out_func, c);
                out(c, "\r\n", 2);
                c->upgraded = true;
                c->read_paused = false;
                (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT); /* bytes already read go now */
                return;
        }
        if (c->protocol)
                c->resp_close = true; /* refused: what follows the request may not be HTTP */

        no_body = c->head_request || h->status == 204 || h->status == 304 || h->status < 200;
        outf(c, "HTTP/1.1 %u %s\r\n", h->status, http_status_reason(h->status));
        http_write_fields(h, out_func, c);
        if (!no_body && !http_head_get(h, "content-length")) {
                if (c->minor >= 1) {
                        c->resp_chunked = true;
                        out(c, "Transfer-Encoding: chunked\r\n", 28);
                } else
                        c->resp_close = true; /* HTTP/1.0: the end of the body is the end of the connection */
        }
        if (c->resp_close || !c->keep_alive)
                out(c, "Connection: close\r\n", 19);
        else if (c->minor == 0)
                out(c, "Connection: keep-alive\r\n", 24);
        out(c, "\r\n", 2);
        conn_schedule(c);
}

static void on_stream_data(MuxStream *s, const uint8_t *p, size_t n, void *userdata) {
        HttpConn *c = userdata;

        if (c->dead || !c->resp_started || c->resp_done) {
                mux_stream_consume(s, n);
                return;
        }
        http_write_body(p, n, c->resp_chunked, out_func, c);
        c->unacked += n;
        conn_schedule(c);
}

static void on_stream_end(MuxStream *s, HttpHead *trailers_, void *userdata) {
        _cleanup_(http_head_freep) HttpHead *trailers = trailers_;
        HttpConn *c = userdata;

        if (c->dead || !c->resp_started || c->resp_done)
                return;
        if (c->resp_chunked) {
                out(c, "0\r\n", 3);
                if (trailers)
                        http_write_fields(trailers, out_func, c);
                out(c, "\r\n", 2);
        }
        c->resp_done = true;
        if (c->upgraded) /* the upstream closed its side of the upgraded connection */
                c->resp_close = true;
        conn_finish_exchange(c);
}

static void on_stream_writable(MuxStream *s, void *userdata) {
        HttpConn *c = userdata;
        c->read_paused = false;
        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
}

static void on_stream_closed(MuxStream *s, bool reset, void *userdata) {
        HttpConn *c = userdata;

        http_req_stat_bytes(&c->stat, s);
        c->stream = NULL;
        c->unacked = 0;
        if (c->dead)
                return;
        if (!c->resp_started) {
                set_timer(c, TIMER_NONE);
                reply_error(c, 502, "The tunnel client did not answer (it refused the request or went away).");
                if (c->req_done)
                        conn_finish_exchange(c);
                else
                        conn_close_after(c); /* the rest of the body has nowhere to go */
        } else if (!c->resp_done)
                conn_close(c); /* a truncated response must not look complete */
        else if (!c->req_done)
                conn_close_after(c);
        else
                conn_finish_exchange(c); /* it waited for the last bytes to be acknowledged */
}

static const MuxStreamOps conn_stream_ops = {
        .head = on_stream_head,
        .data = on_stream_data,
        .end = on_stream_end,
        .writable = on_stream_writable,
        .closed = on_stream_closed,
};

/* Both halves are done: the next request, or the end of the connection. */
static void conn_finish_exchange(HttpConn *c) {
        assert(c);

        if (c->dead || !c->req_done || !c->resp_done)
                return;
        /* Not while the response's last bytes still wait for a peer that may never read:
         * they count against the session budget only while the stream is ours, and the next
         * pipelined response would pile up behind them (conn_ack calls again). */
        conn_ack(c);
        if (c->unacked > 0)
                return;
        if (c->stream) { /* it ends on its own; we hear no more of it */
                http_req_stat_bytes(&c->stat, c->stream);
                mux_stream_set_ops(TAKE_PTR(c->stream), NULL, NULL);
        }
        if (c->resp_close || !c->keep_alive || (c->eof && c->in_len == 0)) {
                conn_close_after(c);
                return;
        }
        c->busy = false;
        c->protocol = mfree(c->protocol);
        http_msg_parser_next(&c->parser);
        set_timer(c, TIMER_IDLE);
        if (conn_has_input(c))
                conn_schedule(c); /* the next request may be here already */
        else {
                /* The response goes out now, not from one more round through the loop. */
                (void) sd_event_source_set_enabled(c->kick, SD_EVENT_OFF);
                conn_update(c);
        }
}


/* ---- the request, from the public side ---- */

/* HTTP-01 (RFC 8555 §8.3), answered for any well-formed token: the key authorization is
 * public, and only orders signed with our account key can use it. Everything else moves to
 * HTTPS. Whether it replied. */
static bool acme_reply(HttpConn *c, const HttpHead *h, const char *path, const char *authority) {
        const char *token = startswith(path, ACME_CHALLENGE_PREFIX);
        _cleanup_free_ char *body = NULL, *location = NULL;
        char host[256];

        if (token && (streq(h->method, "GET") || streq(h->method, "HEAD"))) {
                size_t n = strcspn(token, "?");
                if (!acme_token_is_valid(token, n)) {
                        reply_error(c, 404, "No such ACME challenge.");
                        return true;
                }
                body = asprintf_safe("%.*s.%s", (int) n, token, c->front->acme_thumbprint);
                if (!body) {
                        reply_error(c, 500, "Out of memory.");
                        return true;
                }
                log_debug("HTTP %s: ACME challenge %.*s answered.", c->peer, (int) n, token);
                reply_text(c, 200, NULL, body, strlen(body));
                return true;
        }
        if (http_front_normalize_host(authority, host, sizeof(host)) < 0) {
                reply_error(c, 400, "Missing or malformed Host.");
                return true;
        }
        if (c->front->https_port == 443)
                location = asprintf_safe("Location: https://%s%s\r\n", host, path);
        else
                location = asprintf_safe("Location: https://%s:%u%s\r\n", host, c->front->https_port, path);
        if (!location || strlen(location) > 800) {
                reply_error(c, 414, "The request target is too long to redirect.");
                return true;
        }
        c->resp_close = !c->req_done;
        reply_text(c, 308, location, "Moved to HTTPS.\n", 16);
        return true;
}

/* A new request head: the state of the exchange before it starts. */
static void conn_begin_exchange(HttpConn *c, const HttpHead *h) {
        assert(c);
        assert(h);

        assert(!c->busy); /* the parser waits for http_msg_parser_next() between requests */

        c->busy = true;
        c->req_done = c->resp_started = c->resp_done = c->resp_chunked = c->resp_close = c->upgraded = false;
        c->body_bytes = 0;
        c->minor = h->http_major == 1 ? h->http_minor : 0;
        c->keep_alive = h->keep_alive;
        c->head_request = streq(h->method, "HEAD");
        c->front->requests++;
        http_req_stat_begin(&c->stat, h->method);
        set_timer(c, TIMER_NONE);
}

/* What this port serves at all: HTTP/1.x, no CONNECT, exactly one Host (HTTP/1.1).
 * -ECANCELED: answered. */
static int request_validate(HttpConn *c, const HttpHead *h) {
        if (h->http_major != 1) {
                reply_error(c, 505, "Only HTTP/1.x here (HTTP/2 needs TLS with ALPN).");
                return -ECANCELED;
        }
        if (streq(h->method, "CONNECT")) {
                reply_error(c, 405, "CONNECT is not served here.");
                return -ECANCELED;
        }
        if (http_head_count(h, "Host") > 1 || (!http_head_get(h, "Host") && c->minor >= 1)) {
                reply_error(c, 400, "A request needs exactly one Host header.");
                return -ECANCELED;
        }
        if (!h->url) {
                reply_error(c, 400, "Malformed request target.");
                return -ECANCELED;
        }
        return 0;
}

/* The request target as a path and an authority (strings of h's arena, or "*" for OPTIONS):
 * origin-form takes the Host header; absolute-form its own authority, which wins over Host
 * (RFC 9112 §3.2.2). -ECANCELED: answered. */
static int request_target(HttpConn *c, HttpHead *h, const char **ret_path, const char **ret_authority) {
        const char *authority = NULL, *path = NULL;

        if (h->url[0] == '/')
                path = h->url;
        else if (strncasecmp(h->url, "http://", 7) == 0 || strncasecmp(h->url, "https://", 8) == 0) {
                const char *a = strstr(h->url, "://") + 3, *e = a + strcspn(a, "/?#");
                char *p;
                authority = http_head_strndup(h, a, (size_t) (e - a));
                if (!authority)
                        path = NULL; /* out of memory, below */
                else if (*e == '/')
                        path = e;
                else if ((p = http_head_strndup(h, e - 1, strlen(e) + 1))) {
                        p[0] = '/';
                        path = p;
                }
        } else if (streq(h->url, "*") && streq(h->method, "OPTIONS"))
                path = "*";
        else {
                reply_error(c, 400, "Malformed request target.");
                return -ECANCELED;
        }
        if (!authority)
                authority = http_head_get(h, "Host") ?: "";
        if (!path) {
                reply_error(c, 500, "Out of memory.");
                return -ECANCELED;
        }
        *ret_path = path;
        *ret_authority = authority;
        return 0;
}

/* MaxBodyBytes= by the announced length, and Expect. -ECANCELED: answered. */
static int request_check_limits(HttpConn *c, const HttpHead *h, bool *ret_expect_continue) {
        const char *v;

        if (def(c)->max_body_bytes > 0 && h->content_length > 0 &&
            (uint64_t) h->content_length > def(c)->max_body_bytes) {
                reply_error(c, 413, "The request body is larger than this server takes (MaxBodyBytes=%" PRIu64 ").",
                            def(c)->max_body_bytes);
                return -ECANCELED;
        }
        *ret_expect_continue = false;
        v = http_head_get(h, "Expect");
        if (v) {
                if (strcasecmp(v, "100-continue") != 0) {
                        reply_error(c, 417, "Only Expect: 100-continue is understood.");
                        return -ECANCELED;
                }
                *ret_expect_continue = c->minor >= 1;
        }
        return 0;
}

/* The head that goes into the tunnel: pseudo-fields, an Upgrade as extended CONNECT (RFC 8441),
 * the end-to-end fields with X-Forwarded-* and Forwarded, the length when it is known. */
static int request_tunnel_head(HttpConn *c, const HttpHead *h, const char *path, const char *authority,
                               const char *scheme, HttpHead **ret) {
        _cleanup_(http_head_freep) HttpHead *t = NULL;
        const char *v;
        int r;

        t = http_head_new(true);
        if (!t)
                return -ENOMEM;
        t->url = http_head_strdup(t, path);
        t->authority = http_head_strdup(t, authority);
        t->scheme = http_head_strdup(t, scheme);
        v = http_head_get(h, "Upgrade");
        if (h->upgrade && v && !http_header_has_token(v, "h2c")) {
                size_t n = strcspn(v, " \t,/");
                t->method = http_head_strdup(t, "CONNECT");
                t->protocol = http_head_strndup(t, v, n);
                c->protocol = strdup(v);
                if (!t->protocol || !c->protocol)
                        return -ENOMEM;
                for (char *p = t->protocol; *p; p++)
                        *p = ascii_tolower(*p);
        } else
                t->method = http_head_strdup(t, h->method);
        if (!t->method || !t->scheme || !t->url || !t->authority)
                return -ENOMEM;
        r = http_forward_fields(t, h, c->peer, c->peer_ip, c->local, scheme, c->via_proxy);
        if (r < 0)
                return r;
        if (h->content_length >= 0 && !h->chunked) {
                char cl[32];
                snprintf(cl, sizeof(cl), "%" PRId64, h->content_length);
                if (http_head_add(t, "Content-Length", 14, cl, strlen(cl)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* Opens the tunnel stream for t. Returns what on_request_head() does. */
static int request_forward(HttpConn *c, Mux *mux, const HttpHead *h, const HttpHead *t, const char *host,
                           bool expect_continue) {
        bool end_stream = !t->protocol && !h->chunked && h->content_length <= 0;
        int r;

        assert(!c->stream);

        r = mux_request(mux, t, end_stream, c->peer, &conn_stream_ops, c, &c->stream);
        if (r < 0) {
                reply_error(c, r == -EBUSY ? 503 : 502, "Cannot open a stream to the tunnel client: %s.",
                            strerror(-r));
                return -ECANCELED;
        }
        http_req_stat_open(&c->stat);
        if (expect_continue)
                out(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        if (end_stream || t->protocol)
                c->req_done = true;
        set_timer(c, TIMER_RESPONSE);
        log_debug("HTTP %s: %s %s%s -> tunnel", c->peer, h->method, host, t->url);
        return t->protocol ? 2 : 0;
}

/* The parser's head callback: -ECANCELED once answered here, 2 after an upgrade (what follows
 * is not HTTP), else 0. */
static int on_request_head(void *userdata, HttpHead *h_) {
        _cleanup_(http_head_freep) HttpHead *h = h_, *t = NULL;
        HttpConn *c = userdata;
        const char *scheme = c->front->creds ? "https" : "http", *authority = NULL, *path = NULL;
        char host[256];
        unsigned status;
        bool expect_continue;
        Mux *mux;
        int r;

        assert(c);
        assert(h);

        conn_begin_exchange(c, h);
        r = request_validate(c, h);
        if (r < 0)
                return r;
        r = request_target(c, h, &path, &authority);
        if (r < 0)
                return r;
        if (c->front->acme_thumbprint && acme_reply(c, h, path, authority))
                return -ECANCELED;
        r = request_check_limits(c, h, &expect_continue);
        if (r < 0)
                return r;
        mux = http_front_route(c->front, authority, &c->peer_addr, &status, host, &c->stat);
        if (!mux) {
                if (status == 400)
                        reply_error(c, 400, "Missing or malformed Host.");
                else if (status == 403)
                        reply_error(c, 403, "Access to %s is not allowed from your address.", host);
                else
                        reply_error(c, 502, "No tunnel client serves %s.", host);
                return -ECANCELED;
        }
        r = request_tunnel_head(c, h, path, authority, scheme, &t);
        if (r < 0)
                return r;
        return request_forward(c, mux, h, t, host, expect_continue);
}

static int on_request_body(void *userdata, const uint8_t *p, size_t n) {
        HttpConn *c = userdata;
        int r;

        c->body_bytes += n;
        if (def(c)->max_body_bytes > 0 && c->body_bytes > def(c)->max_body_bytes) {
                if (c->stream)
                        conn_drop_stream(c);
                reply_error(c, 413, "The request body is larger than this server takes (MaxBodyBytes=%" PRIu64 ").",
                            def(c)->max_body_bytes);
                return -ECANCELED;
        }
        if (!c->stream)
                return 0; /* the exchange already failed: discard */
        r = mux_stream_write(c->stream, p, n);
        if (r > 0)
                c->read_paused = true;
        return 0;
}

static int on_request_complete(void *userdata, HttpHead *trailers_) {
        _cleanup_(http_head_freep) HttpHead *trailers = trailers_;
        HttpConn *c = userdata;

        if (!c->req_done && c->stream)
                (void) mux_stream_end(c->stream, trailers ? trailers->headers : NULL, trailers ? trailers->n_headers : 0);
        c->req_done = true;
        conn_finish_exchange(c);
        return 0;
}

static const HttpMsgCallbacks request_callbacks = {
        .head = on_request_head,
        .body = on_request_body,
        .complete = on_request_complete,
};

/* Feeds input to the parser (or, once upgraded, to the stream). Returns how much was taken,
 * or -1 when the connection is done for. */
static ssize_t conn_feed(HttpConn *c, const uint8_t *p, size_t n) {
        ssize_t r;

        assert(c);
        assert(p || n == 0);

        if (c->upgraded) {
                if (c->stream && mux_stream_write(c->stream, p, n) > 0)
                        c->read_paused = true;
                return (ssize_t) n;
        }
        r = http_msg_parser_feed(&c->parser, p, n);
        if (r >= 0) {
                if (!c->busy && !http_msg_parser_idle(&c->parser) && c->timer_kind == TIMER_IDLE)
                        set_timer(c, TIMER_HEAD); /* a head has begun: it must not take forever */
                return r;
        }
        if (c->stream)
                conn_drop_stream(c);
        switch (r) {
        case -E2BIG:
                reply_error(c, 431, "The request head is larger than MaxHeaderBytes=%" PRIu64 ".", def(c)->max_header_bytes);
                break;
        case -EMLINK:
                reply_error(c, 431, "The request has more than MaxHeaders=%u header fields.", def(c)->max_headers);
                break;
        case -EBADMSG:
                reply_error(c, 400, "Malformed HTTP request.");
                break;
        case -ECANCELED:
        case -EPIPE:
                break;
        default:
                reply_error(c, 500, "Internal error: %s.", strerror((int) -r));
        }
        c->resp_close = true;
        conn_close_after(c);
        return -1;
}

static bool conn_wants_input(HttpConn *c) {
        if (c->dead || c->closing || c->read_paused || (c->eof && c->in_len == 0))
                return false; /* after the peer's close, what it sent before still counts */
        if (c->upgraded)
                return true;
        return !(c->busy && c->req_done); /* the next request waits for this response */
}

/* While a response is on its way, what the peer sends next (a pipelined request, or its
 * close) is read ahead into c->in, up to a bound; the rest waits in the socket. */
#define READ_AHEAD_MAX (16 * 1024)

static bool conn_reads_ahead(HttpConn *c) {
        return !c->dead && !c->closing && !c->eof && !c->read_paused && !c->upgraded && c->busy && c->req_done &&
               c->in_len < READ_AHEAD_MAX;
}

static int conn_keep(HttpConn *c, const uint8_t *p, size_t n) {
        uint8_t *t = realloc(c->in, c->in_len + n);
        if (!t)
                return -ENOMEM;
        memcpy(t + c->in_len, p, n);
        c->in = t;
        c->in_len += n;
        return 0;
}

static void conn_read_ahead(HttpConn *c) {
        uint8_t *p;
        size_t n;
        int r;

        while (conn_reads_ahead(c) && tls_conn_readable(c->conn)) {
                r = tls_conn_recv(c->conn, &p, &n);
                if (r == -EAGAIN)
                        return;
                if (r < 0) {
                        log_debug("HTTP %s: %s", c->peer, tls_conn_error(c->conn));
                        conn_close(c);
                } else if (r == 0)
                        c->eof = true; /* the response still goes out; then the connection closes */
                else if (conn_keep(c, p, n) < 0)
                        conn_close(c);
        }
}

/* The peer closed its side, and all it sent before has been fed to the parser. */
static void conn_eof(HttpConn *c) {
        if (c->upgraded) {
                if (c->stream)
                        (void) mux_stream_end(c->stream, NULL, 0);
        } else if (!c->busy)
                conn_close_after(c); /* between requests: what is queued still goes out */
        else if (!c->req_done)
                conn_close(c); /* a request cut short */
}

static void conn_read(HttpConn *c) {
        while (conn_wants_input(c)) {
                uint8_t *p;
                size_t n;
                ssize_t used;
                int r;

                if (c->in_len > 0) {
                        used = conn_feed(c, c->in, c->in_len);
                        if (used < 0)
                                return;
                        memmove(c->in, c->in + used, c->in_len - (size_t) used);
                        c->in_len -= (size_t) used;
                        if (used == 0 && c->in_len > 0 && !c->upgraded) {
                                if (c->eof)
                                        conn_close(c); /* nothing more will come to complete it */
                                break;
                        }
                        if (c->in_len == 0 && c->eof) {
                                conn_eof(c); /* read ahead: the close came after these bytes */
                                return;
                        }
                        continue;
                }
                /* A body on its way into the tunnel: no read while the stream or the session's
                 * queue of request bodies is full, or each connection would add one to it. */
                if (c->stream && (c->upgraded || (c->busy && !c->req_done)) && mux_stream_full(c->stream)) {
                        c->read_paused = true;
                        break;
                }
                if (!tls_conn_readable(c->conn))
                        break; /* the next edge tells when there is more */
                r = tls_conn_recv(c->conn, &p, &n);
                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        log_debug("HTTP %s: %s", c->peer, tls_conn_error(c->conn));
                        conn_close(c);
                        return;
                }
                if (r == 0) {
                        c->eof = true;
                        conn_eof(c);
                        return;
                }
                used = conn_feed(c, p, n);
                if (used < 0)
                        return;
                if ((size_t) used < n) {
                        /* Pipelined (or post-upgrade) bytes: keep them for later. */
                        if (conn_keep(c, p + used, n - (size_t) used) < 0) {
                                conn_close(c);
                                return;
                        }
                        if (c->in_len > def(c)->max_header_bytes + 65536) {
                                conn_close(c); /* pipelining that much is not a browser */
                                return;
                        }
                }
        }
}

/* sd-event re-arms an EPOLLET source with epoll_ctl() on every call, changed or not. */
static void conn_set_events(HttpConn *c, uint32_t ev) {
        if (ev != c->io_events && sd_event_source_set_io_events(c->io, ev) >= 0)
                c->io_events = ev;
}

static void conn_update(HttpConn *c) {
        uint32_t ev = 0;
        int r;

        assert(c);

        if (c->dead)
                return;
        r = tls_conn_flush(c->conn);
        if (r < 0 && r != -EAGAIN) {
                conn_close(c);
                return;
        }
        conn_ack(c);
        if (c->closing && tls_conn_pending(c->conn) == 0 && !c->lingering) {
                /* Everything is out: stop sending, and read until the peer is done, so the
                 * kernel does not answer its late bytes with a reset that kills our reply. */
                if (c->stream)
                        conn_drop_stream(c);
                tls_conn_bye(c->conn);
                (void) tls_conn_flush(c->conn);
                (void) shutdown(tls_conn_fd(c->conn), SHUT_WR);
                c->lingering = true;
                set_timer(c, TIMER_LINGER);
        }
        /* Edge-triggered, and EPOLLIN always on: an edge while we do not want input only marks
         * the socket readable. Level-triggered, every socket the loop had not come to yet was
         * polled again on each of its epoll_wait() calls (one per dispatched event), which cost
         * a tenth of the CPU with 64 busy connections; and turning EPOLLIN off and on around
         * each exchange cost epoll_ctl() calls. */
        ev = EPOLLIN | EPOLLRDHUP | EPOLLET;
        if (!c->lingering && tls_conn_pending(c->conn) > 0)
                ev |= EPOLLOUT;
        conn_set_events(c, ev);
        /* Output the peer does not take: bounded by IdleTimeoutSec= without progress (any byte
         * the socket took since the timer was armed re-arms it), wherever no other timer bounds
         * the connection. Nothing waiting: the upstream's pace, not ours. */
        if (!c->lingering && tls_conn_pending(c->conn) > 0) {
                int on = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(c->timer, &on);
                if (c->timer_kind == TIMER_NONE || on == SD_EVENT_OFF ||
                    (c->timer_kind == TIMER_SEND && tls_conn_sent(c->conn) != c->sent_mark)) {
                        c->sent_mark = tls_conn_sent(c->conn);
                        c->outq_mark = socket_outq(tls_conn_fd(c->conn));
                        set_timer(c, TIMER_SEND);
                }
        } else if (c->timer_kind == TIMER_SEND)
                set_timer(c, c->busy ? TIMER_NONE : TIMER_IDLE); /* drained after the exchange: idle */
}

static void conn_linger(HttpConn *c) {
        char buf[4096];
        for (;;) {
                ssize_t n = recv(tls_conn_fd(c->conn), buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                conn_close(c);
                return;
        }
}

static int conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        HttpConn *c = userdata;

        assert(c);
        assert(c->conn);

        if (c->lingering) {
                conn_linger(c);
                return 0;
        }
        tls_conn_edge(c->conn, revents);
        if (!c->handshake_done) {
                int r = tls_conn_handshake(c->conn);
                if (r < 0) {
                        log_debug("HTTP %s: %s", c->peer, tls_conn_error(c->conn));
                        conn_close(c);
                        return 0;
                }
                if (r == 0) {
                        conn_set_events(c, EPOLLET | EPOLLRDHUP |
                                                   (tls_conn_handshake_wants_write(c->conn) ? EPOLLOUT : EPOLLIN));
                        return 0;
                }
                c->handshake_done = true;
                if (tls_conn_alpn_is(c->conn, "h2")) {
                        /* HTTP/2: the connection moves to h2front.c. */
                        c->io = sd_event_source_disable_unref(c->io);
                        /* It keeps its place under MaxConnections= (h2_conn_start() counts it). */
                        if (h2_conn_start(c->front, &c->front->h2conns, TAKE_PTR(c->conn), &c->peer_addr,
                                          c->peer, c->peer_ip, c->local, c->via_proxy) < 0)
                                log_debug("HTTP %s: cannot start HTTP/2.", c->peer);
                        conn_close(c);
                        return 0;
                }
        }
        if (revents & EPOLLOUT) {
                int r = tls_conn_flush(c->conn);
                if (r < 0 && r != -EAGAIN) {
                        conn_close(c);
                        return 0;
                }
                conn_ack(c);
        }
        if (conn_wants_input(c))
                conn_read(c);
        else
                conn_read_ahead(c);
        conn_update(c);
        return 0;
}

static int conn_kick(sd_event_source *src, void *userdata) {
        HttpConn *c = userdata;

        assert(c);

        if (c->dead) {
                conn_free(c);
                return 0;
        }
        if (conn_exchange_complete(c) && c->unacked == 0)
                conn_finish_exchange(c); /* it waited for the output to drain */
        if (c->handshake_done && !c->lingering && conn_has_input(c))
                conn_read(c);
        conn_update(c);
        if (c->dead)
                conn_free(c);
        return 0;
}

static int conn_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        HttpConn *c = userdata;

        assert(c);

        /* Not idle while the last response is still on its way: closing would cut its tail. */
        if (c->timer_kind == TIMER_IDLE && !c->lingering &&
            (tls_conn_pending(c->conn) > 0 || socket_outq(tls_conn_fd(c->conn)) > 0))
                c->timer_kind = TIMER_SEND;

        switch (c->timer_kind) {
        case TIMER_RESPONSE:
                log_debug("HTTP %s: no response within %" PRIu64 " s.", c->peer,
                          def(c)->response_timeout_usec / USEC_PER_SEC);
                if (c->stream)
                        conn_drop_stream(c);
                /* The connection closes after it: say so, or a pipelined request behind it would
                 * look lost to the visitor (from the outside review). */
                c->resp_close = true;
                reply_error(c, 504, "The upstream did not answer within %" PRIu64 " s (ResponseTimeoutSec=).",
                            def(c)->response_timeout_usec / USEC_PER_SEC);
                conn_close_after(c);
                break;
        case TIMER_HEAD:
                if (c->handshake_done && !http_msg_parser_idle(&c->parser) && !c->busy) {
                        c->busy = true; /* so the 408 says "close" */
                        reply_error(c, 408, "The request head did not arrive in time.");
                        conn_close_after(c);
                        break;
                }
                _fallthrough_;
        case TIMER_SEND: {
                /* The peer may have taken bytes out of the kernel's queue without the socket
                 * becoming writable (an edge comes only once half the buffer drained). (A head
                 * timeout falls through here: it closes.) */
                size_t q = socket_outq(tls_conn_fd(c->conn));
                if (c->timer_kind == TIMER_SEND && (q < c->outq_mark || tls_conn_sent(c->conn) != c->sent_mark)) {
                        c->outq_mark = q;
                        c->sent_mark = tls_conn_sent(c->conn);
                        set_timer(c, TIMER_SEND);
                        break;
                }
        }
                _fallthrough_;
        default:
                if (c->timer_kind == TIMER_SEND)
                        log_debug("HTTP %s: the peer took nothing for %" PRIu64 " s (IdleTimeoutSec=), closing.",
                                  c->peer, def(c)->idle_timeout_usec / USEC_PER_SEC);
                conn_close(c);
        }
        if (c->dead)
                conn_free(c);
        return 0;
}

static const char *peer_ip(const SocketAddress *a, char *buf, size_t size) {
        const void *addr = a->sa.sa_family == AF_INET6 ? (const void *) &a->in6.sin6_addr : (const void *) &a->in.sin_addr;
        if (!inet_ntop(a->sa.sa_family, addr, buf, (socklen_t) size))
                snprintf(buf, size, "unknown");
        /* v4-mapped addresses read as v4 */
        if (strncmp(buf, "::ffff:", 7) == 0 && strchr(buf, '.'))
                memmove(buf, buf + 7, strlen(buf + 7) + 1);
        return buf;
}

int h1_conn_accept(int cfd, const SocketAddress *peer, bool via_proxy, void *userdata) {
        _cleanup_close_ int fd = cfd;
        HttpFront *f = userdata;
        HttpConn *c;
        int r;

        assert(f);
        assert(fd >= 0);
        assert(peer);

        if (f->n_conns >= f->manager->def->max_connections)
                return 0; /* over MaxConnections=: closed at once */
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->front = f;
        c->peer_addr = *peer;
        c->via_proxy = via_proxy;
        socket_address_format(peer, c->peer);
        peer_ip(peer, c->peer_ip, sizeof(c->peer_ip));
        {
                SocketAddress local = { .len = sizeof(local.storage) };
                if (getsockname(fd, &local.sa, &local.len) >= 0)
                        socket_address_format(&local, c->local);
        }
        LIST_PREPEND(f->conns, c);
        f->n_conns++;
        http_msg_parser_init(&c->parser, true, def(c)->max_header_bytes, def(c)->max_headers, &request_callbacks,
                             c);
        r = tls_conn_new_server(TAKE_FD(fd), f->creds, &c->conn);
        if (r < 0) {
                conn_free(c);
                return 0;
        }
        if (f->creds)
                (void) tls_conn_set_alpn(c->conn, (const char *const[]) { "h2", "http/1.1" }, 2);
        c->io_events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        if (sd_event_add_io(f->manager->event, &c->io, tls_conn_fd(c->conn), c->io_events, conn_io, c) < 0 ||
            sd_event_add_time_relative(f->manager->event, &c->timer, CLOCK_MONOTONIC,
                                       def(c)->handshake_timeout_usec, 0, conn_timeout, c) < 0 ||
            sd_event_add_defer(f->manager->event, &c->kick, conn_kick, c) < 0) {
                conn_free(c);
                return 0;
        }
        (void) sd_event_source_set_description(c->io, "http-conn-io");
        (void) sd_event_source_set_description(c->timer, "http-conn-timer");
        (void) sd_event_source_set_description(c->kick, "http-conn-kick");
        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_OFF);
        c->timer_kind = TIMER_HEAD;
        return 0;
}

void h1_conns_free(HttpConn **list) {
        assert(list);

        while (*list)
                conn_free(*list);
}
