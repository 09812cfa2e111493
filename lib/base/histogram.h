// SPDX-License-Identifier: LGPL-2.1-or-later
/* A latency histogram with fixed buckets (5 ms to 30 s), as Prometheus histograms want them:
 * the counts per bucket, their number and their sum. Adding is a few comparisons. */
#pragma once

#include <stdint.h>

#define HISTOGRAM_BUCKETS 12

typedef struct Histogram {
        uint64_t buckets[HISTOGRAM_BUCKETS]; /* not cumulative: the exposition adds them up */
        uint64_t count, sum_usec;            /* every sample, those above the last bound too */
} Histogram;

/* The upper bounds of the buckets, in seconds. */
extern const double histogram_le[HISTOGRAM_BUCKETS];

void histogram_add(Histogram *h, uint64_t usec);
