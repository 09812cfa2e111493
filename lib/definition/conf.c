// SPDX-License-Identifier: LGPL-2.1-or-later
/* A definition's life: created, read from NAME.conf and its drop-ins (the keys: conf-keys.c),
 * checked (conf-check.c), freed. */

#include <arpa/inet.h>
#include <assert.h>
#include <strings.h>
#include <dirent.h>
#include <stdio.h>

#include "conf.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "string-table.h"
#include "string-util.h"

static const char *const role_table[_ROLE_MAX] = {
        [ROLE_SERVER] = "server", [ROLE_CLIENT] = "client", [ROLE_FILESERVER] = "fileserver",
};
static const char *const mode_table[_MODE_MAX] = { [MODE_TCP] = "tcp", [MODE_HTTP] = "http" };

DEFINE_STRING_TABLE_LOOKUP(role, Role);
DEFINE_STRING_TABLE_LOOKUP(mode, Mode);

Definition *definition_new(const char *name, const char *path) {
        Definition *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->role = _ROLE_INVALID;
        d->mode = _MODE_INVALID;
        d->tls = -1;
        d->auto_tls = -1;
        d->allow_browsing = -1;
        d->basic_auth = -1;
        d->allow_hidden = -1;
        d->log_level = -1;
        d->resume_usec = UINT64_MAX; /* unset: the default */
        d->proxy_protocol = _PROXY_PROTOCOL_INVALID;
        d->name = name ? strdup(name) : NULL;
        d->path = path ? strdup(path) : NULL;
        if ((name && !d->name) || (path && !d->path))
                return definition_free(d);
        return d;
}

Definition *definition_free(Definition *d) {
        if (!d)
                return NULL;
        free(d->name);
        free(d->path);
        erase_and_free(d->token);
        free(d->token_file);
        strv_free(d->auto_tls_san);
        strv_free(d->acme_domains);
        free(d->acme_email);
        free(d->acme_directory);
        free(d->acme_ca_file);
        free(d->certificate_file);
        free(d->https_certificate_file);
        free(d->https_key_file);
        free(d->key_file);
        free(d->state_directory);
        free(d->allow_ports);
        free(d->allow_udp_ports);
        access_list_done(&d->access);
        access_list_done(&d->control_access);
        access_list_done(&d->accept_proxy);
        http_rules_done(&d->http_rules);
        access_list_done(&d->control_accept_proxy);
        free(d->url);
        free(d->ca_file);
        free(d->upstream_ca_file);
        strv_free(d->upstreams);
        for (size_t i = 0; i < d->n_ports; i++)
                free(d->ports[i].host);
        free(d->ports);
        for (size_t i = 0; i < d->n_udp_ports; i++)
                free(d->udp_ports[i].host);
        free(d->udp_ports);
        free(d->proxy_protocol_ports);
        for (size_t i = 0; i < d->n_local_forwards; i++)
                free(d->local_forwards[i].host);
        free(d->local_forwards);
        for (size_t i = 0; i < d->n_allow_forward_to; i++)
                free(d->allow_forward_to[i].host);
        free(d->allow_forward_to);
        erase_and_free(d->proxy);
        free(d->proxy_password_file);
        proxy_url_done(&d->proxy_url);
        free(d->client_id);
        free(d->webroot);
        free(d);
        return NULL;
}

static int parse_file(Definition *d, const char *path, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, CONF_FILE_MAX, &data, &size);
        if (r == -EFBIG)
                return errorf(ret_error, r, "%s: file larger than %u bytes", path, CONF_FILE_MAX);
        if (r < 0)
                return errorf(ret_error, r, "%s: %s", path, strerror(-r));
        return definition_parse_buffer(d, path, data, size, ret_error);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* NAME.conf.d/ *.conf in lexical order, as systemd orders drop-ins. */
static int parse_dropins(Definition *d, const char *path, char **ret_error) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_strv_free_ char **files = NULL;
        size_t n = 0;
        DIR *dp;
        struct dirent *de;
        int r = 0;

        assert(d);
        assert(path);

        if (asprintf(&dir, "%s.d", path) < 0)
                return -ENOMEM;
        dp = opendir(dir);
        if (!dp)
                return errno == ENOENT || errno == ENOTDIR ? 0 : errorf(ret_error, -errno, "%s: %m", dir);
        while ((de = readdir(dp))) {
                size_t k = strlen(de->d_name);
                char *f;
                if (de->d_name[0] == '.' || k < 6 || !streq(de->d_name + k - 5, ".conf"))
                        continue;
                if (asprintf(&f, "%s/%s", dir, de->d_name) < 0 || strv_push(&files, &n, f) < 0) {
                        closedir(dp);
                        return -ENOMEM;
                }
        }
        closedir(dp);
        if (n > 0)
                qsort(files, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = parse_file(d, files[i], ret_error);
        return r;
}

static int load(const char *path, const char *name, bool token, Definition **ret, char **ret_error);

int definition_load(const char *path, const char *name, Definition **ret, char **ret_error) {
        return load(path, name, true, ret, ret_error);
}

int definition_load_no_token(const char *path, const char *name, Definition **ret, char **ret_error) {
        return load(path, name, false, ret, ret_error);
}

static int load(const char *path, const char *name, bool token, Definition **ret, char **ret_error) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *n = NULL;
        int r;

        assert(path);
        assert(ret);

        if (!name) {
                const char *b = strrchr(path, '/');
                b = b ? b + 1 : path;
                n = strndup(b, strlen(b) > 5 && streq(b + strlen(b) - 5, ".conf") ? strlen(b) - 5 : strlen(b));
                if (!n)
                        return -ENOMEM;
                name = n;
        }
        d = definition_new(name, path);
        if (!d)
                return -ENOMEM;
        r = parse_file(d, path, ret_error);
        if (r < 0)
                return r;
        r = parse_dropins(d, path, ret_error);
        if (r < 0)
                return r;
        r = token ? definition_finish(d, ret_error) : definition_finish_no_token(d, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

bool definition_port_allowed(const Definition *d, uint16_t port) {
        assert(d);

        /* Unset: any unprivileged port. A privileged one (SMTP, DNS …) only when listed. */
        if (d->n_allow_ports == 0)
                return port >= 1024;
        for (size_t i = 0; i + 1 < d->n_allow_ports; i += 2)
                if (port >= d->allow_ports[i] && port <= d->allow_ports[i + 1])
                        return true;
        return false;
}

bool definition_udp_port_allowed(const Definition *d, uint16_t port) {
        assert(d);

        for (size_t i = 0; i + 1 < d->n_allow_udp_ports; i += 2)
                if (port >= d->allow_udp_ports[i] && port <= d->allow_udp_ports[i + 1])
                        return true;
        return false;
}

bool definition_forward_allowed(const Definition *d, const char *host, uint16_t port) {
        SocketAddress a;
        bool numeric;

        assert(d);
        assert(host);
        /* Numeric as the resolver reads it (inet_pton): nothing else may match a prefix. */
        numeric = (inet_pton(AF_INET, host, &a.in.sin_addr) == 1 || inet_pton(AF_INET6, host, &a.in6.sin6_addr) == 1) &&
                  socket_address_parse(host, 1, &a) >= 0;
        for (size_t i = 0; i < d->n_allow_forward_to; i++) {
                const ForwardRule *r = &d->allow_forward_to[i];
                if (r->port != 0 && r->port != port)
                        continue;
                if (r->host ? strcasecmp(r->host, host) == 0 : numeric && address_prefix_match(&r->prefix, &a))
                        return true;
        }
        return false;
}

const char *port_map_host(const Definition *d, const PortMap *p) {
        return p->host ?: d->n_upstreams > 0 ? d->upstreams[0] : "127.0.0.1";
}

ProxyProtocol definition_proxy_protocol(const Definition *d, uint16_t public_port) {
        assert(d);

        for (size_t i = 0; i < d->n_proxy_protocol_ports; i++)
                if (d->proxy_protocol_ports[i].public_port == public_port)
                        return d->proxy_protocol_ports[i].version;
        return d->proxy_protocol > PROXY_PROTOCOL_NO ? d->proxy_protocol : PROXY_PROTOCOL_NO;
}
