// SPDX-License-Identifier: LGPL-2.1-or-later
/* Whole-file reads and atomic whole-file writes: tokens, certificates, state files. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The file's contents, NUL-terminated, in *ret (its length in *ret_size, if given); -EFBIG
 * unless it is shorter than max_size bytes. */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);
/* Writes a temporary file beside path with mode, fsyncs it and renames it over path: readers
 * see the old contents or the new, never a part. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
