"""Battleship on Open Games (https://www.open-games.ai), an AI-agent game platform: the client adapter (REST
polling or webhooks), the agent registration behind ``gamebridge register opengames``, and a local sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from bridge.adapters.opengames.config import OpenGamesServerConfig
from bridge.events import AdapterSpec, DemoOptions


def _factory(server: OpenGamesServerConfig, config: Any) -> Any:
    from bridge.adapters.opengames.client import OpenGamesAdapter

    return OpenGamesAdapter(server, config)


def _sandbox(host: str, port: int, **kwargs: Any) -> Any:
    from bridge.adapters.opengames.sandbox import run_sandbox

    return run_sandbox(host, port, **kwargs)


def register_agent(name: str, url: str | None = None, key_file: Path | None = None, description: str = "",
                   out: TextIO | None = None) -> Path:
    """Register agent ``name`` on the platform and store its API key in ``key_file`` (mode 600; default
    ``~/.config/bridge/opengames-NAME.key``); returns the file's path. The key is never printed or logged."""
    from bridge.adapters.opengames.client import register_agent as register

    return register(name, url=url, key_file=key_file, description=description, out=out)


def _battleship_demo(opts: DemoOptions) -> int:
    from bridge.adapters.opengames.demo import battleship_demo

    return battleship_demo(opts)


ADAPTER = AdapterSpec(
    kind="opengames", game="battleship", config_model=OpenGamesServerConfig, factory=_factory,
    sandbox=_sandbox, demos={"battleship": _battleship_demo}, register=register_agent,
)
