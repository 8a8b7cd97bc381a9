#!/usr/bin/env python3
"""Print the configuration reference (Markdown) from the models: the README's reference is this output, and
tests/test_readme.py checks it is current."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bridge.config import config_model
from bridge.registry import adapter_specs


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")
    for prefix in ("bridge.adapters.ogs.config.", "bridge.config."):
        text = text.replace(prefix, "")
    text = text.replace("<class '", "").replace("'>", "")
    return text.replace("|", "\\|")


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel) and type(value).__name__ == "Range":
        bounds = {k: v for k, v in value.model_dump().items() if v is not None}
        return f"`{bounds}`" if bounds else "any"
    if isinstance(value, BaseModel):
        return "(see below)"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        return "(see below)"
    return f"`{value!r}`".replace("|", "\\|")


def table(prefix: str, model: type[BaseModel], out: list[str], nested: list[tuple[str, type[BaseModel]]]) -> None:
    out.append("| key | type | default | meaning |\n|---|---|---|---|")
    for name, field in model.model_fields.items():
        out.append(f"| `{prefix}{name}` | {_type_name(field.annotation)} | {_default(field)} | "
                   f"{(field.description or '').replace('|', '/')} |")
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        if args and not str(ann).startswith("dict"):  # an optional model: X | None
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if len(models) == 1:
                ann = models[0]
        if isinstance(ann, type) and issubclass(ann, BaseModel) and ann.__name__ not in ("SecretRef", "Range"):
            nested.append((f"{prefix}{name}.", ann))
        if args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel) and str(ann).startswith("dict"):
            nested.append((f"{prefix}{name}.SPEED.", args[-1]))


def reference() -> str:
    out: list[str] = []
    sections: list[tuple[str, type[BaseModel]]] = []
    for kind, spec in adapter_specs().items():
        sections.append((f"server.  (kind: {kind})", spec.config_model))
    for name, field in config_model().model_fields.items():
        if name != "server" and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            sections.append((f"{name}.", field.annotation))
    while sections:
        title, model = sections.pop(0)
        prefix = title.split()[0]
        out.append(f"\n#### `{title.strip()}`\n")
        nested: list[tuple[str, type[BaseModel]]] = []
        table(prefix, model, out, nested)
        sections[0:0] = nested
    out.append("\nSecrets (`api_key`, `password`, `client_secret`, `token`) are `{env: VARIABLE}`, `{file: PATH}` "
               "(its first line) or `{credential: NAME}` (a systemd credential: the unit's "
               "`LoadCredential=NAME:PATH`, read from `$CREDENTIALS_DIRECTORY/NAME`); "
               "ranges are `{min: X, max: Y}` (either may be left out).")
    return "\n".join(out).strip() + "\n"


START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def fill(readme: str) -> str:
    """``readme`` with the block between the markers replaced by the current reference."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{reference()}{END}{tail}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        path = Path(sys.argv[2] if len(sys.argv) > 2 else "README.md")
        path.write_text(fill(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(reference())
