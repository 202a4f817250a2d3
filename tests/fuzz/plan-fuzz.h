/*
 * Helpers of the memmap-plan libFuzzer targets
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_FUZZ_PLAN_FUZZ_H
#define TESTS_FUZZ_PLAN_FUZZ_H

#include "memmap-plan.h"
#include "fuzz.h"

/* A new directory under $TMPDIR, removed at exit; returns @name in it */
char *plan_fuzz_tempdir(const char *name);

/* Replace the contents of @path with @size bytes of @data */
void plan_fuzz_write(const char *path, const char *data, size_t size);

/* @err is set, and its message starts with "@path:" */
void plan_fuzz_check_refusal(Error *err, const char *path);

/* What every accepted report holds */
void plan_fuzz_check_report(const HostReport *r);

/* @a and @b are the same report */
void plan_fuzz_check_same(const HostReport *a, const HostReport *b);

#endif
