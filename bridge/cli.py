"""The ``gamebridge`` command: run, check, schema, sandbox, demo."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from bridge import __version__
from bridge.config import load_config, resolve_secrets
from bridge.demo import demo_names
from bridge.errors import EXIT_CONFIG, EXIT_FATAL, BridgeError, ConfigError, UsageError
from bridge.events import RBC_DEMO_INCREMENT, RBC_DEMO_SECONDS
from bridge.logsetup import setup_logging
from bridge.registry import adapter_spec, adapter_specs

log = logging.getLogger("bridge")

__all__ = ["build_parser", "main", "setup_logging"]


def _install_signal_handlers(stop: Any, reload: Any = None) -> None:
    """SIGTERM/SIGINT stop the daemon; SIGHUP (``systemctl reload``) asks it to reload its configuration. The
    handlers only set flags: the daemon's main loop does the work."""

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: shutting down", signal.Signals(signum).name)
        stop()

    def hangup(signum: int, frame: FrameType | None) -> None:
        log.info("SIGHUP received: reloading the configuration")
        reload()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    if reload is not None:
        signal.signal(signal.SIGHUP, hangup)


def cmd_run(args: argparse.Namespace) -> int:
    from bridge.daemon import Daemon
    from bridge.malloc import limit_arenas
    from bridge.reload import apply_logging
    from bridge.systemd import Notifier

    arenas = limit_arenas()  # before the daemon's threads: a long run's memory stays in fewer C heaps
    config = load_config(args.config)
    secrets = resolve_secrets(config)
    apply_logging(config)
    logging.getLogger("bridge.cli").debug("%s", arenas)
    notifier = Notifier()  # reads (and removes from the environment) $NOTIFY_SOCKET and $WATCHDOG_USEC
    daemon = Daemon(config, notifier=notifier, config_path=args.config, secrets=secrets)
    _install_signal_handlers(daemon.stop, daemon.request_reload)
    try:
        daemon.run()
    finally:
        notifier.close()
    return EXIT_FATAL if daemon.fatal else 1 if daemon.failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    from bridge.check import run_check

    setup_logging("WARNING")
    return run_check(Path(args.config), out=sys.stdout)


def cmd_schema(args: argparse.Namespace) -> int:
    from bridge.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:

    setup_logging(args.log_level)
    spec = adapter_spec(args.server)
    if spec.sandbox is None:
        raise ConfigError(f"server {args.server!r} has no sandbox")
    spec.sandbox(args.host, args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bridge.demo import run_demo

    setup_logging("WARNING" if not args.verbose else "INFO")
    games = demo_names() if args.game == "all" else [args.game]
    return run_demo(games=games, size=args.size, opponent=args.opponent, rbc_opponent=args.rbc_opponent,
                    rbc_seconds=args.rbc_seconds, rbc_increment=args.rbc_increment, data_dir=Path(args.data_dir),
                    out=sys.stdout, delay=args.delay)


def cmd_register(args: argparse.Namespace) -> int:
    register_agent = adapter_spec(args.server).register
    if register_agent is None:
        raise UsageError(f"{args.server} has no registration: create the account on the server itself")
    setup_logging("WARNING")
    register_agent(args.name, url=args.url, key_file=Path(args.key_file) if args.key_file else None,
                   description=args.description, out=sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gamebridge", description="Connect game engines to online game servers.")
    p.add_argument("--version", action="version", version=f"gamebridge {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the daemon with a YAML config")
    r.add_argument("config")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check", help="validate a config, start the engine, reach and authenticate to the server")
    c.add_argument("config")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("schema", help="print the configuration's JSON Schema (for editors)")
    s.set_defaults(func=cmd_schema)

    sb = sub.add_parser("sandbox", help="run a local sandbox server speaking a real server's protocol")
    sb.add_argument("server", help="which server to imitate, e.g. ogs")
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--port", type=int, default=8080)
    sb.add_argument("--log-level", default="INFO")
    sb.set_defaults(func=cmd_sandbox)

    d = sub.add_parser("demo", help="play whole games on the embedded sandboxes (Go, RBC, Battleship)")
    d.add_argument("--game", default="all", choices=["all", *demo_names()],
                   help="which demo game(s) to play")
    d.add_argument("--size", type=int, default=9, help="Go board size (default 9)")
    d.add_argument("--opponent", default="gnugo", choices=["gnugo", "random"],
                   help="the house opponent: GNU Go at level 1, or random legal moves")
    d.add_argument("--rbc-opponent", default="random", choices=["random", "attacker", "trout"],
                   help="the house opponent in Reconnaissance Blind Chess")
    d.add_argument("--rbc-seconds", type=float, default=RBC_DEMO_SECONDS,
                   help=f"RBC clock: seconds per player (default {RBC_DEMO_SECONDS:g})")
    d.add_argument("--rbc-increment", type=float, default=RBC_DEMO_INCREMENT,
                   help=f"RBC clock: seconds added a turn (default {RBC_DEMO_INCREMENT:g})")
    d.add_argument("--data-dir", default="runs/demo", help="where transcripts and records go")
    d.add_argument("--delay", type=float, default=0.0, help="seconds the house opponent waits before moving")
    d.add_argument("--verbose", action="store_true", help="show the daemon's log")
    d.set_defaults(func=cmd_demo)

    rg = sub.add_parser("register", help="register a new agent on a platform and store its API key (mode 600)")
    rg.add_argument("server", choices=[kind for kind, spec in adapter_specs().items() if spec.register],
                    help="the platform (Open Games)")
    rg.add_argument("--name", required=True, help="the agent's name")
    rg.add_argument("--url", default=None, help="the platform's root URL (default https://www.open-games.ai)")
    rg.add_argument("--key-file", default=None,
                    help="where to store the API key (default ~/.config/bridge/opengames-NAME.key)")
    rg.add_argument("--description", default="", help="the agent's description")
    rg.set_defaults(func=cmd_register)
    return p


def _error(text: str) -> None:
    """An error on stderr; in the journal with the error priority on each line (sd-daemon(3) ``<3>``)."""
    from bridge.systemd import stderr_is_journal

    if stderr_is_journal():
        text = "\n".join("<3>" + line for line in text.splitlines())
    print(text, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        _error(f"bridge: configuration error: {exc}")
        return EXIT_CONFIG
    except BridgeError as exc:
        _error(f"bridge: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
