/*
 * User-supplied guest memory map: the machine property, QMP and HMP
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-memmap.h"
#include "qapi/qapi-visit-memmap.h"
#include "qapi/visitor.h"
#include "hw/boards.h"
#include "hw/core/machine-memmap.h"
#include "hw/qdev-core.h"
#include "migration/vmstate.h"
#include "system/numa.h"
#include "qemu/error-report.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"

struct MachineMemMap {
    MemMapRangeList *entries;
    MemMapLayout *layout;
    GArray *devices; /* MemMapRegion */
    bool vmstate_registered;
};

static const VMStateDescription vmstate_machine_memmap;

static MachineMemMap *machine_memmap(MachineState *ms)
{
    if (!ms->guest_memmap) {
        ms->guest_memmap = g_new0(MachineMemMap, 1);
        ms->guest_memmap->devices = g_array_new(false, false,
                                                sizeof(MemMapRegion));
    }
    return ms->guest_memmap;
}

static void clear_devices(MachineMemMap *mm)
{
    for (unsigned i = 0; i < mm->devices->len; i++) {
        g_free(g_array_index(mm->devices, MemMapRegion, i).name);
    }
    g_array_set_size(mm->devices, 0);
}

static void machine_get_memmap(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    MachineState *ms = MACHINE(obj);
    MemMapRangeList *entries =
        ms->guest_memmap ? ms->guest_memmap->entries : NULL;

    visit_type_MemMapRangeList(v, name, &entries, errp);
}

/*
 * visit_type_MemMapRangeList(), but an error about an entry starts with
 * the entry ("memmap.N: "), since the input visitor names only the
 * member in some of its messages (enums).
 */
static bool visit_memmap(Visitor *v, const char *name,
                         MemMapRangeList **list, Error **errp)
{
    ERRP_GUARD();
    MemMapRangeList *tail;
    int i = 0;

    if (!visit_start_list(v, name, (GenericList **)list, sizeof(**list),
                          errp)) {
        return false;
    }
    for (tail = *list; tail; i++,
         tail = (MemMapRangeList *)visit_next_list(v, (GenericList *)tail,
                                                   sizeof(*tail))) {
        if (!visit_type_MemMapRange(v, NULL, &tail->value, errp)) {
            error_prepend(errp, "memmap.%d: ", i);
            break;
        }
    }
    if (!*errp) {
        visit_check_list(v, errp);
    }
    visit_end_list(v, (void **)list);
    if (*errp) {
        qapi_free_MemMapRangeList(*list);
        *list = NULL;
        return false;
    }
    return true;
}

static void machine_set_memmap(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    MachineState *ms = MACHINE(obj);
    MachineMemMap *mm;
    MemMapRangeList *entries = NULL;

    if (phase_check(PHASE_MACHINE_CREATED)) {
        error_setg(errp, "memmap can only be set on the command line, "
                   "before the machine is created");
        return;
    }
    if (!visit_memmap(v, name, &entries, errp)) {
        return;
    }
    mm = machine_memmap(ms);
    qapi_free_MemMapRangeList(mm->entries);
    mm->entries = entries;
}

void machine_class_allow_memmap(MachineClass *mc)
{
    ObjectClass *oc = OBJECT_CLASS(mc);

    mc->memmap_supported = true;
    object_class_property_add(oc, "memmap", "MemMapRangeWrapper",
                              machine_get_memmap, machine_set_memmap,
                              NULL, NULL);
    object_class_property_set_description(oc, "memmap",
        "Guest memory map: RAM and hole ranges, e.g. memmap.0.type=hole,"
        "memmap.0.base=0xfee00000,memmap.0.size=1M");
}

bool machine_memmap_is_set(MachineState *ms)
{
    return ms->guest_memmap && ms->guest_memmap->entries;
}

const MemMapLayout *machine_memmap_apply(MachineState *ms,
                                         const MemMapConstraints *c,
                                         Error **errp)
{
    MachineMemMap *mm = machine_memmap(ms);
    MemMapLayout *layout = memmap_layout_new(mm->entries, c, errp);

    if (!layout) {
        return NULL;
    }
    memmap_layout_free(mm->layout);
    mm->layout = layout;
    clear_devices(mm);
    if (!mm->vmstate_registered) {
        vmstate_register(NULL, 0, &vmstate_machine_memmap, ms);
        mm->vmstate_registered = true;
    }
    return layout;
}

bool machine_memmap_bind(MachineState *ms, const MemMapBinding *b,
                         Error **errp)
{
    MachineMemMap *mm = machine_memmap(ms);

    g_assert(mm->layout);
    return memmap_layout_bind(mm->layout, mm->entries, b, errp);
}

const MemMapLayout *machine_memmap_layout(MachineState *ms)
{
    return ms->guest_memmap ? ms->guest_memmap->layout : NULL;
}

void machine_memmap_add_device(MachineState *ms, const char *name,
                               uint64_t base, uint64_t size)
{
    MemMapRegion r = {
        .type = MEM_MAP_TYPE_DEVICE,
        .base = base,
        .size = size,
    };

    if (size) {
        r.name = g_strdup(name);
        g_array_append_val(machine_memmap(ms)->devices, r);
    }
}

void machine_memmap_free(MachineState *ms)
{
    if (ms->guest_memmap) {
        qapi_free_MemMapRangeList(ms->guest_memmap->entries);
        memmap_layout_free(ms->guest_memmap->layout);
        clear_devices(ms->guest_memmap);
        g_array_unref(ms->guest_memmap->devices);
        if (ms->guest_memmap->vmstate_registered) {
            vmstate_unregister(NULL, &vmstate_machine_memmap, ms);
        }
        g_clear_pointer(&ms->guest_memmap, g_free);
    }
}

static int region_compare(gconstpointer a, gconstpointer b)
{
    const MemMapRegion *ra = a, *rb = b;

    if (ra->base != rb->base) {
        return ra->base < rb->base ? -1 : 1;
    }
    return ra->size < rb->size ? -1 : ra->size > rb->size;
}

MemMapRegionList *qmp_query_memmap(Error **errp)
{
    MachineState *ms = MACHINE(qdev_get_machine());
    MachineClass *mc = MACHINE_GET_CLASS(ms);
    const MemMapLayout *l = machine_memmap_layout(ms);
    g_autoptr(GArray) all = g_array_new(false, false, sizeof(MemMapRegion));
    MemMapRegionList *head = NULL, **tail = &head;
    unsigned i;

    /* Machines that do not support memmap have no map to show. */
    if (!mc->memmap_supported || !l) {
        return NULL;
    }
    for (i = 0; i < l->ram->len; i++) {
        const MemMapPiece *p = &g_array_index(l->ram, MemMapPiece, i);
        MemMapRegion r = {
            .name = (char *)"ram", .type = MEM_MAP_TYPE_RAM,
            .base = p->range.lob, .size = range_size(&p->range),
            .has_node = p->node >= 0, .node = p->node,
        };
        g_array_append_val(all, r);
    }
    for (i = 0; i < l->holes->len; i++) {
        Range *h = &g_array_index(l->holes, Range, i);
        MemMapRegion r = {
            .name = (char *)"hole", .type = MEM_MAP_TYPE_HOLE,
            .base = h->lob, .size = range_size(h),
        };
        g_array_append_val(all, r);
    }
    g_array_append_vals(all, ms->guest_memmap->devices->data,
                        ms->guest_memmap->devices->len);
    g_array_sort(all, region_compare);

    for (i = 0; i < all->len; i++) {
        MemMapRegion *r = g_memdup2(&g_array_index(all, MemMapRegion, i),
                                    sizeof(MemMapRegion));

        r->name = g_strdup(r->name);
        QAPI_LIST_APPEND(tail, r);
    }
    return head;
}

void hmp_info_memmap(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(MemMapRegionList) list = qmp_query_memmap(&err);

    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "%-18s %-18s %-10s %-6s %-4s %s\n",
                   "base", "last", "size", "type", "node", "name");
    for (MemMapRegionList *it = list; it; it = it->next) {
        MemMapRegion *r = it->value;
        g_autofree char *size = size_to_str(r->size);
        g_autofree char *node = r->has_node ?
            g_strdup_printf("%u", r->node) : g_strdup("-");

        monitor_printf(mon, "0x%016" PRIx64 " 0x%016" PRIx64
                       " %-10s %-6s %-4s %s\n",
                       r->base, r->base + r->size - 1, size,
                       MemMapType_str(r->type), node, r->name);
    }
}

/*
 * Migration and snapshots: the effective map travels in a section of its
 * own, "memmap", registered by the machine (every machine that has the
 * property) and sent only when the source has a map, so that a VM
 * without one sends what QEMU always sent and migrates to and from QEMU
 * without this feature.  The section is sent in the setup phase, before
 * any guest RAM (early_setup, as virtio-mem sends its configuration),
 * and the destination compares the source's RAM pieces and holes with
 * its own as soon as it has loaded them: a different map, or a map on
 * the source only, fails the incoming migration while the source still
 * runs.  A destination with a map cannot tell a source without one (no
 * section arrives, as from QEMU without this feature); as for the other
 * properties of the machine, the destination must be started with the
 * source's configuration (docs/system/memmap.rst says so).
 *
 * The map goes as its pieces (base, size, offset in the RAM region,
 * node) and holes (base, size); device regions follow from the machine
 * type and its properties, which the destination has the same.  The
 * counts are checked against what a map can have before anything is
 * allocated for them.
 */
typedef struct MemMapMigPiece {
    uint64_t base;
    uint64_t size;
    uint64_t offset;
    int32_t node;
} MemMapMigPiece;

typedef struct MemMapMigHole {
    uint64_t base;
    uint64_t size;
} MemMapMigHole;

typedef struct MemMapMigration {
    MachineState *parent;
    int32_t nb_pieces;
    MemMapMigPiece *pieces;
    int32_t nb_holes;
    MemMapMigHole *holes;
} MemMapMigration;

/*
 * Most pieces a map has: one more than its entries, and one more for
 * each NUMA node boundary that falls inside a piece.
 */
#define MEMMAP_MIG_MAX_PIECES (MEMMAP_MAX_ENTRIES + MAX_NODES)

static bool memmap_migration_needed(void *opaque)
{
    MachineState *ms = opaque;

    return machine_memmap_is_set(ms) && ms->guest_memmap->layout;
}

static int memmap_migration_pre_save(void *opaque)
{
    MemMapMigration *m = opaque;
    MachineState *ms = m->parent;
    const MemMapLayout *l = ms->guest_memmap->layout;
    unsigned i;

    m->nb_pieces = l->ram->len;
    m->pieces = g_new(MemMapMigPiece, l->ram->len);
    for (i = 0; i < l->ram->len; i++) {
        const MemMapPiece *p = &g_array_index(l->ram, MemMapPiece, i);

        m->pieces[i] = (MemMapMigPiece) {
            .base = p->range.lob,
            .size = range_size(&p->range),
            .offset = p->offset,
            .node = p->node,
        };
    }
    m->nb_holes = l->holes->len;
    m->holes = g_new(MemMapMigHole, l->holes->len);
    for (i = 0; i < l->holes->len; i++) {
        Range *h = &g_array_index(l->holes, Range, i);

        m->holes[i] = (MemMapMigHole) {
            .base = range_lob(h),
            .size = range_size(h),
        };
    }
    return 0;
}

static int memmap_migration_post_save(void *opaque)
{
    MemMapMigration *m = opaque;

    g_clear_pointer(&m->pieces, g_free);
    g_clear_pointer(&m->holes, g_free);
    return 0;
}

static bool memmap_migration_pieces_valid(void *opaque, int version_id)
{
    MemMapMigration *m = opaque;

    return m->nb_pieces >= 0 && m->nb_pieces <= MEMMAP_MIG_MAX_PIECES;
}

static bool memmap_migration_holes_valid(void *opaque, int version_id)
{
    MemMapMigration *m = opaque;

    return m->nb_holes >= 0 && m->nb_holes <= MEMMAP_MAX_ENTRIES;
}

/* The range of @size bytes at @base; false when it is empty or wraps */
static bool memmap_migration_range(uint64_t base, uint64_t size, Range *r)
{
    if (!size || size - 1 > UINT64_MAX - base) {
        return false;
    }
    range_set_bounds(r, base, base + size - 1);
    return true;
}

static bool ranges_equal(const Range *a, const Range *b)
{
    return a->lob == b->lob && a->upb == b->upb;
}

static bool memmap_layouts_equal(const MemMapLayout *a, const MemMapLayout *b)
{
    unsigned i;

    if (a->ram->len != b->ram->len || a->holes->len != b->holes->len) {
        return false;
    }
    for (i = 0; i < a->ram->len; i++) {
        const MemMapPiece *pa = &g_array_index(a->ram, MemMapPiece, i);
        const MemMapPiece *pb = &g_array_index(b->ram, MemMapPiece, i);

        if (!ranges_equal(&pa->range, &pb->range) ||
            pa->offset != pb->offset || pa->node != pb->node) {
            return false;
        }
    }
    for (i = 0; i < a->holes->len; i++) {
        if (!ranges_equal(&g_array_index(a->holes, Range, i),
                         &g_array_index(b->holes, Range, i))) {
            return false;
        }
    }
    return true;
}

/*
 * The destination's side: the map of the source (@source) must be this
 * QEMU's own, and a map on one side only is a difference too.
 */
static int memmap_migration_compare(MachineState *ms,
                                    const MemMapLayout *source)
{
    const MemMapLayout *local = machine_memmap_is_set(ms) ?
        ms->guest_memmap->layout : NULL;
    g_autofree char *l = NULL;
    g_autofree char *s = NULL;

    if (local && memmap_layouts_equal(local, source)) {
        return 0;
    }
    l = local ? memmap_layout_describe(local) : g_strdup("no memmap");
    s = memmap_layout_describe(source);
    error_report("the guest memory map of the migration source differs "
                 "from this QEMU's, and the guest needs the same map on "
                 "both sides (-machine memmap); source: %s; destination: %s",
                 s, l);
    return -EINVAL;
}

static int memmap_migration_post_load(void *opaque, int version_id)
{
    MemMapMigration *m = opaque;
    g_autoptr(MemMapLayout) l = g_new0(MemMapLayout, 1);
    int i, ret = 0;

    l->ram = g_array_sized_new(false, false, sizeof(MemMapPiece),
                               m->nb_pieces);
    l->holes = g_array_sized_new(false, false, sizeof(Range), m->nb_holes);
    for (i = 0; i < m->nb_pieces; i++) {
        MemMapPiece p = { .offset = m->pieces[i].offset,
                          .node = m->pieces[i].node };

        if (!memmap_migration_range(m->pieces[i].base, m->pieces[i].size,
                                    &p.range)) {
            error_report("memmap: the migration stream has a RAM piece of "
                         "0x%" PRIx64 " bytes at 0x%" PRIx64 ", which is no "
                         "range", m->pieces[i].size, m->pieces[i].base);
            ret = -EINVAL;
            goto out;
        }
        g_array_append_val(l->ram, p);
    }
    for (i = 0; i < m->nb_holes; i++) {
        Range h;

        if (!memmap_migration_range(m->holes[i].base, m->holes[i].size,
                                    &h)) {
            error_report("memmap: the migration stream has a hole of "
                         "0x%" PRIx64 " bytes at 0x%" PRIx64 ", which is no "
                         "range", m->holes[i].size, m->holes[i].base);
            ret = -EINVAL;
            goto out;
        }
        g_array_append_val(l->holes, h);
    }
    ret = memmap_migration_compare(m->parent, l);
out:
    g_clear_pointer(&m->pieces, g_free);
    g_clear_pointer(&m->holes, g_free);
    return ret;
}

static const VMStateDescription vmstate_memmap_piece = {
    .name = "memmap-piece",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(base, MemMapMigPiece),
        VMSTATE_UINT64(size, MemMapMigPiece),
        VMSTATE_UINT64(offset, MemMapMigPiece),
        VMSTATE_INT32(node, MemMapMigPiece),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_memmap_hole = {
    .name = "memmap-hole",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(base, MemMapMigHole),
        VMSTATE_UINT64(size, MemMapMigHole),
        VMSTATE_END_OF_LIST()
    },
};

/* loaded through VMSTATE_WITH_TMP, which passes version 0 */
static const VMStateDescription vmstate_memmap_migration = {
    .name = "memmap-layout",
    .pre_save = memmap_migration_pre_save,
    .post_save = memmap_migration_post_save,
    .post_load = memmap_migration_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(nb_pieces, MemMapMigration),
        VMSTATE_VALIDATE("memmap pieces within the limit",
                         memmap_migration_pieces_valid),
        VMSTATE_STRUCT_VARRAY_ALLOC(pieces, MemMapMigration, nb_pieces, 0,
                                    vmstate_memmap_piece, MemMapMigPiece),
        VMSTATE_INT32(nb_holes, MemMapMigration),
        VMSTATE_VALIDATE("memmap holes within the limit",
                         memmap_migration_holes_valid),
        VMSTATE_STRUCT_VARRAY_ALLOC(holes, MemMapMigration, nb_holes, 0,
                                    vmstate_memmap_hole, MemMapMigHole),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_machine_memmap = {
    .name = "memmap",
    .version_id = 1,
    .minimum_version_id = 1,
    .early_setup = true,
    .needed = memmap_migration_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_WITH_TMP(MachineState, MemMapMigration,
                         vmstate_memmap_migration),
        VMSTATE_END_OF_LIST()
    },
};
