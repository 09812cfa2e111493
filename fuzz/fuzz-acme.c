// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: what an ACME CA sends back (directory, order, authorization, problem
 * document). The first byte picks the parser; whatever parses must be well-formed. */

#include <stdio.h>

#include "acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *json = (const char *) data + 1;
        size_t n = size - 1;

        if (size < 1 || size > 65536)
                return 0;
        switch (data[0] & 3) {
        case 0: {
                AcmeDirectory d = {};
                if (acme_parse_directory(json, n, &d) >= 0 && (!d.new_nonce || !d.new_account || !d.new_order))
                        abort();
                acme_directory_done(&d);
                break;
        }
        case 1: {
                AcmeOrder o = {};
                if (acme_parse_order(json, n, &o) >= 0) {
                        if (!o.status || !o.finalize)
                                abort();
                        for (size_t i = 0; i < o.n_authorizations; i++)
                                if (!o.authorizations[i])
                                        abort();
                }
                acme_order_done(&o);
                break;
        }
        case 2: {
                AcmeAuthz a = {};
                if (acme_parse_authz(json, n, &a) >= 0) {
                        if (!a.status || !a.identifier)
                                abort();
                        if (a.token && !acme_token_is_valid(a.token, strlen(a.token)))
                                abort();
                }
                acme_authz_done(&a);
                break;
        }
        default:
                free(acme_problem_string(json, n, data[0] >> 2));
        }
        return 0;
}
