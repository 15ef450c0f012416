"""The composition root: `appliance run`, `appliance doctor`, `appliance relay`, ..."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from . import __version__, logs
from . import config as config_mod
from .errors import ApplianceError, ConfigError

logger = logging.getLogger("appliance")

DEMO_OVERRIDES: dict[str, Any] = {
    "capture": {"source": "synthetic"},
    "panel": {"pin_factory": "mock"},
    "stream": {"ice_addresses": ["127.0.0.1"], "ice_servers": []},
    "web": {"host": "127.0.0.1"},
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the appliance")
    run.add_argument("--config", type=Path, help="appliance.toml (default: built-in defaults)")
    run.add_argument(
        "--demo",
        action="store_true",
        help="synthetic scanner, terminal button and LED, everything on 127.0.0.1",
    )
    run.add_argument(
        "--lan", action="store_true", help="with --demo: offer the viewer page on the LAN"
    )
    run.add_argument("--port", type=int, help="the web server's port (overrides the config)")
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config", type=Path)
    sub.add_parser(
        "doctor",
        help="check the box: bridge, EDID, signal, encoder, pins, clock, relay, ...",
        add_help=False,
    )
    return parser


def load_config(args: argparse.Namespace) -> config_mod.Config:
    overrides: dict[str, Any] = {}
    if args.demo:
        overrides = config_mod.merge(overrides, DEMO_OVERRIDES)
        if args.lan:
            overrides = config_mod.merge(
                overrides,
                {"web": {"host": "0.0.0.0"}, "stream": {"ice_addresses": []}},  # noqa: S104
            )
    if args.port is not None:
        overrides = config_mod.merge(overrides, {"web": {"port": args.port}})
    return config_mod.load(args.config, overrides)


async def _run(args: argparse.Namespace, cfg: config_mod.Config) -> None:
    from .box import Box, run_box
    from .demo import Terminal, print_banner

    loop = asyncio.get_running_loop()
    terminal: Terminal | None = None

    def on_started(box: Box) -> None:
        nonlocal terminal
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, box.core.stop)
        if args.demo:
            terminal = Terminal(box.panel, cfg.panel.hold_time)
            box.core.add_listener(terminal.state_changed)
            print_banner(box.urls)
            terminal.start()

    try:
        await run_box(cfg, open_session=args.demo, on_started=on_started)
    finally:
        if terminal is not None:
            terminal.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Subcommands with parsers of their own get the rest of the command line as it is.
    if argv[:1] == ["doctor"]:
        from .doctor import main as doctor_main

        return doctor_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            config_mod.load(args.config)
            print(f"{args.config}: valid")
            return 0
        cfg = load_config(args)
    except ConfigError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 2
    logs.setup(cfg.log.level)
    if args.command == "run":
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_run(args, cfg))
        except ApplianceError as exc:
            logger.error("%s", exc)
            return 1
        print("\nstopped", flush=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
