"""Reloading the configuration (SIGHUP, ``systemctl reload``): read the file again, validate it and its secrets,
and decide what applies to the running daemon and what only a restart can change.

Applied live: the acceptance policy where the adapter can take it (``server.accept`` on OGS), the daemon's game
cap, its logging, the engine idle timeout, and the ``go:``/``rbc:`` settings for games that start from then on.
Everything else (the server's kind, address and credentials, the engine, ``daemon.data_dir``) needs a restart; the
reload says so and keeps the running values. Only key paths are ever named, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bridge.config import load_config, resolve_secrets
from bridge.errors import ConfigError
from bridge.logsetup import setup_logging

LIVE_DAEMON_KEYS = ("max_concurrent_games", "log_level", "log_file", "log_max_bytes", "log_backups",
                    "engine_idle_timeout", "on_stop", "transcripts_max_mb", "transcripts_max_days")
LOGGING_KEYS = ("log_level", "log_file", "log_max_bytes", "log_backups")
LIVE_SECTIONS = ("go", "rbc")  # read when a game starts: the new values hold for the next games


@dataclass
class ReloadPlan:
    config: Any  # the configuration the daemon runs with from now on
    applied: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    logging_changed: bool = False

    def describe(self) -> str:
        if not self.applied and not self.restart:
            return "nothing changed"
        parts = []
        if self.applied:
            parts.append("applied " + ", ".join(self.applied))
        else:
            parts.append("nothing applied")
        if self.restart:
            parts.append("needs a restart to take effect (the running values stay until then): "
                         + ", ".join(self.restart))
        return "; ".join(parts)


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted key paths whose values differ between two ``model_dump()`` trees (lists compare whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out.extend(changed_paths(old[key], new[key], path))
        return out
    return [] if old == new else [prefix]


def reloadable_server_keys(adapter: Any) -> frozenset[str]:
    """The ``server.`` keys an adapter takes live: it has ``reconfigure(config)`` and names them."""
    if not callable(getattr(adapter, "reconfigure", None)):
        return frozenset()
    return frozenset(getattr(adapter, "reloadable_server_keys", ()))


def read_for_reload(path: Path) -> tuple[Any, dict[str, SecretStr]]:
    """The file, validated, with every secret read (ConfigError naming the key otherwise)."""
    config = load_config(path)
    return config, resolve_secrets(config)


def plan_reload(old: Any, new: Any, old_secrets: dict[str, SecretStr], new_secrets: dict[str, SecretStr],
                adapter: Any = None) -> ReloadPlan:
    live_server = reloadable_server_keys(adapter)
    plan = ReloadPlan(config=old)
    same_server = old.server.kind == new.server.kind
    server_update: dict[str, Any] = {}
    for path in changed_paths(old.model_dump(), new.model_dump()):
        section, _, rest = path.partition(".")
        key = rest.split(".", 1)[0]
        if section == "server":
            if not same_server:
                continue
            if key in live_server:
                server_update[key] = getattr(new.server, key)
                plan.applied.append(path)
            else:
                plan.restart.append(path)
        elif section in LIVE_SECTIONS:
            plan.applied.append(path)
        elif section == "daemon" and key in LIVE_DAEMON_KEYS:
            plan.applied.append(path)
            plan.logging_changed |= key in LOGGING_KEYS
        else:  # engine.*, daemon.data_dir, and any section not known here
            plan.restart.append(path)
    if not same_server:
        plan.restart.insert(0, f"server (kind {old.server.kind} -> {new.server.kind})")
    for path in sorted(set(old_secrets) | set(new_secrets)):
        before, after = old_secrets.get(path), new_secrets.get(path)
        if before is not None and after is not None and before.get_secret_value() != after.get_secret_value() \
                and not any(p == path or p.startswith(path + ".") for p in plan.restart):
            plan.restart.append(f"{path} (the secret's value)")
    daemon = old.daemon.model_copy(update={k: getattr(new.daemon, k) for k in LIVE_DAEMON_KEYS})
    update: dict[str, Any] = {name: getattr(new, name) for name in LIVE_SECTIONS}
    update["daemon"] = daemon
    if server_update:
        update["server"] = old.server.model_copy(update=server_update)
    plan.config = old.model_copy(update=update)
    return plan


def apply_logging(config: Any) -> None:
    """Log as ``config.daemon`` says (at start and after a reload); a log file that cannot be opened is a
    configuration error."""
    d = config.daemon
    try:
        setup_logging(d.log_level, d.log_file, max_bytes=d.log_max_bytes, backups=d.log_backups)
    except OSError as exc:
        raise ConfigError(f"daemon.log_file: cannot open {d.log_file}: {exc.strerror or exc}; "
                          f"fix the path or its permissions (under systemd: LogsDirectory=)") from None
