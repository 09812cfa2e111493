// SPDX-License-Identifier: LGPL-2.1-or-later
/* The public HTTP port of an exit server in HTTP mode; see httpfront.h. This file holds the
 * listener and what both protocols share: routing by Host and the forwarded fields. Each
 * connection is HTTP/1.x (h1front.c) until ALPN chooses h2 (h2front.c). */

#include <assert.h>
#include <stdio.h>
#include <strings.h>

#include "access.h"
#include "httpfront-internal.h"
#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"

/* ---- shared by the HTTP/1.1 side (h1front.c) and the HTTP/2 side (h2front.c) ---- */

const Definition *http_front_def(HttpFront *f) {
        return f->manager->def;
}

sd_event *http_front_event(HttpFront *f) {
        return f->manager->event;
}

void http_front_count_request(HttpFront *f) {
        f->requests++;
}

void http_front_count_conn(HttpFront *f, bool open) {
        assert(f);
        assert(open || f->n_conns > 0);

        if (open)
                f->n_conns++;
        else
                f->n_conns--;
}

static const char *forwarded_for(const char *ip, char *buf, size_t size) {
        /* RFC 7239: IPv6 addresses quoted and bracketed. */
        if (strchr(ip, ':'))
                snprintf(buf, size, "\"[%s]\"", ip);
        else
                snprintf(buf, size, "%s", ip);
        return buf;
}

/* A port after the host: 1-65535, digits only, nothing after it. */
static bool port_is_valid(const char *p) {
        unsigned v = 0;
        size_t n = strspn(p, "0123456789");

        if (n == 0 || n > 5 || p[n] != 0)
                return false;
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (unsigned) (p[i] - '0');
        return v >= 1 && v <= 65535;
}

/* host: the Host value without its port, lower case, checked. Only host[:port] and
 * [v6][:port]: anything else ("a.test:1@evil:80") would be routed by one part and passed on
 * (X-Forwarded-Host, Forwarded) whole. */
int http_front_normalize_host(const char *authority, char *ret, size_t size) {
        size_t n;

        if (authority[0] == '[') {
                const char *e = strchr(authority, ']');
                if (!e)
                        return -EINVAL;
                n = (size_t) (e - authority + 1);
        } else
                n = strcspn(authority, ":");
        if (n == 0 || n >= size)
                return -EINVAL;
        if (authority[n] != 0 && (authority[n] != ':' || !port_is_valid(authority + n + 1)))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                ret[i] = ascii_tolower(authority[i]);
        ret[n] = 0;
        /* "app.example.com." is the same name: one form, so that access rules and routing
         * cannot be walked around with the trailing dot; empty labels are no name at all. */
        if (ret[0] != '[' && n > 1 && ret[n - 1] == '.')
                ret[--n] = 0;
        if (ret[0] != '[' && (!hostname_is_valid(ret) || strstr(ret, "..") || ret[n - 1] == '.'))
                return -EINVAL;
        if (ret[0] == '[' && (n < 4 || strspn(ret + 1, "0123456789abcdef:.") != n - 2))
                return -EINVAL;
        return 0;
}

/* ---- request counts ---- */

static HttpStats stats = { .hosts = { { .host = "-" }, { .host = "*" } }, .n_hosts = 2 };

const char *const http_stats_methods[HTTP_STATS_METHODS] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                                             "OPTIONS", "other" };

const HttpStats *http_stats(void) {
        return &stats;
}

void http_req_stat_begin(HttpReqStat *r, const char *method) {
        assert(r);
        r->started = now_usec();
        r->slot = 0;
        r->method = HTTP_STATS_METHODS - 1;
        for (uint8_t i = 0; method && i < HTTP_STATS_METHODS - 1; i++)
                if (streq(method, http_stats_methods[i]))
                        r->method = i;
}

/* The slot of a routed host: its own when a client names it (hosts a visitor cannot invent),
 * "*" for a client that serves any host or when the table is full. */
static uint8_t stat_slot(const char *host, bool exact) {
        if (!exact)
                return 1;
        for (size_t i = 2; i < stats.n_hosts; i++)
                if (streq(stats.hosts[i].host, host))
                        return (uint8_t) i;
        if (stats.n_hosts == HTTP_STATS_HOSTS)
                return 1;
        snprintf(stats.hosts[stats.n_hosts].host, sizeof(stats.hosts[0].host), "%s", host);
        return (uint8_t) stats.n_hosts++;
}

void http_req_stat_open(const HttpReqStat *r) {
        assert(r);
        stats.hosts[r->slot].active++;
}

void http_req_stat_bytes(const HttpReqStat *r, MuxStream *s) {
        uint64_t in, out;

        assert(r);
        assert(s);
        if (stats.hosts[r->slot].active > 0)
                stats.hosts[r->slot].active--;
        mux_stream_get(s, &in, &out, NULL);
        stats.hosts[r->slot].bytes_in += in;
        stats.hosts[r->slot].bytes_out += out;
}

void http_req_stat_end(HttpReqStat *r, unsigned status) {
        assert(r);
        if (r->started == 0)
                return;
        if (status >= 100 && status < 600)
                stats.hosts[r->slot].n[r->method][status / 100 - 1]++;
        histogram_add(&stats.response, now_usec() - r->started);
        r->started = 0;
}

Mux *http_front_route(HttpFront *f, const char *authority, const SocketAddress *peer, unsigned *ret_status,
                      char host[static 256], HttpReqStat *stat) {
        bool refused, exact;
        Mux *m;

        assert(f);
        assert(authority);
        assert(peer);
        assert(ret_status);

        host[0] = 0;
        if (http_front_normalize_host(authority, host, 256) < 0) {
                *ret_status = 400;
                return NULL;
        }
        /* Before routing: a refused visitor learns nothing of which hosts are served. The
         * definition is read now, so a reload applies to the next request. */
        if (!access_list_allows(&http_front_def(f)->access, host, peer)) {
                f->refused++;
                if (ratelimit_below(&f->refused_log)) {
                        char buf[SOCKADDR_STR_MAX];
                        socket_address_format(peer, buf);
                        log_conn(LOG_INFO, NULL, buf, 0, "HTTP %s: refused %s (AllowFrom=/DenyFrom=).", host,
                                 buf);
                }
                *ret_status = 403;
                return NULL;
        }
        m = f->route(host, peer, &refused, &exact, f->userdata);
        *ret_status = m ? 0 : refused ? 403 : 502;
        if (m && stat)
                stat->slot = stat_slot(host, exact);
        return m;
}

/* Names as CGI and WSGI see them: without case, '_' the same as '-' (X_Real_IP arrives as
 * HTTP_X_REAL_IP, just like X-Real-IP). */
static bool name_is(const char *name, const char *canonical) {
        for (; *name && *canonical; name++, canonical++) {
                char a = *name == '_' ? '-' : ascii_tolower(*name), b = ascii_tolower(*canonical);
                if (a != b)
                        return false;
        }
        return *name == *canonical;
}

static bool name_starts(const char *name, const char *prefix) {
        size_t n = strlen(prefix);
        _cleanup_free_ char *head = strndup(name, n);

        return head && strlen(head) == n && name_is(head, prefix);
}

static bool client_address_field(const char *name) {
        static const char *const fields[] = {
                "X-Real-IP", "True-Client-IP", "X-Client-IP", "Client-IP", "X-Cluster-Client-IP",
                "CF-Connecting-IP", "Fastly-Client-IP", "Fly-Client-IP", "X-Original-Forwarded-For",
                "X-Forwarded", "Forwarded-For", "X-Envoy-External-Address", "X-ProxyUser-Ip",
        };

        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (name_is(name, fields[i]))
                        return true;
        return false;
}

int http_forward_fields(HttpHead *t, const HttpHead *h, const char *peer, const char *peer_ip, const char *local,
                        const char *scheme, bool keep_forwarded) {
        _cleanup_free_ char *xff = NULL, *fwd = NULL;
        const char *prev_xff = NULL, *prev_fwd = NULL;
        char fbuf[INET6_ADDRSTRLEN + 8];
        int r;

        assert(t);
        assert(t->authority);
        assert(h);
        assert(peer_ip);
        assert(scheme);

        for (size_t i = 0; i < h->n_headers; i++) {
                const char *name = h->headers[i].name;
                if (name_is(name, "X-Forwarded-For")) {
                        if (keep_forwarded && strcasecmp(name, "X-Forwarded-For") == 0)
                                prev_xff = h->headers[i].value;
                        continue;
                }
                if (name_is(name, "Forwarded")) {
                        if (keep_forwarded)
                                prev_fwd = h->headers[i].value;
                        continue;
                }
                /* Other names for the client's address that upstreams (nginx's real_ip, PHP
                 * apps) believe: only a trusted balancer may pass them on. */
                if (!keep_forwarded && client_address_field(name))
                        continue;
                /* Ours to set: what the public side claims about itself is not trusted. */
                if (name_starts(name, "x-inlets-") ||
                    name_is(name, "X-Forwarded-Proto") || name_is(name, "X-Forwarded-Host") ||
                    strcasecmp(name, "Expect") == 0 || strcasecmp(name, "Content-Length") == 0)
                        continue;
                if (http_header_is_hop_by_hop(h, name) &&
                    !(strcasecmp(name, "TE") == 0 && http_header_has_token(h->headers[i].value, "trailers")))
                        continue;
                r = http_head_add(t, name, strlen(name), strcasecmp(name, "TE") == 0 ? "trailers" : h->headers[i].value,
                                  strcasecmp(name, "TE") == 0 ? 8 : strlen(h->headers[i].value));
                if (r < 0)
                        return r;
        }
        xff = prev_xff ? asprintf_safe("%s, %s", prev_xff, peer_ip) : strdup(peer_ip);
        fwd = asprintf_safe("%s%sfor=%s;host=\"%s\";proto=%s", prev_fwd ?: "", prev_fwd ? ", " : "",
                            forwarded_for(peer_ip, fbuf, sizeof(fbuf)), t->authority, scheme);
        if (!xff || !fwd)
                return -ENOMEM;
        if (http_head_add(t, "X-Forwarded-For", 15, xff, strlen(xff)) < 0 ||
            http_head_add(t, "X-Forwarded-Proto", 17, scheme, strlen(scheme)) < 0 ||
            http_head_add(t, "X-Forwarded-Host", 16, t->authority, strlen(t->authority)) < 0 ||
            http_head_add(t, "Forwarded", 9, fwd, strlen(fwd)) < 0 ||
            http_head_add(t, "x-inlets-peer", 13, peer, strlen(peer)) < 0 ||
            (*local && http_head_add(t, "x-inlets-local", 14, local, strlen(local)) < 0))
                return -ENOMEM;
        return 0;
}


/* Every connection starts as HTTP/1.x (h1front.c) and may move to HTTP/2 after ALPN. */
static int listen_handler(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        HttpFront *f = userdata;

        accept_batch(fd, 64, proxy_gate_accept, &f->gate);
        return 0;
}

HttpFront *http_front_free(HttpFront *f) {
        if (!f)
                return NULL;
        proxy_gate_done(&f->gate);
        h1_conns_free(&f->conns);
        h2_conns_free(&f->h2conns);
        sd_event_source_disable_unref(f->io);
        safe_close(f->fd);
        free(f->acme_thumbprint);
        free(f);
        return NULL;
}

int http_front_new(Manager *m, int listen_fd, gnutls_certificate_credentials_t creds, HttpRouteFunc route,
                   void *userdata, HttpFront **ret) {
        _cleanup_(http_front_freep) HttpFront *f = NULL;
        int r;

        assert(m);
        assert(listen_fd >= 0);
        assert(route);
        assert(ret);

        f = malloc(sizeof(*f));
        if (!f) {
                safe_close(listen_fd);
                return -ENOMEM;
        }
        *f = (HttpFront) {
                .manager = m,
                .fd = listen_fd,
                .creds = creds,
                .route = route,
                .userdata = userdata,
                .refused_log = { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 },
        };
        proxy_gate_init(&f->gate, m, creds ? "HTTPS port" : "HTTP port", false, &f->refused_proxy, h1_conn_accept,
                        f);
        r = sd_event_add_io(m->event, &f->io, listen_fd, EPOLLIN, listen_handler, f);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(f->io, creds ? "https-front-listen" : "http-front-listen");
        *ret = TAKE_PTR(f);
        return 0;
}

void http_front_stop(HttpFront *f) {
        assert(f);

        f->io = sd_event_source_disable_unref(f->io);
        f->fd = safe_close(f->fd);
        proxy_gate_done(&f->gate);
}

void http_front_set_acme(HttpFront *f, const char *thumbprint, uint16_t https_port) {
        assert(f);

        free(f->acme_thumbprint);
        f->acme_thumbprint = thumbprint ? strdup(thumbprint) : NULL;
        f->https_port = https_port;
}

void http_front_set_credentials(HttpFront *f, gnutls_certificate_credentials_t creds) {
        assert(f);

        f->creds = creds;
}

uint64_t http_front_requests(HttpFront *f) {
        return f ? f->requests : 0;
}

void http_front_add_refused(HttpFront *f, RefusedCounters *c) {
        assert(c);
        if (!f)
                return;
        c->allow_list += f->refused;
        c->proxy_header += f->refused_proxy;
}
