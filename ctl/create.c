// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl create: an exit server on a host that does not exist yet. The token and the CA
 * are made here; the host gets them in its cloud-init user-data, and the client definition
 * written here pins that CA. This version has the "cloud-init" provider, which prints the
 * user-data for any cloud (paste it as user data, or feed it to cloud-init yourself). */

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cloud.h"
#include "ctl.h"
#include "log.h"
#include "util.h"

static void usage(FILE *f) {
        fprintf(f, "Usage: inletsctl create --provider cloud-init [--name NAME] [--mode tcp|http] [--ports LIST]\n"
                   "                        [--control-port 8123] [--package-url URL] [--host HOST] [--output-dir DIR]\n"
                   "Prints the exit server's cloud-init user-data on standard output and writes the client side\n"
                   "(NAME.conf, NAME.token 0600, NAME-ca.crt) into DIR (default: the current directory).\n");
}

int verb_create(int argc, char *argv[]) {
        enum { OPT_PROVIDER = 0x100, OPT_NAME, OPT_MODE, OPT_PORTS, OPT_CONTROL_PORT, OPT_PACKAGE_URL, OPT_HOST,
               OPT_OUTPUT_DIR };
        static const struct option options[] = {
                { "provider", required_argument, NULL, OPT_PROVIDER },
                { "name", required_argument, NULL, OPT_NAME },
                { "mode", required_argument, NULL, OPT_MODE },
                { "ports", required_argument, NULL, OPT_PORTS },
                { "control-port", required_argument, NULL, OPT_CONTROL_PORT },
                { "package-url", required_argument, NULL, OPT_PACKAGE_URL },
                { "host", required_argument, NULL, OPT_HOST },
                { "output-dir", required_argument, NULL, OPT_OUTPUT_DIR },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *provider = NULL, *name = "inlets", *ports = NULL, *package_url = NULL, *host = NULL, *dir = ".";
        _cleanup_(exit_server_plan_freep) ExitServerPlan *p = NULL;
        _cleanup_free_ char *err = NULL, *user_data = NULL, *client = NULL, *conf_path = NULL, *tok_path = NULL,
                            *ca_path = NULL, *token_line = NULL;
        uint16_t control_port = DEFAULT_CONTROL_PORT;
        Mode mode = MODE_TCP;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_PROVIDER:
                        provider = optarg;
                        break;
                case OPT_NAME:
                        name = optarg;
                        break;
                case OPT_MODE:
                        mode = mode_from_string(optarg);
                        if (mode < 0) {
                                fprintf(stderr, "--mode: expected tcp or http, got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_PORTS:
                        ports = optarg;
                        break;
                case OPT_CONTROL_PORT:
                        if (parse_port(optarg, &control_port) < 0) {
                                fprintf(stderr, "--control-port: expected a port, got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_PACKAGE_URL:
                        package_url = optarg;
                        break;
                case OPT_HOST:
                        host = optarg;
                        break;
                case OPT_OUTPUT_DIR:
                        dir = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        if (optind < argc || !provider) {
                usage(stderr);
                return EXIT_USAGE;
        }
        if (!streq(provider, "cloud-init")) {
                fprintf(stderr, "Provider '%s' is not in this version; --provider cloud-init prints user-data that any "
                                "cloud takes.\n", provider);
                return EXIT_USAGE;
        }

        r = exit_server_plan_new(name, mode, ports, control_port, package_url, &p, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err ?: strerror(-r));
                return EXIT_USAGE;
        }
        user_data = exit_server_user_data(p);
        if (asprintf(&conf_path, "%s/%s.conf", dir, name) < 0 || asprintf(&tok_path, "%s/%s.token", dir, name) < 0 ||
            asprintf(&ca_path, "%s/%s-ca.crt", dir, name) < 0 || asprintf(&token_line, "%s\n", p->token) < 0 ||
            !user_data || !(client = exit_server_client_conf(p, host ?: "EXIT-SERVER-ADDRESS", tok_path)))
                return log_oom(), EXIT_ERROR;
        if (access(conf_path, F_OK) == 0 && !arg.force) {
                fprintf(stderr, "%s exists; --force replaces it (and its token).\n", conf_path);
                return EXIT_ERROR;
        }
        r = write_file_atomic(tok_path, token_line, strlen(token_line), 0600);
        if (r >= 0)
                r = write_file_atomic(ca_path, p->ca_crt, strlen(p->ca_crt), 0644);
        if (r >= 0)
                r = write_file_atomic(conf_path, client, strlen(client), 0644);
        explicit_bzero(token_line, strlen(token_line));
        if (r < 0) {
                fprintf(stderr, "Cannot write the client files in %s: %s\n", dir, strerror(-r));
                return EXIT_ERROR;
        }
        fputs(user_data, stdout);
        fprintf(stderr, "Exit server '%s': give the user-data above to the new host (it holds the token and the CA "
                        "key).\nClient definition: %s (token %s, CA %s, pinned %s).\n", name, conf_path, tok_path,
                ca_path, p->ca_fingerprint);
        if (!host)
                fprintf(stderr, "Set URL= in %s to the host's address once it has one (or pass --host).\n", conf_path);
        if (!package_url)
                fprintf(stderr, "No --package-url: the host installs the 'inletsd' package from its own archive.\n");
        return EXIT_OK;
}
