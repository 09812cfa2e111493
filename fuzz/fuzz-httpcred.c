// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: what an HTTP access rule reads from outside, as an htpasswd file, a bearer
 * token file and an Authorization value (no hashing: crypt is meant to be slow). Whatever comes
 * in, a parse either fails with a message or gives entries within the bounds, and a parsed
 * Authorization value points inside what it owns. */

#include <stdlib.h>
#include <string.h>

#include "httpcred.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(htpasswd_freep) Htpasswd *h = NULL;
        _cleanup_(bearer_tokens_freep) BearerTokens *b = NULL;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL;
        HttpCredentials c = {};
        int r;

        if (size > 65536)
                return 0;
        r = htpasswd_parse((const char *) data, size, "fuzz", &h, &e1);
        if ((r < 0) != (h == NULL) || (r < 0 && r != -ENOMEM && !e1) ||
            (h && (htpasswd_users(h) == 0 || htpasswd_users(h) > HTPASSWD_USERS_MAX)))
                abort();
        r = bearer_tokens_parse((const char *) data, size, "fuzz", &b, &e2);
        if ((r < 0) != (b == NULL) || (r < 0 && r != -ENOMEM && !e2))
                abort();
        if (b && !bearer_tokens_match(b, "x", 0) && bearer_tokens_match(b, "", 0))
                abort();
        if (h) {
                /* The hash a name is checked with: the user's own, or a decoy of the file's that
                 * is the same for the same name. */
                bool known, known2;
                const char *hash = htpasswd_lookup(h, (const char *) data, MIN(size, 64u), &known);
                if (!hash || htpasswd_lookup(h, (const char *) data, MIN(size, 64u), &known2) != hash ||
                    known != known2)
                        abort();
        }

        r = http_authorization_parse((const char *) data, size, &c);
        if (r >= 0) {
                const char *lo = c.buf, *hi = c.buf + c.buf_len;
                if (c.scheme == HTTP_AUTH_BASIC &&
                    (c.user < lo || c.user + c.user_len > hi || c.password < lo || c.password + c.password_len > hi ||
                     c.user_len + 1 + c.password_len != c.buf_len))
                        abort();
                if (c.scheme == HTTP_AUTH_BEARER && (c.token != lo || c.token_len != c.buf_len || c.token_len == 0))
                        abort();
        } else if (r != -EBADMSG && r != -ENOMEM)
                abort();
        http_credentials_done(&c);
        return 0;
}
