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
#include "qemu/range.h"
#include "qemu/units.h"
#include "hw/boards.h"
#include "hw/core/qdev-prop-internal.h"
#include "hw/mem/memory-device.h"
#include "hw/qdev-properties.h"
#include "hw/vfio/memmap-check.h"
#include "hw/vfio/vfio-device.h"
#include "hw/vfio/vfio-container.h"
#include "qapi/qapi-types-vfio.h"
#include "trace.h"
#include "vfio-listener.h"

const PropertyInfo vfio_prop_iova_check = {
    .type = "VfioIovaCheckPolicy",
    .description = "strict/relaxed",
    .enum_table = &VfioIovaCheckPolicy_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
};

/*
 * The container maps guest memory one to one: its address space is
 * system memory, or a vIOMMU's address space in bypass mode, where
 * system memory shows through.  Behind a translating vIOMMU the guest
 * chooses the IOVAs, and none of this applies.
 */
static bool maps_guest_memory(VFIOContainer *bcontainer)
{
    GList *ram;
    bool some;

    if (bcontainer->space->as == &address_space_memory) {
        return true;
    }
    ram = vfio_listener_guest_ram(bcontainer);
    some = ram != NULL;
    g_list_free_full(ram, g_free);
    return some;
}

/*
 * The alignment that a machine's memmap property asks of a hole's base
 * and size (the largest guest page size), for the hole the hint proposes
 */
#define VFIO_MEMMAP_HOLE_ALIGN (64 * KiB)

/* Whether the user can move guest RAM with a memmap on this machine */
static bool machine_has_memmap(void)
{
    return current_machine &&
        object_class_property_find(object_get_class(OBJECT(current_machine)),
                                   "memmap");
}

/* Describe why @bad does not fit, and how a memmap hole would fix it. */
static void describe_misfit(Error **errp, const char *what, GList *usable,
                            const Range *bad, const Range *window)
{
    ERRP_GUARD();
    uint64_t base = QEMU_ALIGN_DOWN(window->lob, VFIO_MEMMAP_HOLE_ALIGN);
    bool top = window->upb >= UINT64_MAX - VFIO_MEMMAP_HOLE_ALIGN;
    uint64_t size = top ? 0 :
        ROUND_UP(window->upb + 1, VFIO_MEMMAP_HOLE_ALIGN) - base;
    GList *gaps = NULL;

    /* no memmap hole fixes a window that runs to the top: say so */
    error_setg(errp, "%s 0x%" PRIx64 "-0x%" PRIx64 " overlaps 0x%" PRIx64
               "-0x%" PRIx64 ", which the host IOMMU cannot map for this "
               "device%s", what, bad->lob, bad->upb, window->lob, window->upb,
               top ? "; guest memory must end below it" : "");

    range_inverse_array(usable, &gaps, 0, UINT64_MAX);
    error_append_hint(errp, "Unusable IOVA windows of the device:");
    for (GList *g = gaps; g; g = g->next) {
        error_append_hint(errp, " 0x%" PRIx64 "-0x%" PRIx64,
                          range_lob(g->data), range_upb(g->data));
    }
    error_append_hint(errp, "\n");
    g_list_free_full(gaps, g_free);
    if (!top && machine_has_memmap()) {
        error_append_hint(errp, "A memmap hole keeps guest RAM out of the "
                          "window, for example: -machine memmap.0.type=hole,"
                          "memmap.0.base=0x%" PRIx64 ",memmap.0.size=0x%"
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

    if (vbasedev->iova_check == VFIO_IOVA_CHECK_POLICY_RELAXED) {
        bcontainer->iova_relaxed = true;
    }
    if (!bcontainer->iova_ranges) {
        trace_vfio_memmap_check_skipped(vbasedev->name);
        return true;
    }

    ram = vfio_listener_guest_ram(bcontainer);
    fits = range_list_covers(bcontainer->iova_ranges, ram, &bad, &window);
    g_list_free_full(ram, g_free);
    trace_vfio_memmap_check(vbasedev->name, fits);
    if (fits) {
        return true;
    }

    describe_misfit(&err, "guest memory", bcontainer->iova_ranges,
                    &bad, &window);
    if (vbasedev->iova_check == VFIO_IOVA_CHECK_POLICY_RELAXED) {
        error_append_hint(&err, "Guest memory in these windows is not "
                          "DMA-mapped for the device (x-iova-check=relaxed)"
                          "\n");
        warn_reportf_err(err, VFIO_MSG_PREFIX, vbasedev->name);
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
    parts = range_list_clip(bcontainer->iova_ranges, &r);
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

    if (!bcontainer->iova_relaxed || !bcontainer->iova_ranges) {
        return vfio_container_dma_map(bcontainer, iova, size, vaddr,
                                      readonly, section->mr);
    }
    ret = dma_map_usable(bcontainer, iova, size, vaddr, readonly,
                         section->mr, true, &left);
    if (ret || !left) {
        return ret;
    }

    range_init_nofail(range.data, iova, size);
    range_list_covers(bcontainer->iova_ranges, &range, &bad, &window);
    trace_vfio_memmap_unmapped(memory_region_name(section->mr), iova,
                               iova + size - 1, window.lob, window.upb);
    /* at attach time, vfio_memmap_check() has said it already */
    if (bcontainer->initialized) {
        g_autofree char *devices = container_devices(bcontainer);

        warn_report(VFIO_MSG_PREFIX "%s at 0x%" HWADDR_PRIx "-0x%" HWADDR_PRIx
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

    if (!bcontainer->iova_relaxed || !bcontainer->iova_ranges || unmap_all) {
        return vfio_container_dma_unmap(bcontainer, iova, size, NULL,
                                        unmap_all);
    }
    return dma_map_usable(bcontainer, iova, size, NULL, false, NULL, false,
                          &left);
}

void vfio_memmap_reserve(VFIOContainer *bcontainer)
{
    g_autofree char *devices = NULL;
    g_autofree char *name = NULL;
    GList *windows = NULL;

    if (!current_machine) {
        return;
    }
    if (QLIST_EMPTY(&bcontainer->device_list) || bcontainer->iova_relaxed ||
        !bcontainer->iova_ranges || !maps_guest_memory(bcontainer)) {
        vfio_memmap_unreserve(bcontainer);
        return;
    }
    range_inverse_array(bcontainer->iova_ranges, &windows, 0, UINT64_MAX);
    devices = container_devices(bcontainer);
    name = g_strdup_printf("vfio %s", devices);
    memory_devices_set_reserved(current_machine, bcontainer, name,
                                "the host IOMMU cannot map it for DMA",
                                windows);
    g_list_free_full(windows, g_free);
}

void vfio_memmap_unreserve(VFIOContainer *bcontainer)
{
    if (current_machine) {
        memory_devices_set_reserved(current_machine, bcontainer, NULL, NULL,
                                    NULL);
    }
}
