/*
 * VFIO: check guest memory against the host IOMMU's usable IOVA ranges
 *
 * Guest RAM that falls into a window the host IOMMU cannot map (such as
 * an MSI doorbell window) makes the kernel refuse the DMA mapping with
 * a bare EINVAL, and at run time that stops the VM.  This check runs
 * before guest memory is mapped for a device, says which range does not
 * fit, why, and which memmap hole would fix it; for the VM's whole life
 * the memory listener maps only what the container can take, and
 * memory devices are kept out of the windows.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "system/address-spaces.h"
#include "system/memory.h"
#include "hw/core/memmap.h"
#include "hw/core/qdev-prop-internal.h"
#include "hw/mem/memory-device.h"
#include "hw/qdev-properties.h"
#include "hw/vfio/memmap-check.h"
#include "hw/vfio/vfio-device.h"
#include "hw/vfio/vfio-container.h"
#include "qapi/qapi-types-vfio.h"
#include "trace.h"

const PropertyInfo vfio_prop_iova_check = {
    .type = "VfioIovaCheckPolicy",
    .description = "strict/relaxed",
    .enum_table = &VfioIovaCheckPolicy_lookup,
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

/* What the container's memory listener maps: its RAM sections */
static GList *guest_memory(VFIOContainer *bcontainer)
{
    GList *ram = NULL;

    RCU_READ_LOCK_GUARD();
    flatview_for_each_range(address_space_to_flatview(bcontainer->space->as),
                            collect_guest_memory, &ram);
    return ram;
}

/*
 * The container maps guest memory one to one: its address space is
 * system memory, or a vIOMMU's address space in bypass mode, where
 * system memory shows through.  Behind a translating vIOMMU the guest
 * chooses the IOVAs, and none of this applies.
 */
static bool maps_guest_memory(VFIOContainer *bcontainer)
{
    g_autoptr(GList) ram = NULL;

    if (bcontainer->space->as == &address_space_memory) {
        return true;
    }
    ram = guest_memory(bcontainer);
    g_list_foreach(ram, (GFunc)g_free, NULL);
    return ram != NULL;
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

bool vfio_memmap_check(VFIOContainer *bcontainer, VFIODevice *vbasedev,
                       Error **errp)
{
    Error *err = NULL;
    GList *ram;
    Range bad, window;
    bool fits;

    if (!bcontainer->iova_ranges) {
        trace_vfio_memmap_check_skipped(vbasedev->name);
        return true;
    }

    ram = guest_memory(bcontainer);
    fits = memmap_ranges_inside(bcontainer->iova_ranges, ram, &bad, &window);
    g_list_free_full(ram, g_free);
    trace_vfio_memmap_check(vbasedev->name, fits);
    if (fits) {
        return true;
    }

    describe_misfit(&err, "guest memory", bcontainer->iova_ranges,
                    &bad, &window);
    if (vbasedev->iova_check == VFIO_IOVA_CHECK_POLICY_RELAXED) {
        error_append_hint(&err, "Guest memory in these windows is not "
                          "DMA-mapped for the device (iova-check=relaxed)"
                          "\n");
        warn_reportf_err(err, "vfio %s: ", vbasedev->name);
        return true;
    }
    error_propagate(errp, err);
    return false;
}

/* The devices of @bcontainer, for messages: "a, b" */
static char *container_devices(VFIOContainer *bcontainer)
{
    g_autoptr(GString) names = g_string_new(NULL);
    VFIODevice *vbasedev;

    QLIST_FOREACH(vbasedev, &bcontainer->device_list, container_next) {
        g_string_append_printf(names, "%s%s", names->len ? ", " : "",
                               vbasedev->name);
    }
    return g_string_free(g_steal_pointer(&names), false);
}

/*
 * Map or unmap the part of [@iova, @iova + @size) that the container can
 * take, piece by piece, the same pieces both ways.  Returns the first
 * error, and in @left whether some of it lies outside the usable ranges.
 */
static int dma_map_usable(VFIOContainer *bcontainer, hwaddr iova,
                          hwaddr size, void *vaddr, bool readonly,
                          MemoryRegion *mr, bool map, bool *left)
{
    Range r;
    GList *parts;
    uint64_t done = 0;
    int ret = 0;

    range_init_nofail(&r, iova, size);
    parts = memmap_ranges_clip(bcontainer->iova_ranges, &r);
    for (GList *l = parts; l && !ret; l = l->next) {
        uint64_t lob = range_lob(l->data), len = range_size(l->data);

        ret = map ? vfio_container_dma_map(bcontainer, lob, len,
                                           vaddr + (lob - iova), readonly, mr)
                  : vfio_container_dma_unmap(bcontainer, lob, len, NULL,
                                             false);
        done += len;
    }
    g_list_free_full(parts, g_free);
    *left = done != size;
    return ret;
}

int vfio_memmap_dma_map(VFIOContainer *bcontainer,
                        MemoryRegionSection *section, hwaddr iova,
                        hwaddr size, void *vaddr, bool readonly)
{
    GList range = { .data = &(Range) { 0 } };
    Range bad, window;
    bool left;
    int ret;

    if (!bcontainer->iova_ranges) {
        return vfio_container_dma_map(bcontainer, iova, size, vaddr,
                                      readonly, section->mr);
    }
    ret = dma_map_usable(bcontainer, iova, size, vaddr, readonly,
                         section->mr, true, &left);
    if (ret || !left) {
        return ret;
    }

    range_init_nofail(range.data, iova, size);
    memmap_ranges_inside(bcontainer->iova_ranges, &range, &bad, &window);
    trace_vfio_memmap_unmapped(memory_region_name(section->mr), iova,
                               iova + size - 1, window.lob, window.upb);
    /* at attach time, vfio_memmap_check() has said it already */
    if (bcontainer->initialized) {
        g_autofree char *devices = container_devices(bcontainer);

        warn_report("vfio %s: %s at 0x%" HWADDR_PRIx "-0x%" HWADDR_PRIx
                    " overlaps 0x%" PRIx64 "-0x%" PRIx64 ", which the host "
                    "IOMMU cannot map; it is left unmapped there, and the "
                    "device cannot DMA to it", devices,
                    memory_region_name(section->mr), iova, iova + size - 1,
                    window.lob, window.upb);
    }
    return 0;
}

int vfio_memmap_dma_unmap(VFIOContainer *bcontainer, hwaddr iova,
                          hwaddr size, bool unmap_all)
{
    bool left;

    if (!bcontainer->iova_ranges || unmap_all) {
        return vfio_container_dma_unmap(bcontainer, iova, size, NULL,
                                        unmap_all);
    }
    return dma_map_usable(bcontainer, iova, size, NULL, false, NULL, false,
                          &left);
}

/*
 * Memory devices: the lowest window of any container that overlaps
 * @range; refused (@errp set) when a device of that container has the
 * strict policy, else only to be avoided by the address allocator.
 */
static bool vfio_memmap_range_check(const Range *range, Range *window,
                                    Error **errp)
{
    ERRP_GUARD();
    GList new = { .data = (gpointer)range };
    VFIODevice *vbasedev;
    bool fits = true;

    QLIST_FOREACH(vbasedev, &vfio_device_list, global_next) {
        VFIOContainer *bcontainer = vbasedev->bcontainer;
        Range bad, w;

        if (!bcontainer || !bcontainer->iova_ranges ||
            !maps_guest_memory(bcontainer) ||
            memmap_ranges_inside(bcontainer->iova_ranges, &new, &bad, &w)) {
            continue;
        }
        if (fits || w.lob < window->lob) {
            *window = w;
        }
        fits = false;
        if (vbasedev->iova_check == VFIO_IOVA_CHECK_POLICY_STRICT && !*errp) {
            describe_misfit(errp, "new memory", bcontainer->iova_ranges,
                            &bad, &w);
            error_prepend(errp, "vfio %s: ", vbasedev->name);
        }
    }
    return fits;
}

static void vfio_memmap_register(void)
{
    memory_device_add_range_check(vfio_memmap_range_check);
}

type_init(vfio_memmap_register)
