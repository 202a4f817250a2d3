/*
 * memmap-plan: host reports, read from sysfs or JSON and written as JSON
 *
 * A host report lists, for each device to assign, its IOMMU group and
 * the group's reserved regions:
 *
 *   {"host": "h1", "devices": [{"bdf": "0000:00:02.0", "group": 3,
 *     "reserved-regions": [{"start": 4276092928, "end": 4277141503,
 *                           "type": "msi"}]}]}
 *
 * The reader is a strict parser of exactly this schema rather than a
 * general JSON parser: plan reads many thousands of reports.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qobject/json-writer.h"
#include "memmap-plan.h"

/* The names of linux/drivers/iommu/iommu.c:iommu_group_resv_type_string */
const char *const resv_type_names[RESV__MAX] = {
    [RESV_DIRECT] = "direct",
    [RESV_DIRECT_RELAXABLE] = "direct-relaxable",
    [RESV_RESERVED] = "reserved",
    [RESV_MSI] = "msi",
    [RESV_SW_MSI] = "sw-msi",
};

static bool resv_type_parse(const char *s, size_t len, ResvType *type)
{
    int i;

    for (i = 0; i < RESV__MAX; i++) {
        if (strlen(resv_type_names[i]) == len &&
            !memcmp(resv_type_names[i], s, len)) {
            *type = i;
            return true;
        }
    }
    return false;
}

static int region_compare(const void *a, const void *b)
{
    const ResvRegion *ra = a, *rb = b;

    if (ra->range.lob != rb->range.lob) {
        return ra->range.lob < rb->range.lob ? -1 : 1;
    }
    return (int)ra->type - (int)rb->type;
}

/*
 * Sort @n regions by address and look for two of one type that overlap.
 * The kernel never lists such regions for a group: its
 * iommu_insert_resv_region() merges them.  Returns the later of the two
 * and sets *@prev to the earlier, or returns NULL.
 */
static const ResvRegion *regions_sort_check(ResvRegion *v, unsigned n,
                                            const ResvRegion **prev)
{
    const ResvRegion *last[RESV__MAX] = { NULL };
    unsigned i;

    if (n < 2) {
        return NULL;
    }
    qsort(v, n, sizeof(*v), region_compare);
    for (i = 0; i < n; i++) {
        const ResvRegion **l = &last[v[i].type];

        if (*l && v[i].range.lob <= (*l)->range.upb) {
            *prev = *l;
            return &v[i];
        }
        if (!*l || v[i].range.upb > (*l)->range.upb) {
            *l = &v[i];
        }
    }
    return NULL;
}

static HostReport *host_report_new(void)
{
    HostReport *report = g_new0(HostReport, 1);

    report->devices = g_array_new(false, false, sizeof(ReportDevice));
    report->regions = g_array_new(false, false, sizeof(ResvRegion));
    return report;
}

void host_report_free(HostReport *report)
{
    unsigned i;

    if (!report) {
        return;
    }
    for (i = 0; i < report->devices->len; i++) {
        g_free(g_array_index(report->devices, ReportDevice, i).bdf);
    }
    g_array_unref(report->devices);
    g_array_unref(report->regions);
    g_free(report->host);
    g_free(report);
}

/* sysfs */

/* "0x" and 1 to 16 hex digits, as the kernel prints with %016llx */
static bool parse_hex(const char *s, uint64_t *val)
{
    size_t n;

    if (!g_str_has_prefix(s, "0x")) {
        return false;
    }
    n = strspn(s + 2, "0123456789abcdefABCDEF");
    if (!n || n > 16 || s[2 + n]) {
        return false;
    }
    *val = g_ascii_strtoull(s + 2, NULL, 16);
    return true;
}

/* Append the regions of a reserved_regions file to @regions. */
static bool read_reserved_regions(const char *path, GArray *regions,
                                  Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    g_autofree char *buf = NULL;
    g_auto(GStrv) lines = NULL;
    unsigned first = regions->len, i;
    const ResvRegion *a, *b;

    if (!g_file_get_contents(path, &buf, NULL, &gerr)) {
        error_setg(errp, "%s", gerr->message);
        return false;
    }
    lines = g_strsplit(buf, "\n", -1);
    for (i = 0; lines[i] && (lines[i][0] || lines[i + 1]); i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], " ", -1);
        ResvRegion r = { .line = i + 1 };
        uint64_t start, end;

        if (g_strv_length(f) != 3 || !parse_hex(f[0], &start) ||
            !parse_hex(f[1], &end)) {
            error_setg(errp, "%s:%u: expected '0xSTART 0xEND TYPE', got '%s'",
                       path, r.line, lines[i]);
            return false;
        }
        if (!resv_type_parse(f[2], strlen(f[2]), &r.type)) {
            error_setg(errp, "%s:%u: unknown reserved region type '%s'",
                       path, r.line, f[2]);
            return false;
        }
        if (end < start) {
            error_setg(errp, "%s:%u: end 0x%" PRIx64 " is below start 0x%"
                       PRIx64, path, r.line, end, start);
            return false;
        }
        range_set_bounds(&r.range, start, end);
        g_array_append_val(regions, r);
    }

    b = regions_sort_check(&g_array_index(regions, ResvRegion, first),
                           regions->len - first, &a);
    if (b) {
        error_setg(errp, "%s:%u: %s region 0x%" PRIx64 "-0x%" PRIx64
                   " overlaps the one on line %u; the kernel merges "
                   "overlapping regions of one type", path, b->line,
                   resv_type_names[b->type], b->range.lob, b->range.upb,
                   a->line);
        return false;
    }
    return true;
}

/* Add the devices of IOMMU group @name in @dir that are in @only. */
static bool read_group(HostReport *report, const char *dir, const char *name,
                       char **only, Error **errp)
{
    g_autofree char *path = g_build_filename(dir, name, "reserved_regions",
                                             NULL);
    g_autofree char *devdir = g_build_filename(dir, name, "devices", NULL);
    g_autoptr(GPtrArray) bdfs = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GDir) devices = NULL;
    ReportDevice dev = { .first = report->regions->len };
    const char *bdf;

    if (parse_uint_full(name, 10, &dev.group) < 0) {
        error_setg(errp, "%s/%s: not an IOMMU group", dir, name);
        return false;
    }
    devices = g_dir_open(devdir, 0, &gerr);
    if (!devices) {
        error_setg(errp, "%s", gerr->message);
        return false;
    }
    while ((bdf = g_dir_read_name(devices))) {
        if (!only || g_strv_contains((const char * const *)only, bdf)) {
            g_ptr_array_add(bdfs, g_strdup(bdf));
        }
    }
    if (!bdfs->len) {
        return true;
    }
    if (!read_reserved_regions(path, report->regions, errp)) {
        return false;
    }
    /* the devices of a group share its regions */
    dev.count = report->regions->len - dev.first;
    while (bdfs->len) {
        dev.bdf = g_ptr_array_steal_index_fast(bdfs, 0);
        g_array_append_val(report->devices, dev);
    }
    return true;
}

static int device_compare(gconstpointer a, gconstpointer b)
{
    return strcmp(((const ReportDevice *)a)->bdf,
                  ((const ReportDevice *)b)->bdf);
}

HostReport *host_report_from_sysfs(const char *root, const char *host,
                                   char **only, Error **errp)
{
    g_autofree char *dir = g_build_filename(root, "kernel", "iommu_groups",
                                            NULL);
    g_autoptr(HostReport) report = host_report_new();
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GDir) groups = g_dir_open(dir, 0, &gerr);
    const char *name;
    unsigned i, j;

    if (!groups) {
        error_setg(errp, "%s", gerr->message);
        return NULL;
    }
    while ((name = g_dir_read_name(groups))) {
        if (!read_group(report, dir, name, only, errp)) {
            return NULL;
        }
    }
    g_array_sort(report->devices, device_compare);

    for (i = 0; only && only[i]; i++) {
        for (j = 0; j < report->devices->len; j++) {
            if (!strcmp(g_array_index(report->devices, ReportDevice, j).bdf,
                        only[i])) {
                break;
            }
        }
        if (j == report->devices->len) {
            error_setg(errp, "device %s is in no IOMMU group in %s",
                       only[i], dir);
            return NULL;
        }
    }
    report->host = g_strdup(host);
    return g_steal_pointer(&report);
}

/* JSON output */

GString *host_report_to_json(const HostReport *report)
{
    JSONWriter *w = json_writer_new(true);
    unsigned i, j;

    json_writer_start_object(w, NULL);
    json_writer_str(w, "host", report->host);
    json_writer_start_array(w, "devices");
    for (i = 0; i < report->devices->len; i++) {
        const ReportDevice *dev = &g_array_index(report->devices,
                                                 ReportDevice, i);
        const ResvRegion *r = device_regions(report, dev);

        json_writer_start_object(w, NULL);
        json_writer_str(w, "bdf", dev->bdf);
        json_writer_uint64(w, "group", dev->group);
        json_writer_start_array(w, "reserved-regions");
        for (j = 0; j < dev->count; j++) {
            json_writer_start_object(w, NULL);
            json_writer_uint64(w, "start", r[j].range.lob);
            json_writer_uint64(w, "end", r[j].range.upb);
            json_writer_str(w, "type", resv_type_names[r[j].type]);
            json_writer_end_object(w);
        }
        json_writer_end_array(w);
        json_writer_end_object(w);
    }
    json_writer_end_array(w);
    json_writer_end_object(w);
    return json_writer_get_and_free(w);
}

/* JSON input */

typedef struct JsonReader {
    const char *file;
    const char *buf;
    const char *p;
} JsonReader;

static bool G_GNUC_PRINTF(3, 4) json_fail(JsonReader *r, Error **errp,
                                          const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    unsigned line = 1;
    const char *q;
    va_list ap;

    for (q = r->buf; q < r->p; q++) {
        line += *q == '\n';
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(errp, "%s:%u: %s", r->file, line, msg);
    return false;
}

static void json_skip_space(JsonReader *r)
{
    while (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r') {
        r->p++;
    }
}

/*
 * Step into, through or out of an array or object: before element @n,
 * consume the opening bracket (n == 0) or the comma.  Returns 1 when an
 * element follows, 0 after the closing bracket, -1 on error.
 */
static int json_next(JsonReader *r, char open, char close, unsigned n,
                     Error **errp)
{
    json_skip_space(r);
    if (!n) {
        if (*r->p != open) {
            json_fail(r, errp, "expected '%c'", open);
            return -1;
        }
        r->p++;
        json_skip_space(r);
    } else if (*r->p != close) {
        if (*r->p != ',') {
            json_fail(r, errp, "expected ',' or '%c'", close);
            return -1;
        }
        /* the element's own parser refuses a trailing comma */
        r->p++;
        return 1;
    }
    if (*r->p == close) {
        r->p++;
        return 0;
    }
    return 1;
}

/* A string without escapes: hosts and device names need none. */
static bool json_string(JsonReader *r, const char **s, size_t *len,
                        Error **errp)
{
    const char *q;

    json_skip_space(r);
    if (*r->p != '"') {
        return json_fail(r, errp, "expected a string");
    }
    for (q = r->p + 1; *q != '"'; q++) {
        if (*q == '\\' || (unsigned char)*q < ' ') {
            r->p = q;
            return json_fail(r, errp, "%s", *q == '\\' ?
                             "escapes in strings are not supported" :
                             *q ? "control character in string" :
                             "unterminated string");
        }
    }
    *s = r->p + 1;
    *len = q - *s;
    r->p = q + 1;
    return true;
}

static bool json_uint(JsonReader *r, uint64_t *val, Error **errp)
{
    uint64_t v = 0;

    json_skip_space(r);
    if (!g_ascii_isdigit(*r->p) || (*r->p == '0' &&
                                    g_ascii_isdigit(r->p[1]))) {
        return json_fail(r, errp, "expected a non-negative integer");
    }
    for (; g_ascii_isdigit(*r->p); r->p++) {
        unsigned d = *r->p - '0';

        if (v > (UINT64_MAX - d) / 10) {
            return json_fail(r, errp, "integer out of range");
        }
        v = v * 10 + d;
    }
    if (*r->p == '.' || *r->p == 'e' || *r->p == 'E') {
        return json_fail(r, errp, "expected an integer");
    }
    *val = v;
    return true;
}

/* Read the key of the next member of an object; returns its index. */
static int json_key(JsonReader *r, const char *const *keys, unsigned *seen,
                    Error **errp)
{
    const char *s;
    size_t len;
    int i;

    if (!json_string(r, &s, &len, errp)) {
        return -1;
    }
    for (i = 0; keys[i]; i++) {
        if (strlen(keys[i]) == len && !memcmp(keys[i], s, len)) {
            break;
        }
    }
    if (!keys[i] || *seen & (1u << i)) {
        json_fail(r, errp, "%s member '%.*s'",
                  keys[i] ? "duplicate" : "unexpected", (int)len, s);
        return -1;
    }
    *seen |= 1u << i;
    json_skip_space(r);
    if (*r->p != ':') {
        json_fail(r, errp, "expected ':'");
        return -1;
    }
    r->p++;
    return i;
}

static bool json_members_complete(JsonReader *r, const char *const *keys,
                                  unsigned seen, const char *what,
                                  Error **errp)
{
    int i;

    for (i = 0; keys[i]; i++) {
        if (!(seen & (1u << i))) {
            return json_fail(r, errp, "%s without '%s'", what, keys[i]);
        }
    }
    return true;
}

typedef bool JsonElementFunc(JsonReader *r, HostReport *report,
                             Error **errp);

static bool json_array(JsonReader *r, JsonElementFunc *element,
                       HostReport *report, Error **errp)
{
    unsigned n;
    int more;

    for (n = 0; (more = json_next(r, '[', ']', n, errp)) > 0; n++) {
        if (!element(r, report, errp)) {
            return false;
        }
    }
    return !more;
}

static const char *const region_keys[] = { "start", "end", "type", NULL };

static bool json_region(JsonReader *r, HostReport *report, Error **errp)
{
    ResvRegion reg = { 0 };
    uint64_t start = 0, end = 0;
    unsigned n, seen = 0;
    const char *s;
    size_t len;
    int more;

    for (n = 0; (more = json_next(r, '{', '}', n, errp)) > 0; n++) {
        switch (json_key(r, region_keys, &seen, errp)) {
        case 0:
            if (!json_uint(r, &start, errp)) {
                return false;
            }
            break;
        case 1:
            if (!json_uint(r, &end, errp)) {
                return false;
            }
            break;
        case 2:
            if (!json_string(r, &s, &len, errp)) {
                return false;
            }
            if (!resv_type_parse(s, len, &reg.type)) {
                return json_fail(r, errp, "unknown reserved region type "
                                 "'%.*s'", (int)len, s);
            }
            break;
        default:
            return false;
        }
    }
    if (more < 0 ||
        !json_members_complete(r, region_keys, seen, "reserved region",
                               errp)) {
        return false;
    }
    if (end < start) {
        return json_fail(r, errp, "reserved region end 0x%" PRIx64
                         " is below its start 0x%" PRIx64, end, start);
    }
    range_set_bounds(&reg.range, start, end);
    g_array_append_val(report->regions, reg);
    return true;
}

static const char *const device_keys[] = {
    "bdf", "group", "reserved-regions", NULL
};

static bool json_device(JsonReader *r, HostReport *report, Error **errp)
{
    ReportDevice dev = { .first = report->regions->len };
    g_autofree char *bdf = NULL;
    const ResvRegion *a, *b;
    unsigned n, seen = 0;
    const char *s;
    size_t len;
    int more;

    for (n = 0; (more = json_next(r, '{', '}', n, errp)) > 0; n++) {
        switch (json_key(r, device_keys, &seen, errp)) {
        case 0:
            if (!json_string(r, &s, &len, errp)) {
                return false;
            }
            bdf = g_strndup(s, len);
            break;
        case 1:
            if (!json_uint(r, &dev.group, errp)) {
                return false;
            }
            break;
        case 2:
            if (!json_array(r, json_region, report, errp)) {
                return false;
            }
            break;
        default:
            return false;
        }
    }
    if (more < 0 ||
        !json_members_complete(r, device_keys, seen, "device", errp)) {
        return false;
    }
    dev.count = report->regions->len - dev.first;
    b = regions_sort_check(&g_array_index(report->regions, ResvRegion,
                                          dev.first), dev.count, &a);
    if (b) {
        return json_fail(r, errp, "device %s: %s regions 0x%" PRIx64
                         "-0x%" PRIx64 " and 0x%" PRIx64 "-0x%" PRIx64
                         " overlap", bdf, resv_type_names[b->type],
                         a->range.lob, a->range.upb, b->range.lob,
                         b->range.upb);
    }
    dev.bdf = g_steal_pointer(&bdf);
    g_array_append_val(report->devices, dev);
    return true;
}

static const char *const report_keys[] = { "host", "devices", NULL };

HostReport *host_report_load(const char *path, Error **errp)
{
    g_autoptr(HostReport) report = host_report_new();
    g_autoptr(GError) gerr = NULL;
    g_autofree char *buf = NULL;
    bool is_stdin = !strcmp(path, "-");
    JsonReader r;
    unsigned n, seen = 0;
    const char *s;
    size_t len;
    gsize size;
    int more;

    if (!g_file_get_contents(is_stdin ? "/dev/stdin" : path, &buf, &size,
                             &gerr)) {
        error_setg(errp, "%s", gerr->message);
        return NULL;
    }
    r = (JsonReader) { is_stdin ? "(stdin)" : path, buf, buf };

    for (n = 0; (more = json_next(&r, '{', '}', n, errp)) > 0; n++) {
        switch (json_key(&r, report_keys, &seen, errp)) {
        case 0:
            if (!json_string(&r, &s, &len, errp)) {
                return NULL;
            }
            report->host = g_strndup(s, len);
            break;
        case 1:
            if (!json_array(&r, json_device, report, errp)) {
                return NULL;
            }
            break;
        default:
            return NULL;
        }
    }
    if (more < 0 ||
        !json_members_complete(&r, report_keys, seen, "host report", errp)) {
        return NULL;
    }
    json_skip_space(&r);
    if (r.p != buf + size) {
        json_fail(&r, errp, "unexpected data after the host report");
        return NULL;
    }
    return g_steal_pointer(&report);
}
