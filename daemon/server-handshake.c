// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server's control port: each connection is a Pending handshake (TLS, then the
 * WebSocket upgrade with its token and offer) until it is refused or becomes a Session; or a
 * GET /status with the token, answered and closed. */

#include <stdio.h>

#include "access.h"
#include "bus.h"
#include "crypto-util.h"
#include "encoding.h"
#include "log.h"
#include "macro.h"
#include "ratelimit.h"
#include "server-internal.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"
#include "version.h"
#include "web.h"
#include "ws.h"

#define AUTH_FORGET_USEC (60 * USEC_PER_SEC)
#define AUTH_DELAY_MIN_USEC (100 * USEC_PER_MSEC)
#define AUTH_DELAY_MAX_USEC (5 * USEC_PER_SEC)

/* ---- back-off for wrong tokens ---- */

/* One source is one IPv4 address, or one IPv6 /64: a single host usually holds a whole /64
 * and could otherwise start afresh from each of its 2^64 addresses. */
static void address_key(const SocketAddress *a, uint8_t ret[static 16]) {
        memset(ret, 0, 16);
        if (a->sa.sa_family == AF_INET) {
                ret[10] = ret[11] = 0xff; /* as v4-mapped, so both spellings are one source */
                memcpy(ret + 12, &a->in.sin_addr, 4);
        } else if (a->sa.sa_family == AF_INET6) {
                if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
                        memcpy(ret, &a->in6.sin6_addr, 16);
                else
                        memcpy(ret, &a->in6.sin6_addr, 8);
        }
}

/* Records a wrong token from the peer's address and returns how long to wait before the 401:
 * 100 ms, doubling per failure up to 5 s; an address quiet for a minute starts over. The
 * table is fixed-size; the stalest entry makes room. */
static uint64_t auth_failure_delay(Server *s, const SocketAddress *peer) {
        uint8_t key[16];
        uint64_t now = now_usec();
        AuthFailures *slot = NULL, *stalest = &s->auth_failures[0];

        address_key(peer, key);
        for (size_t i = 0; i < AUTH_SOURCES; i++) {
                AuthFailures *f = &s->auth_failures[i];
                if (f->count > 0 && memcmp(f->addr, key, 16) == 0) {
                        slot = f;
                        break;
                }
                if (f->last < stalest->last)
                        stalest = f;
        }
        if (!slot) {
                /* A full table of sources wrong within the minute: a newcomer must not push one of
                 * them out (that would reset a guesser's back-off); it waits the longest. */
                if (stalest->count > 0 && now - stalest->last <= AUTH_FORGET_USEC)
                        return AUTH_DELAY_MAX_USEC;
                slot = stalest;
                memcpy(slot->addr, key, 16);
                slot->count = 0;
        }
        if (now - slot->last > AUTH_FORGET_USEC)
                slot->count = 0;
        slot->count++;
        slot->last = now;
        return MIN(AUTH_DELAY_MIN_USEC << MIN(slot->count - 1, 10u), AUTH_DELAY_MAX_USEC);
}

/* A source with wrong tokens in the last minute may have this many handshakes at once: its
 * 401s wait, so without a bound a guesser would simply not wait for them. */
#define PENDING_PER_SUSPECT 2

static bool source_suspect(Server *s, const uint8_t key[static 16]) {
        uint64_t now = now_usec();

        for (size_t i = 0; i < AUTH_SOURCES; i++) {
                const AuthFailures *f = &s->auth_failures[i];
                if (f->count > 0 && memcmp(f->addr, key, 16) == 0)
                        return now - f->last <= AUTH_FORGET_USEC;
        }
        return false;
}

static void auth_success(Server *s, const SocketAddress *peer) {
        uint8_t key[16];
        address_key(peer, key);
        for (size_t i = 0; i < AUTH_SOURCES; i++)
                if (s->auth_failures[i].count > 0 && memcmp(s->auth_failures[i].addr, key, 16) == 0)
                        s->auth_failures[i].count = 0;
}

/* ---- one handshake ---- */

Pending *pending_free(Pending *p) {
        Server *s;

        if (!p)
                return NULL;
        s = p->server;
        LIST_REMOVE(s->pending, p);
        s->n_pending--;
        sd_event_source_disable_unref(p->io);
        sd_event_source_disable_unref(p->timer);
        tls_conn_free(p->conn);
        explicit_bzero(p->head, sizeof(p->head)); /* held the token */
        free(p);
        return NULL;
}

static void pending_reply(Pending *p, int status, const char *reason, const char *body, const char *extra) {
        char buf[1024];
        int n;

        if (status == 401)
                p->server->handshake_failures[HANDSHAKE_TOKEN]++;
        else if (status == 503)
                p->server->handshake_failures[HANDSHAKE_BUSY]++;
        else if (status >= 400 && status < 500)
                p->server->handshake_failures[HANDSHAKE_REQUEST]++;
        n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n%s\n",
                     status, reason, strlen(body) + 1, extra ?: "", body);
        if (n > 0 && (size_t) n < sizeof(buf)) {
                (void) tls_conn_send(p->conn, buf, (size_t) n);
                tls_conn_bye(p->conn);
        }
        pending_free(p);
}

/* The phases of the upgrade below return true to go on, false when they answered the client
 * (p is freed) or scheduled its refusal (p waits for its timer): then p is not to be touched. */
static bool pending_refuse(Pending *p, int status, const char *reason, const char *body, const char *extra) {
        pending_reply(p, status, reason, body, extra);
        return false;
}

/* url is path, or path and a query. */
static bool path_is(const char *url, const char *path) {
        size_t n = strlen(path);

        return strncmp(url, path, n) == 0 && (url[n] == 0 || url[n] == '?');
}

static bool upgrade_authenticate(Pending *p, const HttpHead *h);

/* Writes out what is queued, then closes; the handshake timer still bounds it. */
static void pending_drain(Pending *p) {
        int r = tls_conn_flush(p->conn);

        if (r == -EAGAIN) {
                (void) sd_event_source_set_io_events(p->io, EPOLLOUT);
                return;
        }
        if (r >= 0)
                tls_conn_bye(p->conn);
        pending_free(p);
}

/* GET /status with the token (Authorization: Bearer, the same back-off for a wrong one as the
 * upgrade): the tunnel's state, the JSON of inletsctl status --json. */
static void status_request(Pending *p, const HttpHead *h) {
        _cleanup_(tunnel_info_done) TunnelInfo t = {};
        _cleanup_(json_object_putp) json_object *arr = NULL;
        const char *body;
        char head[256];
        int n, r;

        if (!upgrade_authenticate(p, h))
                return;
        r = bus_tunnel_info(p->server->manager, &t);
        arr = json_object_new_array();
        if (r < 0 || !arr || json_object_array_add(arr, tunnel_info_json(&t)) < 0) {
                pending_reply(p, 500, "Internal Server Error", "out of memory", NULL);
                return;
        }
        body = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n", strlen(body) + 1);
        if (tls_conn_send(p->conn, head, (size_t) n) < 0 || tls_conn_send(p->conn, body, strlen(body)) < 0 ||
            tls_conn_send(p->conn, "\n", 1) < 0) {
                pending_free(p);
                return;
        }
        log_conn(LOG_DEBUG, NULL, p->remote, 0, "Status sent to %s.", p->remote);
        p->draining = true;
        pending_drain(p);
}

/* Is this a WebSocket upgrade to GET /connect? */
static bool upgrade_parse(Pending *p, size_t head_len, HttpHead **ret) {
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        const char *key, *v;
        int r;

        r = http_head_parse(p->head, head_len, true, HTTP_HEADERS_MAX_DEFAULT, &h);
        if (r == -E2BIG)
                return pending_refuse(p, 431, "Request Header Fields Too Large", "too many header fields",
                                      NULL);
        if (r < 0)
                return pending_refuse(p, 400, "Bad Request", "malformed HTTP request", NULL);
        if (streq(h->method, "GET") && h->url && path_is(h->url, "/status") && !h->upgrade) {
                status_request(p, h);
                return false;
        }
        if (!streq(h->method, "GET") || !h->url || !path_is(h->url, "/connect"))
                return pending_refuse(p, 404, "Not Found", "the tunnel endpoint is GET /connect; GET /status "
                                      "with the token tells the tunnel's state", NULL);
        key = http_head_get(h, "Sec-WebSocket-Key");
        if (!h->upgrade || !http_header_has_token(http_head_get(h, "Upgrade"), "websocket") ||
            !http_header_has_token(http_head_get(h, "Connection"), "upgrade") || !key || strlen(key) != 24)
                return pending_refuse(p, 400, "Bad Request", "expected a WebSocket upgrade", NULL);
        v = http_head_get(h, "Sec-WebSocket-Version");
        if (!v || !streq(v, "13"))
                return pending_refuse(p, 426, "Upgrade Required", "WebSocket version 13 required",
                                      "Sec-WebSocket-Version: 13\r\n");
        *ret = TAKE_PTR(h);
        return true;
}

/* How many of the source's handshakes wait for their delayed 401. */
static unsigned waiting_refusals(Server *s, const SocketAddress *peer) {
        uint8_t key[16];
        unsigned n = 0;

        address_key(peer, key);
        for (Pending *i = s->pending; i; i = i->next) {
                uint8_t k[16];
                if (!i->refuse_on_timer)
                        continue;
                address_key(&i->peer, k);
                n += memcmp(k, key, 16) == 0;
        }
        return n;
}

/* Whether p's token may be looked at now. A source with PENDING_PER_SUSPECT 401s waiting gets
 * no token checked until they went out: connections opened before its first wrong token must
 * not carry guesses in parallel (the outside review: 900 at once). Closed unanswered, so the
 * close says nothing about the token. */
static bool token_check_allowed(Pending *p) {
        Server *s = p->server;

        if (waiting_refusals(s, &p->peer) < PENDING_PER_SUSPECT)
                return true;
        s->handshake_failures[HANDSHAKE_BUSY]++;
        pending_free(p);
        return false;
}

static bool upgrade_authenticate(Pending *p, const HttpHead *h) {
        Server *s = p->server;
        const char *auth = http_head_get(h, "Authorization");
        const char *token = server_def(s)->token;
        uint64_t delay;

        if (!token_check_allowed(p))
                return false; /* p is gone */
        if (auth && http_head_count(h, "Authorization") == 1 && strncasecmp(auth, "Bearer ", 7) == 0 &&
            secret_equal(auth + 7, strlen(auth + 7), token, strlen(token))) {
                auth_success(s, &p->peer);
                return true;
        }
        delay = auth_failure_delay(s, &p->peer);
        if (ratelimit_below(&s->auth_log))
                log_conn(LOG_WARNING, NULL, p->remote, 0, "Refused a client from %s: %s token.", p->remote,
                         auth ? "wrong" : "no");
        /* Answered later, the more so the more often this address was wrong: guessing gets
         * slow, and the answer never tells how close a guess was. */
        p->refuse_on_timer = true;
        p->io = sd_event_source_disable_unref(p->io);
        (void) sd_event_source_set_time_relative(p->timer, delay);
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
        return false;
}

/* The mode, and the ports (TCP mode, each allowed) or host names (HTTP mode) offered. */
static bool upgrade_read_offer(Pending *p, const HttpHead *h, Offer *ret) {
        const Definition *d = server_def(p->server);
        const char *v = http_head_get(h, "X-Inlets-Mode");

        if (v && !streq(v, mode_to_string(d->mode)))
                return pending_refuse(p, 409, "Conflict",
                                      d->mode == MODE_TCP ? "this server runs in TCP mode"
                                                          : "this server runs in HTTP mode",
                                      NULL);
        if (d->mode == MODE_HTTP) {
                if (!v)
                        return pending_refuse(p, 409, "Conflict", "this server runs in HTTP mode", NULL);
                if (parse_offered_hosts(http_head_get(h, "X-Inlets-Hosts"), &ret->hosts, &ret->n_hosts) < 0)
                        return pending_refuse(p, 400, "Bad Request",
                                              "X-Inlets-Hosts must list 1 to 256 host names (or *), comma-separated",
                                              NULL);
        } else if (parse_offered_ports(http_head_get(h, "X-Inlets-Ports"), &ret->ports, &ret->n_ports) < 0)
                return pending_refuse(p, 400, "Bad Request",
                                      "X-Inlets-Ports must list 1 to 256 distinct ports, comma-separated, or none",
                                      NULL);
        for (size_t i = 0; i < ret->n_ports; i++)
                if (!definition_port_allowed(d, ret->ports[i])) {
                        char msg[96];
                        port_refusal(d, ret->ports[i], msg, sizeof(msg));
                        log_warning("Refused client from %s: %s.", p->remote, msg);
                        return pending_refuse(p, 409, "Conflict", msg, NULL);
                }
        return true;
}

/* X-Inlets-Client-Id, else a random one. */
static bool upgrade_client_id(Pending *p, const HttpHead *h, const char **ret, char **ret_generated) {
        const char *id = http_head_get(h, "X-Inlets-Client-Id");
        uint8_t b[6];

        if (id && !string_is_safe_id(id, 64))
                return pending_refuse(p, 400, "Bad Request",
                                      "X-Inlets-Client-Id: up to 64 of A-Z a-z 0-9 . _ @ -", NULL);
        if (!id) {
                if (random_bytes(b, sizeof(b)) < 0 || !(*ret_generated = hexmem(b, sizeof(b))))
                        return pending_refuse(p, 500, "Internal Server Error", "out of memory", NULL);
                id = *ret_generated;
        }
        *ret = id;
        return true;
}

/* Whether the resume request rq names session x and proves it knows x's key, on this
 * connection. x may still look connected: its client noticed the loss first. */
static bool resume_proven(Pending *p, Session *x, const ResumeRequest *rq) {
        char proof[RESUME_PROOF_HEX + 1];
        const uint8_t *key;

        if (!x->resumable || !rq->asks)
                return false;
        if (streq(rq->id, x->resume_id))
                key = x->resume_key;
        else if (x->prev_valid && !mux_heard(x->mux) && streq(rq->id, x->prev_resume_id))
                key = x->prev_resume_key; /* it never read the 101 of x's connection */
        else
                return false;
        if (resume_proof(p->conn, key, rq->id, proof) < 0)
                return false;
        return secret_equal(proof, RESUME_PROOF_HEX, rq->proof, RESUME_PROOF_HEX);
}

/* Room for the client, and its ports bound (referenced) for it. A session of the same client
 * it proves to resume stays, in *ret_resume, until the new one took its streams. */
static bool upgrade_admit(Pending *p, const char *id, const Offer *offer, const ResumeRequest *rq,
                          Session **ret_resume) {
        Server *s = p->server;
        _cleanup_free_ char *why = NULL;
        Session *x;
        int r;

        *ret_resume = NULL;
        /* The same client again (it restarted, or its old connection is half dead): the new
         * session replaces the old one -- or resumes it. */
        x = session_find(s, id);
        if (x && resume_proven(p, x, rq)) {
                *ret_resume = x;
                x = NULL;
        } else if (!x && rq->asks)
                log_info("Client %s from %s asked to resume a session that is gone (ResumeSec= passed, or the "
                         "server restarted): starting anew.", id, p->remote);
        if (s->n_sessions - (*ret_resume || x ? 1 : 0) >= server_def(s)->max_clients)
                return pending_refuse(p, 503, "Service Unavailable", "too many clients (MaxClients=)", NULL);

        for (size_t bound = 0; bound < offer->n_ports; bound++) {
                r = listener_ref(s, offer->ports[bound], &why);
                if (r < 0) {
                        char msg[256];
                        while (bound > 0)
                                listener_unref(s, offer->ports[--bound]);
                        snprintf(msg, sizeof(msg), "%s", why ?: strerror(-r));
                        log_warning("Refused client %s from %s: %s.", id, p->remote, msg);
                        return pending_refuse(p, 409, "Conflict", msg, NULL);
                }
        }
        /* Only now: its ports stay bound meanwhile, so connections waiting in their queues
         * (a held session's) are served by the new session, not reset. */
        if (x) {
                if (rq->asks)
                        log_info("Client %s from %s asked to resume a session %s: starting anew.", id, p->remote,
                                 x->held ? "with a wrong proof" : "that is still connected");
                else
                        log_info("Client %s reconnected from %s: dropping its previous session.", id, p->remote);
                x->end = SESSION_END_REPLACED;
                manager_client_event(s->manager, false, id, "replaced by a new connection");
                session_free(x);
        }
        return true;
}

/* A resumable session's id and key, for a client that can resume: the 101's X-Inlets-Resume. */
static int session_make_resumable(Pending *p, Session *x, bool resumed, char *field, size_t size) {
        const Definition *d = server_def(p->server);
        uint8_t b[RESUME_ID_BYTES];
        int r;

        r = random_bytes(b, sizeof(b));
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(x->resume_id + 2 * i, 3, "%02x", b[i]);
        r = resume_key(p->conn, d->token, x->resume_id, x->resume_key);
        if (r < 0)
                return r;
        x->resumable = true;
        /* The id names the session; it proves nothing without the key. */
        log_debug("Session of client %s is resumable as %s.", x->id, x->resume_id);
        snprintf(field, size, "X-Inlets-Resume: %s %" PRIu64 "%s\r\n", x->resume_id,
                 MAX(d->resume_usec / USEC_PER_SEC, (uint64_t) 1), resumed ? " resumed" : "");
        return 0;
}

/* Everything checked: the session, the 101, and the connection handed to its Mux. */
static void upgrade_commit(Pending *p, size_t head_len, const char *key, const char *id, Offer *offer,
                           const ResumeRequest *rq, Session *resume) {
        Server *s = p->server;
        const Definition *d = server_def(s);
        _cleanup_free_ char *accept = NULL;
        char response[640], field[128] = "";
        Session *x = NULL;
        int r;

        accept = ws_accept_key(key);
        if (!accept || session_new(s, id, p->remote, offer, &x) < 0) {
                for (size_t i = 0; i < offer->n_ports; i++)
                        listener_unref(s, offer->ports[i]);
                return pending_reply(p, 500, "Internal Server Error", "out of memory", NULL);
        }
        /* TCP mode only: HTTP mode's streams are requests, answered again by the visitor. */
        if (rq->can && d->resume_usec > 0 && d->mode == MODE_TCP &&
            session_make_resumable(p, x, resume != NULL, field, sizeof(field)) < 0) {
                log_warning("Client %s: could not make its session resumable; going on without.", id);
                x->resumable = false;
                field[0] = 0;
        }
        if (!x->resumable)
                resume = NULL;
        if (resume) { /* what the client proved with stays good until it has read the new ones */
                bool cur = streq(rq->id, resume->resume_id);
                memcpy(x->prev_resume_id, rq->id, sizeof(x->prev_resume_id));
                memcpy(x->prev_resume_key, cur ? resume->resume_key : resume->prev_resume_key,
                       sizeof(x->prev_resume_key));
                x->prev_valid = true;
        }

        snprintf(response, sizeof(response),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\nServer: inletsd/%s\r\n%s\r\n",
                 accept, PROJECT_VERSION, field);
        r = tls_conn_send(p->conn, response, strlen(response));
        /* The fd moves to the mux: epoll must not know it twice. */
        p->io = sd_event_source_disable_unref(p->io);
        if (r >= 0)
                r = session_start(x, TAKE_PTR(p->conn), (const uint8_t *) p->head + head_len,
                                  p->head_len - head_len);
        if (r < 0) {
                log_warning_errno(r, "Failed to start the session of client %s: %m", id);
                session_free(x);
                pending_free(p);
                return;
        }
        s->connects++;
        session_log_connected(x);
        if (resume)
                session_resume(x, resume);
        manager_client_event(s->manager, true, x->id, x->remote);
        pending_free(p);
}

/* The upgrade request is complete: check it, and either refuse or start the session. */
static void pending_upgrade(Pending *p, size_t head_len) {
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        _cleanup_(offer_done) Offer offer = {};
        _cleanup_free_ char *generated_id = NULL;
        ResumeRequest rq = {};
        Session *resume = NULL;
        const char *id;

        assert(p);
        assert(head_len <= p->head_len);
        if (!upgrade_parse(p, head_len, &h) || !upgrade_authenticate(p, h) ||
            !upgrade_read_offer(p, h, &offer) || !upgrade_client_id(p, h, &id, &generated_id))
                return;
        /* A client that cannot resume, or says it in a way we do not know, gets a session as
         * before. */
        (void) resume_request_parse(http_head_get(h, "X-Inlets-Resume"), &rq);
        if (!upgrade_admit(p, id, &offer, &rq, &resume))
                return;
        upgrade_commit(p, head_len, http_head_get(h, "Sec-WebSocket-Key"), id, &offer, &rq, resume);
}

static bool pending_tls_handshake(Pending *p) {
        int r;

        if (p->handshake_done)
                return true;
        r = tls_conn_handshake(p->conn);
        if (r < 0) {
                log_debug("TLS handshake with %s failed: %s", p->remote, tls_conn_error(p->conn));
                p->server->handshake_failures[HANDSHAKE_TLS]++;
                pending_free(p);
                return false;
        }
        if (r == 0) {
                (void) sd_event_source_set_io_events(
                        p->io, EPOLLIN | (tls_conn_handshake_wants_write(p->conn) ? EPOLLOUT : 0));
                return false;
        }
        p->handshake_done = true;
        (void) sd_event_source_set_io_events(p->io, EPOLLIN);
        return true;
}

static int pending_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Pending *p = userdata;
        int r;

        assert(p);
        if (p->draining) {
                pending_drain(p);
                return 0;
        }
        if (!pending_tls_handshake(p))
                return 0;
        for (;;) {
                uint8_t *data;
                size_t n;
                ssize_t end;

                r = tls_conn_recv(p->conn, &data, &n);
                if (r == -EAGAIN)
                        return 0;
                if (r <= 0) {
                        log_debug("Connection from %s ended during the upgrade: %s", p->remote,
                                  r == 0 ? "EOF" : tls_conn_error(p->conn));
                        p->server->handshake_failures[HANDSHAKE_CLOSED]++;
                        pending_free(p);
                        return 0;
                }
                if (n > sizeof(p->head) - p->head_len) {
                        pending_reply(p, 431, "Request Header Fields Too Large", "request head too large", NULL);
                        return 0;
                }
                memcpy(p->head + p->head_len, data, n);
                p->head_len += n;
                end = http_head_end(p->head, p->head_len, sizeof(p->head));
                if (end < 0) {
                        pending_reply(p, 431, "Request Header Fields Too Large", "request head too large", NULL);
                        return 0;
                }
                if (end > 0) {
                        pending_upgrade(p, (size_t) end);
                        return 0;
                }
        }
}

static int pending_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Pending *p = userdata;

        assert(p);
        if (p->refuse_on_timer) {
                pending_reply(p, 401, "Unauthorized", "invalid or missing token", "WWW-Authenticate: Bearer\r\n");
                return 0;
        }
        log_debug("Handshake with %s timed out.", p->remote);
        p->server->handshake_failures[HANDSHAKE_TIMEOUT]++;
        pending_free(p);
        return 0;
}

/* ---- the control port ---- */

static int pending_watch(Pending *p, int cfd) {
        Server *s = p->server;
        int r;

        r = tls_conn_new_server(cfd, server_def(s)->tls ? s->creds : NULL, &p->conn);
        if (r < 0)
                return r;
        r = sd_event_add_io(s->manager->event, &p->io, cfd, EPOLLIN, pending_handler, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->io, "server-handshake");
        r = sd_event_add_time_relative(s->manager->event, &p->timer, CLOCK_MONOTONIC,
                                       server_def(s)->handshake_timeout_usec, 0, pending_timeout, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->timer, "server-handshake-timer");
        return 0;
}

int server_control_accept(int cfd, const SocketAddress *peer, bool via_proxy, void *userdata) {
        Server *s = userdata;
        Pending *p;
        int r;

        /* Before TLS: a refused source costs no handshake and learns nothing. */
        if (!access_list_allows(&server_def(s)->control_access, NULL, peer)) {
                safe_close(cfd);
                server_note_refused(s, 0, peer);
                return 0;
        }
        /* A source that sent wrong tokens lately gets few handshakes at once: its guesses then
         * come no faster than its 401s. */
        uint8_t key[16];
        address_key(peer, key);
        if (source_suspect(s, key)) {
                unsigned n = 0;
                for (Pending *i = s->pending; i; i = i->next) {
                        uint8_t k[16];
                        address_key(&i->peer, k);
                        n += memcmp(k, key, 16) == 0;
                }
                if (n >= PENDING_PER_SUSPECT) {
                        safe_close(cfd);
                        s->handshake_failures[HANDSHAKE_BUSY]++;
                        return 0;
                }
        }
        if (s->n_pending >= MAX_PENDING) {
                /* Full of handshakes that go nowhere: the oldest makes room, so a flood of
                 * stalled connections cannot lock a real client out. */
                Pending *oldest = s->pending;
                while (oldest->next)
                        oldest = oldest->next;
                pending_free(oldest);
        }
        p = calloc(1, sizeof(*p));
        if (!p) {
                safe_close(cfd);
                return log_oom();
        }
        p->server = s;
        p->peer = *peer;
        socket_address_format(peer, p->remote);
        LIST_PREPEND(s->pending, p);
        s->n_pending++;

        r = pending_watch(p, cfd);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up a connection from %s: %m", p->remote);
                pending_free(p);
        }
        return 0;
}

static int control_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;

        accept_batch(fd, 64, proxy_gate_accept, &s->control_gate);
        return 0;
}

int server_control_watch(Server *s) {
        int r;

        assert(s);
        assert(s->control_fd >= 0);
        assert(!s->control_io);
        r = sd_event_add_io(s->manager->event, &s->control_io, s->control_fd, EPOLLIN, control_handler, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->control_io, "server-control");
        return 0;
}
