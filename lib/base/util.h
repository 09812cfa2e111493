// SPDX-License-Identifier: LGPL-2.1-or-later
/* Umbrella for the base helpers, for files that want all of them. New code includes the
 * header it uses: time-util.h, parse-util.h, socket-util.h, fileio.h, encoding.h,
 * crypto-util.h, string-util.h, string-table.h, bus-label.h, buffer.h, ratelimit.h. */
#pragma once

#include <stdio.h>

#include "buffer.h"
#include "bus-label.h"
#include "crypto-util.h"
#include "encoding.h"
#include "fileio.h"
#include "macro.h"
#include "parse-util.h"
#include "ratelimit.h"
#include "socket-util.h"
#include "string-table.h"
#include "string-util.h"
#include "time-util.h"
