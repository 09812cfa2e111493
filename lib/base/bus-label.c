// SPDX-License-Identifier: LGPL-2.1-or-later
/* Escaping tunnel names into D-Bus object path labels and back; see bus-label.h.
 * "" escapes to "_" so that every name has a non-empty label. */

#include <assert.h>
#include <stdio.h>

#include "bus-label.h"
#include "encoding.h"
#include "macro.h"

char *bus_label_escape(const char *s) {
        char *r, *o;

        assert(s);

        r = o = malloc(strlen(s) * 3 + 2);
        if (!r)
                return NULL;
        if (!*s) {
                strcpy(r, "_");
                return r;
        }
        for (size_t i = 0; s[i]; i++) {
                unsigned char c = (unsigned char) s[i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9'))
                        *o++ = (char) c;
                else
                        o += sprintf(o, "_%02x", c);
        }
        *o = 0;
        return r;
}

char *bus_label_unescape(const char *s) {
        char *r, *o;

        assert(s);

        r = o = malloc(strlen(s) + 1);
        if (!r)
                return NULL;
        if (streq(s, "_")) {
                *r = 0;
                return r;
        }
        for (size_t i = 0; s[i]; i++) {
                if (s[i] == '_' && s[i + 1] && s[i + 2] && unhexchar(s[i + 1]) >= 0 &&
                    unhexchar(s[i + 2]) >= 0) {
                        *o++ = (char) (unhexchar(s[i + 1]) << 4 | unhexchar(s[i + 2]));
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return r;
}
