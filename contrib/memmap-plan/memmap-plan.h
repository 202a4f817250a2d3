/*
 * memmap-plan: plan a guest memory map around host IOMMU reserved regions
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MEMMAP_PLAN_H
#define MEMMAP_PLAN_H

#include "qemu/range.h"

/* Exit status for bad input, as opposed to 1 for "does not fit". */
#define EXIT_BAD_INPUT 2

/* Types of IOMMU reserved regions, as the kernel names them in sysfs. */
typedef enum ResvType {
    RESV_DIRECT,
    RESV_DIRECT_RELAXABLE,
    RESV_RESERVED,
    RESV_MSI,
    RESV_SW_MSI,
    RESV__MAX
} ResvType;

extern const char *const resv_type_names[RESV__MAX];

/*
 * vfio type1 keeps guest RAM out of every reserved region except
 * direct-relaxable ones: see vfio_iommu_resv_exclude() in the kernel's
 * drivers/vfio/vfio_iommu_type1.c.
 */
static inline bool resv_type_unusable(ResvType type)
{
    return type != RESV_DIRECT_RELAXABLE;
}

/*
 * ResvRegion: one reserved region of an IOMMU group
 * @range: addresses covered, both ends inclusive
 * @type: kind of region
 * @line: line of the region in sysfs, for messages; 0 from a report
 */
typedef struct ResvRegion {
    Range range;
    ResvType type;
    unsigned line;
} ResvRegion;

/*
 * ReportDevice: one device of a host report
 * @bdf: the device's name in sysfs, a PCI address for PCI devices
 * @group: its IOMMU group
 * @first, @count: its reserved regions in the report's @regions; devices
 *     of one group may share them
 */
typedef struct ReportDevice {
    char *bdf;
    uint64_t group;
    unsigned first;
    unsigned count;
} ReportDevice;

/*
 * HostReport: what one host's IOMMU reserves for the devices to assign
 * @host: host name
 * @devices: #ReportDevice elements
 * @regions: #ResvRegion elements, each of one or more devices
 */
typedef struct HostReport {
    char *host;
    GArray *devices;
    GArray *regions;
} HostReport;

HostReport *host_report_from_sysfs(const char *root, const char *host,
                                   char **only, Error **errp);
HostReport *host_report_load(const char *path, Error **errp);
GString *host_report_to_json(const HostReport *report);
void host_report_free(HostReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostReport, host_report_free)

static inline const ResvRegion *device_regions(const HostReport *report,
                                               const ReportDevice *dev)
{
    return &g_array_index(report->regions, ResvRegion, dev->first);
}

/*
 * PlanOptions: what plan and check are asked for
 * @ram: guest RAM size
 * @base: where the machine places RAM without ram entries
 * @align: alignment of holes, a power of 2 of at least 64 KiB
 * @max_addr: RAM must end below this address; 0 for no limit
 * @explicit_ram: plan lists the RAM pieces as well as the holes, so that
 *     the map holds whatever the machine's RAM base
 * @maxmem: guest RAM with hot-pluggable memory (-m maxmem), at least @ram
 * @slots: memory slots (-m slots)
 * @jobs: threads that read the reports of plan, 1 to PLAN_MAX_JOBS
 */
typedef struct PlanOptions {
    uint64_t ram;
    uint64_t base;
    uint64_t align;
    uint64_t max_addr;
    bool explicit_ram;
    uint64_t maxmem;
    uint64_t slots;
    unsigned jobs;
} PlanOptions;

#define PLAN_MAX_JOBS 64

int plan_main(const PlanOptions *opts, bool json, char **reports);
int check_main(const PlanOptions *opts, const char *memmap, char **reports);

#endif
