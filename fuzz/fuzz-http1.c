// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: HTTP/1.1 heads (the upgrade request and its response) and the header
 * helpers the server and client apply to them. */

#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ssize_t end;
        HttpHead *h = NULL;

        if (size < 1)
                return 0;
        end = http_head_end((const char *) data + 1, size - 1, HTTP_HEAD_MAX_DEFAULT);
        if (end <= 0)
                return 0;
        if (http_head_parse((const char *) data + 1, (size_t) end, data[0] & 1, HTTP_HEADERS_MAX_DEFAULT, &h) < 0)
                return 0;
        (void) http_header_has_token(http_head_get(h, "Connection"), "upgrade");
        (void) http_head_count(h, "Authorization");
        http_head_free(h);
        return 0;
}
