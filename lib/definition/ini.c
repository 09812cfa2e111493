// SPDX-License-Identifier: LGPL-2.1-or-later
/* The generic INI reader behind definitions; see ini.h. Line by line, so that every error can
 * name file:line; the meaning of sections and keys is the handler's. */

#include <assert.h>
#include <stdio.h>

#include "ini.h"
#include "macro.h"
#include "string-util.h"

/* Strips one pair of matching outer quotes. */
static char *unquote(char *v) {
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0] && !memchr(v + 1, v[0], n - 2)) {
                v[n - 1] = 0;
                return v + 1;
        }
        return v;
}

/* One stripped, non-comment line. *section is the current section, NULL before the first. */
static int parse_line(const char *path, unsigned line, char *l, char **section, bool *section_taken,
                      const IniHandler *h, void *userdata, char **ret_error) {
        char *eq;

        if (*l == '[') {
                size_t n = strlen(l);
                int r;

                if (l[n - 1] != ']' || n < 3)
                        return errorf(ret_error, -EBADMSG, "%s:%u: Invalid section header", path, line);
                free(*section);
                *section = strndup(l + 1, n - 2);
                if (!*section)
                        return -ENOMEM;
                r = h->section(path, line, *section, userdata);
                if (r < 0)
                        return r;
                *section_taken = r > 0;
                return 0;
        }

        eq = strchr(l, '=');
        if (!eq)
                return errorf(ret_error, -EBADMSG, "%s:%u: Expected Key=Value, got a line without '='",
                              path, line);
        if (!*section)
                return errorf(ret_error, -EBADMSG, "%s:%u: Assignment outside of any section", path, line);
        if (!*section_taken)
                return 0;
        *eq = 0;
        return h->assignment(path, line, *section, strstrip(l), unquote(strstrip(eq + 1)), userdata,
                             ret_error);
}

int ini_parse(const char *path, const char *data, size_t size, const IniHandler *handler, void *userdata,
              char **ret_error) {
        _cleanup_free_ char *section = NULL;
        bool section_taken = true;
        unsigned line = 0;
        size_t pos = 0;

        assert(path);
        assert(data || size == 0);
        assert(handler && handler->section && handler->assignment);

        if (size > 0 && memchr(data, 0, size))
                return errorf(ret_error, -EBADMSG, "%s: file contains a NUL byte", path);

        while (pos < size) {
                _cleanup_free_ char *buf = NULL;
                size_t end = pos;
                char *l;
                int r;

                while (end < size && data[end] != '\n')
                        end++;
                line++;
                buf = strndup(data + pos, end - pos);
                if (!buf)
                        return -ENOMEM;
                pos = end + 1;

                l = strstrip(buf);
                if (!*l || *l == '#' || *l == ';')
                        continue;
                r = parse_line(path, line, l, &section, &section_taken, handler, userdata, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}
