// SPDX-License-Identifier: LGPL-2.1-or-later
/* Request paths for the fileserver; see urlpath.h. */

#include <stdio.h>

#include "encoding.h"
#include "macro.h"
#include "urlpath.h"

int url_path_resolve(const char *target, bool allow_hidden, char **ret, bool *ret_dir) {
        _cleanup_free_ char *out = NULL;
        size_t n, o = 0, seg_start = 0;
        bool dir;

        if (!target || target[0] != '/')
                return -EINVAL; /* origin-form only */
        n = strcspn(target, "?#");
        if (n > 4096)
                return -ENAMETOOLONG;
        dir = target[n - 1] == '/';
        out = malloc(n + 2);
        if (!out)
                return -ENOMEM;

        /* Decode segment by segment, so an encoded '/' can never create a separator. */
        for (size_t i = 1; i <= n; i++) {
                char c;
                if (i == n || target[i] == '/') {
                        size_t len = o - seg_start;
                        if (len == 0) { /* "//" or the trailing slash */
                                continue;
                        }
                        if ((len == 1 && out[seg_start] == '.') ||
                            (len == 2 && out[seg_start] == '.' && out[seg_start + 1] == '.'))
                                return -EINVAL;
                        if (out[seg_start] == '.' && !allow_hidden)
                                return -EACCES;
                        out[o++] = '/';
                        seg_start = o;
                        continue;
                }
                c = target[i];
                if (c == '%') {
                        int hi = i + 2 < n ? unhexchar(target[i + 1]) : -1, lo = i + 2 < n ? unhexchar(target[i + 2]) : -1;
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        c = (char) (hi << 4 | lo);
                        i += 2;
                        if (c == '/' || c == '\\' || c == 0)
                                return -EINVAL;
                }
                if ((unsigned char) c < 0x20 || c == 0x7f)
                        return -EINVAL;
                out[o++] = c;
        }
        if (o > 0 && out[o - 1] == '/')
                o--;
        if (o == 0)
                out[o++] = '.';
        out[o] = 0;
        *ret = TAKE_PTR(out);
        if (ret_dir)
                *ret_dir = dir;
        return 0;
}

char *url_escape_segment(const char *name) {
        static const char hex[] = "0123456789ABCDEF";
        char *r = malloc(strlen(name) * 3 + 1), *o = r;
        if (!r)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) name; *p; p++)
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("-._~", *p))
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        *o = 0;
        return r;
}

char *html_escape(const char *s) {
        size_t n = 0;
        char *r, *o;
        for (const char *p = s; *p; p++)
                n += strchr("&<>\"'", *p) ? 6 : 1;
        r = o = malloc(n + 1);
        if (!r)
                return NULL;
        for (const char *p = s; *p; p++)
                switch (*p) {
                case '&': o = stpcpy(o, "&amp;"); break;
                case '<': o = stpcpy(o, "&lt;"); break;
                case '>': o = stpcpy(o, "&gt;"); break;
                case '"': o = stpcpy(o, "&quot;"); break;
                case '\'': o = stpcpy(o, "&#39;"); break;
                default: *o++ = *p;
                }
        *o = 0;
        return r;
}
