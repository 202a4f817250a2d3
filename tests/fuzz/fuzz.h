/*
 * Common declarations of the libFuzzer targets of tests/fuzz/
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

/* Entry points libFuzzer calls */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Failed property: print it, then abort for libFuzzer to keep the input */
#define fuzz_assert(cond, ...) do {                                      \
        if (!(cond)) {                                                   \
            fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__, __LINE__,     \
                    #cond);                                              \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
            abort();                                                     \
        }                                                                \
    } while (0)

#endif
