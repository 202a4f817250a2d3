/*
 * memmap-plan: plan a memmap from host reports, check one against them
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-memmap.h"
#include "qapi/qobject-output-visitor.h"
#include "qemu/atomic.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/host-utils.h"
#include "qobject/qjson.h"
#include "qobject/qobject.h"
#include "hw/core/memmap.h"
#include "memmap-plan.h"

static MemMapConstraints plan_constraints(const PlanOptions *o)
{
    /* like virt's, without its device regions, all below its RAM base */
    return (MemMapConstraints) {
        .ram_size = o->ram,
        .default_base = o->base,
        .align = o->align,
    };
}

/*
 * Append the unusable regions of @report to @holes, widened to the
 * alignment, leaving out those entirely below the RAM base.
 */
static void add_holes(GArray *holes, const HostReport *report,
                      const PlanOptions *o)
{
    unsigned i;

    for (i = 0; i < report->regions->len; i++) {
        const ResvRegion *r = &g_array_index(report->regions, ResvRegion, i);
        uint64_t end = r->range.upb;
        Range h;

        if (!resv_type_unusable(r->type) || end < o->base) {
            continue;
        }
        range_set_bounds(&h, QEMU_ALIGN_DOWN(r->range.lob, o->align),
                         end > UINT64_MAX - o->align ?
                         UINT64_MAX : ROUND_UP(end + 1, o->align) - 1);
        g_array_append_val(holes, h);
    }
}

static int range_compare_lob(gconstpointer a, gconstpointer b)
{
    const Range *ra = a, *rb = b;

    return ra->lob < rb->lob ? -1 : ra->lob > rb->lob;
}

/* Sort @ranges and merge those that overlap or touch, in one sweep. */
static void merge_ranges(GArray *ranges)
{
    unsigned i, n = 0;
    Range *v;

    g_array_sort(ranges, range_compare_lob);
    v = (Range *)ranges->data;
    for (i = 0; i < ranges->len; i++) {
        if (n && !range_compare(&v[n - 1], &v[i])) {
            range_extend(&v[n - 1], &v[i]);
        } else {
            v[n++] = v[i];
        }
    }
    g_array_set_size(ranges, n);
}

/*
 * Reading the reports of plan: their unusable regions are a set, so
 * each of --jobs threads reads every n-th report into holes of its
 * own, merged as they grow, and the sets are joined.  A reader stops at
 * its first bad report, and at reports after the first bad one found
 * so far: the one reported is the first bad report in the order given,
 * as when one thread reads them all.
 */
/* Fewer reports per reader than this are not worth a thread */
#define PLAN_REPORTS_PER_READER 64

typedef struct PlanReader {
    const PlanOptions *o;
    char **reports;
    unsigned count;
    unsigned first;
    unsigned step;
    /* the lowest index of a bad report found by any reader */
    unsigned *first_bad;
    GArray *holes;
    Error *err;
    unsigned bad;
} PlanReader;

static gpointer plan_read(gpointer opaque)
{
    PlanReader *r = opaque;
    unsigned i, merged = 1024;

    for (i = r->first; i < r->count; i += r->step) {
        g_autoptr(HostReport) report = NULL;

        if (i > qatomic_read(r->first_bad)) {
            break;
        }
        report = host_report_load(r->reports[i], &r->err);
        if (!report) {
            unsigned old = qatomic_read(r->first_bad);

            r->bad = i;
            while (i < old) {
                unsigned seen = qatomic_cmpxchg(r->first_bad, old, i);

                if (seen == old) {
                    break;
                }
                old = seen;
            }
            break;
        }
        add_holes(r->holes, report, r->o);
        /* hosts share most windows: keep the list short as it grows */
        if (r->holes->len >= 2 * merged) {
            merge_ranges(r->holes);
            merged = MAX(r->holes->len, 1024);
        }
    }
    return NULL;
}

/*
 * Read @reports into @candidates, sorted and merged.  Returns false,
 * with the error of the first bad report in @errp, if one is bad.
 */
static bool plan_read_reports(const PlanOptions *o, char **reports,
                              GArray *candidates, Error **errp)
{
    unsigned count = g_strv_length(reports), first_bad = UINT_MAX;
    unsigned n = MIN(o->jobs, count / PLAN_REPORTS_PER_READER);
    g_autofree PlanReader *r = NULL;
    g_autofree GThread **threads = NULL;
    unsigned i;

    n = MAX(n, 1);
    r = g_new0(PlanReader, n);
    threads = g_new0(GThread *, n);
    for (i = 0; i < n; i++) {
        r[i] = (PlanReader) {
            .o = o, .reports = reports, .count = count, .first = i,
            .step = n, .first_bad = &first_bad,
            .holes = i ? g_array_new(false, false, sizeof(Range)) :
                         candidates,
        };
        if (i) {
            threads[i] = g_thread_new("memmap-plan-reader", plan_read, &r[i]);
        }
    }
    plan_read(&r[0]);
    for (i = 1; i < n; i++) {
        g_thread_join(threads[i]);
        g_array_append_vals(candidates, r[i].holes->data, r[i].holes->len);
        g_array_unref(r[i].holes);
    }
    for (i = 0; i < n; i++) {
        if (r[i].err && r[i].bad == first_bad) {
            error_propagate(errp, g_steal_pointer(&r[i].err));
        }
        error_free(r[i].err);
    }
    if (first_bad != UINT_MAX) {
        return false;
    }
    merge_ranges(candidates);
    return true;
}

typedef struct Gap {
    uint64_t size;
    unsigned index;
} Gap;

static int gap_compare(const void *a, const void *b)
{
    const Gap *ga = a, *gb = b;

    if (ga->size != gb->size) {
        return ga->size < gb->size ? -1 : 1;
    }
    return ga->index < gb->index ? -1 : 1;
}

/*
 * Merge the @count pairs of neighbouring @holes with the smallest gaps
 * between them.  Returns the size of the gaps filled.
 */
static uint64_t fill_gaps(GArray *holes, unsigned count)
{
    Range *v = (Range *)holes->data;
    g_autofree Gap *gaps = g_new(Gap, holes->len - 1);
    g_autofree bool *fill = g_new0(bool, holes->len);
    uint64_t filled = 0;
    unsigned i, n = 0;

    for (i = 0; i + 1 < holes->len; i++) {
        gaps[i] = (Gap) { v[i + 1].lob - v[i].upb - 1, i };
    }
    qsort(gaps, holes->len - 1, sizeof(*gaps), gap_compare);
    for (i = 0; i < count; i++) {
        fill[gaps[i].index] = true;
        filled += gaps[i].size;
    }
    for (i = 0; i < holes->len; i++) {
        if (i && fill[i - 1]) {
            v[n - 1].upb = v[i].upb;
        } else {
            v[n++] = v[i];
        }
    }
    g_array_set_size(holes, n);
    return filled;
}

/*
 * Lay RAM out upward from the base around the sorted, disjoint
 * @candidates, as the machine does, and put into @holes those that RAM
 * flows around: those that start below the end of RAM.  When they are
 * more than @max_holes, merge those with the smallest gaps
 * between them, which moves the end of RAM up, and go on.
 * Returns false when RAM does not fit below 2^64.
 */
static bool plan_holes(const PlanOptions *o, const GArray *candidates,
                       unsigned max_holes, GArray *holes, uint64_t *filled)
{
    unsigned next = 0;
    uint64_t top, gaps;

    *filled = 0;
    if (uadd64_overflow(o->base, o->ram, &top)) {
        return false;
    }
    for (;;) {
        while (next < candidates->len &&
               g_array_index(candidates, Range, next).lob < top) {
            const Range *h = &g_array_index(candidates, Range, next++);

            if (h->upb == UINT64_MAX ||
                uadd64_overflow(top, h->upb + 1 - MAX(h->lob, o->base),
                                &top)) {
                return false;
            }
            g_array_append_val(holes, *h);
        }
        if (holes->len <= max_holes) {
            return true;
        }
        gaps = fill_gaps(holes, holes->len - max_holes);
        *filled += gaps;
        if (uadd64_overflow(top, gaps, &top)) {
            return false;
        }
    }
}

/*
 * The device memory area of virt, for memory hot-plug, when the RAM
 * pieces and holes end at @last, as the board places it
 * (memmap_device_memory_area()).  Returns false when it would not fit
 * below 2^64; sets @r empty when there is none.
 */
static bool device_memory_range(const PlanOptions *o, uint64_t last,
                                Range *r)
{
    uint64_t base, size;

    range_make_empty(r);
    if (o->maxmem == o->ram && !o->slots) {
        return true;
    }
    if (last == UINT64_MAX ||
        !memmap_device_memory_area(last + 1, o->ram, o->maxmem, o->slots,
                                   &base, &size)) {
        return false;
    }
    range_set_bounds(r, base, base + size - 1);
    return true;
}

/*
 * Move the device memory area above the windows it would overlap: one
 * hole from the first of them to the last, above RAM, moves it up as
 * RAM's holes do.  Sets @dm to the area and appends the hole, if any,
 * to @holes.  Returns false when the area does not fit below 2^64.
 */
static bool plan_device_memory(const PlanOptions *o,
                               const GArray *candidates, uint64_t last,
                               GArray *holes, Range *dm)
{
    Range skip;
    unsigned i = 0;

    range_make_empty(&skip);
    for (;;) {
        const Range *c;

        if (!device_memory_range(o, last, dm)) {
            return false;
        }
        if (range_is_empty(dm)) {
            return true;
        }
        while (i < candidates->len &&
               g_array_index(candidates, Range, i).upb < dm->lob) {
            i++;
        }
        c = i < candidates->len ? &g_array_index(candidates, Range, i) : NULL;
        if (!c || !range_overlaps_range(c, dm)) {
            break;
        }
        if (range_is_empty(&skip)) {
            skip.lob = c->lob;
        }
        skip.upb = last = c->upb;
        if (last == UINT64_MAX) {
            return false;
        }
    }
    if (!range_is_empty(&skip)) {
        g_array_append_val(holes, skip);
    }
    return true;
}

static MemMapRangeList *holes_to_memmap(const GArray *holes)
{
    MemMapRangeList *list = NULL, **tail = &list;
    unsigned i;

    for (i = 0; i < holes->len; i++) {
        const Range *h = &g_array_index(holes, Range, i);
        MemMapRange *e = g_new0(MemMapRange, 1);

        e->type = MEM_MAP_TYPE_HOLE;
        e->base = h->lob;
        e->size = range_size(h);
        QAPI_LIST_APPEND(tail, e);
    }
    return list;
}

/* @holes and the RAM pieces of @layout, in address order */
static MemMapRangeList *explicit_memmap(const MemMapLayout *layout,
                                        const GArray *holes)
{
    MemMapRangeList *list = NULL, **tail = &list;
    unsigned r = 0, h = 0;

    while (r < layout->ram->len || h < holes->len) {
        const Range *piece = r < layout->ram->len ?
            &g_array_index(layout->ram, MemMapPiece, r).range : NULL;
        const Range *hole = h < holes->len ?
            &g_array_index(holes, Range, h) : NULL;
        bool is_ram = !hole || (piece && piece->lob < hole->lob);
        const Range *next = is_ram ? piece : hole;
        MemMapRange *e = g_new0(MemMapRange, 1);

        e->type = is_ram ? MEM_MAP_TYPE_RAM : MEM_MAP_TYPE_HOLE;
        e->base = next->lob;
        e->size = range_size(next);
        QAPI_LIST_APPEND(tail, e);
        r += is_ram;
        h += !is_ram;
    }
    return list;
}

static void print_memmap(MemMapRangeList *list, bool json)
{
    g_autoptr(GString) out = NULL;
    MemMapRangeList *it;
    int i;

    if (json) {
        QObject *obj;
        Visitor *v = qobject_output_visitor_new(&obj);

        visit_type_MemMapRangeList(v, NULL, &list, &error_abort);
        visit_complete(v, &obj);
        visit_free(v);
        out = qobject_to_json_pretty(obj, true);
        qobject_unref(obj);
    } else {
        out = g_string_new("");
        for (it = list, i = 0; it; it = it->next, i++) {
            g_string_append_printf(out, "%smemmap.%d.type=%s,memmap.%d.base="
                                   "0x%" PRIx64 ",memmap.%d.size=0x%" PRIx64,
                                   i ? "," : "", i,
                                   MemMapType_str(it->value->type), i,
                                   it->value->base, i, it->value->size);
        }
    }
    printf("%s\n", out->str);
}

/* QEMU's own validator and RAM layout for @memmap */
static MemMapLayout *plan_validate(const MemMapRangeList *memmap,
                                  const MemMapConstraints *c)
{
    MemMapLayout *layout;
    Error *err = NULL;

    layout = memmap_layout_new(memmap, c, &err);
    if (!layout) {
        error_reportf_err(err, "QEMU would refuse the planned map: ");
    }
    return layout;
}

int plan_main(const PlanOptions *o, bool json, char **reports)
{
    g_autoptr(GArray) candidates = g_array_new(false, false, sizeof(Range));
    g_autoptr(GArray) holes = g_array_new(false, false, sizeof(Range));
    g_autoptr(MemMapRangeList) memmap = NULL;
    g_autoptr(MemMapLayout) layout = NULL;
    g_autofree char *ram = size_to_str(o->ram);
    g_autofree char *align = size_to_str(o->align);
    MemMapConstraints c = plan_constraints(o);
    bool hotplug = o->maxmem > o->ram || o->slots;
    /*
     * With --explicit, n holes inside RAM make n + 1 RAM pieces; the
     * device memory area may take one hole more, above RAM.
     */
    unsigned max_holes = o->explicit_ram ? (MEMMAP_MAX_ENTRIES - 1) / 2 :
                                           MEMMAP_MAX_ENTRIES - hotplug;
    Error *err = NULL;
    uint64_t filled, end = 0;
    unsigned ram_holes;
    bool fits, past_end;
    Range dm;

    range_make_empty(&dm);
    if (!QEMU_IS_ALIGNED(o->ram | o->base, o->align)) {
        error_report("--ram 0x%" PRIx64 " and --base 0x%" PRIx64 " must be "
                     "multiples of the alignment, %s", o->ram, o->base,
                     align);
        return EXIT_FAILURE;
    }
    if (!plan_read_reports(o, reports, candidates, &err)) {
        error_report_err(err);
        return EXIT_BAD_INPUT;
    }

    fits = plan_holes(o, candidates, max_holes, holes, &filled);
    past_end = !fits;
    ram_holes = holes->len;
    if (filled) {
        g_autofree char *sz = size_to_str(filled);

        warn_report("more holes than the %u entries a memmap may have%s: "
                    "merged those closest together, leaving %s between "
                    "them without RAM", max_holes,
                    o->explicit_ram ? " beside the RAM pieces (--explicit)" :
                    hotplug ? " beside the device memory area" : "", sz);
    }
    if (fits) {
        memmap = holes_to_memmap(holes);
        layout = plan_validate(memmap, &c);
        if (!layout) {
            return EXIT_BAD_INPUT;
        }
        fits = plan_device_memory(o, candidates, layout->last, holes, &dm);
        past_end = !fits;
    }
    if (fits && holes->len > ram_holes) {
        /* the hole that moves the device memory area, validated too */
        qapi_free_MemMapRangeList(memmap);
        memmap = holes_to_memmap(holes);
        g_clear_pointer(&layout, memmap_layout_free);
        layout = plan_validate(memmap, &c);
        if (!layout) {
            return EXIT_BAD_INPUT;
        }
    }
    if (fits) {
        end = range_is_empty(&dm) ? layout->last : MAX(layout->last, dm.upb);
        fits = !o->max_addr || end < o->max_addr;
    }
    if (fits && o->explicit_ram) {
        g_autoptr(MemMapLayout) explicit_layout = NULL;

        qapi_free_MemMapRangeList(memmap);
        memmap = explicit_memmap(layout, holes);
        explicit_layout = plan_validate(memmap, &c);
        if (!explicit_layout) {
            return EXIT_BAD_INPUT;
        }
    }
    if (!fits) {
        g_autofree char *msg = past_end ?
            g_strdup_printf("would run past the end of the 64-bit address "
                            "space%s", hotplug ?
                            " with the device memory area" : "") :
            g_strdup_printf("would end at 0x%" PRIx64 "%s, beyond --max-addr "
                            "0x%" PRIx64, end, range_is_empty(&dm) ? "" :
                            " with the device memory area", o->max_addr);

        error_report("%s of RAM placed upward from 0x%" PRIx64 " around %u "
                     "holes (the hosts' unusable ranges widened to the %s "
                     "alignment%s) %s", ram, o->base, holes->len, align,
                     filled ? ", some merged" : "", msg);
        return EXIT_FAILURE;
    }
    print_memmap(memmap, json);
    return EXIT_SUCCESS;
}

/* Print a conflict of @dev with guest memory @mem */
static void print_conflict(const HostReport *report, const ReportDevice *dev,
                           const char *what, const Range *mem,
                           const ResvRegion *r)
{
    printf("%s: %s (IOMMU group %" PRIu64 "): guest %s 0x%" PRIx64 "-0x%"
           PRIx64 " overlaps %s region 0x%" PRIx64 "-0x%" PRIx64 "\n",
           report->host, dev->bdf, dev->group, what, mem->lob, mem->upb,
           resv_type_names[r->type], r->range.lob, r->range.upb);
}

/*
 * Print the conflicts of @report's devices with @ram and the device
 * memory area @dm (empty for none); return how many.
 */
static unsigned check_report(const HostReport *report, GList *ram,
                             const Range *dm)
{
    unsigned conflicts = 0, d, j;
    GList *l;

    for (d = 0; d < report->devices->len; d++) {
        const ReportDevice *dev = &g_array_index(report->devices,
                                                 ReportDevice, d);
        const ResvRegion *r = device_regions(report, dev);

        for (j = 0; j < dev->count; j++) {
            if (!resv_type_unusable(r[j].type)) {
                continue;
            }
            for (l = ram; l; l = l->next) {
                if (range_overlaps_range(l->data, &r[j].range)) {
                    print_conflict(report, dev, "RAM", l->data, &r[j]);
                    conflicts++;
                }
            }
            if (range_overlaps_range(dm, &r[j].range)) {
                print_conflict(report, dev, "device memory", dm, &r[j]);
                conflicts++;
            }
        }
    }
    return conflicts;
}

int check_main(const PlanOptions *o, const char *str, char **reports)
{
    g_autoptr(MemMapRangeList) memmap = NULL;
    g_autoptr(MemMapLayout) layout = NULL;
    MemMapConstraints c = plan_constraints(o);
    unsigned conflicts = 0, devices = 0;
    int i, status = EXIT_SUCCESS;
    Error *err = NULL;
    GList *ram;
    Range dm;

    if (memmap_parse_keyval(str, &memmap, &err)) {
        layout = memmap_layout_new(memmap, &c, &err);
    }
    if (!layout) {
        error_report_err(err);
        return EXIT_BAD_INPUT;
    }
    if (!device_memory_range(o, layout->last, &dm)) {
        error_report("the device memory area (--maxmem, --slots) would run "
                     "past the end of the 64-bit address space");
        return EXIT_BAD_INPUT;
    }
    ram = memmap_layout_ram_ranges(layout);
    for (i = 0; reports[i]; i++) {
        g_autoptr(HostReport) report = host_report_load(reports[i], &err);

        if (!report) {
            error_report_err(err);
            status = EXIT_BAD_INPUT;
            break;
        }
        conflicts += check_report(report, ram, &dm);
        devices += report->devices->len;
    }
    g_list_free_full(ram, g_free);
    if (status == EXIT_SUCCESS && conflicts) {
        status = EXIT_FAILURE;
    } else if (status == EXIT_SUCCESS) {
        printf("%u device%s in %d host report%s: all fit the map\n", devices,
               devices == 1 ? "" : "s", i, i == 1 ? "" : "s");
    }
    return status;
}
