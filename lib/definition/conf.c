// SPDX-License-Identifier: LGPL-2.1-or-later
/* The INI parser and the table of keys. Errors name file:line and never echo a secret;
 * unknown keys are warnings so that newer files still load on older daemons. */

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "conf.h"
#include "log.h"

static const char *const role_table[_ROLE_MAX] = {
        [ROLE_SERVER] = "server", [ROLE_CLIENT] = "client", [ROLE_FILESERVER] = "fileserver",
};
static const char *const mode_table[_MODE_MAX] = { [MODE_TCP] = "tcp", [MODE_HTTP] = "http" };

const char *role_to_string(Role r) {
        return r >= 0 && r < _ROLE_MAX ? role_table[r] : NULL;
}
Role role_from_string(const char *s) {
        for (int i = 0; i < _ROLE_MAX; i++)
                if (streq(s, role_table[i]))
                        return (Role) i;
        return _ROLE_INVALID;
}
const char *mode_to_string(Mode m) {
        return m >= 0 && m < _MODE_MAX ? mode_table[m] : NULL;
}
Mode mode_from_string(const char *s) {
        for (int i = 0; i < _MODE_MAX; i++)
                if (streq(s, mode_table[i]))
                        return (Mode) i;
        return _MODE_INVALID;
}

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
        free(d->url);
        free(d->ca_file);
        free(d->upstream_ca_file);
        strv_free(d->upstreams);
        free(d->ports);
        free(d->client_id);
        free(d->webroot);
        free(d);
        return NULL;
}

/* ---- value parsers: return 0, or -errno with an optional static reason ---- */

typedef int (*ConfParser)(const char *value, void *field, Definition *d, const char **reason);

static int conf_string(const char *value, void *field, Definition *d, const char **reason) {
        char **s = field, *v = NULL;
        if (*value && !(v = strdup(value)))
                return -ENOMEM;
        free(*s);
        *s = v;
        return 0;
}

static int conf_secret(const char *value, void *field, Definition *d, const char **reason) {
        char **s = field, *v = NULL;
        if (*value && !(v = strdup(value)))
                return -ENOMEM;
        erase_and_free(*s);
        *s = v;
        return 0;
}

static int conf_bool(const char *value, void *field, Definition *d, const char **reason) {
        int r = parse_boolean(value);
        if (r < 0)
                return r;
        *(int *) field = r;
        return 0;
}

static int conf_role(const char *value, void *field, Definition *d, const char **reason) {
        Role r = role_from_string(value);
        if (r < 0) {
                *reason = "expected server, client or fileserver";
                return -EINVAL;
        }
        *(Role *) field = r;
        return 0;
}

static int conf_mode(const char *value, void *field, Definition *d, const char **reason) {
        Mode m = mode_from_string(value);
        if (m < 0) {
                *reason = "expected tcp or http";
                return -EINVAL;
        }
        *(Mode *) field = m;
        return 0;
}

static int conf_sec(const char *value, void *field, Definition *d, const char **reason) {
        uint64_t u;
        int r = parse_sec(value, &u);
        if (r < 0) {
                *reason = "expected a time span such as 30, 30s, 500ms or 2min";
                return r;
        }
        *(uint64_t *) field = u;
        return 0;
}

static int conf_positive_sec(const char *value, void *field, Definition *d, const char **reason) {
        int r = conf_sec(value, field, d, reason);
        if (r >= 0 && *(uint64_t *) field == 0) {
                *reason = "must be greater than zero";
                return -ERANGE;
        }
        return r;
}

static int conf_unsigned(const char *value, void *field, Definition *d, const char **reason) {
        unsigned u;
        int r = parse_unsigned(value, &u);
        if (r < 0 || u == 0) {
                *reason = "expected a positive integer";
                return r < 0 ? r : -ERANGE;
        }
        *(unsigned *) field = u;
        return 0;
}

static int conf_size_or_zero(const char *value, void *field, Definition *d, const char **reason) {
        uint64_t u;
        int r = parse_size(value, &u);
        if (r < 0) {
                *reason = "expected a size (K, M, G suffixes), 0 for no limit";
                return r;
        }
        *(uint64_t *) field = u;
        return 0;
}

static int conf_header_bytes(const char *value, void *field, Definition *d, const char **reason) {
        uint64_t u;
        int r = parse_size(value, &u);
        if (r < 0 || u < 1024 || u > 1024 * 1024) {
                *reason = "expected a size between 1K and 1M";
                return r < 0 ? r : -ERANGE;
        }
        *(uint64_t *) field = u;
        return 0;
}

static int conf_size(const char *value, void *field, Definition *d, const char **reason) {
        uint64_t u;
        int r = parse_size(value, &u);
        if (r < 0 || u < 1024 || u > 64 * 1024 * 1024) {
                *reason = "expected a size between 1K and 64M";
                return r < 0 ? r : -ERANGE;
        }
        *(uint64_t *) field = u;
        return 0;
}

static int conf_log_level(const char *value, void *field, Definition *d, const char **reason) {
        int l = log_parse_level(value);
        if (l < 0) {
                *reason = "expected debug, info, notice, warning or err";
                return l;
        }
        *(int *) field = l;
        return 0;
}

static int conf_address(const char *value, void *field, Definition *d, const char **reason,
                        uint16_t default_port) {
        SocketAddress a;
        int r = socket_address_parse(value, default_port, &a);
        if (r < 0) {
                *reason = "expected a numeric IP address, optionally with :PORT";
                return r;
        }
        *(SocketAddress *) field = a;
        return 0;
}
static int conf_control_listen(const char *v, void *f, Definition *d, const char **reason) {
        return conf_address(v, f, d, reason, DEFAULT_CONTROL_PORT);
}
static int conf_http_listen(const char *v, void *f, Definition *d, const char **reason) {
        return conf_address(v, f, d, reason, DEFAULT_HTTP_PORT);
}
static int conf_https_listen(const char *v, void *f, Definition *d, const char **reason) {
        if (!*v) {
                *(SocketAddress *) f = (SocketAddress) {};
                return 0;
        }
        return conf_address(v, f, d, reason, DEFAULT_HTTPS_PORT);
}
static int conf_fileserver_listen(const char *v, void *f, Definition *d, const char **reason) {
        return conf_address(v, f, d, reason, DEFAULT_FILESERVER_PORT);
}
static int conf_data_listen(const char *v, void *f, Definition *d, const char **reason) {
        /* An address only: the ports come from the clients. */
        if (strchr(v, ']') ? strstr(v, "]:") != NULL : (strchr(v, ':') && strchr(v, ':') == strrchr(v, ':'))) {
                *reason = "expected an address without a port";
                return -EINVAL;
        }
        return conf_address(v, f, d, reason, 1);
}

/* Splits a list value on whitespace (and commas), honouring "..." and '...' quoting. */
static int split_words(const char *value, char ***ret, size_t *ret_n) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        const char *p = value;

        for (;;) {
                char *w;
                size_t k;

                p += strspn(p, " \t,");
                if (!*p)
                        break;
                if (*p == '"' || *p == '\'') {
                        const char *e = strchr(p + 1, *p);
                        if (!e)
                                return -EBADMSG;
                        k = e - p - 1;
                        w = strndup(p + 1, k);
                        p = e + 1;
                } else {
                        k = strcspn(p, " \t,");
                        w = strndup(p, k);
                        p += k;
                }
                if (!w)
                        return -ENOMEM;
                if (strv_push(&l, &n, w) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

static int conf_san(const char *value, void *field, Definition *d, const char **reason) {
        char ***l = &d->auto_tls_san;
        size_t *n = &d->n_auto_tls_san;
        _cleanup_strv_free_ char **words = NULL;
        size_t nw = 0;
        int r;

        if (!*value) { /* empty assignment resets the list */
                *l = strv_free(*l);
                *n = 0;
                return 0;
        }
        r = split_words(value, &words, &nw);
        if (r < 0) {
                *reason = "unbalanced quotes";
                return r;
        }
        for (size_t i = 0; i < nw; i++) {
                r = strv_push(l, n, TAKE_PTR(words[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int conf_upstream(const char *value, void *field, Definition *d, const char **reason) {
        char *v;
        if (!*value) {
                d->upstreams = strv_free(d->upstreams);
                d->n_upstreams = 0;
                return 0;
        }
        if (strpbrk(value, " \t")) {
                *reason = "one upstream per line";
                return -EINVAL;
        }
        if (strstr(value, "://")) {
                HttpUpstream u;
                if (http_upstream_parse(value, &u) < 0) {
                        *reason = "expected [HOST=]http://HOST[:PORT][/PATH] or https://...";
                        return -EINVAL;
                }
                http_upstream_done(&u);
        }
        v = strdup(value);
        if (!v)
                return -ENOMEM;
        return strv_push(&d->upstreams, &d->n_upstreams, v);
}

static int conf_ports(const char *value, void *field, Definition *d, const char **reason) {
        _cleanup_strv_free_ char **words = NULL;
        size_t nw = 0;
        int r;

        if (!*value) {
                d->ports = mfree(d->ports);
                d->n_ports = 0;
                return 0;
        }
        r = split_words(value, &words, &nw);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nw; i++) {
                PortMap m;
                char *colon = strchr(words[i], ':');
                PortMap *t;

                if (colon)
                        *colon = 0;
                if (parse_port(words[i], &m.public_port) < 0 ||
                    parse_port(colon ? colon + 1 : words[i], &m.upstream_port) < 0) {
                        *reason = "expected PORT or PUBLIC:UPSTREAM, ports 1-65535";
                        return -EINVAL;
                }
                for (size_t j = 0; j < d->n_ports; j++)
                        if (d->ports[j].public_port == m.public_port) {
                                *reason = "public port listed twice";
                                return -EEXIST;
                        }
                t = realloc(d->ports, sizeof(PortMap) * (d->n_ports + 1));
                if (!t)
                        return -ENOMEM;
                d->ports = t;
                d->ports[d->n_ports++] = m;
        }
        return 0;
}

static int conf_allow_ports(const char *value, void *field, Definition *d, const char **reason) {
        _cleanup_strv_free_ char **words = NULL;
        size_t nw = 0;
        int r;

        if (!*value) {
                d->allow_ports = mfree(d->allow_ports);
                d->n_allow_ports = 0;
                return 0;
        }
        r = split_words(value, &words, &nw);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nw; i++) {
                uint16_t lo, hi;
                char *dash = strchr(words[i], '-');
                if (dash)
                        *dash = 0;
                if (parse_port(words[i], &lo) < 0 || parse_port(dash ? dash + 1 : words[i], &hi) < 0 ||
                    hi < lo) {
                        *reason = "expected PORT or LOW-HIGH";
                        return -EINVAL;
                }
                /* Stored as pairs [lo, hi]. */
                uint16_t *t = realloc(d->allow_ports, sizeof(uint16_t) * (d->n_allow_ports + 2));
                if (!t)
                        return -ENOMEM;
                d->allow_ports = t;
                d->allow_ports[d->n_allow_ports++] = lo;
                d->allow_ports[d->n_allow_ports++] = hi;
        }
        return 0;
}

static int conf_fingerprint(const char *value, void *field, Definition *d, const char **reason) {
        if (!*value) {
                d->has_fingerprint = false;
                return 0;
        }
        if (strncasecmp(value, "sha256:", 7) != 0 || unhexmem(value + 7, d->server_fingerprint, 32) < 0) {
                *reason = "expected sha256: followed by 64 hex digits";
                return -EINVAL;
        }
        d->has_fingerprint = true;
        return 0;
}

static int conf_url(const char *value, void *field, Definition *d, const char **reason) {
        TunnelURL u;
        int r = tunnel_url_parse(value, &u);
        if (r < 0) {
                *reason = "expected wss://HOST[:PORT][/PATH] (or ws:// behind a TLS proxy)";
                return r;
        }
        tunnel_url_done(&u);
        return conf_string(value, field, d, reason);
}

static int conf_client_id(const char *value, void *field, Definition *d, const char **reason) {
        if (*value && !string_is_safe_id(value, 64)) {
                *reason = "up to 64 characters of A-Z a-z 0-9 . _ @ -";
                return -EINVAL;
        }
        return conf_string(value, field, d, reason);
}

static int conf_acme_domain(const char *value, void *field, Definition *d, const char **reason) {
        _cleanup_strv_free_ char **words = NULL;
        size_t nw = 0;
        int r;

        if (!*value) {
                d->acme_domains = strv_free(d->acme_domains);
                d->n_acme_domains = 0;
                return 0;
        }
        r = split_words(value, &words, &nw);
        if (r < 0) {
                *reason = "unbalanced quotes";
                return r;
        }
        for (size_t i = 0; i < nw; i++) {
                if (words[i][0] == '*') {
                        *reason = "wildcard names need the DNS-01 challenge; inletsd answers HTTP-01 only";
                        return -EINVAL;
                }
                if (!hostname_is_valid(words[i]) || !strchr(words[i], '.') || words[i][strlen(words[i]) - 1] == '.') {
                        *reason = "expected DNS names such as www.example.com";
                        return -EINVAL;
                }
                for (char *p = words[i]; *p; p++)
                        *p = ascii_tolower(*p);
                r = strv_push(&d->acme_domains, &d->n_acme_domains, TAKE_PTR(words[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int conf_acme_email(const char *value, void *field, Definition *d, const char **reason) {
        const char *at = strchr(value, '@');
        if (!at || at == value || !at[1] || strpbrk(value, " \t<>\"\\,;:()[]")) {
                *reason = "expected an e-mail address such as admin@example.com";
                return -EINVAL;
        }
        return conf_string(value, field, d, reason);
}

static int conf_acme_directory(const char *value, void *field, Definition *d, const char **reason) {
        if (strcaseeq(value, "production") || strcaseeq(value, "letsencrypt"))
                value = ACME_DIRECTORY_PRODUCTION;
        else if (strcaseeq(value, "staging"))
                value = ACME_DIRECTORY_STAGING;
        else if (strncasecmp(value, "https://", 8) != 0 || !value[8] || strpbrk(value, " \t")) {
                *reason = "expected production, staging or an https:// ACME directory URL";
                return -EINVAL;
        }
        return conf_string(value, field, d, reason);
}

#define F(x) offsetof(Definition, x)
static const struct ConfItem {
        const char *section, *key;
        ConfParser parse;
        size_t offset;
        bool secret;
} conf_items[] = {
        { "Tunnel", "Role", conf_role, F(role) },
        { "Tunnel", "Mode", conf_mode, F(mode) },
        { "Tunnel", "Token", conf_secret, F(token), true },
        { "Tunnel", "TokenFile", conf_string, F(token_file) },
        { "Tunnel", "KeepaliveSec", conf_positive_sec, F(keepalive_usec) },
        { "Tunnel", "HandshakeTimeoutSec", conf_positive_sec, F(handshake_timeout_usec) },
        { "Tunnel", "LogLevel", conf_log_level, F(log_level) },
        { "Tunnel", "MaxHeaderBytes", conf_header_bytes, F(max_header_bytes) },
        { "Tunnel", "MaxHeaders", conf_unsigned, F(max_headers) },
        { "Tunnel", "IdleTimeoutSec", conf_positive_sec, F(idle_timeout_usec) },
        { "Server", "ControlListen", conf_control_listen, F(control_listen) },
        { "Server", "DataListen", conf_data_listen, F(data_listen) },
        { "Server", "HTTPListen", conf_http_listen, F(http_listen) },
        { "Server", "HTTPSListen", conf_https_listen, F(https_listen) },
        { "Server", "HTTPSCertificateFile", conf_string, F(https_certificate_file) },
        { "Server", "HTTPSKeyFile", conf_string, F(https_key_file) },
        { "Server", "MaxBodyBytes", conf_size_or_zero, F(max_body_bytes) },
        { "Server", "MaxConnections", conf_unsigned, F(max_connections) },
        { "Server", "ResponseTimeoutSec", conf_positive_sec, F(response_timeout_usec) },
        { "Server", "TLS", conf_bool, F(tls) },
        { "Server", "AutoTLS", conf_bool, F(auto_tls) },
        { "Server", "AutoTLSSAN", conf_san, F(auto_tls_san) },
        { "Server", "CertificateFile", conf_string, F(certificate_file) },
        { "Server", "KeyFile", conf_string, F(key_file) },
        { "Server", "StateDirectory", conf_string, F(state_directory) },
        { "Server", "ACMEDomain", conf_acme_domain, F(acme_domains) },
        { "Server", "ACMEEmail", conf_acme_email, F(acme_email) },
        { "Server", "ACMEDirectory", conf_acme_directory, F(acme_directory) },
        { "Server", "ACMECAFile", conf_string, F(acme_ca_file) },
        { "Server", "AllowPorts", conf_allow_ports, F(allow_ports) },
        { "Server", "MaxClients", conf_unsigned, F(max_clients) },
        { "Server", "MaxStreamsPerClient", conf_unsigned, F(max_streams) },
        { "Server", "MaxFrameSize", conf_size, F(max_frame_size) },
        { "Client", "URL", conf_url, F(url) },
        { "Client", "CAFile", conf_string, F(ca_file) },
        { "Client", "UpstreamCAFile", conf_string, F(upstream_ca_file) },
        { "Client", "ServerFingerprint", conf_fingerprint, F(server_fingerprint) },
        { "Client", "Upstream", conf_upstream, F(upstreams) },
        { "Client", "Ports", conf_ports, F(ports) },
        { "Client", "ReconnectMaxDelaySec", conf_positive_sec, F(reconnect_max_delay_usec) },
        { "Client", "ClientID", conf_client_id, F(client_id) },
        { "FileServer", "Listen", conf_fileserver_listen, F(listen) },
        { "FileServer", "Webroot", conf_string, F(webroot) },
        { "FileServer", "AllowBrowsing", conf_bool, F(allow_browsing) },
        { "FileServer", "BasicAuth", conf_bool, F(basic_auth) },
        { "FileServer", "AllowHidden", conf_bool, F(allow_hidden) },
};
#undef F

/* Strips one pair of matching outer quotes. */
static char *unquote(char *v) {
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0] && !memchr(v + 1, v[0], n - 2)) {
                v[n - 1] = 0;
                return v + 1;
        }
        return v;
}

int definition_parse_buffer(Definition *d, const char *path, const char *data, size_t size,
                            char **ret_error) {
        _cleanup_free_ char *section = NULL;
        bool section_known = true;
        unsigned line = 0;
        size_t pos = 0;

        if (memchr(data, 0, size))
                return errorf(ret_error, -EBADMSG, "%s: file contains a NUL byte", path);

        while (pos < size) {
                _cleanup_free_ char *buf = NULL;
                size_t end = pos;
                char *l, *eq, *key, *value;
                const struct ConfItem *item = NULL;
                const char *reason = NULL;
                int r;

                while (end < size && data[end] != '\n')
                        end++;
                line++;
                buf = strndup(data + pos, end - pos);
                if (!buf)
                        return -ENOMEM;
                pos = end + 1;

                l = strstrip(buf);
                if (!*l || *l == '#' || *l == ';')
                        continue;

                if (*l == '[') {
                        size_t n = strlen(l);
                        if (l[n - 1] != ']' || n < 3)
                                return errorf(ret_error, -EBADMSG, "%s:%u: Invalid section header", path, line);
                        free(section);
                        section = strndup(l + 1, n - 2);
                        if (!section)
                                return -ENOMEM;
                        section_known = false;
                        for (size_t i = 0; i < ELEMENTSOF(conf_items); i++)
                                if (streq(conf_items[i].section, section))
                                        section_known = true;
                        if (!section_known)
                                log_warning("%s:%u: Unknown section [%s], ignoring its keys.", path, line, section);
                        continue;
                }

                eq = strchr(l, '=');
                if (!eq)
                        return errorf(ret_error, -EBADMSG, "%s:%u: Expected Key=Value, got a line without '='",
                                         path, line);
                if (!section)
                        return errorf(ret_error, -EBADMSG, "%s:%u: Assignment outside of any section", path, line);
                if (!section_known)
                        continue;

                *eq = 0;
                key = strstrip(l);
                value = unquote(strstrip(eq + 1));

                for (size_t i = 0; i < ELEMENTSOF(conf_items); i++)
                        if (streq(conf_items[i].section, section) && streq(conf_items[i].key, key)) {
                                item = &conf_items[i];
                                break;
                        }
                if (!item) {
                        log_warning("%s:%u: Unknown key %s= in [%s], ignoring.", path, line, key, section);
                        continue;
                }

                r = item->parse(value, (uint8_t *) d + item->offset, d, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        if (item->secret)
                                return errorf(ret_error, r, "%s:%u: Invalid %s= value", path, line, key);
                        return errorf(ret_error, r, "%s:%u: Invalid %s= value '%s'%s%s", path, line, key,
                                         value, reason ? ": " : "", reason ?: "");
                }
                if (item->secret && !d->token_file)
                        /* Don't let an inline token and a world-readable file pass unnoticed. */
                        log_debug("%s:%u: token given inline.", path, line);
        }
        return 0;
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

static bool token_chars_ok(const char *t) {
        for (; *t; t++)
                if ((unsigned char) *t < 0x21 || (unsigned char) *t == 0x7f)
                        return false;
        return true;
}

/* NAME.token beside NAME.conf: the file inletsd@.service loads as credential "token". */
static int token_beside(const char *path, char **ret) {
        size_t n = path ? strlen(path) : 0;

        *ret = NULL;
        if (n <= 5 || !streq(path + n - 5, ".conf"))
                return 0;
        return asprintf(ret, "%.*s.token", (int) n - 5, path) < 0 ? -ENOMEM : 1;
}

static bool same_file(const char *a, const char *b) {
        struct stat sa, sb;

        /* stat() needs no read permission on the file itself, only on the way to it. */
        return streq(a, b) ||
               (stat(a, &sa) >= 0 && stat(b, &sb) >= 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

static int load_token(Definition *d, char **ret_error) {
        _cleanup_free_ char *p = NULL, *beside = NULL, *cred = NULL;
        const char *source, *creds = getenv("CREDENTIALS_DIRECTORY");
        char *data = NULL, *t;
        int r;

        if (d->token) {
                source = "Token=";
                t = strstrip(d->token);
                memmove(d->token, t, strlen(t) + 1);
        } else {
                r = token_beside(d->path, &beside);
                if (r < 0)
                        return r;
                if (creds && asprintf(&cred, "%s/token", creds) < 0)
                        return -ENOMEM;

                if (d->token_file) {
                        if (d->token_file[0] != '/' && d->path && strchr(d->path, '/')) {
                                /* Relative to the definition's directory. */
                                const char *slash = strrchr(d->path, '/');
                                if (asprintf(&p, "%.*s/%s", (int) (slash - d->path), d->path, d->token_file) < 0)
                                        return -ENOMEM;
                        } else if (!(p = strdup(d->token_file)))
                                return -ENOMEM;
                        /* TokenFile= naming the definition's own NAME.token is the file the unit
                         * already handed over as credential "token": read systemd's copy, as the
                         * root-only original is not for the daemon's own user to open. */
                        if (cred && beside && access(cred, F_OK) >= 0 && same_file(p, beside)) {
                                free(p);
                                p = TAKE_PTR(cred);
                        }
                } else if (cred)
                        p = TAKE_PTR(cred);
                else if (beside) {
                        /* NAME.token beside NAME.conf: what LoadCredential= hands over under
                         * systemd, read directly when run by hand or by inletsctl check. */
                        p = TAKE_PTR(beside);
                        if (access(p, F_OK) < 0)
                                return errorf(ret_error, -ENOKEY,
                                                 "%s: no token: set Token= or TokenFile=, pass credential 'token', "
                                                 "or create %s", d->path, p);
                } else
                        return errorf(ret_error, -ENOKEY,
                                         "%s: no token: set Token= or TokenFile=, or pass credential 'token'",
                                         d->path ?: d->name);
                source = p;
                r = read_full_file(p, TOKEN_MAX_LEN, &data, NULL);
                if (r < 0)
                        return errorf(ret_error, r, "%s: cannot read token file %s: %s%s", d->path ?: d->name, p,
                                         r == -EFBIG ? "file too large" : strerror(-r),
                                         r == -EACCES && creds ?
                                         " (under inletsd@.service leave TokenFile= unset, or name NAME.token beside "
                                         "the definition: the unit passes that file as credential 'token')" : "");
                t = strstrip(data);
                d->token = strdup(t);
                erase_and_free(data);
                if (!d->token)
                        return -ENOMEM;
        }
        if (strlen(d->token) < TOKEN_MIN_LEN)
                return errorf(ret_error, -EINVAL, "%s: token from %s is shorter than %d bytes",
                                 d->path ?: d->name, source, TOKEN_MIN_LEN);
        if (!token_chars_ok(d->token))
                return errorf(ret_error, -EINVAL,
                                 "%s: token from %s contains spaces or control characters", d->path ?: d->name,
                                 source);
        return 0;
}

static bool address_unset(const SocketAddress *a) {
        return a->len == 0;
}

static int finish(Definition *d, bool token, char **ret_error);

int definition_finish(Definition *d, char **ret_error) {
        return finish(d, true, ret_error);
}

int definition_finish_no_token(Definition *d, char **ret_error) {
        return finish(d, false, ret_error);
}

static int finish(Definition *d, bool token, char **ret_error) {
        const char *f = d->path ?: d->name ?: "definition";
        int r;

        if (d->role < 0)
                return errorf(ret_error, -EINVAL, "%s: Role= is not set in [Tunnel] (server, client or fileserver)", f);
        if (d->mode < 0)
                d->mode = MODE_TCP;
        if (d->keepalive_usec == 0)
                d->keepalive_usec = 20 * USEC_PER_SEC;
        if (d->handshake_timeout_usec == 0)
                d->handshake_timeout_usec = 10 * USEC_PER_SEC;
        if (d->max_frame_size == 0)
                d->max_frame_size = 2 * 1024 * 1024;
        if (d->max_header_bytes == 0)
                d->max_header_bytes = 16 * 1024;
        if (d->max_headers == 0)
                d->max_headers = 100;
        if (d->idle_timeout_usec == 0)
                d->idle_timeout_usec = 60 * USEC_PER_SEC;
        if (d->response_timeout_usec == 0)
                d->response_timeout_usec = 60 * USEC_PER_SEC;

        switch (d->role) {
        case ROLE_SERVER:
                if (address_unset(&d->control_listen))
                        (void) socket_address_parse("0.0.0.0", DEFAULT_CONTROL_PORT, &d->control_listen);
                if (address_unset(&d->data_listen))
                        (void) socket_address_parse("0.0.0.0", 1, &d->data_listen);
                if (d->n_acme_domains > 0) {
                        if (d->mode != MODE_HTTP)
                                return errorf(ret_error, -EINVAL, "%s: ACMEDomain= needs Mode=http", f);
                        if (d->https_certificate_file)
                                return errorf(ret_error, -EINVAL,
                                              "%s: ACMEDomain= and HTTPSCertificateFile= exclude each other", f);
                        /* the CA validates on port 80; the certificate is for 443 */
                        if (address_unset(&d->http_listen))
                                (void) socket_address_parse("0.0.0.0", 80, &d->http_listen);
                        if (address_unset(&d->https_listen))
                                (void) socket_address_parse("0.0.0.0", 443, &d->https_listen);
                        if (!d->acme_directory && !(d->acme_directory = strdup(ACME_DIRECTORY_PRODUCTION)))
                                return -ENOMEM;
                } else if (d->acme_email || d->acme_directory || d->acme_ca_file)
                        log_warning("%s: ACMEEmail=, ACMEDirectory= and ACMECAFile= need ACMEDomain=, ignoring.", f);
                if (address_unset(&d->http_listen))
                        (void) socket_address_parse("0.0.0.0", DEFAULT_HTTP_PORT, &d->http_listen);
                if (d->tls < 0)
                        d->tls = true;
                if (!!d->certificate_file != !!d->key_file)
                        return errorf(ret_error, -EINVAL, "%s: CertificateFile= and KeyFile= must be set together", f);
                if (d->auto_tls > 0 && d->certificate_file)
                        return errorf(ret_error, -EINVAL, "%s: AutoTLS=yes and CertificateFile= exclude each other", f);
                if (d->auto_tls < 0)
                        d->auto_tls = d->tls && !d->certificate_file;
                if (d->tls && !d->auto_tls && !d->certificate_file)
                        return errorf(ret_error, -EINVAL,
                                         "%s: TLS needs AutoTLS=yes or CertificateFile=; set TLS=no only behind a "
                                         "TLS-terminating proxy", f);
                if (!d->state_directory) {
                        const char *e = getenv("STATE_DIRECTORY");
                        if (e && *e)
                                d->state_directory = strndup(e, strcspn(e, ":"));
                        else if (asprintf(&d->state_directory, "/var/lib/inlets/%s", d->name ?: "default") < 0)
                                d->state_directory = NULL;
                        if (!d->state_directory)
                                return -ENOMEM;
                }
                if (d->max_clients == 0)
                        d->max_clients = 64;
                if (d->max_streams == 0)
                        d->max_streams = 1024;
                if (d->max_connections == 0)
                        d->max_connections = 4096;
                if (d->n_upstreams > 0)
                        log_warning("%s: Upstream= has no meaning for a server, ignoring.", f);
                if (!!d->https_certificate_file != !!d->https_key_file)
                        return errorf(ret_error, -EINVAL,
                                      "%s: HTTPSCertificateFile= and HTTPSKeyFile= must be set together", f);
                if (!address_unset(&d->https_listen) && d->mode != MODE_HTTP)
                        log_warning("%s: HTTPSListen= is for Mode=http, ignoring.", f);
                if (!address_unset(&d->https_listen) && !d->https_certificate_file && !d->certificate_file &&
                    !d->auto_tls && d->n_acme_domains == 0)
                        return errorf(ret_error, -EINVAL,
                                      "%s: HTTPSListen= needs HTTPSCertificateFile=, CertificateFile= or AutoTLS=yes", f);
                break;

        case ROLE_CLIENT:
                if (!d->url)
                        return errorf(ret_error, -EINVAL, "%s: URL= is not set in [Client]", f);
                if (d->ca_file && d->has_fingerprint)
                        return errorf(ret_error, -EINVAL, "%s: CAFile= and ServerFingerprint= exclude each other", f);
                /* A pin or a CA on ws:// would be checked against nothing, and the token would
                 * go out in clear to whoever answers: say so rather than run. */
                if ((d->ca_file || d->has_fingerprint) && strncasecmp(d->url, "ws://", 5) == 0)
                        return errorf(ret_error, -EINVAL, "%s: %s= needs a wss:// URL=, got %s", f,
                                      d->has_fingerprint ? "ServerFingerprint" : "CAFile", d->url);
                if (d->mode == MODE_TCP) {
                        if (d->n_ports == 0)
                                return errorf(ret_error, -EINVAL, "%s: Ports= is not set in [Client]", f);
                        if (d->n_upstreams > 1)
                                return errorf(ret_error, -EINVAL,
                                                 "%s: TCP mode takes one Upstream= host, %zu given", f, d->n_upstreams);
                        if (d->n_upstreams == 0 &&
                            strv_push(&d->upstreams, &d->n_upstreams, strdup("127.0.0.1")) < 0)
                                return -ENOMEM;
                } else if (d->n_upstreams == 0)
                        return errorf(ret_error, -EINVAL, "%s: Upstream= is not set in [Client]", f);
                for (size_t i = 0; i < d->n_upstreams; i++) {
                        bool url = strstr(d->upstreams[i], "://");
                        if (d->mode == MODE_HTTP && !url)
                                return errorf(ret_error, -EINVAL,
                                              "%s: Upstream=%s: HTTP mode takes [HOST=]http(s)://HOST[:PORT] URLs", f,
                                              d->upstreams[i]);
                        if (d->mode == MODE_TCP && url)
                                return errorf(ret_error, -EINVAL,
                                              "%s: Upstream=%s: TCP mode takes a host name or address, not a URL "
                                              "(Mode=http?)", f, d->upstreams[i]);
                }
                if (d->mode == MODE_HTTP && d->n_ports > 0)
                        log_warning("%s: Ports= has no meaning in HTTP mode, ignoring.", f);
                if (d->reconnect_max_delay_usec == 0)
                        d->reconnect_max_delay_usec = 30 * USEC_PER_SEC;
                if (d->max_streams == 0)
                        d->max_streams = 1024;
                break;

        case ROLE_FILESERVER:
                if (!d->webroot)
                        return errorf(ret_error, -EINVAL, "%s: Webroot= is not set in [FileServer]", f);
                if (address_unset(&d->listen))
                        (void) socket_address_parse("127.0.0.1", DEFAULT_FILESERVER_PORT, &d->listen);
                if (d->allow_browsing < 0)
                        d->allow_browsing = false;
                if (d->allow_hidden < 0)
                        d->allow_hidden = false;
                if (d->basic_auth < 0)
                        d->basic_auth = true;
                if (d->max_clients == 0)
                        d->max_clients = 512; /* connections */
                if (!d->basic_auth)
                        return 0; /* explicitly open: no token needed */
                break;

        default:
                break;
        }

        if (!token)
                return 0;
        r = load_token(d, ret_error);
        if (r < 0)
                return r;
        return 0;
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
        r = finish(d, token, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

int tunnel_url_parse(const char *s, TunnelURL *ret) {
        _cleanup_free_ char *hostport = NULL, *host = NULL;
        TunnelURL u = {};
        const char *rest, *slash;
        int r;

        if (strncasecmp(s, "wss://", 6) == 0) {
                u.tls = true;
                rest = s + 6;
        } else if (strncasecmp(s, "ws://", 5) == 0)
                rest = s + 5;
        else
                return -EPROTONOSUPPORT;

        slash = strchr(rest, '/');
        hostport = strndup(rest, slash ? (size_t) (slash - rest) : strlen(rest));
        if (!hostport)
                return -ENOMEM;
        if (!*hostport || strpbrk(hostport, "@ \t?#"))
                return -EINVAL;
        r = split_host_port(hostport, u.tls ? 443 : 80, &host, &u.port);
        if (r < 0 || !*host)
                return -EINVAL;
        /* The path names the upgrade endpoint; a bare URL means /connect, as inlets does. */
        u.path = strdup(slash && slash[1] ? slash : "/connect");
        if (!u.path)
                return -ENOMEM;
        if (strpbrk(u.path, " \t\r\n")) {
                free(u.path);
                return -EINVAL;
        }
        u.host = TAKE_PTR(host);
        *ret = u;
        return 0;
}

void tunnel_url_done(TunnelURL *u) {
        free(u->host);
        free(u->path);
        *u = (TunnelURL) {};
}

bool definition_port_allowed(const Definition *d, uint16_t port) {
        /* Unset: any unprivileged port. A privileged one (SMTP, DNS …) only when listed. */
        if (d->n_allow_ports == 0)
                return port >= 1024;
        for (size_t i = 0; i + 1 < d->n_allow_ports; i += 2)
                if (port >= d->allow_ports[i] && port <= d->allow_ports[i + 1])
                        return true;
        return false;
}

bool hostname_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.'))
                        return false;
        return true;
}

int http_upstream_parse(const char *s, HttpUpstream *ret) {
        _cleanup_free_ char *hostport = NULL, *host = NULL, *match = NULL;
        const char *scheme = strstr(s, "://"), *eq = strchr(s, '='), *rest, *slash;
        HttpUpstream u = {};
        size_t plen;
        int r;

        if (!scheme)
                return -EINVAL;
        if (eq && eq < scheme) {
                match = strndup(s, (size_t) (eq - s));
                if (!match)
                        return -ENOMEM;
                if (!hostname_is_valid(match))
                        return -EINVAL;
                for (char *p = match; *p; p++)
                        *p = ascii_tolower(*p);
                s = eq + 1;
        }
        if (strncasecmp(s, "https://", 8) == 0) {
                u.tls = true;
                rest = s + 8;
        } else if (strncasecmp(s, "http://", 7) == 0)
                rest = s + 7;
        else
                return -EPROTONOSUPPORT;
        slash = strchr(rest, '/');
        hostport = strndup(rest, slash ? (size_t) (slash - rest) : strlen(rest));
        if (!hostport)
                return -ENOMEM;
        if (!*hostport || strpbrk(hostport, "@ \t?#"))
                return -EINVAL;
        r = split_host_port(hostport, u.tls ? 443 : 80, &host, &u.port);
        if (r < 0 || !*host)
                return -EINVAL;
        slash = slash ?: "";
        if (strpbrk(slash, " \t\r\n?#"))
                return -EINVAL;
        plen = strlen(slash);
        while (plen > 0 && slash[plen - 1] == '/')
                plen--;
        u.prefix = strndup(slash, plen);
        u.authority = TAKE_PTR(hostport);
        u.host = TAKE_PTR(host);
        u.match = TAKE_PTR(match);
        if (!u.prefix) {
                http_upstream_done(&u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

void http_upstream_done(HttpUpstream *u) {
        free(u->match);
        free(u->host);
        free(u->authority);
        free(u->prefix);
        *u = (HttpUpstream) {};
}
