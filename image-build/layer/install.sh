#!/usr/bin/env bash
# The appliance's layer, applied to a Debian/Raspberry Pi OS bookworm root filesystem. It does not
# depend on which builder runs it: pi-gen's stage (pi-gen/stage-appliance), rpi-image-gen, or the
# CI smoke test (smoke/run.sh) all call it the same way.
#
#   install.sh ROOTFS WHEELHOUSE
#
# ROOTFS: the target root; WHEELHOUSE: a folder with the appliance's wheel and its dependencies'
# wheels for the target's Python and architecture (installed offline). Run as root.
set -euo pipefail
rootfs=$(realpath "$1")
wheels=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)

in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

# -- files: units, firewall, journald, EDID loader ------------------------------------------------
cp -a "$here/files/." "$rootfs/"
install -m 0644 "$project/hw/edid/appliance-pi4.bin" "$rootfs/usr/lib/appliance/edid-pi4.bin"
install -m 0644 "$project/hw/edid/appliance-pi5.bin" "$rootfs/usr/lib/appliance/edid-pi5.bin"
install -D -m 0644 "$project/docs/technician.md" "$rootfs/usr/share/doc/appliance/technician.md"
mkdir -p "$rootfs/etc/NetworkManager/conf.d" "$rootfs/etc/systemd/system.conf.d"
cat > "$rootfs/etc/NetworkManager/conf.d/appliance.conf" <<'CONF'
# Wi-Fi written by first boot lives in the persistent partition (the root is read-only).
[keyfile]
path=/var/lib/appliance/network
CONF
cat > "$rootfs/etc/systemd/system.conf.d/appliance-watchdog.conf" <<'CONF'
# systemd feeds the SoC's hardware watchdog: a hung kernel reboots the box.
[Manager]
RuntimeWatchdogSec=15
RebootWatchdogSec=2min
CONF

# -- the service user -----------------------------------------------------------------------------
# audio: the sound cards (the bridge's I2S card, a USB line-in or speakerphone)
for group in video gpio audio; do
  in_root getent group "$group" >/dev/null || in_root groupadd --system "$group"
done
if ! in_root getent passwd appliance >/dev/null; then
  in_root useradd --system --home-dir /var/lib/appliance --no-create-home \
    --shell /usr/sbin/nologin --groups video,gpio,audio appliance
fi
in_root usermod --append --groups video,gpio,audio appliance  # an older image's user too
mkdir -p "$rootfs/var/lib/appliance" "$rootfs/boot/firmware"

# -- the application: a venv that also sees the system's picamera2/libcamera (Pi archive) --------
mkdir -p "$rootfs/tmp/appliance-wheels"
cp "$wheels"/*.whl "$rootfs/tmp/appliance-wheels/"
in_root python3 -m venv --system-site-packages /opt/appliance
in_root /opt/appliance/bin/pip install --quiet --no-index --no-cache-dir \
  --find-links /tmp/appliance-wheels "appliance[box]"
rm -rf "$rootfs/tmp/appliance-wheels"
in_root /opt/appliance/bin/appliance check-config /dev/null >/dev/null 2>&1 || true

# -- boot configuration (on a Raspberry Pi image) -------------------------------------------------
if [ -f "$rootfs/boot/firmware/config.txt" ]; then
  if ! grep -q "appliance: TC358743" "$rootfs/boot/firmware/config.txt"; then
    { echo; echo "# appliance: TC358743 bridge, CMA, watchdog"; cat "$project/image-build/boot/config.txt"; } \
      >> "$rootfs/boot/firmware/config.txt"
  fi
fi
if [ -f "$rootfs/boot/firmware/cmdline.txt" ]; then
  # Raspberry Pi OS grows the root over the whole card at first boot; the appliance keeps the
  # free space for its appdata partition (appliance-appdata.service) instead.
  sed -i 's| init=/usr/lib/raspberrypi-sys-mods/firstboot||' "$rootfs/boot/firmware/cmdline.txt"
  read -r -a words < "$project/image-build/boot/cmdline.txt"
  for word in "${words[@]}"; do
    grep -qw -- "$word" "$rootfs/boot/firmware/cmdline.txt" || sed -i "1s|\$| $word|" "$rootfs/boot/firmware/cmdline.txt"
  done
fi
if [ -d "$rootfs/boot/firmware" ] && [ ! -f "$rootfs/boot/firmware/appliance.toml" ]; then
  install -m 0644 "$project/image-build/boot/appliance.toml" "$rootfs/boot/firmware/appliance.toml"
fi

# -- read-only root: writable places in RAM, the persistent partition for keys and config --------
fstab="$rootfs/etc/fstab"
touch "$fstab"
# the root entry gets "ro"
awk '($2 == "/" && $4 !~ /(^|,)ro(,|$)/) { $4 = $4 ",ro" } { print }' OFS='\t' "$fstab" > "$fstab.new"
mv "$fstab.new" "$fstab"
# (the mount point must exist in the image: a read-only root cannot get it created at boot)
add() {
  mkdir -p "$rootfs$2"
  grep -q "[[:space:]]$2[[:space:]]" "$fstab" || printf '%s\t%s\t%s\t%s\t0\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$fstab"
}
add LABEL=appdata /var/lib/appliance ext4 defaults,noatime,nofail,x-systemd.device-timeout=90s 2
add tmpfs /tmp tmpfs mode=1777,nosuid,nodev 0
add tmpfs /var/tmp tmpfs mode=1777,nosuid,nodev 0
add tmpfs /var/log tmpfs mode=0755,nosuid,nodev 0
add tmpfs /var/lib/systemd tmpfs mode=0755 0
add tmpfs /var/lib/NetworkManager tmpfs mode=0700 0
add tmpfs /var/lib/dhcp tmpfs mode=0755 0
# a transient machine id on a read-only root
: > "$rootfs/etc/machine-id"

# -- units ----------------------------------------------------------------------------------------
systemctl --root="$rootfs" enable appliance-appdata.service appliance-firstboot.service \
  appliance-edid.service appliance.service nftables.service >/dev/null 2>&1
systemctl --root="$rootfs" mask apt-daily.timer apt-daily-upgrade.timer man-db.timer \
  e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
echo "appliance layer installed"
