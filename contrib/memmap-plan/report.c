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
 * Reports are read with QEMU's JSON parser, the one QMP uses, held to
 * RFC 8259 (QEMU's extensions refused), then checked strictly against
 * this schema.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qobject/json-parser.h"
#include "qobject/json-writer.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
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
 * QEMU's JSON parser holds one value to 64 MiB of tokens
 * (json-streamer.c); a report of that size lists about a million
 * reserved regions.
 */
#define REPORT_MAX_SIZE (64 * MiB)

/* White space, and what tokens other than numbers and names start with */
#define JSON_WS " \t\n\r"
#define JSON_DELIMITERS "{}[]:,\"'"

typedef struct JsonReader {
    const char *file;
    const char *buf;
    size_t size;
} JsonReader;

/* "FILE:LINE:COLUMN" for the byte at @offset, columns in bytes */
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

/*
 * Parsing: what QEMU's JSON message parser gives for @size bytes at
 * @buf, fed at once or a byte at a time
 */
typedef struct JsonFeed {
    JSONMessageParser parser;
    /* the first value or error, and how many were emitted */
    QObject *value;
    Error *err;
    unsigned emitted;
    /* the lexer's position when the first was emitted */
    int x, y;
} JsonFeed;

static void json_feed_emit(void *opaque, QObject *json, Error *err)
{
    JsonFeed *f = opaque;

    if (f->emitted++) {
        qobject_unref(json);
        error_free(err);
        return;
    }
    f->value = json;
    f->err = err;
    f->x = f->parser.lexer.x;
    f->y = f->parser.lexer.y;
}

static void json_feed_init(JsonFeed *f)
{
    *f = (JsonFeed) { 0 };
    /* no va_list: QEMU's %-interpolation stays off */
    json_message_parser_init(&f->parser, json_feed_emit, f, NULL);
}

static void json_feed_destroy(JsonFeed *f)
{
    json_message_parser_destroy(&f->parser);
    qobject_unref(f->value);
    error_free(f->err);
}

/*
 * Whether the lexer is between tokens: the bytes it holds (if any) are
 * white space, so that input cut here ends with a whole token.
 */
static bool json_feed_between_tokens(const JsonFeed *f)
{
    const GString *t = f->parser.lexer.token;

    return strspn(t->str, JSON_WS) == t->len;
}

/*
 * Feed the first @len bytes, then more until the lexer is between
 * tokens, then flush: whether that input is already wrong, as opposed to
 * unfinished (QEMU's "premature EOI", the error of @eoi), or a whole
 * value.
 */
static bool json_prefix_is_wrong(const JsonReader *r, size_t len,
                                 const char *eoi)
{
    JsonFeed f;
    bool wrong;

    json_feed_init(&f);
    json_message_parser_feed(&f.parser, r->buf, len);
    while (!f.emitted && len < r->size && !json_feed_between_tokens(&f)) {
        json_message_parser_feed(&f.parser, r->buf + len++, 1);
    }
    if (!f.emitted) {
        json_message_parser_flush(&f.parser);
    }
    wrong = f.err && strcmp(error_get_pretty(f.err), eoi);
    json_feed_destroy(&f);
    return wrong;
}

/*
 * Where the error QEMU's parser found in the report is.  Its messages
 * carry no position, and it parses a value only once its brackets
 * close, so the position is found by parsing prefixes of the text: a
 * prefix that holds the wrong token fails with the error that the whole
 * text does, a shorter one is only unfinished.  Bisect on the length
 * for the first wrong one; the token it ends with is where the error is.
 * On error paths only: O(n log n).
 */
static size_t json_error_offset(const JsonReader *r)
{
    g_autofree char *eoi = NULL;
    size_t lo = 0, hi = r->size;
    JsonFeed f;

    /* QEMU's own message for an unfinished value */
    json_feed_init(&f);
    json_message_parser_feed(&f.parser, "[", 1);
    json_message_parser_flush(&f.parser);
    assert(f.err);
    eoi = g_strdup(error_get_pretty(f.err));
    json_feed_destroy(&f);

    if (!json_prefix_is_wrong(r, r->size, eoi)) {
        /* only unfinished: the error is at the end */
        return r->size;
    }
    /* the first length whose prefix is wrong, in (lo, hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (json_prefix_is_wrong(r, mid, eoi)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    /*
     * The prefix of @lo bytes ends between tokens, and no longer one
     * before @hi does: the wrong token is the first after @lo.
     */
    return lo + strspn(r->buf + lo, JSON_WS);
}

/* The offset of the byte the lexer was at, from its 0-based line @y */
static size_t json_offset_of(const JsonReader *r, int x, int y)
{
    const char *p = r->buf;

    while (y-- > 0) {
        p = memchr(p, '\n', r->buf + r->size - p) + 1;
    }
    return p - r->buf + x - 1;
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
 * One pass over the text before QEMU's parser reads it, which
 * - refuses, with the position, what that parser takes beyond RFC 8259:
 *   single-quoted strings and the escape \' in strings; and integers
 *   beyond int64 and uint64, which it reads as floating-point numbers,
 *   rounding them (a report has integers only as members' values);
 * - copies the text without the white space between tokens, which QEMU's
 *   lexer would take a byte at a time (62% of an indented report), into
 *   *@compact.  One space stays where two tokens would otherwise join,
 *   so the parser sees the same tokens.
 * The text has no NUL (json_validate() checked), and one after it.
 */
static bool json_prepare(const JsonReader *r, GString *compact, Error **errp)
{
    const char *p = r->buf, *end = r->buf + r->size, *q;
    size_t n;

    while (p < end) {
        n = strcspn(p, JSON_WS "\"':");
        g_string_append_len(compact, p, n);
        p += n;
        switch (*p) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            q = p + strspn(p, JSON_WS);
            if (compact->len && q < end &&
                !strchr(JSON_DELIMITERS, compact->str[compact->len - 1]) &&
                !strchr(JSON_DELIMITERS, *q)) {
                g_string_append_c(compact, ' ');
            }
            p = q;
            break;
        case '"':
            q = p + 1 + strcspn(p + 1, "\"\\");
            while (*q == '\\' && q[1]) {
                if (q[1] == '\'') {
                    return json_fail_at(r, q - r->buf, errp, "JSON parse "
                                        "error, \\' is not a JSON escape");
                }
                q += 2 + strcspn(q + 2, "\"\\");
            }
            q += q < end;
            g_string_append_len(compact, p, q - p);
            p = q;
            break;
        case '\'':
            return json_fail_at(r, p - r->buf, errp, "JSON parse error, "
                                "single-quoted strings are not JSON");
        case ':':
            g_string_append_c(compact, ':');
            p++;
            p += strspn(p, JSON_WS);
            q = p + (*p == '-');
            q += strspn(q, "0123456789");
            if (q > p && *q != '.' && *q != 'e' && *q != 'E' &&
                !json_integer_fits(p, q - p)) {
                return json_fail_at(r, p - r->buf, errp,
                                    "integer %.*s out of range",
                                    (int)(q - p), p);
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

/*
 * RFC 8259 8.1: UTF-8, and no NUL outside the escapes of strings.
 * QEMU's parser reads modified UTF-8, where NUL is "\xC0\x80".
 */
static bool json_validate(const JsonReader *r, Error **errp)
{
    const char *bad;

    if (!json_plain_ascii(r->buf, r->size) &&
        !g_utf8_validate_len(r->buf, r->size, &bad)) {
        return json_fail_at(r, bad - r->buf, errp, *bad ? "invalid UTF-8" :
                            "NUL character");
    }
    return true;
}

/*
 * @s with control characters escaped, for messages; QEMU's parser gives
 * U+0000 as "\xC0\x80"
 */
static char *json_printable(const char *s)
{
    GString *out = g_string_new(NULL);

    for (; *s; s++) {
        unsigned char c = *s;

        if (c == 0xc0 && (unsigned char)s[1] == 0x80) {
            g_string_append(out, "\\x00");
            s++;
        } else if (c < ' ' || c == 0x7f) {
            g_string_append_printf(out, "\\x%02x", c);
        } else {
            g_string_append_c(out, c);
        }
    }
    return g_string_free(out, false);
}

/* Messages of QEMU's parser quote tokens: the most of one quoted */
#define JSON_MESSAGE_MAX 200

/* Read @r as one JSON value with QEMU's parser */
static QObject *json_parse(const JsonReader *r, Error **errp)
{
    g_autoptr(GString) compact = NULL;
    QObject *value;
    size_t at;
    JsonFeed f;

    if (!json_validate(r, errp)) {
        return NULL;
    }
    compact = g_string_sized_new(r->size);
    if (!json_prepare(r, compact, errp)) {
        return NULL;
    }
    json_feed_init(&f);
    json_message_parser_feed(&f.parser, compact->str, compact->len);
    json_message_parser_flush(&f.parser);
    if (!f.emitted) {
        json_feed_destroy(&f);
        json_fail_at(r, r->size, errp, "no JSON value");
        return NULL;
    }
    if (f.err) {
        g_autofree char *msg = json_printable(error_get_pretty(f.err));

        json_feed_destroy(&f);
        /* a stray token can be as long as the text: cut it */
        if (strlen(msg) > JSON_MESSAGE_MAX) {
            *g_utf8_find_prev_char(msg, msg + JSON_MESSAGE_MAX) = 0;
            json_fail_at(r, json_error_offset(r), errp, "%s...", msg);
        } else {
            json_fail_at(r, json_error_offset(r), errp, "%s", msg);
        }
        return NULL;
    }
    value = g_steal_pointer(&f.value);
    if (f.emitted > 1 && qobject_type(value) == QTYPE_QDICT) {
        /*
         * Where the object ends in the text as written: the lexer is at
         * its closing brace when the parser gives it
         */
        json_feed_destroy(&f);
        json_feed_init(&f);
        json_message_parser_feed(&f.parser, r->buf, r->size);
        at = json_offset_of(r, f.x, f.y) + 1;
        at += strspn(r->buf + at, JSON_WS);
        json_feed_destroy(&f);
        qobject_unref(value);
        json_fail_at(r, at, errp, "unexpected data after the host report");
        return NULL;
    }
    json_feed_destroy(&f);
    return value;
}

/* Schema */

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

/*
 * The string @val.  QEMU's parser has refused what is not Unicode
 * (unpaired surrogates, noncharacters), so what it holds writes back as
 * it was read; control characters are refused here.
 */
static bool json_member_text(const JsonReader *r, const JsonPath *where,
                             QObject *val, const char **s, Error **errp)
{
    QString *qs = qobject_to(QString, val);
    const char *str, *p;

    if (!qs) {
        return json_fail(r, where, errp, "expected a string");
    }
    str = qstring_get_str(qs);
    for (p = str; *p; p++) {
        unsigned char c = *p;

        if (c < ' ' || c == 0x7f ||
            (c == 0xc0 && (unsigned char)p[1] == 0x80)) {
            g_autofree char *printable = json_printable(str);

            return json_fail(r, where, errp, "control character in '%s'",
                             printable);
        }
    }
    *s = str;
    return true;
}

static bool json_member_string(const JsonReader *r, const JsonPath *where,
                               QObject *val, char **s, Error **errp)
{
    const char *str;

    if (!json_member_text(r, where, val, &str, errp)) {
        return false;
    }
    *s = g_strdup(str);
    return true;
}

static bool json_member_uint64(const JsonReader *r, const JsonPath *where,
                               QObject *val, uint64_t *n, Error **errp)
{
    QNum *qn = qobject_to(QNum, val);
    int64_t i;

    if (!qn) {
        return json_fail(r, where, errp, "expected a non-negative integer");
    }
    if (qnum_get_try_uint(qn, n)) {
        return true;
    }
    /* json_scan() refused integers that QEMU reads as doubles */
    return json_fail(r, where, errp, "expected %s",
                     qnum_get_try_int(qn, &i) ? "a non-negative integer" :
                     "an integer");
}

/*
 * The members @keys of object @val, in @vals; refuse other names, and
 * objects without all of @keys.
 */
static bool json_members(const JsonReader *r, const JsonPath *where,
                         QObject *val, const char *const *keys,
                         const char *what, QObject **vals, Error **errp)
{
    QDict *dict = qobject_to(QDict, val);
    const QDictEntry *e;
    size_t i, found = 0;

    if (!dict) {
        return json_fail(r, where, errp, "expected an object");
    }
    for (i = 0; keys[i]; i++) {
        vals[i] = qdict_get(dict, keys[i]);
        found += !!vals[i];
    }
    for (e = qdict_first(dict); found < qdict_size(dict) && e;
         e = qdict_next(dict, e)) {
        for (i = 0; keys[i] && strcmp(keys[i], e->key); i++) {
            continue;
        }
        if (!keys[i]) {
            g_autofree char *p = json_printable(e->key);

            return json_fail(r, where, errp, "unexpected member '%s'", p);
        }
    }
    for (i = 0; keys[i]; i++) {
        if (!vals[i]) {
            return json_fail(r, where, errp, "%s without '%s'", what,
                             keys[i]);
        }
    }
    return true;
}

static QList *json_array(const JsonReader *r, const JsonPath *where,
                         QObject *val, Error **errp)
{
    QList *list = qobject_to(QList, val);

    if (!list) {
        json_fail(r, where, errp, "expected an array");
    }
    return list;
}

static const char *const region_keys[] = { "start", "end", "type", NULL };

static bool json_region(const JsonReader *r, const JsonPath *where,
                        QObject *val, HostReport *report, Error **errp)
{
    QObject *vals[ARRAY_SIZE(region_keys)];
    JsonPath path[3];
    ResvRegion reg = { 0 };
    uint64_t start, end;
    const char *type;
    size_t i;

    if (!json_members(r, where, val, region_keys, "reserved region", vals,
                      errp)) {
        return false;
    }
    for (i = 0; region_keys[i]; i++) {
        path[i] = (JsonPath) { .up = where, .name = region_keys[i] };
    }
    if (!json_member_uint64(r, &path[0], vals[0], &start, errp) ||
        !json_member_uint64(r, &path[1], vals[1], &end, errp) ||
        !json_member_text(r, &path[2], vals[2], &type, errp)) {
        return false;
    }
    if (!resv_type_parse(type, strlen(type), &reg.type)) {
        /* no control character: json_member_text() refused those */
        return json_fail(r, &path[2], errp,
                         "unknown reserved region type '%s'", type);
    }
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

static bool json_device(const JsonReader *r, const JsonPath *where,
                        QObject *val, HostReport *report, Error **errp)
{
    QObject *vals[ARRAY_SIZE(device_keys)];
    ReportDevice dev = { .first = report->regions->len };
    g_autofree char *bdf = NULL;
    JsonPath path[3];
    const ResvRegion *a, *b;
    const QListEntry *e;
    QList *regions;
    size_t i;

    if (!json_members(r, where, val, device_keys, "device", vals, errp)) {
        return false;
    }
    for (i = 0; device_keys[i]; i++) {
        path[i] = (JsonPath) { .up = where, .name = device_keys[i] };
    }
    if (!json_member_string(r, &path[0], vals[0], &bdf, errp) ||
        !json_member_uint64(r, &path[1], vals[1], &dev.group, errp)) {
        return false;
    }
    regions = json_array(r, &path[2], vals[2], errp);
    if (!regions) {
        return false;
    }
    i = 0;
    QLIST_FOREACH_ENTRY(regions, e) {
        JsonPath elem = { .up = &path[2], .index = i++ };

        if (!json_region(r, &elem, qlist_entry_obj(e), report, errp)) {
            return false;
        }
    }
    dev.count = report->regions->len - dev.first;
    b = regions_sort_check(&g_array_index(report->regions, ResvRegion,
                                          dev.first),
                           dev.count, &a);
    if (b) {
        return json_fail(r, where, errp, "device %s: %s regions 0x%" PRIx64
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

static bool json_report(const JsonReader *r, QObject *val,
                        HostReport *report, Error **errp)
{
    QObject *vals[ARRAY_SIZE(report_keys)];
    JsonPath host = { .name = "host" }, devices = { .name = "devices" };
    const QListEntry *e;
    QList *list;
    size_t i = 0;

    if (!json_members(r, NULL, val, report_keys, "host report", vals, errp) ||
        !json_member_string(r, &host, vals[0], &report->host, errp)) {
        return false;
    }
    list = json_array(r, &devices, vals[1], errp);
    if (!list) {
        return false;
    }
    QLIST_FOREACH_ENTRY(list, e) {
        JsonPath elem = { .up = &devices, .index = i++ };

        if (!json_device(r, &elem, qlist_entry_obj(e), report, errp)) {
            return false;
        }
    }
    return true;
}

HostReport *host_report_load(const char *path, Error **errp)
{
    g_autoptr(HostReport) report = host_report_new();
    g_autoptr(GError) gerr = NULL;
    g_autofree char *buf = NULL;
    bool is_stdin = !strcmp(path, "-");
    QObject *value;
    JsonReader r;
    gsize size;
    bool ok;

    if (!g_file_get_contents(is_stdin ? "/dev/stdin" : path, &buf, &size,
                             &gerr)) {
        error_setg(errp, "%s", gerr->message);
        return NULL;
    }
    r = (JsonReader) { is_stdin ? "(stdin)" : path, buf, size };
    if (size > REPORT_MAX_SIZE) {
        error_setg(errp, "%s: larger than 64 MiB, the most QEMU's JSON "
                   "parser reads as one value", r.file);
        return NULL;
    }
    value = json_parse(&r, errp);
    if (!value) {
        return NULL;
    }
    ok = json_report(&r, value, report, errp);
    qobject_unref(value);
    return ok ? g_steal_pointer(&report) : NULL;
}
