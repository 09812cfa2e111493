// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tunnel client; see client.h. One connection at a time moves through
 * CONNECTING (TCP) -> HANDSHAKE (TLS) -> UPGRADE (WebSocket) -> CONNECTED (Mux); any failure
 * leads to WAITING, a backoff timer with jitter, and round again. Upstream connections are
 * dialled here, trying each resolved address in turn, and handed to the Mux once connected --
 * after the PROXY protocol header, when the port has one. */

#include <assert.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "client-forward.h"
#include "client-udp.h"
#include "client.h"
#include "crypto-util.h"
#include "encoding.h"
#include "http1.h"
#include "httpupstream.h"
#include "histogram.h"
#include "log.h"
#include "macro.h"
#include "mux.h"
#include "parse-util.h"
#include "proxy-protocol.h"
#include "ratelimit.h"
#include "resolve.h"
#include "resume.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"
#include "tls.h"
#include "version.h"
#include "ws.h"

#define BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define HEALTHY_USEC (10 * USEC_PER_SEC)

typedef enum ClientState {
        STATE_WAITING,
        STATE_RESOLVING,   /* the exit server's name, on the resolver's thread */
        STATE_CONNECTING,
        STATE_PROXY,       /* CONNECT sent to the HTTP proxy: its answer */
        STATE_HANDSHAKE,
        STATE_UPGRADE,
        STATE_CONNECTED,
        STATE_STOPPED,
} ClientState;

typedef struct Dial Dial;
typedef struct Client Client;

/* TCP mode: a host tunneled connections go to (Upstream=, or a Ports= item's own) and the
 * addresses it resolved to. */
/* Control messages sent and not answered yet, by kind (docs/protocol.md, section 6). */
#define SENT_MAX 1024
enum { SENT_PORTS, SENT_ACCESS, SENT_FORWARD, SENT_UDP };

typedef struct UpstreamHost {
        Client *client;
        char *name;
        SocketAddress *addrs;
        size_t n_addrs;
        ResolveQuery *query;    /* an answer on its way */
        uint64_t asked;         /* CLOCK_MONOTONIC µs of the last question */
        bool failing;           /* the last answer was an error: said once */
} UpstreamHost;

struct Dial {
        Client *client;
        Dial *prev, *next;
        MuxStream *stream;
        int fd;
        sd_event_source *io;
        uint16_t port, public_port;
        char *host;             /* which UpstreamHost (by name: a reload rebuilds the table) */
        size_t next_addr;
        uint8_t proxy_header[PROXY_HEADER_WRITE_MAX]; /* written before the stream's first byte */
        size_t proxy_header_len;
        uint64_t started;       /* CLOCK_MONOTONIC µs, for the metrics */
        int error;              /* of the last address tried */
        bool parked;            /* waits for the upstream's name to be resolved */
};

struct Client {
        Manager *manager;
        TunnelURL url;
        gnutls_certificate_credentials_t creds;
        char *client_id;
        ClientState state;

        SocketAddress *server_addrs;   /* the exit server's, tried in turn from server_next */
        size_t n_server_addrs, server_next;
        ResolveQuery *server_query;
        /* The exit server's name has a lookup thread of its own: behind the upstreams' names a
         * name that DNS never answers would keep the tunnel from ever connecting. */
        Resolver *server_resolver;
        int fd;
        TlsConn *conn;
        sd_event_source *io, *timer;
        char key[32];
        char head[HTTP_HEAD_MAX_DEFAULT];
        size_t head_len;

        Mux *mux;
        uint64_t connected_at;
        unsigned attempt;
        char last_error[512];

        UpstreamHost *hosts;   /* TCP mode: Upstream= and the Ports= items' own hosts */
        size_t n_hosts;
        Dial *dials;
        HttpUpstreams *http;   /* HTTP mode */

        TunnelCounters closed;     /* of sessions that ended */
        bool ever_connected, reconnect_now;
        gnutls_certificate_credentials_t new_creds, retired_creds;
        bool new_creds_set;
        RateLimit proxy_log;   /* streams without the addresses a PROXY header needs */
        RateLimit refused_log; /* visitors this client's own AllowFrom=/DenyFrom= refused */
        uint64_t refused;      /* of TCP streams (HTTP requests: httpupstream.c) */
        uint64_t sessions;     /* established since start (the first and each reconnect) */
        bool access_unknown;   /* this session's server answered "error unknown command" */
        ClientForwards *forwards; /* LocalForward= */
        ClientUdp *udp;           /* UDPPorts= */
        /* What each control message sent and not answered yet was (answers come in order). */
        uint8_t sent[SENT_MAX];
        size_t sent_head, sent_n;
        /* Resumption (docs/protocol.md): the last session the server made resumable (its id
         * and our key for it), and a lost one whose streams wait for the next connection. */
        bool resume_known;
        char resume_id[RESUME_ID_HEX + 1];
        uint8_t resume_key[32];
        uint64_t resume_usec;    /* the shorter of ResumeSec= and the server's */
        Mux *held;
        sd_event_source *hold_timer;
        ResumeCounters resume;   /* the counters; held_* are counted when asked */
};

static const Definition *def(Client *c) {
        return c->manager->def;
}

/* A control message to the server, noting what its answer will be about. */
static int send_command(Client *c, uint8_t kind, const char *message) {
        int r;

        if (!c->mux)
                return -ENOTCONN;
        if (c->sent_n == SENT_MAX)
                return -ENOBUFS;
        r = mux_send_control(c->mux, message);
        if (r < 0)
                return r;
        c->sent[(c->sent_head + c->sent_n++) % SENT_MAX] = kind;
        return 0;
}

static int send_forward(void *userdata, const char *message) {
        return send_command(userdata, SENT_FORWARD, message);
}

static void client_schedule(Client *c);
static int compute_client_id(Client *c);
static int timer_handler(sd_event_source *src, uint64_t usec, void *userdata);

static bool server_addrs_left(const Client *c) {
        return c->server_next < c->n_server_addrs;
}

static void set_error(Client *c, const char *msg) {
        snprintf(c->last_error, sizeof(c->last_error), "%s", msg);
        manager_set_error(c->manager, msg);
}

/* ---- upstream dialling ---- */

static Dial *dial_free(Dial *d) {
        Client *c;

        if (!d)
                return NULL;
        c = d->client;
        LIST_REMOVE(c->dials, d);
        sd_event_source_disable_unref(d->io);
        safe_close(d->fd);
        free(d->host);
        free(d);
        return NULL;
}

static int dial_next(Dial *d);
static void upstream_host_resolve(UpstreamHost *h);

/* The PROXY header goes out first, before the Mux writes what the exit server sent while we
 * dialled. The socket has just connected and holds nothing: its buffer takes the whole header
 * in one send(), and anything short of that is a failed connection. */
static int dial_send_proxy_header(Dial *d, int fd) {
        ssize_t n;

        if (d->proxy_header_len == 0)
                return 0;
        n = send(fd, d->proxy_header, d->proxy_header_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
                return -errno;
        return (size_t) n == d->proxy_header_len ? 0 : -EAGAIN;
}

static const char *dial_strerror(int error) {
        switch (-error) {
        case 0:
        case ECONNREFUSED:
                return "refused the connection";
        case EHOSTUNREACH:
                return "no address to connect to (the name did not resolve)";
        case ESHUTDOWN:
                return "not dialled, shutting down while its name was resolved";
        default:
                return strerror(-error);
        }
}

static void dial_done(Dial *d, int fd) {
        MuxStream *s = d->stream;
        int r;

        if (fd >= 0 && (r = dial_send_proxy_header(d, fd)) < 0) {
                log_conn(LOG_INFO, NULL, NULL, d->public_port,
                         "Upstream %s port %u: failed to send the PROXY header for public port %u: %s",
                         d->host, d->port, d->public_port, strerror(-r));
                fd = safe_close(fd);
                d->error = -EIO;
        } else if (fd < 0)
                log_conn(LOG_INFO, NULL, NULL, d->public_port, "Upstream %s port %u for public port %u: %s.", d->host,
                         d->port, d->public_port,
                         dial_strerror(d->error));
        manager_note_upstream(d->client->manager, fd >= 0 ? 0 : d->error ?: -EIO, now_usec() - d->started);
        mux_stream_set_userdata(s, NULL);
        d->fd = -1;
        dial_free(d);
        if (fd >= 0)
                (void) mux_stream_accept(s, fd);
        else
                mux_stream_refuse(s, true);
}

static int dial_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Dial *d = userdata;
        int err = 0;
        socklen_t l = sizeof(err);

        (void) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        d->io = sd_event_source_disable_unref(d->io);
        if (err == 0) {
                dial_done(d, TAKE_FD(d->fd));
                return 0;
        }
        log_debug("Upstream port %u: %s", d->port, strerror(err));
        d->error = -err;
        d->fd = safe_close(d->fd);
        if (dial_next(d) < 0)
                dial_done(d, -1);
        return 0;
}

static UpstreamHost *upstream_host(Client *c, const char *name) {
        for (size_t i = 0; i < c->n_hosts; i++)
                if (streq(c->hosts[i].name, name))
                        return &c->hosts[i];
        return NULL;
}

/* Starts connecting to the next address; <0 when none is left. */
static int dial_next(Dial *d) {
        Client *c = d->client;
        bool connected;
        int fd, r;

        UpstreamHost *h = upstream_host(c, d->host);

        if (h && !h->query && now_usec() >= h->asked + (h->n_addrs == 0 ? RESOLVE_RETRY_USEC : RESOLVE_REFRESH_USEC))
                upstream_host_resolve(h); /* none yet, or old: asked again (the old ones serve meanwhile) */
        if (h && h->n_addrs == 0 && h->query) {
                /* The first answer for the upstream's name is on its way: wait for it. */
                d->parked = true;
                return 0;
        }
        fd = socket_connect_next(h ? h->addrs : NULL, h ? h->n_addrs : 0, &d->next_addr, d->port, &connected);
        if (fd < 0) {
                if (fd != -EHOSTUNREACH || d->error == 0)
                        d->error = fd; /* else the earlier address's own error tells more */
                return fd;
        }
        if (connected) { /* a local upstream: no need to wait */
                dial_done(d, fd);
                return 0;
        }
        r = sd_event_add_io(c->manager->event, &d->io, fd, EPOLLOUT, dial_handler, d);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        (void) sd_event_source_set_description(d->io, "client-upstream-dial");
        d->fd = fd;
        return 0;
}

/* The PROXY header for stream s into d, built from x-forwarded-for (the visitor) and :authority
 * (the public address it reached). A server that does not send both (an older or foreign one)
 * gets one that names no addresses (UNKNOWN, LOCAL): never none, never a wrong one. */
static void dial_prepare_proxy_header(Client *c, Dial *d, MuxStream *s, const char *authority,
                                      ProxyProtocol version) {
        SocketAddress source, destination;
        const char *peer = NULL;
        int n;

        mux_stream_get(s, NULL, NULL, &peer);
        if (proxy_address_parse(peer, &source) < 0 || proxy_address_parse(authority, &destination) < 0) {
                if (ratelimit_below(&c->proxy_log))
                        log_warning("Port %u: the server sent no usable visitor address "
                                    "(x-forwarded-for '%s', :authority '%s'); the upstream gets a PROXY header "
                                    "without addresses.",
                                    d->public_port, peer ?: "", authority);
                /* Never no header: the upstream expects one, and would take the visitor's own
                 * first bytes for it (a visitor could claim any address). */
                n = proxy_header_write_unknown(version, d->proxy_header);
                if (n > 0)
                        d->proxy_header_len = (size_t) n;
                return;
        }
        n = proxy_header_write(version, &source, &destination, d->proxy_header);
        if (n > 0)
                d->proxy_header_len = (size_t) n;
}

/* The client's own AllowFrom=/DenyFrom= for a stream to public_port: judged on the visitor the
 * server names (x-forwarded-for); a stream without one is refused when there are lists (fail
 * closed: an older server does not say who it is). */
static bool stream_allowed(Client *c, MuxStream *s, uint16_t public_port) {
        const AccessList *l = &def(c)->access;
        SocketAddress visitor;
        const char *peer = NULL;
        char scope[8];

        if (l->n_rules == 0)
                return true;
        mux_stream_get(s, NULL, NULL, &peer);
        snprintf(scope, sizeof(scope), "%u", public_port);
        if (proxy_address_parse(peer, &visitor) >= 0 && access_list_allows(l, scope, &visitor))
                return true;
        c->refused++;
        if (ratelimit_below(&c->refused_log))
                log_info("Port %u: refused %s (this client's AllowFrom=/DenyFrom=).", public_port,
                         peer && *peer ? peer : "a visitor the server did not name");
        return false;
}

static void stream_request(Mux *m, MuxStream *s, const char *authority, void *userdata) {
        Client *c = userdata;
        uint16_t public_port, port = 0;
        const char *host = NULL;
        ProxyProtocol proxy;
        Dial *d;

        /* Only the port of :authority counts: the upstream is ours to choose, never the
         * server's, so a hostile server cannot steer us at other hosts. */
        if (client_forwards_stream(c->forwards, s, authority))
                return; /* LocalForward=: a stream this client asked for */
        public_port = authority_port(authority);
        for (size_t i = 0; i < def(c)->n_ports; i++)
                if (def(c)->ports[i].public_port == public_port) {
                        port = def(c)->ports[i].upstream_port;
                        host = port_map_host(def(c), &def(c)->ports[i]);
                }
        if (port == 0) {
                log_warning("Server asked for %s, which is not in Ports=; refused.", authority);
                mux_stream_refuse(s, false);
                return;
        }
        if (!stream_allowed(c, s, public_port)) {
                mux_stream_refuse(s, false);
                return;
        }
        d = calloc(1, sizeof(*d));
        if (!d) {
                mux_stream_refuse(s, false);
                return;
        }
        d->client = c;
        d->stream = s;
        d->fd = -1;
        d->host = strdup(host);
        if (!d->host) {
                free(d);
                mux_stream_refuse(s, false);
                return;
        }
        d->started = now_usec();
        d->port = port;
        d->public_port = public_port;
        proxy = definition_proxy_protocol(def(c), public_port);
        if (proxy != PROXY_PROTOCOL_NO)
                dial_prepare_proxy_header(c, d, s, authority, proxy);
        LIST_PREPEND(c->dials, d);
        mux_stream_set_userdata(s, d);
        if (dial_next(d) < 0)
                dial_done(d, -1);
}

static void stream_closed(Mux *m, MuxStream *s, void *userdata) {
        Client *c = userdata;
        Dial *d = mux_stream_userdata(s);

        manager_stream_ended(c->manager, s);
        /* Reset while we were still dialling. */
        if (d)
                dial_free(d);
}

/* ---- the control connection ---- */

static void connection_reset(Client *c) {
        c->io = sd_event_source_disable_unref(c->io);
        c->conn = tls_conn_free(c->conn);
        c->fd = safe_close(c->fd);
        explicit_bzero(c->head, sizeof(c->head));
        c->head_len = 0;
        resolve_query_cancel(c->server_query);
        c->server_query = NULL;
}

/* A mux of ours is done: its counts go to the totals. */
static void mux_retire(Client *c, Mux *m) {
        MuxStats st;

        if (!m)
                return;
        mux_get_stats(m, &st);
        c->resume.resent_bytes += st.resent_bytes;
        c->resume.resumed_streams += st.resumed_streams;
        manager_session_ended(c->manager, m);
        c->closed.bytes_in += st.bytes_in;
        c->closed.bytes_out += st.bytes_out;
        c->closed.total_streams += st.total_streams;
        mux_free(m);
}

/* The lost session's streams that did not resume close. */
static void release_held(Client *c, const char *why) {
        MuxStats st;

        if (!c->held)
                return;
        if (c->mux)
                mux_set_predecessor(c->mux, NULL);
        mux_get_stats(c->held, &st);
        if (why && st.active_streams > 0)
                log_info("%u connections of the lost session closed: %s.", st.active_streams, why);
        c->resume.expired_streams += st.active_streams;
        mux_retire(c, TAKE_PTR(c->held));
        c->hold_timer = sd_event_source_disable_unref(c->hold_timer);
}

static int hold_expired(sd_event_source *src, uint64_t usec, void *userdata) {
        Client *c = userdata;

        release_held(c, c->mux ? "the exit server did not ask for them" : "no new connection within ResumeSec=");
        return 0;
}

/* The live session goes: first what refers to its streams (dials waiting for a name or a
 * connect, forwards, the commands it was sent). */
static void session_retire(Client *c) {
        while (c->dials)
                dial_free(c->dials);
        client_udp_flows_end(c->udp); /* flows do not wait for a resumption */
        client_forwards_session(c->forwards, NULL);
        c->sent_head = c->sent_n = 0;
        if (c->mux)
                mux_set_predecessor(c->mux, NULL);
        mux_retire(c, TAKE_PTR(c->mux));
}

/* ---- restarts (SIGUSR2): the session handed to the next process, as server-handover.c ---- */

/* The session whose streams go: the live one (ended now as a lost connection), or a held one. */
static Mux *handover_mux(Client *c) {
        unsigned ended;

        if (c->mux && c->resume_known) {
                mux_sever(c->mux);
                /* A restart while the session resumes: what the exit server has not asked for
                 * yet goes too (the review: those were reset). */
                if (c->held && mux_is_dead(c->mux))
                        mux_absorb(c->mux, c->held);
                if (mux_resumable_streams(c->mux, &ended) > 0 || ended > 0)
                        return c->mux;
        }
        if (c->held && c->resume_known && (mux_resumable_streams(c->held, &ended) > 0 || ended > 0))
                return c->held;
        return NULL;
}

int client_handover(Client *c, FILE *f, int **fds, size_t *n_fds) {
        _cleanup_(erase_and_freep) char *key = NULL;
        Mux *m;
        int r;

        assert(c);
        if (def(c)->mode != MODE_TCP || !(m = handover_mux(c)))
                return 0;
        key = hexmem(c->resume_key, sizeof(c->resume_key));
        if (!key)
                return -ENOMEM;
        fprintf(f, "%s\nclient rid=%s key=%s usec=%" PRIu64 "\n", HANDOVER_MAGIC, c->resume_id, key, c->resume_usec);
        r = mux_save(m, f, fds, n_fds);
        if (r < 0)
                return r;
        fprintf(f, "end\n");
        return ferror(f) ? -EIO : 1;
}

void client_handover_done(Client *c) {
        /* Handed over: ours close without a reset, the session is gone here. */
        if (c->mux && mux_is_dead(c->mux)) {
                mux_forget_sockets(c->mux);
                session_retire(c); /* (a dial waiting for DNS held one of its streams: review) */
                connection_reset(c);
        }
        if (c->held) {
                mux_forget_sockets(c->held);
                mux_retire(c, TAKE_PTR(c->held));
                c->hold_timer = sd_event_source_disable_unref(c->hold_timer);
        }
}

int client_restore(Client *c, HandoverReader *rd, int *fds, size_t n_fds) {
        const Definition *d = def(c);
        const MuxConfig cfg = {
                .ws_client = true,
                .max_frame_size = d->max_frame_size,
                .max_streams = d->max_streams,
                .keepalive_usec = d->keepalive_usec,
                .resumable = true,
        };
        const char *rid, *key;
        HandoverLine l;
        uint64_t usec;
        unsigned ended, n;
        Mux *m = NULL;
        int r;

        assert(c);
        assert(rd);
        if (handover_next(rd, &l) < 0 || !streq(l.kind, "client") ||
            handover_token(&l, "rid", RESUME_ID_HEX, &rid) < 0 || strlen(rid) != RESUME_ID_HEX ||
            handover_token(&l, "key", 64, &key) < 0 || unhexmem(key, c->resume_key, sizeof(c->resume_key)) < 0 ||
            handover_u64(&l, "usec", 3600 * USEC_PER_SEC, &usec) < 0 || usec == 0)
                return log_warning_errno(EBADMSG, "The previous process's state is not one this version reads.");
        r = mux_load(c->manager->event, &cfg, rd, fds, n_fds, &m);
        if (r < 0)
                return log_warning_errno(r, "The previous process's state is damaged: %m");
        n = mux_resumable_streams(m, &ended);
        memcpy(c->resume_id, rid, RESUME_ID_HEX + 1);
        c->resume_known = true;
        c->resume_usec = MIN(usec, d->resume_usec);
        c->held = m;
        r = sd_event_add_time_relative(c->manager->event, &c->hold_timer, CLOCK_MONOTONIC, c->resume_usec, 0,
                                       hold_expired, c);
        if (r < 0) {
                release_held(c, "out of memory");
                return r;
        }
        (void) sd_event_source_set_description(c->hold_timer, "client-hold");
        log_info("Holding %u connections from the previous process for %" PRIu64 " s while the tunnel connects.", n,
                 c->resume_usec / USEC_PER_SEC);
        return 0;
}

/* The connection of a resumable session is lost: its streams wait, unread, for the next one. */
static bool client_hold(Client *c, int error) {
        unsigned n, ended;

        if (c->state == STATE_STOPPED || error >= 0 || !c->resume_known || c->resume_usec == 0)
                return false;
        n = mux_resumable_streams(c->mux, &ended);
        if (n == 0 && ended == 0)
                return false;
        release_held(c, "lost again before they resumed");
        c->held = TAKE_PTR(c->mux);
        if (sd_event_add_time_relative(c->manager->event, &c->hold_timer, CLOCK_MONOTONIC, c->resume_usec, 0,
                                       hold_expired, c) < 0) {
                release_held(c, "out of memory");
                return false;
        }
        (void) sd_event_source_set_description(c->hold_timer, "client-hold");
        log_info("Holding %u connections for %" PRIu64 " s while the tunnel reconnects.", n,
                 c->resume_usec / USEC_PER_SEC);
        c->reconnect_now = true; /* the first try at once: the path may be back already */
        return true;
}

static void session_end(Client *c, const char *why) {
        uint64_t lasted = c->connected_at ? now_usec() - c->connected_at : 0;

        /* why may point into the mux: keep it before the mux goes. */
        set_error(c, why);
        session_retire(c);
        connection_reset(c);
        if (c->state == STATE_STOPPED)
                return;
        /* A session that was healthy for a while starts the backoff over. */
        if (lasted >= HEALTHY_USEC)
                c->attempt = 0;
        c->connected_at = 0;
        client_schedule(c);
}

static void mux_closed(Mux *m, int error, const char *reason, void *userdata) {
        Client *c = userdata;
        log_warning("Connection to %s lost: %s", def(c)->url, reason);
        (void) client_hold(c, error); /* reason stays valid: a held mux lives on */
        session_end(c, reason);
}

/* begin, the rules, commit: the first failure ends it. */
static int send_access_messages(Client *c, const Definition *d, char msg[static WS_TEXT_MAX + 1]) {
        int r = send_command(c, SENT_ACCESS, "access begin");

        for (int allow = 1; r >= 0 && allow >= 0; allow--) {
                size_t o = 0;
                for (size_t i = 0; r >= 0 && i < d->access.n_rules; i++) {
                        char item[ACCESS_RULE_STR_MAX];
                        size_t n;

                        if (d->access.rules[i].allow != allow)
                                continue;
                        n = strlen(access_rule_format(&d->access.rules[i], item));
                        if (o > 0 && o + 1 + n > WS_TEXT_MAX) {
                                r = send_command(c, SENT_ACCESS, msg);
                                o = 0;
                        }
                        if (o == 0)
                                o = (size_t) snprintf(msg, WS_TEXT_MAX + 1, "access %s", allow ? "allow" : "deny");
                        o += (size_t) snprintf(msg + o, WS_TEXT_MAX + 1 - o, " %s", item);
                }
                if (r >= 0 && o > 0)
                        r = send_command(c, SENT_ACCESS, msg);
        }
        return r < 0 ? r : send_command(c, SENT_ACCESS, "access commit");
}

/* The client's own AllowFrom=/DenyFrom= of d to the exit server, which applies them before a
 * stream or request reaches us (docs/protocol.md, "access"): begin, the rules in messages of at
 * most WS_TEXT_MAX bytes, commit. Lists without rules clear the server's. All of it is sent, or
 * the session ends: a commit after a message that could not be sent would put part of a deny
 * list in force, and the server's old lists must not outlive new ones either. The next session
 * sends them from the start. */
static void send_access_lists(Client *c, const Definition *d) {
        char msg[WS_TEXT_MAX + 1];
        int r;

        if (!c->mux || c->access_unknown)
                return;
        r = send_access_messages(c, d, msg);
        if (r < 0) {
                log_warning("Cannot send the access lists to the exit server (%s, %zu answers outstanding): "
                            "reconnecting to send them whole.", strerror(-r), (size_t) c->sent_n);
                mux_abort(c->mux, "access lists not sent");
        }
}

/* "udp-ports LIST": UDPPorts= public ports, the whole offer (an empty list withdraws it). */
static void send_udp_ports(Client *c, const Definition *d) {
        char msg[16 + 6 * 256];
        size_t k = (size_t) snprintf(msg, sizeof(msg), "udp-ports");

        if (!c->mux)
                return;
        for (size_t i = 0; i < d->n_udp_ports && k < sizeof(msg) - 8; i++)
                k += (size_t) snprintf(msg + k, sizeof(msg) - k, "%c%u", i ? ',' : ' ', d->udp_ports[i].public_port);
        if (send_command(c, SENT_UDP, msg) < 0) {
                log_warning("Cannot send UDPPorts= to the exit server: reconnecting to send it.");
                mux_abort(c->mux, "UDP ports not sent");
        }
}

static void mux_control(Mux *m, const char *message, void *userdata) {
        Client *c = userdata;
        int kind = -1;

        /* A notice answers nothing; everything else answers the oldest message not answered. */
        if (startswith(message, "notice forward "))
                return client_forwards_notice(c->forwards, message + 15);
        if (c->sent_n > 0) {
                kind = c->sent[c->sent_head];
                c->sent_head = (c->sent_head + 1) % SENT_MAX;
                c->sent_n--;
        }
        if (kind == SENT_FORWARD)
                return client_forwards_answer(c->forwards, message);
        if (kind == SENT_UDP) {
                if (def(c)->n_udp_ports == 0)
                        return; /* an empty offer: nothing to say, whatever the answer */
                if (streq(message, "error unknown command"))
                        log_warning("The exit server does not carry UDP (an older version): UDPPorts= is not served.");
                else if (startswith(message, "ok udp-ports "))
                        log_info("The exit server carries UDP ports %s.", message + 13);
                else if (startswith(message, "error ")) {
                        char msg[300];
                        snprintf(msg, sizeof(msg), "The exit server refused UDPPorts=: %s", message + 6);
                        log_error("%s", msg);
                        set_error(c, msg);
                }
                return;
        }
        if (startswith(message, "ok access commit "))
                log_info("The exit server applies this client's AllowFrom=/DenyFrom= (%s rules) too.", message + 17);
        else if (startswith(message, "ok access"))
                return;
        else if (startswith(message, "error access: ")) {
                char msg[300];
                snprintf(msg, sizeof(msg), "The exit server refused this client's access lists: %s", message + 14);
                log_error("%s", msg);
                set_error(c, msg);
        } else if (streq(message, "error unknown command")) {
                /* Only "access" can be unknown (every server knows "ports"): an older server. */
                if (!c->access_unknown)
                        log_warning("The exit server does not apply this client's AllowFrom=/DenyFrom= (an older "
                                    "version): the client enforces them on its own.");
                c->access_unknown = true;
        } else if (strncmp(message, "ok ", 3) == 0)
                log_info("The server accepted the new offer: %s.", message + 3);
        else if (strncmp(message, "error ", 6) == 0) {
                char msg[300];
                snprintf(msg, sizeof(msg), "The server refused the new offer: %s", message + 6);
                log_error("%s", msg);
                set_error(c, msg);
        } else
                log_debug("Ignoring control message from the server.");
}

/* A CONNECT-UDP stream: its public port through UDPPorts= to an upstream address of ours, never
 * one the server names. */
static void udp_request(Client *c, MuxStream *s) {
        const Definition *d = def(c);
        const char *authority = mux_stream_authority(s);
        uint16_t public_port = authority_port(authority);
        const PortMap *pm = NULL;
        UpstreamHost *h;
        SocketAddress a;

        for (size_t i = 0; i < d->n_udp_ports && !pm; i++)
                if (d->udp_ports[i].public_port == public_port)
                        pm = &d->udp_ports[i];
        if (!pm) {
                if (ratelimit_below(&c->refused_log))
                        log_warning("Server asked for UDP %s, which is not in UDPPorts=; refused.", authority);
                return client_udp_refuse(c->udp, s, 403);
        }
        if (!stream_allowed(c, s, public_port))
                return client_udp_refuse(c->udp, s, 403);
        h = upstream_host(c, port_map_host(d, pm));
        if (h && !h->query && now_usec() >= h->asked + (h->n_addrs == 0 ? RESOLVE_RETRY_USEC : RESOLVE_REFRESH_USEC))
                upstream_host_resolve(h);
        if (!h || h->n_addrs == 0) {
                if (ratelimit_below(&c->refused_log))
                        log_warning("UDP port %u: no address for upstream %s yet; flow refused.", public_port,
                                    port_map_host(d, pm));
                return client_udp_refuse(c->udp, s, 502);
        }
        a = h->addrs[0];
        socket_address_set_port(&a, pm->upstream_port);
        client_udp_accept(c->udp, s, &a);
}

static void http_request(Mux *m, MuxStream *s, HttpHead *h, bool end_stream, void *userdata) {
        Client *c = userdata;

        if (h->protocol && streq(h->protocol, "connect-udp") && def(c)->mode == MODE_TCP) {
                http_head_free(h);
                udp_request(c, s);
                return;
        }
        if (!c->http) {
                http_head_free(h);
                log_warning("The server sent an HTTP request, but this tunnel runs in TCP mode; refused.");
                mux_stream_reset(s);
                return;
        }
        http_upstreams_request(c->http, s, h, end_stream);
}

static const MuxCallbacks client_mux_callbacks = {
        .stream_request = stream_request,
        .http_request = http_request,
        .stream_closed = stream_closed,
        .closed = mux_closed,
        .control = mux_control,
};

static void fail(Client *c, const char *format, ...) _printf_(2, 3);
static void fail(Client *c, const char *format, ...) {
        char msg[256];
        va_list ap;

        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        log_error("%s", msg);
        session_end(c, msg);
}

/* The proxy's name and port as messages show it: never its user or password. */
static const char *proxy_name(Client *c, char buf[static 280]) {
        const ProxyURL *p = &def(c)->proxy_url;

        snprintf(buf, 280, strchr(p->host, ':') ? "[%s]:%u" : "%s:%u", p->host, p->port);
        return buf;
}

static int send_upgrade(Client *c) {
        const Definition *d = def(c);
        _cleanup_(erase_and_freep) char *req = NULL;
        _cleanup_free_ char *key64 = NULL, *offer = NULL;
        char ports[MAX(1, 6 * 256) + 1] = "", resume[32 + RESUME_ID_HEX + RESUME_PROOF_HEX] = "";
        uint8_t key[16];
        size_t o = 0;
        int r;

        /* TCP mode: we can resume; with a lost session's streams held, we ask to (with a proof
         * bound to this connection). */
        if (d->resume_usec > 0 && d->mode == MODE_TCP) {
                char proof[RESUME_PROOF_HEX + 1];
                if (c->held && c->resume_known && resume_proof(c->conn, c->resume_key, c->resume_id, proof) >= 0)
                        snprintf(resume, sizeof(resume), "X-Inlets-Resume: " RESUME_VERSION " %s %s\r\n", c->resume_id, proof);
                else
                        snprintf(resume, sizeof(resume), "X-Inlets-Resume: " RESUME_VERSION "\r\n");
        }

        if (random_bytes(key, sizeof(key)) < 0 || !(key64 = base64mem(key, sizeof(key))))
                return -ENOMEM;
        snprintf(c->key, sizeof(c->key), "%s", key64);
        if (d->mode == MODE_HTTP) {
                offer = http_upstreams_offer(d);
                if (!offer)
                        return -ENOMEM;
        } else if (d->n_ports == 0)
                strcpy(ports, "none"); /* UDPPorts= only */
        else
                for (size_t i = 0; i < d->n_ports && o < sizeof(ports) - 8; i++)
                        o += (size_t) snprintf(ports + o, sizeof(ports) - o, "%s%u", i ? "," : "",
                                               d->ports[i].public_port);
        r = asprintf(&req,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n"
                     "X-Inlets-Mode: %s\r\n%s: %s\r\nX-Inlets-Client-Id: %s\r\n%s"
                     "User-Agent: inletsd/%s\r\n\r\n",
                     c->url.path, strchr(c->url.host, ':') ? "[" : "", c->url.host,
                     strchr(c->url.host, ':') ? "]" : "", c->url.port, key64, d->token, mode_to_string(d->mode),
                     offer ? "X-Inlets-Hosts" : "X-Inlets-Ports", offer ?: ports, c->client_id, resume,
                     PROJECT_VERSION);
        if (r < 0)
                return -ENOMEM;
        r = tls_conn_send(c->conn, req, strlen(req));
        if (r < 0)
                return r;
        r = tls_conn_flush(c->conn);
        return r == -EAGAIN ? 0 : r;
}

/* Printable first line of an error body, for the log. */
static void body_excerpt(const char *p, size_t n, char *buf, size_t size) {
        size_t o = 0;
        for (size_t i = 0; i < n && o + 1 < size && p[i] != '\n'; i++)
                buf[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
        buf[o] = 0;
}

static void handle_response(Client *c, size_t head_len) {
        const Definition *d = def(c);
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        _cleanup_free_ char *expect = NULL;
        const char *accept;
        char body[160];
        MuxConfig cfg = {
                .h2_client = false,
                .ws_client = true,
                .max_frame_size = d->max_frame_size,
                .max_streams = d->max_streams,
                .keepalive_usec = d->keepalive_usec,
        };
        int r;

        assert(c->state == STATE_UPGRADE);

        r = http_head_parse(c->head, head_len, false, HTTP_HEADERS_MAX_DEFAULT, &h);
        if (r < 0)
                return fail(c, "Malformed response from %s to the upgrade request.", d->url);
        body_excerpt(c->head + head_len, c->head_len - head_len, body, sizeof(body));
        if (h->status == 401)
                return fail(c, "The server at %s refused the token (401 Unauthorized)%s%s", d->url, *body ? ": " : "",
                            body);
        if (h->status != 101)
                return fail(c, "The server at %s refused the tunnel: HTTP %u%s%s", d->url, h->status, *body ? ": " : "",
                            body);
        expect = ws_accept_key(c->key);
        accept = http_head_get(h, "Sec-WebSocket-Accept");
        if (!expect || !accept || !streq(expect, accept) ||
            !http_header_has_token(http_head_get(h, "Upgrade"), "websocket"))
                return fail(c, "The server at %s answered the upgrade with a wrong Sec-WebSocket-Accept.", d->url);

        /* The server made the session resumable (we offered it): its id, our key for it. */
        ResumeAnswer ra = {};
        bool resumed = false;
        if (d->resume_usec > 0 && d->mode == MODE_TCP &&
            resume_answer_parse(http_head_get(h, "X-Inlets-Resume"), &ra) >= 0 &&
            resume_key(c->conn, d->token, ra.id, c->resume_key) >= 0) {
                memcpy(c->resume_id, ra.id, sizeof(c->resume_id));
                c->resume_known = true;
                c->resume_usec = MIN(d->resume_usec, (uint64_t) ra.seconds * USEC_PER_SEC);
                cfg.resumable = true;
                resumed = ra.resumed && c->held;
                cfg.predecessor = resumed ? c->held : NULL;
        } else {
                c->resume_known = false;
                explicit_bzero(c->resume_key, sizeof(c->resume_key));
        }
        if (!resumed)
                release_held(c, "the exit server started a new session");

        c->io = sd_event_source_disable_unref(c->io);
        r = mux_new(c->manager->event, TAKE_PTR(c->conn), &cfg, (const uint8_t *) c->head + head_len,
                    c->head_len - head_len, &client_mux_callbacks, c, &c->mux);
        c->fd = -1; /* owned by the mux now */
        if (r < 0)
                return fail(c, "Failed to start the tunnel session: %s", strerror(-r));
        if (resumed) {
                c->resume.resumed_sessions++;
                /* Its resume requests come first thing; what they do not claim by then closes. */
                (void) sd_event_source_set_time_relative(c->hold_timer, 5 * USEC_PER_SEC);
                log_info("The exit server resumes the session: held connections carry on.");
        }
        c->state = STATE_CONNECTED;
        c->connected_at = now_usec();
        c->sessions++;
        c->access_unknown = false;
        c->sent_head = c->sent_n = 0;
        client_forwards_session(c->forwards, c->mux);
        /* Before the lists: they may scope a UDP port. A resumed session has its predecessor's
         * UDP ports on the server: told the offer of now, even an empty one. */
        if (d->n_udp_ports > 0 || (resumed && d->mode == MODE_TCP))
                send_udp_ports(c, d);
        if (d->access.n_rules > 0)
                send_access_lists(c, d);
        c->ever_connected = true;
        c->last_error[0] = 0;
        c->timer = sd_event_source_disable_unref(c->timer);
        manager_set_state(c->manager, TUNNEL_CONNECTED);
        /* Credentials replaced by a reload: no session uses them any more. */
        if (c->retired_creds) {
                gnutls_certificate_free_credentials(c->retired_creds);
                c->retired_creds = NULL;
        }
        char via[300] = "", pn[280];
        if (d->proxy_url.host)
                snprintf(via, sizeof(via), " through proxy %s (%s)", proxy_name(c, pn), d->proxy_source);
        if (d->mode == MODE_HTTP) {
                _cleanup_free_ char *hosts = http_upstreams_offer(d);
                log_info("Connection established with %s%s as %s: serving hosts %s (%zu upstreams).", d->url, via,
                         c->client_id, hosts ?: "?", d->n_upstreams);
        } else {
                char list[256] = "";
                size_t o = 0;
                for (size_t i = 0; i < d->n_ports && o < sizeof(list) - 16; i++)
                        o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%u->%s%s%u", i ? " " : "",
                                               d->ports[i].public_port, d->ports[i].host ?: "",
                                               d->ports[i].host ? ":" : "", d->ports[i].upstream_port);
                log_info("Connection established with %s%s as %s: ports %s forwarded to %s.", d->url, via,
                         c->client_id, list, d->upstreams[0]);
        }
}

/* TLS (or, for ws://, nothing) starts on the socket. Returns true to go on. */
static bool start_tls(Client *c) {
        int r;

        r = tls_conn_new_client(c->fd, c->url.tls ? c->creds : NULL, c->url.host,
                                def(c)->has_fingerprint ? def(c)->server_fingerprint : NULL, &c->conn);
        /* The TlsConn owns the fd now, failure or not. */
        if (r < 0) {
                c->io = sd_event_source_disable_unref(c->io);
                c->fd = -1;
                return fail(c, "TLS setup failed: %s", strerror(-r)), false;
        }
        c->state = STATE_HANDSHAKE;
        return true;
}

/* The CONNECT request: one send() on a socket that just connected and holds nothing, like the
 * PROXY header of an upstream dial; anything short of the whole is a failed connection. */
static int send_connect(Client *c) {
        const ProxyURL *p = &def(c)->proxy_url;
        _cleanup_(erase_and_freep) char *req = NULL, *cred = NULL, *cred64 = NULL;
        bool v6 = strchr(c->url.host, ':');
        ssize_t n;
        int k;

        for (const char *h = c->url.host; *h; h++)
                if ((unsigned char) *h <= 0x20 || *h == 0x7f)
                        return -EINVAL;
        if (p->user) {
                if (asprintf(&cred, "%s:%s", p->user, p->password ?: "") < 0)
                        return -ENOMEM;
                cred64 = base64mem(cred, strlen(cred));
                if (!cred64)
                        return -ENOMEM;
        }
        k = asprintf(&req,
                     "CONNECT %s%s%s:%u HTTP/1.1\r\n"
                     "Host: %s%s%s:%u\r\n"
                     "User-Agent: inletsd/" PROJECT_VERSION "\r\n"
                     "%s%s%s"
                     "\r\n",
                     v6 ? "[" : "", c->url.host, v6 ? "]" : "", c->url.port, v6 ? "[" : "", c->url.host, v6 ? "]" : "",
                     c->url.port, cred64 ? "Proxy-Authorization: Basic " : "", cred64 ?: "", cred64 ? "\r\n" : "");
        if (k < 0)
                return -ENOMEM;
        n = send(c->fd, req, (size_t) k, MSG_NOSIGNAL);
        if (n < 0)
                return -errno;
        return n == k ? 0 : -EIO;
}

/* CONNECTING: TCP is up, or failed; then CONNECT through the proxy, or TLS at once. Returns
 * true to go on. */
static bool on_connected(Client *c, int fd) {
        int err = 0, r;
        socklen_t l = sizeof(err);
        char pn[280];

        assert(c->state == STATE_CONNECTING);

        (void) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) {
                char m[400];
                if (def(c)->proxy_url.host)
                        snprintf(m, sizeof(m), "Cannot connect to proxy %s: %s", proxy_name(c, pn), strerror(err));
                else
                        snprintf(m, sizeof(m), "Cannot connect to %s: %s", def(c)->url, strerror(err));
                connection_reset(c);
                if (server_addrs_left(c)) {
                        /* Try the next address before giving up. */
                        c->state = STATE_WAITING;
                        client_schedule(c);
                        return false;
                }
                return fail(c, "%s", m), false;
        }
        if (!def(c)->proxy_url.host)
                return start_tls(c);
        r = send_connect(c);
        if (r < 0)
                return fail(c, "Cannot send CONNECT to proxy %s: %s", proxy_name(c, pn), strerror(-r)), false;
        c->state = STATE_PROXY;
        (void) sd_event_source_set_io_events(c->io, EPOLLIN);
        return false;
}

/* The proxy's status line for a message: printable ASCII, at most 80 bytes. */
static void proxy_status_line(const char *head, size_t n, char buf[static 81]) {
        size_t o = 0;

        for (size_t i = 0; i < n && o < 80 && head[i] != '\r' && head[i] != '\n'; i++)
                buf[o++] = head[i] >= 0x20 && head[i] < 0x7f ? head[i] : '?';
        buf[o] = 0;
}

/* PROXY: the answer to CONNECT, read as far as its head: a 2xx and nothing after it, then TLS
 * through the tunnel it opened. Returns true to go on. */
static bool on_proxy(Client *c) {
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        char pn[280], line[81];
        ssize_t n, end;
        int r;

        assert(c->state == STATE_PROXY);

        n = recv(c->fd, c->head + c->head_len, sizeof(c->head) - c->head_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return false;
        if (n <= 0)
                return fail(c, "Proxy %s closed the connection before answering CONNECT%s%s", proxy_name(c, pn),
                            n < 0 ? ": " : "", n < 0 ? strerror(errno) : ""), false;
        c->head_len += (size_t) n;
        end = http_head_end(c->head, c->head_len, sizeof(c->head));
        if (end < 0 || (end == 0 && c->head_len == sizeof(c->head)))
                return fail(c, "Proxy %s answered CONNECT with a head larger than %zu bytes", proxy_name(c, pn),
                            sizeof(c->head)), false;
        if (end == 0)
                return false;
        proxy_status_line(c->head, c->head_len, line);
        r = http_head_parse(c->head, (size_t) end, false, HTTP_HEADERS_MAX_DEFAULT, &h);
        if (r < 0)
                return fail(c, "Proxy %s answered CONNECT with a malformed head (%s)", proxy_name(c, pn), line), false;
        if (h->status == 407)
                return fail(c, "Proxy %s %s (407)", proxy_name(c, pn),
                            def(c)->proxy_url.user ? "refused the credentials of its user" :
                                                     "wants credentials: give Proxy=http://USER@HOST:PORT and a password"),
                       false;
        if (h->status < 200 || h->status > 299)
                return fail(c, "Proxy %s refused CONNECT to %s:%u: %s", proxy_name(c, pn), c->url.host, c->url.port,
                            line), false;
        if ((size_t) end != c->head_len)
                return fail(c, "Proxy %s sent bytes after its answer to CONNECT", proxy_name(c, pn)), false;
        log_debug("Proxy %s answered CONNECT with %u.", proxy_name(c, pn), h->status);
        explicit_bzero(c->head, sizeof(c->head));
        c->head_len = 0;
        return start_tls(c);
}

/* HANDSHAKE: a step of TLS; once it is done, the upgrade request goes out. Returns true to go
 * on. */
static bool on_handshake(Client *c) {
        int r;

        assert(c->state == STATE_HANDSHAKE);

        r = tls_conn_handshake(c->conn);
        if (r < 0)
                return fail(c, "TLS with %s failed: %s", def(c)->url, tls_conn_error(c->conn)), false;
        if (r == 0) {
                (void) sd_event_source_set_io_events(
                        c->io, EPOLLIN | (tls_conn_handshake_wants_write(c->conn) ? EPOLLOUT : 0));
                return false;
        }
        r = send_upgrade(c);
        if (r < 0)
                return fail(c, "Failed to send the upgrade request: %s", strerror(-r)), false;
        c->state = STATE_UPGRADE;
        (void) sd_event_source_set_io_events(c->io, EPOLLIN | (tls_conn_pending(c->conn) ? EPOLLOUT : 0));
        return true;
}

/* UPGRADE: collects the response head; handle_response() takes it from there. */
static void on_upgrade(Client *c, uint32_t revents) {
        int r;

        assert(c->state == STATE_UPGRADE);

        if (revents & EPOLLOUT) {
                r = tls_conn_flush(c->conn);
                if (r < 0 && r != -EAGAIN)
                        return fail(c, "Connection to %s failed: %s", def(c)->url, tls_conn_error(c->conn));
                (void) sd_event_source_set_io_events(c->io, EPOLLIN | (r == -EAGAIN ? EPOLLOUT : 0));
        }
        for (;;) {
                uint8_t *data;
                size_t n;
                ssize_t end;

                r = tls_conn_recv(c->conn, &data, &n);
                if (r == -EAGAIN)
                        return;
                if (r <= 0)
                        return fail(c, "Connection to %s closed during the upgrade%s%s", def(c)->url,
                                    r < 0 ? ": " : "", r < 0 ? tls_conn_error(c->conn) : "");
                if (n > sizeof(c->head) - c->head_len)
                        n = sizeof(c->head) - c->head_len;
                memcpy(c->head + c->head_len, data, n);
                c->head_len += n;
                end = http_head_end(c->head, c->head_len, sizeof(c->head));
                if (end < 0)
                        return fail(c, "Response from %s too large.", def(c)->url);
                if (end > 0)
                        return handle_response(c, (size_t) end);
        }
}

/* The control connection until the session starts: each phase goes on into the next when it
 * completes at once. */
static int io_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;

        switch (c->state) {
        case STATE_CONNECTING:
                if (!on_connected(c, fd))
                        return 0;
                _fallthrough_;
        case STATE_PROXY:
                if (c->state == STATE_PROXY && !on_proxy(c))
                        return 0;
                _fallthrough_;
        case STATE_HANDSHAKE:
                if (!on_handshake(c))
                        return 0;
                _fallthrough_;
        case STATE_UPGRADE:
                on_upgrade(c, revents);
                return 0;
        default:
                return 0;
        }
}

static void connect_next(Client *c);

static void arm_handshake_timer(Client *c) {
        /* Bounds resolving the exit server's name; then, per address, TCP, TLS and the upgrade
 * together. */
        c->timer = sd_event_source_disable_unref(c->timer);
        if (sd_event_add_time_relative(c->manager->event, &c->timer, CLOCK_MONOTONIC,
                                       def(c)->handshake_timeout_usec, 0, timer_handler, c) >= 0)
                (void) sd_event_source_set_description(c->timer, "client-handshake-timeout");
}

/* What the tunnel dials: the HTTP proxy if there is one (it resolves the exit server's name
 * itself), else the exit server. */
static const char *dial_host(Client *c) {
        return def(c)->proxy_url.host ?: c->url.host;
}

static uint16_t dial_port(Client *c) {
        return def(c)->proxy_url.host ? def(c)->proxy_url.port : c->url.port;
}

static void fail_resolve(Client *c, int error) {
        fail(c, "Cannot resolve %s%s: %s", def(c)->proxy_url.host ? "proxy " : "", dial_host(c),
             resolve_strerror(error));
}

static void on_server_resolved(int error, SocketAddress *addrs, size_t n, void *userdata) {
        Client *c = userdata;

        c->server_query = NULL;
        if (error < 0 || n == 0) {
                free(addrs);
                return fail_resolve(c, error);
        }
        c->server_addrs = addrs;
        c->n_server_addrs = n;
        c->server_next = 0;
        connect_next(c);
}

static void connect_next(Client *c) {
        SocketAddress a;
        int r;

        if (!server_addrs_left(c)) {
                SocketAddress *l = NULL;
                size_t n = 0;

                c->server_addrs = mfree(c->server_addrs);
                c->n_server_addrs = c->server_next = 0;
                /* A name is resolved on the resolver's thread: the loop goes on meanwhile. */
                r = resolver_query(c->server_resolver, dial_host(c), on_server_resolved, c, &l, &n, &c->server_query);
                if (r < 0)
                        return fail_resolve(c, r);
                if (r == 0) {
                        c->state = STATE_RESOLVING;
                        manager_set_state(c->manager, c->ever_connected ? TUNNEL_RECONNECTING : TUNNEL_CONNECTING);
                        arm_handshake_timer(c);
                        return;
                }
                c->server_addrs = l;
                c->n_server_addrs = n;
        }
        a = c->server_addrs[c->server_next++];
        socket_address_set_port(&a, dial_port(c));

        c->fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return fail(c, "socket: %s", strerror(errno));
        socket_set_nodelay(c->fd);
        if (connect(c->fd, &a.sa, a.len) < 0 && errno != EINPROGRESS)
                return fail(c, "Cannot connect to %s%s: %s", def(c)->proxy_url.host ? "proxy " : "",
                            def(c)->proxy_url.host ?: def(c)->url, strerror(errno));
        r = sd_event_add_io(c->manager->event, &c->io, c->fd, EPOLLOUT, io_handler, c);
        if (r < 0)
                return fail(c, "sd_event_add_io: %s", strerror(-r));
        (void) sd_event_source_set_description(c->io, "client-tunnel-connect");
        c->state = STATE_CONNECTING;
        manager_set_state(c->manager, c->ever_connected ? TUNNEL_RECONNECTING : TUNNEL_CONNECTING);
        arm_handshake_timer(c);
}

static void dials_resume(Client *c, const char *host) {
        for (Dial *d = c->dials, *next; d; d = next) {
                next = d->next;
                if (!d->parked || !streq(d->host, host))
                        continue;
                d->parked = false;
                if (dial_next(d) < 0)
                        dial_done(d, -1); /* frees d; next is still ours */
        }
}

static void upstream_host_answer(UpstreamHost *h, int error, SocketAddress *addrs, size_t n) {
        h->asked = now_usec(); /* the retry and refresh intervals count from the answer */
        if (error < 0) {
                /* The addresses of before (if any) stay: better than none. */
                free(addrs);
                log_full_errno(h->failing ? LOG_DEBUG : LOG_WARNING, 0, "Cannot resolve upstream %s: %s%s", h->name,
                         resolve_strerror(error), h->n_addrs > 0 ? " (its previous addresses serve)" : "");
                h->failing = true;
                return;
        }
        if (h->failing)
                log_info("Upstream %s resolves again.", h->name);
        h->failing = false;
        free(h->addrs);
        h->addrs = addrs;
        h->n_addrs = n;
}

static void on_upstream_resolved(int error, SocketAddress *addrs, size_t n, void *userdata) {
        UpstreamHost *h = userdata;

        h->query = NULL;
        upstream_host_answer(h, error, addrs, n);
        dials_resume(h->client, h->name);
}

/* Asks for h's addresses: a numeric one is there at once, a name's answer comes later. */
static void upstream_host_resolve(UpstreamHost *h) {
        SocketAddress *l = NULL;
        size_t k = 0;
        int r;

        h->asked = now_usec();
        r = resolver_query(h->client->manager->resolver, h->name, on_upstream_resolved, h, &l, &k, &h->query);
        if (r != 0)
                upstream_host_answer(h, r < 0 ? r : 0, l, k);
}

static void upstream_hosts_free(UpstreamHost *hosts, size_t n) {
        for (size_t i = 0; i < n; i++) {
                resolve_query_cancel(hosts[i].query);
                free(hosts[i].name);
                free(hosts[i].addrs);
        }
        free(hosts);
}

/* A host of t (n so far) for name, once. */
static int upstream_hosts_add(UpstreamHost *t, size_t *n, const char *name) {
        for (size_t i = 0; i < *n; i++)
                if (streq(t[i].name, name))
                        return 0;
        t[*n].name = strdup(name);
        if (!t[*n].name)
                return -ENOMEM;
        (*n)++;
        return 0;
}

/* TCP mode: a new table of the hosts to dial, each being resolved; a host the old table knew
 * keeps its addresses until its new answer. Parked dials go on when their host's answer is in. */
static int refresh_upstream(Client *c) {
        const Definition *d = def(c);
        UpstreamHost *t;
        size_t n = 0;
        int r;

        if (d->mode != MODE_TCP)
                return c->http ? http_upstreams_refresh(c->http) : 0;
        t = new0(UpstreamHost, d->n_ports + d->n_udp_ports + 1);
        if (!t)
                return log_oom();
        r = upstream_hosts_add(t, &n, d->n_upstreams > 0 ? d->upstreams[0] : "127.0.0.1");
        for (size_t i = 0; r >= 0 && i < d->n_ports; i++)
                r = upstream_hosts_add(t, &n, port_map_host(d, &d->ports[i]));
        for (size_t i = 0; r >= 0 && i < d->n_udp_ports; i++)
                r = upstream_hosts_add(t, &n, port_map_host(d, &d->udp_ports[i]));
        if (r < 0) {
                upstream_hosts_free(t, n);
                return log_oom();
        }
        for (size_t i = 0; i < n; i++) {
                UpstreamHost *h = &t[i], *old = upstream_host(c, h->name);

                h->client = c;
                if (old && old->n_addrs > 0 && (h->addrs = new0(SocketAddress, old->n_addrs))) {
                        memcpy(h->addrs, old->addrs, sizeof(SocketAddress) * old->n_addrs);
                        h->n_addrs = old->n_addrs;
                }
                h->failing = old && old->failing;
                upstream_host_resolve(h);
        }
        upstream_hosts_free(c->hosts, c->n_hosts);
        c->hosts = t;
        c->n_hosts = n;
        /* Dials parked on the old table's queries: on to the new one. */
        for (Dial *x = c->dials, *next; x; x = next) {
                next = x->next;
                if (!x->parked)
                        continue;
                x->parked = false;
                if (dial_next(x) < 0)
                        dial_done(x, -1);
        }
        return 0;
}

static int timer_handler(sd_event_source *src, uint64_t usec, void *userdata) {
        Client *c = userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->state == STATE_WAITING) {
                if (!server_addrs_left(c))
                        (void) refresh_upstream(c);
                connect_next(c);
        } else if (c->state == STATE_RESOLVING)
                fail(c, "Timed out resolving %s.", dial_host(c));
        else if (c->state == STATE_PROXY)
                fail(c, "Timed out waiting for proxy %s to answer CONNECT to %s:%u.", dial_host(c), c->url.host,
                     c->url.port);
        else if (c->state != STATE_CONNECTED && c->state != STATE_STOPPED)
                fail(c, "Timed out connecting to %s.", def(c)->url);
        return 0;
}

static void client_schedule(Client *c) {
        uint64_t delay = 0;

        c->state = STATE_WAITING;
        c->timer = sd_event_source_disable_unref(c->timer);
        manager_set_state(c->manager, c->ever_connected ? TUNNEL_RECONNECTING : TUNNEL_CONNECTING);
        if (c->reconnect_now) {
                c->reconnect_now = false;
                c->attempt = 0;
        } else if (!server_addrs_left(c)) {
                /* Exponential, capped, with jitter in [delay/2, delay). */
                uint64_t max = def(c)->reconnect_max_delay_usec, base = BACKOFF_MIN_USEC;
                uint32_t rnd = 0;
                for (unsigned i = 0; i < c->attempt && base < max; i++)
                        base *= 2;
                base = MIN(base, max);
                (void) random_bytes(&rnd, sizeof(rnd));
                delay = base / 2 + (base / 2) * rnd / UINT32_MAX;
                c->attempt++;
                log_info("Reconnecting in %.1f s.", (double) delay / USEC_PER_SEC);
        }
        if (sd_event_add_time_relative(c->manager->event, &c->timer, CLOCK_MONOTONIC, delay, 0, timer_handler, c) < 0)
                log_oom();
        else
                (void) sd_event_source_set_description(c->timer, "client-reconnect");
}

int client_new(Manager *m, Client **ret) {
        Client *c;

        assert(m);
        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->fd = -1;
        if (resolver_new(m->event, &c->server_resolver) < 0) {
                free(c);
                return -ENOMEM;
        }
        if (client_forwards_new(m->event, send_forward, c, &c->forwards) < 0) {
                resolver_free(c->server_resolver);
                free(c);
                return -ENOMEM;
        }
        if (client_udp_new(m, &c->udp) < 0) {
                client_forwards_free(c->forwards);
                resolver_free(c->server_resolver);
                free(c);
                return -ENOMEM;
        }
        c->state = STATE_STOPPED;
        c->proxy_log = (RateLimit) { .interval_usec = 60 * USEC_PER_SEC, .burst = 1 };
        c->refused_log = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        *ret = c;
        return 0;
}

/* A socket systemd bound for us (inletsd-generator's inletsd-forward-PORT@NAME.socket):
 * "forward-PORT" for LocalForward=. */
static bool take_systemd_socket(const char *name, int fd, void *userdata) {
        Client *c = userdata;
        uint16_t port;

        if (strncmp(name, "forward-", 8) != 0 || parse_port(name + 8, &port) < 0)
                return false;
        if (client_forwards_adopt(c->forwards, port, fd) < 0)
                safe_close(fd);
        return true;
}

int client_start(Client *c) {
        _cleanup_free_ char *err = NULL;
        const Definition *d;
        int r;

        assert(c);
        assert(c->state == STATE_STOPPED);
        assert(!c->mux);
        d = def(c);

        r = tunnel_url_parse(d->url, &c->url);
        if (r < 0)
                return log_error_errno(r, "%s: invalid URL=", d->path);
        if (c->url.tls && !d->has_fingerprint) {
                r = tls_client_credentials(d->ca_file, &c->creds, &err);
                if (r < 0)
                        return log_error_errno(r, "%s", err);
        } else if (c->url.tls) {
                r = tls_client_credentials(NULL, &c->creds, &err);
                if (r < 0)
                        return log_error_errno(r, "%s", err);
        } else
                log_warning("URL= is ws://: the tunnel is not encrypted unless a proxy adds TLS.");

        r = compute_client_id(c);
        if (r < 0)
                return log_oom();
        err = mfree(err);
        (void) manager_take_systemd_sockets(c->manager, take_systemd_socket, c);
        r = client_forwards_apply(c->forwards, d, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: strerror(-r));

        if (d->mode == MODE_HTTP) {
                r = http_upstreams_new(c->manager, &c->http);
                if (r < 0)
                        return r;
        } else
                (void) refresh_upstream(c);
        c->state = STATE_WAITING;
        manager_set_state(c->manager, TUNNEL_CONNECTING);
        connect_next(c);
        return 0;
}

static int compute_client_id(Client *c) {
        const Definition *d = def(c);

        free(c->client_id);
        c->client_id = NULL;
        if (d->client_id)
                c->client_id = strdup(d->client_id);
        else {
                char host[65] = "";
                (void) gethostname(host, sizeof(host) - 1);
                /* Stable across restarts, so the server replaces our old session at once. */
                if (asprintf(&c->client_id, "%s-%s", *host ? host : "client", d->name ?: "tunnel") >= 0 &&
                    !string_is_safe_id(c->client_id, 64)) {
                        for (char *p = c->client_id; *p; p++)
                                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-", *p))
                                        *p = '_';
                        if (strlen(c->client_id) > 64)
                                c->client_id[64] = 0;
                }
        }
        return c->client_id ? 0 : -ENOMEM;
}

void client_drain(Client *c) {
        assert(c);

        /* Connections still waiting for DNS are not kept for it: refused now. */
        for (Dial *d = c->dials, *next; d; d = next) {
                next = d->next;
                if (d->parked) {
                        d->error = -ESHUTDOWN;
                        dial_done(d, -1);
                }
        }
        if (c->http)
                http_upstreams_drain(c->http);
        client_udp_flows_end(c->udp); /* nothing to wait for: a flow has no end of its own */
        release_held(c, "stopping"); /* they cannot resume in a process that is going away */
        if (c->mux)
                mux_goaway(c->mux);
        else
                connection_reset(c);
        c->state = STATE_STOPPED;
        c->timer = sd_event_source_disable_unref(c->timer);
        manager_set_state(c->manager, TUNNEL_STOPPING);
}

void client_stop(Client *c) {
        assert(c);

        c->state = STATE_STOPPED;
        manager_set_state(c->manager, TUNNEL_STOPPING);
        c->timer = sd_event_source_disable_unref(c->timer);
        release_held(c, "stopping");
        client_udp_flows_end(c->udp);
        if (c->mux)
                mux_shutdown(c->mux, WS_CLOSE_GOING_AWAY);
}

Client *client_free(Client *c) {
        if (!c)
                return NULL;
        c->state = STATE_STOPPED;
        while (c->dials)
                dial_free(c->dials);
        client_forwards_free(c->forwards); /* before the mux: the streams it waits for go with it */
        c->udp = client_udp_free(c->udp);
        if (c->mux)
                mux_set_predecessor(c->mux, NULL);
        mux_free(c->held);
        sd_event_source_disable_unref(c->hold_timer);
        explicit_bzero(c->resume_key, sizeof(c->resume_key));
        mux_free(c->mux);
        http_upstreams_free(c->http); /* after the mux: its streams let go of their exchanges */
        connection_reset(c);
        sd_event_source_disable_unref(c->timer);
        free(c->server_addrs);
        upstream_hosts_free(c->hosts, c->n_hosts);
        resolver_free(c->server_resolver); /* after connection_reset() cancelled its query */
        tunnel_url_done(&c->url);
        if (c->creds)
                gnutls_certificate_free_credentials(c->creds);
        if (c->new_creds)
                gnutls_certificate_free_credentials(c->new_creds);
        if (c->retired_creds)
                gnutls_certificate_free_credentials(c->retired_creds);
        free(c->client_id);
        free(c);
        return NULL;
}

/* ---- what the bus shows ---- */


void client_get_session(Client *c, uint64_t *ret_sessions, uint64_t *ret_age_usec) {
        assert(c);
        *ret_sessions = c->sessions;
        *ret_age_usec = c->state == STATE_CONNECTED && c->connected_at ? now_usec() - c->connected_at : 0;
}

uint64_t client_refused(Client *c) {
        assert(c);
        return c->refused + http_upstreams_refused(c->http);
}

void client_get_counters(Client *c, TunnelCounters *ret) {
        assert(c);
        assert(ret);

        *ret = c->closed;
        if (c->mux) {
                MuxStats st;
                mux_get_stats(c->mux, &st);
                ret->bytes_in += st.bytes_in;
                ret->bytes_out += st.bytes_out;
                ret->total_streams += st.total_streams;
                ret->buffered += st.held;
                ret->active_streams = st.active_streams;
        }
}

void client_get_resume(Client *c, ResumeCounters *ret) {
        MuxStats st;

        assert(c);
        assert(ret);
        *ret = c->resume;
        if (c->mux) {
                mux_get_stats(c->mux, &st);
                ret->resent_bytes += st.resent_bytes;
                ret->resumed_streams += st.resumed_streams;
        }
        if (c->held) {
                mux_get_stats(c->held, &st);
                ret->held_sessions = 1;
                ret->held_streams = st.active_streams;
                ret->resent_bytes += st.resent_bytes;
                ret->resumed_streams += st.resumed_streams;
        }
}

void client_foreach_stream(Client *c, void (*f)(const StreamInfo *i, void *userdata), void *userdata) {
        assert(c);
        assert(f);

        if (c->mux)
                manager_foreach_mux_stream(c->mux, NULL, f, userdata);
}

/* ---- reload ---- */

static bool ports_hosts_changed(const Definition *a, const Definition *b) {
        if (a->n_ports != b->n_ports)
                return true;
        for (size_t i = 0; i < a->n_ports; i++)
                if (!streq(port_map_host(a, &a->ports[i]), port_map_host(b, &b->ports[i])))
                        return true;
        return false;
}

static bool udp_ports_changed(const Definition *a, const Definition *b) {
        if (a->n_udp_ports != b->n_udp_ports)
                return true;
        for (size_t i = 0; i < a->n_udp_ports; i++)
                if (a->udp_ports[i].public_port != b->udp_ports[i].public_port ||
                    a->udp_ports[i].upstream_port != b->udp_ports[i].upstream_port ||
                    !streq(port_map_host(a, &a->udp_ports[i]), port_map_host(b, &b->udp_ports[i])))
                        return true;
        return false;
}

static bool proxy_changed(const ProxyURL *a, const ProxyURL *b) {
        return !streq_ptr(a->host, b->host) || a->port != b->port || !streq_ptr(a->user, b->user) ||
               !streq_ptr(a->password, b->password);
}

static bool offer_changed(const Definition *a, const Definition *b) {
        if (a->mode == MODE_HTTP) {
                _cleanup_free_ char *x = http_upstreams_offer(a), *y = http_upstreams_offer(b);
                return !streq_ptr(x, y);
        }
        if (a->n_ports != b->n_ports)
                return true;
        for (size_t i = 0; i < a->n_ports; i++)
                if (a->ports[i].public_port != b->ports[i].public_port)
                        return true;
        return false;
}

int client_reload(Client *c, const Definition *n, char **ret_error) {
        const Definition *o;
        TunnelURL u;
        int r;

        assert(c);
        assert(n);
        o = def(c);

        r = tunnel_url_parse(n->url, &u);
        if (r < 0)
                return r;
        if (u.tls && (!streq_ptr(o->ca_file, n->ca_file) || o->has_fingerprint != n->has_fingerprint || !c->creds)) {
                r = tls_client_credentials(n->has_fingerprint ? NULL : n->ca_file, &c->new_creds, ret_error);
                if (r < 0) {
                        tunnel_url_done(&u);
                        return r;
                }
                c->new_creds_set = true;
        }
        tunnel_url_done(&u);
        /* The new listening sockets now: a port that cannot be bound fails the reload. */
        return client_forwards_apply(c->forwards, n, ret_error);
}

void client_reloaded(Client *c, const Definition *o) {
        const Definition *n;
        bool reconnect, send_lists = false;

        assert(c);
        assert(o);
        n = def(c);

        reconnect = !streq(o->url, n->url) || !streq_ptr(o->ca_file, n->ca_file) ||
                    o->has_fingerprint != n->has_fingerprint ||
                    memcmp(o->server_fingerprint, n->server_fingerprint, 32) != 0 || !streq(o->token, n->token) ||
                    !streq_ptr(o->client_id, n->client_id) || o->keepalive_usec != n->keepalive_usec ||
                    o->max_frame_size != n->max_frame_size || o->max_streams != n->max_streams ||
                    proxy_changed(&o->proxy_url, &n->proxy_url);

        tunnel_url_done(&c->url);
        (void) tunnel_url_parse(n->url, &c->url);
        if (c->new_creds_set) {
                if (c->retired_creds)
                        gnutls_certificate_free_credentials(c->retired_creds);
                c->retired_creds = c->creds;
                c->creds = TAKE_PTR(c->new_creds);
                c->new_creds_set = false;
        }
        if (compute_client_id(c) < 0)
                log_oom();
        /* A new Upstream= or port mapping applies to new streams. */
        if (n->mode == MODE_HTTP || !streq(o->upstreams[0], n->upstreams[0]) || ports_hosts_changed(o, n) ||
            udp_ports_changed(o, n))
                (void) refresh_upstream(c);
        if (n->mode == MODE_TCP && (udp_ports_changed(o, n) || !streq(o->upstreams[0], n->upstreams[0]))) {
                /* UDP flows start over with the new mapping: the peers' next datagrams make new ones. */
                client_udp_flows_end(c->udp);
                if (!reconnect && c->state == STATE_CONNECTED && udp_ports_changed(o, n))
                        send_udp_ports(c, n);
        }
        if (n->mode == MODE_HTTP && offer_changed(o, n))
                reconnect = true; /* new host names: the server learns them from a new session */
        /* New lists for the running session (after a new offer, which they may scope). */
        if (!reconnect && c->state == STATE_CONNECTED && !access_list_equal(&o->access, &n->access))
                send_lists = true;
        if (!access_list_equal(&o->access, &n->access))
                client_udp_flows_end(c->udp); /* a flow may last: its visitor's next datagram is judged anew */
        if (!reconnect && offer_changed(o, n) && c->state == STATE_CONNECTED) {
                /* Tell the server in the running session: untouched ports keep their streams. */
                char msg[MAX(1, 6 * 256) + 8];
                size_t k = (size_t) snprintf(msg, sizeof(msg), n->n_ports > 0 ? "ports " : "ports none");
                for (size_t i = 0; i < n->n_ports && k < sizeof(msg) - 8; i++)
                        k += (size_t) snprintf(msg + k, sizeof(msg) - k, "%s%u", i ? "," : "", n->ports[i].public_port);
                if (send_command(c, SENT_PORTS, msg) >= 0) {
                        if (send_lists)
                                send_access_lists(c, n);
                        return;
                }
                reconnect = true;
        }
        if ((!reconnect && !offer_changed(o, n)) || c->state == STATE_STOPPED) {
                if (send_lists)
                        send_access_lists(c, n);
                return;
        }

        log_info("Reconnecting to apply the new configuration.");
        c->server_addrs = mfree(c->server_addrs);
        c->n_server_addrs = c->server_next = 0;
        c->reconnect_now = true;
        if (c->mux)
                mux_abort(c->mux, "configuration reloaded");
        else {
                connection_reset(c);
                client_schedule(c);
        }
}
