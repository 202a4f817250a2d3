# Devices of the arm64 cross build of the KVM layer (harness/cross-build.sh),
# configured --without-default-devices: what the reference build has
# (harness/ref-devices.mak: the virt board with what it selects, and what
# QEMU 10.2's CXL code needs to link) and what the layer's inner QEMUs take
# with -device: vfio-pci (VFIO_PCI selects VFIO) on a pcie-root-port.
CONFIG_ARM_VIRT=y
CONFIG_CXL=y
CONFIG_PXB=y
CONFIG_CXL_MEM_DEVICE=y
CONFIG_PCIE_PORT=y
CONFIG_VFIO_PCI=y
