/*
 * memmap-plan: plan a guest memory map around host IOMMU reserved regions
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <locale.h>
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include "hw/core/memmap.h"
#include "memmap-plan.h"

static char *sysfs_root, *host, **devices;
static char *ram, *base, *align, *max_addr, *format, *memmap, *maxmem;
static char *slots, *jobs;
static char **args;
static gboolean explicit_ram;

static GOptionEntry entries[] = {
    { "sysfs-root", 0, 0, G_OPTION_ARG_FILENAME, &sysfs_root,
      "report: read sysfs under DIR (default: /sys)", "DIR" },
    { "host", 0, 0, G_OPTION_ARG_STRING, &host,
      "report: the host's name (default: this host's)", "NAME" },
    { "device", 0, 0, G_OPTION_ARG_STRING_ARRAY, &devices,
      "report: only this device; repeatable (default: all)", "BDF" },
    { "ram", 0, 0, G_OPTION_ARG_STRING, &ram,
      "plan, check: guest RAM size (-m)", "SIZE" },
    { "base", 0, 0, G_OPTION_ARG_STRING, &base,
      "plan, check: the machine's RAM base (default: 0x40000000)", "ADDR" },
    { "align", 0, 0, G_OPTION_ARG_STRING, &align,
      "plan, check: alignment of holes (default: 64K)", "SIZE" },
    { "max-addr", 0, 0, G_OPTION_ARG_STRING, &max_addr,
      "plan: guest RAM must end below ADDR (default: no limit)", "ADDR" },
    { "maxmem", 0, 0, G_OPTION_ARG_STRING, &maxmem,
      "plan, check: RAM with hot-pluggable memory, -m maxmem (default: "
      "--ram)", "SIZE" },
    { "slots", 0, 0, G_OPTION_ARG_STRING, &slots,
      "plan, check: memory slots, -m slots (default: 0)", "N" },
    { "format", 0, 0, G_OPTION_ARG_STRING, &format,
      "plan: output format (default: cmdline)", "cmdline|json" },
    { "explicit", 0, 0, G_OPTION_ARG_NONE, &explicit_ram,
      "plan: list the RAM pieces too (type=ram entries)", NULL },
    { "memmap", 0, 0, G_OPTION_ARG_STRING, &memmap,
      "check: the map, as memmap.N.KEY=VALUE,...", "FRAGMENT" },
    { "jobs", 0, 0, G_OPTION_ARG_STRING, &jobs,
      "plan: read reports in N threads (default: the CPUs, at most 8)",
      "N" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &args,
      NULL, NULL },
    { NULL }
};

static const char summary[] =
    "Plan a guest memory map (-machine virt,memmap...) that keeps guest RAM\n"
    "out of the IOMMU reserved regions of every host a guest may run on.\n"
    "\n"
    "Commands:\n"
    "  report          print this host's reserved regions as a JSON report\n"
    "  plan REPORT...  print a map whose RAM avoids the unusable regions\n"
    "                  of every device of every report ('-' is stdin)\n"
    "  check REPORT... list the devices whose unusable regions overlap the\n"
    "                  RAM of the --memmap map";

static const char description[] =
    "Exit status: 0 on success, 1 when no map fits (plan) or a device\n"
    "does not fit the map (check), 2 on bad input.";

static bool parse_size(const char *opt, const char *str, uint64_t *val)
{
    if (str && qemu_strtosz(str, NULL, val) < 0) {
        error_report("--%s: invalid size '%s'", opt, str);
        return false;
    }
    return true;
}

static bool plan_options(PlanOptions *o)
{
    *o = (PlanOptions) {
        .base = 0x40000000,
        .align = MEMMAP_MIN_ALIGN,
        .explicit_ram = explicit_ram,
    };

    if (!ram) {
        error_report("--ram is required");
        return false;
    }
    if (!parse_size("ram", ram, &o->ram) ||
        !parse_size("base", base, &o->base) ||
        !parse_size("align", align, &o->align) ||
        !parse_size("max-addr", max_addr, &o->max_addr)) {
        return false;
    }
    if (!o->ram) {
        error_report("--ram must not be 0");
        return false;
    }
    if (!is_power_of_2(o->align) || o->align < MEMMAP_MIN_ALIGN) {
        error_report("--align must be a power of 2 of at least 64 KiB");
        return false;
    }
    if (max_addr && o->max_addr <= o->base) {
        error_report("--max-addr must be above --base");
        return false;
    }
    if (!parse_size("maxmem", maxmem, &o->maxmem)) {
        return false;
    }
    if (!maxmem) {
        o->maxmem = o->ram;
    } else if (o->maxmem < o->ram) {
        error_report("--maxmem must be at least --ram");
        return false;
    }
    if (slots && !maxmem) {
        error_report("--slots needs --maxmem, as -m slots needs maxmem");
        return false;
    }
    /* beyond 8, reading is bound by the disk and the joining */
    o->jobs = MIN(g_get_num_processors(), 8);
    if (jobs && (qemu_strtoui(jobs, NULL, 10, &o->jobs) < 0 ||
                 !o->jobs || o->jobs > PLAN_MAX_JOBS)) {
        error_report("--jobs: '%s' is not a number from 1 to %d", jobs,
                     PLAN_MAX_JOBS);
        return false;
    }
    /* virt gives each slot 1 GiB of device memory for alignment */
    if (slots && (qemu_strtou64(slots, NULL, 10, &o->slots) < 0 ||
                  o->slots > (UINT64_MAX - (o->maxmem - o->ram)) / GiB)) {
        error_report("--slots: invalid number '%s'", slots);
        return false;
    }
    return true;
}

enum {
    REPORT = 1,
    PLAN = 2,
    CHECK = 4,
};

/* The commands that take each option of entries[] */
static const unsigned entry_commands[] = {
    REPORT, REPORT, REPORT, PLAN | CHECK, PLAN | CHECK, PLAN | CHECK, PLAN,
    PLAN | CHECK, PLAN | CHECK, PLAN, PLAN, CHECK, PLAN,
};
QEMU_BUILD_BUG_ON(ARRAY_SIZE(entry_commands) != ARRAY_SIZE(entries) - 2);

/* Whether option @e was given: a gboolean, or a pointer set */
static bool option_given(const GOptionEntry *e)
{
    if (e->arg == G_OPTION_ARG_NONE) {
        return *(gboolean *)e->arg_data;
    }
    return *(gpointer *)e->arg_data != NULL;
}

/* Refuse the options that are not @command's. */
static bool check_options(unsigned command, const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(entry_commands); i++) {
        if (option_given(&entries[i]) && !(entry_commands[i] & command)) {
            error_report("--%s is not an option of %s", entries[i].long_name,
                         name);
            return false;
        }
    }
    return true;
}

static int report_main(void)
{
    g_autoptr(HostReport) report = NULL;
    g_autoptr(GString) json = NULL;
    Error *err = NULL;

    report = host_report_from_sysfs(sysfs_root ?: "/sys",
                                    host ?: g_get_host_name(), devices,
                                    &err);
    if (!report) {
        error_report_err(err);
        return EXIT_BAD_INPUT;
    }
    if (!report->devices->len) {
        warn_report("no device is in an IOMMU group: is the IOMMU on?");
    }
    json = host_report_to_json(report);
    printf("%s\n", json->str);
    return EXIT_SUCCESS;
}

static int run(const char *name, char **reports)
{
    unsigned command = !strcmp(name, "report") ? REPORT :
                       !strcmp(name, "plan") ? PLAN :
                       !strcmp(name, "check") ? CHECK : 0;
    PlanOptions o;

    if (!command) {
        error_report("unknown command '%s'; try --help", name);
        return EXIT_BAD_INPUT;
    }
    if (!check_options(command, name)) {
        return EXIT_BAD_INPUT;
    }
    if (command == REPORT) {
        if (reports[0]) {
            error_report("report takes no arguments");
            return EXIT_BAD_INPUT;
        }
        return report_main();
    }
    if (!reports[0]) {
        error_report("%s needs at least one host report", name);
        return EXIT_BAD_INPUT;
    }
    if (!plan_options(&o)) {
        return EXIT_BAD_INPUT;
    }
    if (command == CHECK) {
        if (!memmap) {
            error_report("--memmap is required");
            return EXIT_BAD_INPUT;
        }
        return check_main(&o, memmap, reports);
    }
    if (format && strcmp(format, "cmdline") && strcmp(format, "json")) {
        error_report("--format must be cmdline or json");
        return EXIT_BAD_INPUT;
    }
    return plan_main(&o, format && !strcmp(format, "json"), reports);
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) context = NULL;
    g_autoptr(GError) gerr = NULL;

    error_init(argv[0]);
    /* GOption converts options from the locale's character set */
    setlocale(LC_CTYPE, "");
    context = g_option_context_new("COMMAND [REPORT...]");
    g_option_context_set_summary(context, summary);
    g_option_context_set_description(context, description);
    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &gerr)) {
        error_report("%s", gerr->message);
        return EXIT_BAD_INPUT;
    }
    if (!args) {
        error_report("no command given; try --help");
        return EXIT_BAD_INPUT;
    }
    return run(args[0], args + 1);
}
