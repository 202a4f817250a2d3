/*
 * Helpers of the memmap-plan libFuzzer targets
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "plan-fuzz.h"

static char *tempdir;

static void plan_fuzz_cleanup(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tempdir);

    if (system(cmd)) {
        fprintf(stderr, "plan-fuzz: could not remove %s\n", tempdir);
    }
}

char *plan_fuzz_tempdir(const char *name)
{
    g_autoptr(GError) gerr = NULL;

    if (!tempdir) {
        tempdir = g_dir_make_tmp("memmap-plan-fuzz-XXXXXX", &gerr);
        fuzz_assert(tempdir, "%s", gerr->message);
        atexit(plan_fuzz_cleanup);
    }
    return g_build_filename(tempdir, name, NULL);
}

void plan_fuzz_write(const char *path, const char *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    fuzz_assert(fd >= 0, "%s: %s", path, strerror(errno));
    fuzz_assert(qemu_write_full(fd, data, size) == size, "%s: %s", path,
                strerror(errno));
    close(fd);
}

void plan_fuzz_check_refusal(Error *err, const char *path)
{
    const char *msg;

    fuzz_assert(err, "no error set for a refused report");
    msg = error_get_pretty(err);
    fuzz_assert(g_str_has_prefix(msg, path) && msg[strlen(path)] == ':' &&
                msg[strlen(path) + 1], "message '%s' without the file",
                msg);
    error_free(err);
}

static void check_name(const char *s)
{
    for (; *s; s++) {
        fuzz_assert((unsigned char)*s >= ' ' && *s != 0x7f,
                    "control character accepted");
    }
}

void plan_fuzz_check_report(const HostReport *r)
{
    unsigned i, j, k;

    fuzz_assert(r->host, "report without host");
    check_name(r->host);
    for (i = 0; i < r->devices->len; i++) {
        const ReportDevice *d = &g_array_index(r->devices, ReportDevice, i);
        const ResvRegion *v;

        fuzz_assert(d->bdf, "device without bdf");
        check_name(d->bdf);
        fuzz_assert(d->first + d->count <= r->regions->len &&
                    d->first + d->count >= d->first, "device %s regions",
                    d->bdf);
        v = device_regions(r, d);
        for (j = 0; j < d->count; j++) {
            fuzz_assert(v[j].type < RESV__MAX && v[j].range.lob <=
                        v[j].range.upb, "device %s region %u", d->bdf, j);
            fuzz_assert(!j || v[j - 1].range.lob <= v[j].range.lob,
                        "device %s: regions not sorted", d->bdf);
            for (k = 0; k < j; k++) {
                fuzz_assert(v[k].type != v[j].type ||
                            !range_overlaps_range(&v[k].range, &v[j].range),
                            "device %s: two %s regions overlap", d->bdf,
                            resv_type_names[v[j].type]);
            }
        }
    }
}

void plan_fuzz_check_same(const HostReport *a, const HostReport *b)
{
    unsigned i, j;

    fuzz_assert(!strcmp(a->host, b->host) &&
                a->devices->len == b->devices->len, "reports differ");
    for (i = 0; i < a->devices->len; i++) {
        const ReportDevice *da = &g_array_index(a->devices, ReportDevice, i);
        const ReportDevice *db = &g_array_index(b->devices, ReportDevice, i);
        const ResvRegion *va = device_regions(a, da);
        const ResvRegion *vb = device_regions(b, db);

        fuzz_assert(!strcmp(da->bdf, db->bdf) && da->group == db->group &&
                    da->count == db->count, "device %u differs", i);
        for (j = 0; j < da->count; j++) {
            fuzz_assert(va[j].type == vb[j].type &&
                        va[j].range.lob == vb[j].range.lob &&
                        va[j].range.upb == vb[j].range.upb,
                        "device %s region %u differs", da->bdf, j);
        }
    }
}
