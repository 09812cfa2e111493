// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the JSON `inletsctl status --url` reads from a server (GET /status), which
 * may be anyone's. Whatever comes in, reading it fails cleanly or gives a TunnelInfo that
 * writes back to JSON which reads again to the same JSON (no member lost or invented). */

#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tunnel-info.h"
#include "web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(json_object_putp) json_object *o = NULL, *again = NULL, *third = NULL;
        _cleanup_free_ char *s = NULL;
        TunnelInfo t = {}, u = {};
        json_tokener *tok;

        if (size > 1 << 20)
                return 0;
        tok = json_tokener_new();
        if (!tok)
                return 0;
        o = json_tokener_parse_ex(tok, (const char *) data, (int) size);
        json_tokener_free(tok);
        if (!o || tunnel_info_from_json(o, &t) < 0)
                return 0;
        again = tunnel_info_json(&t);
        if (tunnel_info_from_json(again, &u) < 0)
                abort();
        third = tunnel_info_json(&u);
        s = strdup(json_object_to_json_string(again));
        if (!s || !streq(s, json_object_to_json_string(third)))
                abort();
        tunnel_info_done(&t);
        tunnel_info_done(&u);
        return 0;
}
