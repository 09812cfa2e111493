// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: request-path resolution for the fileserver. Whatever comes in, what
 * comes out must be a relative path with no "." or ".." segment and no NUL. */

#include <stdio.h>

#include "macro.h"
#include "urlpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s, *r = NULL;
        bool dir;

        if (size < 1 || size > 8192)
                return 0;
        s = strndup((const char *) data + 1, size - 1);
        if (!s)
                return 0;
        if (url_path_resolve(s, data[0] & 1, &r, &dir) >= 0) {
                if (r[0] == '/' || strlen(r) == 0)
                        abort();
                if (!streq(r, ".")) {
                        char *copy = strdup(r), *save = NULL;
                        for (char *seg = strtok_r(copy, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
                                if (streq(seg, ".") || streq(seg, "..") || (seg[0] == '.' && !(data[0] & 1)))
                                        abort();
                        free(copy);
                }
                free(r);
        }
        free(html_escape(s));
        free(url_escape_segment(s));
        free(s);
        return 0;
}
