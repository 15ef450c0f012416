#!/bin/bash -e
# pi-gen: apply the appliance layer (the same script the CI smoke test applies).
# APPLIANCE_SRC: this repository; APPLIANCE_WHEELS: arm64 wheels for Python 3.11 (README).
"${APPLIANCE_SRC:?set APPLIANCE_SRC to the appliance repository}/image-build/layer/install.sh" \
  "${ROOTFS_DIR}" "${APPLIANCE_WHEELS:?set APPLIANCE_WHEELS to the arm64 wheel folder}"
# No password for the technician's account: SSH keys only, and only when given.
on_chroot << CHROOT
passwd --lock technician || true
CHROOT
