// SPDX-License-Identifier: LGPL-2.1-or-later
/* The exit server's sessions: one per connected tunnel client, with its Mux and its offer
 * (ports or host names), the routing of public connections to them, and the control messages
 * by which a client changes its offer without reconnecting. */

#include <stdio.h>

#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "server-internal.h"
#include "string-util.h"
#include "time-util.h"
#include "ws.h"

const char *const session_end_names[_SESSION_END_MAX] = {
        [SESSION_END_CLOSED] = "closed",
        [SESSION_END_ERROR] = "error",
        [SESSION_END_TIMEOUT] = "timeout",
        [SESSION_END_REPLACED] = "replaced",
        [SESSION_END_DISCONNECTED] = "disconnected",
        [SESSION_END_RELOAD] = "reload",
        [SESSION_END_STOPPING] = "stopping",
        [SESSION_END_RESUMED] = "resumed",
};

Session *session_free(Session *x) {
        Server *s;

        if (!x)
                return NULL;
        s = x->server;
        LIST_REMOVE(s->sessions, x);
        s->n_sessions--;
        if (x->mux) {
                /* Whichever way it ends, its counts stay in the totals (they never go back). */
                MuxStats st;
                mux_get_stats(x->mux, &st);
                s->closed.bytes_in += st.bytes_in;
                s->closed.bytes_out += st.bytes_out;
                s->closed.total_streams += st.total_streams;
                s->resume.resent_bytes += st.resent_bytes;
                if (x->held && x->end != SESSION_END_RESUMED)
                        s->resume.expired_streams += st.active_streams;
                manager_session_ended(s->manager, x->mux);
                if (x->end != _SESSION_END_UNSET)
                        s->disconnects[x->end]++;
        }
        session_forwards_free(x);
        session_udp_release(x);
        /* Streams go first, then the ports, so no listener hands out a dead session. */
        mux_free(x->mux);
        for (size_t i = 0; i < x->n_ports; i++) {
                Listener *l = listener_find(s, x->ports[i]);
                if (l && x->held && l->held_refs > 0)
                        l->held_refs--;
                listener_unref(s, x->ports[i]);
                listener_update(s, x->ports[i]);
        }
        free(x->ports);
        x->n_ports = 0;
        strv_free(x->hosts);
        access_list_done(&x->access);
        access_list_done(&x->access_pending);
        sd_event_source_disable_unref(x->hold_timer);
        explicit_bzero(x->resume_key, sizeof(x->resume_key));
        explicit_bzero(x->prev_resume_key, sizeof(x->prev_resume_key));
        free(x->id);
        free(x);
        return NULL;
}

bool session_allows(Session *x, const char *scope, const SocketAddress *peer) {
        Server *s;

        assert(x);
        if (access_list_allows(&x->access, scope, peer))
                return true;
        s = x->server;
        s->refused.client_allow_list++;
        if (ratelimit_below(&s->refused_log)) {
                char buf[SOCKADDR_STR_MAX];
                socket_address_format(peer, buf);
                log_conn(LOG_INFO, x->id, buf, 0, "%s%s: refused %s (AllowFrom=/DenyFrom= of client %s).",
                         strspn(scope, "0123456789") == strlen(scope) ? "Port " : "HTTP ", scope, buf, x->id);
        }
        return false;
}

static int hold_expired(sd_event_source *src, uint64_t usec, void *userdata) {
        Session *x = userdata;
        MuxStats st;

        mux_get_stats(x->mux, &st);
        log_conn(LOG_INFO, x->id, x->remote, 0,
                 "Client %s did not come back within ResumeSec=: closing its %u held connections.", x->id,
                 st.active_streams);
        manager_client_event(x->server->manager, false, x->id, "did not come back in time");
        session_free(x);
        return 0;
}

int session_hold_start(Session *x, SessionEnd end) {
        const Definition *d = server_def(x->server);
        int r;

        r = sd_event_add_time_relative(x->server->manager->event, &x->hold_timer, CLOCK_MONOTONIC, d->resume_usec,
                                       0, hold_expired, x);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(x->hold_timer, "session-hold");
        x->held = true;
        x->end = end;
        /* Its forward dials would answer into a Mux that is gone (the outside review: an
         * abort); the client asks again for what it still wants. */
        session_forwards_free(x);
        /* UDP flows do not wait: their peers' next datagrams find a live client, or wait in the
         * socket while only held sessions offer the port. */
        session_udp_flows_end(x);
        session_udp_update(x);
        for (size_t i = 0; i < x->n_ports; i++) {
                Listener *l = listener_find(x->server, x->ports[i]);
                if (l)
                        l->held_refs++;
                listener_update(x->server, x->ports[i]);
        }
        return 0;
}

/* A lost connection of a resumable session: its streams wait for the client's next one. */
static bool session_hold(Session *x, int error, const char *reason) {
        const Definition *d = server_def(x->server);
        unsigned n, ended;
        int r;

        if (!x->resumable || error >= 0 || x->end != _SESSION_END_UNSET || d->resume_usec == 0)
                return false;
        n = mux_resumable_streams(x->mux, &ended);
        if (n == 0 && ended == 0)
                return false;
        r = session_hold_start(x, error == -ETIMEDOUT ? SESSION_END_TIMEOUT : SESSION_END_ERROR);
        if (r < 0)
                return false;
        log_conn(LOG_INFO, x->id, x->remote, 0,
                 "Client %s (%s) lost: %s; holding %u connections for %" PRIu64 " s for it to resume.", x->id,
                 x->remote, reason, n, d->resume_usec / USEC_PER_SEC);
        manager_emit_changed(x->server->manager, "Clients");
        return true;
}

void session_end_now(Session *x, SessionEnd end, const char *reason) {
        assert(x);
        x->end = end;
        if (x->held)
                session_free(x);
        else if (reason)
                mux_abort(x->mux, reason);
        else
                mux_shutdown(x->mux, WS_CLOSE_GOING_AWAY);
}

void session_resume(Session *x, Session *held) {
        unsigned n;

        assert(x);
        assert(held);
        if (!held->held) { /* the client noticed the loss before we did */
                mux_abort(held->mux, "the client resumed the session on a new connection");
                held->held = true;
        }
        n = mux_adopt(x->mux, held->mux, x);
        x->server->resume.resumed_sessions++;
        x->server->resume.resumed_streams += n;
        log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s resumed its session from %s: %u connections carry on.",
                 x->id, x->remote, n);
        held->end = SESSION_END_RESUMED;
        session_udp_take(x, held); /* its UDP ports stay bound: the client offers them again */
        session_free(held);
}

static void session_closed(Mux *m, int error, const char *reason, void *userdata) {
        Session *x = userdata;
        MuxStats st;

        if (session_hold(x, error, reason))
                return;
        mux_get_stats(m, &st);
        if (x->end == _SESSION_END_UNSET)
                x->end = error == 0 ? SESSION_END_CLOSED : error == -ETIMEDOUT ? SESSION_END_TIMEOUT : SESSION_END_ERROR;
        manager_client_event(x->server->manager, false, x->id, reason);
        if (error < 0)
                log_conn(LOG_INFO, x->id, x->remote, 0,
                         "Client %s (%s) disconnected: %s; %" PRIu64 " streams, %" PRIu64 " bytes in, %" PRIu64
                         " bytes out.", x->id, x->remote, reason, st.total_streams, st.bytes_in, st.bytes_out);
        else
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s (%s) left: %s.", x->id, x->remote, reason);
        session_free(x);
}

static void session_control(Mux *m, const char *message, void *userdata);

static void session_stream_closed(Mux *m, MuxStream *s, void *userdata) {
        Session *x = userdata;

        manager_stream_ended(x->server->manager, s);
}

static const MuxCallbacks session_callbacks = {
        .stream_closed = session_stream_closed,
        .closed = session_closed,
        .control = session_control,
};

Session *session_find(Server *s, const char *id) {
        assert(s);
        assert(id);
        for (Session *x = s->sessions; x; x = x->next)
                if (streq(x->id, id))
                        return x;
        return NULL;
}

int session_new(Server *s, const char *id, const char *remote, Offer *offer, Session **ret) {
        Session *x;

        assert(s);
        assert(id);
        assert(remote);
        assert(offer);
        assert(ret);
        x = calloc(1, sizeof(*x));
        if (!x || !(x->id = strdup(id))) {
                free(x);
                return -ENOMEM;
        }
        x->server = s;
        x->end = _SESSION_END_UNSET;
        snprintf(x->remote, sizeof(x->remote), "%s", remote);
        x->since = realtime_usec();
        x->ports = TAKE_PTR(offer->ports);
        x->n_ports = offer->n_ports;
        x->hosts = TAKE_PTR(offer->hosts);
        x->n_hosts = offer->n_hosts;
        LIST_PREPEND(s->sessions, x);
        s->n_sessions++;
        for (size_t i = 0; i < x->n_ports; i++)
                listener_update(s, x->ports[i]);
        *ret = x;
        return 0;
}

int session_start(Session *x, TlsConn *conn, const uint8_t *early, size_t n_early) {
        const Definition *d;
        MuxConfig cfg;

        assert(x);
        assert(!x->mux);
        d = server_def(x->server);
        cfg = (MuxConfig) {
                .h2_client = true,
                .ws_client = false,
                .max_frame_size = d->max_frame_size,
                .max_streams = d->max_streams,
                .keepalive_usec = d->keepalive_usec,
                .resumable = x->resumable,
        };
        return mux_new(x->server->manager->event, conn, &cfg, early, n_early, &session_callbacks, x,
                       &x->mux);
}

void session_log_connected(Session *x) {
        assert(x);
        if (x->n_hosts > 0) {
                char list[1024] = "";
                size_t o = 0;
                for (size_t i = 0; i < x->n_hosts && o < sizeof(list) - 1; i++)
                        o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%s", i ? " " : "", x->hosts[i]);
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s connected from %s, hosts %s.", x->id, x->remote,
                         list);
        } else {
                char list[MAX_OFFERED_PORTS * 6 + 1] = "none";
                size_t o = 0;
                for (size_t i = 0; i < x->n_ports; i++)
                        o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%u", i ? " " : "", x->ports[i]);
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s connected from %s, ports %s.", x->id, x->remote,
                         list);
        }
}

/* TCP mode: the session for a public connection on l's port, round-robin among those that
 * offer it. */
Session *session_for_port(Server *s, Listener *l) {
        unsigned n = 0, pick;

        assert(s);
        assert(l);
        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_ports && !x->held; i++)
                        if (x->ports[i] == l->port)
                                n++;
        if (n == 0)
                return NULL;
        pick = l->rr++ % n;
        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_ports && !x->held; i++)
                        if (x->ports[i] == l->port && pick-- == 0)
                                return x;
        return NULL;
}

/* HTTP mode: the session for a request's host, round-robin among those that name it, else
 * among those that serve any host; NULL with *ret_refused when that session's own lists refuse
 * peer. */
Mux *server_route_host(const char *host, const SocketAddress *peer, bool *ret_refused, bool *ret_exact,
                       void *userdata) {
        Server *s = userdata;
        unsigned exact = 0, any = 0, pick;

        assert(s);
        assert(ret_refused);
        assert(ret_exact);
        *ret_refused = false;
        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_hosts && !x->held; i++) {
                        if (streq(x->hosts[i], host))
                                exact++;
                        else if (streq(x->hosts[i], "*"))
                                any++;
                }
        if (exact + any == 0)
                return NULL;
        *ret_exact = exact > 0;
        pick = s->host_rr++ % (exact ?: any);
        for (Session *x = s->sessions; x; x = x->next)
                for (size_t i = 0; i < x->n_hosts && !x->held; i++)
                        if (streq(x->hosts[i], exact ? host : "*") && pick-- == 0) {
                                if (session_allows(x, host, peer))
                                        return x->mux;
                                *ret_refused = true;
                                return NULL;
                        }
        return NULL;
}

/* ---- what a client offers ---- */

void port_refusal(const Definition *d, uint16_t port, char *buf, size_t size) {
        assert(d);
        assert(buf);
        if (d->n_allow_ports == 0)
                snprintf(buf, size, "port %u is privileged: list it in AllowPorts= to allow it", port);
        else
                snprintf(buf, size, "port %u is not in AllowPorts=", port);
}

/* X-Inlets-Ports and the "ports" control message: distinct ports, comma-separated, or "none" (a
 * client that serves UDPPorts= only). */
int parse_offered_ports(const char *v, uint16_t **ret, size_t *ret_n) {
        _cleanup_free_ uint16_t *ports = NULL;
        size_t n = 0;

        assert(ret);
        assert(ret_n);
        if (v && streq(v, "none")) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
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
int parse_offered_hosts(const char *v, char ***ret, size_t *ret_n) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        assert(ret);
        assert(ret_n);
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

/* The new offer's ports, parsed and allowed; else the "error …" answer is sent. */
static int session_control_parse(Session *x, Mux *m, const char *list, uint16_t **ret, size_t *ret_n) {
        const Definition *d = server_def(x->server);
        char reply[128];

        /* An HTTP-mode client offers host names only: it must not get ports bound. */
        if (d->mode != MODE_TCP) {
                log_warning("Client %s asked for ports on an HTTP-mode server: refused.", x->id);
                (void) mux_send_control(m, "error this server runs in HTTP mode: it opens no ports");
                return -EINVAL;
        }
        if (parse_offered_ports(list, ret, ret_n) < 0) {
                (void) mux_send_control(m, "error ports must list 1 to 256 distinct ports, comma-separated, or none");
                return -EINVAL;
        }
        for (size_t i = 0; i < *ret_n; i++)
                if (!definition_port_allowed(d, (*ret)[i])) {
                        memcpy(reply, "error ", 6);
                        port_refusal(d, (*ret)[i], reply + 6, sizeof(reply) - 6);
                        (void) mux_send_control(m, reply);
                        *ret = mfree(*ret);
                        return -EPERM;
                }
        return 0;
}

/* "ports 3389,2222": the new complete offer. Answered "ok ports …" or "error …". */
static void session_control_ports(Session *x, Mux *m, const char *list) {
        Server *s = x->server;
        _cleanup_free_ uint16_t *ports = NULL, *added = NULL, *removed = NULL;
        _cleanup_free_ char *why = NULL;
        size_t n = 0, n_added = 0, n_removed = 0;
        char reply[MAX_OFFERED_PORTS * 6 + 64];
        size_t o;
        int r;

        if (session_control_parse(x, m, list, &ports, &n) < 0)
                return;
        added = calloc(n ?: 1, sizeof(uint16_t));
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
        for (size_t i = 0; i < n_removed; i++) {
                listener_unref(s, removed[i]);
                listener_update(s, removed[i]);
        }
        for (size_t i = 0; i < n_added; i++)
                listener_update(s, added[i]);
        o = (size_t) snprintf(reply, sizeof(reply), n > 0 ? "ok ports " : "ok ports none");
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(reply + o, sizeof(reply) - o, "%s%u", i ? "," : "", x->ports[i]);
        log_info("Client %s now offers ports %s.", x->id, reply + 9);
        (void) mux_send_control(m, reply);
        manager_emit_changed(s->manager, "Clients");
        manager_emit_changed(s->manager, "Ports");
}

/* Whether every scope of l names something the client offers: a port (TCP mode) or a host name
 * (HTTP mode); the first that does not in *ret. */
static bool access_scopes_offered(const Session *x, Mode mode, const AccessList *l, const char **ret) {
        for (size_t i = 0; i < l->n_rules; i++) {
                const char *scope = l->rules[i].scope;
                bool ok = false;
                unsigned port;

                if (!scope)
                        continue;
                if (mode == MODE_TCP)
                        ok = parse_unsigned(scope, &port) >= 0 && port <= UINT16_MAX &&
                             (has_port(x->ports, x->n_ports, (uint16_t) port) ||
                              has_port(x->udp_ports, x->n_udp_ports, (uint16_t) port));
                else
                        ok = strv_contains(x->hosts, x->n_hosts, scope);
                if (!ok) {
                        *ret = scope;
                        return false;
                }
        }
        return true;
}

/* "access begin", "access allow ITEMS", "access deny ITEMS", "access commit": the client's own
 * AllowFrom=/DenyFrom=, in as many messages as they take, in force at the commit (see
 * docs/protocol.md). A bad item drops what came since "begin"; the lists in force stay. */
static void session_control_access(Session *x, Mux *m, const char *args) {
        const Definition *d = server_def(x->server);
        _cleanup_free_ char *item = NULL;
        const char *reason = NULL, *scope = NULL;
        char reply[512];
        bool allow;
        int r;

        if (streq(args, "begin")) {
                access_list_done(&x->access_pending);
                x->access_open = true;
                (void) mux_send_control(m, "ok access begin");
                return;
        }
        if (!x->access_open) {
                (void) mux_send_control(m, "error access: no \"access begin\" before this");
                return;
        }
        if (streq(args, "commit")) {
                if (!access_scopes_offered(x, d->mode, &x->access_pending, &scope)) {
                        snprintf(reply, sizeof(reply), "error access: %s %s is not in this client's offer",
                                 d->mode == MODE_TCP ? "port" : "host", scope);
                        goto fail;
                }
                access_list_done(&x->access);
                x->access = x->access_pending;
                x->access_pending = (AccessList) {};
                x->access_open = false;
                udp_flows_recheck(x->server); /* a UDP flow may last: the new lists judge it now */
                snprintf(reply, sizeof(reply), "ok access commit %zu", x->access.n_rules);
                log_conn(LOG_INFO, x->id, x->remote, 0, "Client %s applies its own access lists (%zu rules).", x->id,
                         x->access.n_rules);
                (void) mux_send_control(m, reply);
                return;
        }
        if (startswith(args, "allow "))
                allow = true;
        else if (startswith(args, "deny "))
                allow = false;
        else {
                (void) mux_send_control(m, "error unknown command");
                return;
        }
        /* Scopes must be of the mode's kind; that they are offered is checked at the commit. */
        r = access_list_parse_full(&x->access_pending, args + (allow ? 6 : 5), allow, true, &reason, &item);
        if (r >= 0) {
                for (size_t i = 0; i < x->access_pending.n_rules && !scope; i++) {
                        const char *sc = x->access_pending.rules[i].scope;
                        if (sc && (sc[strspn(sc, "0123456789")] == 0) != (d->mode == MODE_TCP))
                                scope = sc;
                }
                if (!scope) {
                        snprintf(reply, sizeof(reply), "ok access %zu", x->access_pending.n_rules);
                        (void) mux_send_control(m, reply);
                        return;
                }
                snprintf(reply, sizeof(reply), "error access: %s is not a %s", scope,
                         d->mode == MODE_TCP ? "port (TCP mode)" : "host name (HTTP mode)");
        } else
                snprintf(reply, sizeof(reply), "error access: '%.100s': %s", item ?: "", reason ?: strerror(-r));
fail:
        log_conn(LOG_WARNING, x->id, x->remote, 0, "Client %s: access lists refused: %s.", x->id, reply + 14);
        access_list_done(&x->access_pending);
        x->access_open = false;
        (void) mux_send_control(m, reply);
}

static void session_control(Mux *m, const char *message, void *userdata) {
        Session *x = userdata;

        assert(m);
        assert(message);
        if (startswith(message, "ports "))
                session_control_ports(x, m, message + 6);
        else if (startswith(message, "access "))
                session_control_access(x, m, message + 7);
        else if (startswith(message, "forward "))
                session_control_forward(x, m, message + 8);
        else if (streq(message, "udp-ports") || startswith(message, "udp-ports "))
                session_control_udp_ports(x, m, message + 9);
        else
                (void) mux_send_control(m, "error unknown command");
}

