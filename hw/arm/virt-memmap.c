/*
 * arm virt machine: user-supplied guest memory map
 *
 * Guest RAM stays one RAM region (one RAMBlock, so memory backends,
 * NUMA memdevs and migration are unchanged); each RAM piece of the map
 * is an alias into it.  Without a memmap the layout is the machine's
 * usual one: RAM at 1 GiB in one piece.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "system/address-spaces.h"
#include "system/ramblock.h"
#include "hw/acpi/aml-build.h"
#include "hw/arm/virt-memmap.h"
#include "hw/core/machine-memmap.h"
#include "hw/mem/memory-device.h"
#include "system/numa.h"

/*
 * Names of the board's regions, for messages and query-memmap.  Which
 * regions there are comes from the board's table: a region without a
 * name here is still kept free of RAM, as "region-N" (memmap-test fails
 * on such a name, so that it gets one).
 */
static const char *const virt_region_names[] = {
    [VIRT_FLASH] = "flash",
    [VIRT_GIC_DIST] = "gic-dist",
    [VIRT_GIC_CPU] = "gic-cpu",
    [VIRT_GIC_V2M] = "gic-v2m",
    [VIRT_GIC_HYP] = "gic-hyp",
    [VIRT_GIC_VCPU] = "gic-vcpu",
    [VIRT_GIC_ITS] = "gic-its",
    [VIRT_GIC_REDIST] = "gic-redist",
    [VIRT_SMMU] = "smmu",
    [VIRT_UART0] = "uart0",
    [VIRT_MMIO] = "virtio-mmio",
    [VIRT_RTC] = "rtc",
    [VIRT_FW_CFG] = "fw-cfg",
    [VIRT_PCIE_MMIO] = "pcie-mmio",
    [VIRT_PCIE_PIO] = "pcie-pio",
    [VIRT_PCIE_ECAM] = "pcie-ecam",
    [VIRT_PLATFORM_BUS] = "platform-bus",
    [VIRT_GPIO] = "gpio",
    [VIRT_UART1] = "uart1",
    [VIRT_SECURE_MEM] = "secure-mem",
    [VIRT_SECURE_GPIO] = "secure-gpio",
    [VIRT_PCDIMM_ACPI] = "pcdimm-acpi",
    [VIRT_ACPI_GED] = "acpi-ged",
    [VIRT_NVDIMM_ACPI] = "nvdimm-acpi",
    [VIRT_PVTIME] = "pvtime",
    [VIRT_ACPI_PCIHP] = "acpi-pcihp",
    [VIRT_HIGH_GIC_REDIST2] = "high-gic-redist",
    [VIRT_CXL_HOST] = "cxl-host",
    [VIRT_HIGH_PCIE_ECAM] = "high-pcie-ecam",
    [VIRT_HIGH_PCIE_MMIO] = "high-pcie-mmio",
};

/* a region appended to the board's table needs a name here */
QEMU_BUILD_BUG_ON(ARRAY_SIZE(virt_region_names) != VIRT_HIGH_PCIE_MMIO + 1);

/* The name of device region @i, for messages and query-memmap */
static char *virt_region_name(int i)
{
    if (i < ARRAY_SIZE(virt_region_names) && virt_region_names[i]) {
        return g_strdup(virt_region_names[i]);
    }
    return g_strdup_printf("region-%d", i);
}

/*
 * Size of device region @i as listed in the map: 0 for guest RAM, for
 * VIRT_CPUPERIPHS (the span of the GIC regions, which are listed
 * themselves), a region without size (an interrupt-only entry), or a
 * high region the machine disabled.
 */
static uint64_t virt_region_size(VirtMachineState *vms, int i)
{
    if (i == VIRT_MEM || i == VIRT_CPUPERIPHS ||
        !virt_memmap_region_enabled(vms, i)) {
        return 0;
    }
    if (i == VIRT_MMIO) {
        return vms->memmap[i].size * NUM_VIRTIO_TRANSPORTS;
    }
    return vms->memmap[i].size;
}

hwaddr virt_memmap_plan(VirtMachineState *vms, int pa_bits)
{
    MachineState *ms = MACHINE(vms);
    bool user = machine_memmap_is_set(ms);
    g_autofree MemMapFixedRegion *fixed =
        g_new0(MemMapFixedRegion, VIRT_LOWMEMMAP_LAST);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    MemMapConstraints c = {
        .ram_size = ms->ram_size,
        .default_base = vms->memmap[VIRT_MEM].base,
        .align = MEMMAP_MIN_ALIGN,
        .fixed = fixed,
    };
    const MemMapLayout *l;
    Error *err = NULL;
    int i;

    for (i = 0; i < VIRT_LOWMEMMAP_LAST; i++) {
        uint64_t size = virt_region_size(vms, i);

        if (size) {
            g_ptr_array_add(names, virt_region_name(i));
            fixed[c.nb_fixed].name = g_ptr_array_index(names, names->len - 1);
            range_init_nofail(&fixed[c.nb_fixed].range,
                              vms->memmap[i].base, size);
            c.nb_fixed++;
        }
    }
    if (user) {
        /* The defaults keep their historical checks and messages. */
        c.phys_bits = pa_bits;
        if (ms->kernel_filename) {
            c.min_boot_size = VIRT_MEMMAP_MIN_BOOT_SIZE;
        }
        if (vms->mte) {
            error_report("memmap cannot be combined with mte=on: MTE tag "
                         "memory follows the default RAM layout");
            exit(EXIT_FAILURE);
        }
    }

    l = machine_memmap_apply(ms, &c, &err);
    if (!l) {
        error_report_err(err);
        exit(EXIT_FAILURE);
    }
    return l->last + 1;
}

/* Largest page size of the backend(s) of the machine's RAM region. */
static uint64_t virt_ram_page_size(MachineState *ms)
{
    MemoryRegion *sub;
    uint64_t size = 0;

    if (ms->ram->ram_block) {
        return qemu_ram_pagesize(ms->ram->ram_block);
    }
    /* NUMA memdevs: a container with one backend per node */
    QTAILQ_FOREACH(sub, &ms->ram->subregions, subregions_link) {
        if (sub->ram_block) {
            size = MAX(size, qemu_ram_pagesize(sub->ram_block));
        }
    }
    return size;
}

void virt_memmap_bind(VirtMachineState *vms, bool firmware_loaded)
{
    MachineState *ms = MACHINE(vms);
    g_autofree uint64_t *node_mem = NULL;
    MemMapBinding b = { 0 };
    const MemMapPiece *low;
    Error *err = NULL;
    unsigned i;

    if (ms->numa_state && ms->numa_state->num_nodes) {
        b.nb_nodes = ms->numa_state->num_nodes;
        node_mem = g_new(uint64_t, b.nb_nodes);
        for (i = 0; i < b.nb_nodes; i++) {
            node_mem[i] = ms->numa_state->nodes[i].node_mem;
        }
        b.node_mem = node_mem;
    }
    if (!machine_memmap_is_set(ms)) {
        /* the default layout binds as QEMU always laid it out */
        machine_memmap_bind(ms, &b, &error_abort);
        return;
    }
    b.page_size = virt_ram_page_size(ms);
    if (!machine_memmap_bind(ms, &b, &err)) {
        error_report_err(err);
        exit(EXIT_FAILURE);
    }

    low = &g_array_index(machine_memmap_layout(ms)->ram, MemMapPiece, 0);
    if (firmware_loaded &&
        (low->range.lob != vms->memmap[VIRT_MEM].base ||
         range_size(&low->range) < VIRT_MEMMAP_MIN_FIRMWARE_SIZE)) {
        g_autofree char *need = size_to_str(VIRT_MEMMAP_MIN_FIRMWARE_SIZE);

        error_report("memmap: with firmware (-bios or pflash), the lowest "
                     "RAM piece must start at 0x%" HWADDR_PRIx " and be at "
                     "least %s, where the firmware expects its RAM; here it "
                     "is 0x%" PRIx64 "-0x%" PRIx64 ": keep holes out of "
                     "0x%" HWADDR_PRIx "-0x%" HWADDR_PRIx,
                     vms->memmap[VIRT_MEM].base, need, low->range.lob,
                     low->range.upb, vms->memmap[VIRT_MEM].base,
                     vms->memmap[VIRT_MEM].base +
                     VIRT_MEMMAP_MIN_FIRMWARE_SIZE - 1);
        exit(EXIT_FAILURE);
    }
}

void virt_memmap_record_devices(VirtMachineState *vms)
{
    MachineState *ms = MACHINE(vms);
    int i;

    for (i = 0; i < virt_memmap_nb_regions(); i++) {
        uint64_t size = virt_region_size(vms, i);
        g_autofree char *name = virt_region_name(i);

        if (!size) {
            continue;
        }
        machine_memmap_add_device(ms, name, vms->memmap[i].base, size);
    }
    if (ms->device_memory) {
        machine_memmap_add_device(ms, "device-memory",
                                  ms->device_memory->base,
                                  memory_region_size(&ms->device_memory->mr));
    }
}

void virt_memmap_map_ram(VirtMachineState *vms, MemoryRegion *sysmem)
{
    MachineState *ms = MACHINE(vms);

    /* with a map, the pieces go in at the end of machvirt_init() */
    if (!machine_memmap_is_set(ms)) {
        memory_region_add_subregion(sysmem, vms->memmap[VIRT_MEM].base,
                                    ms->ram);
    }
}

void virt_memmap_finish_init(VirtMachineState *vms, MemoryRegion *sysmem)
{
    MachineState *ms = MACHINE(vms);
    const MemMapLayout *l = machine_memmap_layout(ms);
    struct arm_boot_ram_range *ranges;

    if (!machine_memmap_is_set(ms)) {
        return;
    }

    /*
     * Every piece boundary that is not aligned to the dispatch tree's
     * levels makes each later flat view update dearer: map the pieces
     * once the board's own devices are in, in one update.
     */
    ranges = g_new(struct arm_boot_ram_range, l->ram->len);
    memory_region_transaction_begin();
    for (unsigned i = 0; i < l->ram->len; i++) {
        const MemMapPiece *p = &g_array_index(l->ram, MemMapPiece, i);
        MemoryRegion *alias = g_new(MemoryRegion, 1);
        g_autofree char *name = g_strdup_printf("mach-virt.ram-%u", i);

        memory_region_init_alias(alias, OBJECT(vms), name, ms->ram,
                                 p->offset, range_size(&p->range));
        memory_region_add_subregion(sysmem, p->range.lob, alias);
        ranges[i] = (struct arm_boot_ram_range) {
            .base = p->range.lob,
            .size = range_size(&p->range),
            .node = p->node,
        };
    }
    memory_region_transaction_commit();

    /* the boot loader puts the kernel, initrd and DTB in the lowest piece */
    vms->bootinfo.loader_start = ranges[0].base;
    vms->bootinfo.ram_size = ranges[0].size;
    vms->bootinfo.ram_ranges = ranges;
    vms->bootinfo.nb_ram_ranges = l->ram->len;
}

struct smbios_phys_mem_area *virt_memmap_smbios_areas(VirtMachineState *vms,
                                                      unsigned *count)
{
    GList *ranges = memmap_layout_ram_ranges(
        machine_memmap_layout(MACHINE(vms)));
    struct smbios_phys_mem_area *areas =
        g_new(struct smbios_phys_mem_area, g_list_length(ranges));
    unsigned n = 0;

    for (GList *it = ranges; it; it = it->next, n++) {
        areas[n].address = range_lob(it->data);
        areas[n].length = range_size(it->data);
    }
    g_list_free_full(ranges, g_free);
    *count = n;
    return areas;
}

void virt_memmap_build_srat(VirtMachineState *vms, GArray *table_data)
{
    const MemMapLayout *l = machine_memmap_layout(MACHINE(vms));

    for (unsigned i = 0; i < l->ram->len; i++) {
        const MemMapPiece *p = &g_array_index(l->ram, MemMapPiece, i);

        build_srat_memory(table_data, p->range.lob, range_size(&p->range),
                          p->node, MEM_AFFINITY_ENABLED);
    }
}
