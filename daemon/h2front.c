// SPDX-License-Identifier: LGPL-2.1-or-later
/* HTTP/2 on the public HTTPS port (ALPN "h2"), through nghttp2; see httpfront.h. Each public
 * stream becomes one request stream through the tunnel. Request bodies go into the tunnel
 * stream as they arrive; the public stream's window reopens only while the tunnel stream (and
 * the session's queue of request bodies, mux.c) has room, and the connection's window only for
 * bytes the tunnel has taken: one connection never makes this process hold more than
 * H2_CONN_WINDOW of request bodies. Response bodies wait in a per-stream buffer for the public
 * side, and the tunnel stream's window reopens as nghttp2 takes them; until then they count
 * against the session's buffer budget (mux.c). The limits of the HTTP/1.1 side hold here too:
 * MaxConnections= (the connection keeps the place it took in httpfront.c), IdleTimeoutSec=
 * (idle: no stream open, PING and SETTINGS are not activity; stalled: response bytes wait and
 * none leave), ResponseTimeoutSec= (a timer per stream) and MaxBodyBytes= (DATA counted,
 * whatever content-length said). */

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include "buffer.h"
#include "http1.h"
#include "httpfront.h"
#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "time-util.h"

#define OUT_HIGH_WATER (1024 * 1024)
#define H2_WINDOW (256 * 1024)            /* per stream */
#define H2_CONN_WINDOW (1024 * 1024)      /* per connection: request bodies held, at most */
#define H2_MAX_STREAMS 100

typedef struct H2Stream H2Stream;

struct H2Conn {
        HttpFront *front;
        H2Conn **list;
        H2Conn *prev, *next;
        TlsConn *conn;
        sd_event_source *io, *timer, *kick;
        nghttp2_session *h2;
        SocketAddress peer_addr; /* what access lists judge */
        char peer[SOCKADDR_STR_MAX];
        char peer_ip[INET6_ADDRSTRLEN + 2];
        char local[SOCKADDR_STR_MAX];
        bool via_proxy;         /* from a trusted load balancer (AcceptProxyProtocol=) */
        H2Stream *streams;
        uint64_t sent, sent_mark; /* response body bytes taken for sending; at the last check */
        uint64_t tls_sent_mark;   /* tls_conn_sent() at the last check */
        size_t outq_mark;         /* socket_outq() at the last check */
        bool dead, stall_check;
};

struct H2Stream {
        H2Conn *c;
        H2Stream *prev, *next;
        int32_t id;
        HttpHead *req;
        bool too_large, head_request, req_done, body_refused;
        MuxStream *tunnel;
        size_t paused;          /* request bytes not yet acknowledged to the public peer */
        size_t in_tunnel;       /* request bytes queued in the tunnel stream, not sent yet: their
                                 * connection window comes back as they go */
        uint64_t body_bytes;    /* request DATA so far (MaxBodyBytes=) */
        sd_event_source *timer; /* the response head must come (ResponseTimeoutSec=) */

        uint8_t *buf;           /* response body bytes for the public side */
        size_t off, len, cap;
        uint64_t sent, sent_mark; /* of them taken for sending; at the last stall check */
        uint64_t sent_pos;      /* tls_conn_sent() once the last of them has gone into the socket
                                 * (an upper bound): the peer has them when its TCP acked that */
        bool marked;            /* open at the last stall check: sent_mark is meaningful */
        bool responded, eof, deferred;
        HttpHead *trailers;
        HttpReqStat stat;
};

static const Definition *def(H2Conn *c) {
        return http_front_def(c->front);
}

static void h2_kick(H2Conn *c) {
        if (!c->dead)
                (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
}

/* One timer, IdleTimeoutSec=. With no stream open it is the idle bound: frames that open none
 * (PING, SETTINGS, WINDOW_UPDATE) must not keep a connection -- and its place under
 * MaxConnections= -- forever. With streams open it checks for a peer that takes none of the
 * response bytes waiting for it (a zero window, or a socket it does not read): such a peer
 * would keep its streams, their MaxStreamsPerClient= slots and their share of the session's
 * buffer budget for as long as it liked. h2_idle() says what counts as progress. */
static void h2_update_idle(H2Conn *c) {
        bool check = c->streams;

        if (check && c->stall_check)
                return; /* running: its next expiry looks at progress */
        c->stall_check = check;
        c->sent_mark = c->sent;
        for (H2Stream *st = c->streams; st; st = st->next) {
                st->sent_mark = st->sent;
                st->marked = true;
        }
        c->tls_sent_mark = tls_conn_sent(c->conn);
        c->outq_mark = socket_outq(tls_conn_fd(c->conn));
        (void) sd_event_source_set_time_relative(c->timer, def(c)->idle_timeout_usec);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* Whether response bytes (or frames) wait for the peer. */
static bool h2_output_waits(H2Conn *c) {
        if (tls_conn_pending(c->conn) > 0)
                return true;
        for (H2Stream *st = c->streams; st; st = st->next)
                if (st->len > 0)
                        return true;
        return false;
}

/* The tunnel stream will send no more of what it queued: that connection window is free. */
static void stream_return_window(H2Stream *st) {
        if (st->in_tunnel > 0 && !st->c->dead) {
                (void) nghttp2_session_consume_connection(st->c->h2, st->in_tunnel);
                h2_kick(st->c);
        }
        st->in_tunnel = 0;
}

static void stream_drop_tunnel(H2Stream *st) {
        if (st->tunnel) {
                http_req_stat_bytes(&st->stat, st->tunnel);
                mux_stream_reset(TAKE_PTR(st->tunnel));
        }
        stream_return_window(st);
}

static H2Stream *stream_free(H2Stream *st) {
        if (!st)
                return NULL;
        stream_drop_tunnel(st);
        sd_event_source_disable_unref(st->timer);
        LIST_REMOVE(st->c->streams, st);
        if (!st->c->dead)
                h2_update_idle(st->c);
        http_head_free(st->req);
        http_head_free(st->trailers);
        free(st->buf);
        free(st);
        return NULL;
}

static H2Conn *h2_conn_free(H2Conn *c) {
        if (!c)
                return NULL;
        while (c->streams)
                stream_free(c->streams);
        LIST_REMOVE(*c->list, c);
        http_front_count_conn(c->front, false);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->kick);
        if (c->h2)
                nghttp2_session_del(c->h2);
        tls_conn_free(c->conn);
        free(c);
        return NULL;
}

static void h2_conn_close(H2Conn *c) {
        assert(c);

        c->dead = true;
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT); /* frees from the loop */
}

static int buf_append(H2Stream *st, const void *p, size_t n) {
        if (buffer_reserve(&st->buf, &st->off, st->len, &st->cap, n) < 0)
                return -ENOMEM;
        memcpy(st->buf + st->off + st->len, p, n);
        st->len += n;
        return 0;
}

/* ---- responses to the public side ---- */

static ssize_t body_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *out, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        H2Stream *st = source->ptr;
        size_t n = MIN(length, st->len);

        if (n == 0 && !st->eof) {
                st->deferred = true;
                return NGHTTP2_ERR_DEFERRED;
        }
        memcpy(out, st->buf + st->off, n);
        st->off += n;
        st->len -= n;
        st->sent += n;
        st->c->sent += n;
        /* This frame goes out behind what TLS already holds; 96 covers its header and up to
         * two records' overhead. */
        st->sent_pos = tls_conn_sent(st->c->conn) + tls_conn_pending(st->c->conn) + n + 96;
        if (st->tunnel && n > 0)
                mux_stream_consume(st->tunnel, n); /* taken: the tunnel may send more */
        if (st->len == 0 && st->eof) {
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
                if (st->trailers && st->trailers->n_headers > 0) {
                        nghttp2_nv nva[64];
                        size_t k = 0;
                        for (size_t i = 0; i < st->trailers->n_headers && k < ELEMENTSOF(nva); i++)
                                nva[k++] = (nghttp2_nv) { (uint8_t *) st->trailers->headers[i].name,
                                                          (uint8_t *) st->trailers->headers[i].value,
                                                          strlen(st->trailers->headers[i].name),
                                                          strlen(st->trailers->headers[i].value),
                                                          NGHTTP2_NV_FLAG_NONE };
                        if (nghttp2_submit_trailer(session, stream_id, nva, k) == 0)
                                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                }
        }
        return (ssize_t) n;
}

/* Status and fields (lower-case names; HTTP/2 has no hop-by-hop fields) with our body. */
static int submit_response(H2Stream *st, unsigned status, const HttpHeader *h, size_t n, bool body) {
        nghttp2_data_provider prd = { .source.ptr = st, .read_callback = body_read_cb };
        _cleanup_free_ nghttp2_nv *nva = new0(nghttp2_nv, n + 1);
        _cleanup_free_ char *names = NULL;
        char s[4];
        size_t k = 0, total = 0, o = 0;

        assert(st);
        assert(h || n == 0);

        for (size_t i = 0; i < n; i++)
                total += strlen(h[i].name) + 1;
        names = malloc(total + 1);
        if (!nva || !names)
                return -ENOMEM;
        snprintf(s, sizeof(s), "%03u", MIN(status, 999u));
        nva[k++] = (nghttp2_nv) { (uint8_t *) ":status", (uint8_t *) s, 7, 3, NGHTTP2_NV_FLAG_NONE };
        for (size_t i = 0; i < n; i++) {
                size_t nl = strlen(h[i].name);
                for (size_t j = 0; j <= nl; j++)
                        names[o + j] = ascii_tolower(h[i].name[j]);
                nva[k++] = (nghttp2_nv) { (uint8_t *) names + o, (uint8_t *) h[i].value, nl, strlen(h[i].value),
                                          NGHTTP2_NV_FLAG_NONE };
                o += nl + 1;
        }
        st->responded = true;
        http_req_stat_end(&st->stat, status);
        if (nghttp2_submit_response(st->c->h2, st->id, nva, k, body ? &prd : NULL) < 0)
                return -EINVAL;
        h2_kick(st->c);
        return 0;
}

static void reply_error(H2Stream *st, unsigned status, const char *format, ...) _printf_(3, 4);
static void reply_error(H2Stream *st, unsigned status, const char *format, ...) {
        HttpHeader h[] = { { (char *) "content-type", (char *) "text/plain; charset=utf-8" },
                           { (char *) "cache-control", (char *) "no-store" } };
        char body[512];
        va_list ap;
        size_t n;

        assert(st);

        if (st->responded)
                return;
        va_start(ap, format);
        n = http_format_line(body, sizeof(body), format, ap);
        va_end(ap);
        st->len = st->off = 0;
        st->eof = true;
        if (!st->head_request && buf_append(st, body, n) < 0)
                st->len = 0;
        log_debug("HTTP/2 %s: %u %.*s", st->c->peer, status, (int) n - 1, body);
        /* What else the peer sends for this request is dropped (data_chunk_cb). */
        if (submit_response(st, status, h, ELEMENTSOF(h), !st->head_request) < 0)
                (void) nghttp2_submit_rst_stream(st->c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->c);
}

/* ---- the tunnel side of a stream ---- */

static void on_tunnel_head(MuxStream *s, HttpHead *h_, void *userdata) {
        _cleanup_(http_head_freep) HttpHead *h = h_;
        H2Stream *st = userdata;
        bool body = !st->head_request && h->status != 204 && h->status != 304;

        st->timer = sd_event_source_disable_unref(st->timer);
        if (submit_response(st, h->status, h->headers, h->n_headers, body) < 0)
                (void) nghttp2_submit_rst_stream(st->c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

static void on_tunnel_data(MuxStream *s, const uint8_t *p, size_t n, void *userdata) {
        H2Stream *st = userdata;

        if (buf_append(st, p, n) < 0) {
                mux_stream_consume(s, n);
                return;
        }
        if (st->deferred) {
                st->deferred = false;
                (void) nghttp2_session_resume_data(st->c->h2, st->id);
        }
        h2_kick(st->c);
}

static void on_tunnel_end(MuxStream *s, HttpHead *trailers, void *userdata) {
        H2Stream *st = userdata;

        st->eof = true;
        http_head_free(st->trailers);
        st->trailers = trailers;
        if (st->deferred) {
                st->deferred = false;
                (void) nghttp2_session_resume_data(st->c->h2, st->id);
        }
        h2_kick(st->c);
}

static void on_tunnel_writable(MuxStream *s, void *userdata) {
        H2Stream *st = userdata;

        if (st->paused > 0) {
                (void) nghttp2_session_consume_stream(st->c->h2, st->id, st->paused);
                st->paused = 0;
                h2_kick(st->c);
        }
}

static void on_tunnel_sent(MuxStream *s, size_t n, void *userdata) {
        H2Stream *st = userdata;
        size_t k = MIN(n, st->in_tunnel);

        /* Taken by the tunnel: the peer may send as much more on this connection. */
        st->in_tunnel -= k;
        (void) nghttp2_session_consume_connection(st->c->h2, k);
        h2_kick(st->c);
}

static void on_tunnel_closed(MuxStream *s, bool reset, void *userdata) {
        H2Stream *st = userdata;

        http_req_stat_bytes(&st->stat, s);
        st->tunnel = NULL;
        stream_return_window(st);
        st->timer = sd_event_source_disable_unref(st->timer);
        if (!st->responded)
                reply_error(st, 502, "The tunnel client did not answer (it refused the request or went away).");
        else if (!st->eof || reset)
                (void) nghttp2_submit_rst_stream(st->c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->c);
}

static const MuxStreamOps tunnel_ops = {
        .head = on_tunnel_head,
        .data = on_tunnel_data,
        .end = on_tunnel_end,
        .writable = on_tunnel_writable,
        .sent = on_tunnel_sent,
        .closed = on_tunnel_closed,
};

/* ---- requests from the public side ---- */

static int response_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        H2Stream *st = userdata;
        H2Conn *c = st->c;

        st->timer = sd_event_source_disable_unref(st->timer);
        log_debug("HTTP/2 %s: no response within %" PRIu64 " s.", c->peer, def(c)->response_timeout_usec / USEC_PER_SEC);
        /* Its place under MaxStreamsPerClient= comes free now, not when the upstream wakes. */
        stream_drop_tunnel(st);
        reply_error(st, 504, "The upstream did not answer within %" PRIu64 " s (ResponseTimeoutSec=).",
                    def(c)->response_timeout_usec / USEC_PER_SEC);
        return 0;
}

/* More request DATA than MaxBodyBytes=: 413 if nothing was answered yet, else the public
 * stream is reset; either way the upstream gets no more of it. */
static void body_too_large(H2Stream *st) {
        H2Conn *c = st->c;

        st->timer = sd_event_source_disable_unref(st->timer);
        stream_drop_tunnel(st);
        if (st->responded)
                (void) nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        else
                reply_error(st, 413, "The request body is larger than this server takes (MaxBodyBytes=%" PRIu64 ").",
                            def(c)->max_body_bytes);
        h2_kick(c);
}

static void handle_request(H2Stream *st, bool end_stream) {
        H2Conn *c = st->c;
        HttpHead *h = st->req;
        _cleanup_(http_head_freep) HttpHead *t = NULL;
        const char *authority = h->authority ?: http_head_get(h, "host"), *host_hdr = http_head_get(h, "host");
        const char *cl = http_head_get(h, "content-length");
        char host[256];
        unsigned status;
        Mux *mux;
        int r;

        assert(h);
        assert(!st->tunnel);

        http_front_count_request(c->front);
        http_req_stat_begin(&st->stat, h->method);
        st->head_request = h->method && streq(h->method, "HEAD");
        if (st->too_large)
                return reply_error(st, 431, "The request head is larger than MaxHeaderBytes=/MaxHeaders= allow.");
        if (!h->method || streq(h->method, "CONNECT"))
                return reply_error(st, 405, "CONNECT is not served here.");
        if (!h->url || !authority)
                return reply_error(st, 400, "A request needs :path and :authority.");
        /* As HTTP/1.1 wants exactly one Host; and one that names another host than :authority
         * makes the request malformed (RFC 9113 §8.3.1). */
        if (http_head_count(h, "host") > 1 || (h->authority && host_hdr && strcasecmp(host_hdr, h->authority) != 0))
                return reply_error(st, 400, "Conflicting :authority and host.");
        if (cl && def(c)->max_body_bytes > 0 && strtoull(cl, NULL, 10) > def(c)->max_body_bytes)
                return reply_error(st, 413, "The request body is larger than this server takes (MaxBodyBytes=%" PRIu64
                                   ").", def(c)->max_body_bytes);
        mux = http_front_route(c->front, authority, &c->peer_addr, &status, host, &st->stat);
        if (!mux) {
                if (status == 400)
                        return reply_error(st, 400, "Missing or malformed :authority.");
                if (status == 403)
                        return reply_error(st, 403, "Access to %s is not allowed from your address.", host);
                return reply_error(st, 502, "No tunnel client serves %s.", host);
        }
        t = http_head_new(true);
        if (!t || !(t->method = http_head_strdup(t, h->method)) || !(t->url = http_head_strdup(t, h->url)) ||
            !(t->authority = http_head_strdup(t, authority)) || !(t->scheme = http_head_strdup(t, "https")))
                return reply_error(st, 500, "Out of memory.");
        r = http_forward_fields(t, h, c->peer, c->peer_ip, c->local, "https", c->via_proxy);
        if (r >= 0 && cl)
                r = http_head_add(t, "content-length", 14, cl, strlen(cl));
        if (r < 0)
                return reply_error(st, 500, "Out of memory.");
        r = mux_request(mux, t, end_stream, c->peer, &tunnel_ops, st, &st->tunnel);
        if (r < 0)
                return reply_error(st, r == -EBUSY ? 503 : 502, "Cannot open a stream to the tunnel client: %s.",
                                   strerror(-r));
        http_req_stat_open(&st->stat);
        r = sd_event_add_time_relative(http_front_event(c->front), &st->timer, CLOCK_MONOTONIC,
                                       def(c)->response_timeout_usec, 0, response_timeout, st);
        if (r < 0) {
                mux_stream_reset(TAKE_PTR(st->tunnel));
                return reply_error(st, 500, "Internal error: %s.", strerror(-r));
        }
        (void) sd_event_source_set_description(st->timer, "h2-stream-response");
        log_debug("HTTP/2 %s: %s %s%s -> tunnel", c->peer, h->method, host, h->url);
}

static int begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        H2Conn *c = user_data;
        H2Stream *st;

        if (frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (st) { /* trailers */
                http_head_free(st->trailers);
                st->trailers = http_head_new(true);
                return st->trailers ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st = calloc(1, sizeof(*st));
        if (!st || !(st->req = http_head_new(true))) {
                free(st);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st->c = c;
        st->id = frame->hd.stream_id;
        LIST_PREPEND(c->streams, st);
        h2_update_idle(c);
        nghttp2_session_set_stream_user_data(session, st->id, st);
        return 0;
}

static int header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
        H2Conn *c = user_data;
        H2Stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        HttpHead *h;

        if (!st || frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        h = st->tunnel || st->responded ? st->trailers : st->req;
        if (!h)
                return 0;
        /* Pseudo-header fields count as the request line does on HTTP/1.1: a 1 MiB :path
         * must not get past MaxHeaderBytes=. */
        if (h->bytes + namelen + valuelen > def(c)->max_header_bytes) {
                st->too_large = true;
                return 0;
        }
        if (namelen > 0 && name[0] == ':') {
                if (http_head_add_h2(h, (const char *) name, namelen, (const char *) value, valuelen) < 0)
                        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                h->bytes += namelen + valuelen;
                return 0;
        }
        if (h->n_headers >= def(c)->max_headers) {
                st->too_large = true;
                return 0;
        }
        if (http_head_add(h, (const char *) name, namelen, (const char *) value, valuelen) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
}

static int frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        H2Stream *st;
        bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

        if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
                return 0;
        st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!st)
                return 0;
        if (end)
                st->req_done = true;
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
                handle_request(st, end);
                return 0;
        }
        if (end && st->tunnel) {
                HttpHead *t = frame->hd.type == NGHTTP2_HEADERS ? st->trailers : NULL;
                (void) mux_stream_end(st->tunnel, t ? t->headers : NULL, t ? t->n_headers : 0);
        }
        return 0;
}

static int data_chunk_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data) {
        H2Conn *c = user_data;
        H2Stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
        int r;

        if (st && def(c)->max_body_bytes > 0 && !st->body_refused) {
                st->body_bytes += len;
                if (st->body_bytes > def(c)->max_body_bytes) {
                        st->body_refused = true;
                        body_too_large(st);
                }
        }
        r = st && st->tunnel ? mux_stream_write(st->tunnel, data, len) : -EPIPE;
        if (r < 0) { /* dropped */
                (void) nghttp2_session_consume_connection(session, len);
                (void) nghttp2_session_consume_stream(session, stream_id, len);
                return 0;
        }
        st->in_tunnel += len; /* the connection window comes back as the tunnel takes them */
        if (r > 0)
                st->paused += len; /* acknowledged when the tunnel stream has room */
        else
                (void) nghttp2_session_consume_stream(session, stream_id, len);
        h2_kick(c);
        return 0;
}

/* The response is complete while the request is not: the peer may stop sending (RFC 9113
 * §8.1). Nothing reads the rest, and a half-open stream would keep the connection from ever
 * being idle. */
static int frame_send_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        H2Stream *st;

        if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                return 0;
        st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (st && !st->req_done)
                (void) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
        return 0;
}

static int stream_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data) {
        H2Stream *st = nghttp2_session_get_stream_user_data(session, stream_id);

        if (st) {
                nghttp2_session_set_stream_user_data(session, stream_id, NULL);
                stream_free(st);
        }
        return 0;
}

/* ---- the connection ---- */

static void h2_flush(H2Conn *c) {
        int r;

        /* Frames are produced while the socket keeps taking them: stopping with nothing
         * pending would leave no EPOLLOUT to wake us for the rest. */
        for (;;) {
                while (!c->dead && tls_conn_pending(c->conn) < OUT_HIGH_WATER && nghttp2_session_want_write(c->h2)) {
                        const uint8_t *data;
                        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
                        if (n < 0) {
                                h2_conn_close(c);
                                return;
                        }
                        if (n == 0)
                                break;
                        (void) tls_conn_send(c->conn, data, (size_t) n);
                }
                if (c->dead)
                        return;
                r = tls_conn_flush(c->conn);
                if (r < 0 && r != -EAGAIN) {
                        h2_conn_close(c);
                        return;
                }
                if (r == -EAGAIN || tls_conn_pending(c->conn) > 0 || !nghttp2_session_want_write(c->h2))
                        break;
        }
        if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) && tls_conn_pending(c->conn) == 0) {
                h2_conn_close(c);
                return;
        }
        (void) sd_event_source_set_io_events(c->io, EPOLLIN | (tls_conn_pending(c->conn) > 0 ? EPOLLOUT : 0));
}

static int h2_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        H2Conn *c = userdata;

        for (unsigned i = 0; i < 64 && !c->dead; i++) {
                uint8_t *p;
                size_t n;
                int r = tls_conn_recv(c->conn, &p, &n);

                if (r == -EAGAIN)
                        break;
                if (r <= 0) {
                        h2_conn_close(c);
                        break;
                }
                if (nghttp2_session_mem_recv(c->h2, p, n) < 0) {
                        log_debug("HTTP/2 %s: protocol error, closing.", c->peer);
                        h2_conn_close(c);
                        break;
                }
        }
        h2_flush(c);
        if (c->dead)
                h2_conn_free(c);
        return 0;
}

static int h2_kick_handler(sd_event_source *src, void *userdata) {
        H2Conn *c = userdata;

        if (!c->dead)
                h2_flush(c);
        if (c->dead)
                h2_conn_free(c);
        return 0;
}

/* Less than this taken in a whole IdleTimeoutSec= while the peer's window is shut is not
 * progress: one frame. Otherwise a peer opening each window by a byte per interval would keep
 * its streams, their MaxStreamsPerClient= slots and the session budget they hold forever. */
#define H2_MIN_PROGRESS (16 * 1024)

/* Whether response bytes moved during the interval: a trickle through a shut connection window
 * (less than H2_MIN_PROGRESS) does not count. */
static bool h2_conn_moved(H2Conn *c) {
        if (c->sent == c->sent_mark)
                return false;
        return nghttp2_session_get_remote_window_size(c->h2) > 0 || c->sent - c->sent_mark >= H2_MIN_PROGRESS;
}

/* Bytes the peer's TCP acknowledged during the interval: the kernel's queue at the mark, plus
 * what went into the socket since, less what is still queued. Whatever we wrote (PING acks too)
 * counts, but only once the peer has read it. */
static uint64_t h2_drained(H2Conn *c, size_t outq) {
        uint64_t in = tls_conn_sent(c->conn) - c->tls_sent_mark + c->outq_mark;

        return in > outq ? in - outq : 0;
}

/* The connection moved, but maybe not for every stream: the peer's flow control chooses which
 * streams it takes from. A stream is withheld by the peer when its window (or the connection's)
 * is shut, bytes of it wait, it took less than H2_MIN_PROGRESS in the interval, and the peer's
 * TCP has acknowledged everything of it we sent: a peer that has received all and still opens
 * no window is holding the stream, not slow. Such a stream is reset, as an HTTP/1.1 connection
 * that takes nothing is closed. Not reset: a stream our scheduler served after another (RFC 7540
 * priorities: its windows are open), and a stream whose last bytes are still in the kernel's
 * queue (a slow reader's window updates come as it reads them). */
static void h2_reset_withheld_streams(H2Conn *c, size_t outq) {
        /* All we wrote is acknowledged, or at least up to where a stream's last bytes end. */
        bool all_acked = outq == 0 && tls_conn_pending(c->conn) == 0;
        uint64_t acked = tls_conn_sent(c->conn) - MIN((uint64_t) outq, tls_conn_sent(c->conn));
        bool conn_shut = nghttp2_session_get_remote_window_size(c->h2) <= 0 &&
                         c->sent - c->sent_mark < H2_MIN_PROGRESS;

        for (H2Stream *st = c->streams; st; st = st->next)
                if (st->marked && st->len > 0 && st->sent - st->sent_mark < H2_MIN_PROGRESS &&
                    (all_acked || acked >= st->sent_pos) &&
                    (conn_shut || nghttp2_session_get_stream_remote_window_size(c->h2, st->id) <= 0)) {
                        log_debug("HTTP/2 %s: stream %" PRIi32 " kept its window shut for %" PRIu64
                                  " s (IdleTimeoutSec=), resetting it.", c->peer, st->id,
                                  def(c)->idle_timeout_usec / USEC_PER_SEC);
                        (void) nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
                }
        h2_kick(c);
}

static int h2_idle(sd_event_source *src, uint64_t usec, void *userdata) {
        H2Conn *c = userdata;
        size_t outq = socket_outq(tls_conn_fd(c->conn));
        /* Output still on its way (in our buffer or the kernel's) is not idleness, even with
         * no stream open: closing now would cut the end of a response. */
        bool waits = outq > 0 || h2_output_waits(c);

        if (c->streams || waits) {
                /* Progress: response body bytes taken (not a trickle through a shut connection
                 * window), or bytes the peer's TCP acknowledged (it reads: with our buffer
                 * refilling the kernel's queue, the queue alone may look no shorter); with no
                 * stream left, the tail of the output going into the socket. Streams the peer
                 * holds back are judged one by one. */
                if (!waits || h2_conn_moved(c) || h2_drained(c, outq) > 0 ||
                    (!c->streams && tls_conn_sent(c->conn) != c->tls_sent_mark)) {
                        h2_reset_withheld_streams(c, outq);
                        c->stall_check = false;
                        h2_update_idle(c);
                        return 0;
                }
                log_debug("HTTP/2 %s: the peer took no response bytes for %" PRIu64 " s (IdleTimeoutSec=), "
                          "closing.", c->peer, def(c)->idle_timeout_usec / USEC_PER_SEC);
                (void) nghttp2_session_terminate_session(c->h2, NGHTTP2_ENHANCE_YOUR_CALM);
                h2_flush(c);
                h2_conn_close(c);
                return 0;
        }
        (void) nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
        h2_flush(c);
        h2_conn_close(c);
        return 0;
}

int h2_conn_start(HttpFront *f, H2Conn **list, TlsConn *conn, const SocketAddress *peer_addr,
                  const char *peer, const char *peer_ip, const char *local, bool via_proxy) {
        nghttp2_session_callbacks *cbs;
        nghttp2_option *opt;
        nghttp2_settings_entry iv[] = {
                { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS },
                { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW },
                { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t) http_front_def(f)->max_header_bytes },
        };
        H2Conn *c;
        int r;

        assert(f);
        assert(list);
        assert(conn);
        assert(peer_addr);
        assert(peer);
        assert(peer_ip);

        c = calloc(1, sizeof(*c));
        if (!c) {
                tls_conn_free(conn);
                return -ENOMEM;
        }
        c->front = f;
        c->list = list;
        c->conn = conn;
        c->peer_addr = *peer_addr;
        snprintf(c->peer, sizeof(c->peer), "%s", peer);
        snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", peer_ip);
        snprintf(c->local, sizeof(c->local), "%s", local);
        c->via_proxy = via_proxy;
        LIST_PREPEND(*list, c);
        http_front_count_conn(f, true);

        if (nghttp2_session_callbacks_new(&cbs) != 0) {
                h2_conn_free(c);
                return -ENOMEM;
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, begin_headers_cb);
        nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frame_recv_cb);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_chunk_cb);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, stream_close_cb);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, frame_send_cb);
        if (nghttp2_option_new(&opt) != 0) {
                nghttp2_session_callbacks_del(cbs);
                h2_conn_free(c);
                return -ENOMEM;
        }
        nghttp2_option_set_no_auto_window_update(opt, 1);
        r = nghttp2_session_server_new2(&c->h2, cbs, c, opt);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_option_del(opt);
        if (r != 0 || nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, ELEMENTSOF(iv)) != 0 ||
            nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0) {
                h2_conn_free(c);
                return -ENOMEM;
        }
        if (sd_event_add_io(http_front_event(f), &c->io, tls_conn_fd(conn), EPOLLIN, h2_io, c) < 0 ||
            sd_event_add_time_relative(http_front_event(f), &c->timer, CLOCK_MONOTONIC,
                                       http_front_def(f)->idle_timeout_usec, 0, h2_idle, c) < 0 ||
            sd_event_add_defer(http_front_event(f), &c->kick, h2_kick_handler, c) < 0) {
                h2_conn_free(c);
                return -ENOMEM;
        }
        (void) sd_event_source_set_description(c->io, "h2-conn-io");
        (void) sd_event_source_set_description(c->timer, "h2-conn-idle");
        (void) sd_event_source_set_description(c->kick, "h2-conn-kick");
        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_OFF);
        /* The client preface may already sit in TLS buffers. */
        (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
        h2_io(c->io, tls_conn_fd(conn), EPOLLIN, c);
        return 0;
}

void h2_conns_free(H2Conn **list) {
        assert(list);

        while (*list)
                h2_conn_free(*list);
}
