// SPDX-License-Identifier: LGPL-2.1-or-later
/* Finding running tunnels on the bus and reading their properties; see ctl.h. */

#include <stddef.h>
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "bus-label.h"
#include "ctl.h"
#include "macro.h"
#include "string-util.h"
#include "time-util.h"

#define BUS_PATH "/io/inletsd/Tunnel"
#define BUS_INTERFACE "io.inletsd.Tunnel1"
#define BUS_NAME_PREFIX "io.inletsd.Tunnel."

int ctl_bus(sd_bus **ret) {
        int r;

        assert(ret);

        r = arg.user ? sd_bus_open_user(ret) : sd_bus_open_system(ret);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the %s bus: %s\n", arg.user ? "user" : "system", strerror(-r));
                return r;
        }
        /* polkit may ask the human at the terminal. */
        (void) sd_bus_set_allow_interactive_authorization(*ret, isatty(STDIN_FILENO));
        return 0;
}

char *ctl_bus_name(const char *name) {
        _cleanup_free_ char *label = bus_label_escape(name);
        char *s;
        if (!label || asprintf(&s, BUS_NAME_PREFIX "%s", label) < 0)
                return NULL;
        return s;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int ctl_list_names(sd_bus *bus, char ***ret, size_t *ret_n) {
        _cleanup_strv_free_ char **acquired = NULL, **names = NULL;
        size_t n = 0;
        int r;

        assert(bus);
        assert(ret);
        assert(ret_n);

        r = sd_bus_list_names(bus, &acquired, NULL);
        if (r < 0)
                return r;
        for (char **i = acquired; i && *i; i++)
                if (strncmp(*i, BUS_NAME_PREFIX, strlen(BUS_NAME_PREFIX)) == 0) {
                        char *u = bus_label_unescape(*i + strlen(BUS_NAME_PREFIX));
                        if (!u || strv_push(&names, &n, u) < 0)
                                return -ENOMEM;
                }
        if (n > 0)
                qsort(names, n, sizeof(char *), cmp_str);
        *ret = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

int ctl_running_names(sd_bus *bus, char ***ret, size_t *ret_n) {
        int r = ctl_list_names(bus, ret, ret_n);
        if (r < 0)
                fprintf(stderr, "Failed to list bus names: %s\n", strerror(-r));
        return r;
}

static int read_clients(sd_bus_message *reply, TunnelInfo *t) {
        const char *id, *address;
        uint64_t since, in, out;
        uint32_t streams;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(sstttu)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sstttu)", &id, &address, &since, &in, &out,
                                                  &streams)) > 0) {
                ClientRow *c = realloc(t->clients, sizeof(ClientRow) * (t->n_clients + 1));
                if (!c)
                        return -ENOMEM;
                t->clients = c;
                t->clients[t->n_clients++] = (ClientRow) { strdup(id), strdup(address), since, in, out,
                                                           streams };
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r;
}

/* Refused (a{st}): the reasons this inletsctl knows; others are skipped. */
static int read_refused(sd_bus_message *reply, TunnelInfo *t) {
        const char *reason;
        uint64_t n;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{st}");
        while (r >= 0 && (r = sd_bus_message_read(reply, "{st}", &reason, &n)) > 0) {
                t->has_refused = true;
                for (size_t i = 0; i < REFUSED_REASONS; i++)
                        if (streq(reason, tunnel_refused_reasons[i])) {
                                *tunnel_info_refused(t, i) = n;
                                t->refused_keys |= 1u << i;
                        }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r;
}

/* Resumption (a{st}): the counters this inletsctl knows. */
static int read_resumption(sd_bus_message *reply, TunnelInfo *t) {
        const char *name;
        uint64_t n;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{st}");
        while (r >= 0 && (r = sd_bus_message_read(reply, "{st}", &name, &n)) > 0)
                for (size_t i = 0; i < RESUME_COUNTERS; i++)
                        if (streq(name, tunnel_resume_counters[i])) {
                                t->resume[i] = n;
                                t->has_resume = true;
                        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r;
}

/* UDP (a{st}): the counters this inletsctl knows. */
static int read_udp(sd_bus_message *reply, TunnelInfo *t) {
        const char *name;
        uint64_t n;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{st}");
        while (r >= 0 && (r = sd_bus_message_read(reply, "{st}", &name, &n)) > 0)
                for (size_t i = 0; i < UDP_COUNTERS; i++)
                        if (streq(name, tunnel_udp_counters[i])) {
                                t->udp[i] = n;
                                t->has_udp = true;
                        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r;
}

/* The value of property prop (D-Bus signature contents) into its field of t; unknown ones are
 * skipped, so that a newer daemon's properties do not trouble an older inletsctl. */
static int read_property(sd_bus_message *reply, const char *prop, const char *contents, TunnelInfo *t) {
        int r;

        if (streq(contents, "s")) {
                char **dst = streq(prop, "Name")             ? &t->name
                             : streq(prop, "Role")           ? &t->role
                             : streq(prop, "Mode")           ? &t->mode
                             : streq(prop, "State")          ? &t->state
                             : streq(prop, "ConfigFile")     ? &t->config
                             : streq(prop, "ControlAddress") ? &t->control
                             : streq(prop, "URL")            ? &t->url
                             : streq(prop, "LastError")      ? &t->last_error
                                                             : NULL;
                const char *v;
                r = sd_bus_message_read(reply, "s", &v);
                if (r >= 0 && dst)
                        *dst = strdup(v);
        } else if (streq(prop, "Ports") || streq(prop, "UDPPorts")) {
                bool udp = prop[0] == 'U';
                uint16_t **dst = udp ? &t->udp_ports : &t->ports;
                const void *p;
                size_t n;
                r = sd_bus_message_read_array(reply, 'q', &p, &n);
                if (r >= 0 && n > 0 && (*dst = malloc(n))) {
                        memcpy(*dst, p, n);
                        *(udp ? &t->n_udp_ports : &t->n_ports) = n / sizeof(uint16_t);
                }
        } else if (streq(prop, "Upstreams")) {
                r = sd_bus_message_read_strv(reply, &t->upstreams);
                for (char **i = t->upstreams; r >= 0 && i && *i; i++)
                        t->n_upstreams++;
        } else if (streq(prop, "CertificateNames")) {
                r = sd_bus_message_read_strv(reply, &t->cert_names);
                for (char **i = t->cert_names; r >= 0 && i && *i; i++)
                        t->n_cert_names++;
        } else if (streq(prop, "Clients"))
                r = read_clients(reply, t);
        else if (streq(prop, "Refused") && streq(contents, "a{st}"))
                r = read_refused(reply, t);
        else if (streq(prop, "Resumption") && streq(contents, "a{st}"))
                r = read_resumption(reply, t);
        else if (streq(prop, "UDP") && streq(contents, "a{st}"))
                r = read_udp(reply, t);
        else if (streq(contents, "t")) {
                uint64_t v;
                r = sd_bus_message_read(reply, "t", &v);
                if (streq(prop, "TotalStreams"))
                        t->total_streams = v;
                else if (streq(prop, "BytesIn"))
                        t->bytes_in = v;
                else if (streq(prop, "BytesOut"))
                        t->bytes_out = v;
                else if (streq(prop, "StartedAt"))
                        t->started_at = v;
                else if (streq(prop, "CertificateNotAfter"))
                        t->cert_not_after = v;
                else if (streq(prop, "CertificateRenewAt"))
                        t->cert_renew_at = v;
        } else if (streq(contents, "u"))
                r = sd_bus_message_read(reply, "u", &t->active_streams);
        else
                r = sd_bus_message_skip(reply, contents);
        return r;
}

int ctl_tunnel_info(sd_bus *bus, const char *name, TunnelInfo *t, sd_bus_error *error) {
        _cleanup_free_ char *dest = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        assert(bus);
        assert(name);
        assert(t);

        *t = (TunnelInfo) {};
        dest = ctl_bus_name(name);
        if (!dest)
                return -ENOMEM;
        /* One GetAll: a consistent snapshot, one round trip. */
        r = sd_bus_call_method(bus, dest, BUS_PATH, "org.freedesktop.DBus.Properties", "GetAll", error, &reply, "s",
                               BUS_INTERFACE);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *prop, *contents;
                char type;

                r = sd_bus_message_read(reply, "s", &prop);
                if (r < 0)
                        break;
                r = sd_bus_message_peek_type(reply, &type, &contents);
                if (r < 0)
                        break;
                r = sd_bus_message_enter_container(reply, 'v', contents);
                if (r < 0)
                        break;
                r = read_property(reply, prop, contents, t);
                if (r < 0)
                        break;
                r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return r;
        if (!t->name)
                t->name = strdup(name);
        return 0;
}

void json_print(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

int ctl_error(const char *name, const sd_bus_error *error, int r) {
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                fprintf(stderr, "Tunnel '%s' is not running.\n", name);
                return EXIT_NOT_RUNNING;
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_ACCESS_DENIED,
                                   SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED)) {
                fprintf(stderr, "Permission denied: %s\n", error->message ?: error->name);
                return EXIT_DENIED;
        }
        if (error && error->message)
                fprintf(stderr, "%s\n", error->message);
        else
                fprintf(stderr, "Failed on tunnel '%s': %s\n", name, strerror(-r));
        return EXIT_ERROR;
}

void format_bytes(uint64_t b, char buf[static 16]) {
        static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double) b;
        size_t i = 0;
        while (v >= 1024 && i + 1 < ELEMENTSOF(u)) {
                v /= 1024;
                i++;
        }
        if (i == 0)
                snprintf(buf, 16, "%" PRIu64 " B", b);
        else
                snprintf(buf, 16, "%.1f %s", v, u[i]);
}

void format_timestamp(uint64_t usec, char buf[static 64]) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        strftime(buf, 64, "%a %Y-%m-%d %H:%M:%S %Z", localtime_r(&t, &tm));
}

void format_age(uint64_t usec, char buf[static 32]) {
        uint64_t s = usec / USEC_PER_SEC;
        if (s < 60)
                snprintf(buf, 32, "%" PRIu64 "s", s);
        else if (s < 3600)
                snprintf(buf, 32, "%" PRIu64 "min %" PRIu64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, 32, "%" PRIu64 "h %" PRIu64 "min", s / 3600, s / 60 % 60);
        else
                snprintf(buf, 32, "%" PRIu64 " days %" PRIu64 "h", s / 86400, s / 3600 % 24);
}
