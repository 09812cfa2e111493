// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server; see server.h. A client's session starts as a Pending handshake (TLS,
 * then the WebSocket upgrade with its token and offer) and becomes a Session with a Mux.
 * Public ports are Listeners shared by every session that offers them, round-robin, and
 * closed the moment the last of those sessions ends, so a reconnecting client can take them
 * again at once. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "acmecert.h"
#include "autotls.h"
#include "http1.h"
#include "httpfront.h"
#include "log.h"
#include "mux.h"
#include "server.h"
#include "tls.h"
#include "version.h"
#include "ws.h"

#define MAX_PENDING 1024
#define MAX_OFFERED_PORTS 256
#define AUTH_SOURCES 256
#define AUTH_FORGET_USEC (60 * USEC_PER_SEC)
#define AUTH_DELAY_MIN_USEC (100 * USEC_PER_MSEC)
#define AUTH_DELAY_MAX_USEC (5 * USEC_PER_SEC)

/* Recent wrong tokens from one source (address_key(); the port does not count). */
typedef struct AuthFailures {
        uint8_t addr[16];
        unsigned count;
        uint64_t last;
} AuthFailures;

typedef struct Session Session;
typedef struct Pending Pending;
typedef struct Listener Listener;

struct Listener {
        Server *server;
        Listener *next;
        uint16_t port;
        int fd;
        sd_event_source *io;
        unsigned refs, rr;
        bool from_systemd;   /* kept open without clients: systemd owns it */
        char local[SOCKADDR_STR_MAX]; /* bound to one address: what every connection has */
};

/* A listener bound to one address gives every connection that local address: format it once
 * instead of a getsockname() per connection. */
static void listener_note_address(Listener *l) {
        SocketAddress a = { .len = sizeof(a.storage) };

        l->local[0] = 0;
        if (getsockname(l->fd, &a.sa, &a.len) < 0)
                return;
        if ((a.sa.sa_family == AF_INET && a.in.sin_addr.s_addr != htonl(INADDR_ANY)) ||
            (a.sa.sa_family == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr)))
                socket_address_format(&a, l->local);
}

struct Session {
        Server *server;
        Session *prev, *next;
        char *id;
        char remote[SOCKADDR_STR_MAX];
        uint64_t since;       /* CLOCK_REALTIME µs */
        Mux *mux;
        uint16_t *ports;
        size_t n_ports;
        char **hosts;         /* HTTP mode: lower case; "*" serves any host */
        size_t n_hosts;
};

struct Pending {
        Server *server;
        Pending *prev, *next;
        TlsConn *conn;
        sd_event_source *io, *timer;
        bool handshake_done;
        bool refuse_on_timer;   /* a wrong token: the 401 goes out when the timer fires */
        char head[HTTP_HEAD_MAX_DEFAULT];
        size_t head_len;
        char remote[SOCKADDR_STR_MAX];
        SocketAddress peer;
};

struct Server {
        Manager *manager;
        gnutls_certificate_credentials_t creds;
        /* Replaced by a reload; kept until exit, as handshakes may still use them. */
        gnutls_certificate_credentials_t *retired_creds;
        size_t n_retired_creds;
        gnutls_certificate_credentials_t new_creds;
        bool new_creds_set;
        int control_fd, new_control_fd;
        sd_event_source *control_io;
        TunnelCounters closed;    /* of sessions that ended */
        Listener *listeners;
        Session *sessions;
        Pending *pending;
        unsigned n_sessions, n_pending;
        RateLimit auth_log, busy_log;
        AuthFailures auth_failures[AUTH_SOURCES];
        /* HTTP mode */
        int http_fd, https_fd;   /* from systemd, until started */
        HttpFront *http, *https;
        gnutls_certificate_credentials_t https_creds; /* HTTPSCertificateFile= or ACME */
        gnutls_certificate_credentials_t placeholder_creds; /* ACME, until its first certificate */
        AcmeCert *acme;
        unsigned host_rr;
};

static const Definition *def(Server *s) {
        return s->manager->def;
}

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

/* Why a port a client asked for is refused, for the 409 and the log. */
static void port_refusal(const Definition *d, uint16_t port, char *buf, size_t size) {
        if (d->n_allow_ports == 0)
                snprintf(buf, size, "port %u is privileged: list it in AllowPorts= to allow it", port);
        else
                snprintf(buf, size, "port %u is not in AllowPorts=", port);
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

static void auth_success(Server *s, const SocketAddress *peer) {
        uint8_t key[16];
        address_key(peer, key);
        for (size_t i = 0; i < AUTH_SOURCES; i++)
                if (s->auth_failures[i].count > 0 && memcmp(s->auth_failures[i].addr, key, 16) == 0)
                        s->auth_failures[i].count = 0;
}

/* ---- listeners ---- */

static Listener *listener_free(Listener *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->io);
        safe_close(l->fd);
        free(l);
        return NULL;
}

static Listener *listener_find(Server *s, uint16_t port) {
        for (Listener *l = s->listeners; l; l = l->next)
                if (l->port == port)
                        return l;
        return NULL;
}

static void listener_unref(Server *s, uint16_t port) {
        Listener **p = &s->listeners;

        for (; *p; p = &(*p)->next)
                if ((*p)->port == port) {
                        Listener *l = *p;
                        if (l->refs == 0 || --l->refs > 0)
                                return;
                        if (l->from_systemd) {
                                /* Not ours to close: stop accepting, and connections wait in the
                                 * queue until a client offers the port again. */
                                (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
                                log_conn(LOG_INFO, NULL, NULL, port,
                                         "Port %u: no client offers it now; connections wait in its queue.", port);
                                return;
                        }
                        *p = l->next;
                        log_conn(LOG_INFO, NULL, NULL, port, "Port %u closed: no client offers it any more.", port);
                        listener_free(l);
                        return;
                }
}

static Session *session_for_port(Server *s, Listener *l) {
        unsigned n = 0, pick;

        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_ports; i++)
                        if (x->ports[i] == l->port)
                                n++;
        if (n == 0)
                return NULL;
        pick = l->rr++ % n;
        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_ports; i++)
                        if (x->ports[i] == l->port && pick-- == 0)
                                return x;
        return NULL;
}

static int listener_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Listener *l = userdata;
        Server *s = l->server;

        for (unsigned i = 0; i < 64; i++) {
                SocketAddress peer, local = { .len = sizeof(local.storage) };
                char peer_s[SOCKADDR_STR_MAX], local_s[SOCKADDR_STR_MAX];
                Session *x;
                int cfd, r;

                cfd = accept_shed(fd, &peer);
                if (cfd < 0)
                        break;
                socket_address_format(&peer, peer_s);
                if (l->local[0])
                        strcpy(local_s, l->local);
                else {
                        (void) getsockname(cfd, &local.sa, &local.len);
                        socket_address_format(&local, local_s);
                }

                x = session_for_port(s, l);
                if (!x) {
                        safe_close(cfd);
                        continue;
                }
                r = mux_open_stream(x->mux, cfd, local_s, peer_s, x, NULL);
                if (r == -EBUSY) {
                        if (ratelimit_below(&s->busy_log))
                                log_warning("Port %u: client %s has MaxStreamsPerClient=%u streams open; refused %s.",
                                            l->port, x->id, def(s)->max_streams, peer_s);
                } else if (r < 0)
                        log_warning_errno(r, "Port %u: cannot open a stream to client %s for %s: %m", l->port, x->id,
                                          peer_s);
                else
                        log_debug("Port %u: %s -> client %s", l->port, peer_s, x->id);
        }
        return 0;
}

static int listener_ref(Server *s, uint16_t port, char **ret_error) {
        Listener *l = listener_find(s, port);
        SocketAddress a = def(s)->data_listen;
        char buf[SOCKADDR_STR_MAX];
        int r;

        if (l) {
                if (l->refs++ == 0) {
                        (void) sd_event_source_set_enabled(l->io, SD_EVENT_ON);
                        log_conn(LOG_INFO, NULL, NULL, port, "Accepting on port %u (socket from systemd).", port);
                }
                return 0;
        }
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->server = s;
        l->port = port;
        l->refs = 1;
        socket_address_set_port(&a, port);
        r = socket_listen_tcp(&a, &l->fd);
        if (r >= 0)
                listener_note_address(l);
        if (r < 0) {
                l->fd = -1;
                listener_free(l);
                if (asprintf(ret_error, "cannot listen on %s: %s", socket_address_format(&a, buf), strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        r = sd_event_add_io(s->manager->event, &l->io, l->fd, EPOLLIN, listener_handler, l);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        l->next = s->listeners;
        s->listeners = l;
        log_conn(LOG_INFO, NULL, NULL, port, "Listening on %s for tunneled connections.",
                 socket_address_format(&a, buf));
        return 0;
}

/* ---- sessions ---- */

static Session *session_free(Session *x) {
        Server *s;

        if (!x)
                return NULL;
        s = x->server;
        LIST_REMOVE(s->sessions, x);
        s->n_sessions--;
        /* Streams go first, then the ports, so no listener hands out a dead session. */
        mux_free(x->mux);
        for (size_t i = 0; i < x->n_ports; i++)
                listener_unref(s, x->ports[i]);
        free(x->ports);
        strv_free(x->hosts);
        free(x->id);
        free(x);
        return NULL;
}

static void session_closed(Mux *m, int error, const char *reason, void *userdata) {
        Session *x = userdata;
        MuxStats st;

        mux_get_stats(m, &st);
        x->server->closed.bytes_in += st.bytes_in;
        x->server->closed.bytes_out += st.bytes_out;
        x->server->closed.total_streams += st.total_streams;
        manager_client_event(x->server->manager, false, x->id, reason);
        if (error < 0)
                log_conn(LOG_INFO, x->id, x->remote, 0,
                         "Client %s (%s) disconnected: %s; %" PRIu64 " streams, %" PRIu64 " bytes in, %" PRIu64
                         " bytes out.", x->id, x->remote, reason, st.total_streams, st.bytes_in, st.bytes_out);
        else
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s (%s) left: %s.", x->id, x->remote, reason);
        session_free(x);
}

static void reset_streams_on_port(const MuxStreamInfo *i, void *userdata);
static void session_control(Mux *m, const char *message, void *userdata);

static const MuxCallbacks session_callbacks = {
        .closed = session_closed,
        .control = session_control,
};

/* ---- handshakes ---- */

static Pending *pending_free(Pending *p) {
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

static int parse_offered_ports(const char *v, uint16_t **ret, size_t *ret_n) {
        _cleanup_free_ uint16_t *ports = NULL;
        size_t n = 0;

        while (v && *v) {
                char num[8];
                size_t k;
                uint16_t port;

                v += strspn(v, " \t,");
                k = strcspn(v, " \t,");
                if (k == 0)
                        break;
                if (k >= sizeof(num) || n >= MAX_OFFERED_PORTS)
                        return -EINVAL;
                memcpy(num, v, k);
                num[k] = 0;
                if (parse_port(num, &port) < 0)
                        return -EINVAL;
                for (size_t i = 0; i < n; i++)
                        if (ports[i] == port)
                                return -EINVAL;
                uint16_t *t = realloc(ports, sizeof(uint16_t) * (n + 1));
                if (!t)
                        return -ENOMEM;
                ports = t;
                ports[n++] = port;
                v += k;
        }
        if (n == 0)
                return -EINVAL;
        *ret = TAKE_PTR(ports);
        *ret_n = n;
        return 0;
}

/* X-Inlets-Hosts: comma-separated host names, "*" for any. */
static int parse_offered_hosts(const char *v, char ***ret, size_t *ret_n) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        while (v && *v) {
                size_t k;
                char *h;

                v += strspn(v, " \t,");
                k = strcspn(v, " \t,");
                if (k == 0)
                        break;
                if (n >= MAX_OFFERED_PORTS || k > 253)
                        return -EINVAL;
                h = strndup(v, k);
                if (!h)
                        return -ENOMEM;
                for (char *q = h; *q; q++)
                        *q = ascii_tolower(*q);
                if (!streq(h, "*") && !hostname_is_valid(h)) {
                        free(h);
                        return -EINVAL;
                }
                if (strv_push(&l, &n, h) < 0)
                        return -ENOMEM;
                v += k;
        }
        if (n == 0)
                return -EINVAL;
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

/* HTTP mode: the session for a request's host, round-robin among those that name it, else
 * among those that serve any host. */
static Mux *route_host(const char *host, void *userdata) {
        Server *s = userdata;
        unsigned exact = 0, any = 0, pick;

        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_hosts; i++) {
                        if (streq(x->hosts[i], host))
                                exact++;
                        else if (streq(x->hosts[i], "*"))
                                any++;
                }
        if (exact + any == 0)
                return NULL;
        pick = s->host_rr++ % (exact ?: any);
        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_hosts; i++)
                        if (streq(x->hosts[i], exact ? host : "*") && pick-- == 0)
                                return x->mux;
        return NULL;
}

/* The upgrade request is complete: check it, and either refuse or start the session. */
static void pending_upgrade(Pending *p, size_t head_len) {
        Server *s = p->server;
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        _cleanup_free_ uint16_t *ports = NULL;
        _cleanup_strv_free_ char **hosts = NULL;
        size_t n_hosts = 0;
        _cleanup_free_ char *accept = NULL, *generated_id = NULL, *why = NULL;
        const char *auth, *key, *id, *v;
        size_t n_ports = 0, bound = 0;
        Session *x;
        char response[512];
        MuxConfig cfg = {
                .h2_client = true,
                .ws_client = false,
                .max_frame_size = def(s)->max_frame_size,
                .max_streams = def(s)->max_streams,
                .keepalive_usec = def(s)->keepalive_usec,
        };
        int r;

        r = http_head_parse(p->head, head_len, true, HTTP_HEADERS_MAX_DEFAULT, &h);
        if (r == -E2BIG)
                return pending_reply(p, 431, "Request Header Fields Too Large", "too many header fields", NULL);
        if (r < 0)
                return pending_reply(p, 400, "Bad Request", "malformed HTTP request", NULL);
        if (!streq(h->method, "GET") || !h->url || strncmp(h->url, "/connect", 8) != 0 ||
            (h->url[8] != 0 && h->url[8] != '?'))
                return pending_reply(p, 404, "Not Found", "the tunnel endpoint is GET /connect", NULL);
        key = http_head_get(h, "Sec-WebSocket-Key");
        if (!h->upgrade || !http_header_has_token(http_head_get(h, "Upgrade"), "websocket") ||
            !http_header_has_token(http_head_get(h, "Connection"), "upgrade") || !key || strlen(key) != 24)
                return pending_reply(p, 400, "Bad Request", "expected a WebSocket upgrade", NULL);
        v = http_head_get(h, "Sec-WebSocket-Version");
        if (!v || !streq(v, "13"))
                return pending_reply(p, 426, "Upgrade Required", "WebSocket version 13 required",
                                     "Sec-WebSocket-Version: 13\r\n");

        auth = http_head_get(h, "Authorization");
        if (!auth || http_head_count(h, "Authorization") != 1 || strncasecmp(auth, "Bearer ", 7) != 0 ||
            !secret_equal(auth + 7, strlen(auth + 7), def(s)->token, strlen(def(s)->token))) {
                uint64_t delay = auth_failure_delay(s, &p->peer);
                if (ratelimit_below(&s->auth_log))
                        log_conn(LOG_WARNING, NULL, p->remote, 0, "Refused a client from %s: %s token.", p->remote,
                                 auth ? "wrong" : "no");
                /* Answered later, the more so the more often this address was wrong: guessing
                 * gets slow, and the answer never tells how close a guess was. */
                p->refuse_on_timer = true;
                p->io = sd_event_source_disable_unref(p->io);
                (void) sd_event_source_set_time_relative(p->timer, delay);
                (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
                return;
        }
        auth_success(s, &p->peer);

        v = http_head_get(h, "X-Inlets-Mode");
        if (v && !streq(v, mode_to_string(def(s)->mode)))
                return pending_reply(p, 409, "Conflict", def(s)->mode == MODE_TCP ? "this server runs in TCP mode"
                                                                                    : "this server runs in HTTP mode",
                                     NULL);
        if (def(s)->mode == MODE_HTTP) {
                if (!v)
                        return pending_reply(p, 409, "Conflict", "this server runs in HTTP mode", NULL);
                if (parse_offered_hosts(http_head_get(h, "X-Inlets-Hosts"), &hosts, &n_hosts) < 0)
                        return pending_reply(p, 400, "Bad Request",
                                             "X-Inlets-Hosts must list 1 to 256 host names (or *), comma-separated",
                                             NULL);
        } else if (parse_offered_ports(http_head_get(h, "X-Inlets-Ports"), &ports, &n_ports) < 0)
                return pending_reply(p, 400, "Bad Request",
                                     "X-Inlets-Ports must list 1 to 256 distinct ports, comma-separated", NULL);
        for (size_t i = 0; i < n_ports; i++)
                if (!definition_port_allowed(def(s), ports[i])) {
                        char msg[96];
                        port_refusal(def(s), ports[i], msg, sizeof(msg));
                        log_warning("Refused client from %s: %s.", p->remote, msg);
                        return pending_reply(p, 409, "Conflict", msg, NULL);
                }

        id = http_head_get(h, "X-Inlets-Client-Id");
        if (id && !string_is_safe_id(id, 64))
                return pending_reply(p, 400, "Bad Request", "X-Inlets-Client-Id: up to 64 of A-Z a-z 0-9 . _ @ -",
                                     NULL);
        if (!id) {
                uint8_t b[6];
                if (random_bytes(b, sizeof(b)) < 0 || !(generated_id = hexmem(b, sizeof(b))))
                        return pending_reply(p, 500, "Internal Server Error", "out of memory", NULL);
                id = generated_id;
        }

        /* The same client again (it restarted, or its old connection is half dead): the new
         * session replaces the old one. */
        for (x = s->sessions; x; x = x->next)
                if (streq(x->id, id)) {
                        log_info("Client %s reconnected from %s: dropping its previous session.", id, p->remote);
                        session_free(x);
                        break;
                }
        if (s->n_sessions >= def(s)->max_clients)
                return pending_reply(p, 503, "Service Unavailable", "too many clients (MaxClients=)", NULL);

        for (bound = 0; bound < n_ports; bound++) {
                r = listener_ref(s, ports[bound], &why);
                if (r < 0) {
                        char msg[256];
                        while (bound > 0)
                                listener_unref(s, ports[--bound]);
                        snprintf(msg, sizeof(msg), "%s", why ?: strerror(-r));
                        log_warning("Refused client %s from %s: %s.", id, p->remote, msg);
                        return pending_reply(p, 409, "Conflict", msg, NULL);
                }
        }

        accept = ws_accept_key(key);
        x = calloc(1, sizeof(*x));
        if (!accept || !x || !(x->id = strdup(id))) {
                free(x);
                for (size_t i = 0; i < n_ports; i++)
                        listener_unref(s, ports[i]);
                return pending_reply(p, 500, "Internal Server Error", "out of memory", NULL);
        }
        x->server = s;
        memcpy(x->remote, p->remote, sizeof(x->remote));
        {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                x->since = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
        }
        x->ports = TAKE_PTR(ports);
        x->n_ports = n_ports;
        x->hosts = TAKE_PTR(hosts);
        x->n_hosts = n_hosts;
        LIST_PREPEND(s->sessions, x);
        s->n_sessions++;

        snprintf(response, sizeof(response),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\nServer: inletsd/%s\r\n\r\n",
                 accept, PROJECT_VERSION);
        r = tls_conn_send(p->conn, response, strlen(response));
        /* The fd moves to the mux: epoll must not know it twice. */
        p->io = sd_event_source_disable_unref(p->io);
        if (r >= 0)
                r = mux_new(s->manager->event, TAKE_PTR(p->conn), &cfg, (const uint8_t *) p->head + head_len,
                            p->head_len - head_len, &session_callbacks, x, &x->mux);
        if (r < 0) {
                log_warning_errno(r, "Failed to start the session of client %s: %m", id);
                session_free(x);
                pending_free(p);
                return;
        }
        if (x->n_hosts > 0) {
                char list[1024] = "";
                size_t o = 0;
                for (size_t i = 0; i < x->n_hosts && o < sizeof(list) - 1; i++)
                        o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%s", i ? " " : "", x->hosts[i]);
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s connected from %s, hosts %s.", x->id, x->remote,
                         list);
        } else {
                char list[MAX_OFFERED_PORTS * 6 + 1] = "";
                size_t o = 0;
                for (size_t i = 0; i < x->n_ports; i++)
                        o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%u", i ? " " : "", x->ports[i]);
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s connected from %s, ports %s.", x->id, x->remote,
                         list);
        }
        manager_client_event(s->manager, true, x->id, x->remote);
        pending_free(p);
}

static int pending_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Pending *p = userdata;
        int r;

        if (!p->handshake_done) {
                r = tls_conn_handshake(p->conn);
                if (r < 0) {
                        log_debug("TLS handshake with %s failed: %s", p->remote, tls_conn_error(p->conn));
                        pending_free(p);
                        return 0;
                }
                if (r == 0) {
                        (void) sd_event_source_set_io_events(
                                p->io, EPOLLIN | (tls_conn_handshake_wants_write(p->conn) ? EPOLLOUT : 0));
                        return 0;
                }
                p->handshake_done = true;
                (void) sd_event_source_set_io_events(p->io, EPOLLIN);
        }

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
        if (p->refuse_on_timer) {
                pending_reply(p, 401, "Unauthorized", "invalid or missing token", "WWW-Authenticate: Bearer\r\n");
                return 0;
        }
        log_debug("Handshake with %s timed out.", p->remote);
        pending_free(p);
        return 0;
}

static int control_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;

        for (unsigned i = 0; i < 64; i++) {
                SocketAddress peer;
                Pending *p;
                int cfd, r;

                cfd = accept_shed(fd, &peer);
                if (cfd < 0)
                        return 0;
                if (s->n_pending >= MAX_PENDING) {
                        /* Full of handshakes that go nowhere: the oldest makes room, so a flood
                         * of stalled connections cannot lock a real client out. */
                        Pending *oldest = s->pending;
                        while (oldest->next)
                                oldest = oldest->next;
                        pending_free(oldest);
                }
                p = calloc(1, sizeof(*p));
                if (!p) {
                        safe_close(cfd);
                        return log_oom(), 0;
                }
                p->server = s;
                p->peer = peer;
                socket_address_format(&peer, p->remote);
                LIST_PREPEND(s->pending, p);
                s->n_pending++;

                r = tls_conn_new_server(cfd, def(s)->tls ? s->creds : NULL, &p->conn);
                if (r >= 0)
                        r = sd_event_add_io(s->manager->event, &p->io, cfd, EPOLLIN, pending_handler, p);
                if (r >= 0)
                        r = sd_event_add_time_relative(s->manager->event, &p->timer, CLOCK_MONOTONIC,
                                                       def(s)->handshake_timeout_usec, 0, pending_timeout, p);
                if (r < 0) {
                        log_warning_errno(r, "Failed to set up a connection from %s: %m", p->remote);
                        pending_free(p);
                }
        }
        return 0;
}

/* ---- the server ---- */

/* Without AutoTLSSAN=: the host name, loopback, and the global addresses of the machine's
 * interfaces, so that a client pinning the CA and dialling the address it reaches us by passes
 * the name check (a pinned CA does not waive it). An exit server behind NAT has to name its
 * public address with AutoTLSSAN=. */
static int default_sans(char ***sans, size_t *n) {
        static const char *const fixed[] = { "localhost", "127.0.0.1", "::1" };
        _cleanup_free_ char *list = NULL;
        struct ifaddrs *ifa = NULL;
        char host[256] = "";
        size_t len = 0;
        FILE *f;

        (void) gethostname(host, sizeof(host) - 1);
        if (*host && strv_push(sans, n, strdup(host)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (strv_push(sans, n, strdup(fixed[i])) < 0)
                        return -ENOMEM;
        if (getifaddrs(&ifa) >= 0) {
                for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                        char buf[INET6_ADDRSTRLEN];
                        const void *a;

                        if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK))
                                continue;
                        if (i->ifa_addr->sa_family == AF_INET)
                                a = &((struct sockaddr_in *) i->ifa_addr)->sin_addr;
                        else if (i->ifa_addr->sa_family == AF_INET6) {
                                const struct in6_addr *a6 = &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
                                if (IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_LOOPBACK(a6))
                                        continue;
                                a = a6;
                        } else
                                continue;
                        if (!inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof(buf)) || strv_contains(*sans, *n, buf))
                                continue;
                        if (strv_push(sans, n, strdup(buf)) < 0) {
                                freeifaddrs(ifa);
                                return -ENOMEM;
                        }
                }
                freeifaddrs(ifa);
        }
        f = open_memstream(&list, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < *n; i++)
                fprintf(f, "%s%s", i ? ", " : "", (*sans)[i]);
        if (fclose(f) != 0)
                return -ENOMEM;
        log_notice("AutoTLSSAN= not set: the certificate names %s. Clients pinning the CA must dial one of "
                   "these; set AutoTLSSAN= to the public name or address clients use.", list);
        return 0;
}

static int load_credentials(const Definition *d, gnutls_certificate_credentials_t *ret, char **ret_error) {
        _cleanup_free_ char *err = NULL, *fp = NULL;
        _cleanup_strv_free_ char **sans = NULL;
        size_t n = 0;
        int r;

        *ret = NULL;
        if (!d->tls) {
                log_warning("TLS=no: the control port speaks plain WebSocket; terminate TLS in front of it.");
                return 0;
        }
        if (!d->auto_tls) {
                r = tls_server_credentials_from_files(d->certificate_file, d->key_file, ret, ret_error);
                if (r < 0)
                        return r;
                log_info("Using certificate %s.", d->certificate_file);
                return 0;
        }
        if (d->n_auto_tls_san == 0) {
                r = default_sans(&sans, &n);
                if (r < 0)
                        return r;
        }
        r = autotls_setup(d->state_directory, n > 0 ? sans : d->auto_tls_san, n > 0 ? n : d->n_auto_tls_san, ret,
                          &fp, ret_error);
        if (r < 0)
                return r;
        log_info("Auto-TLS CA %s/ca.crt, fingerprint %s", d->state_directory, fp);
        return 0;
}

int server_new(Manager *m, Server **ret) {
        Server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->control_fd = s->new_control_fd = s->http_fd = s->https_fd = -1;
        s->auth_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        s->busy_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 5 };
        *ret = s;
        return 0;
}

/* Sockets systemd bound for us (inletsd@NAME.socket, written by inletsd-generator): "control"
 * and "data-PORT". Privileged ports need no capability then, and a restart refuses nothing. */
static int take_systemd_sockets(Server *s) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "";
                uint16_t port;

                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* accept() must never block */
                socket_set_nodelay(fd); /* inherited by what we accept, as for our own listeners */
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                        log_warning("Ignoring passed fd %d (%s): not a listening stream socket.", fd, name);
                        safe_close(fd);
                } else if (streq(name, "control") && s->control_fd < 0) {
                        s->control_fd = fd;
                        log_info("Using the control socket passed by systemd.");
                } else if (streq(name, "http") && s->http_fd < 0) {
                        s->http_fd = fd;
                        log_info("Using the HTTP socket passed by systemd.");
                } else if (streq(name, "https") && s->https_fd < 0) {
                        s->https_fd = fd;
                        log_info("Using the HTTPS socket passed by systemd.");
                } else if (strncmp(name, "data-", 5) == 0 && parse_port(name + 5, &port) >= 0 &&
                           !listener_find(s, port)) {
                        Listener *l = calloc(1, sizeof(*l));
                        if (!l || sd_event_add_io(s->manager->event, &l->io, fd, EPOLLIN, listener_handler, l) < 0) {
                                free(l);
                                safe_close(fd);
                                continue;
                        }
                        l->server = s;
                        l->port = port;
                        l->fd = fd;
                        l->from_systemd = true;
                        listener_note_address(l);
                        (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF); /* until a client offers it */
                        l->next = s->listeners;
                        s->listeners = l;
                        log_conn(LOG_INFO, NULL, NULL, port, "Using the socket passed by systemd for port %u.", port);
                } else {
                        log_warning("Ignoring passed socket '%s'.", name);
                        safe_close(fd);
                }
        }
        for (int i = 0; names && names[i]; i++)
                free(names[i]);
        free(names);
        return 0;
}

static bool address_set(const SocketAddress *a) {
        return a->len > 0;
}

/* Credentials that a handshake in progress may still use are kept until exit. */
static void retire_credentials(Server *s, gnutls_certificate_credentials_t c) {
        gnutls_certificate_credentials_t *t;

        if (!c)
                return;
        t = realloc(s->retired_creds, sizeof(*t) * (s->n_retired_creds + 1));
        if (t) {
                s->retired_creds = t;
                s->retired_creds[s->n_retired_creds++] = c;
        } /* else: leak rather than free what a handshake may still use */
}

static void on_acme_credentials(gnutls_certificate_credentials_t creds, void *userdata) {
        Server *s = userdata;

        retire_credentials(s, s->https_creds);
        s->https_creds = creds;
        if (s->https)
                http_front_set_credentials(s->https, creds);
}

static uint16_t fd_port(int fd) {
        SocketAddress a = { .len = sizeof(a.storage) };
        return getsockname(fd, &a.sa, &a.len) < 0 ? 443 : socket_address_port(&a);
}

/* ACMEDomain=: the account key, the stored certificate or, until one is issued, a
 * placeholder (the control port's certificate, else an auto-TLS one for the names). */
static int start_acme(Server *s) {
        const Definition *d = def(s);
        _cleanup_free_ char *err = NULL, *dir = NULL, *fp = NULL;
        int r;

        r = acme_cert_new(s->manager, on_acme_credentials, s, &s->acme, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: "Failed to set up ACME");
        if (s->https_creds || s->creds)
                return 0;
        dir = asprintf_safe("%s/acme/placeholder", d->state_directory);
        if (!dir)
                return log_oom();
        (void) mkdir(dir, 0700);
        r = autotls_setup(dir, d->acme_domains, d->n_acme_domains, &s->placeholder_creds, &fp, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: "Failed to make a placeholder HTTPS certificate");
        return 0;
}

/* HTTP mode: the public HTTP port, and HTTPS when HTTPSListen= is set (or systemd passed it). */
static int start_http(Server *s) {
        const Definition *d = def(s);
        char buf[SOCKADDR_STR_MAX];
        int r;

        if (s->http_fd < 0) {
                r = socket_listen_tcp(&d->http_listen, &s->http_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on HTTP address %s: %m",
                                               socket_address_format(&d->http_listen, buf));
        }
        r = http_front_new(s->manager, TAKE_FD(s->http_fd), NULL, route_host, s, &s->http);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTP port: %m");

        if (!address_set(&d->https_listen) && s->https_fd < 0)
                return 0;
        if (d->n_acme_domains > 0) {
                r = start_acme(s);
                if (r < 0)
                        return r;
                http_front_set_acme(s->http, acme_cert_thumbprint(s->acme),
                                    s->https_fd >= 0 ? fd_port(s->https_fd)
                                                     : socket_address_port(&d->https_listen));
        } else if (d->https_certificate_file) {
                _cleanup_free_ char *err = NULL;
                r = tls_server_credentials_from_files(d->https_certificate_file, d->https_key_file, &s->https_creds,
                                                      &err);
                if (r < 0)
                        return log_error_errno(r, "%s", err ?: "Failed to load the HTTPS certificate");
        } else if (!s->creds)
                return log_error_errno(EINVAL, "%s: HTTPS needs HTTPSCertificateFile= (TLS=no leaves no certificate to "
                                       "share)", d->path);
        if (s->https_fd < 0) {
                r = socket_listen_tcp(&d->https_listen, &s->https_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on HTTPS address %s: %m",
                                               socket_address_format(&d->https_listen, buf));
        }
        r = http_front_new(s->manager, TAKE_FD(s->https_fd), s->https_creds ?: s->creds ?: s->placeholder_creds,
                           route_host, s, &s->https);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTPS port: %m");
        return 0;
}

int server_start(Server *s) {
        const Definition *d = def(s);
        char buf[SOCKADDR_STR_MAX];
        int r;

        _cleanup_free_ char *err = NULL;
        r = load_credentials(d, &s->creds, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: "Failed to set up TLS");
        r = take_systemd_sockets(s);
        if (r < 0)
                return r;
        if (s->control_fd < 0) {
                r = socket_listen_tcp(&d->control_listen, &s->control_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on control address %s: %m",
                                               socket_address_format(&d->control_listen, buf));
        }
        r = sd_event_add_io(s->manager->event, &s->control_io, s->control_fd, EPOLLIN, control_handler, s);
        if (r < 0)
                return r;
        if (d->mode == MODE_HTTP) {
                r = start_http(s);
                if (r < 0)
                        return r;
                log_info("Control port %s (%s), HTTP on %s%s%s.",
                         socket_address_format(&d->control_listen, (char[SOCKADDR_STR_MAX]) {}),
                         d->tls ? "wss" : "ws, no TLS", socket_address_format(&d->http_listen, buf),
                         s->https ? ", HTTPS on " : "",
                         s->https ? socket_address_format(&d->https_listen, (char[SOCKADDR_STR_MAX]) {}) : "");
        } else {
                socket_address_format(&d->data_listen, buf);
                log_info("Control port %s (%s), tunneled ports bind to %.*s.",
                         socket_address_format(&d->control_listen, (char[SOCKADDR_STR_MAX]) {}),
                         d->tls ? "wss" : "ws, no TLS", (int) (strrchr(buf, ':') - buf), buf);
        }
        manager_set_state(s->manager, TUNNEL_LISTENING);
        return 0;
}

void server_drain(Server *s) {
        if (s->http)
                http_front_stop(s->http);
        if (s->https)
                http_front_stop(s->https);
        s->control_io = sd_event_source_disable_unref(s->control_io);
        s->control_fd = safe_close(s->control_fd);
        while (s->pending)
                pending_free(s->pending);
        for (Listener *l = s->listeners; l; l = l->next)
                if (l->from_systemd)
                        (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
                else {
                        /* Ours: refuse at once rather than queue for a process that won't come. */
                        l->io = sd_event_source_disable_unref(l->io);
                        l->fd = safe_close(l->fd);
                }
}

void server_stop(Server *s) {
        s->control_io = sd_event_source_disable_unref(s->control_io);
        s->control_fd = safe_close(s->control_fd);
        while (s->pending)
                pending_free(s->pending);
        for (Session *x = s->sessions; x; x = x->next)
                mux_shutdown(x->mux, WS_CLOSE_GOING_AWAY);
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->pending)
                pending_free(s->pending);
        http_front_free(s->http);
        http_front_free(s->https);
        acme_cert_free(s->acme);
        while (s->sessions)
                session_free(s->sessions);
        while (s->listeners) {
                Listener *l = s->listeners;
                s->listeners = l->next;
                listener_free(l);
        }
        sd_event_source_disable_unref(s->control_io);
        safe_close(s->control_fd);
        safe_close(s->new_control_fd);
        if (s->creds)
                gnutls_certificate_free_credentials(s->creds);
        if (s->new_creds)
                gnutls_certificate_free_credentials(s->new_creds);
        if (s->https_creds)
                gnutls_certificate_free_credentials(s->https_creds);
        if (s->placeholder_creds)
                gnutls_certificate_free_credentials(s->placeholder_creds);
        safe_close(s->http_fd);
        safe_close(s->https_fd);
        for (size_t i = 0; i < s->n_retired_creds; i++)
                gnutls_certificate_free_credentials(s->retired_creds[i]);
        free(s->retired_creds);
        free(s);
        return NULL;
}

/* ---- what the bus shows ---- */

AcmeCert *server_acme(Server *s) {
        return s->acme;
}

void server_get_counters(Server *s, TunnelCounters *ret) {
        *ret = s->closed;
        for (Session *x = s->sessions; x; x = x->next) {
                MuxStats st;
                mux_get_stats(x->mux, &st);
                ret->bytes_in += st.bytes_in;
                ret->bytes_out += st.bytes_out;
                ret->total_streams += st.total_streams;
                ret->active_streams += st.active_streams;
        }
}

void server_foreach_client(Server *s, void (*f)(const PeerInfo *p, void *userdata), void *userdata) {
        for (Session *x = s->sessions; x; x = x->next) {
                MuxStats st;
                mux_get_stats(x->mux, &st);
                PeerInfo p = {
                        .id = x->id,
                        .address = x->remote,
                        .since_usec = x->since,
                        .bytes_in = st.bytes_in,
                        .bytes_out = st.bytes_out,
                        .streams = st.active_streams,
                        .ports = x->ports,
                        .n_ports = x->n_ports,
                };
                f(&p, userdata);
        }
}

void server_foreach_stream(Server *s, void (*f)(const StreamInfo *i, void *userdata), void *userdata) {
        for (Session *x = s->sessions; x; x = x->next)
                manager_foreach_mux_stream(x->mux, x->id, f, userdata);
}

int server_disconnect_client(Server *s, const char *id) {
        for (Session *x = s->sessions; x; x = x->next)
                if (streq(x->id, id)) {
                        log_info("Disconnecting client %s (%s) on request.", x->id, x->remote);
                        mux_abort(x->mux, "disconnected by an administrator");
                        return 0;
                }
        return -ENOENT;
}

/* ---- reload ---- */

static bool strv_equal(char **a, size_t na, char **b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

static bool tls_changed(const Definition *a, const Definition *b) {
        return a->tls != b->tls || a->auto_tls != b->auto_tls ||
               !strv_equal(a->auto_tls_san, a->n_auto_tls_san, b->auto_tls_san, b->n_auto_tls_san) ||
               !streq_ptr(a->certificate_file, b->certificate_file) || !streq_ptr(a->key_file, b->key_file) ||
               !streq_ptr(a->state_directory, b->state_directory);
}

int server_reload(Server *s, const Definition *n, char **ret_error) {
        const Definition *o = def(s);
        char buf[SOCKADDR_STR_MAX];
        int r;

        if (o->control_listen.len != n->control_listen.len ||
            memcmp(&o->control_listen.storage, &n->control_listen.storage, n->control_listen.len) != 0) {
                r = socket_listen_tcp(&n->control_listen, &s->new_control_fd);
                if (r < 0) {
                        if (asprintf(ret_error, "%s: cannot listen on ControlListen=%s: %s", n->path,
                                     socket_address_format(&n->control_listen, buf), strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
        }
        if (tls_changed(o, n)) {
                r = load_credentials(n, &s->new_creds, ret_error);
                if (r < 0) {
                        s->new_control_fd = safe_close(s->new_control_fd);
                        return r;
                }
                s->new_creds_set = true;
        }
        return 0;
}

void server_reloaded(Server *s, const Definition *old) {
        const Definition *d = def(s);
        Session *x, *next;

        if (s->new_control_fd >= 0) {
                char buf[SOCKADDR_STR_MAX];
                s->control_io = sd_event_source_disable_unref(s->control_io);
                safe_close(s->control_fd);
                s->control_fd = TAKE_FD(s->new_control_fd);
                if (sd_event_add_io(s->manager->event, &s->control_io, s->control_fd, EPOLLIN, control_handler, s) < 0)
                        log_oom();
                log_info("Control port moved to %s.", socket_address_format(&d->control_listen, buf));
        }
        if (s->new_creds_set) {
                retire_credentials(s, s->creds);
                s->creds = s->new_creds;
                s->new_creds = NULL;
                s->new_creds_set = false;
                log_info("TLS settings changed: new handshakes use the new certificate.");
                if (s->https && !s->https_creds)
                        http_front_set_credentials(s->https, s->creds);
        }
        if (d->mode == MODE_HTTP &&
            (memcmp(&d->http_listen, &old->http_listen, sizeof(d->http_listen)) != 0 ||
             memcmp(&d->https_listen, &old->https_listen, sizeof(d->https_listen)) != 0 ||
             !streq_ptr(d->https_certificate_file, old->https_certificate_file) ||
             !!d->n_acme_domains != !!old->n_acme_domains))
                log_warning("HTTPListen=, HTTPSListen=, the HTTPS certificate and turning ACME on or off apply at the "
                            "next restart.");
        if (s->acme && d->n_acme_domains > 0)
                acme_cert_reloaded(s->acme);
        /* Clients holding ports that are no longer allowed lose their session; the rest
         * (and their streams) carry on. A new token applies to new clients. */
        for (x = s->sessions; x; x = next) {
                next = x->next;
                for (size_t i = 0; i < x->n_ports; i++)
                        if (!definition_port_allowed(d, x->ports[i])) {
                                log_info("Client %s: port %u is no longer allowed (AllowPorts=), disconnecting.",
                                         x->id, x->ports[i]);
                                mux_abort(x->mux, "port no longer allowed");
                                break;
                        }
        }
}

/* ---- control messages: a client changes its offer without reconnecting ---- */

typedef struct PortReset {
        const uint16_t *removed;
        size_t n_removed;
} PortReset;

static void reset_streams_on_port(const MuxStreamInfo *i, void *userdata) {
        PortReset *pr = userdata;
        uint16_t port = authority_port(i->authority);
        for (size_t k = 0; k < pr->n_removed; k++)
                if (pr->removed[k] == port) {
                        mux_stream_reset(i->stream);
                        return;
                }
}

static bool has_port(const uint16_t *ports, size_t n, uint16_t port) {
        for (size_t i = 0; i < n; i++)
                if (ports[i] == port)
                        return true;
        return false;
}

/* "ports 3389,2222": the new complete offer. Answered "ok ports …" or "error …". */
static void session_control(Mux *m, const char *message, void *userdata) {
        Session *x = userdata;
        Server *s = x->server;
        _cleanup_free_ uint16_t *ports = NULL, *added = NULL, *removed = NULL;
        _cleanup_free_ char *why = NULL;
        size_t n = 0, n_added = 0, n_removed = 0;
        char reply[MAX_OFFERED_PORTS * 6 + 64];
        size_t o;
        int r;

        if (strncmp(message, "ports ", 6) != 0) {
                (void) mux_send_control(m, "error unknown command");
                return;
        }
        /* An HTTP-mode client offers host names only: it must not get ports bound. */
        if (def(s)->mode != MODE_TCP) {
                log_warning("Client %s asked for ports on an HTTP-mode server: refused.", x->id);
                (void) mux_send_control(m, "error this server runs in HTTP mode: it opens no ports");
                return;
        }
        if (parse_offered_ports(message + 6, &ports, &n) < 0) {
                (void) mux_send_control(m, "error ports must list 1 to 256 distinct ports, comma-separated");
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (!definition_port_allowed(def(s), ports[i])) {
                        memcpy(reply, "error ", 6);
                        port_refusal(def(s), ports[i], reply + 6, sizeof(reply) - 6);
                        (void) mux_send_control(m, reply);
                        return;
                }
        added = calloc(n, sizeof(uint16_t));
        removed = calloc(x->n_ports ?: 1, sizeof(uint16_t));
        if (!added || !removed)
                return (void) log_oom();
        for (size_t i = 0; i < n; i++)
                if (!has_port(x->ports, x->n_ports, ports[i]))
                        added[n_added++] = ports[i];
        for (size_t i = 0; i < x->n_ports; i++)
                if (!has_port(ports, n, x->ports[i]))
                        removed[n_removed++] = x->ports[i];
        /* Bind everything new first: on failure nothing has changed. */
        for (size_t i = 0; i < n_added; i++) {
                r = listener_ref(s, added[i], &why);
                if (r < 0) {
                        while (i > 0)
                                listener_unref(s, added[--i]);
                        snprintf(reply, sizeof(reply), "error %s", why ?: strerror(-r));
                        log_warning("Client %s: new offer refused: %s.", x->id, reply + 6);
                        (void) mux_send_control(m, reply);
                        return;
                }
        }
        /* Connections on ports that went away end; all others carry on. */
        mux_foreach_stream(m, reset_streams_on_port, &(PortReset) { removed, n_removed });
        free(x->ports);
        x->ports = TAKE_PTR(ports);
        x->n_ports = n;
        for (size_t i = 0; i < n_removed; i++)
                listener_unref(s, removed[i]);
        o = (size_t) snprintf(reply, sizeof(reply), "ok ports ");
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(reply + o, sizeof(reply) - o, "%s%u", i ? "," : "", x->ports[i]);
        log_info("Client %s now offers ports %s.", x->id, reply + 9);
        (void) mux_send_control(m, reply);
        manager_emit_changed(s->manager, "Clients");
        manager_emit_changed(s->manager, "Ports");
}

void server_status_summary(Server *s, size_t *ret_clients, char *ports, size_t size) {
        size_t o = 0;
        *ret_clients = s->n_sessions;
        ports[0] = 0;
        if (def(s)->mode == MODE_HTTP) {
                for (Session *x = s->sessions; x; x = x->next)
                        for (size_t i = 0; i < x->n_hosts && o + 2 < size; i++)
                                o += (size_t) snprintf(ports + o, size - o, "%s%s", o ? " " : "", x->hosts[i]);
                return;
        }
        for (Listener *l = s->listeners; l && o + 8 < size; l = l->next)
                if (l->refs > 0)
                        o += (size_t) snprintf(ports + o, size - o, "%s%u", o ? " " : "", l->port);
}
