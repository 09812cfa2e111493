// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsd: one tunnel per process. main() parses the command line; run() builds the manager,
 * runs the loop and is the one place that turns an error into an exit code. */

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>

#include <sys/stat.h>

#include "conf.h"
#include "inlets-args.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "socket-util.h"
#include "string-util.h"
#include "version.h"

static const char *arg_config = NULL;
static const char *arg_config_dir = SYSCONFDIR "/inlets.d";
static const char *arg_name = NULL;
static int arg_log_level = -1;
static BusMode arg_bus = BUS_SYSTEM;
static bool arg_bus_set = false;
static const char *arg_tunnel_name = NULL;
static int arg_inlets = 0; /* index of the mode word in argv, for inlets-style command lines */

static void help(void) {
        printf("Usage: inletsd [OPTIONS] NAME\n"
               "       inletsd [OPTIONS] --config FILE\n"
               "       inletsd [OPTIONS] tcp|http server|client|fileserver [FLAGS]\n"
               "       inletsd [OPTIONS] fileserver [FLAGS]\n\n"
               "Runs the tunnel defined in %s/NAME.conf (or FILE) until stopped:\n"
               "an exit server, a tunnel client, or a fileserver, as its Role= says.\n\n"
               "Options:\n"
               "  -c, --config FILE       Run the definition in FILE\n"
               "      --config-dir DIR    Look up NAME in DIR (default: %s)\n"
               "  -v, --verbose           Log debug messages\n"
               "      --log-level LEVEL   err, warning, notice, info or debug\n"
               "      --user              Offer the D-Bus API on the session bus\n"
               "      --no-bus            Run without the D-Bus API (the default for tcp/http commands)\n"
               "      --name NAME         The tunnel's name for tcp/http commands (default: inlets)\n"
               "  -h, --help              Show this help\n"
               "      --version           Show the version and git revision\n\n"
               "\n",
               SYSCONFDIR "/inlets.d", SYSCONFDIR "/inlets.d");
        inlets_args_help(stdout);
        printf("\nSee inletsd(8) and inlets.d(5).\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG_DIR, ARG_LOG_LEVEL, ARG_USER, ARG_NO_BUS, ARG_SYSTEM, ARG_NAME };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
                { "verbose", no_argument, NULL, 'v' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "user", no_argument, NULL, ARG_USER },
                { "no-bus", no_argument, NULL, ARG_NO_BUS },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "name", required_argument, NULL, ARG_NAME },
                {}
        };
        int c;

        /* "+": stop at the first word, so "tcp server --port 80" keeps its own flags. */
        while ((c = getopt_long(argc, argv, "+hc:v", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("  _       _      _             _\n"
                               " (_)_ __ | | ___| |_ ___  __| |\n"
                               " | | '_ \\| |/ _ \\ __/ __|/ _` |\n"
                               " | | | | | |  __/ |_\\__ \\ (_| |\n"
                               " |_|_| |_|_|\\___|\\__|___/\\__,_|\n\n");
                        printf("inletsd %s (git %s)\n", PROJECT_VERSION, GIT_REVISION);
                        return 0;
                case ARG_SYSTEM:
                        arg_bus = BUS_SYSTEM;
                        arg_bus_set = true;
                        break;
                case ARG_NAME:
                        if (!string_is_safe_id(optarg, 128))
                                return log_error_errno(EINVAL, "Invalid --name '%s'.", optarg);
                        arg_tunnel_name = optarg;
                        break;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_CONFIG_DIR:
                        arg_config_dir = optarg;
                        break;
                case 'v':
                        arg_log_level = LOG_DEBUG;
                        break;
                case ARG_LOG_LEVEL:
                        arg_log_level = log_parse_level(optarg);
                        if (arg_log_level < 0)
                                return log_error_errno(EINVAL, "Invalid --log-level: %s", optarg);
                        break;
                case ARG_USER:
                        arg_bus = BUS_USER;
                        arg_bus_set = true;
                        break;
                case ARG_NO_BUS:
                        arg_bus = BUS_NONE;
                        arg_bus_set = true;
                        break;
                default:
                        return -EINVAL;
                }

        if (optind < argc && inlets_args_is_mode(argv[optind])) {
                if (arg_config)
                        return log_error_errno(EINVAL, "Give either --config or a tcp/http command, not both.");
                arg_inlets = optind;
                return 1;
        }
        if (optind < argc) {
                if (arg_config)
                        return log_error_errno(EINVAL, "Give either NAME or --config, not both.");
                if (optind + 1 < argc)
                        return log_error_errno(EINVAL, "Too many arguments; see --help.");
                arg_name = argv[optind];
                if (!string_is_safe_id(arg_name, 128) || arg_name[0] == '.')
                        return log_error_errno(EINVAL, "Invalid tunnel name '%s'.", arg_name);
        } else if (!arg_config)
                return log_error_errno(EINVAL, "No tunnel given: inletsd NAME or inletsd --config FILE; see --help.");
        return 1;
}

/* Whether the tunnel binds a port below 1024 itself: a standalone unit has no generator to
 * bind them for it, so only then does it need CAP_NET_BIND_SERVICE. Clients get privileged
 * ports only where AllowPorts= names them. */
static bool binds_privileged_ports(const Definition *d) {
        if (d->role == ROLE_CLIENT)
                return false;
        if (d->role == ROLE_FILESERVER)
                return socket_address_port(&d->listen) < 1024;
        if (socket_address_port(&d->control_listen) < 1024)
                return true;
        if (d->mode == MODE_HTTP)
                return socket_address_port(&d->http_listen) < 1024 ||
                       (d->https_listen.len > 0 && socket_address_port(&d->https_listen) < 1024);
        for (size_t i = 0; i + 1 < d->n_allow_ports; i += 2)
                if (d->allow_ports[i] < 1024)
                        return true;
        return false;
}

static void print_systemd_unit(const Definition *d, const InletsArgs *a, int argc, char *argv[]) {
        printf("# A standalone unit for inletsd %s %s (%s). Save as /etc/systemd/system/inletsd-%s.service.\n"
               "# With the packaged inletsd@.service, prefer: inletsctl define %s %s %s … && systemctl enable --now inletsd@%s\n"
               "[Unit]\nDescription=inletsd %s %s %s\nDocumentation=man:inletsd(8)\n"
               "Wants=network-online.target\nAfter=network-online.target\n\n"
               "[Service]\nType=notify\nExecStart=%s/inletsd --no-bus --name %s",
               argv[0], argv[1], d->name, d->name, d->name, argv[0], argv[1], d->name, d->name, argv[0], argv[1],
               BINDIR, d->name);
        printf(" %s %s", argv[0], argv[1]);
        /* The same flags, minus what the unit does itself: the token comes as a credential. */
        for (int i = 2; i < argc; i++) {
                /* ... and inlets' licence flags, which inletsd ignores (a licence is a secret too). */
                if (strncmp(argv[i], "--generate", 10) == 0 || strncmp(argv[i], "--token", 7) == 0 ||
                    strncmp(argv[i], "--license", 9) == 0 || strncmp(argv[i], "--image", 7) == 0) {
                        if (!strchr(argv[i], '=') && (streq(argv[i], "--generate") || streq(argv[i], "--token") ||
                                                     streq(argv[i], "--token-file") || streq(argv[i], "--token-from") ||
                                                     streq(argv[i], "--token-env") || streq(argv[i], "--license") ||
                                                     streq(argv[i], "--license-file") ||
                                                     streq(argv[i], "--license-env") || streq(argv[i], "--image")))
                                i++;
                        continue;
                }
                printf(" %s", argv[i]);
        }
        printf("\nLoadCredential=token:%s\nStateDirectory=inlets/%s\nRestart=on-failure\nRestartSec=2s\n"
               "DynamicUser=yes\n%s"
               "NoNewPrivileges=yes\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\n"
               "ProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectControlGroups=yes\n"
               "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\nSystemCallFilter=@system-service\n\n"
               "[Install]\nWantedBy=multi-user.target\n",
               a->token_file ?: "/etc/inlets.d/inlets.token", d->name,
               binds_privileged_ports(d) ? "AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
                                         : "CapabilityBoundingSet=\n");
}

/* inletsd tcp server --auto-tls-san … : the flags become a definition; --generate prints it. */
static int run_inlets(int argc, char *argv[], Definition **ret, char **ret_path) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL;
        InletsArgs a = {};
        const char *name = arg_tunnel_name ?: "inlets";
        int r;

        r = inlets_args_parse(argc, argv, name, &d, &a, &err);
        if (r < 0) {
                log_error("%s", err ?: strerror(-r));
                return r;
        }
        if (a.generate != GENERATE_NONE && a.token_env) {
                log_error("--token-env: the token is not written into a definition or a unit; put it in a file "
                          "(mode 0600) and use --token-file.");
                inlets_args_done(&a);
                return -EINVAL;
        }
        if (a.generate != GENERATE_NONE && a.inline_secret) {
                log_error("--%s cannot be written into a definition or a unit: put the credentials in a file "
                          "(htpasswd -cB FILE USER; a token file) and use --basic-auth-file / --bearer-token-file.",
                          a.inline_secret);
                inlets_args_done(&a);
                return -EINVAL;
        }
        if (a.generate == GENERATE_CONFIG) {
                _cleanup_free_ char *ini = NULL;
                r = definition_finish_no_token(d, &err);
                if (r < 0) {
                        log_error("%s", err ?: strerror(-r));
                        return r;
                }
                ini = definition_to_ini(d, a.token_file);
                if (!ini)
                        return log_oom();
                fputs(ini, stdout);
                inlets_args_done(&a);
                return 0;
        }
        if (a.generate == GENERATE_K8S_YAML) {
                _cleanup_free_ char *yaml = NULL;
                r = definition_finish_no_token(d, &err);
                if (r < 0) {
                        log_error("%s", err ?: strerror(-r));
                        inlets_args_done(&a);
                        return r;
                }
                yaml = definition_to_k8s_yaml(d, a.image);
                inlets_args_done(&a);
                if (!yaml)
                        return log_oom();
                fputs(yaml, stdout);
                return 0;
        }
        if (a.generate == GENERATE_SYSTEMD) {
                print_systemd_unit(d, &a, argc, argv);
                inlets_args_done(&a);
                return 0;
        }
        if (a.token_inline)
                log_warning("--token is visible to every user of this machine (ps, /proc): prefer --token-file.");
        if (a.inline_secret)
                log_warning("--%s is visible to every user of this machine (ps, /proc): prefer --%s.", a.inline_secret,
                            streq(a.inline_secret, "bearer-token") ? "bearer-token-file" : "basic-auth-file");
        inlets_args_done(&a);
        /* Auto-TLS state of a foreground run: the service's directory, root's, or the user's. */
        if (!getenv("STATE_DIRECTORY") && d->role == ROLE_SERVER && !d->state_directory && geteuid() != 0 &&
            getenv("HOME")) {
                if (asprintf(&d->state_directory, "%s/.local/state/inletsd/%s", getenv("HOME"), name) < 0)
                        return log_oom();
                for (char *p = d->state_directory + 1; (p = strchr(p, '/')); p++) {
                        *p = 0;
                        (void) mkdir(d->state_directory, 0700);
                        *p = '/';
                }
        }
        r = definition_finish(d, &err);
        if (r < 0) {
                log_error("%s", err ?: strerror(-r));
                return r;
        }
        if (!arg_bus_set)
                arg_bus = BUS_NONE;
        *ret_path = strdup("(command line)");
        if (!*ret_path)
                return log_oom();
        *ret = TAKE_PTR(d);
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(definition_freep) Definition *def = NULL;
        _cleanup_free_ char *path = NULL, *err = NULL;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        raise_fd_limit();
        if (arg_log_level >= 0)
                log_max_level = arg_log_level;
        if (arg_inlets > 0 && (streq(argv[argc - 1], "--help") || streq(argv[argc - 1], "-h"))) {
                inlets_args_help(stdout);
                return 0;
        }

        if (arg_inlets > 0) {
                r = run_inlets(argc - arg_inlets, argv + arg_inlets, &def, &path);
                if (r <= 0)
                        return r;
        } else {
                if (arg_name && asprintf(&path, "%s/%s.conf", arg_config_dir, arg_name) < 0)
                        return log_oom();
                r = definition_load(path ?: arg_config, arg_name, &def, &err);
                if (r < 0)
                        return log_error_errno(r, "%s", err ?: "Failed to load the definition.");
        }
        if (arg_log_level < 0 && def->log_level >= 0)
                log_max_level = def->log_level;
        log_set_tunnel(def->name);

        {
                _cleanup_free_ char *abs = arg_inlets > 0 ? NULL : realpath(path ?: arg_config, NULL);
                r = manager_new(def, abs ?: path ?: arg_config, arg_name, arg_bus, &m);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");
        TAKE_PTR(def);
        r = manager_start(m);
        if (r < 0)
                return r;
        return manager_run(m);
}

int main(int argc, char *argv[]) {
        int r;

        /* A read batch holds up to 32 decrypted records (~16.7 KiB each, GnuTLS's) until one
         * writev() passes them on; freed together they sat at the top of the heap, and glibc's
         * default 128 KiB trim threshold gave them back to the kernel every time: five brk()
         * and fresh zeroed pages per batch. At most 1 MiB of free heap stays for reuse. */
        (void) mallopt(M_TRIM_THRESHOLD, 1 << 20);
        r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
