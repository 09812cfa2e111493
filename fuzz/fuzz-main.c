// SPDX-License-Identifier: LGPL-2.1-or-later
/* Replays files (or every file in directories) through a fuzz target without libFuzzer, so
 * the corpus runs in every build, sanitized or not. */

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t n;
        int r = read_full_file(path, 16 * 1024 * 1024, &data, &n);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        LLVMFuzzerTestOneInput((const uint8_t *) data, n);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0)
                        return EXIT_FAILURE;
                if (S_ISDIR(st.st_mode)) {
                        DIR *d = opendir(argv[i]);
                        struct dirent *de;
                        while (d && (de = readdir(d))) {
                                char *p;
                                if (de->d_name[0] == '.')
                                        continue;
                                if (asprintf(&p, "%s/%s", argv[i], de->d_name) < 0)
                                        return EXIT_FAILURE;
                                if (run_file(p) < 0)
                                        return EXIT_FAILURE;
                                free(p);
                                n++;
                        }
                        if (d)
                                closedir(d);
                } else if (run_file(argv[i]) < 0)
                        return EXIT_FAILURE;
                else
                        n++;
        }
        printf("%u inputs replayed without a crash\n", n);
        return n > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
