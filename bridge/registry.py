"""The map from ``server.kind`` to an adapter, through the ``bridge.adapters`` entry point group
(so a third-party package can add a server without touching the bridge)."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from bridge.errors import ConfigError
from bridge.events import AdapterSpec

# Built-in adapters, used when the package metadata is missing (e.g. running from a source tree).
_BUILTIN = {"ogs": "bridge.adapters.ogs:ADAPTER",
            "reconchess": "bridge.adapters.reconchess:ADAPTER",
            "opengames": "bridge.adapters.opengames:ADAPTER",
            }


@lru_cache(maxsize=1)
def adapter_specs() -> dict[str, AdapterSpec]:
    found: dict[str, str] = dict(_BUILTIN)
    for ep in entry_points(group="bridge.adapters"):
        found[ep.name] = ep.value
    specs: dict[str, AdapterSpec] = {}
    for kind, target in found.items():
        module_name, _, attr = target.partition(":")
        module = __import__(module_name, fromlist=[attr])
        spec = getattr(module, attr)
        if not isinstance(spec, AdapterSpec):
            raise TypeError(f"entry point {kind} -> {target} is not an AdapterSpec")
        specs[spec.kind] = spec
    return specs


def adapter_spec(kind: str) -> AdapterSpec:
    specs = adapter_specs()
    if kind not in specs:
        raise ConfigError(f"server.kind: unknown server {kind!r}; one of {sorted(specs)}")
    return specs[kind]
