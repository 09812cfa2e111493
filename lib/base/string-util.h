// SPDX-License-Identifier: LGPL-2.1-or-later
/* String helpers: trimming, formatting, identifier checks, error messages, and growable
 * NULL-terminated string arrays (strv_free() is in macro.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* Sets *ret_error (if given) to a formatted message, replacing what it held; returns r (or
 * -EINVAL when r is not negative). The one way errors with a message travel up. */
int errorf(char **ret_error, int r, const char *format, ...) _printf_(3, 4);

/* Cuts spaces, tabs and line ends off both ends, in place; returns the new start. */
char *strstrip(char *s);
/* asprintf() that returns the string, or NULL. */
char *asprintf_safe(const char *format, ...) _printf_(1, 2);
/* 1..max_len characters of [A-Za-z0-9._@-]: safe in a file name, a unit name, a log line. */
bool string_is_safe_id(const char *s, size_t max_len);

int strv_push(char ***l, size_t *n, char *value); /* takes ownership of value; NULL: -ENOMEM */
bool strv_contains(char *const *l, size_t n, const char *s);
