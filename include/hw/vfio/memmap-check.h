/*
 * VFIO: check guest memory against the host IOMMU's usable IOVA ranges
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_MEMMAP_CHECK_H
#define HW_VFIO_MEMMAP_CHECK_H

#include "qemu/range.h"
#include "exec/hwaddr.h"

typedef struct VFIOContainer VFIOContainer;
typedef struct VFIODevice VFIODevice;

/* The vfio-pci "x-iova-check" property: an #VfioIovaCheckPolicy */
extern const PropertyInfo vfio_prop_iova_check;

/**
 * vfio_memmap_check: check a new container before guest memory is
 * DMA-mapped into it
 * @bcontainer: the container, with its usable IOVA ranges known
 * @vbasedev: the device being attached
 * @errp: pointer to a NULL-initialized error object
 *
 * Every range of guest memory that the container's memory listener
 * will map one to one (vfio_listener_guest_ram()) must lie inside the
 * union of the usable IOVA ranges that the kernel reported, the
 * intersection over the container's groups.  Skipped (with a trace
 * event) when the kernel reported none.  A device with the relaxed
 * policy makes its container map only what fits from then on.
 *
 * Returns: false with @errp set when guest memory does not fit and the
 * device's policy is strict (the default); true otherwise, after a
 * warning under the relaxed policy.
 */
bool vfio_memmap_check(VFIOContainer *bcontainer, VFIODevice *vbasedev,
                       Error **errp);

/**
 * vfio_memmap_dma_map: DMA-map what a container can take of a section
 * @bcontainer: the container
 * @section: the memory region section being mapped
 * @iova: first address to map
 * @size: number of bytes to map
 * @vaddr: host address of @iova
 * @readonly: map read-only
 *
 * The memory listener's mapping of RAM.  In a container with a device
 * of the relaxed policy, only the parts of the range that lie inside the
 * container's usable IOVA ranges are mapped; the rest is left unmapped,
 * with a trace event and, once the container is set up, a warning,
 * rather than failing the map and stopping the VM.  Other containers map
 * the whole range, as vfio_container_dma_map() does.
 *
 * Returns: 0 or the first error of vfio_container_dma_map().
 */
int vfio_memmap_dma_map(VFIOContainer *bcontainer,
                        MemoryRegionSection *section, hwaddr iova,
                        hwaddr size, void *vaddr, bool readonly);

/**
 * vfio_memmap_dma_unmap: undo vfio_memmap_dma_map()
 * @bcontainer: the container
 * @iova: first address to unmap
 * @size: number of bytes to unmap
 * @unmap_all: unmap the whole address space (@iova and @size are 0)
 *
 * Returns: 0 or the first error of vfio_container_dma_unmap().
 */
int vfio_memmap_dma_unmap(VFIOContainer *bcontainer, hwaddr iova,
                          hwaddr size, bool unmap_all);

/**
 * vfio_memmap_reserve: keep memory devices out of what a container
 * cannot map
 * @bcontainer: the container, after its devices or usable IOVA ranges
 *     changed
 *
 * A container whose devices all have the strict policy, and that maps
 * guest memory one to one, reserves the complement of its usable IOVA
 * ranges with memory_devices_set_reserved(), in the name of its devices;
 * other containers reserve nothing.
 */
void vfio_memmap_reserve(VFIOContainer *bcontainer);

/**
 * vfio_memmap_unreserve: drop what a container reserved
 * @bcontainer: the container, going away
 */
void vfio_memmap_unreserve(VFIOContainer *bcontainer);

#endif
