"""The map from ``server.kind`` to an adapter: the packages of ``bridge.adapters``, and any other package's through the
``bridge.adapters`` entry point group (so a third-party package can add a server without touching the bridge)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points

from bridge.errors import ConfigError
from bridge.events import AdapterSpec


@lru_cache(maxsize=1)
def adapter_specs() -> dict[str, AdapterSpec]:
    """Every adapter: the packages of ``bridge.adapters`` (each exports ``ADAPTER``), then those other installed
    packages add through the ``bridge.adapters`` entry point group. One list, found, never written twice."""
    import bridge.adapters as builtin

    found: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda i: i.name):
        if info.ispkg:
            found[info.name] = f"bridge.adapters.{info.name}:ADAPTER"
    for ep in entry_points(group="bridge.adapters"):
        found.setdefault(ep.name, ep.value)
    specs: dict[str, AdapterSpec] = {}
    for kind, target in found.items():
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        spec = getattr(module, attr, None)
        if not isinstance(spec, AdapterSpec):
            raise TypeError(f"adapter {kind} -> {target} is not an AdapterSpec")
        specs[spec.kind] = spec
    return specs


def adapter_spec(kind: str) -> AdapterSpec:
    specs = adapter_specs()
    if kind not in specs:
        raise ConfigError(f"server.kind: unknown server {kind!r}; one of {sorted(specs)}")
    return specs[kind]
