# Devices of the arm64 cross build for the KVM layer
# (harness/cross-build.sh), configured --without-default-devices: the
# virt board with what it selects and the pieces QEMU 10.2 needs to
# link it (see harness/ref-devices.mak), and what the inner QEMUs of
# tests/kvm/ add to it: pcie-root-port, vfio-pci and the iommufd
# backend.
CONFIG_ARM_VIRT=y
CONFIG_CXL=y
CONFIG_PXB=y
CONFIG_CXL_MEM_DEVICE=y
CONFIG_PCIE_PORT=y
CONFIG_VFIO_PCI=y
CONFIG_IOMMUFD=y
