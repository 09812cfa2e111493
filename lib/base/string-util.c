// SPDX-License-Identifier: LGPL-2.1-or-later
/* String and string-array helpers; see string-util.h.
 * Nothing here logs: errors are returned, messages built with errorf(). */

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

#include "string-util.h"

int errorf(char **ret_error, int r, const char *format, ...) {
        va_list ap;
        char *m = NULL;

        assert(format);

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(&m, format, ap) < 0)
                        m = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = m;
        }
        return r < 0 ? r : -EINVAL;
}

char *strstrip(char *s) {
        char *e;

        assert(s);

        s += strspn(s, " \t\r\n");
        e = s + strlen(s);
        while (e > s && strchr(" \t\r\n", e[-1]))
                e--;
        *e = 0;
        return s;
}

char *asprintf_safe(const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        assert(format);

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

bool string_is_safe_id(const char *s, size_t max_len) {
        size_t n;

        assert(s);

        n = strlen(s);
        if (n == 0 || n > max_len)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("._@-", *s))
                        return false;
        return true;
}

int strv_push(char ***l, size_t *n, char *value) {
        char **t;

        assert(l);
        assert(n);

        if (!value) /* a failed strdup() passed straight in */
                return -ENOMEM;
        t = realloc(*l, sizeof(char *) * (*n + 2));
        if (!t) {
                free(value);
                return -ENOMEM;
        }
        t[(*n)++] = value;
        t[*n] = NULL;
        *l = t;
        return 0;
}

bool strv_contains(char *const *l, size_t n, const char *s) {
        assert(l || n == 0);
        assert(s);

        for (size_t i = 0; i < n; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}
