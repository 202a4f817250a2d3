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
 * Reports are read as RFC 8259 documents with json-c, then checked
 * strictly against this schema.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <json-c/json_object_iterator.h>
#include <json-c/json_tokener.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/unicode.h"
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

/*
 * The deepest value of a report is a member of a reserved region: depth
 * 5 counting from 0, in json-c's count.  json-c refuses anything deeper.
 */
#define REPORT_JSON_DEPTH 6

typedef struct JsonReader {
    const char *file;
    const char *buf;
    size_t size;
    /* members read from objects, to compare with the members written */
    size_t members;
} JsonReader;

/* "FILE:LINE:COLUMN: " for the byte at @offset, columns in bytes */
static char *json_position(const JsonReader *r, size_t offset)
{
    const char *nl = g_strrstr_len(r->buf, offset, "\n");
    unsigned line = 1;
    const char *q;

    for (q = r->buf; q < r->buf + offset; q++) {
        line += *q == '\n';
    }
    return g_strdup_printf("%s:%u:%zu", r->file, line,
                           offset - (nl ? nl + 1 - r->buf : 0) + 1);
}

static bool G_GNUC_PRINTF(4, 5) json_fail_at(const JsonReader *r,
                                             size_t offset, Error **errp,
                                             const char *fmt, ...)
{
    g_autofree char *pos = json_position(r, offset);
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(errp, "%s: %s", pos, msg);
    return false;
}

/* Where a value is in a report: a member of an object or an element */
typedef struct JsonPath {
    const struct JsonPath *up;
    const char *name;
    size_t index;
} JsonPath;

static void json_path_append(GString *s, const JsonPath *p)
{
    if (!p) {
        return;
    }
    json_path_append(s, p->up);
    if (p->name) {
        g_string_append_printf(s, "%s%s", s->len ? "." : "", p->name);
    } else {
        g_string_append_printf(s, "[%zu]", p->index);
    }
}

/*
 * Schema errors: the file, then where in the report, as a path like
 * devices[2].reserved-regions[0].type; @where is NULL at the top.
 */
static bool G_GNUC_PRINTF(4, 5) json_fail(const JsonReader *r,
                                          const JsonPath *where, Error **errp,
                                          const char *fmt, ...)
{
    g_autoptr(GString) path = g_string_new("");
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_path_append(path, where);
    error_setg(errp, "%s: %s%s%s", r->file, path->str, path->len ? ": " : "",
               msg);
    return false;
}

/* @s with control characters escaped, for messages */
static char *json_printable(const char *s, size_t len)
{
    GString *out = g_string_sized_new(len);
    size_t i;

    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f) {
            g_string_append_printf(out, "\\x%02x", (unsigned char)s[i]);
        } else {
            g_string_append_c(out, s[i]);
        }
    }
    return g_string_free(out, false);
}

/* The string @val as json-c holds it, in *@s and *@len */
static bool json_member_text(const JsonReader *r, const JsonPath *where,
                             json_object *val, const char **s, size_t *len,
                             Error **errp)
{
    const char *str;
    bool ascii = true;
    size_t n, i;
    char *end;

    if (!json_object_is_type(val, json_type_string)) {
        return json_fail(r, where, errp, "expected a string");
    }
    str = json_object_get_string(val);
    n = json_object_get_string_len(val);
    for (i = 0; i < n; i++) {
        unsigned char c = str[i];

        if (c < ' ' || c == 0x7f) {
            g_autofree char *p = json_printable(str, n);

            return json_fail(r, where, errp, "control character in '%s'", p);
        }
        ascii &= c < 0x80;
    }
    /*
     * Escapes can spell what host_report_to_json() cannot write back:
     * QEMU's JSON writer turns noncharacters (U+FFFE, U+FDD0, ...) and
     * surrogates into U+FFFD.  Refuse them, so that a report reads back
     * as it was written.  Both take bytes above 0x7f.
     */
    for (end = (char *)str; !ascii && end < str + n;) {
        if (mod_utf8_codepoint(end, str + n - end, &end) < 0) {
            g_autofree char *p = json_printable(str, n);

            return json_fail(r, where, errp, "'%s' holds a Unicode "
                             "noncharacter or surrogate", p);
        }
    }
    *s = str;
    *len = n;
    return true;
}

static bool json_member_string(const JsonReader *r, const JsonPath *where,
                               json_object *val, char **s, Error **errp)
{
    const char *str;
    size_t len;

    if (!json_member_text(r, where, val, &str, &len, errp)) {
        return false;
    }
    *s = g_strndup(str, len);
    return true;
}

static bool json_member_uint64(const JsonReader *r, const JsonPath *where,
                               json_object *val, uint64_t *n, Error **errp)
{
    if (!json_object_is_type(val, json_type_int)) {
        return json_fail(r, where, errp, "expected %s",
                         json_object_is_type(val, json_type_double) ?
                         "an integer" : "a non-negative integer");
    }
    /* json-c holds integers above INT64_MAX as uint64 */
    if (json_object_get_int64(val) < 0) {
        return json_fail(r, where, errp, "expected a non-negative integer");
    }
    *n = json_object_get_uint64(val);
    return true;
}

typedef bool JsonMemberFunc(JsonReader *r, const JsonPath *where, int key,
                            json_object *val, void *opaque, Error **errp);

/*
 * Call @member for each member of object @obj, with the index of its
 * name in @keys; refuse other names, and objects without all of @keys.
 */
static bool json_members(JsonReader *r, const JsonPath *where, json_object *obj,
                         const char *const *keys, const char *what,
                         JsonMemberFunc *member, void *opaque, Error **errp)
{
    struct json_object_iterator it, end;
    unsigned seen = 0;
    int i;

    if (!json_object_is_type(obj, json_type_object)) {
        return json_fail(r, where, errp, "expected an object");
    }
    it = json_object_iter_begin(obj);
    end = json_object_iter_end(obj);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *name = json_object_iter_peek_name(&it);
        JsonPath path = { .up = where, .name = name };

        r->members++;
        for (i = 0; keys[i] && strcmp(keys[i], name); i++) {
            continue;
        }
        if (!keys[i]) {
            g_autofree char *p = json_printable(name, strlen(name));

            return json_fail(r, where, errp, "unexpected member '%s'", p);
        }
        seen |= 1u << i;
        if (!member(r, &path, i, json_object_iter_peek_value(&it), opaque,
                    errp)) {
            return false;
        }
    }
    for (i = 0; keys[i]; i++) {
        if (!(seen & (1u << i))) {
            return json_fail(r, where, errp, "%s without '%s'", what,
                             keys[i]);
        }
    }
    return true;
}

typedef bool JsonElementFunc(JsonReader *r, const JsonPath *where,
                             json_object *val, void *opaque, Error **errp);

static bool json_array(JsonReader *r, const JsonPath *where, json_object *arr,
                       JsonElementFunc *element, void *opaque, Error **errp)
{
    size_t i, n;

    if (!json_object_is_type(arr, json_type_array)) {
        return json_fail(r, where, errp, "expected an array");
    }
    n = json_object_array_length(arr);
    for (i = 0; i < n; i++) {
        JsonPath path = { .up = where, .index = i };

        if (!element(r, &path, json_object_array_get_idx(arr, i), opaque,
                     errp)) {
            return false;
        }
    }
    return true;
}

static const char *const region_keys[] = { "start", "end", "type", NULL };

static bool json_region_member(JsonReader *r, const JsonPath *where, int key,
                               json_object *val, void *opaque, Error **errp)
{
    ResvRegion *reg = opaque;
    const char *type;
    size_t len;
    uint64_t n;

    switch (key) {
    case 0:
    case 1:
        if (!json_member_uint64(r, where, val, &n, errp)) {
            return false;
        }
        /* lob and upb hold start and end until the range is set */
        *(key ? &reg->range.upb : &reg->range.lob) = n;
        return true;
    default:
        if (!json_member_text(r, where, val, &type, &len, errp)) {
            return false;
        }
        if (!resv_type_parse(type, len, &reg->type)) {
            /* no control character: json_member_text() refused those */
            return json_fail(r, where, errp,
                             "unknown reserved region type '%.*s'",
                             (int)len, type);
        }
        return true;
    }
}

static bool json_region(JsonReader *r, const JsonPath *where, json_object *val,
                        void *opaque, Error **errp)
{
    HostReport *report = opaque;
    ResvRegion reg = { 0 };
    uint64_t start, end;

    if (!json_members(r, where, val, region_keys, "reserved region",
                      json_region_member, &reg, errp)) {
        return false;
    }
    start = reg.range.lob;
    end = reg.range.upb;
    if (end < start) {
        return json_fail(r, where, errp, "reserved region end 0x%" PRIx64
                         " is below its start 0x%" PRIx64, end, start);
    }
    range_set_bounds(&reg.range, start, end);
    g_array_append_val(report->regions, reg);
    return true;
}

static const char *const device_keys[] = {
    "bdf", "group", "reserved-regions", NULL
};

typedef struct JsonDevice {
    HostReport *report;
    ReportDevice dev;
} JsonDevice;

static bool json_device_member(JsonReader *r, const JsonPath *where, int key,
                               json_object *val, void *opaque, Error **errp)
{
    JsonDevice *d = opaque;

    switch (key) {
    case 0:
        return json_member_string(r, where, val, &d->dev.bdf, errp);
    case 1:
        return json_member_uint64(r, where, val, &d->dev.group, errp);
    default:
        return json_array(r, where, val, json_region, d->report, errp);
    }
}

static bool json_device(JsonReader *r, const JsonPath *where, json_object *val,
                        void *opaque, Error **errp)
{
    HostReport *report = opaque;
    JsonDevice d = {
        .report = report,
        .dev.first = report->regions->len,
    };
    const ResvRegion *a, *b;
    bool ok;

    ok = json_members(r, where, val, device_keys, "device",
                      json_device_member, &d, errp);
    if (ok) {
        d.dev.count = report->regions->len - d.dev.first;
        b = regions_sort_check(&g_array_index(report->regions, ResvRegion,
                                              d.dev.first),
                               d.dev.count, &a);
        if (b) {
            ok = json_fail(r, where, errp, "device %s: %s regions 0x%" PRIx64
                           "-0x%" PRIx64 " and 0x%" PRIx64 "-0x%" PRIx64
                           " overlap", d.dev.bdf, resv_type_names[b->type],
                           a->range.lob, a->range.upb, b->range.lob,
                           b->range.upb);
        }
    }
    if (!ok) {
        g_free(d.dev.bdf);
        return false;
    }
    g_array_append_val(report->devices, d.dev);
    return true;
}

static const char *const report_keys[] = { "host", "devices", NULL };

static bool json_report_member(JsonReader *r, const JsonPath *where, int key,
                               json_object *val, void *opaque, Error **errp)
{
    HostReport *report = opaque;

    if (!key) {
        return json_member_string(r, where, val, &report->host, errp);
    }
    return json_array(r, where, val, json_device, report, errp);
}

/* Whether integer @tok of @len characters fits int64 or uint64 */
static bool json_integer_fits(const char *tok, size_t len)
{
    const char *max = *tok == '-' ? "-9223372036854775808" :
                                    "18446744073709551615";
    size_t n = strlen(max);

    return len < n || (len == n && memcmp(tok, max, n) <= 0);
}

/*
 * What json_scan() stops at: strings, brackets and name separators (and
 * the NUL after the text); in strings, their end and escapes.  Few
 * enough for the C library's vectorised strcspn().
 */
#define SCAN_STOP "\"{}[]:"
#define SCAN_STRING_STOP "\"\\"

/* The names compared in one object; more are only counted */
#define JSON_SCAN_NAMES 8

typedef struct JsonScanLevel {
    const char *name[JSON_SCAN_NAMES];
    size_t len[JSON_SCAN_NAMES];
    unsigned n;
} JsonScanLevel;

/*
 * What json-c leaves to the reader, found in the text of a document
 * that json-c accepted:
 * - a name twice in one object: json-c keeps the last member (RFC 8259
 *   leaves that to the implementation).  Names written alike are found
 *   here; in a valid document every ':' outside strings follows a name,
 *   so the members written are counted in *@members too, for
 *   host_report_load() to compare with the members read (names that
 *   differ only in escapes).
 * - integers out of range: json-c reads those as the nearest integer
 *   it can hold.
 */
static bool json_scan(const JsonReader *r, size_t *members, Error **errp)
{
    JsonScanLevel level[REPORT_JSON_DEPTH];
    const char *p = r->buf, *end = r->buf + r->size;
    const char *str = NULL;
    JsonScanLevel *l;
    int depth = -1;
    unsigned i;

    *members = 0;
    /* the text has no NUL (json_parse() checked), and one after it */
    for (p += strcspn(p, SCAN_STOP); p < end; p += strcspn(p, SCAN_STOP)) {
        const char *tok = p;

        switch (*p) {
        case '"':
            p += 1 + strcspn(p + 1, SCAN_STRING_STOP);
            while (*p == '\\') {
                p += 2 + strcspn(p + 2, SCAN_STRING_STOP);
            }
            str = tok;
            p++;
            break;
        case '{':
        case '[':
            level[++depth].n = 0;
            p++;
            break;
        case '}':
        case ']':
            depth--;
            p++;
            break;
        case ':':
            ++*members;
            l = &level[depth];
            for (i = 0; i < l->n; i++) {
                if (l->len[i] == p - str && !memcmp(l->name[i], str, p - str)) {
                    return json_fail_at(r, str - r->buf, errp,
                                        "duplicate member %.*s",
                                        (int)(p - str), str);
                }
            }
            if (l->n < JSON_SCAN_NAMES) {
                l->name[l->n] = str;
                l->len[l->n++] = p - str;
            }
            /*
             * The member's value.  Integers elsewhere (array elements)
             * are not where a report has any: the schema refuses them.
             */
            p++;
            p += strspn(p, " \t\n\r");
            tok = p;
            p += *p == '-';
            p += strspn(p, "0123456789");
            if (p == tok || *p == '.' || *p == 'e' || *p == 'E') {
                /* not a number, or not an integer */
                break;
            }
            if (!json_integer_fits(tok, p - tok)) {
                return json_fail_at(r, tok - r->buf, errp,
                                    "integer %.*s out of range",
                                    (int)(p - tok), tok);
            }
            break;
        }
    }
    return true;
}

/* Whether @size bytes at @buf are all ASCII and none is NUL */
static bool json_plain_ascii(const char *buf, size_t size)
{
    const uint64_t ones = 0x0101010101010101ULL, high = ones << 7;
    size_t i;

    for (i = 0; i + 8 <= size; i += 8) {
        uint64_t w = ldq_he_p(buf + i);

        /* a byte above 0x7f, or a zero byte */
        if ((w | ((w - ones) & ~w)) & high) {
            return false;
        }
    }
    for (; i < size; i++) {
        if (!buf[i] || buf[i] & 0x80) {
            return false;
        }
    }
    return true;
}

/* Read @buf as a JSON document with json-c */
static json_object *json_parse(const JsonReader *r, Error **errp)
{
    struct json_tokener *tok;
    enum json_tokener_error err;
    json_object *obj;
    const char *bad;
    size_t end;

    /* RFC 8259 8.1: UTF-8, and no NUL outside the escapes of strings */
    if (!json_plain_ascii(r->buf, r->size) &&
        !g_utf8_validate_len(r->buf, r->size, &bad)) {
        json_fail_at(r, bad - r->buf, errp, *bad ? "invalid UTF-8" :
                     "NUL character");
        return NULL;
    }
    tok = json_tokener_new_ex(REPORT_JSON_DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                           JSON_TOKENER_ALLOW_TRAILING_CHARS);
    /* with the NUL after the text, so that json-c sees where it ends */
    obj = json_tokener_parse_ex(tok, r->buf, r->size + 1);
    err = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err == json_tokener_error_depth) {
        json_fail_at(r, end, errp, "nested deeper than a host report");
        return NULL;
    }
    if (err != json_tokener_success) {
        json_fail_at(r, end, errp, "invalid JSON: %s",
                     json_tokener_error_desc(err));
        return NULL;
    }
    end += strspn(r->buf + end, " \t\n\r");
    if (end < r->size) {
        json_object_put(obj);
        json_fail_at(r, end, errp, "unexpected data after the host report");
        return NULL;
    }
    return obj;
}

HostReport *host_report_load(const char *path, Error **errp)
{
    g_autoptr(HostReport) report = host_report_new();
    g_autoptr(GError) gerr = NULL;
    g_autofree char *buf = NULL;
    bool is_stdin = !strcmp(path, "-");
    json_object *obj;
    JsonReader r;
    size_t members;
    gsize size;
    bool ok;

    if (!g_file_get_contents(is_stdin ? "/dev/stdin" : path, &buf, &size,
                             &gerr)) {
        error_setg(errp, "%s", gerr->message);
        return NULL;
    }
    r = (JsonReader) { is_stdin ? "(stdin)" : path, buf, size };
    if (size >= INT_MAX) {
        error_setg(errp, "%s: larger than 2 GiB", r.file);
        return NULL;
    }

    obj = json_parse(&r, errp);
    if (!obj) {
        return NULL;
    }
    ok = json_scan(&r, &members, errp) &&
         json_members(&r, NULL, obj, report_keys, "host report",
                      json_report_member, report, errp);
    json_object_put(obj);
    if (!ok) {
        return NULL;
    }
    if (members != r.members) {
        error_setg(errp, "%s: an object has two members of one name",
                   r.file);
        return NULL;
    }
    return g_steal_pointer(&report);
}
