// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the XML reader for AWS's answers (EC2). Whatever parses must print as JSON
 * that parses again, as deep as it was. */

#include <stdio.h>

#include "xmljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *o = NULL;
        char *err = NULL;

        if (size > 65536)
                return 0;
        if (xml_to_json((const char *) data, size, &o, &err) >= 0) {
                json_tokener *t = json_tokener_new_ex(XML_MAX_DEPTH + 2);
                json_object *again = t ? json_tokener_parse_ex(t, json_object_to_json_string(o), -1) : NULL;
                if (t && o && !again)
                        abort();
                json_object_put(again);
                json_tokener_free(t);
        } else if (!err)
                abort(); /* every refusal says why */
        json_object_put(o);
        free(err);
        return 0;
}
