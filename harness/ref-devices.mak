# Devices of the reference and sanitizer builds (harness/ref-qemu.sh,
# harness/san-build.sh), configured --without-default-devices: the virt
# board with what it selects, which is what their tests run.  QEMU
# 10.2's own minimal.mak does not link that way: virt selects ACPI_CXL,
# whose code calls into hw/cxl, and CXL, the CXL type 3 device and the
# PCIe root port CXL's root port derives from are only "default y".
CONFIG_ARM_VIRT=y
CONFIG_CXL=y
CONFIG_PXB=y
CONFIG_CXL_MEM_DEVICE=y
CONFIG_PCIE_PORT=y
