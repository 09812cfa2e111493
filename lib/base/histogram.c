// SPDX-License-Identifier: LGPL-2.1-or-later
/* Latency histograms; see histogram.h. */

#include <assert.h>
#include <stddef.h>

#include "histogram.h"

const double histogram_le[HISTOGRAM_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

void histogram_add(Histogram *h, uint64_t usec) {
        size_t b = 0;

        assert(h);
        while (b < HISTOGRAM_BUCKETS && (double) usec / 1e6 > histogram_le[b])
                b++;
        if (b < HISTOGRAM_BUCKETS)
                h->buckets[b]++;
        h->count++;
        h->sum_usec += usec;
}
