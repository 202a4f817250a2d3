/*
 * libFuzzer target: a memmap option string through the code QEMU runs
 * for -machine memmap...: memmap_parse_keyval() (keyval, the QAPI input
 * visitor), memmap_layout_new() (validation, placement) and
 * memmap_layout_bind() (NUMA nodes, backend page size), under machine
 * constraints taken from the input.
 *
 * Input: MEMMAP_FUZZ_HEADER bytes of constraints (see fuzz_constraints()),
 * then the option string, e.g.
 * "memmap.0.type=hole,memmap.0.base=0xfee00000,memmap.0.size=1M".
 *
 * Besides crashes and sanitizer reports, an accepted map must be what the
 * rules promise (pieces disjoint, aligned, inside the address limit,
 * outside fixed regions and holes, adding up to RAM and to every NUMA
 * node's size), and a refused one must carry a message that names the
 * entry as memmap_range_describe() does, or the memmap rule it breaks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-types-memmap.h"
#include "qemu/cutils.h"
#include "hw/core/memmap.h"
#include "fuzz.h"

#define MEMMAP_FUZZ_HEADER 12
#define MEMMAP_FUZZ_MAX_NODES 4

/*
 * Device regions to choose from: those of virt below 1 GiB (sizes of
 * any alignment), a high one, and some at the very top of the address
 * space, where rounding to the alignment can wrap.
 */
static const MemMapFixedRegion fixed_pool[] = {
    { "flash", { .lob = 0, .upb = 0x07ffffff } },
    { "gic-dist", { .lob = 0x08000000, .upb = 0x0800ffff } },
    { "uart", { .lob = 0x09000000, .upb = 0x09000fff } },
    { "virtio-mmio", { .lob = 0x0a000000, .upb = 0x0a003fff } },
    { "pcie-mmio", { .lob = 0x10000000, .upb = 0x3efeffff } },
    { "pcie-ecam", { .lob = 0x3f000000, .upb = 0x3fffffff } },
    { "msi", { .lob = 0xfee00000, .upb = 0xfeefffff } },
    { "odd", { .lob = 0x140001000, .upb = 0x140002fff } },
    { "high-ecam", { .lob = 0x4010000000ULL, .upb = 0x401fffffffULL } },
    { "top", { .lob = UINT64_MAX - 0xffff, .upb = UINT64_MAX } },
    { "near-top", { .lob = UINT64_MAX - 0x4fff, .upb = UINT64_MAX - 0x3000 } },
};

static const uint64_t page_sizes[] = {
    0, 4 * KiB, 16 * KiB, 64 * KiB, 2 * MiB, 32 * MiB, 512 * MiB, GiB,
};

typedef struct FuzzConfig {
    MemMapConstraints c;
    MemMapFixedRegion fixed[ARRAY_SIZE(fixed_pool)];
    MemMapBinding b;
    uint64_t node_mem[MEMMAP_FUZZ_MAX_NODES];
} FuzzConfig;

static uint64_t get_le(const uint8_t *h, int n)
{
    uint64_t v = 0;

    while (n--) {
        v = v << 8 | h[n];
    }
    return v;
}

/*
 * The machine as the header describes it:
 *   h[0..1]  RAM size in 64 KiB units, less 1
 *   h[2]     bits 0-3: shift of the RAM size; bits 4-6: 8 KiB steps to
 *            take off (QEMU rounds -m to 8 KiB only)
 *   h[3]     address width: 0 no limit, else 24 to 64 bits
 *   h[4]     bits 0-2: alignment 64 KiB << n; bits 3-5: backend page
 *            size; bits 6-7: lowest piece at least 0, 64 KiB, 2 MiB or
 *            128 MiB
 *   h[5]     number of NUMA nodes (0 to 4), in bits 0-2
 *   h[6..7]  default RAM base: 1 GiB when 0, else n << 28 (bit 15 set:
 *            counted down from the top of the address space)
 *   h[8..9]  device regions of fixed_pool present (a bit each)
 *   h[10]    with h[11]: how the RAM is cut into nodes
 */
static void fuzz_config(const uint8_t *h, FuzzConfig *f)
{
    uint64_t ram = (get_le(h, 2) + 1) * 64 * KiB << (h[2] & 0xf);
    uint64_t align = MEMMAP_MIN_ALIGN << (h[4] & 7);
    uint64_t base = get_le(h + 6, 2);
    uint64_t fixed_mask = get_le(h + 8, 2);
    static const uint64_t boot[] = { 0, 64 * KiB, 2 * MiB, 128 * MiB };
    uint64_t left, unit;
    unsigned i;

    ram -= (h[2] >> 4 & 7) * 8 * KiB;
    if (!base) {
        base = GiB;
    } else if (base & 0x8000) {
        base = -((base & 0x7fff) << 28);
    } else {
        base <<= 28;
    }
    f->c = (MemMapConstraints) {
        .ram_size = ram,
        .default_base = QEMU_ALIGN_DOWN(base, align),
        .align = align,
        .phys_bits = h[3] ? 24 + h[3] % 41 : 0,
        .min_boot_size = boot[h[4] >> 6],
        .fixed = f->fixed,
    };
    for (i = 0; i < ARRAY_SIZE(fixed_pool); i++) {
        if (fixed_mask & BIT_ULL(i)) {
            f->fixed[f->c.nb_fixed++] = fixed_pool[i];
        }
    }

    /* node sizes in 64 KiB units; the last node takes what is left */
    f->b = (MemMapBinding) {
        .nb_nodes = MIN(h[5] & 7, MEMMAP_FUZZ_MAX_NODES),
        .node_mem = f->node_mem,
        .page_size = page_sizes[h[4] >> 3 & 7],
    };
    left = ram;
    unit = MAX(ram / 64 / KiB / MAX(f->b.nb_nodes, 1), 1);
    for (i = 0; i < f->b.nb_nodes; i++) {
        uint64_t n = (h[10 + (i & 1)] >> (i & 2 ? 4 : 0) & 0xf) *
                     unit / 8 * 64 * KiB;

        f->node_mem[i] = i == f->b.nb_nodes - 1 ? left : MIN(n, left);
        left -= f->node_mem[i];
    }
}

static uint64_t phys_last(const MemMapConstraints *c)
{
    return c->phys_bits && c->phys_bits < 64 ?
        BIT_ULL(c->phys_bits) - 1 : UINT64_MAX;
}

/* Whether every address of [lob, upb] is in one of @cover (sorted) */
static bool covered(uint64_t lob, uint64_t upb, GArray *cover)
{
    unsigned i;

    for (i = 0; i < cover->len; i++) {
        const Range *r = &g_array_index(cover, Range, i);

        if (r->lob > lob) {
            return false;
        }
        if (r->upb >= lob) {
            if (r->upb >= upb) {
                return true;
            }
            lob = r->upb + 1;
        }
    }
    return false;
}

static int range_cmp(gconstpointer a, gconstpointer b)
{
    const Range *ra = a, *rb = b;

    return ra->lob < rb->lob ? -1 : ra->lob > rb->lob;
}

/*
 * A refusal names an entry ("memmap.N (type=..., base=..., size=...)",
 * exactly as memmap_range_describe() writes entry N) or the memmap rule.
 */
static void check_refusal(Error *err, const MemMapRangeList *entries,
                          const char *map)
{
    const char *msg, *p;

    fuzz_assert(err, "no error set for '%s'", map);
    msg = error_get_pretty(err);
    fuzz_assert(g_str_has_prefix(msg, "memmap"), "message '%s' for '%s'",
                msg, map);
    for (p = strstr(msg, "memmap."); p; p = strstr(p + 1, "memmap.")) {
        const MemMapRangeList *it = entries;
        g_autofree char *desc = NULL;
        unsigned long n, i;
        const char *end;

        if (qemu_strtoul(p + 7, &end, 10, &n) < 0 || *end != ' ') {
            continue;
        }
        for (i = 0; it && i < n; i++) {
            it = it->next;
        }
        fuzz_assert(it, "message '%s' names an entry '%s' lacks", msg, map);
        desc = memmap_range_describe(n, it->value);
        fuzz_assert(g_str_has_prefix(p, desc), "message '%s' misquotes %s",
                    msg, desc);
    }
}

/* Every entry of an accepted map keeps the validation rules */
static void check_entries(const MemMapRangeList *entries,
                          const MemMapConstraints *c, GArray *holes,
                          const char *map)
{
    g_autoptr(GArray) all = g_array_new(false, false, sizeof(Range));
    const MemMapRangeList *it;
    unsigned i, n = 0;

    for (it = entries; it; it = it->next, n++) {
        const MemMapRange *e = it->value;
        Range r;

        fuzz_assert(e->size && e->size - 1 <= UINT64_MAX - e->base,
                    "entry %u of '%s'", n, map);
        range_init_nofail(&r, e->base, e->size);
        fuzz_assert(QEMU_IS_ALIGNED(e->base, c->align) &&
                    QEMU_IS_ALIGNED(e->size, c->align) &&
                    r.upb <= phys_last(c), "entry %u of '%s'", n, map);
        if (e->type == MEM_MAP_TYPE_RAM) {
            for (i = 0; i < c->nb_fixed; i++) {
                fuzz_assert(!range_overlaps_range(&r, &c->fixed[i].range),
                            "entry %u of '%s' over %s", n, map,
                            c->fixed[i].name);
            }
        } else {
            fuzz_assert(!e->has_node, "hole %u of '%s' with a node", n, map);
            g_array_append_val(holes, r);
        }
        g_array_append_val(all, r);
    }
    fuzz_assert(n <= MEMMAP_MAX_ENTRIES, "%u entries in '%s'", n, map);
    g_array_sort(all, range_cmp);
    for (i = 1; i < all->len; i++) {
        fuzz_assert(g_array_index(all, Range, i - 1).upb <
                    g_array_index(all, Range, i).lob,
                    "overlapping entries accepted in '%s'", map);
    }
    g_array_sort(holes, range_cmp);
}

/* The placed RAM of an accepted map */
static void check_layout(const MemMapLayout *l,
                         const MemMapRangeList *entries,
                         const MemMapConstraints *c, const char *map)
{
    g_autoptr(GArray) holes = g_array_new(false, false, sizeof(Range));
    g_autoptr(GArray) obstacles = NULL;
    g_autofree char *desc = memmap_layout_describe(l);
    const MemMapRangeList *it;
    uint64_t total = 0, last = 0, next_offset;
    bool explicit = false;
    unsigned i, j, nb_ram = 0;
    const MemMapPiece *p;

    check_entries(entries, c, holes, map);
    for (it = entries; it; it = it->next) {
        explicit |= it->value->type == MEM_MAP_TYPE_RAM;
        nb_ram += it->value->type == MEM_MAP_TYPE_RAM;
        last = MAX(last, it->value->base + it->value->size - 1);
    }

    fuzz_assert(l->ram->len, "no RAM for '%s'", map);
    fuzz_assert(l->holes->len == holes->len, "holes of '%s'", map);
    for (i = 0; i < holes->len; i++) {
        fuzz_assert(range_lob(&g_array_index(l->holes, Range, i)) ==
                    range_lob(&g_array_index(holes, Range, i)) &&
                    range_upb(&g_array_index(l->holes, Range, i)) ==
                    range_upb(&g_array_index(holes, Range, i)),
                    "hole %u of '%s'", i, map);
    }
    fuzz_assert(!explicit || l->ram->len == nb_ram, "pieces of '%s'", map);
    for (i = 0; i < l->ram->len; i++) {
        p = &g_array_index(l->ram, MemMapPiece, i);

        fuzz_assert(i == 0 || g_array_index(l->ram, MemMapPiece, i - 1)
                              .range.upb < p->range.lob,
                    "pieces not disjoint or not in order: %s", desc);
        fuzz_assert(QEMU_IS_ALIGNED(p->range.lob, c->align) &&
                    QEMU_IS_ALIGNED(p->offset, c->align),
                    "piece 0x%" PRIx64 " not aligned to 0x%" PRIx64 ": %s",
                    p->range.lob, c->align, desc);
        /* only the end of the RAM region keeps -m's remainder */
        fuzz_assert(QEMU_IS_ALIGNED(range_size(&p->range), c->align) ||
                    p->offset + range_size(&p->range) == c->ram_size,
                    "piece 0x%" PRIx64 " size: %s", p->range.lob, desc);
        fuzz_assert(p->range.upb <= phys_last(c), "beyond %u bits: %s",
                    c->phys_bits, desc);
        for (j = 0; j < c->nb_fixed; j++) {
            fuzz_assert(!range_overlaps_range(&p->range, &c->fixed[j].range),
                        "RAM over %s: %s", c->fixed[j].name, desc);
        }
        for (j = 0; j < holes->len; j++) {
            fuzz_assert(!range_overlaps_range(&p->range,
                                              &g_array_index(holes, Range,
                                                             j)),
                        "RAM in a hole: %s", desc);
        }
        total += range_size(&p->range);
        last = MAX(last, p->range.upb);
    }
    fuzz_assert(total == c->ram_size, "RAM 0x%" PRIx64 " of 0x%" PRIx64
                ": %s", total, c->ram_size, desc);
    fuzz_assert(l->last == last, "last 0x%" PRIx64 ": %s", l->last, desc);
    fuzz_assert(range_size(&g_array_index(l->ram, MemMapPiece, 0).range) >=
                c->min_boot_size, "lowest piece too small: %s", desc);

    /* the RAM region is cut into the pieces, no offset twice */
    for (next_offset = 0; next_offset < c->ram_size;) {
        for (i = 0; i < l->ram->len; i++) {
            p = &g_array_index(l->ram, MemMapPiece, i);
            if (p->offset == next_offset) {
                break;
            }
        }
        fuzz_assert(i < l->ram->len, "no piece at offset 0x%" PRIx64 ": %s",
                    next_offset, desc);
        next_offset += range_size(&p->range);
    }

    if (explicit) {
        /* exactly the ram entries */
        for (it = entries; it; it = it->next) {
            const MemMapRange *e = it->value;

            if (e->type != MEM_MAP_TYPE_RAM) {
                continue;
            }
            for (i = 0; i < l->ram->len; i++) {
                p = &g_array_index(l->ram, MemMapPiece, i);
                if (p->range.lob == e->base) {
                    break;
                }
            }
            fuzz_assert(i < l->ram->len &&
                        range_size(&p->range) == e->size &&
                        p->node == (e->has_node ? e->node : -1),
                        "ram entry at 0x%" PRIx64 ": %s", e->base, desc);
        }
        return;
    }

    /*
     * Flowing RAM: upward from the default base in offset order, each
     * gap (and what lies below the first piece) all holes and fixed
     * regions widened to the alignment.
     */
    obstacles = g_array_copy(holes);
    for (j = 0; j < c->nb_fixed; j++) {
        Range r = c->fixed[j].range;

        /* widened to the alignment (a power of 2), at most to the top */
        r.lob = QEMU_ALIGN_DOWN(r.lob, c->align);
        r.upb |= c->align - 1;
        g_array_append_val(obstacles, r);
    }
    g_array_sort(obstacles, range_cmp);
    next_offset = 0;
    for (i = 0; i < l->ram->len; i++) {
        uint64_t from = i ? g_array_index(l->ram, MemMapPiece, i - 1)
                            .range.upb + 1 : c->default_base;

        p = &g_array_index(l->ram, MemMapPiece, i);
        fuzz_assert(p->offset == next_offset && p->node == -1,
                    "offset order: %s", desc);
        fuzz_assert(p->range.lob >= from, "below the default base: %s",
                    desc);
        fuzz_assert(i == 0 ? p->range.lob == from ||
                             covered(from, p->range.lob - 1, obstacles)
                           : p->range.lob > from &&
                             covered(from, p->range.lob - 1, obstacles),
                    "gap before 0x%" PRIx64 " is not all obstacles: %s",
                    p->range.lob, desc);
        next_offset += range_size(&p->range);
    }
}

/* The layout after a successful memmap_layout_bind() */
static void check_bound(const MemMapLayout *l, GList *placed,
                        const MemMapRangeList *entries,
                        const MemMapConstraints *c, const MemMapBinding *b,
                        const char *map)
{
    g_autofree char *desc = memmap_layout_describe(l);
    GList *now = memmap_layout_ram_ranges(l);
    uint64_t node_sum[MEMMAP_FUZZ_MAX_NODES] = { 0 };
    uint64_t total = 0;
    GList *x, *y;
    unsigned i;

    fuzz_assert(l->bound, "not bound: %s", desc);
    /* binding splits pieces, it never moves RAM */
    for (x = placed, y = now; x && y; x = x->next, y = y->next) {
        fuzz_assert(range_lob(x->data) == range_lob(y->data) &&
                    range_upb(x->data) == range_upb(y->data),
                    "RAM moved by bind: %s", desc);
    }
    fuzz_assert(!x && !y, "RAM moved by bind: %s", desc);
    g_list_free_full(now, g_free);

    for (i = 0; i < l->ram->len; i++) {
        const MemMapPiece *p = &g_array_index(l->ram, MemMapPiece, i);
        uint64_t page = b->page_size > MEMMAP_MIN_ALIGN ? b->page_size : 1;

        fuzz_assert(i == 0 || g_array_index(l->ram, MemMapPiece, i - 1)
                              .range.upb < p->range.lob,
                    "bound pieces not disjoint: %s", desc);
        fuzz_assert(QEMU_IS_ALIGNED(p->range.lob, page) &&
                    QEMU_IS_ALIGNED(p->offset, page) &&
                    QEMU_IS_ALIGNED(range_size(&p->range), page),
                    "piece 0x%" PRIx64 " not on 0x%" PRIx64 " pages: %s",
                    p->range.lob, b->page_size, desc);
        if (b->nb_nodes) {
            fuzz_assert(p->node >= 0 && p->node < b->nb_nodes,
                        "node %d: %s", p->node, desc);
            node_sum[p->node] += range_size(&p->range);
        } else {
            fuzz_assert(p->node == -1, "node %d without NUMA: %s", p->node,
                        desc);
        }
        total += range_size(&p->range);
    }
    fuzz_assert(total == c->ram_size, "bound RAM: %s", desc);
    for (i = 0; i < b->nb_nodes; i++) {
        fuzz_assert(node_sum[i] == b->node_mem[i], "node %u has 0x%" PRIx64
                    " of 0x%" PRIx64 ": %s", i, node_sum[i], b->node_mem[i],
                    desc);
    }
    for (; entries; entries = entries->next) {
        const MemMapRange *e = entries->value;

        fuzz_assert(e->type != MEM_MAP_TYPE_RAM || !b->nb_nodes ||
                    e->has_node || b->nb_nodes == 1,
                    "ram entry without node on %u nodes accepted: %s",
                    b->nb_nodes, map);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t h[MEMMAP_FUZZ_HEADER] = { 0 };
    g_autoptr(MemMapRangeList) entries = NULL;
    g_autoptr(MemMapLayout) l = NULL;
    g_autofree char *map = NULL;
    Error *err = NULL;
    FuzzConfig f = { 0 };
    GList *placed;

    memcpy(h, data, MIN(size, sizeof(h)));
    fuzz_config(h, &f);
    map = g_strndup((const char *)data + MIN(size, sizeof(h)),
                    size - MIN(size, sizeof(h)));

    if (!memmap_parse_keyval(map, &entries, &err)) {
        fuzz_assert(err && *error_get_pretty(err) && !entries,
                    "parse failure of '%s'", map);
        error_free(err);
        return 0;
    }
    fuzz_assert(!err, "error with success for '%s'", map);

    l = memmap_layout_new(entries, &f.c, &err);
    if (!l) {
        check_refusal(err, entries, map);
        error_free(err);
        return 0;
    }
    check_layout(l, entries, &f.c, map);

    placed = memmap_layout_ram_ranges(l);
    if (memmap_layout_bind(l, entries, &f.b, &err)) {
        check_bound(l, placed, entries, &f.c, &f.b, map);
    } else {
        check_refusal(err, entries, map);
        error_free(err);
        fuzz_assert(!l->bound, "bound after a refusal: '%s'", map);
    }
    g_list_free_full(placed, g_free);
    return 0;
}
