/*
 * User-supplied guest memory map: the machine side (the memmap machine
 * property, query-memmap, migration), see hw/core/machine-memmap.c
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_CORE_MACHINE_MEMMAP_H
#define HW_CORE_MACHINE_MEMMAP_H

#include "hw/boards.h"
#include "hw/core/memmap.h"

typedef struct MachineMemMap MachineMemMap;

/**
 * machine_class_allow_memmap: give a machine type the memmap property
 * @mc: the machine class, from its class_init
 *
 * Sets @mc->memmap_supported and adds the "memmap" property to the
 * class, so that it exists (and "-machine TYPE,help" lists it) only on
 * machines that use it; elsewhere setting it is QEMU's usual error for
 * an unknown property.
 */
void machine_class_allow_memmap(MachineClass *mc);

/* Whether the user gave a memmap */
bool machine_memmap_is_set(MachineState *ms);

/**
 * machine_memmap_apply: place guest RAM for the machine
 * @ms: the machine
 * @c: its constraints
 * @errp: pointer to a NULL-initialized error object
 *
 * Runs memmap_layout_new() on the user's entries (none: the machine's
 * default layout) and keeps the result as the machine's layout.
 *
 * Returns: the layout, or NULL with @errp set.
 */
const MemMapLayout *machine_memmap_apply(MachineState *ms,
                                         const MemMapConstraints *c,
                                         Error **errp);

/* memmap_layout_bind() on the machine's layout */
bool machine_memmap_bind(MachineState *ms, const MemMapBinding *b,
                         Error **errp);

/* The machine's layout; NULL before machine_memmap_apply() */
const MemMapLayout *machine_memmap_layout(MachineState *ms);

/* Record a device region of the machine, for query-memmap */
void machine_memmap_add_device(MachineState *ms, const char *name,
                               uint64_t base, uint64_t size);

/* Free the machine's memmap state, from machine_finalize() */
void machine_memmap_free(MachineState *ms);

#endif
