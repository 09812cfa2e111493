// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsd: one tunnel per process. main() parses the command line; run() builds the manager,
 * runs the loop and is the one place that turns an error into an exit code. */

#include <getopt.h>
#include <stdio.h>

#include "conf.h"
#include "log.h"
#include "manager.h"
#include "version.h"

static const char *arg_config = NULL;
static const char *arg_config_dir = SYSCONFDIR "/inlets.d";
static const char *arg_name = NULL;
static int arg_log_level = -1;
static BusMode arg_bus = BUS_SYSTEM;

static void help(void) {
        printf("Usage: inletsd [OPTIONS] NAME\n"
               "       inletsd [OPTIONS] --config FILE\n\n"
               "Runs the tunnel defined in %s/NAME.conf (or FILE) until stopped:\n"
               "an exit server, a tunnel client, or a fileserver, as its Role= says.\n\n"
               "Options:\n"
               "  -c, --config FILE       Run the definition in FILE\n"
               "      --config-dir DIR    Look up NAME in DIR (default: %s)\n"
               "  -v, --verbose           Log debug messages\n"
               "      --log-level LEVEL   err, warning, notice, info or debug\n"
               "      --user              Offer the D-Bus API on the session bus\n"
               "      --no-bus            Run without the D-Bus API\n"
               "  -h, --help              Show this help\n"
               "      --version           Show the version and git revision\n\n"
               "See inletsd(8) and inlets.d(5).\n",
               SYSCONFDIR "/inlets.d", SYSCONFDIR "/inlets.d");
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG_DIR, ARG_LOG_LEVEL, ARG_USER, ARG_NO_BUS };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
                { "verbose", no_argument, NULL, 'v' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "user", no_argument, NULL, ARG_USER },
                { "no-bus", no_argument, NULL, ARG_NO_BUS },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hc:v", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("inletsd %s (git %s)\n", PROJECT_VERSION, GIT_REVISION);
                        return 0;
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
                        break;
                case ARG_NO_BUS:
                        arg_bus = BUS_NONE;
                        break;
                default:
                        return -EINVAL;
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

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(definition_freep) Definition *def = NULL;
        _cleanup_free_ char *path = NULL, *err = NULL;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        if (arg_log_level >= 0)
                log_max_level = arg_log_level;

        if (arg_name && asprintf(&path, "%s/%s.conf", arg_config_dir, arg_name) < 0)
                return log_oom();
        r = definition_load(path ?: arg_config, arg_name, &def, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err ?: "Failed to load the definition.");
        if (arg_log_level < 0 && def->log_level >= 0)
                log_max_level = def->log_level;
        log_set_tunnel(def->name);

        {
                _cleanup_free_ char *abs = realpath(path ?: arg_config, NULL);
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
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
