/*
 * User-supplied guest memory map: validation and RAM layout
 *
 * This part is pure: it turns the user's entries and a machine's
 * constraints into the effective map, so that it can be unit tested and
 * shared with the memmap-plan tool.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-memmap.h"
#include "qapi/qobject-input-visitor.h"
#include "qemu/keyval.h"
#include "qobject/qdict.h"
#include "hw/core/memmap.h"

typedef struct Entry {
    int index;
    const MemMapRange *e;
    Range range;
} Entry;

char *memmap_range_describe(int index, const MemMapRange *e)
{
    g_autofree char *node = e->has_node ?
        g_strdup_printf(", node=%u", e->node) : g_strdup("");

    return g_strdup_printf("memmap.%d (type=%s, base=0x%" PRIx64
                           ", size=0x%" PRIx64 "%s)", index,
                           MemMapType_str(e->type), e->base, e->size, node);
}

static uint64_t phys_last(const MemMapConstraints *c)
{
    return c->phys_bits && c->phys_bits < 64 ?
        BIT_ULL(c->phys_bits) - 1 : UINT64_MAX;
}

static int entry_compare(gconstpointer a, gconstpointer b)
{
    const Entry *ea = a, *eb = b;

    return ea->range.lob < eb->range.lob ? -1 : ea->range.lob > eb->range.lob;
}

static int piece_compare_by_node(gconstpointer a, gconstpointer b)
{
    const MemMapPiece *pa = a, *pb = b;

    int na = MAX(pa->node, 0), nb = MAX(pb->node, 0);

    if (na != nb) {
        return na < nb ? -1 : 1;
    }
    return pa->range.lob < pb->range.lob ? -1 : pa->range.lob > pb->range.lob;
}

static int piece_compare(gconstpointer a, gconstpointer b)
{
    const MemMapPiece *pa = a, *pb = b;

    return pa->range.lob < pb->range.lob ? -1 : pa->range.lob > pb->range.lob;
}

static int range_compare_lob(gconstpointer a, gconstpointer b)
{
    const Range *ra = a, *rb = b;

    return ra->lob < rb->lob ? -1 : ra->lob > rb->lob;
}

/* Check one entry on its own; fill @out on success. */
static bool check_entry(int index, const MemMapRange *e,
                        const MemMapConstraints *c, Entry *out,
                        Error **errp)
{
    g_autofree char *desc = memmap_range_describe(index, e);
    uint64_t limit = phys_last(c);
    size_t i;

    if (e->type == MEM_MAP_TYPE_DEVICE) {
        error_setg(errp, "%s: an entry is of type ram or hole; the machine "
                   "places its device regions itself", desc);
        return false;
    }
    if (!e->size) {
        error_setg(errp, "%s: size must not be zero", desc);
        return false;
    }
    if (e->size - 1 > UINT64_MAX - e->base) {
        error_setg(errp, "%s: the range extends past the end of the 64-bit "
                   "address space", desc);
        return false;
    }
    range_init_nofail(&out->range, e->base, e->size);
    if (!QEMU_IS_ALIGNED(e->base, c->align) ||
        !QEMU_IS_ALIGNED(e->size, c->align)) {
        g_autofree char *align = size_to_str(c->align);

        error_setg(errp, "%s: base and size must be multiples of %s "
                   "(0x%" PRIx64 ")", desc, align, c->align);
        return false;
    }
    if (out->range.upb > limit) {
        error_setg(errp, "%s: the range ends at 0x%" PRIx64 ", beyond the "
                   "%u-bit guest physical address space (last address "
                   "0x%" PRIx64 ")", desc, out->range.upb, c->phys_bits,
                   limit);
        return false;
    }
    if (e->type == MEM_MAP_TYPE_HOLE) {
        if (e->has_node) {
            error_setg(errp, "%s: node applies to ram entries only", desc);
            return false;
        }
    } else {
        if (e->base < c->default_base) {
            error_setg(errp, "%s: guest RAM must start at or above the "
                       "machine's RAM base 0x%" PRIx64, desc,
                       c->default_base);
            return false;
        }
        for (i = 0; i < c->nb_fixed; i++) {
            const MemMapFixedRegion *f = &c->fixed[i];

            if (range_overlaps_range(&out->range, &f->range)) {
                error_setg(errp, "%s: guest RAM overlaps the machine's %s "
                           "region at 0x%" PRIx64 "-0x%" PRIx64, desc,
                           f->name, f->range.lob, f->range.upb);
                return false;
            }
        }
    }
    out->index = index;
    out->e = e;
    return true;
}

static void add_piece(MemMapLayout *l, uint64_t base, uint64_t size,
                      uint64_t offset, int node)
{
    MemMapPiece p = { .offset = offset, .node = node };

    range_init_nofail(&p.range, base, size);
    g_array_append_val(l->ram, p);
}

/*
 * Explicit ram entries: exact placement.  The RAM region is laid out
 * node by node (an entry without node counts as node 0), in address
 * order within a node, as NUMA memdevs fill it.
 */
static bool place_explicit(MemMapLayout *l, GArray *entries,
                           const MemMapConstraints *c, Error **errp)
{
    uint64_t total = 0, offset = 0;
    unsigned i;

    for (i = 0; i < entries->len; i++) {
        Entry *en = &g_array_index(entries, Entry, i);

        if (en->e->type != MEM_MAP_TYPE_RAM) {
            continue;
        }
        /* entries are disjoint, so the sum cannot wrap */
        total += en->e->size;
        add_piece(l, en->e->base, en->e->size, 0,
                  en->e->has_node ? en->e->node : -1);
    }
    if (total != c->ram_size) {
        g_autofree char *got = size_to_str(total);
        g_autofree char *want = size_to_str(c->ram_size);

        error_setg(errp, "memmap ram entries add up to %s (0x%" PRIx64
                   "), but the machine has %s (0x%" PRIx64 ") of RAM (-m); "
                   "they must be equal", got, total, want, c->ram_size);
        return false;
    }

    g_array_sort(l->ram, piece_compare_by_node);
    for (i = 0; i < l->ram->len; i++) {
        MemMapPiece *p = &g_array_index(l->ram, MemMapPiece, i);

        p->offset = offset;
        offset += range_size(&p->range);
    }
    g_array_sort(l->ram, piece_compare);
    return true;
}

/*
 * No ram entries: RAM flows upward from the default base around the
 * holes and the machine's fixed regions.
 */
static bool place_flow(MemMapLayout *l, const MemMapConstraints *c,
                       Error **errp)
{
    g_autoptr(GArray) obstacles = g_array_copy(l->holes);
    uint64_t limit = phys_last(c);
    uint64_t cursor = c->default_base, offset = 0;
    unsigned i = 0;
    bool wrapped = false;

    /* keep the pieces aligned around fixed regions of any alignment */
    for (size_t f = 0; f < c->nb_fixed; f++) {
        Range r = c->fixed[f].range;

        r.lob = QEMU_ALIGN_DOWN(r.lob, c->align);
        if (r.upb < UINT64_MAX - c->align) {
            r.upb = ROUND_UP(r.upb + 1, c->align) - 1;
        } else {
            /* the last aligned block ends at the top of the space */
            r.upb = UINT64_MAX;
        }
        g_array_append_val(obstacles, r);
    }
    g_array_sort(obstacles, range_compare_lob);

    while (offset < c->ram_size) {
        uint64_t last = limit, take;
        bool blocked = wrapped || cursor > limit;

        /* skip the obstacles below the cursor, jump over those at it */
        while (!blocked && i < obstacles->len) {
            const Range *o = &g_array_index(obstacles, Range, i);

            if (o->upb < cursor) {
                i++;
            } else if (o->lob <= cursor) {
                blocked = o->upb >= limit;
                cursor = o->upb + 1;
                i++;
            } else {
                last = MIN(limit, o->lob - 1);
                break;
            }
        }
        if (blocked) {
            g_autofree char *sz = size_to_str(c->ram_size);

            error_setg(errp, "memmap: %s of RAM placed upward from 0x%"
                       PRIx64 " around the holes does not fit in the "
                       "%u-bit guest physical address space", sz,
                       c->default_base, c->phys_bits ? c->phys_bits : 64);
            return false;
        }
        take = MIN(c->ram_size - offset - 1, last - cursor) + 1;
        add_piece(l, cursor, take, offset, -1);
        offset += take;
        cursor += take;
        wrapped = !cursor;
    }
    return true;
}

MemMapLayout *memmap_layout_new(const MemMapRangeList *entries,
                                const MemMapConstraints *c, Error **errp)
{
    g_autoptr(MemMapLayout) l = g_new0(MemMapLayout, 1);
    g_autoptr(GArray) items = g_array_new(false, false, sizeof(Entry));
    const MemMapRangeList *it;
    const Entry *highest = NULL;
    bool explicit = false;
    int index = 0;
    unsigned i;

    l->ram = g_array_new(false, false, sizeof(MemMapPiece));
    l->holes = g_array_new(false, false, sizeof(Range));

    for (it = entries; it; it = it->next, index++) {
        Entry en;

        if (index == MEMMAP_MAX_ENTRIES) {
            error_setg(errp, "memmap has more than %d entries, the most a "
                       "machine supports", MEMMAP_MAX_ENTRIES);
            return NULL;
        }
        if (!check_entry(index, it->value, c, &en, errp)) {
            return NULL;
        }
        explicit |= it->value->type == MEM_MAP_TYPE_RAM;
        g_array_append_val(items, en);
    }

    g_array_sort(items, entry_compare);
    for (i = 0; i < items->len; i++) {
        const Entry *en = &g_array_index(items, Entry, i);

        if (highest && range_overlaps_range(&highest->range, &en->range)) {
            g_autofree char *a = memmap_range_describe(highest->index,
                                                       highest->e);
            g_autofree char *b = memmap_range_describe(en->index, en->e);

            error_setg(errp, "%s overlaps %s; entries must not overlap",
                       a, b);
            return NULL;
        }
        if (!highest || en->range.upb > highest->range.upb) {
            highest = en;
        }
        if (en->e->type == MEM_MAP_TYPE_HOLE) {
            g_array_append_val(l->holes, en->range);
        }
    }

    if (explicit ? !place_explicit(l, items, c, errp)
                 : !place_flow(l, c, errp)) {
        return NULL;
    }

    if (l->ram->len) {
        const MemMapPiece *low = &g_array_index(l->ram, MemMapPiece, 0);

        if (range_size(&low->range) < c->min_boot_size) {
            g_autofree char *have = size_to_str(range_size(&low->range));
            g_autofree char *need = size_to_str(c->min_boot_size);

            error_setg(errp, "memmap: the lowest RAM piece, 0x%" PRIx64
                       "-0x%" PRIx64 ", is %s; it must be at least %s to "
                       "hold the kernel, initrd and device tree",
                       low->range.lob, low->range.upb, have, need);
            return NULL;
        }
        l->last = g_array_index(l->ram, MemMapPiece, l->ram->len - 1)
                  .range.upb;
    }
    if (highest && highest->range.upb > l->last) {
        l->last = highest->range.upb;
    }
    return g_steal_pointer(&l);
}

static bool page_aligned(uint64_t v, const MemMapBinding *b)
{
    return b->page_size <= MEMMAP_MIN_ALIGN || QEMU_IS_ALIGNED(v, b->page_size);
}

/* The entries against the NUMA nodes and the backends' page size. */
static bool bind_check_entries(const MemMapRangeList *entries,
                               const MemMapBinding *b, Error **errp)
{
    const MemMapRangeList *it;
    int index = 0;

    for (it = entries; it; it = it->next, index++) {
        const MemMapRange *e = it->value;
        bool ram = e->type == MEM_MAP_TYPE_RAM;
        g_autofree char *desc = NULL;

        if (page_aligned(e->base, b) && page_aligned(e->size, b) &&
            (!ram || (e->has_node ? e->node < b->nb_nodes
                                  : b->nb_nodes < 2))) {
            continue;
        }
        desc = memmap_range_describe(index, e);
        if (!page_aligned(e->base, b) || !page_aligned(e->size, b)) {
            g_autofree char *page = size_to_str(b->page_size);

            error_setg(errp, "%s: base and size must be multiples of %s "
                       "(0x%" PRIx64 "), the page size of the guest RAM's "
                       "memory backend", desc, page, b->page_size);
        } else if (!e->has_node) {
            error_setg(errp, "%s: %u NUMA nodes are configured, so every "
                       "ram entry needs a node", desc, b->nb_nodes);
        } else if (!b->nb_nodes) {
            error_setg(errp, "%s: node is given, but no NUMA nodes are "
                       "configured (-numa node)", desc);
        } else {
            error_setg(errp, "%s: NUMA node %u does not exist; "
                       "nodes are 0 to %u", desc, e->node, b->nb_nodes - 1);
        }
        return false;
    }
    return true;
}

/* Explicit ram entries: the RAM of each node must be what -numa gives. */
static bool bind_explicit(GArray *ram, const MemMapBinding *b, Error **errp)
{
    g_autofree uint64_t *node_sum = NULL;
    unsigned i;

    if (!b->nb_nodes) {
        return true;
    }
    node_sum = g_new0(uint64_t, b->nb_nodes);
    for (i = 0; i < ram->len; i++) {
        MemMapPiece *p = &g_array_index(ram, MemMapPiece, i);

        p->node = MAX(p->node, 0);
        node_sum[p->node] += range_size(&p->range);
    }
    for (i = 0; i < b->nb_nodes; i++) {
        if (node_sum[i] != b->node_mem[i]) {
            error_setg(errp, "memmap ram entries of NUMA node %u add up to "
                       "0x%" PRIx64 ", but the node has 0x%" PRIx64
                       " of RAM (-numa node); they must be equal",
                       i, node_sum[i], b->node_mem[i]);
            return false;
        }
    }
    return true;
}

/*
 * RAM flowed around the holes: the nodes take the RAM region in order,
 * so a piece is split where a node ends.
 */
static void bind_flow(GArray *ram, const MemMapBinding *b)
{
    g_autoptr(GArray) in = g_array_copy(ram);
    uint64_t node_end = b->node_mem[0];
    unsigned i, node = 0;

    g_array_set_size(ram, 0);
    for (i = 0; i < in->len; i++) {
        const MemMapPiece *p = &g_array_index(in, MemMapPiece, i);
        uint64_t base = p->range.lob, offset = p->offset;
        uint64_t left = range_size(&p->range);

        while (left) {
            MemMapPiece piece = { .offset = offset };
            uint64_t take = left;

            while (offset >= node_end && node + 1 < b->nb_nodes) {
                node_end += b->node_mem[++node];
            }
            if (offset < node_end) {
                take = MIN(left, node_end - offset);
            }
            piece.node = node;
            range_init_nofail(&piece.range, base, take);
            g_array_append_val(ram, piece);
            base += take;
            offset += take;
            left -= take;
        }
    }
}

bool memmap_layout_bind(MemMapLayout *l, const MemMapRangeList *entries,
                        const MemMapBinding *b, Error **errp)
{
    g_autoptr(GArray) ram = g_array_copy(l->ram);
    const MemMapRangeList *it;
    bool explicit = false;
    unsigned i;

    g_assert(!l->bound);
    if (!bind_check_entries(entries, b, errp)) {
        return false;
    }
    for (it = entries; it; it = it->next) {
        explicit |= it->value->type == MEM_MAP_TYPE_RAM;
    }
    if (explicit) {
        if (!bind_explicit(ram, b, errp)) {
            return false;
        }
    } else if (b->nb_nodes) {
        bind_flow(ram, b);
    }

    for (i = 0; i < ram->len; i++) {
        const MemMapPiece *p = &g_array_index(ram, MemMapPiece, i);

        if (!page_aligned(p->range.lob, b) || !page_aligned(p->offset, b) ||
            !page_aligned(range_size(&p->range), b)) {
            g_autofree char *page = size_to_str(b->page_size);

            error_setg(errp, "memmap: the RAM piece 0x%" PRIx64 "-0x%" PRIx64
                       " (offset 0x%" PRIx64 " in guest RAM) is not aligned "
                       "to %s, the page size of the guest RAM's memory "
                       "backend; place RAM with ram entries aligned to it",
                       p->range.lob, p->range.upb, p->offset, page);
            return false;
        }
    }
    g_array_unref(l->ram);
    l->ram = g_steal_pointer(&ram);
    l->bound = true;
    return true;
}

char *memmap_layout_describe(const MemMapLayout *l)
{
    GString *s = g_string_new(NULL);
    unsigned r = 0, h = 0;

    while (r < l->ram->len || h < l->holes->len) {
        const MemMapPiece *p = r < l->ram->len ?
            &g_array_index(l->ram, MemMapPiece, r) : NULL;
        const Range *hole = h < l->holes->len ?
            &g_array_index(l->holes, Range, h) : NULL;

        if (s->len) {
            g_string_append(s, ", ");
        }
        if (p && (!hole || p->range.lob < hole->lob)) {
            g_string_append_printf(s, "ram 0x%" PRIx64 "-0x%" PRIx64
                                   " (offset 0x%" PRIx64, p->range.lob,
                                   p->range.upb, p->offset);
            if (p->node >= 0) {
                g_string_append_printf(s, ", node %d", p->node);
            }
            g_string_append(s, ")");
            r++;
        } else {
            g_string_append_printf(s, "hole 0x%" PRIx64 "-0x%" PRIx64,
                                   hole->lob, hole->upb);
            h++;
        }
    }
    return g_string_free(s, false);
}

void memmap_layout_free(MemMapLayout *layout)
{
    if (layout) {
        g_array_unref(layout->ram);
        g_array_unref(layout->holes);
        g_free(layout);
    }
}

GList *memmap_layout_ram_ranges(const MemMapLayout *layout)
{
    GList *list = NULL;

    for (unsigned i = 0; i < layout->ram->len; i++) {
        list = range_list_insert(list, g_memdup2(
            &g_array_index(layout->ram, MemMapPiece, i).range, sizeof(Range)));
    }
    return list;
}

bool memmap_parse_keyval(const char *str, MemMapRangeList **entries,
                         Error **errp)
{
    g_autoptr(QDict) args = keyval_parse(str, NULL, NULL, errp);
    QObject *list;
    Visitor *v;
    bool ok;

    *entries = NULL;
    if (!args) {
        return false;
    }
    list = qdict_get(args, "memmap");
    if (qdict_size(args) != !!list) {
        error_setg(errp, "'%s' has keys other than memmap.N.type, "
                   "memmap.N.base, memmap.N.size and memmap.N.node", str);
        return false;
    }
    if (!list) {
        return true;
    }
    v = qobject_input_visitor_new_keyval(list);
    ok = visit_type_MemMapRangeList(v, "memmap", entries, errp);
    visit_free(v);
    return ok;
}

bool memmap_device_memory_area(uint64_t ram_end, uint64_t ram_size,
                               uint64_t maxram_size, uint64_t slots,
                               uint64_t *base, uint64_t *size)
{
    *base = ROUND_UP(ram_end, GiB);
    *size = maxram_size - ram_size + slots * GiB;
    return ram_end <= UINT64_MAX - GiB + 1 &&
           slots <= UINT64_MAX / GiB &&
           *size >= slots * GiB &&
           (!*size || *size - 1 <= UINT64_MAX - *base);
}
