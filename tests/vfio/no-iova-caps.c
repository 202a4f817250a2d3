/*
 * LD_PRELOAD shim for the nested VFIO test: the type1 IOMMU as kernels
 * before 5.4 answer VFIO_IOMMU_GET_INFO, without capabilities.
 *
 * Linux 5.4 added the capability chain of VFIO_IOMMU_GET_INFO
 * (VFIO_IOMMU_INFO_CAPS) with its first member, the usable IOVA ranges.
 * No kernel that Debian's archive holds predates it, so the nested guest
 * runs its own 6.1 kernel and this shim takes the chain out of the
 * reply: QEMU then learns no IOVA ranges, as on such a kernel, and its
 * memmap check has nothing to check against.  Every other ioctl, and
 * everything else in the reply, is the kernel's own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

typedef int IoctlFunc(int fd, unsigned long request, ...);

int ioctl(int fd, unsigned long request, ...)
{
    static IoctlFunc *real;
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (!real) {
        real = (IoctlFunc *)dlsym(RTLD_NEXT, "ioctl");
    }
    ret = real(fd, request, arg);
    if (ret == 0 && request == VFIO_IOMMU_GET_INFO) {
        struct vfio_iommu_type1_info *info = arg;

        info->flags &= ~VFIO_IOMMU_INFO_CAPS;
        info->cap_offset = 0;
    }
    return ret;
}
