/*
 * libFuzzer target: memmap-plan's reader of the kernel's
 * /sys/kernel/iommu_groups/N/reserved_regions
 *
 * The input is the reserved_regions file of IOMMU group 7 of a sysfs
 * tree whose one device is 0000:00:02.0, read by host_report_from_sysfs()
 * as `memmap-plan report --sysfs ROOT` does.  An accepted file gives one
 * region per line, well formed; its regions written back as the kernel
 * prints them read the same, and so does the report written as JSON
 * and read back.  A refused file gives a message that starts with
 * "FILE:LINE:".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "plan-fuzz.h"

static char *root, *file, *json;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autofree char *dev = NULL;

    root = plan_fuzz_tempdir("sys");
    file = g_build_filename(root, "kernel", "iommu_groups", "7",
                            "reserved_regions", NULL);
    dev = g_build_filename(root, "kernel", "iommu_groups", "7", "devices",
                           "0000:00:02.0", NULL);
    fuzz_assert(!g_mkdir_with_parents(dev, 0755), "%s", dev);
    json = plan_fuzz_tempdir("report.json");
    return 0;
}

/* Regions the reader must find: one a line, the last line may end */
static unsigned count_lines(const char *s)
{
    unsigned n = 0;

    for (; *s; s++) {
        n += *s == '\n' || !s[1];
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *only[] = { "0000:00:02.0", NULL };
    g_autoptr(HostReport) report = NULL;
    g_autoptr(HostReport) again = NULL;
    g_autoptr(HostReport) loaded = NULL;
    g_autoptr(GString) text = g_string_new(NULL);
    g_autoptr(GString) js = NULL;
    g_autofree char *str = g_strndup((const char *)data, size);
    g_autofree char *prefix = g_strdup_printf("%s:", file);
    const ReportDevice *d;
    const ResvRegion *v;
    Error *err = NULL;
    unsigned i;

    plan_fuzz_write(file, (const char *)data, size);
    report = host_report_from_sysfs(root, "fuzz", (char **)only, &err);
    if (!report) {
        fuzz_assert(err && g_str_has_prefix(error_get_pretty(err), prefix),
                    "message '%s'", err ? error_get_pretty(err) : "");
        error_free(err);
        return 0;
    }
    plan_fuzz_check_report(report);
    fuzz_assert(report->devices->len == 1, "devices");
    d = &g_array_index(report->devices, ReportDevice, 0);
    fuzz_assert(d->group == 7 && !strcmp(d->bdf, only[0]), "device");
    fuzz_assert(d->count == count_lines(str), "%u regions from %u lines",
                d->count, count_lines(str));

    /* written as the kernel prints them, in address order */
    v = device_regions(report, d);
    for (i = 0; i < d->count; i++) {
        g_string_append_printf(text, "0x%016" PRIx64 " 0x%016" PRIx64
                               " %s\n", v[i].range.lob, v[i].range.upb,
                               resv_type_names[v[i].type]);
    }
    plan_fuzz_write(file, text->str, text->len);
    again = host_report_from_sysfs(root, "fuzz", (char **)only, &err);
    fuzz_assert(again, "%s refused: %s", text->str, error_get_pretty(err));
    plan_fuzz_check_same(report, again);

    js = host_report_to_json(report);
    plan_fuzz_write(json, js->str, js->len);
    loaded = host_report_load(json, &err);
    fuzz_assert(loaded, "%s refused: %s", js->str, error_get_pretty(err));
    plan_fuzz_check_same(report, loaded);
    return 0;
}
