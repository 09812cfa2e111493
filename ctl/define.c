// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl define NAME tcp server|client … : an inlets-style command line saved as
 * /etc/inlets.d/NAME.conf with its token in NAME.token (0600; generated when not given). */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "conf.h"
#include "crypto-util.h"
#include "ctl.h"
#include "fileio.h"
#include "inlets-args.h"
#include "macro.h"
#include "string-util.h"

int verb_define(int argc, char *argv[]) {
        _cleanup_(definition_freep) Definition *d = NULL;
        _cleanup_free_ char *err = NULL, *conf = NULL, *tokpath = NULL, *ini = NULL, *tokdata = NULL;
        _cleanup_(erase_and_freep) char *token = NULL;
        InletsArgs a = {};
        int r;

        if (argc < 4 || !string_is_safe_id(argv[1], 128) || argv[1][0] == '.') {
                fprintf(stderr, "Usage: inletsctl define NAME tcp|http server|client|fileserver [FLAGS]\n"
                                "       inletsctl define NAME fileserver [FLAGS]\n");
                return EXIT_USAGE;
        }
        r = inlets_args_parse(argc - 2, argv + 2, argv[1], &d, &a, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err ?: strerror(-r));
                return EXIT_ERROR;
        }
        if (a.generate != GENERATE_NONE) {
                fprintf(stderr, "--generate has no meaning for define.\n");
                inlets_args_done(&a);
                return EXIT_USAGE;
        }
        /* The token: --token, the content of --token-file, or a new one. */
        if (d->token)
                token = strdup(d->token);
        else if (a.token_file) {
                r = read_full_file(a.token_file, TOKEN_MAX_LEN, &tokdata, NULL);
                if (r < 0) {
                        fprintf(stderr, "Cannot read %s: %s\n", a.token_file, strerror(-r));
                        inlets_args_done(&a);
                        return EXIT_ERROR;
                }
                token = strdup(strstrip(tokdata));
                explicit_bzero(tokdata, strlen(tokdata));
        } else if (random_token(&token) < 0)
                token = NULL;
        inlets_args_done(&a);
        if (!token)
                return EXIT_ERROR;
        /* Check the whole definition as the daemon will see it: token beside, nothing inline. */
        d->token = erase_and_free(d->token);
        free(d->token_file);
        d->token_file = NULL;
        d->token = strdup(token);
        r = d->token ? definition_finish(d, &err) : -ENOMEM;
        if (r < 0) {
                fprintf(stderr, "%s\n", err ?: strerror(-r));
                return EXIT_ERROR;
        }
        if (asprintf(&conf, "%s/%s.conf", arg.config_dir, argv[1]) < 0 ||
            asprintf(&tokpath, "%s/%s.token", arg.config_dir, argv[1]) < 0 || !(ini = definition_to_ini(d, NULL)))
                return EXIT_ERROR;
        if (access(conf, F_OK) == 0 && !arg.force) {
                fprintf(stderr, "%s exists; use --force to replace it.\n", conf);
                return EXIT_ERROR;
        }
        (void) mkdir(arg.config_dir, 0755);
        r = write_file_atomic(tokpath, token, strlen(token), 0600);
        if (r >= 0)
                r = write_file_atomic(conf, ini, strlen(ini), 0644);
        if (r < 0) {
                fprintf(stderr, "Cannot write %s: %s\n", r == -EACCES ? arg.config_dir : conf, strerror(-r));
                return EXIT_ERROR;
        }
        printf("Wrote %s and %s (0600).\n", conf, tokpath);
        if (d->role == ROLE_CLIENT)
                printf("The exit server needs the same token: %s\n", tokpath);
        printf("Start it with:\n  systemctl enable --now inletsd@%s\n", argv[1]);
        return EXIT_OK;
}
