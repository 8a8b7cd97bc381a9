"""The configuration: each bad example gives one clear message naming the key (and the line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.config import SecretRef, json_schema, load_config, load_config_text
from bridge.errors import ConfigError
from bridge.redact import redact

GOOD = """\
server:
  kind: ogs
  url: http://127.0.0.1:1
  username: bot
  api_key: {env: TEST_OGS_KEY}
engine:
  command: [/usr/games/gnugo, --mode, gtp]
"""


def test_good_config_loads() -> None:
    cfg = load_config_text(GOOD)
    assert cfg.server.kind == "ogs"  # type: ignore[attr-defined]
    assert cfg.engine.command == ["/usr/games/gnugo", "--mode", "gtp"]  # type: ignore[attr-defined]
    assert cfg.daemon.max_concurrent_games == 2  # type: ignore[attr-defined]


def test_command_string_is_split_like_a_shell() -> None:
    cfg = load_config_text(GOOD.replace("[/usr/games/gnugo, --mode, gtp]", "'/usr/games/gnugo --mode gtp'"))
    assert cfg.engine.command == ["/usr/games/gnugo", "--mode", "gtp"]  # type: ignore[attr-defined]


# (the text to replace in GOOD, its replacement, the key path expected in the message, a fragment of the fix, line)
BAD = [
    ("  username: bot\n", "  usernme: bot\n", "server.usernme", "unknown key", 4),
    ("  username: bot\n", "", "server.username", "required", None),
    ("  api_key: {env: TEST_OGS_KEY}\n", "  api_key: hunter22\n", "server.api_key", "{env: VARIABLE}", 5),
    ("  api_key: {env: TEST_OGS_KEY}\n", "  api_key: {env: A, file: /x}\n", "server.api_key", "exactly one", 5),
    ("  kind: ogs\n", "  kind: lichess\n", "server.kind", "one of", 2),
    ("  kind: ogs\n", "", "server.kind", "required", None),
    ("[/usr/games/gnugo, --mode, gtp]", "[/nonexistent/gnugo, --mode, gtp]", "engine.command", "not found", 7),
    ("[/usr/games/gnugo, --mode, gtp]", "[gnugo, --mode, gtp]", "engine.command", "/usr/games", 7),
    ("[/usr/games/gnugo, --mode, gtp]", "[]", "engine.command", "empty", 7),
    ("engine:\n", "daemon: {max_concurrent_games: 0}\nengine:\n", "daemon.max_concurrent_games",
     "greater than or equal to 1", 6),
    ("engine:\n", "daemon: {max_concurrent_games: many}\nengine:\n", "daemon.max_concurrent_games",
     "valid integer", 6),
    ("engine:\n", "go: {undo: maybe}\nengine:\n", "go.undo", "'accept' or 'reject'", 6),
    ("  username: bot\n", "  username: bot\n  accept: {handicap: {min: 5, max: 2}}\n", "server.accept.handicap",
     "swap", 5),
    ("  username: bot\n", "  username: bot\n  transport: carrier-pigeon\n", "server.transport", "websocket", 5),
    ("  username: bot\n", "  username: bot\n  accept: {speeds: {bullet: {}}}\n", "server.accept.speeds",
     "blitz", 5),
    ("  url: http://127.0.0.1:1\n", "  url: http://127.0.0.1:1\n  ping_interval: -3\n", "server.ping_interval",
     "greater than 0", 4),
    ("    ", "    ", "", "", None),  # placeholder replaced below (kept for index stability)
]
BAD = BAD[:-1]


@pytest.mark.parametrize(("old", "new", "key", "fix", "line"), BAD)
def test_bad_config_names_the_key(old: str, new: str, key: str, fix: str, line: int | None) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "bot.yaml")
    message = str(info.value)
    assert key in message, message
    assert fix in message, message
    if line is not None:
        assert f"bot.yaml:{line}:" in message, message
    assert "hunter22" not in message


def test_not_yaml_gives_the_line() -> None:
    with pytest.raises(ConfigError, match=r"bot.yaml:3: not valid YAML"):
        load_config_text("server:\n  kind: ogs\n\tusername: x\nengine: {}\n", "bot.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_config_text("- a\n- b\n", "bot.yaml")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/nonexistent/bridge.yaml")


def test_secret_from_env_and_file_and_redaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SECRET_X", "s3cr3t-value-123")
    value = SecretRef(env="TEST_SECRET_X").resolve("server.api_key")
    assert value.get_secret_value() == "s3cr3t-value-123"
    assert "s3cr3t" not in repr(value)
    assert redact("key is s3cr3t-value-123!") == "key is ***!"
    f = tmp_path / "key"
    f.write_text("file-secret-456\n")
    assert SecretRef(file=f).resolve("server.api_key").get_secret_value() == "file-secret-456"


def test_secret_errors_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SECRET_MISSING", raising=False)
    with pytest.raises(ConfigError, match=r"server.api_key: environment variable TEST_SECRET_MISSING"):
        SecretRef(env="TEST_SECRET_MISSING").resolve("server.api_key")
    with pytest.raises(ConfigError, match=r"server.api_key: cannot read secret file"):
        SecretRef(file=tmp_path / "nope").resolve("server.api_key")
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        SecretRef(file=tmp_path / "empty").resolve("server.api_key")


def test_schema_is_json_schema_with_descriptions() -> None:
    schema = json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "bridge configuration"
    assert set(schema["required"]) >= {"server", "engine"}
    assert "max_concurrent_games" in text and "api_key" in text and "stderr_chat" in text


CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_example_configs_are_valid_apart_from_machine_paths(name: str) -> None:
    path = Path(__file__).parent.parent / "configs" / name
    try:
        load_config(path)
    except ConfigError as exc:
        # the KataGo example names a binary this machine doesn't have; nothing else may be wrong
        problems = str(exc).splitlines()
        assert all("engine.command" in p and "not found" in p for p in problems), str(exc)
