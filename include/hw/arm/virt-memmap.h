/*
 * arm virt machine: user-supplied guest memory map
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_ARM_VIRT_MEMMAP_H
#define HW_ARM_VIRT_MEMMAP_H

#include "hw/arm/virt.h"
#include "hw/core/machine-memmap.h"
#include "hw/firmware/smbios.h"

/*
 * Smallest lowest RAM piece when a kernel is loaded directly: it holds
 * the kernel, the initrd and the device tree.
 */
#define VIRT_MEMMAP_MIN_BOOT_SIZE (64 * MiB)

/*
 * Smallest lowest RAM piece when firmware runs (-bios, pflash): edk2's
 * ArmVirtQemu fixes its RAM base (PcdSystemMemoryBase) at the machine's
 * default RAM base, and needs this much RAM there to boot.
 */
#define VIRT_MEMMAP_MIN_FIRMWARE_SIZE (128 * MiB)

/*
 * The board's own memory map table (hw/arm/virt.c): the number of
 * regions in vms->memmap, and whether region @index is in use (a high
 * region can be disabled).
 */
unsigned virt_memmap_nb_regions(void);
bool virt_memmap_region_enabled(VirtMachineState *vms, int index);

/**
 * virt_memmap_plan: validate the memmap and place guest RAM
 * @vms: the machine, with its fixed regions in @vms->memmap
 * @pa_bits: width of the guest physical address space
 *
 * The place phase: it looks only at the entries, -m, the machine's
 * fixed regions and @pa_bits, so that KVM and HVF can run it while they
 * size the guest physical address space, before NUMA and memory backends
 * exist.  virt_memmap_bind() completes it in machvirt_init(), for every
 * accelerator.  Exits with status 1 and a message naming the bad entry
 * when the map is refused.
 *
 * Returns: the first address above all guest RAM and holes, where the
 * floating regions (device memory, high GIC, ECAM, PCIe MMIO) begin.
 */
hwaddr virt_memmap_plan(VirtMachineState *vms, int pa_bits);

/**
 * virt_memmap_bind: bind the placed RAM to NUMA nodes and backends
 * @vms: the machine, its NUMA configuration complete and ms->ram made
 * @firmware_loaded: firmware (-bios or pflash) runs in the guest
 *
 * The bind phase, in machvirt_init() for every accelerator, before guest
 * RAM is mapped: NUMA nodes of the pieces, the RAM backends' page size,
 * and the firmware's RAM base.  Exits with status 1 and a message naming
 * the entry or piece and the rule when the map is refused.
 */
void virt_memmap_bind(VirtMachineState *vms, bool firmware_loaded);

/* Record the machine's device regions for query-memmap. */
void virt_memmap_record_devices(VirtMachineState *vms);

/* Map guest RAM into @sysmem where the machine always did, without a map */
void virt_memmap_map_ram(VirtMachineState *vms, MemoryRegion *sysmem);

/**
 * virt_memmap_finish_init: map the RAM pieces, point the boot loader
 * at the lowest one
 * @vms: the machine, its devices created
 * @sysmem: system memory
 *
 * With a map, at the end of machvirt_init(), before the kernel is
 * loaded: one alias per RAM piece, in one memory transaction.  Does
 * nothing without a map.
 */
void virt_memmap_finish_init(VirtMachineState *vms, MemoryRegion *sysmem);

/**
 * virt_memmap_smbios_areas: physical memory areas for SMBIOS
 * @vms: the machine
 * @count: set to the number of areas
 *
 * Returns: a newly allocated array of the address-contiguous runs of
 * guest RAM.
 */
struct smbios_phys_mem_area *virt_memmap_smbios_areas(VirtMachineState *vms,
                                                      unsigned *count);

/* Append the SRAT memory affinity structures of guest RAM. */
void virt_memmap_build_srat(VirtMachineState *vms, GArray *table_data);

#endif
