/*
 * User-supplied guest memory map (-machine memmap=...)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_CORE_MEMMAP_H
#define HW_CORE_MEMMAP_H

#include "qapi/qapi-types-memmap.h"
#include "qemu/range.h"
#include "qemu/units.h"

/* Smallest alignment of memmap entries: the largest guest page size. */
#define MEMMAP_MIN_ALIGN (64 * KiB)

/*
 * Most entries a memmap may have.  Each entry adds at most one RAM
 * piece (a hole splits one piece in two), and every piece is a KVM
 * memory slot and a vhost memory region: 32 entries, 33 pieces, stay
 * within half of vhost-kernel's default budget of 64 regions, leaving
 * the rest to ROMs, flash and memory devices.  Backends with smaller
 * budgets (vhost-user without VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS
 * takes 8) refuse a map that exceeds theirs when they start.
 */
#define MEMMAP_MAX_ENTRIES 32

/**
 * MemMapFixedRegion: a device region of the machine at a fixed address
 * @name: name shown in error messages and by query-memmap
 * @range: addresses covered by the region
 */
typedef struct MemMapFixedRegion {
    const char *name;
    Range range;
} MemMapFixedRegion;

/**
 * MemMapConstraints: where a machine lets a memmap place guest RAM
 * @ram_size: total guest RAM (-m), which the RAM pieces add up to
 * @default_base: where guest RAM starts when no ram entry is given,
 *     and the lowest address that a ram entry may use: the machine's
 *     map below it is not a stable interface
 * @align: alignment of every entry's base and size, at least
 *     %MEMMAP_MIN_ALIGN
 * @phys_bits: width of the guest physical address space; 0 for no limit
 * @min_boot_size: smallest size of the lowest RAM piece; 0 for any
 * @fixed: device regions that guest RAM must not overlap
 * @nb_fixed: number of elements of @fixed
 *
 * Everything here is known when an accelerator sizes the guest physical
 * address space (KVM's kvm_type), before NUMA nodes and memory backends
 * exist: placement must not depend on them.
 */
typedef struct MemMapConstraints {
    uint64_t ram_size;
    uint64_t default_base;
    uint64_t align;
    unsigned phys_bits;
    uint64_t min_boot_size;
    const MemMapFixedRegion *fixed;
    size_t nb_fixed;
} MemMapConstraints;

/**
 * MemMapBinding: what guest RAM is bound to once the machine is built
 * @nb_nodes: number of NUMA nodes; 0 without NUMA
 * @node_mem: RAM of each NUMA node, @nb_nodes elements, adding up to the
 *     RAM size
 * @page_size: page size of the RAM backend(s) that the pieces alias;
 *     0 or at most %MEMMAP_MIN_ALIGN when it adds no rule
 */
typedef struct MemMapBinding {
    unsigned nb_nodes;
    const uint64_t *node_mem;
    uint64_t page_size;
} MemMapBinding;

/**
 * MemMapPiece: one contiguous piece of guest RAM
 * @range: guest physical addresses of the piece
 * @offset: offset of the piece in the machine's RAM region
 * @node: NUMA node of the piece, -1 without NUMA; before
 *     memmap_layout_bind(), the node its ram entry names, or -1
 */
typedef struct MemMapPiece {
    Range range;
    uint64_t offset;
    int node;
} MemMapPiece;

/**
 * MemMapLayout: the effective guest memory map
 * @ram: #MemMapPiece elements in address order
 * @holes: #Range elements in address order
 * @last: last address of the highest RAM piece or hole
 * @bound: memmap_layout_bind() succeeded
 */
typedef struct MemMapLayout {
    GArray *ram;
    GArray *holes;
    uint64_t last;
    bool bound;
} MemMapLayout;

/**
 * memmap_layout_new: validate a memmap and place guest RAM
 * @entries: the user's entries, in any order; NULL for none
 * @c: the machine's constraints
 * @errp: pointer to a NULL-initialized error object
 *
 * Without ram entries, @c->ram_size bytes of RAM flow upward from
 * @c->default_base around every hole and fixed region.  With ram
 * entries, RAM is placed exactly there, and the machine's RAM region is
 * laid out node by node (the node an entry names, none counting as 0),
 * in address order within a node.  NUMA nodes and backends are not
 * looked at: that is memmap_layout_bind(), which must follow.
 *
 * Returns: the layout, or NULL with @errp set naming the entry and the
 * rule it breaks.
 */
MemMapLayout *memmap_layout_new(const MemMapRangeList *entries,
                                const MemMapConstraints *c, Error **errp);

/**
 * memmap_layout_bind: bind placed guest RAM to NUMA nodes and backends
 * @l: a layout from memmap_layout_new() for @entries, not bound yet
 * @entries: the user's entries, as given to memmap_layout_new()
 * @b: the NUMA nodes and the RAM backends' page size
 * @errp: pointer to a NULL-initialized error object
 *
 * Checks the entries' nodes against the NUMA configuration and their
 * alignment against the backends' page size, assigns every piece its
 * node, splitting pieces at node boundaries when RAM flows around the
 * holes.  On failure @l is left unchanged.
 *
 * Returns: true on success; false with @errp set naming the entry or
 * piece and the rule it breaks.
 */
bool memmap_layout_bind(MemMapLayout *l, const MemMapRangeList *entries,
                        const MemMapBinding *b, Error **errp);

/**
 * memmap_layout_describe: the layout in one line, for messages
 *
 * Returns: e.g. "ram 0x40000000-0x4fffffff (offset 0x0, node 0), hole
 * 0x50000000-0x5fffffff, ...", in address order.
 */
char *memmap_layout_describe(const MemMapLayout *l);

void memmap_layout_free(MemMapLayout *layout);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MemMapLayout, memmap_layout_free)

/**
 * memmap_layout_ram_ranges: the guest RAM of @layout as a range list
 *
 * Returns: a GList of newly allocated #Range, sorted and with adjacent
 * pieces merged, as built by range_list_insert().
 */
GList *memmap_layout_ram_ranges(const MemMapLayout *layout);

/**
 * memmap_range_describe: describe an entry for messages
 * @index: position of the entry in the memmap property
 * @e: the entry
 *
 * Returns: e.g. "memmap.1 (type=hole, base=0xfee00000, size=0x100000)".
 */
char *memmap_range_describe(int index, const MemMapRange *e);

/**
 * memmap_parse_keyval: parse a memmap written as -machine options
 * @str: e.g. "memmap.0.type=hole,memmap.0.base=0xfee00000,memmap.0.size=1M"
 * @entries: set to the entries; NULL for an empty string
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: true on success.
 */
bool memmap_parse_keyval(const char *str, MemMapRangeList **entries,
                         Error **errp);

/**
 * memmap_device_memory_area: where the arm virt machine puts its device
 * memory area (memory hot-plug): from the first GiB boundary at or above
 * the end of RAM, holding what maxmem adds to RAM plus 1 GiB per slot for
 * the alignment of what is plugged.  The board and memmap-plan both take
 * the rule from here.
 * @ram_end: the address after guest RAM
 * @ram_size: guest RAM (-m size)
 * @maxram_size: guest RAM with what may be plugged (-m maxmem), at least
 *     @ram_size
 * @slots: memory slots (-m slots)
 * @base: set to the start of the area
 * @size: set to its size, 0 when there is none
 *
 * Returns: false when the area does not fit below 2^64 (@base and @size
 * are then what the arithmetic gives modulo 2^64).
 */
bool memmap_device_memory_area(uint64_t ram_end, uint64_t ram_size,
                               uint64_t maxram_size, uint64_t slots,
                               uint64_t *base, uint64_t *size);

#endif
