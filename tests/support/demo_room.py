"""`appliance run --demo` with a room microphone that is the synthetic sound: the one fake, at the
hardware boundary (no capture card here; ALSA's userspace ``file`` capture is too slow to stand for
one, tests/integration/test_room_sound.py). Everything else, the speaker's ALSA path included, is
the demo's own. Used by tests/integration/test_privacy.py.

    python -m tests.support.demo_room run --demo --port 0 --config room.toml
"""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str]) -> int:
    from appliance import assembly
    from appliance.__main__ import main as appliance_main
    from appliance.sound.synthetic import SyntheticSound

    def microphone(device: str, *args: Any, **kwargs: Any) -> SyntheticSound:
        return SyntheticSound()

    assembly.AlsaSound = microphone  # type: ignore[assignment,misc]
    return int(appliance_main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
