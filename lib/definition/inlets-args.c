// SPDX-License-Identifier: LGPL-2.1-or-later
/* inlets-style command lines; see inlets-args.h. Defaults are inlets PRO's: control port 8123,
 * HTTP data port 8000, fileserver port 8080, auto-TLS on. */

#include <assert.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "encoding.h"
#include "inlets-args.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "socket-util.h"
#include "string-util.h"

bool inlets_args_is_mode(const char *word) {
        /* "fileserver" alone: inlets 0.9 moved "http fileserver" up to it */
        return word && (streq(word, "tcp") || streq(word, "http") || streq(word, "fileserver"));
}

void inlets_args_help(FILE *f) {
        fputs("inlets-style command lines (inlets PRO's flags and defaults):\n"
              "  tcp server  [--auto-tls=true] [--auto-tls-san ADDR]... [--control-port 8123] [--control-addr 0.0.0.0]\n"
              "              [--data-addr 0.0.0.0] [--allow-ports LIST] [--tls-cert FILE --tls-key FILE]\n"
              "              [--allow-ips CIDR,...] (visitors allowed to the public ports: AllowFrom=)\n"
              "              [--lb-proxy-protocol[=CIDR,...]] (PROXY headers from load balancers: AcceptProxyProtocol=,\n"
              "              from any address when none is named)\n"
              "              [--allow-forward-to HOST:PORT|PREFIX,...] (what clients' --local-forward may reach: AllowForwardTo=)\n"
              "              [--allow-udp-ports LIST] (UDP ports clients may offer: AllowUDPPorts=; none without it)\n"
              "  tcp client  --url wss://HOST:8123 --upstream HOST --ports 3389,2222:22 [--tls-ca FILE | --fingerprint sha256:…]\n"
              "              (--port/-p PORT, repeatable, adds to --ports; --upstream HOST:PORT with one port, or\n"
              "              PUBLIC=HOST:PORT items for several hosts: Ports= PUBLIC:HOST:PORT)\n"
              "              [--proxy-protocol v1|v2] (a PROXY header to the upstream: ProxyProtocol=)\n"
              "              [--local-forward [LISTEN:]PORT:HOST:PORT,...] (remote services brought local: LocalForward=)\n"
              "              [--udp-ports 53,51820:10.0.0.2:51820] (UDP ports, the items of --ports: UDPPorts=)\n"
              "  http server [--port 8000] (and the server flags above)\n"
              "              [--letsencrypt-domain NAME]... [--letsencrypt-email ADDR] [--letsencrypt-issuer prod|staging|URL]\n"
              "              (Let's Encrypt: HTTP on port 80 unless --port, HTTPS on 443)\n"
              "  http client --url … --upstream [HOST=]URL [--proxy-protocol v1|v2]\n"
              "              [--basic-auth-file HTPASSWD | --basic-auth-username admin --basic-auth-password PW]\n"
              "              [--bearer-token-file FILE | --bearer-token T] (visitors must authenticate: BasicAuthFile=,\n"
              "              BearerTokenFile=; the password and token flags are visible to other users)\n"
              "  http fileserver --webroot DIR [--port 8080] [--allow-browsing] [--basic-auth=true]\n"
              "              (also as \"fileserver …\", inlets 0.9's name)\n"
              "  every mode: --token-file FILE (--token-from: the same), --token-env VAR (the token from the\n"
              "              environment), or --token T (visible to other users); --generate=config|systemd\n"
              "              (clients also --generate=k8s_yaml [--image IMAGE]: a ConfigMap, a Deployment and the\n"
              "              token from a Secret); --license, --license-file, --license-env are accepted and ignored\n",
              f);
}

static int boolarg(const char *v, int *ret) {
        int r = v ? parse_boolean(v) : 1;
        if (r < 0)
                return r;
        *ret = r;
        return 0;
}

static int add_ports(Definition *d, const char *v, char **ret_error) {
        _cleanup_free_ char *copy = strdup(v), *line = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *p = copy; *p; p++)
                if (*p == ',')
                        *p = ' ';
        if (asprintf(&line, "[Client]\nPorts=%s\n", copy) < 0)
                return -ENOMEM;
        return definition_parse_buffer(d, "--ports", line, strlen(line), ret_error);
}

/* Each flag becomes the same key=value a file would have: one parser, one set of checks. */
static int set_key(Definition *d, const char *section, const char *key, const char *value, const char *flag,
                   char **ret_error) {
        _cleanup_free_ char *line = NULL;
        int r;
        if (strpbrk(value, "\n\r"))
                return errorf(ret_error, -EINVAL, "%s: a value cannot contain a line break", flag);
        if (asprintf(&line, "[%s]\n%s=%s\n", section, key, value) < 0)
                return -ENOMEM;
        r = definition_parse_buffer(d, flag, line, strlen(line), ret_error);
        if (r < 0 && ret_error && *ret_error) {
                /* "--flag:2: Invalid Key= value …" reads better as "--flag: invalid value …". */
                char *colon = strstr(*ret_error, ":2: ");
                if (colon)
                        memmove(colon + 1, colon + 3, strlen(colon + 3) + 1);
        }
        return r;
}

static int port_arg(const char *flag, const char *v, uint16_t *ret, char **ret_error) {
        int r = parse_port(v, ret);
        if (r < 0)
                return errorf(ret_error, r, "%s: expected a port, got '%s'", flag, v);
        return 0;
}

typedef enum FlagKind {
        FLAG_KEY,      /* the value is the key's */
        FLAG_LIST,     /* the same, a comma-separated list for a space-separated key */
        FLAG_BOOL,     /* --flag[=BOOL]: the key gets yes or no */
        FLAG_CUSTOM,   /* handled in inlets_args_parse() */
        FLAG_CUSTOM_OPTIONAL, /* the same, and the value may be left out (--flag or --flag=V) */
} FlagKind;

/* inlets PRO's flags, and the definition key each one sets. */
static const struct Flag {
        const char *name;
        FlagKind kind;
        const char *section, *key;
} flags[] = {
        { "auto-tls", FLAG_BOOL, "Server", "AutoTLS" },
        { "auto-tls-san", FLAG_KEY, "Server", "AutoTLSSAN" },
        { "token", FLAG_CUSTOM, "Tunnel", "Token" },
        { "token-file", FLAG_CUSTOM, "Tunnel", "TokenFile" },
        { "token-from", FLAG_CUSTOM, "Tunnel", "TokenFile" },  /* inlets' older name of --token-file */
        { "token-env", FLAG_CUSTOM, "Tunnel", "Token" },
        { "control-port", FLAG_CUSTOM },
        { "control-addr", FLAG_CUSTOM },
        { "port", FLAG_CUSTOM },
        { "data-addr", FLAG_KEY, "Server", "DataListen" },
        { "url", FLAG_KEY, "Client", "URL" },
        { "upstream", FLAG_CUSTOM, "Client", "Upstream" },
        { "ports", FLAG_CUSTOM },
        { "webroot", FLAG_KEY, "FileServer", "Webroot" },
        { "allow-browsing", FLAG_BOOL, "FileServer", "AllowBrowsing" },
        { "basic-auth", FLAG_BOOL, "FileServer", "BasicAuth" },
        { "generate", FLAG_CUSTOM },
        { "image", FLAG_CUSTOM },
        { "license", FLAG_CUSTOM },
        { "license-file", FLAG_CUSTOM },
        { "license-env", FLAG_CUSTOM },
        { "tls-ca", FLAG_KEY, "Client", "CAFile" },
        { "fingerprint", FLAG_KEY, "Client", "ServerFingerprint" },
        { "allow-ports", FLAG_KEY, "Server", "AllowPorts" },
        { "allow-ips", FLAG_KEY, "Server", "AllowFrom" },
        { "lb-proxy-protocol", FLAG_CUSTOM_OPTIONAL, "Server", "AcceptProxyProtocol" },
        { "client-id", FLAG_KEY, "Client", "ClientID" },
        { "local-forward", FLAG_LIST, "Client", "LocalForward" },
        { "allow-forward-to", FLAG_LIST, "Server", "AllowForwardTo" },
        { "udp-ports", FLAG_LIST, "Client", "UDPPorts" },
        { "allow-udp-ports", FLAG_LIST, "Server", "AllowUDPPorts" },
        { "proxy-protocol", FLAG_CUSTOM, "Client", "ProxyProtocol" },
        { "tls-cert", FLAG_KEY, "Server", "CertificateFile" },
        { "tls-key", FLAG_KEY, "Server", "KeyFile" },
        { "letsencrypt-domain", FLAG_KEY, "Server", "ACMEDomain" },
        { "letsencrypt-email", FLAG_KEY, "Server", "ACMEEmail" },
        { "letsencrypt-issuer", FLAG_CUSTOM, "Server", "ACMEDirectory" },
        { "basic-auth-username", FLAG_CUSTOM },
        { "basic-auth-password", FLAG_CUSTOM },
        { "bearer-token", FLAG_CUSTOM },
        { "basic-auth-file", FLAG_KEY, "Client", "BasicAuthFile" },
        { "bearer-token-file", FLAG_KEY, "Client", "BearerTokenFile" },
};

/* What getopt_long() returns for flags[i]; below it, getopt's own '?' and ':'. */
#define FLAG_VAL 0x100

static int flag_index(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (streq(flags[i].name, name))
                        return (int) i;
        abort(); /* a name of the table above */
}

/* Per-parse state the flags without a key of their own write. */
typedef struct ArgsState {
        InletsArgs args;
        const char *control_addr;
        const char *basic_user, *basic_password, *bearer_token; /* inlets' HTTP client auth */
        uint16_t control_port, port;
        bool license_noted;
        char *upstream_hostport;  /* tcp client --upstream HOST:PORT, applied after all flags */
} ArgsState;

static void args_state_done(ArgsState *st) {
        inlets_args_done(&st->args);
        free(st->upstream_hostport);
}

static int set_flag(Definition *d, const struct Flag *f, const char *value, char **ret_error) {
        _cleanup_free_ char *flag = NULL;

        if (asprintf(&flag, "--%s", f->name) < 0)
                return -ENOMEM;
        return set_key(d, f->section, f->key, value, flag, ret_error);
}

/* tcp client --upstream: HOST (Upstream=), HOST:PORT (the one --ports item's upstream, after the
 * flags), or uplink-style PUBLIC=HOST:PORT items (Ports= PUBLIC:HOST:PORT), comma-separated. */
static int tcp_upstream(Definition *d, ArgsState *st, const char *v, char **ret_error) {
        _cleanup_free_ char *copy = strdup(v), *host = NULL;
        uint16_t port;
        int r;

        if (!copy)
                return -ENOMEM;
        if (strchr(v, '=')) {
                for (char *p = copy; *p; p++)
                        if (*p == '=')
                                *p = ':';
                return add_ports(d, copy, ret_error);
        }
        /* HOST:PORT (one colon, or [IPv6]:PORT); a bare IPv6 address is a host. */
        if ((v[0] == '[' && strstr(v, "]:")) || (strchr(v, ':') && strchr(v, ':') == strrchr(v, ':'))) {
                r = split_host_port(v, 1, &host, &port);
                if (r < 0)
                        return errorf(ret_error, -EINVAL, "--upstream: expected HOST, HOST:PORT or PUBLIC=HOST:PORT, got '%s'", v);
                free(st->upstream_hostport);
                st->upstream_hostport = TAKE_PTR(copy);
                return 0;
        }
        return set_key(d, "Client", "Upstream", v, "--upstream", ret_error);
}

/* --upstream HOST:PORT names the upstream of the one public port --ports gave. */
static int apply_upstream_hostport(Definition *d, ArgsState *st, char **ret_error) {
        _cleanup_free_ char *item = NULL;
        PortMap *p;
        int r;

        if (!st->upstream_hostport)
                return 0;
        if (d->n_ports != 1 || d->ports[0].host)
                return errorf(ret_error, -EINVAL,
                              "--upstream %s: a port in --upstream needs exactly one --ports item; for several, give "
                              "PUBLIC=HOST:PORT items (--upstream 2222=git.internal:22,8080=web:80)",
                              st->upstream_hostport);
        p = &d->ports[0];
        if (asprintf(&item, "%u:%s", p->public_port, st->upstream_hostport) < 0)
                return -ENOMEM;
        r = set_key(d, "Client", "Ports", "", "--upstream", ret_error); /* the item is replaced */
        return r < 0 ? r : set_key(d, "Client", "Ports", item, "--upstream", ret_error);
}

/* The flags FLAG_CUSTOM marks. */
static int custom_flag(Definition *d, ArgsState *st, const struct Flag *f, const char *v, char **ret_error) {
        if (streq(f->name, "token"))
                st->args.token_inline = true;
        else if (streq(f->name, "token-file") || streq(f->name, "token-from")) {
                free(st->args.token_file);
                st->args.token_file = strdup(v);
                if (!st->args.token_file)
                        return -ENOMEM;
        } else if (streq(f->name, "token-env")) {
                /* The token from the environment (ECS, Fly, Heroku keep secrets there): never on
                 * the command line, and never written into a file or unit by --generate. */
                const char *t = getenv(v);
                if (!t || !*t)
                        return errorf(ret_error, -ENOKEY, "--token-env: the environment variable '%s' is not set", v);
                free(st->args.token_env);
                st->args.token_env = strdup(v);
                if (!st->args.token_env)
                        return -ENOMEM;
                v = t;
        } else if (streq(f->name, "control-port"))
                return port_arg("--control-port", v, &st->control_port, ret_error);
        else if (streq(f->name, "control-addr")) {
                st->control_addr = v;
                return 0;
        } else if (streq(f->name, "port")) {
                /* inlets PRO's tcp client: --port/-p, repeatable, is --ports */
                if (d->role == ROLE_CLIENT)
                        return add_ports(d, v, ret_error);
                return port_arg("--port", v, &st->port, ret_error);
        } else if (streq(f->name, "upstream") && d->role == ROLE_CLIENT && d->mode == MODE_TCP)
                return tcp_upstream(d, st, v, ret_error);
        else if (streq(f->name, "ports"))
                return add_ports(d, v, ret_error);
        else if (streq(f->name, "generate")) {
                if (streq(v, "config"))
                        st->args.generate = GENERATE_CONFIG;
                else if (streq(v, "systemd"))
                        st->args.generate = GENERATE_SYSTEMD;
                else if (streq(v, "k8s_yaml") || streq(v, "k8s-yaml")) {
                        if (d->role != ROLE_CLIENT)
                                return errorf(ret_error, -EINVAL, "--generate=k8s_yaml is for tcp client and http client");
                        st->args.generate = GENERATE_K8S_YAML;
                } else
                        return errorf(ret_error, -EINVAL, "--generate: expected config, systemd or k8s_yaml, got '%s'",
                                      v);
                return 0;
        } else if (streq(f->name, "image")) {
                free(st->args.image);
                st->args.image = strdup(v);
                return st->args.image ? 0 : -ENOMEM;
        } else if (startswith(f->name, "license")) {
                /* inlets PRO's licence: inletsd needs none. Neither the value nor the file is read. */
                if (!st->license_noted)
                        log_notice("--%s: inletsd needs no licence; ignored.", f->name);
                st->license_noted = true;
                return 0;
        } else if (streq(f->name, "letsencrypt-issuer") && streq(v, "prod")) /* inlets: prod or staging */
                v = "production";
        else if (streq(f->name, "basic-auth-username") || streq(f->name, "basic-auth-password") ||
                 streq(f->name, "bearer-token")) {
                if (d->role != ROLE_CLIENT || d->mode != MODE_HTTP)
                        return errorf(ret_error, -EINVAL, "--%s is for http client", f->name);
                if (streq(f->name, "basic-auth-username")) {
                        st->basic_user = v;
                        return 0;
                }
                if (streq(f->name, "basic-auth-password"))
                        st->basic_password = v;
                else
                        st->bearer_token = v;
                st->args.inline_secret = f->name;
                return 0;
        } else if (streq(f->name, "lb-proxy-protocol")) {
                /* inlets PRO: a switch (every connection to the data ports comes through the
                 * balancer); ours may also name the balancers. */
                int b = v ? parse_boolean(v) : 1;
                if (d->role != ROLE_SERVER)
                        return errorf(ret_error, -EINVAL, "--lb-proxy-protocol is for tcp server and http server");
                if (b >= 0)
                        v = b ? "any" : "";
        } else if (streq(f->name, "proxy-protocol")) {
                /* inlets PRO: "" (none), v1 or v2, on the TCP client only */
                if (d->role != ROLE_CLIENT)
                        return errorf(ret_error, -EINVAL, "--proxy-protocol is for tcp client and http client");
                if (!streq(v, "") && !streq(v, "v1") && !streq(v, "v2"))
                        return errorf(ret_error, -EINVAL, "--proxy-protocol: expected v1 or v2, got '%s'",
                                      v);
                if (!*v)
                        v = "no";
        }
        return set_flag(d, f, v, ret_error);
}

/* One flag getopt_long() returned (c) with its argument v. */
static int apply_flag(Definition *d, ArgsState *st, int c, const char *v, const char *arg,
                      char **ret_error) {
        const struct Flag *f;
        int b, r;

        if (c < FLAG_VAL || c - FLAG_VAL >= (int) ELEMENTSOF(flags))
                return errorf(ret_error, -EINVAL, "unknown or incomplete option '%s'", arg);
        f = &flags[c - FLAG_VAL];
        switch (f->kind) {
        case FLAG_KEY:
                return set_flag(d, f, v, ret_error);
        case FLAG_LIST: {
                _cleanup_free_ char *copy = strdup(v);
                if (!copy)
                        return -ENOMEM;
                for (char *p = copy; *p; p++)
                        if (*p == ',')
                                *p = ' ';
                return set_flag(d, f, copy, ret_error);
        }
        case FLAG_BOOL:
                r = boolarg(v, &b);
                if (r < 0)
                        return r;
                return set_flag(d, f, b ? "yes" : "no", ret_error);
        default:
                return custom_flag(d, st, f, v, ret_error);
        }
}

/* inlets' --basic-auth-username/--basic-auth-password and --bearer-token: credentials in
 * memory, for every host the client serves (as inlets has them). */
static int inline_credentials(Definition *d, ArgsState *st, char **ret_error) {
        _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
        _cleanup_(bearer_tokens_freep) BearerTokens *b = NULL;
        int r;

        if (st->basic_user && !st->basic_password)
                return errorf(ret_error, -EINVAL, "--basic-auth-username needs --basic-auth-password");
        if (st->basic_password) {
                r = htpasswd_new_single(st->basic_user ?: "admin", st->basic_password, &h);
                if (r < 0)
                        return errorf(ret_error, r, "--basic-auth-username/--basic-auth-password: %s",
                                      r == -EINVAL ? "a user name without ':' and a password of at most 128 bytes"
                                                   : strerror(-r));
                r = http_rules_add_credentials(&d->http_rules, TAKE_PTR(h), NULL);
                if (r < 0)
                        return errorf(ret_error, r, "--basic-auth-password: %s",
                                      r == -EEXIST ? "--basic-auth-file is given too" : strerror(-r));
        }
        if (st->bearer_token) {
                r = bearer_tokens_parse(st->bearer_token, strlen(st->bearer_token), "--bearer-token", &b, ret_error);
                if (r < 0)
                        return r;
                r = http_rules_add_credentials(&d->http_rules, NULL, TAKE_PTR(b));
                if (r < 0)
                        return errorf(ret_error, r, "--bearer-token: %s",
                                      r == -EEXIST ? "--bearer-token-file is given too" : strerror(-r));
        }
        return 0;
}

/* --control-port/--control-addr and --port are two halves of one address each. */
static int set_listen_addresses(Definition *d, const char *role, const ArgsState *st, char **ret_error) {
        char port_s[16];
        int r = 0;

        if (streq(role, "server")) {
                _cleanup_free_ char *addr = NULL;
                const char *ca = st->control_addr;
                if (asprintf(&addr, "%s%s%s:%u", ca && strchr(ca, ':') ? "[" : "", ca ?: "0.0.0.0",
                             ca && strchr(ca, ':') ? "]" : "", st->control_port) < 0)
                        return -ENOMEM;
                r = set_key(d, "Server", "ControlListen", addr, "--control-addr", ret_error);
                if (r >= 0 && st->port) {
                        snprintf(port_s, sizeof(port_s), "0.0.0.0:%u", st->port);
                        r = set_key(d, "Server", "HTTPListen", port_s, "--port", ret_error);
                }
        } else if (streq(role, "fileserver")) {
                snprintf(port_s, sizeof(port_s), "127.0.0.1:%u", st->port ?: DEFAULT_FILESERVER_PORT);
                r = set_key(d, "FileServer", "Listen", port_s, "--port", ret_error);
        }
        return r;
}

int inlets_args_parse(int argc, char *argv[], const char *name, Definition **ret, InletsArgs *ret_args,
                      char **ret_error) {
        struct option options[ELEMENTSOF(flags) + 1] = {};
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_(args_state_done) ArgsState st = { .control_port = DEFAULT_CONTROL_PORT };
        const char *mode, *role;
        int c, r = 0;

        assert(argv || argc == 0);
        assert(ret);
        assert(ret_args);

        if (argc >= 1 && argv[0] && streq(argv[0], "fileserver")) {
                /* "fileserver …" is "http fileserver …" (inlets 0.9 and later) */
                mode = "http";
                role = "fileserver";
        } else if (argc < 2 || !inlets_args_is_mode(argv[0]) || streq(argv[0], "fileserver"))
                return errorf(ret_error, -EINVAL, "expected tcp|http server|client|fileserver");
        else {
                mode = argv[0];
                role = argv[1];
        }
        if (!streq(role, "server") && !streq(role, "client") && !(streq(role, "fileserver") && streq(mode, "http")))
                return errorf(ret_error, -EINVAL, "unknown command '%s %s'", mode, role);
        d = definition_new(name, NULL);
        if (!d)
                return -ENOMEM;
        r = set_key(d, "Tunnel", "Role", role, role, ret_error);
        if (r >= 0 && !streq(role, "fileserver"))
                r = set_key(d, "Tunnel", "Mode", mode, mode, ret_error);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                options[i] = (struct option) {
                        .name = flags[i].name,
                        .has_arg = flags[i].kind == FLAG_BOOL || flags[i].kind == FLAG_CUSTOM_OPTIONAL
                                           ? optional_argument : required_argument,
                        .val = FLAG_VAL + (int) i,
                };
        optind = 0; /* argv[1] is the role (argv[0] "fileserver" alone): getopt starts after it */
        opterr = 0;
        if (!streq(argv[0], "fileserver")) {
                argc--;
                argv++;
        }
        /* inlets documents one short flag: -p, --port. */
        while (r >= 0 && (c = getopt_long(argc, argv, "p:", options, NULL)) >= 0)
                r = apply_flag(d, &st, c == 'p' ? FLAG_VAL + flag_index("port") : c, optarg, argv[optind - 1],
                               ret_error);
        if (r >= 0 && optind < argc)
                r = errorf(ret_error, -EINVAL, "unexpected argument '%s'", argv[optind]);
        if (r >= 0)
                r = apply_upstream_hostport(d, &st, ret_error);
        if (r >= 0)
                r = set_listen_addresses(d, role, &st, ret_error);
        if (r >= 0)
                r = inline_credentials(d, &st, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        *ret_args = st.args;
        st.args = (InletsArgs) {};
        return 0;
}

void inlets_args_done(InletsArgs *a) {
        assert(a);
        free(a->token_file);
        free(a->token_env);
        free(a->image);
        *a = (InletsArgs) {};
}

/* One item of a port list: "A", or "B-C" (Ports=: "PUBLIC:UPSTREAM") when the two differ. */
static void write_port_item(FILE *f, size_t i, unsigned a, unsigned b, char sep) {
        if (a == b)
                fprintf(f, "%s%u", i ? " " : "", a);
        else
                fprintf(f, "%s%u%c%u", i ? " " : "", a, sep, b);
}

/* AllowPorts=/AllowUDPPorts=: pairs [lo, hi]; nothing when empty. */
static void write_port_ranges(FILE *f, const char *key, const uint16_t *ranges, size_t n) {
        if (n == 0)
                return;
        fputs(key, f);
        for (size_t i = 0; i + 1 < n; i += 2)
                write_port_item(f, i, ranges[i], ranges[i + 1], '-');
        fputc('\n', f);
}

/* Ports=/UDPPorts= items; nothing when empty. */
static void write_port_maps(FILE *f, const char *key, const PortMap *ports, size_t n) {
        if (n == 0)
                return;
        fputs(key, f);
        for (size_t i = 0; i < n; i++) {
                const PortMap *p = &ports[i];
                if (p->host) {
                        bool v6 = strchr(p->host, ':');
                        fprintf(f, "%s%u:%s%s%s:%u", i ? " " : "", p->public_port, v6 ? "[" : "", p->host,
                                v6 ? "]" : "", p->upstream_port);
                } else
                        write_port_item(f, i, p->public_port, p->upstream_port, ':');
        }
        fputc('\n', f);
}

/* One AllowFrom=/DenyFrom=/ControlAllowFrom= line: the rules of one kind, if any. */
static void write_access(FILE *f, const char *key, const AccessList *l, bool allow) {
        bool any = false;

        for (size_t i = 0; i < l->n_rules; i++) {
                char item[ACCESS_RULE_STR_MAX];

                if (l->rules[i].allow != allow)
                        continue;
                fprintf(f, "%s%s", any ? " " : key, access_rule_format(&l->rules[i], item));
                any = true;
        }
        if (any)
                fputc('\n', f);
}

static void write_server(FILE *f, const Definition *d) {
        char addr[SOCKADDR_STR_MAX];

        fprintf(f, "\n[Server]\nControlListen=%s\n", socket_address_format(&d->control_listen, addr));
        socket_address_format(&d->data_listen, addr);
        fprintf(f, "DataListen=%.*s\n", (int) (strrchr(addr, ':') - addr), addr);
        if (d->mode == MODE_HTTP)
                fprintf(f, "HTTPListen=%s\n", socket_address_format(&d->http_listen, addr));
        if (d->mode == MODE_HTTP && d->https_listen.len > 0)
                fprintf(f, "HTTPSListen=%s\n", socket_address_format(&d->https_listen, addr));
        for (size_t i = 0; i < d->n_acme_domains; i++)
                fprintf(f, "ACMEDomain=%s\n", d->acme_domains[i]);
        if (d->acme_email)
                fprintf(f, "ACMEEmail=%s\n", d->acme_email);
        if (d->n_acme_domains > 0 && d->acme_directory)
                fprintf(f, "ACMEDirectory=%s\n", d->acme_directory);
        if (d->acme_ca_file)
                fprintf(f, "ACMECAFile=%s\n", d->acme_ca_file);
        if (!d->tls)
                fprintf(f, "TLS=no\n");
        else if (d->certificate_file)
                fprintf(f, "CertificateFile=%s\nKeyFile=%s\n", d->certificate_file, d->key_file);
        else
                fprintf(f, "AutoTLS=yes\n");
        for (size_t i = 0; i < d->n_auto_tls_san; i++)
                fprintf(f, "AutoTLSSAN=%s\n", d->auto_tls_san[i]);
        write_port_ranges(f, "AllowPorts=", d->allow_ports, d->n_allow_ports);
        write_port_ranges(f, "AllowUDPPorts=", d->allow_udp_ports, d->n_allow_udp_ports);
        write_access(f, "AllowFrom=", &d->access, true);
        write_access(f, "DenyFrom=", &d->access, false);
        write_access(f, "ControlAllowFrom=", &d->control_access, true);
        write_access(f, "AcceptProxyProtocol=", &d->accept_proxy, true);
        write_access(f, "ControlAcceptProxyProtocol=", &d->control_accept_proxy, true);
        for (size_t i = 0; i < d->n_allow_forward_to; i++) {
                const ForwardRule *r = &d->allow_forward_to[i];
                char p[ADDRESS_PREFIX_STR_MAX];
                bool v6 = !r->host && r->prefix.family == AF_INET6 && r->port;
                fprintf(f, "%s%s%s%s%s", i ? " " : "AllowForwardTo=", v6 ? "[" : "",
                        r->host ?: address_prefix_format(&r->prefix, p), v6 ? "]" : "", r->port ? ":" : "");
                if (r->port)
                        fprintf(f, "%u", r->port);
        }
        if (d->n_allow_forward_to > 0)
                fputc('\n', f);
}

static void write_client(FILE *f, const Definition *d) {
        fprintf(f, "\n[Client]\nURL=%s\n", d->url);
        if (d->ca_file)
                fprintf(f, "CAFile=%s\n", d->ca_file);
        if (d->has_fingerprint) {
                _cleanup_free_ char *hex = hexmem(d->server_fingerprint, 32);
                fprintf(f, "ServerFingerprint=sha256:%s\n", hex ?: "");
        }
        for (size_t i = 0; i < d->n_upstreams; i++)
                fprintf(f, "Upstream=%s\n", d->upstreams[i]);
        write_port_maps(f, "Ports=", d->ports, d->n_ports);
        write_port_maps(f, "UDPPorts=", d->udp_ports, d->n_udp_ports);
        if (d->client_id)
                fprintf(f, "ClientID=%s\n", d->client_id);
        for (size_t i = 0; i < d->n_local_forwards; i++) {
                const LocalForward *l = &d->local_forwards[i];
                char a[SOCKADDR_STR_MAX];
                bool v6 = strchr(l->host, ':');
                fprintf(f, "%s%s:%s%s%s:%u", i ? " " : "LocalForward=", socket_address_format(&l->listen, a),
                        v6 ? "[" : "", l->host, v6 ? "]" : "", l->port);
        }
        if (d->n_local_forwards > 0)
                fputc('\n', f);
        if (d->proxy_protocol > PROXY_PROTOCOL_NO)
                fprintf(f, "ProxyProtocol=%s\n", proxy_protocol_to_string(d->proxy_protocol));
        for (size_t i = 0; i < d->n_proxy_protocol_ports; i++)
                fprintf(f, "ProxyProtocol=%s %u\n",
                        proxy_protocol_to_string(d->proxy_protocol_ports[i].version),
                        d->proxy_protocol_ports[i].public_port);
        /* Files only: credentials made in memory are refused by --generate before this. */
        for (size_t i = 0; i < d->http_rules.n_basic; i++)
                if (d->http_rules.basic[i].path)
                        fprintf(f, "BasicAuthFile=%s%s%s\n", d->http_rules.basic[i].host ?: "",
                                d->http_rules.basic[i].host ? "=" : "", d->http_rules.basic[i].path);
        for (size_t i = 0; i < d->http_rules.n_bearer; i++)
                if (d->http_rules.bearer[i].path)
                        fprintf(f, "BearerTokenFile=%s%s%s\n", d->http_rules.bearer[i].host ?: "",
                                d->http_rules.bearer[i].host ? "=" : "", d->http_rules.bearer[i].path);
}

char *definition_to_ini(const Definition *d, const char *token_file) {
        char *buf = NULL, addr[SOCKADDR_STR_MAX];
        size_t size = 0;
        FILE *f;

        assert(d);

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fprintf(f, "# inletsd definition%s%s\n[Tunnel]\nRole=%s\n", d->name ? " " : "", d->name ?: "",
                role_to_string(d->role));
        if (d->role != ROLE_FILESERVER)
                fprintf(f, "Mode=%s\n", mode_to_string(d->mode));
        if (token_file)
                fprintf(f, "TokenFile=%s\n", token_file);
        else
                fprintf(f, "# The token: NAME.token beside this file, or LoadCredential=token:… under systemd.\n");
        switch (d->role) {
        case ROLE_SERVER:
                write_server(f, d);
                break;
        case ROLE_CLIENT:
                write_client(f, d);
                break;
        case ROLE_FILESERVER:
                fprintf(f, "\n[FileServer]\nListen=%s\nWebroot=%s\nAllowBrowsing=%s\n",
                        socket_address_format(&d->listen, addr), d->webroot, d->allow_browsing > 0 ? "yes" : "no");
                if (d->basic_auth == 0)
                        fprintf(f, "BasicAuth=no\n");
                break;
        default:
                break;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

char *definition_to_k8s_yaml(const Definition *d, const char *image) {
        _cleanup_free_ char *ini = NULL;
        const char *name = d->name ?: "inlets-client";
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        assert(d);
        ini = definition_to_ini(d, "/var/run/secrets/inlets/token");
        if (!ini)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fprintf(f,
                "# inletsd %s client %s as Kubernetes objects. First the token, as a Secret:\n"
                "#   kubectl create secret generic %s-token --from-file=token=./token\n"
                "# then: kubectl apply -f THIS_FILE. The image (%s) must hold inletsd: tools/image builds it\n"
                "# from the .debs; push it where the cluster pulls from (docs/operator.md).\n",
                mode_to_string(d->mode), name, name, image ?: INLETSD_DEFAULT_IMAGE);
        if (d->ca_file || d->upstream_ca_file || d->http_rules.n_basic > 0 || d->http_rules.n_bearer > 0 ||
            d->proxy_password_file)
                fprintf(f, "# The files the definition names (CAFile=, UpstreamCAFile=, BasicAuthFile=, ...) must be\n"
                           "# mounted at the same paths too.\n");
        fprintf(f, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  %s.conf: |\n", name, name);
        for (const char *p = ini; *p;) {
                size_t n = strcspn(p, "\n");
                fprintf(f, "    %.*s\n", (int) n, p);
                p += n + (p[n] == '\n');
        }
        fprintf(f,
                "---\n"
                "apiVersion: apps/v1\n"
                "kind: Deployment\n"
                "metadata:\n"
                "  name: %s\n"
                "spec:\n"
                "  replicas: 1\n"
                "  selector:\n"
                "    matchLabels:\n"
                "      app.kubernetes.io/name: %s\n"
                "  template:\n"
                "    metadata:\n"
                "      labels:\n"
                "        app.kubernetes.io/name: %s\n"
                "    spec:\n"
                "      securityContext:\n"
                "        runAsNonRoot: true\n"
                "        runAsUser: 65532\n"
                "      containers:\n"
                "      - name: inletsd\n"
                "        image: %s\n"
                "        command: [\"inletsd\"]\n"
                "        args: [\"--no-bus\", \"--config\", \"/etc/inlets.d/%s.conf\"]\n"
                "        securityContext:\n"
                "          allowPrivilegeEscalation: false\n"
                "          readOnlyRootFilesystem: true\n"
                "          capabilities:\n"
                "            drop: [\"ALL\"]\n"
                "        volumeMounts:\n"
                "        - name: definition\n"
                "          mountPath: /etc/inlets.d\n"
                "          readOnly: true\n"
                "        - name: token\n"
                "          mountPath: /var/run/secrets/inlets\n"
                "          readOnly: true\n"
                "      volumes:\n"
                "      - name: definition\n"
                "        configMap:\n"
                "          name: %s\n"
                "      - name: token\n"
                "        secret:\n"
                "          secretName: %s-token\n",
                name, name, name, image ?: INLETSD_DEFAULT_IMAGE, name, name, name);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
