// SPDX-License-Identifier: LGPL-2.1-or-later
/* Growing the byte queues the wire stack reads into and writes from (TLS output, HTTP/2
 * frames, stream bodies): one buffer per queue, reused, grown only when data outruns it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A byte queue buf[*off, *off + len) of capacity *cap: makes room for n more bytes after it,
 * sliding the data to the front or growing the buffer (at least doubling). */
int buffer_reserve(uint8_t **buf, size_t *off, size_t len, size_t *cap, size_t n);
