#!/usr/bin/env bash
# `make image-smoke`: build a Debian bookworm root filesystem for this machine's architecture with
# debootstrap, apply the same app layer as the real image (layer/install.sh), and boot it under
# qemu (software emulation, no network device at all): an SD card with the root partition and free
# space, and a second disk standing in for the Raspberry Pi's FAT boot partition. The guest checks
# itself and reports on the serial console: the appliance service active (demo mode), the root
# read-only, the appdata partition made in the free space and mounted, the boot partition's
# appliance.toml applied (secrets moved), no failed unit.
# Downloads (Debian packages, Python wheels) are cached under image-build/.cache.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
cache="$project/image-build/.cache"
work="$cache/smoke"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
boot_timeout=${SMOKE_BOOT_TIMEOUT:-480}
[ "$(id -u)" = 0 ] || { echo "image-smoke needs root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$cache/debs" "$cache/wheels"

# 1. the base root filesystem, once (a tarball in the cache, named after its package list)
packages=systemd,systemd-sysv,udev,kmod,dbus,linux-image-amd64,initramfs-tools,python3,python3-venv,nftables,iproute2,fdisk
base="$cache/base-rootfs-$(echo "$packages" | sha256sum | cut -c1-12).tar"
if [ ! -f "$base" ]; then
  echo "image-smoke: debootstrap bookworm ($(dpkg --print-architecture))"
  rm -rf "$cache/base"
  debootstrap --variant=minbase --cache-dir="$cache/debs" \
    --include="$packages" \
    bookworm "$cache/base" "$mirror" > "$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log"; exit 1; }
  rm -f "$cache/base/var/cache/apt/archives/"*.deb
  tar -C "$cache/base" -cf "$base.new" . && mv "$base.new" "$base"
  rm -rf "$cache/base"
fi

# 2. the appliance's wheel and its dependencies' (this machine's Python is 3.11, like bookworm's)
"$project/.venv/bin/pip" wheel --quiet --prefer-binary --find-links "$cache/wheels" \
  -w "$cache/wheels" "${project}[box]" > /dev/null
rm -f "$cache/wheels"/appliance-*.whl.old

# 3. a fresh root from the base, as a Raspberry Pi OS image would be before our layer
rm -rf "$work" && mkdir -p "$work/rootfs"
tar -C "$work/rootfs" -xf "$base"
root="$work/rootfs"
printf 'LABEL=rootfs\t/\text4\tdefaults,noatime\t0\t1\nLABEL=BOOTFS\t/boot/firmware\tvfat\tdefaults,nofail\t0\t0\n' > "$root/etc/fstab"
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true; umount "$root/dev" 2>/dev/null || true' EXIT
"$project/image-build/layer/install.sh" "$root" "$cache/wheels"
umount "$root/proc"; umount "$root/dev"; trap - EXIT

# 4. what only the smoke test adds: demo mode (no HDMI bridge or GPIO in a VM) and the self-check
mkdir -p "$root/etc/systemd/system/appliance.service.d"
cat > "$root/etc/systemd/system/appliance.service.d/smoke.conf" <<'CONF'
[Service]
ExecStart=
ExecStart=/opt/appliance/bin/appliance run --demo --boot-config /boot/firmware/appliance.toml --state-dir /var/lib/appliance
SupplementaryGroups=
CONF
install -m 0755 "$here/guest-check.sh" "$root/usr/local/sbin/guest-check"
install -m 0644 "$here/guest-check.service" "$root/etc/systemd/system/guest-check.service"
systemctl --root="$root" enable guest-check.service > /dev/null 2>&1
kernel=$(find "$root/boot" -name "vmlinuz-*" | sort -V | tail -1)
initrd=$(find "$root/boot" -name "initrd.img-*" | sort -V | tail -1)

# 5. the disks: an SD card with the root partition and free space after it (first boot makes the
# appdata partition there), and the boot partition (FAT) as a disk of its own
rm -f "$work/disk.img" && truncate -s 4G "$work/disk.img"
echo 'start=2048, size=6291456, type=83' | sfdisk --quiet "$work/disk.img"
mkfs.ext4 -q -F -L rootfs -E offset=1048576 -d "$root" "$work/disk.img" 3G
cat > "$work/appliance.toml" <<'CONF'
[box]
name = "smoke-room"

[relay]
url = "https://relay.invalid"
token = "smoke-relay-token-0123456789"

[pairing]
password = "smoke pairing password"

# the HDMI path and the M2M encoder path over their fakes (no bridge or Pi in qemu)
[capture]
source = "hdmi-fake"

[encode]
encoder = "hardware-fake"
CONF
rm -f "$work/boot.img"
mkfs.vfat -C -n BOOTFS "$work/boot.img" 32768 > /dev/null
mcopy -i "$work/boot.img" "$work/appliance.toml" ::/appliance.toml

# 6. boot it: software emulation, no network device
echo "image-smoke: booting (software emulation, no network)"

timeout "$boot_timeout" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 2048 -smp 2 \
  -nographic -no-reboot -nic none \
  -kernel "$kernel" -initrd "$initrd" \
  -append "root=/dev/vda1 ro console=ttyS0 panic=-1 systemd.show_status=error" \
  -drive file="$work/disk.img",format=raw,if=virtio \
  -drive file="$work/boot.img",format=raw,if=virtio \
  > "$work/serial.log" 2>&1 || true

# 7. what the guest said, and what the boot partition holds now
result=$(grep -a "^SMOKE " "$work/serial.log" | tail -1 | tr -d '\r' || true)
echo "image-smoke: ${result:-no report from the guest}"
mcopy -o -i "$work/boot.img" ::/appliance.toml "$work/appliance.after.toml"
failed=0
for want in "appliance=active" "root=ro" "appdata=/dev/vda2" "firstboot=applied" "hostname=smoke-room" "backends=hdmi-fake+hardware-fake" "failed=0"; do
  case " $result " in *" $want "*) ;; *) echo "image-smoke: FAIL: expected $want" >&2; failed=1 ;; esac
done
if [ "$(sfdisk --dump "$work/disk.img" | grep -c '^/')" != 2 ]; then
  echo "image-smoke: FAIL: the appdata partition is not on the card" >&2; failed=1
fi
if grep -q "smoke pairing password\|smoke-relay-token" "$work/appliance.after.toml"; then
  echo "image-smoke: FAIL: a secret is still on the boot partition" >&2; failed=1
fi
if [ "$failed" != 0 ]; then
  grep -a -E "SMOKE|FAILED|appliance|Failed" "$work/serial.log" | tail -40 >&2
  exit 1
fi
echo "image-smoke: PASS"
