/*
 * libFuzzer target: memmap-plan's JSON host report reader
 *
 * The input is a host report file as `memmap-plan plan` reads it
 * (host_report_load(): QEMU's JSON parser and the report schema).  A report it
 * accepts must be well formed (regions sorted, start <= end, no two of
 * one type overlapping in a device, no control characters in names) and
 * round-trip: written with host_report_to_json() and read back, it is
 * the same report, and writing that gives the same text.  A report it
 * refuses must carry a message that starts with the file name.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "plan-fuzz.h"

static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    path = plan_fuzz_tempdir("report.json");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(HostReport) report = NULL;
    g_autoptr(HostReport) again = NULL;
    g_autoptr(GString) json = NULL;
    g_autoptr(GString) json2 = NULL;
    Error *err = NULL;

    plan_fuzz_write(path, (const char *)data, size);
    report = host_report_load(path, &err);
    if (!report) {
        plan_fuzz_check_refusal(err, path);
        return 0;
    }
    fuzz_assert(!err, "error set with a report");
    plan_fuzz_check_report(report);

    json = host_report_to_json(report);
    plan_fuzz_write(path, json->str, json->len);
    again = host_report_load(path, &err);
    fuzz_assert(again, "the writer's output refused: %s\n%s",
                error_get_pretty(err), json->str);
    plan_fuzz_check_same(report, again);
    json2 = host_report_to_json(again);
    fuzz_assert(g_string_equal(json, json2), "written twice differently:\n"
                "%s\n%s", json->str, json2->str);
    return 0;
}
