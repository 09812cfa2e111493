// SPDX-License-Identifier: LGPL-2.1-or-later
/* MetricsListen=: the Prometheus endpoint; see metrics.h.
 *
 * A deliberately small HTTP/1.1 server: one request per connection (answered with
 * "Connection: close"), its head at most 4 KiB within HandshakeTimeoutSec=, at most 32
 * connections at once (the oldest goes), the answer written as the socket takes it. Anything
 * but GET or HEAD of /metrics is answered 404 or 405. */

#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acmecert.h"
#include "client.h"
#include "http1.h"
#include "server.h"
#include "httpfront.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "time-util.h"

#define METRICS_CONNS_MAX 32
#define METRICS_HEAD_MAX 4096

typedef struct MetricsConn MetricsConn;

struct Metrics {
        Manager *manager;
        int fd;
        sd_event_source *io;
        MetricsConn *conns;
        unsigned n_conns;
};

struct MetricsConn {
        Metrics *owner;
        MetricsConn *prev, *next;
        int fd;
        sd_event_source *io, *timer;
        char head[METRICS_HEAD_MAX];
        size_t head_len;
        char *out;
        size_t out_len, out_pos;
};

/* ---- the exposition ---- */

/* A label value as the formats want it: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *s) {
        for (; *s; s++)
                if (*s == '\\' || *s == '"')
                        fprintf(f, "\\%c", *s);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
}

typedef struct Out {
        FILE *f;
        bool om;           /* OpenMetrics: counter families without _total, "# EOF" at the end */
        const char *tunnel;
} Out;

/* "# HELP/# TYPE" of a family; name is the sample name (counters end in _total). */
static void family(Out *o, const char *name, const char *type, const char *help) {
        size_t n = strlen(name);
        int len = (int) n;

        if (o->om && streq(type, "counter") && n > 6 && streq(name + n - 6, "_total"))
                len -= 6;
        fprintf(o->f, "# HELP %.*s %s\n# TYPE %.*s %s\n", len, name, help, len, name, type);
}

/* One sample with the tunnel label and an optional second label. */
static void sample(Out *o, const char *name, const char *label, const char *value, uint64_t v) {
        fprintf(o->f, "%s{tunnel=\"", name);
        put_label(o->f, o->tunnel);
        if (label) {
                fprintf(o->f, "\",%s=\"", label);
                put_label(o->f, value);
        }
        fprintf(o->f, "\"} %" PRIu64 "\n", v);
}

static void metric(Out *o, const char *name, const char *type, const char *help, uint64_t v) {
        family(o, name, type, help);
        sample(o, name, NULL, NULL, v);
}

static void histogram(Out *o, const char *name, const char *help, const Histogram *h) {
        uint64_t cumulative = 0;

        family(o, name, "histogram", help);
        for (size_t b = 0; b <= HISTOGRAM_BUCKETS; b++) {
                cumulative += b < HISTOGRAM_BUCKETS ? h->buckets[b] : 0;
                fprintf(o->f, "%s_bucket{tunnel=\"", name);
                put_label(o->f, o->tunnel);
                if (b < HISTOGRAM_BUCKETS)
                        fprintf(o->f, "\",le=\"%g\"} %" PRIu64 "\n", histogram_le[b], cumulative);
                else
                        fprintf(o->f, "\",le=\"+Inf\"} %" PRIu64 "\n", h->count);
        }
        fprintf(o->f, "%s_sum{tunnel=\"", name);
        put_label(o->f, o->tunnel);
        fprintf(o->f, "\"} %.6f\n%s_count{tunnel=\"", (double) h->sum_usec / 1e6, name);
        put_label(o->f, o->tunnel);
        fprintf(o->f, "\"} %" PRIu64 "\n", h->count);
}

typedef struct ClientRows {
        Out *o;
        const char *name;
        int which;       /* 0: bytes in, 1: bytes out, 2: streams, 3: connected since */
} ClientRows;

static void client_row(const PeerInfo *p, void *userdata) {
        ClientRows *c = userdata;
        uint64_t v = c->which == 0 ? p->bytes_in : c->which == 1 ? p->bytes_out
                   : c->which == 2 ? p->streams : p->since_usec / USEC_PER_SEC;

        sample(c->o, c->name, "client", p->id, v);
}

static void client_count(const PeerInfo *p, void *userdata) {
        (*(unsigned *) userdata)++;
}

static void render_clients(Out *o, Manager *m) {
        static const struct { const char *name, *type, *help; } rows[] = {
                { "inletsd_client_bytes_in_total", "counter", "Bytes in of this tunnel client's session (as D-Bus Clients)." },
                { "inletsd_client_bytes_out_total", "counter", "Bytes out of this tunnel client's session (as D-Bus Clients)." },
                { "inletsd_client_streams", "gauge", "Streams open to this tunnel client." },
                { "inletsd_client_connected_since_seconds", "gauge", "When this tunnel client connected (Unix time)." },
        };
        unsigned n = 0;

        manager_foreach_client(m, client_count, &n);
        metric(o, "inletsd_clients", "gauge", "Tunnel clients connected to this exit server.", n);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                family(o, rows[i].name, rows[i].type, rows[i].help);
                manager_foreach_client(m, client_row, &(ClientRows) { o, rows[i].name, (int) i });
        }
}

static void render_refused(Out *o, Manager *m) {
        RefusedCounters c;

        manager_get_refused(m, &c);
        family(o, "inletsd_refused_total", "counter", "Visitors turned away, by reason (as D-Bus Refused).");
        sample(o, "inletsd_refused_total", "reason", "allow-list", c.allow_list);
        if (m->def->role != ROLE_SERVER)
                return;
        sample(o, "inletsd_refused_total", "reason", "control-allow-list", c.control_allow_list);
        sample(o, "inletsd_refused_total", "reason", "proxy-header", c.proxy_header);
        sample(o, "inletsd_refused_total", "reason", "client-allow-list", c.client_allow_list);
}

/* UDP flows and datagrams (UDPPorts=): in is from the tunnel to a socket, out the other way. */
static void render_udp(Out *o, Manager *m) {
        const UdpCounters *u = &m->udp;

        metric(o, "inletsd_udp_flows", "gauge", "UDP flows open now (one per public peer address and port).",
               u->flows);
        metric(o, "inletsd_udp_flows_total", "counter", "UDP flows opened since start.", u->flows_total);
        metric(o, "inletsd_udp_flows_evicted_total", "counter",
               "UDP flows ended to make room for new ones (a limit reached).", u->evicted);
        family(o, "inletsd_udp_datagrams_total", "counter",
               "UDP datagrams carried: direction=in from the tunnel to a socket, out from a socket into the tunnel.");
        sample(o, "inletsd_udp_datagrams_total", "direction", "in", u->datagrams_in);
        sample(o, "inletsd_udp_datagrams_total", "direction", "out", u->datagrams_out);
        family(o, "inletsd_udp_bytes_total", "counter", "UDP payload bytes carried, by direction (as datagrams).");
        sample(o, "inletsd_udp_bytes_total", "direction", "in", u->bytes_in);
        sample(o, "inletsd_udp_bytes_total", "direction", "out", u->bytes_out);
        family(o, "inletsd_udp_dropped_total", "counter",
               "UDP datagrams dropped, by reason: full (the tunnel or a socket behind), size (over what the path "
               "or a capsule takes), no-flow (no client, a limit, an access list, refused), error.");
        for (size_t i = 0; i < _UDP_DROP_MAX; i++)
                sample(o, "inletsd_udp_dropped_total", "reason", udp_drop_names[i], u->dropped[i]);
}

/* HTTP mode, exit server: requests by host, method and status class, and the time to their
 * response head. */
static void render_http(Out *o) {
        static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
        const HttpStats *s = http_stats();

        family(o, "inletsd_http_requests_total", "counter",
               "Public HTTP requests answered, by host (\"-\": answered before routing, \"*\": a client for any "
               "host), method and status class.");
        for (size_t h = 0; h < s->n_hosts; h++)
                for (size_t m = 0; m < HTTP_STATS_METHODS; m++)
                        for (size_t k = 0; k < 5; k++) {
                                if (s->hosts[h].n[m][k] == 0)
                                        continue;
                                fprintf(o->f, "inletsd_http_requests_total{tunnel=\"");
                                put_label(o->f, o->tunnel);
                                fprintf(o->f, "\",host=\"");
                                put_label(o->f, s->hosts[h].host);
                                fprintf(o->f, "\",method=\"%s\",code=\"%s\"} %" PRIu64 "\n", http_stats_methods[m],
                                        classes[k], s->hosts[h].n[m][k]);
                        }
        histogram(o, "inletsd_http_response_seconds",
                  "Time from a public request's head to its response head (ours or the upstream's).", &s->response);
        family(o, "inletsd_http_requests_active", "gauge",
               "Public HTTP requests in the tunnel now (their stream open), per host.");
        for (size_t h = 0; h < s->n_hosts; h++)
                if (s->hosts[h].active > 0 || h >= 2)
                        sample(o, "inletsd_http_requests_active", "host", s->hosts[h].host, s->hosts[h].active);
        for (int dir = 0; dir < 2; dir++) {
                const char *name = dir == 0 ? "inletsd_http_bytes_in_total" : "inletsd_http_bytes_out_total";
                family(o, name, "counter",
                       dir == 0 ? "Bytes from the tunnel to visitors (bodies), per host, of requests that ended."
                                : "Bytes from visitors into the tunnel (bodies), per host, of requests that ended.");
                for (size_t h = 0; h < s->n_hosts; h++) {
                        uint64_t v = dir == 0 ? s->hosts[h].bytes_in : s->hosts[h].bytes_out;
                        if (v > 0 || h >= 2)
                                sample(o, name, "host", s->hosts[h].host, v);
                }
        }
}

/* TCP mode: streams and bytes per public port (ended streams and live ones). */
static void render_ports(Out *o, Manager *m) {
        static const struct { const char *name, *type, *help; } rows[] = {
                { "inletsd_port_streams_active", "gauge", "Tunneled connections open now, per public port." },
                { "inletsd_port_streams_total", "counter", "Tunneled connections since start, per public port." },
                { "inletsd_port_bytes_in_total", "counter", "Bytes from the tunnel to sockets, per public port." },
                { "inletsd_port_bytes_out_total", "counter", "Bytes from sockets into the tunnel, per public port." },
        };
        _cleanup_(port_table_done) PortTable t = {};
        char port[8];

        if (manager_port_snapshot(m, &t) < 0)
                return;
        for (size_t k = 0; k < ELEMENTSOF(rows); k++) {
                family(o, rows[k].name, rows[k].type, rows[k].help);
                for (size_t i = 0; i < t.n; i++) {
                        const PortTotals *p = &t.v[i];
                        snprintf(port, sizeof(port), "%u", p->port);
                        sample(o, rows[k].name, "port", port,
                               k == 0 ? p->active : k == 1 ? p->streams : k == 2 ? p->bytes_in : p->bytes_out);
                }
        }
}

static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        if (!d)
                return 0;
        while (readdir(d))
                n++;
        closedir(d);
        return n > 2 ? n - 3 : 0; /* ".", ".." and the directory's own descriptor */
}

static uint64_t rss_bytes(void) {
        unsigned long size = 0, resident = 0;
        FILE *f = fopen("/proc/self/statm", "re");

        if (!f)
                return 0;
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
                resident = 0;
        fclose(f);
        return (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE);
}

/* The process_* families of the Prometheus client libraries, without labels (one process). */
static void render_process(Out *o, Manager *m) {
        struct rusage ru = {};
        struct rlimit rl = {};

        (void) getrusage(RUSAGE_SELF, &ru);
        (void) getrlimit(RLIMIT_NOFILE, &rl);
        family(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        fprintf(o->f, "process_cpu_seconds_total %.6f\n",
                (double) ru.ru_utime.tv_sec + (double) ru.ru_stime.tv_sec +
                        ((double) ru.ru_utime.tv_usec + (double) ru.ru_stime.tv_usec) / 1e6);
        fprintf(o->f, "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\n"
                      "process_open_fds %u\n"
                      "# HELP process_max_fds Maximum number of open file descriptors.\n# TYPE process_max_fds gauge\n"
                      "process_max_fds %" PRIu64 "\n"
                      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %" PRIu64 "\n"
                      "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                      "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
                count_fds(), (uint64_t) rl.rlim_cur, rss_bytes(), (double) m->started_at / 1e6);
}

int metrics_render(Manager *m, bool openmetrics, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        TunnelCounters c;
        FILE *f;
        Out o;

        assert(m);
        assert(ret);
        assert(ret_len);

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        o = (Out) { .f = f, .om = openmetrics, .tunnel = m->name ?: m->def->name ?: "" };

        family(&o, "inletsd_info", "gauge", "The tunnel: its role, mode and the inletsd version (always 1).");
        fprintf(f, "inletsd_info{tunnel=\"");
        put_label(f, o.tunnel);
        fprintf(f, "\",role=\"%s\",mode=\"%s\",version=\"%s\"} 1\n", role_to_string(m->def->role),
                m->def->role == ROLE_FILESERVER ? "http" : mode_to_string(m->def->mode), PROJECT_VERSION);
        family(&o, "inletsd_state", "gauge", "1 for the state the tunnel is in (as D-Bus State).");
        for (TunnelState s = 0; s < _TUNNEL_STATE_MAX; s++)
                sample(&o, "inletsd_state", "state", tunnel_state_to_string(s), s == m->state);

        manager_get_counters(m, &c);
        metric(&o, "inletsd_streams_active", "gauge", "Tunneled connections (streams, requests) open now.",
               c.active_streams);
        metric(&o, "inletsd_streams_total", "counter", "Tunneled connections (streams, requests) since start.",
               c.total_streams);
        metric(&o, "inletsd_bytes_in_total", "counter", "Bytes in, as D-Bus BytesIn.", c.bytes_in);
        metric(&o, "inletsd_bytes_out_total", "counter", "Bytes out, as D-Bus BytesOut.", c.bytes_out);
        if (m->server || m->client) {
                metric(&o, "inletsd_buffer_bytes", "gauge",
                       "Bytes the tunnel sessions hold in stream buffers now (all sessions together).", c.buffered);
                metric(&o, "inletsd_buffer_budget_bytes", "gauge",
                       "What one session may buffer before it stops giving its peer window.",
                       MUX_SESSION_BUFFER_BUDGET);
                metric(&o, "inletsd_streams_limit", "gauge",
                       "Streams one session may have open at once (MaxStreamsPerClient=).", m->def->max_streams);
        }
        if (m->server) {
                static const char *const reasons[] = { "tls", "timeout", "token", "request", "busy", "closed" };
                RefusedCounters rc;
                uint64_t hf[6], connects, ends[SERVER_END_REASONS];
                const char *const *end_names;
                render_clients(&o, m);
                server_get_handshake_failures(m->server, hf);
                family(&o, "inletsd_handshake_failures_total", "counter",
                       "Connections to the control port that did not become a session, by reason.");
                for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
                        sample(&o, "inletsd_handshake_failures_total", "reason", reasons[i], hf[i]);
                server_get_sessions(m->server, &connects, ends, &end_names);
                metric(&o, "inletsd_client_connects_total", "counter",
                       "Tunnel client sessions established since start (first connections and reconnects).",
                       connects);
                family(&o, "inletsd_client_disconnects_total", "counter",
                       "Tunnel client sessions that ended, by reason.");
                for (size_t i = 0; i < SERVER_END_REASONS; i++)
                        sample(&o, "inletsd_client_disconnects_total", "reason", end_names[i], ends[i]);
                /* Closed at accept by ControlAllowFrom=: the same number as refused_total's. */
                manager_get_refused(m, &rc);
                sample(&o, "inletsd_handshake_failures_total", "reason", "allow-list", rc.control_allow_list);
        }
        if (m->server && m->def->mode == MODE_HTTP)
                render_http(&o);
        if (m->def->mode == MODE_TCP && (m->server || m->client)) {
                render_ports(&o, m);
                render_udp(&o, m);
        }
        if (m->client) {
                histogram(&o, "inletsd_upstream_connect_seconds",
                          "Time to connect to an upstream (TCP; HTTP mode: TCP and TLS).", &m->upstream_connect);
                family(&o, "inletsd_upstream_connect_failures_total", "counter",
                       "Upstream connections that failed, by reason.");
                for (size_t i = 0; i < _UPSTREAM_FAILURE_MAX; i++)
                        sample(&o, "inletsd_upstream_connect_failures_total", "reason", upstream_failure_names[i],
                               m->upstream_failures[i]);
        }
        if (m->client) {
                uint64_t sessions, age;
                client_get_session(m->client, &sessions, &age);
                metric(&o, "inletsd_sessions_total", "counter",
                       "Sessions with the exit server established since start (1 + reconnects).", sessions);
                family(&o, "inletsd_session_age_seconds", "gauge", "Age of the current session (0: none).");
                fprintf(f, "inletsd_session_age_seconds{tunnel=\"");
                put_label(f, o.tunnel);
                fprintf(f, "\"} %.3f\n", (double) age / 1e6);
        }
        if (m->server) {
                uint64_t control, https;
                server_get_certificates(m->server, &control, &https);
                if (control > 0 || https > 0)
                        family(&o, "inletsd_certificate_not_after_seconds", "gauge",
                               "When the TLS certificate in service expires (Unix time): use=control for the "
                               "control port (auto-TLS or CertificateFile=), use=https for HTTPSListen= (ACME, "
                               "HTTPSCertificateFile= or the control port's).");
                if (control > 0)
                        sample(&o, "inletsd_certificate_not_after_seconds", "use", "control", control);
                if (https > 0)
                        sample(&o, "inletsd_certificate_not_after_seconds", "use", "https", https);
        }
        if (m->server || m->client) {
                ResumeCounters rc;
                manager_get_resume(m, &rc);
                metric(&o, "inletsd_resume_held_streams", "gauge",
                       "Connections of lost tunnel connections waiting now for the client to resume (ResumeSec=).",
                       rc.held_streams);
                metric(&o, "inletsd_resumed_sessions_total", "counter",
                       "Lost tunnel connections whose session the next connection resumed.", rc.resumed_sessions);
                metric(&o, "inletsd_resumed_streams_total", "counter",
                       "Connections that carried on in a resumed session.", rc.resumed_streams);
                metric(&o, "inletsd_resent_bytes_total", "counter",
                       "Bytes sent again after a resumption (what the peer had not received).", rc.resent_bytes);
                metric(&o, "inletsd_resume_expired_streams_total", "counter",
                       "Held connections closed because no resumption came in time.", rc.expired_streams);
        }
        if (m->def->role != ROLE_FILESERVER)
                render_refused(&o, m);
        render_process(&o, m);
        if (openmetrics)
                fputs("# EOF\n", f);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* ---- the HTTP side ---- */

static MetricsConn *conn_free(MetricsConn *c) {
        if (!c)
                return NULL;
        LIST_REMOVE(c->owner->conns, c);
        c->owner->n_conns--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->fd);
        free(c->out);
        free(c);
        return NULL;
}

/* Writes what the socket takes; the connection ends when all is out. */
static void conn_flush(MetricsConn *c) {
        while (c->out_pos < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EAGAIN) {
                        (void) sd_event_source_set_io_events(c->io, EPOLLOUT);
                        return;
                }
                if (n <= 0) {
                        conn_free(c);
                        return;
                }
                c->out_pos += (size_t) n;
        }
        (void) shutdown(c->fd, SHUT_WR);
        conn_free(c);
}

static void conn_answer(MetricsConn *c, unsigned status, const char *type, const char *body, size_t body_len,
                        bool head_only) {
        static const char *const reasons[] = { [200] = "OK", [400] = "Bad Request", [404] = "Not Found",
                                               [405] = "Method Not Allowed", [431] = "Request Header Fields Too Large",
                                               [500] = "Internal Server Error" };
        FILE *f = open_memstream(&c->out, &c->out_len);

        if (!f) {
                conn_free(c);
                return;
        }
        fprintf(f, "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                reasons[status], type, body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
        if (!head_only)
                fwrite(body, 1, body_len, f);
        if (fclose(f) != 0) {
                conn_free(c);
                return;
        }
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        conn_flush(c);
}

static void conn_error(MetricsConn *c, unsigned status, const char *text) {
        conn_answer(c, status, "text/plain; charset=utf-8", text, strlen(text), false);
}

static void conn_request(MetricsConn *c, size_t head_len) {
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        _cleanup_free_ char *body = NULL;
        const char *accept, *path;
        bool om, head;
        size_t len;

        if (http_head_parse(c->head, head_len, true, 64, &h) < 0)
                return conn_error(c, 400, "Malformed request.\n");
        head = streq(h->method, "HEAD");
        if (!streq(h->method, "GET") && !head)
                return conn_error(c, 405, "Only GET and HEAD.\n");
        path = h->url;
        if (strncmp(path, "/metrics", 8) != 0 || (path[8] != 0 && path[8] != '?'))
                return conn_error(c, 404, "Only /metrics is here.\n");
        accept = http_head_get(h, "accept");
        om = accept && strstr(accept, "application/openmetrics-text");
        if (metrics_render(c->owner->manager, om, &body, &len) < 0)
                return conn_error(c, 500, "Out of memory.\n");
        conn_answer(c, 200,
                    om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                       : "text/plain; version=0.0.4; charset=utf-8",
                    body, len, head);
}

static int conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        MetricsConn *c = userdata;
        ssize_t n, r;

        if (c->out) {
                conn_flush(c);
                return 0;
        }
        n = recv(c->fd, c->head + c->head_len, sizeof(c->head) - c->head_len, MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n <= 0) {
                conn_free(c);
                return 0;
        }
        c->head_len += (size_t) n;
        r = http_head_end(c->head, c->head_len, sizeof(c->head));
        if (r > 0)
                conn_request(c, (size_t) r);
        else if (r < 0 || c->head_len == sizeof(c->head))
                conn_error(c, 431, "The request head is too large.\n");
        return 0;
}

static int conn_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        conn_free(userdata); /* no request in time: closed without a word */
        return 0;
}

static int metrics_accept(int cfd, const SocketAddress *peer, void *userdata) {
        Metrics *x = userdata;
        MetricsConn *c;

        if (x->n_conns >= METRICS_CONNS_MAX) {
                MetricsConn *oldest = x->conns;
                while (oldest->next)
                        oldest = oldest->next;
                conn_free(oldest);
        }
        c = new0(MetricsConn, 1);
        if (!c) {
                safe_close(cfd);
                return -ENOMEM;
        }
        c->owner = x;
        c->fd = cfd;
        LIST_PREPEND(x->conns, c);
        x->n_conns++;
        if (sd_event_add_io(x->manager->event, &c->io, cfd, EPOLLIN, conn_io, c) < 0 ||
            sd_event_add_time_relative(x->manager->event, &c->timer, CLOCK_MONOTONIC,
                                       x->manager->def->handshake_timeout_usec, 0, conn_timeout, c) < 0) {
                conn_free(c);
                return 0;
        }
        (void) sd_event_source_set_description(c->io, "metrics-conn");
        (void) sd_event_source_set_description(c->timer, "metrics-conn-timer");
        return 0;
}

static int metrics_listen_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        accept_batch(fd, 16, metrics_accept, userdata);
        return 0;
}

Metrics *metrics_free(Metrics *x) {
        if (!x)
                return NULL;
        while (x->conns)
                conn_free(x->conns);
        sd_event_source_disable_unref(x->io);
        safe_close(x->fd);
        free(x);
        return NULL;
}

int metrics_new(Manager *m, const SocketAddress *address, int fd, Metrics **ret) {
        _cleanup_(metrics_freep) Metrics *x = NULL;
        int r;

        assert(m);
        assert(address || fd >= 0);
        assert(ret);

        x = new0(Metrics, 1);
        if (!x) {
                safe_close(fd);
                return -ENOMEM;
        }
        x->manager = m;
        x->fd = fd;
        if (x->fd < 0) {
                r = socket_listen_tcp(address, &x->fd);
                if (r < 0)
                        return r;
        }
        r = sd_event_add_io(m->event, &x->io, x->fd, EPOLLIN, metrics_listen_handler, x);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(x->io, "metrics-listen");
        *ret = TAKE_PTR(x);
        return 0;
}
