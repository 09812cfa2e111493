// SPDX-License-Identifier: LGPL-2.1-or-later
/* One tunnel's state and its JSON; see tunnel-info.h. */

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "string-util.h"
#include "tunnel-info.h"

const char *const tunnel_refused_reasons[REFUSED_REASONS] = { "allow-list", "control-allow-list", "proxy-header",
                                                              "client-allow-list" };

const char *const tunnel_resume_counters[RESUME_COUNTERS] = { "held-streams", "resumed-sessions",
                                                              "resumed-streams", "resent-bytes", "expired-streams" };

const char *const tunnel_udp_counters[UDP_COUNTERS] = { "flows", "flows-total", "datagrams-in", "datagrams-out",
                                                        "bytes-in", "bytes-out", "dropped-full", "dropped-size",
                                                        "dropped-no-flow", "dropped-error", "flows-evicted" };

uint64_t *tunnel_info_refused(TunnelInfo *t, size_t i) {
        uint64_t *const fields[REFUSED_REASONS] = { &t->refused_allow, &t->refused_control, &t->refused_proxy,
                                                    &t->refused_client };
        assert(i < REFUSED_REASONS);
        return fields[i];
}

static uint64_t refused_get(const TunnelInfo *t, size_t i) {
        const uint64_t fields[REFUSED_REASONS] = { t->refused_allow, t->refused_control, t->refused_proxy,
                                                   t->refused_client };
        assert(i < REFUSED_REASONS);
        return fields[i];
}

void tunnel_info_done(TunnelInfo *t) {
        free(t->name);
        free(t->role);
        free(t->mode);
        free(t->state);
        free(t->config);
        free(t->control);
        free(t->url);
        free(t->last_error);
        free(t->ports);
        free(t->udp_ports);
        strv_free(t->upstreams);
        strv_free(t->cert_names);
        for (size_t i = 0; i < t->n_clients; i++) {
                free(t->clients[i].id);
                free(t->clients[i].address);
        }
        free(t->clients);
        *t = (TunnelInfo) {};
}

static json_object *jstr(const char *s) {
        return json_object_new_string(s ?: "");
}

json_object *tunnel_info_json(const TunnelInfo *t) {
        json_object *o = json_object_new_object(), *a;

        json_object_object_add(o, "name", jstr(t->name));
        json_object_object_add(o, "role", jstr(t->role));
        json_object_object_add(o, "mode", jstr(t->mode));
        json_object_object_add(o, "state", jstr(t->state));
        json_object_object_add(o, "config_file", jstr(t->config));
        if (t->control && *t->control)
                json_object_object_add(o, "control_address", jstr(t->control));
        if (t->url && *t->url)
                json_object_object_add(o, "url", jstr(t->url));
        a = json_object_new_array();
        for (size_t i = 0; i < t->n_ports; i++)
                json_object_array_add(a, json_object_new_int(t->ports[i]));
        json_object_object_add(o, "ports", a);
        a = json_object_new_array();
        for (size_t i = 0; i < t->n_upstreams; i++)
                json_object_array_add(a, jstr(t->upstreams[i]));
        json_object_object_add(o, "upstreams", a);
        a = json_object_new_array();
        for (size_t i = 0; i < t->n_clients; i++) {
                json_object *c = json_object_new_object();
                json_object_object_add(c, "id", jstr(t->clients[i].id));
                json_object_object_add(c, "address", jstr(t->clients[i].address));
                json_object_object_add(c, "connected_since_usec", json_object_new_int64((int64_t) t->clients[i].since));
                json_object_object_add(c, "bytes_in", json_object_new_int64((int64_t) t->clients[i].bytes_in));
                json_object_object_add(c, "bytes_out", json_object_new_int64((int64_t) t->clients[i].bytes_out));
                json_object_object_add(c, "streams", json_object_new_int64(t->clients[i].streams));
                json_object_array_add(a, c);
        }
        json_object_object_add(o, "clients", a);
        json_object_object_add(o, "active_streams", json_object_new_int64(t->active_streams));
        json_object_object_add(o, "total_streams", json_object_new_int64((int64_t) t->total_streams));
        json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t) t->bytes_in));
        json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t) t->bytes_out));
        json_object_object_add(o, "started_at_usec", json_object_new_int64((int64_t) t->started_at));
        if (t->has_refused) {
                /* The reasons the daemon gave, no more (a client has fewer than a server). */
                json_object *c = json_object_new_object();
                for (size_t i = 0; i < REFUSED_REASONS; i++)
                        if (t->refused_keys & (1u << i))
                                json_object_object_add(c, tunnel_refused_reasons[i],
                                                       json_object_new_int64((int64_t) refused_get(t, i)));
                json_object_object_add(o, "refused", c);
        }
        if (t->has_resume) {
                json_object *c = json_object_new_object();
                for (size_t i = 0; i < RESUME_COUNTERS; i++)
                        json_object_object_add(c, tunnel_resume_counters[i], json_object_new_int64((int64_t) t->resume[i]));
                json_object_object_add(o, "resumption", c);
        }
        if (t->has_udp) {
                json_object *c = json_object_new_object();
                a = json_object_new_array();
                for (size_t i = 0; i < t->n_udp_ports; i++)
                        json_object_array_add(a, json_object_new_int(t->udp_ports[i]));
                json_object_object_add(c, "ports", a);
                for (size_t i = 0; i < UDP_COUNTERS; i++)
                        json_object_object_add(c, tunnel_udp_counters[i], json_object_new_int64((int64_t) t->udp[i]));
                json_object_object_add(o, "udp", c);
        }
        if (t->n_cert_names > 0) {
                json_object *c = json_object_new_object();
                a = json_object_new_array();
                for (size_t i = 0; i < t->n_cert_names; i++)
                        json_object_array_add(a, jstr(t->cert_names[i]));
                json_object_object_add(c, "names", a);
                json_object_object_add(c, "not_after_usec", json_object_new_int64((int64_t) t->cert_not_after));
                json_object_object_add(c, "renew_at_usec", json_object_new_int64((int64_t) t->cert_renew_at));
                json_object_object_add(o, "certificate", c);
        }
        json_object_object_add(o, "last_error", jstr(t->last_error));
        return o;
}

/* ---- reading it back ---- */

/* Optional members: absent is fine (0, NULL); present with the wrong type is not. */
static int get_string(json_object *o, const char *key, char **ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_u64(json_object *o, const char *key, uint64_t max, uint64_t *ret) {
        json_object *v;
        int64_t n;

        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return -EBADMSG;
        errno = 0;
        n = json_object_get_int64(v);
        if (errno != 0 || n < 0 || (uint64_t) n > max)
                return -EBADMSG;
        *ret = (uint64_t) n;
        return 0;
}

static int get_array(json_object *o, const char *key, json_object **ret, size_t *ret_n) {
        json_object *v;

        *ret = NULL;
        *ret_n = 0;
        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return -EBADMSG;
        *ret = v;
        *ret_n = json_object_array_length(v);
        return 0;
}

/* An array of ports (1-65535), if there is one. */
static int get_ports(json_object *o, const char *key, uint16_t **ret, size_t *ret_n) {
        json_object *a;
        size_t n;
        int r = get_array(o, key, &a, &n);

        if (r < 0 || n == 0)
                return r;
        *ret = calloc(n, sizeof(uint16_t));
        if (!*ret)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(a, i);
                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
                    json_object_get_int64(v) > 65535)
                        return -EBADMSG;
                (*ret)[(*ret_n)++] = (uint16_t) json_object_get_int64(v);
        }
        return 0;
}

static int get_strv(json_object *o, const char *key, char ***ret, size_t *ret_n) {
        json_object *a;
        size_t n;
        int r;

        r = get_array(o, key, &a, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                json_object *v = json_object_array_get_idx(a, i);
                if (!json_object_is_type(v, json_type_string))
                        return -EBADMSG;
                r = strv_push(ret, ret_n, strdup(json_object_get_string(v)));
        }
        return r;
}

static int read_clients(json_object *o, TunnelInfo *t) {
        json_object *a;
        size_t n;
        int r;

        r = get_array(o, "clients", &a, &n);
        if (r < 0 || n == 0)
                return r;
        t->clients = calloc(n, sizeof(ClientRow));
        if (!t->clients)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *c = json_object_array_get_idx(a, i);
                ClientRow *row = &t->clients[i];
                uint64_t streams = 0;

                if (!json_object_is_type(c, json_type_object))
                        return -EBADMSG;
                t->n_clients++;
                if ((r = get_string(c, "id", &row->id)) < 0 || (r = get_string(c, "address", &row->address)) < 0 ||
                    (r = get_u64(c, "connected_since_usec", INT64_MAX, &row->since)) < 0 ||
                    (r = get_u64(c, "bytes_in", INT64_MAX, &row->bytes_in)) < 0 ||
                    (r = get_u64(c, "bytes_out", INT64_MAX, &row->bytes_out)) < 0 ||
                    (r = get_u64(c, "streams", UINT32_MAX, &streams)) < 0)
                        return r;
                row->streams = (uint32_t) streams;
        }
        return 0;
}

static int read_object(json_object *o, TunnelInfo *t) {
        json_object *v;
        uint64_t u = 0;
        int r;

        if ((r = get_string(o, "name", &t->name)) < 0 || (r = get_string(o, "role", &t->role)) < 0 ||
            (r = get_string(o, "mode", &t->mode)) < 0 || (r = get_string(o, "state", &t->state)) < 0 ||
            (r = get_string(o, "config_file", &t->config)) < 0 ||
            (r = get_string(o, "control_address", &t->control)) < 0 || (r = get_string(o, "url", &t->url)) < 0 ||
            (r = get_string(o, "last_error", &t->last_error)) < 0)
                return r;
        r = get_ports(o, "ports", &t->ports, &t->n_ports);
        if (r < 0)
                return r;
        if ((r = get_strv(o, "upstreams", &t->upstreams, &t->n_upstreams)) < 0 || (r = read_clients(o, t)) < 0 ||
            (r = get_u64(o, "active_streams", UINT32_MAX, &u)) < 0 ||
            (r = get_u64(o, "total_streams", INT64_MAX, &t->total_streams)) < 0 ||
            (r = get_u64(o, "bytes_in", INT64_MAX, &t->bytes_in)) < 0 ||
            (r = get_u64(o, "bytes_out", INT64_MAX, &t->bytes_out)) < 0 ||
            (r = get_u64(o, "started_at_usec", INT64_MAX, &t->started_at)) < 0)
                return r;
        t->active_streams = (uint32_t) u;
        if (json_object_object_get_ex(o, "refused", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return -EBADMSG;
                t->has_refused = true;
                for (size_t i = 0; i < REFUSED_REASONS; i++) {
                        if (!json_object_object_get_ex(v, tunnel_refused_reasons[i], NULL))
                                continue;
                        r = get_u64(v, tunnel_refused_reasons[i], INT64_MAX, tunnel_info_refused(t, i));
                        if (r < 0)
                                return r;
                        t->refused_keys |= 1u << i;
                }
        }
        if (json_object_object_get_ex(o, "resumption", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return -EBADMSG;
                t->has_resume = true;
                for (size_t i = 0; i < RESUME_COUNTERS; i++) {
                        r = get_u64(v, tunnel_resume_counters[i], INT64_MAX, &t->resume[i]);
                        if (r < 0)
                                return r;
                }
        }
        if (json_object_object_get_ex(o, "udp", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return -EBADMSG;
                t->has_udp = true;
                for (size_t i = 0; i < UDP_COUNTERS; i++) {
                        r = get_u64(v, tunnel_udp_counters[i], INT64_MAX, &t->udp[i]);
                        if (r < 0)
                                return r;
                }
                r = get_ports(v, "ports", &t->udp_ports, &t->n_udp_ports);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "certificate", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return -EBADMSG;
                if ((r = get_strv(v, "names", &t->cert_names, &t->n_cert_names)) < 0 ||
                    (r = get_u64(v, "not_after_usec", INT64_MAX, &t->cert_not_after)) < 0 ||
                    (r = get_u64(v, "renew_at_usec", INT64_MAX, &t->cert_renew_at)) < 0)
                        return r;
        }
        if (!t->name || !t->role || !t->mode || !t->state)
                return -EBADMSG;
        return 0;
}

int tunnel_info_from_json(json_object *o, TunnelInfo *ret) {
        TunnelInfo t = {};
        int r;

        assert(ret);
        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        r = read_object(o, &t);
        if (r < 0) {
                tunnel_info_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}
