// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the definition parser and the checks after it, on arbitrary file content;
 * and the same bytes as a proxy URL, a no_proxy list (from the environment) and the arguments
 * of a "forward" control message (from the network). */

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Definition *d;
        char *err = NULL;

        log_max_level = -1; /* silence warnings */
        char *text = strndup((const char *) data, size);
        if (text) {
                ProxyURL u = {};
                const char *reason;
                if (proxy_url_parse(text, &u, &reason) >= 0 && !u.host)
                        abort(); /* a parsed URL always has a host */
                proxy_url_done(&u);
                (void) no_proxy_matches(text, "tunnel.example.com", 8123);
                (void) no_proxy_matches(text, "10.1.2.3", 443);
                (void) no_proxy_matches(text, "fd00::1", 443);
                /* The "forward" control message's arguments (from the network). */
                uint32_t id;
                uint16_t port;
                char *host = NULL;
                if (forward_request_parse(text, &id, &host, &port) >= 0 && (id == 0 || port == 0 || !host || !*host))
                        abort();
                free(host);
                free(text);
        }
        d = definition_new("fuzz", "fuzz.conf");
        if (!d)
                return 0;
        if (definition_parse_buffer(d, "fuzz.conf", (const char *) data, size, &err) >= 0) {
                /* Keep TokenFile= from reading real files. */
                free(d->token_file);
                d->token_file = NULL;
                free(d->proxy_password_file);
                d->proxy_password_file = NULL;
                if (!d->token)
                        d->token = strdup("fuzz-token-0123456789");
                (void) definition_finish(d, &err);
        }
        free(err);
        definition_free(d);
        return 0;
}
