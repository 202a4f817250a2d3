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
#include "qemu/error-report.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"

struct MachineMemMap {
    MemMapRangeList *entries;
    MemMapLayout *layout;
    GArray *devices; /* MemMapRegion */
    char *incoming; /* the migration source's map, while loading */
};

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
        .type = MEM_MAP_REGION_TYPE_DEVICE,
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
        g_free(ms->guest_memmap->incoming);
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
            .name = (char *)"ram", .type = MEM_MAP_REGION_TYPE_RAM,
            .base = p->range.lob, .size = range_size(&p->range),
            .has_node = p->node >= 0, .node = p->node,
        };
        g_array_append_val(all, r);
    }
    for (i = 0; i < l->holes->len; i++) {
        Range *h = &g_array_index(l->holes, Range, i);
        MemMapRegion r = {
            .name = (char *)"hole", .type = MEM_MAP_REGION_TYPE_HOLE,
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
                       MemMapRegionType_str(r->type), node, r->name);
    }
}

/*
 * Migration and snapshots: the effective map travels as a subsection of
 * the "configuration" section, present only when the source has a map,
 * so that a VM without one sends what QEMU always sent.  The destination
 * compares it with its own map once the configuration is loaded, and a
 * map on either side only is a difference too.
 */
typedef struct MemMapMigration {
    void *parent;
    uint32_t len;
    char *map;
} MemMapMigration;

static char *machine_memmap_describe(MachineState *ms)
{
    return machine_memmap_is_set(ms) && ms->guest_memmap->layout ?
        memmap_layout_describe(ms->guest_memmap->layout) : NULL;
}

static bool memmap_migration_needed(void *opaque)
{
    return machine_memmap_is_set(current_machine);
}

static int memmap_migration_pre_save(void *opaque)
{
    MemMapMigration *m = opaque;

    m->map = machine_memmap_describe(current_machine);
    m->len = strlen(m->map);
    return 0;
}

static int memmap_migration_post_save(void *opaque)
{
    MemMapMigration *m = opaque;

    g_clear_pointer(&m->map, g_free);
    return 0;
}

static int memmap_migration_post_load(void *opaque, int version_id)
{
    MemMapMigration *m = opaque;
    MachineMemMap *mm = machine_memmap(current_machine);

    g_free(mm->incoming);
    mm->incoming = g_strndup(m->map, m->len);
    g_clear_pointer(&m->map, g_free);
    return 0;
}

/* loaded through VMSTATE_WITH_TMP, which passes version 0 */
static const VMStateDescription vmstate_memmap_migration = {
    .name = "memmap-layout",
    .pre_save = memmap_migration_pre_save,
    .post_save = memmap_migration_post_save,
    .post_load = memmap_migration_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(len, MemMapMigration),
        VMSTATE_VBUFFER_ALLOC_UINT32(map, MemMapMigration, 0, NULL, len),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_machine_memmap = {
    .name = "configuration/memmap",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = memmap_migration_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_WITH_TMP(void, MemMapMigration, vmstate_memmap_migration),
        VMSTATE_END_OF_LIST()
    },
};

void machine_memmap_incoming_reset(void)
{
    if (current_machine->guest_memmap) {
        g_clear_pointer(&current_machine->guest_memmap->incoming, g_free);
    }
}

int machine_memmap_incoming_check(void)
{
    g_autofree char *local = machine_memmap_describe(current_machine);
    const char *source = current_machine->guest_memmap ?
        current_machine->guest_memmap->incoming : NULL;

    if (g_strcmp0(local, source)) {
        error_report("the guest memory map of the migration source differs "
                     "from this QEMU's, and the guest needs the same map on "
                     "both sides (-machine memmap); source: %s; "
                     "destination: %s", source ?: "no memmap",
                     local ?: "no memmap");
        machine_memmap_incoming_reset();
        return -EINVAL;
    }
    machine_memmap_incoming_reset();
    return 0;
}
