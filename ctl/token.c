// SPDX-License-Identifier: LGPL-2.1-or-later
/* inletsctl token: a fresh random token (256 bits, hex), for NAME.token files. */

#include <stdio.h>

#include "crypto-util.h"
#include "ctl.h"
#include "macro.h"

int verb_token(int argc, char *argv[]) {
        _cleanup_(erase_and_freep) char *t = NULL;

        if (argc != 1) {
                fprintf(stderr, "Usage: inletsctl token\n");
                return EXIT_USAGE;
        }
        if (random_token(&t) < 0) {
                fprintf(stderr, "Failed to generate a token.\n");
                return EXIT_ERROR;
        }
        puts(t);
        return EXIT_OK;
}
