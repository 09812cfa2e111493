// SPDX-License-Identifier: LGPL-2.1-or-later
/* The byte-queue growth rule; see buffer.h.
 * Sliding before growing keeps a steady stream in the buffer it already has. */

#include <assert.h>

#include "buffer.h"
#include "macro.h"

int buffer_reserve(uint8_t **buf, size_t *off, size_t len, size_t *cap, size_t n) {
        assert(buf);
        assert(off);
        assert(cap);

        if (*off + len + n <= *cap)
                return 0;
        if (*off > 0) {
                memmove(*buf, *buf + *off, len);
                *off = 0;
        }
        if (len + n > *cap) {
                size_t c = MAX(MAX(*cap * 2, len + n), (size_t) 16384);
                uint8_t *t = realloc(*buf, c);
                if (!t)
                        return -ENOMEM;
                *buf = t;
                *cap = c;
        }
        return 0;
}
