// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the definition parser and the checks after it, on arbitrary file content. */

#include "conf.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Definition *d;
        char *err = NULL;

        log_max_level = -1; /* silence warnings */
        d = definition_new("fuzz", "fuzz.conf");
        if (!d)
                return 0;
        if (definition_parse_buffer(d, "fuzz.conf", (const char *) data, size, &err) >= 0) {
                /* Keep TokenFile= from reading real files. */
                free(d->token_file);
                d->token_file = NULL;
                if (!d->token)
                        d->token = strdup("fuzz-token-0123456789");
                (void) definition_finish(d, &err);
        }
        free(err);
        definition_free(d);
        return 0;
}
