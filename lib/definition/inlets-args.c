// SPDX-License-Identifier: LGPL-2.1-or-later
/* inlets-style command lines; see inlets-args.h. Defaults are inlets PRO's: control port 8123,
 * HTTP data port 8000, fileserver port 8080, auto-TLS on. */

#include <getopt.h>
#include <stdio.h>

#include "inlets-args.h"

enum {
        OPT_AUTO_TLS = 0x100, OPT_AUTO_TLS_SAN, OPT_TOKEN, OPT_TOKEN_FILE, OPT_CONTROL_PORT, OPT_CONTROL_ADDR,
        OPT_PORT, OPT_DATA_ADDR, OPT_URL, OPT_UPSTREAM, OPT_PORTS, OPT_WEBROOT, OPT_ALLOW_BROWSING,
        OPT_GENERATE, OPT_TLS_CA, OPT_FINGERPRINT, OPT_ALLOW_PORTS, OPT_CLIENT_ID, OPT_TLS_CERT, OPT_TLS_KEY,
        OPT_BASIC_AUTH, OPT_LE_DOMAIN, OPT_LE_EMAIL, OPT_LE_ISSUER,
};

bool inlets_args_is_mode(const char *word) {
        return word && (streq(word, "tcp") || streq(word, "http"));
}

void inlets_args_help(FILE *f) {
        fputs("inlets-style command lines (inlets PRO's flags and defaults):\n"
              "  tcp server  [--auto-tls=true] [--auto-tls-san ADDR]... [--control-port 8123] [--control-addr 0.0.0.0]\n"
              "              [--data-addr 0.0.0.0] [--allow-ports LIST] [--tls-cert FILE --tls-key FILE]\n"
              "  tcp client  --url wss://HOST:8123 --upstream HOST --ports 3389,2222:22 [--tls-ca FILE | --fingerprint sha256:…]\n"
              "  http server [--port 8000] (and the server flags above)\n"
              "              [--letsencrypt-domain NAME]... [--letsencrypt-email ADDR] [--letsencrypt-issuer prod|staging|URL]\n"
              "              (Let's Encrypt: HTTP on port 80 unless --port, HTTPS on 443)\n"
              "  http client --url … --upstream [HOST=]URL\n"
              "  http fileserver --webroot DIR [--port 8080] [--allow-browsing] [--basic-auth=true]\n"
              "  every mode: --token-file FILE (or --token T, visible to other users), --generate=config|systemd\n",
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

int inlets_args_parse(int argc, char *argv[], const char *name, Definition **ret, InletsArgs *ret_args,
                      char **ret_error) {
        static const struct option options[] = {
                { "auto-tls", optional_argument, NULL, OPT_AUTO_TLS },
                { "auto-tls-san", required_argument, NULL, OPT_AUTO_TLS_SAN },
                { "token", required_argument, NULL, OPT_TOKEN },
                { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
                { "control-port", required_argument, NULL, OPT_CONTROL_PORT },
                { "control-addr", required_argument, NULL, OPT_CONTROL_ADDR },
                { "port", required_argument, NULL, OPT_PORT },
                { "data-addr", required_argument, NULL, OPT_DATA_ADDR },
                { "url", required_argument, NULL, OPT_URL },
                { "upstream", required_argument, NULL, OPT_UPSTREAM },
                { "ports", required_argument, NULL, OPT_PORTS },
                { "webroot", required_argument, NULL, OPT_WEBROOT },
                { "allow-browsing", optional_argument, NULL, OPT_ALLOW_BROWSING },
                { "basic-auth", optional_argument, NULL, OPT_BASIC_AUTH },
                { "generate", required_argument, NULL, OPT_GENERATE },
                { "tls-ca", required_argument, NULL, OPT_TLS_CA },
                { "fingerprint", required_argument, NULL, OPT_FINGERPRINT },
                { "allow-ports", required_argument, NULL, OPT_ALLOW_PORTS },
                { "client-id", required_argument, NULL, OPT_CLIENT_ID },
                { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
                { "tls-key", required_argument, NULL, OPT_TLS_KEY },
                { "letsencrypt-domain", required_argument, NULL, OPT_LE_DOMAIN },
                { "letsencrypt-email", required_argument, NULL, OPT_LE_EMAIL },
                { "letsencrypt-issuer", required_argument, NULL, OPT_LE_ISSUER },
                {}
        };
        _cleanup_(definition_freep) Definition *d = NULL;
        InletsArgs a = {};
        const char *mode, *role;
        char *control_addr = NULL, port_s[16];
        uint16_t control_port = DEFAULT_CONTROL_PORT, port = 0;
        int c, r = 0, b;

        if (argc < 2 || !inlets_args_is_mode(argv[0]))
                return errorf(ret_error, -EINVAL, "expected tcp|http server|client|fileserver");
        mode = argv[0];
        role = argv[1];
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

        optind = 0; /* argv[1] is the role: getopt starts after it */
        opterr = 0;
        argc--;
        argv++;
        while (r >= 0 && (c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                const char *flag = c >= 0x100 && c - 0x100 < (int) ELEMENTSOF(options) - 1 ? options[c - 0x100].name : "?";
                switch (c) {
                case OPT_AUTO_TLS:
                        r = boolarg(optarg, &b);
                        if (r >= 0)
                                r = set_key(d, "Server", "AutoTLS", b ? "yes" : "no", "--auto-tls", ret_error);
                        break;
                case OPT_AUTO_TLS_SAN:
                        r = set_key(d, "Server", "AutoTLSSAN", optarg, "--auto-tls-san", ret_error);
                        break;
                case OPT_TOKEN:
                        r = set_key(d, "Tunnel", "Token", optarg, "--token", ret_error);
                        a.token_inline = true;
                        break;
                case OPT_TOKEN_FILE:
                        free(a.token_file);
                        a.token_file = strdup(optarg);
                        r = set_key(d, "Tunnel", "TokenFile", optarg, "--token-file", ret_error);
                        break;
                case OPT_CONTROL_PORT:
                        r = parse_port(optarg, &control_port);
                        if (r < 0)
                                r = errorf(ret_error, r, "--control-port: expected a port, got '%s'", optarg);
                        break;
                case OPT_CONTROL_ADDR:
                        control_addr = optarg;
                        break;
                case OPT_PORT:
                        r = parse_port(optarg, &port);
                        if (r < 0)
                                r = errorf(ret_error, r, "--port: expected a port, got '%s'", optarg);
                        break;
                case OPT_DATA_ADDR:
                        r = set_key(d, "Server", "DataListen", optarg, "--data-addr", ret_error);
                        break;
                case OPT_URL:
                        r = set_key(d, "Client", "URL", optarg, "--url", ret_error);
                        break;
                case OPT_UPSTREAM:
                        r = set_key(d, "Client", "Upstream", optarg, "--upstream", ret_error);
                        break;
                case OPT_PORTS:
                        r = add_ports(d, optarg, ret_error);
                        break;
                case OPT_WEBROOT:
                        r = set_key(d, "FileServer", "Webroot", optarg, "--webroot", ret_error);
                        break;
                case OPT_ALLOW_BROWSING:
                        r = boolarg(optarg, &b);
                        if (r >= 0)
                                r = set_key(d, "FileServer", "AllowBrowsing", b ? "yes" : "no", flag, ret_error);
                        break;
                case OPT_BASIC_AUTH:
                        r = boolarg(optarg, &b);
                        if (r >= 0)
                                r = set_key(d, "FileServer", "BasicAuth", b ? "yes" : "no", flag, ret_error);
                        break;
                case OPT_GENERATE:
                        if (streq(optarg, "config"))
                                a.generate = GENERATE_CONFIG;
                        else if (streq(optarg, "systemd"))
                                a.generate = GENERATE_SYSTEMD;
                        else
                                r = errorf(ret_error, -EINVAL, "--generate: expected config or systemd, got '%s'", optarg);
                        break;
                case OPT_TLS_CA:
                        r = set_key(d, "Client", "CAFile", optarg, "--tls-ca", ret_error);
                        break;
                case OPT_FINGERPRINT:
                        r = set_key(d, "Client", "ServerFingerprint", optarg, "--fingerprint", ret_error);
                        break;
                case OPT_ALLOW_PORTS:
                        r = set_key(d, "Server", "AllowPorts", optarg, "--allow-ports", ret_error);
                        break;
                case OPT_CLIENT_ID:
                        r = set_key(d, "Client", "ClientID", optarg, "--client-id", ret_error);
                        break;
                case OPT_TLS_CERT:
                        r = set_key(d, "Server", "CertificateFile", optarg, "--tls-cert", ret_error);
                        break;
                case OPT_TLS_KEY:
                        r = set_key(d, "Server", "KeyFile", optarg, "--tls-key", ret_error);
                        break;
                case OPT_LE_DOMAIN:
                        r = set_key(d, "Server", "ACMEDomain", optarg, "--letsencrypt-domain", ret_error);
                        break;
                case OPT_LE_EMAIL:
                        r = set_key(d, "Server", "ACMEEmail", optarg, "--letsencrypt-email", ret_error);
                        break;
                case OPT_LE_ISSUER: /* inlets: prod or staging */
                        r = set_key(d, "Server", "ACMEDirectory", streq(optarg, "prod") ? "production" : optarg,
                                    "--letsencrypt-issuer", ret_error);
                        break;
                default:
                        r = errorf(ret_error, -EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
                }
        }
        if (r >= 0 && optind < argc)
                r = errorf(ret_error, -EINVAL, "unexpected argument '%s'", argv[optind]);
        if (r < 0) {
                free(a.token_file);
                return r;
        }

        /* --control-port/--control-addr and --port are two halves of one address each. */
        if (streq(role, "server")) {
                _cleanup_free_ char *addr = NULL;
                if (asprintf(&addr, "%s%s%s:%u", control_addr && strchr(control_addr, ':') ? "[" : "",
                             control_addr ?: "0.0.0.0", control_addr && strchr(control_addr, ':') ? "]" : "",
                             control_port) < 0)
                        return -ENOMEM;
                r = set_key(d, "Server", "ControlListen", addr, "--control-addr", ret_error);
                if (r >= 0 && port) {
                        snprintf(port_s, sizeof(port_s), "0.0.0.0:%u", port);
                        r = set_key(d, "Server", "HTTPListen", port_s, "--port", ret_error);
                }
        } else if (streq(role, "fileserver")) {
                snprintf(port_s, sizeof(port_s), "127.0.0.1:%u", port ?: DEFAULT_FILESERVER_PORT);
                r = set_key(d, "FileServer", "Listen", port_s, "--port", ret_error);
        }
        if (r < 0) {
                free(a.token_file);
                return r;
        }
        *ret = TAKE_PTR(d);
        *ret_args = a;
        return 0;
}

void inlets_args_done(InletsArgs *a) {
        free(a->token_file);
        *a = (InletsArgs) {};
}

char *definition_to_ini(const Definition *d, const char *token_file) {
        char *buf = NULL, addr[SOCKADDR_STR_MAX];
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

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
                if (d->n_allow_ports > 0) {
                        fprintf(f, "AllowPorts=");
                        for (size_t i = 0; i + 1 < d->n_allow_ports; i += 2)
                                if (d->allow_ports[i] == d->allow_ports[i + 1])
                                        fprintf(f, "%s%u", i ? " " : "", d->allow_ports[i]);
                                else
                                        fprintf(f, "%s%u-%u", i ? " " : "", d->allow_ports[i], d->allow_ports[i + 1]);
                        fprintf(f, "\n");
                }
                break;
        case ROLE_CLIENT:
                fprintf(f, "\n[Client]\nURL=%s\n", d->url);
                if (d->ca_file)
                        fprintf(f, "CAFile=%s\n", d->ca_file);
                if (d->has_fingerprint) {
                        _cleanup_free_ char *hex = hexmem(d->server_fingerprint, 32);
                        fprintf(f, "ServerFingerprint=sha256:%s\n", hex ?: "");
                }
                for (size_t i = 0; i < d->n_upstreams; i++)
                        fprintf(f, "Upstream=%s\n", d->upstreams[i]);
                if (d->n_ports > 0) {
                        fprintf(f, "Ports=");
                        for (size_t i = 0; i < d->n_ports; i++)
                                if (d->ports[i].public_port == d->ports[i].upstream_port)
                                        fprintf(f, "%s%u", i ? " " : "", d->ports[i].public_port);
                                else
                                        fprintf(f, "%s%u:%u", i ? " " : "", d->ports[i].public_port, d->ports[i].upstream_port);
                        fprintf(f, "\n");
                }
                if (d->client_id)
                        fprintf(f, "ClientID=%s\n", d->client_id);
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
