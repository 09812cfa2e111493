// SPDX-License-Identifier: LGPL-2.1-or-later
/* Prints the definition key table, "Section Key" a line, straight from conf-keys.c: the list
 * tests/test-doc-keys.py holds inlets.d(5) and docs/configuration.md against. */

#include <stdio.h>

#include "conf-keys.h"

int main(void) {
        const char *section, *key;

        for (size_t i = 0; (key = conf_key_at(i, &section)); i++)
                printf("%s %s\n", section, key);
        return fflush(stdout) == 0 ? 0 : 1;
}
