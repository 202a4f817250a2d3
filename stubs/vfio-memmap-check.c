/*
 * Stub for builds without VFIO: no device constrains new memory
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/vfio/memmap-check.h"

bool vfio_memmap_check_new_memory(const Range *range, Error **errp)
{
    return true;
}
