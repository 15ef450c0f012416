"""The composition root: `appliance run`, `appliance doctor`, `appliance relay`, ...

(`appliance --help` shows :data:`DESCRIPTION` to the technician.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from . import __version__, allocator, configcheck, logs
from . import config as config_mod
from .errors import ApplianceError, ConfigError

logger = logging.getLogger("appliance")


#: What `appliance --help` tells the technician.
DESCRIPTION = (
    "The box that shares an ultrasound scanner's picture live with one remote viewer's phone "
    "(docs/technician.md)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run the box (on the box: --boot-config; on any computer: --demo)"
    )
    run.add_argument("--config", type=Path, help="appliance.toml (default: built-in defaults)")
    run.add_argument(
        "--demo",
        action="store_true",
        help="synthetic scanner, terminal button and LED, everything on 127.0.0.1",
    )
    run.add_argument(
        "--lan", action="store_true", help="with --demo: offer the viewer page on the LAN"
    )
    run.add_argument(
        "--qr",
        action="store_true",
        help="with --demo: print the viewer link's QR code even when the output is not a "
        "terminal (in plain characters)",
    )
    run.add_argument("--port", type=int, help="the web server's port (overrides the config)")
    run.add_argument(
        "--source",
        choices=[k.value for k in config_mod.SourceKind],
        help="the capture backend (overrides capture.source), e.g. hdmi-fake",
    )
    run.add_argument(
        "--encoder",
        choices=[k.value for k in config_mod.EncoderKind],
        help="the encoder backend (overrides encode.encoder), e.g. hardware-fake",
    )
    run.add_argument(
        "--boot-config",
        type=Path,
        help="on the box: appliance.toml on the boot partition (secrets come from --state-dir)",
    )
    run.add_argument(
        "--state-dir", type=Path, help="on the box: the persistent partition's appliance folder"
    )
    check = sub.add_parser(
        "check-config",
        help="check an appliance.toml on any computer: its problems (exit 2 on a problem) and "
        "warnings, each with its line and the fix",
    )
    check.add_argument("config", type=Path, help="the appliance.toml to check")
    sub.add_parser(
        "relay", help="run the clinic's self-hosted relay (docs/relay.md)", add_help=False
    )
    sub.add_parser(
        "firstboot",
        help="on the box, at every boot: take appliance.toml's secrets off the boot partition, "
        "make the box's keys",
        add_help=False,
    )
    sub.add_parser(
        "doctor",
        help="check the box: settings, HDMI bridge and signal, encoder, pins, clock, relay, "
        "TURN, temperature...; each line OK, WARN or FAIL with the fix",
        add_help=False,
    )
    return parser


def _report(path: Path, report: configcheck.Report) -> int:
    """check-config's output: the problems (exit 2) or "valid", then every warning."""
    count = len(report.warnings)
    many = f"{count} warning{'s' if count != 1 else ''}"
    out = sys.stdout if report.ok else sys.stderr
    if not report.ok:
        print(f"appliance: {path}: {report.fault}", file=sys.stderr)
        if count:
            print(f"and {many}:", file=sys.stderr)
    elif count:
        print(f"{path}: valid (the box runs with it), with {many}:")
    else:
        print(f"{path}: valid")
    for warning in report.warnings:
        print(f"- {warning.detail}\n  fix: {warning.fix}", file=out)
    return 0 if report.ok else 2


def load_config(args: argparse.Namespace, password: str = "") -> config_mod.Config:
    from .demo import DEMO_BOUNDARY, DEMO_OVERRIDES

    backends: dict[str, Any] = {}
    if getattr(args, "source", None):
        backends["capture"] = {"source": args.source}
    if getattr(args, "encoder", None):
        backends["encode"] = {"encoder": args.encoder}
    if getattr(args, "boot_config", None) is not None:
        from .firstboot import STATE_DIR, box_report

        report, args.fault = box_report(args.boot_config, args.state_dir or STATE_DIR)
        cfg, args.warnings = report.config, report.warnings
        if args.demo:  # the box's own config and backends, the demo's pins (image-smoke)
            cfg = cfg.replace(**DEMO_BOUNDARY)
        return cfg.replace(**backends) if backends else cfg
    overrides: dict[str, Any] = {}
    if args.demo:
        from .passwords import hash_password

        overrides = config_mod.merge(overrides, DEMO_OVERRIDES)
        # The demo's pairing password: random, printed in its terminal only, hashed in memory.
        overrides["pairing"] = {"password": "", "password_hash": hash_password(password)}
        if args.lan:
            overrides = config_mod.merge(
                overrides,
                {
                    "web": {"host": "0.0.0.0", "tls": True},  # noqa: S104 - asked for with --lan
                    "stream": {"ice_addresses": []},
                },
            )
    if args.port is not None:
        overrides = config_mod.merge(overrides, {"web": {"port": args.port}})
    # The one validator, as check-config, doctor and first boot: the same problems stop the box,
    # the same warnings are logged at start.
    text, data = configcheck.read(args.config) if args.config is not None else ("", {})
    report = configcheck.check(config_mod.merge(data, config_mod.merge(overrides, backends)), text)
    if not report.ok:
        raise ConfigError(report.fault)
    args.warnings = report.warnings
    return report.config


async def _run(args: argparse.Namespace, cfg: config_mod.Config, password: str = "") -> None:
    from .box import Box, Seams
    from .demo import Terminal, lan_address, print_banner, print_session

    loop = asyncio.get_running_loop()
    lan = (lan_address(),) if args.demo and args.lan else ()
    seams = Seams(clock_ok=(lambda: True) if args.demo else None)  # the demo is exempt
    box = await Box.build(
        cfg,
        seams,
        lan_hosts=lan,
        fault=getattr(args, "fault", ""),
        warnings=getattr(args, "warnings", ()),
    )
    terminal: Terminal | None = None

    def started(box: Box) -> None:
        nonlocal terminal
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, box.stop)
        if args.demo:
            terminal = Terminal(box.panel, cfg.panel.hold_time)
            # every other line is written above the terminal's LED line, log lines too
            out = terminal.above(sys.stdout)
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(terminal.above(handler.stream))
            box.core.add_listener(terminal.state_changed)
            box.core.add_session_listener(
                lambda session: print_session(box, out, qr=args.qr or None)
            )
            print_banner(box.pairing_url, password, out)
            terminal.start()

    try:
        await box.run(open_session=args.demo, started=started)
    finally:
        if terminal is not None:
            terminal.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Subcommands with parsers of their own get the rest of the command line as it is.
    if argv[:1] == ["doctor"]:
        from .doctor import main as doctor_main

        return doctor_main(argv[1:])
    if argv[:1] == ["firstboot"]:
        from .firstboot import main as firstboot_main

        return firstboot_main(argv[1:])
    if argv[:1] == ["relay"]:
        from .relay.__main__ import main as relay_main

        return relay_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            from .configcheck import check_file

            report = check_file(args.config)
            return _report(args.config, report)
        password = secrets.token_urlsafe(9) if getattr(args, "demo", False) else ""
        cfg = load_config(args, password)
    except ConfigError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 2
    logs.setup(cfg.log.level)
    if args.command == "run":
        # libx264 asks for huge pages for its buffers; inside malloc's heaps they outlive the
        # buffers and the kernel refills them: RSS stepped up through a long exam
        # (docs/reliability.md, "Memory")
        allocator.disable_transparent_huge_pages()
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_run(args, cfg, password))
        except ApplianceError as exc:
            logger.error("%s", exc)
            return 1
        print("\nstopped", flush=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
