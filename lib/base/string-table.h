// SPDX-License-Identifier: LGPL-2.1-or-later
/* Enum <-> string tables, as systemd's string-table.h: one array indexed by the enum is the
 * single place a name is spelled, and both directions are generated from it. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include "macro.h"

/* The index of s in table[0, n) (NULL holes skipped), or -EINVAL. */
static inline ssize_t string_table_lookup(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (ssize_t) i;
        return -EINVAL;
}

/* Usage: static const char *const color_table[_COLOR_MAX] = { [COLOR_RED] = "red", ... };
 *        DEFINE_STRING_TABLE_LOOKUP(color, Color);  (and DECLARE_... in the header)
 * gives color_to_string(Color) -> name or NULL, color_from_string(const char *) -> value or
 * -EINVAL (so the enum wants an _COLOR_INVALID = -EINVAL member, as systemd's do). */
#define DECLARE_STRING_TABLE_LOOKUP(name, type)                                  \
        const char *name##_to_string(type i);                                    \
        type name##_from_string(const char *s)

#define _DEFINE_STRING_TABLE_LOOKUP(name, type, scope)                           \
        scope const char *name##_to_string(type i) {                             \
                if ((size_t) i >= ELEMENTSOF(name##_table))                      \
                        return NULL;                                             \
                return name##_table[i];                                          \
        }                                                                        \
        scope type name##_from_string(const char *s) {                           \
                return (type) string_table_lookup(name##_table,                  \
                                                  ELEMENTSOF(name##_table), s);  \
        }

#define DEFINE_STRING_TABLE_LOOKUP(name, type) _DEFINE_STRING_TABLE_LOOKUP(name, type, )
/* The same, file-local: no declaration in a header needed. */
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP(name, type) _DEFINE_STRING_TABLE_LOOKUP(name, type, static)
