// SPDX-License-Identifier: LGPL-2.1-or-later
/* Turning the path of a request target into a path relative to a served directory. Pure
 * string work (fuzzed); the filesystem side (openat2 RESOLVE_BENEATH) is the caller's. */
#pragma once

#include "macro.h"

/* "/a/b%20c/?q=1" -> "a/b c" ("." for the root). Refuses (-EINVAL) what has no business in a
 * path: encoded slashes or NULs, control bytes, bad escapes, "." and ".." segments, and, unless
 * allow_hidden, segments starting with '.' (-EACCES). *ret_dir says whether it ended in '/'. */
int url_path_resolve(const char *target, bool allow_hidden, char **ret, bool *ret_dir);

/* Percent-encodes a file name for use in an href (keeps unreserved characters). */
char *url_escape_segment(const char *name);
/* HTML-escapes text (& < > " '). */
char *html_escape(const char *s);
