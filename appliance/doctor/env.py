"""What the checks look at (:class:`DoctorEnv`) and what they report (:class:`CheckResult`)."""

from __future__ import annotations

import enum
import ssl
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import board as board_mod
from ..board import Board, under
from ..capture.bridge import Bridge, BridgeNodes
from ..config import Config
from ..configwarnings import ConfigWarning
from ..sound.hdmi import AudioControls

DEFAULT_CONFIG = "/boot/firmware/appliance.toml"
TLS_CERT_NAME = "tls.crt"  # in box.state_dir
CMA_WANTED_KB = 128 * 1024
MEM_FAIL_KB, MEM_WARN_KB = 100 * 1024, 300 * 1024
TEMP_WARN, TEMP_FAIL = 70.0, 80.0
#: The GPIO consumer names gpiozero's pin libraries give (lgpio: "lg").
OUR_GPIO_CONSUMERS = ("lg", "gpiozero", "appliance")


class CheckStatus(enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{self.status.value:<4}  {self.name}: {self.detail}"
        if self.fix and self.status is not CheckStatus.OK:
            line += f"\n      fix: {self.fix}"
        return line


@dataclass
class DoctorEnv:
    """What the checks look at. Defaults describe the real box."""

    config: Config
    config_error: str = ""
    root: Path = Path("/")
    board: Board | None = None
    #: Trust store for the relay's HTTPS (None: the system's).
    ssl_context: ssl.SSLContext | None = None
    cert_path: Path | None = None
    open_bridge: Callable[[BridgeNodes], Bridge] | None = None
    #: The bridge's audio controls (None: the real ones, through the bridge's V4L2 node).
    audio_controls: AudioControls | None = None
    timeout: float = 3.0
    #: The config's warnings (appliance.configcheck): each one a WARN line.
    config_warnings: Sequence[ConfigWarning] = ()
    _board: Board | None = field(default=None, init=False, repr=False)

    def path(self, p: str) -> Path:
        return under(self.root, p)

    def command(self, name: str) -> str:
        return name if self.root == Path("/") else str(self.path(f"usr/bin/{name}"))

    def run(self, argv: Sequence[str]) -> tuple[int, str]:
        """Run a command; (127, "") when it is not installed."""
        try:
            done = subprocess.run(
                [self.command(argv[0]), *argv[1:]],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (FileNotFoundError, PermissionError):
            return 127, ""
        except subprocess.TimeoutExpired:
            return 124, ""
        return done.returncode, done.stdout

    def read(self, p: str) -> str | None:
        try:
            return self.path(p).read_text()
        except OSError:
            return None

    @property
    def the_board(self) -> Board:
        if self._board is None:
            self._board = self.board if self.board is not None else board_mod.detect(self.root)
        return self._board

    @property
    def on_pi(self) -> bool:
        return self.the_board is not Board.OTHER


Check = Callable[[DoctorEnv], list[CheckResult]]
OK, WARN, FAIL = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL
