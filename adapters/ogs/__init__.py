"""online-go.com: the client adapter, its protocol codec and its local sandbox server."""

from __future__ import annotations

from typing import Any

from bridge.adapters.ogs.config import OgsServerConfig
from bridge.events import AdapterSpec


def _factory(server: OgsServerConfig, config: Any) -> Any:
    from bridge.adapters.ogs.client import OgsAdapter

    return OgsAdapter(server, config)


def _sandbox(host: str, port: int, **kwargs: Any) -> Any:
    from bridge.adapters.ogs.sandbox import run_sandbox

    return run_sandbox(host, port, **kwargs)


ADAPTER = AdapterSpec(kind="ogs", game="go", config_model=OgsServerConfig, factory=_factory, sandbox=_sandbox)
