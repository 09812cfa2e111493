// SPDX-License-Identifier: LGPL-2.1-or-later
/* D-Bus object path labels for tunnel names, as systemd's bus-label.h: every byte outside
 * [A-Za-z0-9] as _xx, and a leading digit escaped. Both return NULL when out of memory. */
#pragma once

char *bus_label_escape(const char *s);
char *bus_label_unescape(const char *s);
