#!/usr/bin/env python3
"""Write the EDIDs the box loads into the TC358743 (run from the repository root).

    python hw/edid/make_edid.py          # writes hw/edid/appliance-pi4.bin and -pi5.bin
    python hw/edid/make_edid.py --check  # fails if the committed files are out of date

The modes, the CSI-2 lane budget and the encoding live in ``appliance/capture/edid.py``, which
the box also uses at run time (capture.edid = "" loads the same bytes). Check a file with
``edid-decode hw/edid/appliance-pi4.bin``; load one by hand with
``v4l2-ctl -d /dev/video0 --set-edid=file=hw/edid/appliance-pi4.bin --fix-edid-checksums``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from appliance.capture import edid  # noqa: E402

OUTPUTS = {
    "appliance-pi4.bin": (edid.PI4_MODES, "UYVY"),
    "appliance-pi5.bin": (edid.PI5_MODES, "RGB888"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, (modes, fmt) in OUTPUTS.items():
        data = edid.build(modes, fmt)
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
        else:
            path.write_bytes(data)
            sys.stdout.write(f"{path.name}: {', '.join(modes)}\n")
    if stale:
        sys.stderr.write(f"out of date: {', '.join(stale)} (run hw/edid/make_edid.py)\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
