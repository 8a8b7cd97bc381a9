"""The README documents what exists: its configuration reference is current, and its commands exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _load_reference_module() -> object:
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "scripts" / "config_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_is_current() -> None:
    module = _load_reference_module()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.fill(readme) == readme, "run: python scripts/config_reference.py --write README.md"  # type: ignore[attr-defined]


def test_the_two_commands_and_ci_agree() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(bash scripts/\S+ && .+?)\s+#", readme, re.M)
    assert commands[:2] == ["bash scripts/setup.sh && bridge demo", "bash scripts/setup.sh && bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in ci and "bash scripts/test.sh" in ci
    for script in ("setup.sh", "test.sh"):
        assert (ROOT / "scripts" / script).exists()
