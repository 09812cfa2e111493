// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl: the running tunnels over D-Bus, and offline helpers. main() parses options and
 * dispatches to one verb per file. */

#include <getopt.h>
#include <stdio.h>

#include "ctl.h"
#include "log.h"
#include "macro.h"
#include "version.h"

CtlArgs arg = { .config_dir = SYSCONFDIR "/inlets.d" };

static void help(void) {
        printf("Usage: inletsctl [OPTIONS] COMMAND ...\n\n"
               "Inspect and control the inletsd tunnels running on this machine.\n\n"
               "Commands:\n"
               "  list                     List running tunnels\n"
               "  status [NAME...]         Show tunnels in detail (all when no NAME)\n"
               "  status --url wss://HOST:8123 --token-file F [--tls-ca F | --fingerprint sha256:HEX]\n"
               "                           The same for an exit server on another machine (GET /status)\n"
               "  reload NAME              Re-read NAME's definition (polkit: io.inletsd.reload)\n"
               "  disconnect NAME CLIENT   Drop a client of an exit server (polkit: io.inletsd.manage)\n"
               "  renew NAME               Ask NAME's ACME CA for a new certificate now (polkit: io.inletsd.manage)\n"
               "  streams NAME             List NAME's live tunneled connections\n\n"
               "Offline commands:\n"
               "  check FILE|NAME...       Validate definitions\n"
               "  token                    Print a fresh random token\n"
               "  define NAME tcp|http server|client|fileserver [FLAGS]\n"
               "                           Save an inlets-style command line as /etc/inlets.d/NAME.conf\n"
               "                           and NAME.token (see inletsd --help for the flags)\n"
               "  create --provider P [--name NAME] [--mode tcp|http] [--ports LIST] ...\n"
               "                           An exit server: its token and CA made here, its cloud-init user-data\n"
               "                           printed (cloud-init) or a host created with it (digitalocean, hetzner,\n"
               "                           vultr, linode, scaleway, ec2, gce, azure), and\n"
               "                           the client definition that pins its CA (create --help for more)\n"
               "  delete --provider P (--id ID | --ip IP) --access-token-file F\n"
               "  list-hosts --provider P --access-token-file F\n"
               "  version                  Print the version\n\n"
               "Options:\n"
               "      --user               Talk to tunnels on the user bus (inletsd --user)\n"
               "      --json               Print JSON\n"
               "      --no-pager           Accepted for systemctl compatibility (never pages)\n"
               "      --config-dir DIR     Where check and define look (default: %s)\n"
               "      --force              define, create: replace an existing definition\n"
               "      --url URL            status: ask the exit server at URL instead of the local bus\n"
               "      --token-file FILE    status --url: the server's token\n"
               "      --tls-ca FILE        status --url: the CA that signed the server (auto-TLS: its ca.crt)\n"
               "      --fingerprint sha256:HEX  status --url: the server's certificate, pinned\n"
               "  -h, --help               Show this help\n"
               "      --version            Print the version\n\n"
               "Exit status: 0 ok, 1 error, 2 usage, 3 tunnel not running, 4 permission denied.\n"
               "See inletsctl(1).\n",
               SYSCONFDIR "/inlets.d");
}

static int verb_version(int argc, char *argv[]) {
        printf("inletsctl %s (git %s)\n", PROJECT_VERSION, GIT_REVISION);
        return EXIT_OK;
}

int main(int argc, char *argv[]) {
        enum { ARG_USER = 0x100, ARG_JSON, ARG_NO_PAGER, ARG_VERSION, ARG_CONFIG_DIR, ARG_FORCE, ARG_URL,
               ARG_TOKEN_FILE, ARG_FINGERPRINT, ARG_TLS_CA };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "user", no_argument, NULL, ARG_USER },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
                { "force", no_argument, NULL, ARG_FORCE },
                { "url", required_argument, NULL, ARG_URL },
                { "token-file", required_argument, NULL, ARG_TOKEN_FILE },
                { "fingerprint", required_argument, NULL, ARG_FINGERPRINT },
                { "tls-ca", required_argument, NULL, ARG_TLS_CA },
                {}
        };
        static const struct {
                const char *name;
                int (*run)(int argc, char *argv[]);
        } verbs[] = {
                { "list", verb_list },       { "status", verb_status }, { "reload", verb_reload }, { "renew", verb_renew },
                { "disconnect", verb_disconnect }, { "streams", verb_streams }, { "check", verb_check },
                { "token", verb_token },     { "version", verb_version }, { "define", verb_define },
                { "create", verb_create },   { "delete", verb_delete }, { "list-hosts", verb_list_hosts },
        };
        int c, argc_opts = argc;

        log_max_level = LOG_WARNING; /* check's warnings (unknown keys) still show */
        /* define passes inlets-style flags through, create has flags of its own: stop option
         * parsing at the verb. */
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "define") || streq(argv[i], "create") || streq(argv[i], "delete") ||
                    streq(argv[i], "list-hosts")) {
                        argc_opts = i + 1;
                        break;
                }
        while ((c = getopt_long(argc_opts, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case ARG_USER:
                        arg.user = true;
                        break;
                case ARG_JSON:
                        arg.json = true;
                        break;
                case ARG_NO_PAGER:
                        arg.no_pager = true;
                        break;
                case ARG_VERSION:
                        return verb_version(0, NULL);
                case ARG_CONFIG_DIR:
                        arg.config_dir = optarg;
                        break;
                case ARG_FORCE:
                        arg.force = true;
                        break;
                case ARG_URL:
                        arg.url = optarg;
                        break;
                case ARG_TOKEN_FILE:
                        arg.token_file = optarg;
                        break;
                case ARG_FINGERPRINT:
                        arg.fingerprint = optarg;
                        break;
                case ARG_TLS_CA:
                        arg.tls_ca = optarg;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (argc_opts < argc && optind >= argc_opts)
                optind = argc_opts - 1; /* at "define" or "create" */
        if (optind >= argc)
                return verb_list(1, (char *[]) { (char *) "list", NULL });
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].run(argc - optind, argv + optind);
        fprintf(stderr, "Unknown command '%s'; see inletsctl --help.\n", argv[optind]);
        return EXIT_USAGE;
}
