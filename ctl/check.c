// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl check FILE|NAME: validate a definition offline, as the daemon would load it. */

#include <stdio.h>

#include "conf.h"
#include "ctl.h"
#include "macro.h"

int verb_check(int argc, char *argv[]) {
        int ret = EXIT_OK;

        if (argc < 2) {
                fprintf(stderr, "Usage: inletsctl check FILE|NAME...\n");
                return EXIT_USAGE;
        }
        for (int i = 1; i < argc; i++) {
                _cleanup_(definition_freep) Definition *d = NULL;
                _cleanup_free_ char *path = NULL, *err = NULL;
                const char *name = NULL;
                int r;

                /* A bare NAME means the installed definition. */
                if (!strchr(argv[i], '/') && !strstr(argv[i], ".conf")) {
                        name = argv[i];
                        if (asprintf(&path, "%s/%s.conf", arg.config_dir, name) < 0)
                                return EXIT_ERROR;
                } else if (!(path = strdup(argv[i])))
                        return EXIT_ERROR;
                r = definition_load(path, name, &d, &err);
                if (r < 0) {
                        fprintf(stderr, "%s\n", err ?: strerror(-r));
                        ret = EXIT_ERROR;
                        continue;
                }
                printf("%s: OK (%s, %s mode)\n", path, role_to_string(d->role), mode_to_string(d->mode));
        }
        return ret;
}
