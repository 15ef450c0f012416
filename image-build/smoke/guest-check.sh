#!/bin/sh
# Runs inside the smoke-test guest once the appliance is up; reports on the serial console and
# powers off. Only the smoke image has it.
out=/dev/ttyS0
state=inactive
i=0
while [ $i -lt 150 ]; do
  state=$(systemctl is-active appliance.service)
  [ "$state" = active ] && break
  i=$((i + 1))
  sleep 2
done
sleep 5  # the watchdog has pinged, first boot is long done
state=$(systemctl is-active appliance.service)
root=rw
findmnt -no OPTIONS / | tr ',' '\n' | grep -qx ro && root=ro
firstboot=missing
if [ -s /var/lib/appliance/secrets.toml ] && grep -q "moved to the box's persistent storage" /boot/firmware/appliance.toml; then
  firstboot=applied
fi
appdata=$(findmnt -no SOURCE /var/lib/appliance || echo none)
[ "$(blkid -L appdata 2>/dev/null)" = "$appdata" ] || appdata="not-appdata:$appdata"
backends=other
journalctl -u appliance.service --no-pager -o cat | grep -q "source hdmi-fake, encoder hardware-fake" \
  && backends=hdmi-fake+hardware-fake
failed=$(systemctl list-units --state=failed --no-legend --plain | grep -c . || true)
{
  systemctl list-units --state=failed --no-legend --plain
  journalctl -u appliance.service -u appliance-firstboot.service --no-pager -n 30 -o cat
  echo "SMOKE appliance=$state root=$root appdata=$appdata firstboot=$firstboot hostname=$(hostname) backends=$backends failed=$failed"
} > "$out" 2>&1
systemctl poweroff
