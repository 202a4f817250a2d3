/*
 * VFIO: check guest memory against the host IOMMU's usable IOVA ranges
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_MEMMAP_CHECK_H
#define HW_VFIO_MEMMAP_CHECK_H

#include "qemu/range.h"

typedef struct VFIOContainerBase VFIOContainerBase;
typedef struct VFIODevice VFIODevice;

/* The vfio-pci "iova-check" property: an #IovaCheckPolicy */
extern const PropertyInfo vfio_prop_iova_check;

/**
 * vfio_memmap_check: check a new container before guest memory is
 * DMA-mapped into it
 * @bcontainer: the container, with its usable IOVA ranges known
 * @vbasedev: the device being attached
 * @errp: pointer to a NULL-initialized error object
 *
 * For a container whose DMA address space is system memory, every
 * range of guest memory that VFIO maps must lie inside the union of the
 * usable IOVA ranges that the kernel reported.  Skipped (with a trace
 * event) when the kernel reported none.
 *
 * Returns: false with @errp set when guest memory does not fit and the
 * device's iova-check policy is strict (the default); true otherwise,
 * after a warning under the relaxed policy.
 */
bool vfio_memmap_check(VFIOContainerBase *bcontainer, VFIODevice *vbasedev,
                       Error **errp);

/**
 * vfio_memmap_check_new_memory: check memory about to be plugged
 * @range: guest physical addresses of the new memory
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: false with @errp set when a VFIO container that maps system
 * memory could not map @range.
 */
bool vfio_memmap_check_new_memory(const Range *range, Error **errp);

#endif
