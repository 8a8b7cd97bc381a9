"""The README documents what exists: its configuration reference is current, and its commands exist."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tomllib
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


TWO_COMMANDS = ["bash scripts/setup.sh && .venv/bin/gamebridge demo", "bash scripts/setup.sh && bash scripts/test.sh"]


def test_the_two_commands_and_ci_agree() -> None:
    """The README's two commands call the checkout's environment by path (they work in the same shell on a fresh
    machine), and CI runs exactly those lines, read from the README, on a fresh Debian root filesystem."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(bash scripts/\S+ && .+?)\s+#", readme, re.M)
    assert commands[:2] == TWO_COMMANDS
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/ci_fresh_debian.sh" in ci
    printed = subprocess.run(["bash", str(ROOT / "scripts" / "ci_fresh_debian.sh"), "--print-commands"],
                             capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()
    assert printed == TWO_COMMANDS
    for script in ("setup.sh", "test.sh"):
        assert (ROOT / "scripts" / script).exists()


# `bridge` followed by a subcommand, shown as a command (not "the bridge", not the package bridge.x).
_OLD_COMMAND = re.compile(r"(^|[`\"' (])bridge (run|check|demo|sandbox|schema|register)\b", re.M)


def test_the_command_is_gamebridge_everywhere_a_user_reads() -> None:
    """`/usr/sbin/bridge` is iproute2's: the console script is `gamebridge`, and no document, example config or
    message shows the old name as a command."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"gamebridge": "bridge.cli:main"}
    places = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("configs/*.yaml"), *ROOT.glob("bridge/**/*.py"),
              *ROOT.glob("adapters/**/*.py"), *ROOT.glob("scripts/*")]
    found = [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0).strip()}"
             for path in places if path.is_file()
             for text in [path.read_text(encoding="utf-8", errors="replace")]
             for m in _OLD_COMMAND.finditer(text)]
    assert found == []
