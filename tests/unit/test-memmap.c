/*
 * Unit tests of the memmap validator and RAM layout engine
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-types-memmap.h"
#include "hw/core/memmap.h"

/* The fixed regions of a small machine: devices below 1 GiB */
static const MemMapFixedRegion fixed[] = {
    { "flash", { .lob = 0, .upb = 0x07ffffff } },
    { "uart0", { .lob = 0x09000000, .upb = 0x09000fff } },
    { "pcie-ecam", { .lob = 0x3f000000, .upb = 0x3fffffff } },
};

static MemMapConstraints constraints(uint64_t ram_size)
{
    return (MemMapConstraints) {
        .ram_size = ram_size,
        .default_base = GiB,
        .align = MEMMAP_MIN_ALIGN,
        .phys_bits = 40,
        .fixed = fixed,
        .nb_fixed = ARRAY_SIZE(fixed),
    };
}

static MemMapRangeList *parse(const char *str)
{
    MemMapRangeList *entries;

    memmap_parse_keyval(str, &entries, &error_abort);
    return entries;
}

/* Lay out @str, which must be accepted */
static MemMapLayout *layout(const char *str, const MemMapConstraints *c)
{
    g_autoptr(MemMapRangeList) entries = parse(str);

    return memmap_layout_new(entries, c, &error_abort);
}

/* Lay out @str, which must be refused with a message containing @msg */
static void refused(const char *str, const MemMapConstraints *c,
                    const char *msg)
{
    g_autoptr(MemMapRangeList) entries = parse(str);
    Error *err = NULL;
    MemMapLayout *l = memmap_layout_new(entries, c, &err);

    g_assert_null(l);
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), msg)) {
        g_printerr("message '%s' lacks '%s'\n", error_get_pretty(err), msg);
        g_assert_not_reached();
    }
    error_free(err);
}

static const uint64_t two_nodes[] = { GiB, GiB };
static const MemMapBinding numa2 = { .nb_nodes = 2, .node_mem = two_nodes };

/*
 * Place @str, then bind it to @b, in that order and separately, as KVM
 * runs them (placement while it sizes the address space, binding once
 * NUMA and the memory backends exist); both must succeed.
 */
static MemMapLayout *bound(const char *str, const MemMapConstraints *c,
                           const MemMapBinding *b)
{
    g_autoptr(MemMapRangeList) entries = parse(str);
    MemMapLayout *l = memmap_layout_new(entries, c, &error_abort);

    memmap_layout_bind(l, entries, b, &error_abort);
    g_assert_true(l->bound);
    return l;
}

/*
 * Place @str, which must be accepted, then bind it to @b, which must be
 * refused with a message containing @msg, leaving the placed layout as
 * it was.
 */
static void refused_bind(const char *str, const MemMapConstraints *c,
                         const MemMapBinding *b, const char *msg)
{
    g_autoptr(MemMapRangeList) entries = parse(str);
    g_autoptr(MemMapLayout) l = memmap_layout_new(entries, c, &error_abort);
    g_autofree char *before = memmap_layout_describe(l);
    g_autofree char *after = NULL;
    Error *err = NULL;

    g_assert_false(memmap_layout_bind(l, entries, b, &err));
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), msg)) {
        g_printerr("message '%s' lacks '%s'\n", error_get_pretty(err), msg);
        g_assert_not_reached();
    }
    error_free(err);
    after = memmap_layout_describe(l);
    g_assert_cmpstr(before, ==, after);
    g_assert_false(l->bound);
}

static void assert_piece(const MemMapLayout *l, unsigned i, uint64_t base,
                         uint64_t size, uint64_t offset, int node)
{
    const MemMapPiece *p;

    g_assert_cmpuint(i, <, l->ram->len);
    p = &g_array_index(l->ram, MemMapPiece, i);
    g_assert_cmphex(p->range.lob, ==, base);
    g_assert_cmphex(range_size(&p->range), ==, size);
    g_assert_cmphex(p->offset, ==, offset);
    g_assert_cmpint(p->node, ==, node);
}

static void test_default(void)
{
    MemMapConstraints c = constraints(512 * MiB);
    g_autoptr(MemMapLayout) l = memmap_layout_new(NULL, &c, &error_abort);

    g_assert_cmpuint(l->ram->len, ==, 1);
    assert_piece(l, 0, GiB, 512 * MiB, 0, -1);
    g_assert_cmpuint(l->holes->len, ==, 0);
    g_assert_cmphex(l->last, ==, GiB + 512 * MiB - 1);
}

static void test_holes_only(void)
{
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = layout(
        "memmap.0.type=hole,memmap.0.base=0x50000000,memmap.0.size=256M", &c);

    g_assert_cmpuint(l->ram->len, ==, 2);
    assert_piece(l, 0, 0x40000000, 256 * MiB, 0, -1);
    assert_piece(l, 1, 0x60000000, 768 * MiB, 256 * MiB, -1);
    g_assert_cmpuint(l->holes->len, ==, 1);
    g_assert_cmphex(l->last, ==, 0x8fffffff);
}

static void test_holes_out_of_order(void)
{
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = layout(
        "memmap.0.type=hole,memmap.0.base=0x70000000,memmap.0.size=64K,"
        "memmap.1.type=hole,memmap.1.base=0x50000000,memmap.1.size=256M", &c);

    g_assert_cmpuint(l->ram->len, ==, 3);
    assert_piece(l, 0, 0x40000000, 256 * MiB, 0, -1);
    assert_piece(l, 1, 0x60000000, 256 * MiB, 256 * MiB, -1);
    assert_piece(l, 2, 0x70010000, 512 * MiB, 512 * MiB, -1);
    g_assert_cmphex(g_array_index(l->holes, Range, 0).lob, ==, 0x50000000);
}

static void test_hole_at_base(void)
{
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = layout(
        "memmap.0.type=hole,memmap.0.base=1G,memmap.0.size=1G", &c);

    g_assert_cmpuint(l->ram->len, ==, 1);
    assert_piece(l, 0, 2 * GiB, GiB, 0, -1);
}

static void test_hole_above_ram(void)
{
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = layout(
        "memmap.0.type=hole,memmap.0.base=0x4000000000,memmap.0.size=1G", &c);

    g_assert_cmpuint(l->ram->len, ==, 1);
    assert_piece(l, 0, GiB, GiB, 0, -1);
    /* floating regions go above the hole too */
    g_assert_cmphex(l->last, ==, 0x403fffffff);
}

static void test_msi_window_crossing_4g(void)
{
    MemMapConstraints c = constraints(4 * GiB);
    g_autoptr(MemMapLayout) l = layout(
        "memmap.0.type=hole,memmap.0.base=0xfee00000,memmap.0.size=1M", &c);

    g_assert_cmpuint(l->ram->len, ==, 2);
    assert_piece(l, 0, GiB, 0xfee00000 - GiB, 0, -1);
    assert_piece(l, 1, 0xfef00000, 4 * GiB - (0xfee00000 - GiB),
                 0xfee00000 - GiB, -1);
}

static void test_flow_skips_fixed_regions(void)
{
    MemMapConstraints c = constraints(256 * MiB);
    g_autoptr(MemMapLayout) l = NULL;

    c.default_base = 0x08000000;
    l = memmap_layout_new(NULL, &c, &error_abort);
    /* around uart0 at 0x09000000, which takes a whole 64 KiB */
    g_assert_cmpuint(l->ram->len, ==, 2);
    assert_piece(l, 0, 0x08000000, 0x01000000, 0, -1);
    assert_piece(l, 1, 0x09010000, 0x0f000000, 0x01000000, -1);
}

static void test_explicit(void)
{
    MemMapConstraints c = constraints(2 * GiB);
    g_autoptr(MemMapLayout) l = layout(
        "memmap.0.type=ram,memmap.0.base=0x180000000,memmap.0.size=512M,"
        "memmap.1.type=ram,memmap.1.base=1G,memmap.1.size=512M,"
        "memmap.2.type=hole,memmap.2.base=0xfee00000,memmap.2.size=1M,"
        "memmap.3.type=ram,memmap.3.base=0x100000000,memmap.3.size=1G", &c);

    g_assert_cmpuint(l->ram->len, ==, 3);
    assert_piece(l, 0, GiB, 512 * MiB, 0, -1);
    assert_piece(l, 1, 4 * GiB, GiB, 512 * MiB, -1);
    assert_piece(l, 2, 6 * GiB, 512 * MiB, 1536 * MiB, -1);
    g_assert_cmpuint(l->holes->len, ==, 1);
    g_assert_cmphex(l->last, ==, 0x19fffffff);
}

static void test_numa_flow(void)
{
    MemMapConstraints c = constraints(2 * GiB);
    const char *map = "memmap.0.type=hole,memmap.0.base=0x60000000,"
                      "memmap.0.size=512M";
    g_autoptr(MemMapRangeList) entries = parse(map);
    g_autoptr(MemMapLayout) placed = memmap_layout_new(entries, &c,
                                                       &error_abort);
    g_autoptr(MemMapLayout) l = NULL;

    /* placement knows no nodes: no piece has one yet */
    g_assert_cmpuint(placed->ram->len, ==, 2);
    assert_piece(placed, 0, 0x40000000, 512 * MiB, 0, -1);
    assert_piece(placed, 1, 0x80000000, 1536 * MiB, 512 * MiB, -1);

    /* binding splits the piece where node 0 ends */
    l = bound(map, &c, &numa2);
    g_assert_cmpuint(l->ram->len, ==, 3);
    assert_piece(l, 0, 0x40000000, 512 * MiB, 0, 0);
    assert_piece(l, 1, 0x80000000, 512 * MiB, 512 * MiB, 0);
    assert_piece(l, 2, 0xa0000000, GiB, GiB, 1);
    g_assert_cmphex(l->last, ==, placed->last);
}

static void test_numa_flow_empty_node(void)
{
    static const uint64_t node_mem[] = { 0, GiB, 0 };
    static const MemMapBinding b = { .nb_nodes = 3, .node_mem = node_mem };
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = bound("", &c, &b);

    g_assert_cmpuint(l->ram->len, ==, 1);
    assert_piece(l, 0, GiB, GiB, 0, 1);
}

static void test_numa_explicit(void)
{
    MemMapConstraints c = constraints(2 * GiB);
    g_autoptr(MemMapLayout) l = NULL;

    /* node 1 below node 0: offsets still follow node order */
    l = bound("memmap.0.type=ram,memmap.0.base=0x100000000,memmap.0.size=1G,"
              "memmap.0.node=0,"
              "memmap.1.type=ram,memmap.1.base=1G,memmap.1.size=1G,"
              "memmap.1.node=1", &c, &numa2);
    assert_piece(l, 0, GiB, GiB, GiB, 1);
    assert_piece(l, 1, 4 * GiB, GiB, 0, 0);
}

static void test_numa_one_node(void)
{
    static const uint64_t node_mem[] = { GiB };
    static const MemMapBinding b = { .nb_nodes = 1, .node_mem = node_mem };
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = NULL;

    /* with one node, ram entries without a node belong to it */
    l = bound("memmap.0.type=ram,memmap.0.base=4G,memmap.0.size=512M,"
              "memmap.1.type=ram,memmap.1.base=1G,memmap.1.size=512M",
              &c, &b);
    assert_piece(l, 0, GiB, 512 * MiB, 0, 0);
    assert_piece(l, 1, 4 * GiB, 512 * MiB, 512 * MiB, 0);
}

static void test_describe(void)
{
    MemMapConstraints c = constraints(2 * GiB);
    g_autoptr(MemMapLayout) l = bound("memmap.0.type=hole,"
                                      "memmap.0.base=0x60000000,"
                                      "memmap.0.size=512M", &c, &numa2);
    g_autofree char *d = memmap_layout_describe(l);

    g_assert_cmpstr(d, ==, "ram 0x40000000-0x5fffffff (offset 0x0, node 0), "
                    "hole 0x60000000-0x7fffffff, "
                    "ram 0x80000000-0x9fffffff (offset 0x20000000, node 0), "
                    "ram 0xa0000000-0xdfffffff (offset 0x40000000, node 1)");
}

static void test_top_of_address_space(void)
{
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = NULL;

    c.phys_bits = 64;
    l = layout("memmap.0.type=hole,memmap.0.base=0xffffffffffff0000,"
               "memmap.0.size=64K", &c);
    g_assert_cmphex(l->last, ==, UINT64_MAX);
}

/*
 * A fixed region that ends in the last aligned block below 2^64 keeps
 * the whole block free (found by memmap-fuzz): no piece may start at an
 * unaligned address above it.
 */
static void test_fixed_region_near_top(void)
{
    static const MemMapFixedRegion top[] = {
        { "top", { .lob = 0xffffffffffff0000, .upb = 0xffffffffffffcfff } },
    };
    MemMapConstraints c = constraints(76 * KiB);
    g_autoptr(MemMapLayout) l = NULL;
    Error *err = NULL;

    c.phys_bits = 0;
    c.default_base = 0xfffffffffffe0000;
    c.fixed = top;
    c.nb_fixed = ARRAY_SIZE(top);
    l = memmap_layout_new(NULL, &c, &err);
    /*
     * 64 KiB fit below the region; the other 12 KiB would have gone to
     * 0xffffffffffffd000, not a multiple of 64 KiB, and go nowhere.
     */
    g_assert_null(l);
    g_assert_nonnull(strstr(error_get_pretty(err), "does not fit"));
    error_free(err);
}

static void test_ram_ranges_merged(void)
{
    MemMapConstraints c = constraints(2 * GiB);
    g_autoptr(MemMapLayout) l = bound("", &c, &numa2);
    GList *ranges;

    g_assert_cmpuint(l->ram->len, ==, 2);
    ranges = memmap_layout_ram_ranges(l);
    g_assert_cmpuint(g_list_length(ranges), ==, 1);
    g_assert_cmphex(range_lob(ranges->data), ==, GiB);
    g_assert_cmphex(range_upb(ranges->data), ==, 3 * GiB - 1);
    g_list_free_full(ranges, g_free);
}

typedef struct BadCase {
    const char *map;
    const char *msg;
} BadCase;

static void test_refused(void)
{
    static const BadCase cases[] = {
        { "memmap.0.type=device,memmap.0.base=2G,memmap.0.size=1G",
          "memmap.0 (type=device, base=0x80000000, size=0x40000000): an "
          "entry is of type ram or hole; the machine places its device "
          "regions itself" },
        { "memmap.0.type=hole,memmap.0.base=2G,memmap.0.size=0",
          "memmap.0 (type=hole, base=0x80000000, size=0x0): size must not "
          "be zero" },
        { "memmap.0.type=hole,memmap.0.base=0xffffffffffff0000,"
          "memmap.0.size=128K",
          "memmap.0 (type=hole, base=0xffffffffffff0000, size=0x20000): "
          "the range extends past the end of the 64-bit address space" },
        { "memmap.0.type=hole,memmap.0.base=0x50001000,memmap.0.size=64K",
          "memmap.0 (type=hole, base=0x50001000, size=0x10000): base and "
          "size must be multiples of 64 KiB (0x10000)" },
        { "memmap.0.type=hole,memmap.0.base=0x50000000,memmap.0.size=4K",
          "must be multiples of 64 KiB" },
        { "memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=1G,"
          "memmap.1.type=ram,memmap.1.base=0x7fff0000,memmap.1.size=64K",
          "memmap.0 (type=ram, base=0x40000000, size=0x40000000) overlaps "
          "memmap.1 (type=ram, base=0x7fff0000, size=0x10000); entries "
          "must not overlap" },
        { "memmap.0.type=hole,memmap.0.base=2G,memmap.0.size=1G,"
          "memmap.1.type=hole,memmap.1.base=0x90000000,memmap.1.size=1M",
          "memmap.0 (type=hole, base=0x80000000, size=0x40000000) overlaps "
          "memmap.1" },
        { "memmap.0.type=ram,memmap.0.base=0x3f000000,memmap.0.size=1G",
          "memmap.0 (type=ram, base=0x3f000000, size=0x40000000): guest RAM "
          "must start at or above the machine's RAM base 0x40000000" },
        { "memmap.0.type=ram,memmap.0.base=0x9000000,memmap.0.size=64K,"
          "memmap.1.type=ram,memmap.1.base=1G,memmap.1.size=0x3fff0000",
          "memmap.0 (type=ram, base=0x9000000, size=0x10000): guest RAM "
          "must start at or above the machine's RAM base 0x40000000" },
        { "memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=512M",
          "memmap ram entries add up to 512 MiB (0x20000000), but the "
          "machine has 1 GiB (0x40000000) of RAM (-m); they must be equal" },
        { "memmap.0.type=ram,memmap.0.base=0xffe0000000,memmap.0.size=1G",
          "memmap.0 (type=ram, base=0xffe0000000, size=0x40000000): the range "
          "ends at 0x1001fffffff, beyond the 40-bit guest physical address "
          "space" },
        { "memmap.0.type=ram,memmap.0.base=0x10000000000,memmap.0.size=1G",
          "beyond the 40-bit guest physical address space (last address "
          "0xffffffffff)" },
        { "memmap.0.type=hole,memmap.0.base=0x40000000,"
          "memmap.0.size=0xffc0000000",
          "memmap: 1 GiB of RAM placed upward from 0x40000000 around the "
          "holes does not fit in the 40-bit guest physical address space" },
        { "memmap.0.type=hole,memmap.0.base=0x1000000,memmap.0.size=1M,"
          "memmap.0.node=0",
          "memmap.0 (type=hole, base=0x1000000, size=0x100000, node=0): node "
          "applies to ram entries only" },
    };
    MemMapConstraints c = constraints(GiB);

    for (int i = 0; i < ARRAY_SIZE(cases); i++) {
        refused(cases[i].map, &c, cases[i].msg);
    }
}

static void test_refused_too_many(void)
{
    MemMapConstraints c = constraints(GiB);
    g_autoptr(GString) map = g_string_new("");

    for (int i = 0; i <= MEMMAP_MAX_ENTRIES; i++) {
        g_string_append_printf(map, "%smemmap.%d.type=hole,memmap.%d.base=0x%"
                               PRIx64 ",memmap.%d.size=64K", i ? "," : "",
                               i, i, (uint64_t)(2 * GiB + i * 128 * KiB), i);
    }
    refused(map->str, &c, "memmap has more than 32 entries, the most a "
            "machine supports");
}

static void test_refused_backend_page_size(void)
{
    static const MemMapBinding huge = { .page_size = 2 * MiB };
    static const MemMapFixedRegion odd[] = {
        { "gpio", { .lob = 0x50010000, .upb = 0x50010fff } },
    };
    MemMapConstraints c = constraints(GiB);
    g_autoptr(MemMapLayout) l = NULL;

    refused_bind("memmap.0.type=hole,memmap.0.base=0x50010000,"
                 "memmap.0.size=2M", &c, &huge, "memmap.0 (type=hole, "
                 "base=0x50010000, size=0x200000): base and size must be "
                 "multiples of 2 MiB (0x200000), the page size of the guest "
                 "RAM's memory backend");
    /* aligned entries, but RAM flows around a region at 64 KiB */
    c.fixed = odd;
    c.nb_fixed = ARRAY_SIZE(odd);
    refused_bind("memmap.0.type=hole,memmap.0.base=0x80000000,"
                 "memmap.0.size=2M", &c, &huge, "memmap: the RAM piece "
                 "0x40000000-0x5000ffff (offset 0x0 in guest RAM) is "
                 "not aligned to 2 MiB, the page size of the guest RAM's "
                 "memory backend");
    /* the same map binds to small pages */
    c.fixed = fixed;
    c.nb_fixed = ARRAY_SIZE(fixed);
    l = bound("memmap.0.type=hole,memmap.0.base=0x50200000,"
              "memmap.0.size=2M", &c, &huge);
    g_assert_cmpuint(l->ram->len, ==, 2);
}

/* A fixed region above the RAM base: ram entries stay out of it */
static void test_refused_fixed_region(void)
{
    static const MemMapFixedRegion high[] = {
        { "gpio", { .lob = 0x50010000, .upb = 0x50010fff } },
    };
    MemMapConstraints c = constraints(GiB);

    c.fixed = high;
    c.nb_fixed = ARRAY_SIZE(high);
    refused("memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=1G", &c,
            "memmap.0 (type=ram, base=0x40000000, size=0x40000000): guest "
            "RAM overlaps the machine's gpio region at "
            "0x50010000-0x50010fff");
}

static void test_refused_boot_piece(void)
{
    MemMapConstraints c = constraints(GiB);

    c.min_boot_size = 64 * MiB;
    refused("memmap.0.type=hole,memmap.0.base=0x40100000,memmap.0.size=1G",
            &c, "memmap: the lowest RAM piece, 0x40000000-0x400fffff, is "
            "1 MiB; it must be at least 64 MiB to hold the kernel, initrd "
            "and device tree");
}

static void test_refused_numa(void)
{
    static const MemMapBinding none = { 0 };
    MemMapConstraints c = constraints(2 * GiB);

    refused_bind("memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=2G",
                 &c, &numa2, "memmap.0 (type=ram, base=0x40000000, "
                 "size=0x80000000): 2 NUMA nodes are configured, so every "
                 "ram entry needs a node");
    refused_bind("memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=2G,"
                 "memmap.0.node=2", &c, &numa2, "NUMA node 2 does not exist; "
                 "nodes are 0 to 1");
    refused_bind("memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=1536M,"
                 "memmap.0.node=0,"
                 "memmap.1.type=ram,memmap.1.base=4G,memmap.1.size=512M,"
                 "memmap.1.node=1", &c, &numa2, "memmap ram entries of NUMA "
                 "node 0 add up to 0x60000000, but the node has 0x40000000 of "
                 "RAM (-numa node); they must be equal");
    refused_bind("memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=2G,"
                 "memmap.0.node=0", &c, &none, "memmap.0 (type=ram, "
                 "base=0x40000000, size=0x80000000, node=0): node is given, "
                 "but no NUMA nodes are configured (-numa node)");
}

static void test_parse_errors(void)
{
    MemMapRangeList *entries;
    Error *err = NULL;

    g_assert_false(memmap_parse_keyval("memmap.0.type=rom", &entries, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(memmap_parse_keyval("ram=1G", &entries, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "has keys other than"));
    error_free(err);
    g_assert_true(memmap_parse_keyval("", &entries, &error_abort));
    g_assert_null(entries);
}

/* virt's device memory area, as memmap-plan takes it too */
static void test_device_memory_area(void)
{
    uint64_t base, size;

    /* RAM at 1 GiB of 4 GiB: the area right after it */
    g_assert_true(memmap_device_memory_area(5 * GiB, 4 * GiB, 8 * GiB, 2,
                                            &base, &size));
    g_assert_cmphex(base, ==, 5 * GiB);
    g_assert_cmphex(size, ==, 6 * GiB);
    /* RAM ending off a GiB boundary: the next one */
    g_assert_true(memmap_device_memory_area(5 * GiB + 1, 4 * GiB, 4 * GiB,
                                            1, &base, &size));
    g_assert_cmphex(base, ==, 6 * GiB);
    g_assert_cmphex(size, ==, GiB);
    /* no maxmem, no slots: no area */
    g_assert_true(memmap_device_memory_area(5 * GiB, 4 * GiB, 4 * GiB, 0,
                                            &base, &size));
    g_assert_cmphex(size, ==, 0);
    /* up to the GiB below the last one of 2^64, and beyond */
    g_assert_true(memmap_device_memory_area(-2 * GiB, GiB, 2 * GiB, 0,
                                            &base, &size));
    g_assert_cmphex(base + size - 1, ==, UINT64_MAX - GiB);
    g_assert_false(memmap_device_memory_area(-2 * GiB, GiB, 4 * GiB, 0,
                                             &base, &size));
    g_assert_false(memmap_device_memory_area(-GiB + 1, GiB, GiB, 1,
                                             &base, &size));
    g_assert_false(memmap_device_memory_area(GiB, GiB, GiB,
                                             UINT64_MAX / GiB + 1,
                                             &base, &size));
    g_assert_false(memmap_device_memory_area(GiB, GiB, UINT64_MAX,
                                             UINT64_MAX / GiB, &base,
                                             &size));
}

/*
 * -m perf (make bench): what the VFIO check costs a device with @n usable
 * IOVA ranges and the largest map, MEMMAP_MAX_ENTRIES holes in RAM: the
 * range list built as the kernel reports it, in address order, with
 * range_list_insert_tail() as VFIO does now and with range_list_insert()
 * as the base QEMU does; then range_list_covers() checking the RAM pieces
 * (every piece fits, and RAM is above nearly all of the ranges: the
 * check walks the whole usable list).  Prints the
 * best of 20 runs of each (3 of the quadratic one), in microseconds.
 */
#define PERF_RAM_BASE (16 * TiB)
#define PERF_HOLE(i) (PERF_RAM_BASE + 64 * MiB + (uint64_t)(i) * 128 * MiB)

/*
 * The @i-th unusable 64 KiB window between @n usable ranges: one at the
 * end of each GiB from 8 GiB, below RAM, then the map's holes: the check
 * walks past all of the first ones before it reaches RAM
 */
static uint64_t perf_window(int n, int i)
{
    int below = n - 1 - MEMMAP_MAX_ENTRIES;

    return i < below ? (8 + (uint64_t)i) * GiB - 64 * KiB :
                       PERF_HOLE(i - below);
}

typedef struct PerfCheck {
    int n;
    bool upstream;
    GList *usable;
    GList *ram;
} PerfCheck;

static double perf_best_us(void (*fn)(PerfCheck *), PerfCheck *p, int runs)
{
    double best = G_MAXDOUBLE;

    for (int i = 0; i < runs; i++) {
        g_test_timer_start();
        fn(p);
        best = MIN(best, g_test_timer_elapsed() * 1e6);
    }
    return best;
}

/* @n usable ranges, each up to a window of perf_window() */
static void perf_list(PerfCheck *p)
{
    GList *last = NULL;

    g_list_free_full(g_steal_pointer(&p->usable), g_free);
    for (int i = 0; i < p->n; i++) {
        Range *r = g_new(Range, 1);

        range_set_bounds(r, i ? perf_window(p->n, i - 1) + 64 * KiB : 0,
                         i < p->n - 1 ? perf_window(p->n, i) - 1 :
                                        UINT64_MAX);
        if (p->upstream) {
            p->usable = range_list_insert(p->usable, r);
        } else {
            p->usable = range_list_insert_tail(p->usable, &last, r);
        }
    }
}

/* 100 checks, for the timer's resolution */
static void perf_inside(PerfCheck *p)
{
    Range bad, window;

    for (int i = 0; i < 100; i++) {
        g_assert_true(range_list_covers(p->usable, p->ram, &bad, &window));
    }
}

static void test_perf_vfio_check(void)
{
    g_autoptr(MemMapRangeList) entries = NULL;
    g_autoptr(MemMapLayout) layout = NULL;
    g_autoptr(GString) str = g_string_new("");
    MemMapConstraints c = {
        .ram_size = 4 * GiB, .default_base = PERF_RAM_BASE,
        .align = 64 * KiB,
    };
    GList *ram;

    /* the largest map: its holes 64 KiB each, 128 MiB apart */
    for (int i = 0; i < MEMMAP_MAX_ENTRIES; i++) {
        g_string_append_printf(str, "%smemmap.%d.type=hole,memmap.%d.base=%"
                               PRIu64 ",memmap.%d.size=64K", i ? "," : "",
                               i, i, PERF_HOLE(i), i);
    }
    entries = parse(str->str);
    layout = memmap_layout_new(entries, &c, &error_abort);
    ram = memmap_layout_ram_ranges(layout);
    g_assert_cmpuint(g_list_length(ram), ==, MEMMAP_MAX_ENTRIES + 1);
    for (int n = 1024; n <= 16384; n *= 2) {
        PerfCheck ours = { .n = n, .ram = ram };
        PerfCheck upstream = { .n = n, .upstream = true };
        double list = perf_best_us(perf_list, &ours, 20);
        double check = perf_best_us(perf_inside, &ours, 20) / 100;

        g_test_message("perf: %d ranges: check %.3f us, list %.1f us, "
                       "range_list_insert list %.1f us", n, check, list,
                       perf_best_us(perf_list, &upstream, 3));
        g_list_free_full(ours.usable, g_free);
        g_list_free_full(upstream.usable, g_free);
    }
    g_list_free_full(ram, g_free);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/memmap/default", test_default);
    g_test_add_func("/memmap/holes-only", test_holes_only);
    g_test_add_func("/memmap/holes-out-of-order", test_holes_out_of_order);
    g_test_add_func("/memmap/hole-at-base", test_hole_at_base);
    g_test_add_func("/memmap/hole-above-ram", test_hole_above_ram);
    g_test_add_func("/memmap/msi-window-crossing-4g",
                    test_msi_window_crossing_4g);
    g_test_add_func("/memmap/flow-skips-fixed-regions",
                    test_flow_skips_fixed_regions);
    g_test_add_func("/memmap/explicit", test_explicit);
    g_test_add_func("/memmap/numa-flow", test_numa_flow);
    g_test_add_func("/memmap/numa-flow-empty-node", test_numa_flow_empty_node);
    g_test_add_func("/memmap/numa-explicit", test_numa_explicit);
    g_test_add_func("/memmap/numa-one-node", test_numa_one_node);
    g_test_add_func("/memmap/describe", test_describe);
    g_test_add_func("/memmap/top-of-address-space", test_top_of_address_space);
    g_test_add_func("/memmap/ram-ranges-merged", test_ram_ranges_merged);
    g_test_add_func("/memmap/fixed-region-near-top",
                    test_fixed_region_near_top);
    g_test_add_func("/memmap/refused", test_refused);
    g_test_add_func("/memmap/refused/too-many", test_refused_too_many);
    g_test_add_func("/memmap/refused/backend-page-size",
                    test_refused_backend_page_size);
    g_test_add_func("/memmap/refused/fixed-region",
                    test_refused_fixed_region);
    g_test_add_func("/memmap/refused/boot-piece", test_refused_boot_piece);
    g_test_add_func("/memmap/refused/numa", test_refused_numa);
    g_test_add_func("/memmap/parse-errors", test_parse_errors);
    g_test_add_func("/memmap/device-memory-area", test_device_memory_area);
    if (g_test_perf()) {
        g_test_add_func("/memmap/perf/vfio-check", test_perf_vfio_check);
    }

    return g_test_run();
}
