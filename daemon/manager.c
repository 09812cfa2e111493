// SPDX-License-Identifier: LGPL-2.1-or-later
/* The manager: event loop, signals, bus, reload, and dispatch to the role object. */

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>

#include "bus.h"
#include "client.h"
#include "fileserver.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "metrics.h"
#include "resolve.h"
#include "parse-util.h"
#include "polkit.h"
#include "server.h"
#include "string-table.h"
#include "time-util.h"

static const char *const tunnel_state_table[_TUNNEL_STATE_MAX] = {
        [TUNNEL_STARTING] = "starting",         [TUNNEL_LISTENING] = "listening",
        [TUNNEL_CONNECTING] = "connecting",     [TUNNEL_CONNECTED] = "connected",
        [TUNNEL_RECONNECTING] = "reconnecting", [TUNNEL_STOPPING] = "stopping",
};

DEFINE_STRING_TABLE_LOOKUP(tunnel_state, TunnelState);

void manager_emit_changed(Manager *m, const char *property) {
        assert(m);
        assert(property);
        if (m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, property, NULL);
}

void manager_notify_status(Manager *m) {
        TunnelCounters c;
        char status[256];

        assert(m);
        manager_get_counters(m, &c);
        if (m->server) {
                size_t n_clients = 0;
                char ports[160] = "";
                server_status_summary(m->server, &n_clients, ports, sizeof(ports));
                snprintf(status, sizeof(status), "%s: %zu client%s, %s %s, %u stream%s",
                         tunnel_state_to_string(m->state), n_clients, n_clients == 1 ? "" : "s",
                         m->def->mode == MODE_HTTP ? "hosts" : "ports", *ports ? ports : "none",
                         c.active_streams, c.active_streams == 1 ? "" : "s");
        } else if (m->fileserver)
                snprintf(status, sizeof(status), "%s: %s, %u connection%s, %" PRIu64 " requests",
                         tunnel_state_to_string(m->state), m->def->webroot, c.active_streams,
                         c.active_streams == 1 ? "" : "s", c.total_streams);
        else
                snprintf(status, sizeof(status), "%s %s %s, %u stream%s", tunnel_state_to_string(m->state),
                         m->state == TUNNEL_CONNECTED ? "to" : "with", m->def->url ?: "", c.active_streams,
                         c.active_streams == 1 ? "" : "s");
        (void) sd_notifyf(false, "STATUS=%s", status);
}

void manager_set_state(Manager *m, TunnelState s) {
        assert(m);
        if (m->state == s)
                return;
        m->state = s;
        manager_emit_changed(m, "State");
        /* A server is ready once it listens; a client once it started trying (being connected
         * depends on a machine elsewhere, and units ordered after us must not wait for that). */
        if (!m->ready_sent && (s == TUNNEL_LISTENING || s == TUNNEL_CONNECTING || s == TUNNEL_CONNECTED)) {
                m->ready_sent = true;
                (void) sd_notify(false, "READY=1");
        }
        manager_notify_status(m);
}

/* The watchdog is fed from the loop itself, so a wedged loop is noticed; STATUS= is refreshed
 * on the same tick. */
static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t wd = 0, period = 5 * USEC_PER_SEC;

        if (sd_watchdog_enabled(false, &wd) > 0) {
                (void) sd_notify(false, "WATCHDOG=1");
                period = MIN(period, wd / 2);
        }
        manager_notify_status(m);
        (void) sd_event_source_set_time_relative(s, period);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

void manager_set_error(Manager *m, const char *error) {
        assert(m);
        if (m->last_error && error && streq(m->last_error, error))
                return;
        free(m->last_error);
        m->last_error = error ? strdup(error) : NULL;
        manager_emit_changed(m, "LastError");
}

void manager_client_event(Manager *m, bool connected, const char *id, const char *text) {
        assert(m);
        assert(id);
        if (!m->bus)
                return;
        (void) sd_bus_emit_signal(m->bus, BUS_PATH, BUS_INTERFACE,
                                  connected ? "ClientConnected" : "ClientDisconnected", "ss", id, text ?: "");
        (void) sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "Clients", "Ports", NULL);
}

void manager_get_counters(Manager *m, TunnelCounters *ret) {
        assert(m);
        assert(ret);
        *ret = (TunnelCounters) {};
        if (m->server)
                server_get_counters(m->server, ret);
        else if (m->client)
                client_get_counters(m->client, ret);
        else if (m->fileserver)
                fileserver_get_counters(m->fileserver, ret);
}

void manager_get_refused(Manager *m, RefusedCounters *ret) {
        assert(m);
        assert(ret);
        *ret = (RefusedCounters) {};
        if (m->server)
                server_get_refused(m->server, ret);
        else if (m->client)
                ret->allow_list = client_refused(m->client);
}

void manager_get_resume(Manager *m, ResumeCounters *ret) {
        assert(m);
        assert(ret);
        *ret = (ResumeCounters) {};
        if (m->server)
                server_get_resume(m->server, ret);
        else if (m->client)
                client_get_resume(m->client, ret);
}

void manager_foreach_client(Manager *m, void (*f)(const PeerInfo *p, void *userdata), void *userdata) {
        assert(m);
        if (m->server && f)
                server_foreach_client(m->server, f, userdata);
}

void manager_foreach_stream(Manager *m, void (*f)(const StreamInfo *s, void *userdata), void *userdata) {
        assert(m);
        assert(f);
        if (m->server)
                server_foreach_stream(m->server, f, userdata);
        else if (m->client)
                client_foreach_stream(m->client, f, userdata);
}

typedef struct StreamWalk {
        const char *client;
        void (*f)(const StreamInfo *i, void *userdata);
        void *userdata;
        uint64_t now;
} StreamWalk;

static void walk_stream(const MuxStreamInfo *i, void *userdata) {
        StreamWalk *w = userdata;
        StreamInfo si = {
                .id = i->id > 0 ? (uint32_t) i->id : 0,
                .client = w->client,
                .peer = i->peer,
                .port = authority_port(i->authority),
                .bytes_in = i->bytes_in,
                .bytes_out = i->bytes_out,
                .age_usec = w->now - i->created,
        };
        w->f(&si, w->userdata);
}

void manager_foreach_mux_stream(Mux *mux, const char *client, void (*f)(const StreamInfo *s, void *userdata),
                                void *userdata) {
        StreamWalk w = { client, f, userdata, now_usec() };

        assert(mux);
        assert(f);
        mux_foreach_stream(mux, walk_stream, &w);
}

const char *const udp_drop_names[_UDP_DROP_MAX] = {
        [UDP_DROP_FULL] = "full",
        [UDP_DROP_SIZE] = "size",
        [UDP_DROP_NO_FLOW] = "no-flow",
        [UDP_DROP_ERROR] = "error",
};

const char *const upstream_failure_names[_UPSTREAM_FAILURE_MAX] = {
        [UPSTREAM_REFUSED] = "refused",
        [UPSTREAM_UNREACHABLE] = "unreachable",
        [UPSTREAM_TIMEOUT] = "timeout",
        [UPSTREAM_TLS] = "tls",
        [UPSTREAM_OTHER] = "other",
};

void manager_note_upstream(Manager *m, int error, uint64_t took_usec) {
        assert(m);
        if (error == 0) {
                histogram_add(&m->upstream_connect, took_usec);
                return;
        }
        switch (-error) {
        case ECONNREFUSED:
                m->upstream_failures[UPSTREAM_REFUSED]++;
                break;
        case EHOSTUNREACH:
        case ENETUNREACH:
        case EADDRNOTAVAIL:
        case ENOENT:
                m->upstream_failures[UPSTREAM_UNREACHABLE]++;
                break;
        case ETIMEDOUT:
                m->upstream_failures[UPSTREAM_TIMEOUT]++;
                break;
        case EPROTO:
        case EPERM:
                m->upstream_failures[UPSTREAM_TLS]++;
                break;
        default:
                m->upstream_failures[UPSTREAM_OTHER]++;
        }
}

PortTotals *port_table_get(PortTable *t, uint16_t port) {
        size_t lo = 0, hi = t->n;
        PortTotals *v;

        if (port == 0)
                return NULL;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (t->v[mid].port == port)
                        return &t->v[mid];
                if (t->v[mid].port < port)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (t->n >= PORT_TABLE_MAX)
                return NULL;
        v = realloc(t->v, sizeof(PortTotals) * (t->n + 1));
        if (!v)
                return NULL;
        t->v = v;
        memmove(&v[lo + 1], &v[lo], sizeof(PortTotals) * (t->n - lo));
        v[lo] = (PortTotals) { .port = port };
        t->n++;
        return &v[lo];
}

void port_table_done(PortTable *t) {
        t->v = mfree(t->v);
        t->n = 0;
}

void manager_stream_ended(Manager *m, MuxStream *s) {
        const char *authority = mux_stream_authority(s);
        PortTotals *p;
        uint64_t in, out;

        /* A LocalForward= stream names its target, not a public port. */
        if (m->def->mode != MODE_TCP || !authority || mux_stream_forward(s) != 0 ||
            !(p = port_table_get(&m->ports, authority_port(authority))))
                return;
        mux_stream_get(s, &in, &out, NULL);
        p->streams++;
        p->bytes_in += in;
        p->bytes_out += out;
}

static void add_live(const MuxStreamInfo *i, void *userdata) {
        PortTable *t = userdata;
        PortTotals *p = i->authority && mux_stream_forward(i->stream) == 0
                                ? port_table_get(t, authority_port(i->authority)) : NULL;

        if (!p)
                return;
        p->streams++;
        p->bytes_in += i->bytes_in;
        p->bytes_out += i->bytes_out;
}

void manager_session_ended(Manager *m, Mux *mux) {
        if (m->def->mode == MODE_TCP)
                mux_foreach_stream(mux, add_live, &m->ports);
}

static void snapshot_live(const StreamInfo *i, void *userdata) {
        PortTotals *p = port_table_get(userdata, i->port);

        if (!p)
                return;
        p->active++;
        p->streams++;
        p->bytes_in += i->bytes_in;
        p->bytes_out += i->bytes_out;
}

int manager_port_snapshot(Manager *m, PortTable *ret) {
        assert(m);
        assert(ret);

        *ret = (PortTable) {};
        if (m->def->mode != MODE_TCP)
                return 0;
        if (m->ports.n > 0) {
                ret->v = new0(PortTotals, m->ports.n);
                if (!ret->v)
                        return -ENOMEM;
                memcpy(ret->v, m->ports.v, sizeof(PortTotals) * m->ports.n);
                ret->n = m->ports.n;
        }
        manager_foreach_stream(m, snapshot_live, ret);
        return 0;
}

int manager_disconnect_client(Manager *m, const char *id) {
        assert(m);
        assert(id);
        return m->server ? server_disconnect_client(m->server, id) : -ENOENT;
}

AcmeCert *manager_acme(Manager *m) {
        assert(m);
        return m->server ? server_acme(m->server) : NULL;
}

static int manager_reload_apply(Manager *m, char **ret_error);

int manager_reload(Manager *m, char **ret_error) {
        int r;

        assert(m);
        assert(ret_error);
        log_info("Reloading %s.", m->config_path);
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec());
        r = manager_reload_apply(m, ret_error);
        (void) sd_notify(false, "READY=1");
        manager_notify_status(m);
        return r;
}

static int manager_reload_apply(Manager *m, char **ret_error) {
        _cleanup_(definition_freep) Definition *d = NULL, *old = NULL;
        _cleanup_(metrics_freep) Metrics *metrics = NULL;
        int r;

        r = definition_load(m->config_path, m->name, &d, ret_error);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s", *ret_error ?: strerror(-r));
                return r;
        }
        if (d->role != m->def->role || d->mode != m->def->mode) {
                free(*ret_error);
                if (asprintf(ret_error, "%s: changing Role= or Mode= needs a restart", m->config_path) < 0)
                        *ret_error = NULL;
                log_error("Reload refused: %s", *ret_error ?: "Role/Mode changed");
                return -EINVAL;
        }
        /* A new MetricsListen= must bind before anything moves, like a new control port. */
        if (!socket_address_equal(&d->metrics_listen, &m->def->metrics_listen) && d->metrics_listen.len > 0) {
                char a[SOCKADDR_STR_MAX];
                r = metrics_new(m, &d->metrics_listen, -1, &metrics);
                if (r < 0) {
                        free(*ret_error);
                        if (asprintf(ret_error, "MetricsListen=%s: cannot listen: %s",
                                     socket_address_format(&d->metrics_listen, a), strerror(-r)) < 0)
                                *ret_error = NULL;
                        log_error("Reload failed, keeping the running configuration: %s", *ret_error ?: strerror(-r));
                        return r;
                }
        }
        /* The role checks what it must (a new control port must bind) before anything moves. */
        r = m->server ? server_reload(m->server, d, ret_error) : m->client ? client_reload(m->client, d, ret_error) : 0;
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s", *ret_error ?: strerror(-r));
                return r;
        }
        if (!socket_address_equal(&d->metrics_listen, &m->def->metrics_listen)) {
                metrics_free(m->metrics);
                m->metrics = TAKE_PTR(metrics);
        }
        old = m->def;
        m->def = TAKE_PTR(d);
        if (m->def->log_level >= 0)
                log_max_level = m->def->log_level;
        if (m->server)
                server_reloaded(m->server, old);
        else if (m->client)
                client_reloaded(m->client, old);
        if (m->bus) {
                (void) sd_bus_emit_signal(m->bus, BUS_PATH, BUS_INTERFACE, "Reloaded", "");
                (void) sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "Ports", "Upstreams", "URL",
                                                      "ControlAddress", NULL);
        }
        log_info("Reloaded.");
        return 0;
}

#define DRAIN_USEC (10 * USEC_PER_SEC)

static int finish_stop(Manager *m) {
        if (m->fileserver)
                fileserver_stop(m->fileserver);
        if (m->server)
                server_stop(m->server);
        if (m->client)
                client_stop(m->client);
        /* What the sessions had queued (GOAWAY, close, close_notify) was flushed above. */
        return sd_event_exit(m->event, 0);
}

/* Draining: exit when the last tunneled connection has ended, or at the deadline. */
static int on_drain_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        TunnelCounters c;

        manager_get_counters(m, &c);
        if (c.active_streams == 0 || now_usec() >= m->drain_deadline) {
                if (c.active_streams > 0)
                        log_notice("Drain time is up: resetting %u connection%s.", c.active_streams,
                                   c.active_streams == 1 ? "" : "s");
                return finish_stop(m);
        }
        (void) sd_event_source_set_time_relative(s, 50 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        TunnelCounters c;
        int r;

        assert(m);
        if (m->stopping) {
                log_info("Second signal: exiting now.");
                return finish_stop(m);
        }
        m->stopping = true;
        (void) sd_notify(false, "STOPPING=1");
        manager_set_state(m, TUNNEL_STOPPING);
        manager_get_counters(m, &c);
        log_info("Received %s, shutting down%s.", strsignal((int) si->ssi_signo),
                 c.active_streams > 0 ? " once the open connections end" : "");
        /* New connections go to the next process (systemd holds the sockets) or are refused;
         * the ones in flight may finish, within a bound. */
        if (m->server)
                server_drain(m->server);
        if (m->client)
                client_drain(m->client);
        if (c.active_streams == 0)
                return finish_stop(m);
        m->drain_deadline = now_usec() + DRAIN_USEC;
        r = sd_event_add_time_relative(m->event, &m->drain_timer, CLOCK_MONOTONIC, 50 * USEC_PER_MSEC, 0,
                                       on_drain_timer, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->drain_timer, "manager-drain");
        return 0;
}

/* SIGUSR2, the unit's RestartKillSignal=: a restart. The exit server hands its resumable
 * sessions (server-handover.c), the tunnel client its session (client.c), to the next process
 * through systemd's fd store and exits at once; a fileserver (or no fd store to hand to) stops
 * as on SIGTERM. */
static int manager_handover(Manager *m) {
        _cleanup_free_ int *fds = NULL;
        _cleanup_close_ int state = -EBADF;
        size_t n_fds = 0;
        FILE *f;
        int n, r;

        state = memfd_create("inletsd-handover", MFD_CLOEXEC);
        if (state < 0)
                return -errno;
        f = fdopen(fcntl(state, F_DUPFD_CLOEXEC, 3), "w");
        if (!f)
                return -errno;
        n = m->server ? server_handover(m->server, f, &fds, &n_fds) : client_handover(m->client, f, &fds, &n_fds);
        if (fclose(f) != 0 && n >= 0)
                n = -errno;
        if (n <= 0)
                return n;
        r = sd_pid_notify_with_fds(0, false, "FDSTORE=1\nFDNAME=handover-state", &state, 1);
        if (r <= 0)
                return r < 0 ? r : -ENOTCONN;
        for (size_t i = 0; i < n_fds; i++) {
                char msg[64];
                snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=handover-%zu", i);
                r = sd_pid_notify_with_fds(0, false, msg, &fds[i], 1);
                if (r <= 0)
                        log_warning_errno(r < 0 ? r : ENOTCONN, "A connection could not be handed over: %m");
        }
        if (m->server) {
                server_handover_done(m->server);
                log_info("Restarting: handed %zu connections of %d clients to the next process (they wait for it).",
                         n_fds, n);
        } else {
                client_handover_done(m->client);
                log_info("Restarting: handed %zu connections to the next process (they wait for it).", n_fds);
        }
        return n;
}

static int on_sigusr2(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        int r;

        if (m->stopping || !(m->server || m->client) || m->def->mode != MODE_TCP || m->def->resume_usec == 0 ||
            !getenv("NOTIFY_SOCKET")) {
                if (!m->stopping)
                        log_info("Restart signal: nothing to hand over (TCP mode, ResumeSec= and systemd's fd store "
                                 "needed); stopping as on SIGTERM.");
                return on_stop_signal(s, si, userdata);
        }
        r = manager_handover(m);
        if (r < 0)
                log_warning_errno(r, "Handing the connections to the next process failed: %m; they close.");
        /* What was not handed over (clients that cannot resume) drains as on SIGTERM. */
        return on_stop_signal(s, si, userdata);
}

void manager_handover_release(Manager *m) {
        char msg[64 + 255];

        if (m->handover_names)
                for (char **n = m->handover_names; *n; n++) {
                        snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", *n);
                        (void) sd_notify(false, msg);
                }
        m->handover_names = strv_free(m->handover_names);
        m->handover_state = safe_close(m->handover_state);
        for (size_t i = 0; i < m->n_handover_fds; i++) {
                /* Connections not taken (a session that could not be restored): reset, as any
                 * that ends abnormally, not closed as if complete. */
                struct linger l = { .l_onoff = 1, .l_linger = 0 };
                if (m->handover_fds[i] >= 0)
                        (void) setsockopt(m->handover_fds[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
                safe_close(m->handover_fds[i]);
        }
        m->handover_fds = mfree(m->handover_fds);
        m->n_handover_fds = 0;
}

/* What the previous process handed over: the state, checked to be one this version reads, to
 * the role that wrote it; what the role does not take is reset by manager_handover_release(). */
static void manager_restore(Manager *m) {
        const uint8_t *state = NULL;
        HandoverReader rd;
        size_t n = 0;
        int r;

        if (m->handover_state < 0)
                return;
        r = handover_map_fd(m->handover_state, &state, &n);
        if (r < 0) {
                log_warning_errno(r, "The previous process's state cannot be read: %m");
                return;
        }
        rd = (HandoverReader) { .p = state, .left = n };
        if (!(m->server || m->client) || m->def->resume_usec == 0 || m->def->mode != MODE_TCP)
                log_info("The previous process handed over connections; ResumeSec=0 or HTTP mode: closing them.");
        else if (handover_begin(&rd) < 0)
                log_warning("The previous process's state is not one this version reads.");
        else if (m->server)
                (void) server_restore(m->server, &rd, m->handover_fds, m->n_handover_fds);
        else
                (void) client_restore(m->client, &rd, m->handover_fds, m->n_handover_fds);
        handover_unmap(state, n);
}

/* "handover-state" and "handover-N" of the previous process: kept for the role, by N. */
static int take_handover(Manager *m, const char *name, int fd) {
        const char *tail = startswith(name, "handover-");
        unsigned idx;
        char **l;
        size_t k = 0;

        while (m->handover_names && m->handover_names[k])
                k++;
        l = realloc(m->handover_names, sizeof(char *) * (k + 2));
        if (!l)
                return -ENOMEM;
        m->handover_names = l;
        l[k] = strdup(name);
        l[k + 1] = NULL;
        if (!l[k])
                return -ENOMEM;
        if (streq(tail, "state") && m->handover_state < 0) {
                m->handover_state = fd;
                return 0;
        }
        if (parse_unsigned(tail, &idx) < 0 || idx >= 1000000)
                return -EINVAL;
        if (idx >= m->n_handover_fds) {
                int *t = realloc(m->handover_fds, sizeof(int) * (idx + 1));
                if (!t)
                        return -ENOMEM;
                for (size_t i = m->n_handover_fds; i <= idx; i++)
                        t[i] = -EBADF;
                m->handover_fds = t;
                m->n_handover_fds = idx + 1;
        }
        if (m->handover_fds[idx] >= 0)
                return -EEXIST;
        m->handover_fds[idx] = fd;
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        _cleanup_free_ char *err = NULL;
        (void) manager_reload(userdata, &err);
        return 0;
}

int manager_new(Definition *def, const char *config_path, const char *name, BusMode bus_mode, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t ss;
        int r;

        assert(def);
        assert(config_path);
        assert(ret);
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->config_path = strdup(config_path);
        m->name = name ? strdup(name) : NULL;
        if (!m->config_path || (name && !m->name))
                return -ENOMEM;
        m->bus_mode = bus_mode;
        m->metrics_fd = -1;
        m->handover_state = -EBADF;
        m->started_at = realtime_usec();
        r = sd_event_new(&m->event); /* not the default loop: sd_event_prepare() would check the thread with gettid() on every iteration */
        if (r < 0)
                return r;
        r = resolver_new(m->event, &m->resolver);
        if (r < 0)
                return r;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGUSR2);
        sigaddset(&ss, SIGCHLD); /* for sd_event_add_child(): the ACME helper */
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return -errno;
        (void) signal(SIGPIPE, SIG_IGN);
        r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sigint, SIGINT, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, on_sighup, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sigusr2, SIGUSR2, on_sigusr2, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->sigterm, "manager-sigterm");
        (void) sd_event_source_set_description(m->sigint, "manager-sigint");
        (void) sd_event_source_set_description(m->sighup, "manager-sighup");
        (void) sd_event_source_set_description(m->sigusr2, "manager-sigusr2");
        m->def = def;
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_start(Manager *m) {
        int r;

        assert(m);
        assert(!m->server && !m->client && !m->fileserver);
        switch (m->def->role) {
        case ROLE_SERVER:
                r = server_new(m, &m->server);
                break;
        case ROLE_CLIENT:
                r = client_new(m, &m->client);
                break;
        case ROLE_FILESERVER:
                r = fileserver_new(m, &m->fileserver);
                break;
        default:
                return log_error_errno(EOPNOTSUPP, "%s: Role=%s is not supported by this version yet.", m->config_path,
                                       role_to_string(m->def->role));
        }
        if (r < 0)
                return log_oom();
        r = bus_setup(m);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, 0, 0, on_status_timer, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->status_timer, "manager-status");
        r = m->server ? server_start(m->server) : m->client ? client_start(m->client)
                                                            : fileserver_start(m->fileserver);
        if (r < 0)
                return r;
        manager_restore(m);
        manager_handover_release(m); /* out of the fd store: a later restart hands over anew */
        /* After the role took the sockets systemd passed: one may be MetricsListen='s. */
        if (m->def->metrics_listen.len > 0) {
                char a[SOCKADDR_STR_MAX];
                bool passed = m->metrics_fd >= 0;
                socket_address_format(&m->def->metrics_listen, a);
                r = metrics_new(m, &m->def->metrics_listen, TAKE_FD(m->metrics_fd), &m->metrics);
                if (r < 0)
                        return log_error_errno(r, "MetricsListen=%s: cannot listen: %m", a);
                log_info("Metrics on http://%s/metrics%s.", a, passed ? " (the socket passed by systemd)" : "");
        } else if (m->metrics_fd >= 0) {
                log_warning("Ignoring the metrics socket passed by systemd: MetricsListen= is not set.");
                m->metrics_fd = safe_close(m->metrics_fd);
        }
        return 0;
}

int manager_run(Manager *m) {
        assert(m);
        return sd_event_loop(m->event);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        metrics_free(m->metrics);
        server_free(m->server);
        client_free(m->client);
        fileserver_free(m->fileserver);
        polkit_queries_free(m);
        resolver_free(m->resolver); /* after the roles: they cancelled their queries */
        sd_event_source_disable_unref(m->counter_timer);
        sd_event_source_disable_unref(m->status_timer);
        if (m->bus) {
                sd_bus_flush(m->bus);
                sd_bus_flush_close_unref(m->bus);
        }
        sd_event_source_disable_unref(m->sigterm);
        sd_event_source_disable_unref(m->sigint);
        sd_event_source_disable_unref(m->sighup);
        sd_event_source_disable_unref(m->sigusr2);
        manager_handover_release(m);
        sd_event_source_disable_unref(m->drain_timer);
        sd_event_unref(m->event);
        definition_free(m->def);
        free(m->config_path);
        free(m->name);
        free(m->bus_name);
        free(m->last_error);
        safe_close(m->metrics_fd);
        port_table_done(&m->ports);
        free(m);
        return NULL;
}

int manager_take_systemd_sockets(Manager *m, bool (*take)(const char *name, int fd, void *userdata), void *userdata) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        assert(m);
        assert(take);
        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "";

                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                if (startswith(name, "handover-")) { /* a restart: the previous process's state */
                        int r = take_handover(m, name, fd);
                        if (r < 0) {
                                log_warning_errno(r, "Ignoring passed fd %d (%s): %m", fd, name);
                                safe_close(fd);
                        }
                        continue;
                }
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* accept() must never block */
                if (startswith(name, "udp-")) { /* ListenDatagram= */
                        if (sd_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) <= 0) {
                                log_warning("Ignoring passed fd %d (%s): not a datagram socket.", fd, name);
                                safe_close(fd);
                        } else if (!take(name, fd, userdata)) {
                                log_warning("Ignoring passed fd %d (%s): not a socket this tunnel uses.", fd, name);
                                safe_close(fd);
                        }
                        continue;
                }
                socket_set_nodelay(fd); /* inherited by what we accept, as for our own listeners */
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                        log_warning("Ignoring passed fd %d (%s): not a listening stream socket.", fd, name);
                        safe_close(fd);
                } else if (streq(name, "metrics") && m->metrics_fd < 0)
                        m->metrics_fd = fd; /* MetricsListen=: the manager's, at start */
                else if (!take(name, fd, userdata)) {
                        log_warning("Ignoring passed socket '%s'.", name);
                        safe_close(fd);
                }
        }
        for (int i = 0; names && names[i]; i++)
                free(names[i]);
        free(names);
        return 0;
}
