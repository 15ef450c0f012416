"""`appliance doctor`: the box's check-up; each line OK, WARN or FAIL, with the fix.

Every path (sysfs, procfs, /dev) is read below ``DoctorEnv.root`` and every external command
(``timedatectl``, ``vcgencmd``, ``gpioinfo``) is looked up there too, so tests run the checks
against a fake tree. The exit status is 0 only when nothing fails. The output holds no secret:
the relay token is used, never shown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import config as config_mod
from ..board import under
from ..configcheck import Report, check_file
from ..firstboot import STATE_DIR, read_secrets
from .audio import check_audio
from .checks import (
    check_board,
    check_bridge,
    check_certificate,
    check_clock,
    check_cma,
    check_config,
    check_encoder,
    check_gpio,
    check_memory,
    check_relay,
    check_root_ro,
    check_thermal,
    check_turn,
)
from .env import DEFAULT_CONFIG, FAIL, OK, WARN, Check, CheckResult, CheckStatus, DoctorEnv

__all__ = [
    "CHECKS",
    "FAIL",
    "OK",
    "WARN",
    "CheckResult",
    "DoctorEnv",
    "CheckStatus",
    "check_config",
    "main",
    "run_checks",
]

CHECKS: tuple[Check, ...] = (
    check_config,
    check_board,
    check_bridge,
    check_audio,
    check_encoder,
    check_cma,
    check_gpio,
    check_clock,
    check_relay,
    check_turn,
    check_root_ro,
    check_memory,
    check_thermal,
    check_certificate,
)


def run_checks(env: DoctorEnv) -> list[CheckResult]:
    """Run every check; a check that crashes is reported as FAIL, never hides the others."""
    results: list[CheckResult] = []
    for check in CHECKS:
        try:
            results += check(env)
        except Exception as exc:  # noqa: BLE001 - the report must go on
            name = getattr(check, "__name__", "check").removeprefix("check_")
            results.append(CheckResult(name, FAIL, f"check crashed: {exc!r}", "report this bug"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appliance doctor", description="check the box")
    parser.add_argument("--config", type=Path, default=None, help=f"default: {DEFAULT_CONFIG}")
    parser.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = Path(DEFAULT_CONFIG)
    if path is None:
        report = Report(config_mod.load_dict({}))  # no file here: the defaults, nothing to check
    else:
        # the one validator (check-config's and first boot's), with the secrets first boot
        # stored (the password it moved off the boot partition)
        stored = under(args.root, str(STATE_DIR))
        report = check_file(path, read_secrets(stored) if stored.is_dir() else None)
    env = DoctorEnv(report.config, report.fault, args.root)
    env.config_warnings = report.warnings
    results = run_checks(env)
    for result in results:
        sys.stdout.write(f"{result}\n")
    failed = sum(r.status is FAIL for r in results)
    warned = sum(r.status is WARN for r in results)
    sys.stdout.write(f"\n{failed} failed, {warned} warnings\n")
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
