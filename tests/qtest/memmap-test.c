/*
 * QTest of the arm virt machine's memmap property: the effective map
 * as seen through query-memmap, info mtree and the device tree, and bad
 * maps refused at start-up.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include <libfdt.h>
#include "libqtest.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-memmap.h"
#include "qapi/qobject-input-visitor.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

/* One expected RAM piece: base, size and NUMA node (-1: none) */
typedef struct Piece {
    uint64_t base;
    uint64_t size;
    int node;
} Piece;

static MemMapRegionList *query_memmap(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-memmap' }");
    MemMapRegionList *list = NULL;
    Visitor *v;

    g_assert(qdict_haskey(resp, "return"));
    v = qobject_input_visitor_new(qdict_get(resp, "return"));
    visit_type_MemMapRegionList(v, NULL, &list, &error_abort);
    visit_free(v);
    qobject_unref(resp);
    return list;
}

/*
 * query-memmap lists exactly @ram as its RAM regions, in address order,
 * and nothing overlaps RAM (a hole may overlap a device region)
 */
static void check_query(QTestState *qts, const Piece *ram, int n)
{
    g_autoptr(MemMapRegionList) list = query_memmap(qts);
    uint64_t end = 0, ram_end = 0;
    int i = 0;

    for (MemMapRegionList *it = list; it; it = it->next) {
        MemMapRegion *r = it->value;

        if (r->type != MEM_MAP_TYPE_RAM) {
            g_assert_cmphex(r->base, >=, ram_end);
            end = MAX(end, r->base + r->size);
            continue;
        }
        g_assert_cmphex(r->base, >=, end);
        end = ram_end = r->base + r->size;
        g_assert_cmpint(i, <, n);
        g_assert_cmphex(r->base, ==, ram[i].base);
        g_assert_cmphex(r->size, ==, ram[i].size);
        g_assert_cmpint(r->has_node, ==, ram[i].node >= 0);
        if (r->has_node) {
            g_assert_cmpint(r->node, ==, ram[i].node);
        }
        i++;
    }
    g_assert_cmpint(i, ==, n);
}

/* The flat view of system memory maps the RAM pieces, no other RAM */
static void check_mtree(QTestState *qts, const Piece *ram, int n)
{
    g_autofree char *mtree = qtest_hmp(qts, "info mtree -f");
    g_auto(GStrv) views = g_strsplit(mtree, "FlatView #", -1);
    const char *sysmem = NULL;
    int found = 0;

    /* the order of the views changes between runs: find system memory */
    for (int v = 0; views[v]; v++) {
        if (strstr(views[v], " AS \"memory\"")) {
            sysmem = views[v];
            break;
        }
    }
    g_assert_nonnull(sysmem);
    for (int i = 0; i < n; i++) {
        g_autofree char *line = g_strdup_printf(
            "%016" PRIx64 "-%016" PRIx64 " (prio 0, ram): ",
            ram[i].base, ram[i].base + ram[i].size - 1);

        if (!strstr(sysmem, line)) {
            g_printerr("no '%s' in:\n%s\n", line, sysmem);
            g_assert_not_reached();
        }
    }
    for (const char *p = sysmem; (p = strstr(p, " (prio 0, ram): ")); p++) {
        found++;
    }
    g_assert_cmpint(found, ==, n);
}

static int piece_compare(const void *a, const void *b)
{
    const Piece *pa = a, *pb = b;

    return pa->base < pb->base ? -1 : pa->base > pb->base;
}

/* The device tree has one /memory node per RAM piece, in any order */
static void check_dtb(QTestState *qts, const Piece *ram, int n)
{
    g_autofree char *path = NULL;
    g_autofree char *blob = NULL;
    int fd = g_file_open_tmp("memmap-test-XXXXXX.dtb", &path, NULL);
    Piece found[8];
    QDict *resp;
    int off, i = 0;

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    resp = qtest_qmp(qts, "{ 'execute': 'dumpdtb',"
                     " 'arguments': { 'filename': %s } }", path);
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    g_assert_true(g_file_get_contents(path, &blob, NULL, NULL));
    unlink(path);
    g_assert_cmpint(fdt_check_header(blob), ==, 0);

    fdt_for_each_subnode(off, blob, 0) {
        const char *name = fdt_get_name(blob, off, NULL);
        g_autofree char *want = NULL;
        const uint8_t *reg;
        const uint8_t *node;
        int len;

        if (!g_str_has_prefix(name, "memory")) {
            continue;
        }
        g_assert_cmpint(i, <, ARRAY_SIZE(found));
        g_assert_cmpstr(fdt_getprop(blob, off, "device_type", NULL), ==,
                        "memory");
        reg = fdt_getprop(blob, off, "reg", &len);
        g_assert_cmpint(len, ==, 16);
        /* properties are 4-byte aligned only */
        found[i].base = fdt64_ld((const fdt64_t *)reg);
        found[i].size = fdt64_ld((const fdt64_t *)(reg + 8));
        want = g_strdup_printf("memory@%" PRIx64, found[i].base);
        g_assert_cmpstr(name, ==, want);
        node = fdt_getprop(blob, off, "numa-node-id", &len);
        found[i].node = node ? fdt32_ld((const fdt32_t *)node) : -1;
        i++;
    }
    g_assert_cmpint(i, ==, n);
    qsort(found, n, sizeof(found[0]), piece_compare);
    for (i = 0; i < n; i++) {
        g_assert_cmphex(found[i].base, ==, ram[i].base);
        g_assert_cmphex(found[i].size, ==, ram[i].size);
        g_assert_cmpint(found[i].node, ==, ram[i].node);
    }
}

#define NUMA_1G_1G "-object memory-backend-ram,id=m0,size=1G " \
    "-object memory-backend-ram,id=m1,size=1G " \
    "-numa node,nodeid=0,cpus=0,memdev=m0 " \
    "-numa node,nodeid=1,cpus=1,memdev=m1"

typedef struct GoodCase {
    const char *name;
    const char *args;
    Piece ram[4];
    int n;
} GoodCase;

static const GoodCase good[] = {
    { "default", "-M virt -m 512M",
      { { 0x40000000, 512 * MiB, -1 } }, 1 },
    { "default-numa",
      "-M virt -m 2G -smp 2 " NUMA_1G_1G,
      { { 0x40000000, GiB, 0 }, { 0x80000000, GiB, 1 } }, 2 },
    { "holes-only",
      "-m 1G -M virt,memmap.0.type=hole,memmap.0.base=0x50000000,"
      "memmap.0.size=256M",
      { { 0x40000000, 256 * MiB, -1 }, { 0x60000000, 768 * MiB, -1 } }, 2 },
    /* holes may go anywhere, also below the RAM base and over devices */
    { "holes-below-base",
      "-m 512M -M virt,memmap.0.type=hole,memmap.0.base=0x20000000,"
      "memmap.0.size=1M,memmap.1.type=hole,memmap.1.base=0x09000000,"
      "memmap.1.size=64K",
      { { 0x40000000, 512 * MiB, -1 } }, 1 },
    { "msi-window",
      "-m 4G -M virt,memmap.0.type=hole,memmap.0.base=0xfee00000,"
      "memmap.0.size=1M",
      { { 0x40000000, 0xbee00000, -1 },
        { 0xfef00000, 4 * GiB - 0xbee00000, -1 } }, 2 },
    { "explicit",
      "-m 2G -M virt,memmap.0.type=ram,memmap.0.base=0x180000000,"
      "memmap.0.size=512M,memmap.1.type=ram,memmap.1.base=1G,"
      "memmap.1.size=512M,memmap.2.type=ram,memmap.2.base=4G,"
      "memmap.2.size=1G",
      { { 0x40000000, 512 * MiB, -1 }, { 0x100000000, GiB, -1 },
        { 0x180000000, 512 * MiB, -1 } }, 3 },
    { "numa-hole",
      "-m 2G -smp 2 " NUMA_1G_1G " -M virt,memmap.0.type=hole,"
      "memmap.0.base=0x60000000,memmap.0.size=512M",
      { { 0x40000000, 512 * MiB, 0 }, { 0x80000000, 512 * MiB, 0 },
        { 0xa0000000, GiB, 1 } }, 3 },
    { "numa-explicit",
      "-m 2G -smp 2 " NUMA_1G_1G " -M virt,memmap.0.type=ram,"
      "memmap.0.base=4G,memmap.0.size=1G,memmap.0.node=0,"
      "memmap.1.type=ram,memmap.1.base=1G,memmap.1.size=1G,"
      "memmap.1.node=1",
      { { 0x40000000, GiB, 1 }, { 0x100000000, GiB, 0 } }, 2 },
};

static void test_good(const void *opaque)
{
    const GoodCase *c = opaque;
    QTestState *qts = qtest_init(c->args);

    check_query(qts, c->ram, c->n);
    check_mtree(qts, c->ram, c->n);
    check_dtb(qts, c->ram, c->n);
    qtest_quit(qts);
}

/* Floating regions and device memory sit above the highest hole */
static void test_floating_above_holes(void)
{
    QTestState *qts = qtest_init(
        "-m 1G,slots=2,maxmem=3G -M virt,memmap.0.type=hole,"
        "memmap.0.base=0x4000000000,memmap.0.size=1G");
    g_autoptr(MemMapRegionList) list = query_memmap(qts);
    bool seen_dev_mem = false;
    int high = 0;

    for (MemMapRegionList *it = list; it; it = it->next) {
        MemMapRegion *r = it->value;

        /* every region of the board's table has a name */
        g_assert_false(g_str_has_prefix(r->name, "region-"));
        if (!strcmp(r->name, "device-memory")) {
            g_assert_cmphex(r->base, ==, 0x4040000000);
            seen_dev_mem = true;
        }
        if (g_str_has_prefix(r->name, "high-")) {
            g_assert_cmphex(r->base, >=, 0x4140000000);
            high++;
        }
    }
    g_assert_true(seen_dev_mem);
    /* high GIC redistributors, high ECAM, high PCIe MMIO (no CXL here) */
    g_assert_cmpint(high, ==, 3);
    qtest_quit(qts);
}

/* The same map from a -readconfig [machine] section */
static void test_readconfig(void)
{
    static const char cfg[] =
        "[machine]\n"
        "  type = \"virt\"\n"
        "  memmap.0.type = \"hole\"\n"
        "  memmap.0.base = \"0x50000000\"\n"
        "  memmap.0.size = \"256M\"\n";
    static const Piece ram[] = {
        { 0x40000000, 256 * MiB, -1 }, { 0x60000000, 768 * MiB, -1 },
    };
    g_autofree char *path = NULL;
    g_autofree char *args = NULL;
    int fd = g_file_open_tmp("memmap-test-XXXXXX.cfg", &path, NULL);
    QTestState *qts;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, cfg, sizeof(cfg) - 1), ==, sizeof(cfg) - 1);
    close(fd);
    args = g_strdup_printf("-readconfig %s -m 1G", path);
    qts = qtest_init(args);
    check_query(qts, ram, ARRAY_SIZE(ram));
    qtest_quit(qts);
    unlink(path);
}

static void test_property(void)
{
    QTestState *qts = qtest_init(
        "-m 1G -M virt,memmap.0.type=hole,memmap.0.base=0x50000000,"
        "memmap.0.size=256M");
    QDict *resp;
    QList *list;
    QDict *e;
    g_autofree char *hmp = NULL;

    resp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments':"
                     " { 'path': '/machine', 'property': 'memmap' } }");
    list = qdict_get_qlist(resp, "return");
    g_assert_cmpint(qlist_size(list), ==, 1);
    e = qobject_to(QDict, qlist_peek(list));
    g_assert_cmpstr(qdict_get_str(e, "type"), ==, "hole");
    g_assert_cmpint(qdict_get_int(e, "base"), ==, 0x50000000);
    g_assert_cmpint(qdict_get_int(e, "size"), ==, 256 * MiB);
    qobject_unref(resp);

    resp = qtest_qmp(qts, "{ 'execute': 'qom-set', 'arguments':"
                     " { 'path': '/machine', 'property': 'memmap',"
                     "   'value': [] } }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "memmap can only be set on the command line, "
                    "before the machine is created");
    qobject_unref(resp);

    hmp = qtest_hmp(qts, "info memmap");
    g_assert_nonnull(strstr(hmp, "0x0000000040000000 0x000000004fffffff "
                            "256 MiB    ram    -    ram"));
    g_assert_nonnull(strstr(hmp, "0x0000000050000000 0x000000005fffffff "
                            "256 MiB    hole   -    hole"));
    g_assert_nonnull(strstr(hmp, "0x0000000009000000 0x0000000009000fff "
                            "4 KiB      device -    uart0"));
    qtest_quit(qts);
}

typedef struct BadCase {
    const char *args;
    const char *msg;
} BadCase;

#define M "-m 1G -M virt,"
#define HOLE(i, b, s) "memmap." #i ".type=hole,memmap." #i ".base=" b \
    ",memmap." #i ".size=" s
#define RAM(i, b, s) "memmap." #i ".type=ram,memmap." #i ".base=" b \
    ",memmap." #i ".size=" s
#define NUMA2 " -smp 2 -object memory-backend-ram,id=m0,size=512M " \
    "-object memory-backend-ram,id=m1,size=512M " \
    "-numa node,nodeid=0,cpus=0,memdev=m0 " \
    "-numa node,nodeid=1,cpus=1,memdev=m1"

static const BadCase bad[] = {
    { M HOLE(0, "2G", "0"),
      "memmap.0 (type=hole, base=0x80000000, size=0x0): size must not be "
      "zero" },
    { M RAM(0, "1G", "0"),
      "memmap.0 (type=ram, base=0x40000000, size=0x0): size must not be "
      "zero" },
    { M HOLE(0, "0xffffffffffff0000", "1M"),
      "memmap.0 (type=hole, base=0xffffffffffff0000, size=0x100000): the "
      "range extends past the end of the 64-bit address space" },
    { M HOLE(0, "0x50001000", "64K"),
      "memmap.0 (type=hole, base=0x50001000, size=0x10000): base and size "
      "must be multiples of 64 KiB (0x10000)" },
    { M HOLE(0, "0x50000000", "4K"),
      "memmap.0 (type=hole, base=0x50000000, size=0x1000): base and size "
      "must be multiples of 64 KiB" },
    { M HOLE(0, "2G", "1G") "," HOLE(1, "0x90000000", "1M"),
      "memmap.0 (type=hole, base=0x80000000, size=0x40000000) overlaps "
      "memmap.1 (type=hole, base=0x90000000, size=0x100000); entries must "
      "not overlap" },
    { M RAM(0, "1G", "512M") "," RAM(1, "0x50000000", "512M"),
      "memmap.0 (type=ram, base=0x40000000, size=0x20000000) overlaps "
      "memmap.1 (type=ram, base=0x50000000, size=0x20000000)" },
    { M RAM(0, "1G", "1G") "," HOLE(1, "0x7ff00000", "1M"),
      "memmap.0 (type=ram, base=0x40000000, size=0x40000000) overlaps "
      "memmap.1 (type=hole, base=0x7ff00000, size=0x100000)" },
    /* virt's map below its RAM base is not a stable interface */
    { M RAM(0, "0", "1G"),
      "memmap.0 (type=ram, base=0x0, size=0x40000000): guest RAM must "
      "start at or above the machine's RAM base 0x40000000" },
    { M RAM(0, "0x8050000", "0x30000") "," RAM(1, "1G", "0x3ffd0000"),
      "memmap.0 (type=ram, base=0x8050000, size=0x30000): guest RAM must "
      "start at or above the machine's RAM base 0x40000000" },
    { M RAM(0, "0x3f000000", "1G"),
      "memmap.0 (type=ram, base=0x3f000000, size=0x40000000): guest RAM "
      "must start at or above the machine's RAM base 0x40000000" },
    { M RAM(0, "1G", "512M"),
      "memmap ram entries add up to 512 MiB (0x20000000), but the machine "
      "has 1 GiB (0x40000000) of RAM (-m); they must be equal" },
    { M RAM(0, "1G", "512M") "," RAM(1, "4G", "1G"),
      "memmap ram entries add up to 1.5 GiB (0x60000000), but the machine "
      "has 1 GiB (0x40000000) of RAM (-m)" },
    { M HOLE(0, "2G", "1G") "," RAM(1, "1G", "1G") " -cpu cortex-a53 "
      "-M virt," RAM(2, "0x10000000000", "0"),
      "Parameters 'memmap.*' used inconsistently" },
    { M RAM(0, "0xffe0000000", "1G") " -cpu cortex-a53",
      "memmap.0 (type=ram, base=0xffe0000000, size=0x40000000): the range "
      "ends at 0x1001fffffff, beyond the 40-bit guest physical address "
      "space" },
    { M HOLE(0, "0x10000000000", "1G") " -cpu cortex-a53",
      "memmap.0 (type=hole, base=0x10000000000, size=0x40000000): the range "
      "ends at 0x1003fffffff, beyond the 40-bit guest physical address "
      "space (last address 0xffffffffff)" },
    { "-m 3G -M virt,highmem=off," HOLE(0, "2G", "1G"),
      "memmap: 3 GiB of RAM placed upward from 0x40000000 around the holes "
      "does not fit in the 32-bit guest physical address space" },
    { M HOLE(0, "0x40100000", "1G") " -kernel /dev/null",
      "memmap: the lowest RAM piece, 0x40000000-0x400fffff, is 1 MiB; it "
      "must be at least 64 MiB to hold the kernel, initrd and device tree" },
    { M HOLE(0, "2G", "1M") ",memmap.0.node=0",
      "memmap.0 (type=hole, base=0x80000000, size=0x100000, node=0): node "
      "applies to ram entries only" },
    { M RAM(0, "1G", "1G") ",memmap.0.node=0",
      "memmap.0 (type=ram, base=0x40000000, size=0x40000000, node=0): node "
      "is given, but no NUMA nodes are configured (-numa node)" },
    { M RAM(0, "1G", "512M") ",memmap.0.node=0," RAM(1, "4G", "512M")
      ",memmap.1.node=2" NUMA2,
      "memmap.1 (type=ram, base=0x100000000, size=0x20000000, node=2): "
      "NUMA node 2 does not exist; nodes are 0 to 1" },
    { M RAM(0, "1G", "1G") NUMA2,
      "memmap.0 (type=ram, base=0x40000000, size=0x40000000): 2 NUMA nodes "
      "are configured, so every ram entry needs a node" },
    { M RAM(0, "1G", "768M") ",memmap.0.node=0," RAM(1, "4G", "256M")
      ",memmap.1.node=1" NUMA2,
      "memmap ram entries of NUMA node 0 add up to 0x30000000, but the "
      "node has 0x20000000 of RAM (-numa node); they must be equal" },
    { M "mte=on," HOLE(0, "2G", "1M"),
      "memmap cannot be combined with mte=on" },
    { M "memmap.0.type=rom,memmap.0.base=2G,memmap.0.size=1M",
      "memmap.0: Parameter 'type' does not accept value 'rom'" },
    { M "memmap.0.type=hole,memmap.0.base=2G",
      "Parameter 'memmap.0.size' is missing" },
    { M HOLE(0, "2G", "1M") ",memmap.0.start=2G",
      "Parameter 'memmap.0.start' is unexpected" },
    { M HOLE(1, "2G", "1M"),
      "Parameter 'memmap.0' missing" },
    { M HOLE(0, "2G", "0x1G"),
      "Parameter 'memmap.0.size' expects size" },
    { M HOLE(0, "-1", "1M"),
      "Parameter 'memmap.0.base' expects size" },
    /* only machines that support it have the property */
    { "-m 1G -M none," HOLE(0, "2G", "1M"),
      "Property 'none-machine.memmap' not found" },
};

/*
 * Where -M dumpdtb writes: QEMU replaces the file (write and rename), so
 * it must never be /dev/null.
 */
static char *scratch_dir;

static char *scratch_dtb(void)
{
    char *dir = scratch_dir;

    if (!dir) {
        dir = scratch_dir = g_dir_make_tmp("memmap-test-XXXXXX", NULL);
        g_assert_nonnull(dir);
    }
    return g_build_filename(dir, "dump.dtb", NULL);
}

/*
 * Run QEMU with @args; it must exit 1 printing @msg.  Building the board
 * needs no CPU to run: the qtest accelerator, as every qtest has, rather
 * than TCG, which a build may lack.
 */
static void refused(const char *args, const char *msg)
{
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *dtb = scratch_dtb();
    g_autofree char *cmd = g_strdup_printf(
        "%s -nodefaults -display none -accel qtest %s -M dumpdtb=%s",
        qemu, args, dtb);
    g_autofree char *err = NULL;
    g_auto(GStrv) argv = NULL;
    int status;

    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                               NULL, NULL, NULL, &err, &status, NULL));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 ||
        !strstr(err, msg)) {
        g_printerr("command: %s\nstatus: 0x%x\nstderr: %s\nexpected: %s\n",
                   cmd, status, err, msg);
        g_assert_not_reached();
    }
}

static void test_bad(const void *opaque)
{
    const BadCase *c = opaque;

    refused(c->args, c->msg);
}

/*
 * "-M TYPE,help" lists the memmap property on virt, and not on machines
 * without it
 */
static void test_help(void)
{
    static const struct {
        const char *machine;
        bool listed;
    } cases[] = {
        { "virt", true }, { "none", false }, { "sbsa-ref", false },
    };
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");

    for (int i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *opt = g_strdup_printf("%s,help", cases[i].machine);
        const char *argv[] = { qemu, "-M", opt, NULL };
        g_autofree char *out = NULL;
        int status;

        if (!qtest_has_machine(cases[i].machine)) {
            continue;
        }
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                                   &out, NULL, &status, NULL));
        g_assert_cmpint(status, ==, 0);
        if (!!strstr(out, "memmap=<MemMapRangeWrapper>") != cases[i].listed) {
            g_printerr("-M %s: %s\n", opt, out);
            g_assert_not_reached();
        }
    }
}

/* Machines without memmap answer query-memmap with an empty list */
static void test_query_other_machine(void)
{
    QTestState *qts = qtest_init("-M none");
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-memmap' }");
    QList *list = qdict_get_qlist(resp, "return");

    g_assert_nonnull(list);
    g_assert_true(qlist_empty(list));
    qobject_unref(resp);
    qtest_quit(qts);
}


#define HUGE_RAM(id, size) "-object memory-backend-file,id=" id ",size=" \
    size ",mem-path=%s,share=on,prealloc=off "

/*
 * The alignment rule follows the page size of the backend(s) that guest
 * RAM aliases, known only once backends exist: after KVM has placed the
 * map in kvm_type(), as under TCG.
 */
static void test_backend_page_size(void)
{
    /* a hugetlbfs mount with free 2 MiB pages */
    const char *dir = g_getenv("MEMMAP_HUGETLBFS");
    const char *rule = "base and size must be multiples of 2 MiB "
        "(0x200000), the page size of the guest RAM's memory backend";
    static const Piece good_ram[] = {
        { 0x40000000, 128 * MiB, -1 }, { 0x48200000, 128 * MiB, -1 },
    };
    static const Piece dimm_ram[] = {
        { 0x40000000, 0x8010000, 0 }, { 0x48020000, 0x7ff0000, 0 },
    };
    g_autofree char *one = NULL, *numa = NULL, *good = NULL, *dimm = NULL;
    QTestState *qts;

    if (!dir) {
        g_test_skip("MEMMAP_HUGETLBFS names no hugetlbfs mount");
        return;
    }
    one = g_strdup_printf("-m 256M " HUGE_RAM("r", "256M")
        "-M virt,memory-backend=r," HOLE(0, "0x48010000", "64K"), dir);
    numa = g_strdup_printf("-m 256M -smp 2 "
        "-object memory-backend-ram,id=m0,size=128M " HUGE_RAM("m1", "128M")
        "-numa node,nodeid=0,cpus=0,memdev=m0 "
        "-numa node,nodeid=1,cpus=1,memdev=m1 "
        "-M virt," HOLE(0, "0x48010000", "64K"), dir);
    good = g_strdup_printf("-m 256M " HUGE_RAM("r", "256M")
        "-M virt,memory-backend=r," HOLE(0, "0x48000000", "2M"), dir);
    /* a hugepage backend that is not guest RAM adds no rule */
    dimm = g_strdup_printf("-m 256M,slots=1,maxmem=1G "
        HUGE_RAM("d", "128M") "-M virt," HOLE(0, "0x48010000", "64K"), dir);

    refused(one, rule);
    refused(numa, rule);
    qts = qtest_init(good);
    check_query(qts, good_ram, ARRAY_SIZE(good_ram));
    qtest_quit(qts);
    qts = qtest_init(dimm);
    check_query(qts, dimm_ram, ARRAY_SIZE(dimm_ram));
    qtest_quit(qts);
}

/*
 * Firmware (-bios or pflash) expects its RAM at the default base: a map
 * that moves or shrinks the lowest piece is refused before the guest
 * runs, never left to hang.
 */
static void test_firmware_rule(void)
{
    g_autofree char *bios = NULL;
    g_autofree char *moved = NULL, *small = NULL, *pflash = NULL;
    g_autofree char *good = NULL;
    static const Piece good_ram[] = {
        { 0x40000000, 256 * MiB, -1 }, { 0x60000000, 768 * MiB, -1 },
    };
    const char *rule = "with firmware (-bios or pflash), the lowest RAM "
        "piece must start at 0x40000000 and be at least 128 MiB";
    int fd = g_file_open_tmp("memmap-bios-XXXXXX", &bios, NULL);
    QTestState *qts;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 64 * MiB), ==, 0);
    close(fd);
    moved = g_strdup_printf("-bios %s " M HOLE(0, "1G", "256M"), bios);
    small = g_strdup_printf("-bios %s " M HOLE(0, "0x44000000", "256M"), bios);
    pflash = g_strdup_printf("-blockdev driver=file,filename=%s,node-name=f "
                             M "pflash0=f," HOLE(0, "1G", "256M"), bios);
    good = g_strdup_printf("-bios %s " M HOLE(0, "0x50000000", "256M"), bios);

    refused(moved, rule);
    refused(small, rule);
    refused(pflash, rule);
    qts = qtest_init(good);
    check_query(qts, good_ram, ARRAY_SIZE(good_ram));
    qtest_quit(qts);
    unlink(bios);
}

/*
 * Random maps, mostly bad, from edge values: QEMU must exit 0 or 1 and
 * never die from a signal.
 */
static void test_random(void)
{
    static const char *const types[] = { "ram", "hole" };
    static const char *const values[] = {
        "0", "1", "64K", "0x10000", "0x3f000000", "1G", "0x50000000",
        "2G", "0xfee00000", "1M", "4G", "0xffffffff", "0x10000000000",
        "0xffffffffffff0000", "0xffffffffffffffff", "512M", "768M",
    };
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    GRand *rand = g_rand_new_with_seed(20261125);
    g_autofree char *dtb = scratch_dtb();
    g_autofree char *dump = g_strdup_printf("dumpdtb=%s", dtb);

    for (int run = 0; run < 100; run++) {
        g_autoptr(GString) map = g_string_new("virt");
        g_autofree char *err = NULL;
        int n = g_rand_int_range(rand, 1, 5), status;
        const char *argv[] = {
            qemu, "-nodefaults", "-display", "none", "-accel", "qtest",
            "-m", "1G", "-M", NULL, "-M", dump, NULL,
        };

        for (int i = 0; i < n; i++) {
            g_string_append_printf(map, ",memmap.%d.type=%s,memmap.%d.base=%s,"
                                   "memmap.%d.size=%s", i,
                                   types[g_rand_int_range(rand, 0, 2)], i,
                                   values[g_rand_int_range(rand, 0,
                                          ARRAY_SIZE(values))], i,
                                   values[g_rand_int_range(rand, 0,
                                          ARRAY_SIZE(values))]);
        }
        argv[9] = map->str;
        unlink(dtb);
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                   NULL, &err, &status, NULL));
        if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
            g_printerr("-M %s: status 0x%x: %s\n", map->str, status, err);
            g_assert_not_reached();
        }
    }
    g_rand_free(rand);
}

/*
 * Snapshots carry the map like migration does: loadvm refuses a
 * snapshot taken with a different map, or with a map on one side only.
 */
static void test_snapshot(void)
{
    const char *img_bin = g_getenv("QTEST_QEMU_IMG");
    g_autofree char *img = NULL;
    g_autofree char *drive = NULL;
    g_autofree char *with_a = NULL, *with_b = NULL, *without = NULL;
    const char *refusal = "the guest memory map of the migration source "
        "differs from this QEMU's";
    const char *argv[] = { img_bin, "create", "-q", "-f", "qcow2", NULL, "1M",
                           NULL };
    int fd;
    QTestState *qts;
    char *reply;
    int status;

    if (!img_bin) {
        g_test_skip("QTEST_QEMU_IMG is not set: no qemu-img for the "
                    "snapshot image");
        return;
    }
    fd = g_file_open_tmp("memmap-snap-XXXXXX.qcow2", &img, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    argv[5] = img;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               NULL, &status, NULL));
    g_assert_cmpint(status, ==, 0);
    drive = g_strdup_printf("-drive if=none,id=d0,format=qcow2,file=%s", img);
    with_a = g_strdup_printf("%s " M HOLE(0, "0x50000000", "256M"), drive);
    with_b = g_strdup_printf("%s " M HOLE(0, "0x60000000", "256M"), drive);
    without = g_strdup_printf("%s -m 1G -M virt", drive);

    qts = qtest_init(with_a);
    reply = qtest_hmp(qts, "savevm s1");
    g_assert_cmpstr(reply, ==, "");
    g_free(reply);
    qtest_quit(qts);

    for (int i = 0; i < 2; i++) {
        qts = qtest_init(i ? with_b : without);
        reply = qtest_hmp(qts, "loadvm s1");
        if (!strstr(reply, refusal) || !strstr(reply, "source: ram "
                                               "0x40000000-0x4fffffff")) {
            g_printerr("loadvm: %s\n", reply);
            g_assert_not_reached();
        }
        g_free(reply);
        qtest_quit(qts);
    }

    qts = qtest_init(with_a);
    reply = qtest_hmp(qts, "loadvm s1");
    g_assert_cmpstr(reply, ==, "");
    g_free(reply);
    qtest_quit(qts);
    unlink(img);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);

    if (!qtest_has_machine("virt")) {
        g_test_skip("no virt machine");
        return g_test_run();
    }
    for (int i = 0; i < ARRAY_SIZE(good); i++) {
        g_autofree char *path = g_strdup_printf("/memmap/good/%s",
                                                good[i].name);
        qtest_add_data_func(path, &good[i], test_good);
    }
    qtest_add_func("/memmap/floating-above-holes", test_floating_above_holes);
    qtest_add_func("/memmap/property", test_property);
    qtest_add_func("/memmap/readconfig", test_readconfig);
    qtest_add_func("/memmap/random", test_random);
    qtest_add_func("/memmap/query-other-machine", test_query_other_machine);
    qtest_add_func("/memmap/help", test_help);
    qtest_add_func("/memmap/backend-page-size", test_backend_page_size);
    qtest_add_func("/memmap/firmware-rule", test_firmware_rule);
    qtest_add_func("/memmap/snapshot", test_snapshot);
    for (int i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree char *path = g_strdup_printf("/memmap/bad/%02d", i);
        qtest_add_data_func(path, &bad[i], test_bad);
    }
    ret = g_test_run();
    if (scratch_dir) {
        g_autofree char *dtb = scratch_dtb();

        unlink(dtb);
        rmdir(scratch_dir);
        g_free(scratch_dir);
    }
    return ret;
}
