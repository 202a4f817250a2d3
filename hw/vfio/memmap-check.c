/*
 * VFIO: check guest memory against the host IOMMU's usable IOVA ranges
 *
 * Guest RAM that falls into a window the host IOMMU cannot map (such as
 * an MSI doorbell window) makes the kernel refuse the DMA mapping with
 * a bare EINVAL.  This check runs first and says which range does not
 * fit, why, and which memmap hole would fix it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/core/memmap.h"
#include "hw/core/qdev-prop-internal.h"
#include "hw/qdev-properties.h"
#include "hw/vfio/memmap-check.h"
#include "hw/vfio/vfio-common.h"
#include "hw/vfio/vfio-container-base.h"
#include "qapi/qapi-types-memmap.h"
#include "trace.h"

const PropertyInfo vfio_prop_iova_check = {
    .type = "IovaCheckPolicy",
    .description = "strict/relaxed",
    .enum_table = &IovaCheckPolicy_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
};

/* Collect what the VFIO memory listener maps and must not fail on. */
static bool collect_guest_memory(Int128 start, Int128 len,
                                 const MemoryRegion *cmr,
                                 hwaddr offset_in_region, void *opaque)
{
    /* the memory_region_is_*() helpers take no const pointer */
    MemoryRegion *mr = (MemoryRegion *)cmr;
    GList **ram = opaque;
    Range *r;

    if (!memory_region_is_ram(mr) || memory_region_is_ram_device(mr) ||
        memory_region_is_protected(mr) ||
        int128_get64(start) & (1ULL << 63)) {
        return false;
    }
    r = g_new(Range, 1);
    range_init_nofail(r, int128_get64(start), int128_get64(len));
    *ram = range_list_insert(*ram, r);
    return false;
}

static GList *guest_memory(void)
{
    GList *ram = NULL;

    RCU_READ_LOCK_GUARD();
    flatview_for_each_range(address_space_to_flatview(&address_space_memory),
                            collect_guest_memory, &ram);
    return ram;
}

/* Describe why @bad does not fit and how a memmap hole would fix it. */
static void describe_misfit(Error **errp, const char *what, GList *usable,
                            const Range *bad, const Range *window)
{
    ERRP_GUARD();
    uint64_t base = QEMU_ALIGN_DOWN(window->lob, MEMMAP_MIN_ALIGN);
    bool top = window->upb >= UINT64_MAX - MEMMAP_MIN_ALIGN;
    uint64_t size = top ? 0 :
        ROUND_UP(window->upb + 1, MEMMAP_MIN_ALIGN) - base;
    g_autofree char *fix = top ?
        g_strdup_printf("guest memory must end below 0x%" PRIx64, base) :
        g_strdup_printf("a memmap hole at 0x%" PRIx64 " of size 0x%" PRIx64
                        " keeps guest RAM out of it", base, size);
    GList *gaps = NULL;

    error_setg(errp, "%s 0x%" PRIx64 "-0x%" PRIx64 " overlaps 0x%" PRIx64
               "-0x%" PRIx64 ", which the host IOMMU cannot map for this "
               "device; %s", what, bad->lob, bad->upb, window->lob,
               window->upb, fix);

    range_inverse_array(usable, &gaps, 0, UINT64_MAX);
    error_append_hint(errp, "Unusable IOVA windows of the device:");
    for (GList *g = gaps; g; g = g->next) {
        error_append_hint(errp, " 0x%" PRIx64 "-0x%" PRIx64,
                          range_lob(g->data), range_upb(g->data));
    }
    error_append_hint(errp, "\n");
    g_list_free_full(gaps, g_free);
    if (!top) {
        error_append_hint(errp, "For example: -machine virt,memmap.0.type="
                          "hole,memmap.0.base=0x%" PRIx64 ",memmap.0.size=0x%"
                          PRIx64 "\n", base, size);
    }
}

static bool maps_system_memory(VFIOContainerBase *bcontainer)
{
    return bcontainer->space->as == &address_space_memory;
}

bool vfio_memmap_check(VFIOContainerBase *bcontainer, VFIODevice *vbasedev,
                       Error **errp)
{
    Error *err = NULL;
    GList *ram;
    Range bad, window;
    bool fits;

    if (!maps_system_memory(bcontainer)) {
        return true;
    }
    if (!bcontainer->iova_ranges) {
        trace_vfio_memmap_check_skipped(vbasedev->name);
        return true;
    }

    ram = guest_memory();
    fits = memmap_ranges_inside(bcontainer->iova_ranges, ram, &bad, &window);
    g_list_free_full(ram, g_free);
    trace_vfio_memmap_check(vbasedev->name, fits);
    if (fits) {
        return true;
    }

    describe_misfit(&err, "guest memory", bcontainer->iova_ranges,
                    &bad, &window);
    if (vbasedev->iova_check == IOVA_CHECK_POLICY_RELAXED) {
        warn_reportf_err(err, "vfio %s: ", vbasedev->name);
        return true;
    }
    error_propagate(errp, err);
    return false;
}

bool vfio_memmap_check_new_memory(const Range *range, Error **errp)
{
    VFIODevice *vbasedev;
    GList new = { .data = (gpointer)range };
    Range bad, window;

    QLIST_FOREACH(vbasedev, &vfio_device_list, global_next) {
        VFIOContainerBase *bcontainer = vbasedev->bcontainer;

        if (!bcontainer || !maps_system_memory(bcontainer) ||
            !bcontainer->iova_ranges ||
            memmap_ranges_inside(bcontainer->iova_ranges, &new,
                                 &bad, &window)) {
            continue;
        }
        describe_misfit(errp, "new memory", bcontainer->iova_ranges,
                        &bad, &window);
        error_prepend(errp, "vfio %s: ", vbasedev->name);
        return false;
    }
    return true;
}
