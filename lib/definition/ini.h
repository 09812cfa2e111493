// SPDX-License-Identifier: LGPL-2.1-or-later
/* A systemd-style INI reader: [Section] headers, Key=Value lines, # and ; comments, one pair of
 * outer quotes on a value. It knows no keys: the caller's handler gives them meaning. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct IniHandler {
        /* A [Section] header on line: > 0 takes its keys, 0 skips them (the handler says why), < 0
         * stops the parse with that error. */
        int (*section)(const char *path, unsigned line, const char *section, void *userdata);
        /* Key=Value in a taken section, both stripped, value unquoted (writable, lives until the
         * call returns). < 0 stops the parse; the handler writes *ret_error (file:line). */
        int (*assignment)(const char *path, unsigned line, const char *section, const char *key, char *value,
                          void *userdata, char **ret_error);
} IniHandler;

/* Parses size bytes of data named path (for messages). A NUL byte, a bad section header, a line
 * without '=' and an assignment before any section are errors naming path:line in *ret_error
 * (-EBADMSG). No line continuation: a trailing backslash is part of the value. */
int ini_parse(const char *path, const char *data, size_t size, const IniHandler *handler, void *userdata,
              char **ret_error);
