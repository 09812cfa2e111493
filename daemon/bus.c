// SPDX-License-Identifier: LGPL-2.1-or-later
/* The io.inletsd.Tunnel1 vtable and its getters, and nothing else. Reading is open to all;
 * Reload and DisconnectClient ask polkit. No secret is reachable from here: the token, keys
 * and TokenFile= contents are never properties. */

#include <assert.h>
#include <stdio.h>
#include <time.h>

#include "acmecert.h"
#include "bus-label.h"
#include "bus.h"
#include "log.h"
#include "macro.h"
#include "polkit.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"

static const char *string_property(Manager *m, const char *property, char buf[static SOCKADDR_STR_MAX]) {
        const Definition *d = m->def;

        if (streq(property, "Name"))
                return d->name ?: "";
        if (streq(property, "Role"))
                return role_to_string(d->role);
        if (streq(property, "Mode"))
                return mode_to_string(d->mode);
        if (streq(property, "State"))
                return tunnel_state_to_string(m->state);
        if (streq(property, "ConfigFile"))
                return m->config_path;
        if (streq(property, "ControlAddress"))
                return d->role == ROLE_SERVER ? socket_address_format(&d->control_listen, buf) : "";
        if (streq(property, "URL"))
                return d->role == ROLE_CLIENT ? d->url : "";
        if (streq(property, "LastError"))
                return m->last_error ?: "";
        return "";
}

static int get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        char buf[SOCKADDR_STR_MAX];

        return sd_bus_message_append(reply, "s", string_property(userdata, property, buf));
}

static int get_counter(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        TunnelCounters c;

        manager_get_counters(m, &c);
        if (streq(property, "ActiveStreams"))
                return sd_bus_message_append(reply, "u", c.active_streams);
        return sd_bus_message_append(reply, "t",
                                     streq(property, "BytesIn")    ? c.bytes_in
                                     : streq(property, "BytesOut") ? c.bytes_out
                                     : streq(property, "StartedAt") ? m->started_at
                                                                    : c.total_streams);
}

/* How many visitors each access list turned away, by reason: an exit server's lists, its
 * clients' own, PROXY headers; a tunnel client's own lists; empty for a fileserver. */
static int get_refused(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        RefusedCounters c;
        int r;

        manager_get_refused(m, &c);
        r = sd_bus_message_open_container(reply, 'a', "{st}");
        if (r >= 0 && m->def->role == ROLE_SERVER)
                r = sd_bus_message_append(reply, "{st}{st}{st}{st}", "allow-list", c.allow_list,
                                          "control-allow-list", c.control_allow_list, "proxy-header",
                                          c.proxy_header, "client-allow-list", c.client_allow_list);
        else if (r >= 0 && m->def->role == ROLE_CLIENT)
                r = sd_bus_message_append(reply, "{st}", "allow-list", c.allow_list);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* The tunnel's resumption counters (tunnel_resume_counters' names); none for a fileserver. */
static void resume_counters(Manager *m, uint64_t ret[static RESUME_COUNTERS]) {
        ResumeCounters rc;

        manager_get_resume(m, &rc);
        ret[0] = rc.held_streams;
        ret[1] = rc.resumed_sessions;
        ret[2] = rc.resumed_streams;
        ret[3] = rc.resent_bytes;
        ret[4] = rc.expired_streams;
}

static int get_resumption(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint64_t v[RESUME_COUNTERS];
        int r;

        resume_counters(m, v);
        r = sd_bus_message_open_container(reply, 'a', "{st}");
        for (size_t i = 0; r >= 0 && m->def->role != ROLE_FILESERVER && i < RESUME_COUNTERS; i++)
                r = sd_bus_message_append(reply, "{st}", tunnel_resume_counters[i], v[i]);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* UDP counters (tunnel_udp_counters' names). */
static void udp_counters(Manager *m, uint64_t ret[static UDP_COUNTERS]) {
        const UdpCounters *u = &m->udp;
        const uint64_t v[UDP_COUNTERS] = { u->flows, u->flows_total, u->datagrams_in, u->datagrams_out, u->bytes_in,
                                           u->bytes_out, u->dropped[UDP_DROP_FULL], u->dropped[UDP_DROP_SIZE],
                                           u->dropped[UDP_DROP_NO_FLOW], u->dropped[UDP_DROP_ERROR], u->evicted };
        memcpy(ret, v, sizeof(v));
}

static int get_udp(sd_bus *bus, const char *path, const char *interface, const char *property,
                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint64_t v[UDP_COUNTERS];
        int r;

        udp_counters(m, v);
        r = sd_bus_message_open_container(reply, 'a', "{st}");
        for (size_t i = 0; r >= 0 && m->def->role != ROLE_FILESERVER && i < UDP_COUNTERS; i++)
                r = sd_bus_message_append(reply, "{st}", tunnel_udp_counters[i], v[i]);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

typedef struct PortSet {
        uint16_t ports[1024];
        size_t n;
} PortSet;

static void port_set_add(PortSet *set, const uint16_t *ports, size_t n) {
        for (size_t i = 0; i < n; i++) {
                bool seen = false;
                for (size_t j = 0; j < set->n && !seen; j++)
                        seen = set->ports[j] == ports[i];
                if (!seen && set->n < ELEMENTSOF(set->ports))
                        set->ports[set->n++] = ports[i];
        }
}

static void collect_ports(const PeerInfo *p, void *userdata) {
        port_set_add(userdata, p->ports, p->n_ports);
}

static void collect_udp_ports(const PeerInfo *p, void *userdata) {
        port_set_add(userdata, p->udp_ports, p->n_udp_ports);
}

/* Server: the public ports open now (offered by some client); client: the ports it offers.
 * TCP ports, or UDP ones. */
static void tunnel_ports(Manager *m, bool udp, PortSet *set) {
        const PortMap *maps = udp ? m->def->udp_ports : m->def->ports;
        size_t n = udp ? m->def->n_udp_ports : m->def->n_ports;

        if (m->def->role == ROLE_CLIENT)
                for (size_t i = 0; i < n && set->n < ELEMENTSOF(set->ports); i++)
                        set->ports[set->n++] = maps[i].public_port;
        else
                manager_foreach_client(m, udp ? collect_udp_ports : collect_ports, set);
}

static int get_ports(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        PortSet set = {};
        int r;

        tunnel_ports(userdata, streq(property, "UDPPorts"), &set);
        r = sd_bus_message_open_container(reply, 'a', "q");
        for (size_t i = 0; i < set.n && r >= 0; i++)
                r = sd_bus_message_append(reply, "q", set.ports[i]);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* A tunnel client's upstreams: "PUBLIC=HOST:PORT" per port (TCP mode) or the Upstream= lines. */
static size_t n_upstreams(const Definition *d) {
        return d->role != ROLE_CLIENT ? 0 : d->mode == MODE_TCP ? d->n_ports : d->n_upstreams;
}

static const char *upstream_string(const Definition *d, size_t i, char buf[static 300]) {
        if (d->mode != MODE_TCP)
                return d->upstreams[i];
        const char *host = port_map_host(d, &d->ports[i]);

        snprintf(buf, 300, "%u=%s%s%s:%u", d->ports[i].public_port, strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", d->ports[i].upstream_port);
        return buf;
}

static int get_upstreams(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const Definition *d = m->def;
        char buf[300];
        int r = sd_bus_message_open_container(reply, 'a', "s");

        for (size_t i = 0; i < n_upstreams(d) && r >= 0; i++)
                r = sd_bus_message_append(reply, "s", upstream_string(d, i, buf));
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

typedef struct AppendState {
        sd_bus_message *reply;
        int r;
} AppendState;

static void append_client(const PeerInfo *p, void *userdata) {
        AppendState *a = userdata;
        if (a->r >= 0)
                a->r = sd_bus_message_append(a->reply, "(sstttu)", p->id, p->address, p->since_usec, p->bytes_in,
                                             p->bytes_out, p->streams);
}

static int get_clients(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        AppendState a = { reply, 0 };
        a.r = sd_bus_message_open_container(reply, 'a', "(sstttu)");
        if (a.r < 0)
                return a.r;
        manager_foreach_client(userdata, append_client, &a);
        if (a.r < 0)
                return a.r;
        return sd_bus_message_close_container(reply);
}

static void append_stream(const StreamInfo *s, void *userdata) {
        AppendState *a = userdata;
        if (a->r >= 0)
                a->r = sd_bus_message_append(a->reply, "(ussqttt)", s->id, s->client ?: "", s->peer ?: "", s->port,
                                             s->bytes_in, s->bytes_out, s->age_usec);
}

static int method_list_streams(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        AppendState a = {};
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        a.reply = reply;
        a.r = sd_bus_message_open_container(reply, 'a', "(ussqttt)");
        if (a.r >= 0)
                manager_foreach_stream(userdata, append_stream, &a);
        if (a.r < 0)
                return a.r;
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *err = NULL;
        int r;

        r = polkit_verify(m, msg, "io.inletsd.reload", error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_reload(m, &err);
        if (r < 0)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "%s", err ?: strerror(-r));
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_disconnect_client(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *id;
        int r;

        r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        r = polkit_verify(m, msg, "io.inletsd.manage", error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_disconnect_client(m, id);
        if (r < 0)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_CLIENT, "No client with id '%s'.", id);
        return sd_bus_reply_method_return(msg, NULL);
}

static int get_certificate(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        AcmeCert *acme = manager_acme(userdata);
        AcmeCertInfo i = {};
        int r;

        if (acme)
                acme_cert_get_info(acme, &i);
        if (streq(property, "CertificateNotAfter"))
                return sd_bus_message_append(reply, "t", i.not_after_usec);
        if (streq(property, "CertificateRenewAt"))
                return sd_bus_message_append(reply, "t", i.renew_at_usec);
        r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t k = 0; r >= 0 && k < i.n_names; k++)
                r = sd_bus_message_append(reply, "s", i.names[k]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int method_renew_certificate(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        if (!manager_acme(m))
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "This tunnel has no ACME certificate (ACMEDomain= is not set).");
        r = polkit_verify(m, msg, "io.inletsd.manage", error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = acme_cert_renew(manager_acme(m));
        if (r == -EBUSY)
                return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED, "A renewal is already in progress.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot start the ACME helper: %m");
        return sd_bus_reply_method_return(msg, NULL);
}

/* ---- the same, in one struct: GET /status on the control port ---- */

static void add_client_row(const PeerInfo *p, void *userdata) {
        TunnelInfo *t = userdata;
        ClientRow *row = &t->clients[t->n_clients];

        /* Counted first (below): more clients cannot have come meanwhile, the loop is ours. */
        *row = (ClientRow) { .id = strdup(p->id), .address = strdup(p->address), .since = p->since_usec,
                             .bytes_in = p->bytes_in, .bytes_out = p->bytes_out, .streams = p->streams };
        t->n_clients++;
}

static void count_client(const PeerInfo *p, void *userdata) {
        (*(size_t *) userdata)++;
}

int bus_tunnel_info(Manager *m, TunnelInfo *ret) {
        _cleanup_(tunnel_info_done) TunnelInfo t = {};
        char **strings[] = { &t.name, &t.role, &t.mode, &t.state, &t.config, &t.control, &t.url, &t.last_error };
        static const char *const names[] = { "Name", "Role", "Mode", "State", "ConfigFile", "ControlAddress", "URL",
                                             "LastError" };
        char buf[SOCKADDR_STR_MAX], ubuf[300];
        TunnelCounters c;
        RefusedCounters rc;
        PortSet set = {};
        size_t n = 0;

        assert(m);
        assert(ret);

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (!(*strings[i] = strdup(string_property(m, names[i], buf))))
                        return -ENOMEM;
        tunnel_ports(m, false, &set);
        if (set.n > 0) {
                t.ports = new0(uint16_t, set.n);
                if (!t.ports)
                        return -ENOMEM;
                memcpy(t.ports, set.ports, set.n * sizeof(uint16_t));
                t.n_ports = set.n;
        }
        if (m->def->role != ROLE_FILESERVER && m->def->mode == MODE_TCP) {
                PortSet udp = {};
                tunnel_ports(m, true, &udp);
                if (udp.n > 0) {
                        t.udp_ports = new0(uint16_t, udp.n);
                        if (!t.udp_ports)
                                return -ENOMEM;
                        memcpy(t.udp_ports, udp.ports, udp.n * sizeof(uint16_t));
                        t.n_udp_ports = udp.n;
                }
                t.has_udp = true;
                udp_counters(m, t.udp);
        }
        for (size_t i = 0; i < n_upstreams(m->def); i++)
                if (strv_push(&t.upstreams, &t.n_upstreams, strdup(upstream_string(m->def, i, ubuf))) < 0)
                        return -ENOMEM;
        manager_foreach_client(m, count_client, &n);
        if (n > 0 && !(t.clients = new0(ClientRow, n)))
                return -ENOMEM;
        if (n > 0)
                manager_foreach_client(m, add_client_row, &t);
        for (size_t i = 0; i < t.n_clients; i++)
                if (!t.clients[i].id || !t.clients[i].address)
                        return -ENOMEM;
        manager_get_counters(m, &c);
        t.active_streams = c.active_streams;
        t.total_streams = c.total_streams;
        t.bytes_in = c.bytes_in;
        t.bytes_out = c.bytes_out;
        t.started_at = m->started_at;
        manager_get_refused(m, &rc);
        if (m->def->role == ROLE_SERVER) {
                t.has_refused = true;
                t.refused_keys = 0xf;
                t.refused_allow = rc.allow_list;
                t.refused_control = rc.control_allow_list;
                t.refused_proxy = rc.proxy_header;
                t.refused_client = rc.client_allow_list;
        } else if (m->def->role == ROLE_CLIENT) {
                t.has_refused = true;
                t.refused_keys = 0x1;
                t.refused_allow = rc.allow_list;
        }
        if (m->def->role != ROLE_FILESERVER) {
                t.has_resume = true;
                resume_counters(m, t.resume);
        }
        if (manager_acme(m)) {
                AcmeCertInfo i = {};
                acme_cert_get_info(manager_acme(m), &i);
                for (size_t k = 0; k < i.n_names; k++)
                        if (strv_push(&t.cert_names, &t.n_cert_names, strdup(i.names[k])) < 0)
                                return -ENOMEM;
                t.cert_not_after = i.not_after_usec;
                t.cert_renew_at = i.renew_at_usec;
        }
        *ret = t;
        t = (TunnelInfo) {};
        return 0;
}

static const sd_bus_vtable tunnel_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Role", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Mode", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ConfigFile", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ControlAddress", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("URL", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Ports", "aq", get_ports, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Upstreams", "as", get_upstreams, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Clients", "a(sstttu)", get_clients, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ActiveStreams", "u", get_counter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TotalStreams", "t", get_counter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesIn", "t", get_counter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesOut", "t", get_counter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Refused", "a{st}", get_refused, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Resumption", "a{st}", get_resumption, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UDPPorts", "aq", get_ports, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UDP", "a{st}", get_udp, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastError", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StartedAt", "t", get_counter, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("CertificateNames", "as", get_certificate, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CertificateNotAfter", "t", get_certificate, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CertificateRenewAt", "t", get_certificate, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DisconnectClient", SD_BUS_ARGS("s", id), SD_BUS_NO_RESULT,
                                method_disconnect_client, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListStreams", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ussqttt)", streams),
                                method_list_streams, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RenewCertificate", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_renew_certificate,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("ClientConnected", SD_BUS_ARGS("s", id, "s", address), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ClientDisconnected", SD_BUS_ARGS("s", id, "s", reason), 0),
        SD_BUS_SIGNAL("Reloaded", "", 0),
        SD_BUS_VTABLE_END
};

/* Counters change with every byte (or refused visitor); they are announced at most once a
 * second. */
static int on_counter_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        TunnelCounters c;
        RefusedCounters rc;

        manager_get_counters(m, &c);
        if (memcmp(&c, &m->emitted, sizeof(c)) != 0) {
                m->emitted = c;
                (void) sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "BytesIn", "BytesOut",
                                                      "ActiveStreams", "TotalStreams", NULL);
        }
        /* A flood of refused visitors is one signal a second, not one per visitor. */
        manager_get_refused(m, &rc);
        if (memcmp(&rc, &m->emitted_refused, sizeof(rc)) != 0) {
                m->emitted_refused = rc;
                (void) sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "Refused", NULL);
        }
        uint64_t rv[RESUME_COUNTERS];
        resume_counters(m, rv);
        if (memcmp(rv, m->emitted_resume, sizeof(rv)) != 0) {
                memcpy(m->emitted_resume, rv, sizeof(rv));
                (void) sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "Resumption", NULL);
        }
        uint64_t uv[UDP_COUNTERS];
        udp_counters(m, uv);
        if (memcmp(uv, m->emitted_udp, sizeof(uv)) != 0) {
                memcpy(m->emitted_udp, uv, sizeof(uv));
                (void) sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "UDP", NULL);
        }
        (void) sd_event_source_set_time_relative(s, USEC_PER_SEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

int bus_setup(Manager *m) {
        _cleanup_free_ char *label = NULL;
        int r;

        assert(m);
        assert(!m->bus);
        if (m->bus_mode == BUS_NONE)
                return 0;
        r = m->bus_mode == BUS_USER ? sd_bus_open_user(&m->bus) : sd_bus_open_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m (use --no-bus to run without it)",
                                       m->bus_mode == BUS_USER ? "user" : "system");
        r = sd_bus_add_object_vtable(m->bus, NULL, BUS_PATH, BUS_INTERFACE, tunnel_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the D-Bus object: %m");
        label = bus_label_escape(m->def->name ?: "tunnel");
        if (!label || asprintf(&m->bus_name, BUS_NAME_PREFIX "%s", label) < 0)
                return log_oom();
        r = sd_bus_request_name(m->bus, m->bus_name, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Bus name %s is taken: is tunnel '%s' already running?", m->bus_name,
                                       m->def->name);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire bus name %s: %m", m->bus_name);
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_event_add_time_relative(m->event, &m->counter_timer, CLOCK_MONOTONIC, USEC_PER_SEC, 0,
                                       on_counter_timer, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->counter_timer, "bus-counters");
        (void) sd_event_source_set_enabled(m->counter_timer, SD_EVENT_ON);
        log_debug("On the %s bus as %s.", m->bus_mode == BUS_USER ? "user" : "system", m->bus_name);
        return 0;
}
