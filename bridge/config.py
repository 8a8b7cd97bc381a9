"""YAML -> validated configuration models, with error messages that name the key path, the file line
and the fix.  One definition produces both the validation and the JSON Schema (``gamebridge schema``)."""

from __future__ import annotations

import os
import shlex
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from bridge.errors import ConfigError
from bridge.games.rbc_config import RbcConfig
from bridge.redact import register_secret


class Strict(BaseModel):
    """A model that refuses unknown keys (a misspelt key is an error, never a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret comes from: an environment variable, a file (first line), or a systemd credential
    (``LoadCredential=NAME:PATH`` in the unit: the file ``$CREDENTIALS_DIRECTORY/NAME``). Never inline."""

    env: str | None = Field(None, description="name of an environment variable holding the secret")
    file: Path | None = Field(None, description="path of a file whose first line is the secret")
    credential: str | None = Field(
        None, description="name of a systemd credential (the unit's LoadCredential=NAME:PATH), read from "
                          "$CREDENTIALS_DIRECTORY/NAME")

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: Any) -> Any:
        if isinstance(value, str | int | float):
            raise ValueError("secrets are never written inline: use {env: VARIABLE}, {file: PATH} or "
                             "{credential: NAME} (and keep the file mode 600)")
        return value

    @field_validator("credential")
    @classmethod
    def _credential_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value in (".", "..") or len(value) > 255):
            raise ValueError(f"{value!r} is not a credential name: the NAME of LoadCredential=NAME:PATH "
                             f"(no '/', at most 255 characters)")
        return value

    def model_post_init(self, __context: Any) -> None:
        if sum(x is not None for x in (self.env, self.file, self.credential)) != 1:
            raise ValueError("give exactly one of 'env: VARIABLE', 'file: PATH' or 'credential: NAME'")

    def resolve(self, where: str) -> SecretStr:
        """Read the secret now. ``where`` is the key path, used in the error message."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            if not value:
                raise ConfigError(f"{where}: environment variable {self.env} is not set or empty; "
                                  f"export it (e.g. in the systemd unit's EnvironmentFile)")
        else:
            if self.credential is not None:
                directory = os.environ.get("CREDENTIALS_DIRECTORY", "")
                if not directory:
                    raise ConfigError(f"{where}: credential {self.credential!r} needs $CREDENTIALS_DIRECTORY, "
                                      f"which is not set: not running under systemd with "
                                      f"LoadCredential={self.credential}:PATH in the unit; add that line, or "
                                      f"use {{env: VARIABLE}} or {{file: PATH}} outside systemd")
                path = Path(directory) / self.credential
                if not path.exists():
                    raise ConfigError(f"{where}: no credential {self.credential!r} in $CREDENTIALS_DIRECTORY "
                                      f"({directory}); add LoadCredential={self.credential}:PATH to the unit "
                                      f"(PATH: the file holding the secret)")
            else:
                assert self.file is not None
                path = self.file.expanduser()
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}; "
                                  f"create it (mode 600) with the secret on its first line") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{where}: secret file {path} is not UTF-8 text; "
                                  f"put the secret on its first line as plain text") from None
            value = lines[0].strip() if lines else ""
            if not value:
                raise ConfigError(f"{where}: secret file {path} is empty; put the secret on its first line")
        register_secret(value)
        return SecretStr(value)


SecretField = Annotated[SecretRef, Field(description="{env: VARIABLE}, {file: PATH} or {credential: NAME}")]


class EngineProcessConfig(Strict):
    """One engine process: what every engine section has (engine, and the Go role engines)."""

    protocol: Literal["gtp", "uci", "line"] = Field("gtp", description="the engine's wire protocol")
    command: list[str] = Field(description="the engine's command line: a list, or one string split like a shell")
    cwd: Path | None = Field(None, description="working directory of the engine process")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the engine")
    startup_timeout: float = Field(20.0, gt=0, le=600, description="seconds allowed to start and handshake")
    move_margin: float = Field(5.0, ge=0, le=600,
                               description="with a clock: seconds kept on it when the engine counts as hung, beyond "
                                           "what a restart and 2 s of thought take, plus 3.5 s for the stop, the "
                                           "send and a late clock (at most half the time left), to restart it and "
                                           "still move; without one: seconds beyond max_move_time; a UCI engine "
                                           "(RBC): seconds beyond a search's time, fewer on a short clock (a hang "
                                           "costs a turn at most 15 % of the clock left)")
    max_move_time: float | None = Field(None, gt=0,
                                        description="cap on the seconds the engine may think for one move")
    quit_grace: float = Field(2.0, ge=0, le=60, description="seconds after 'quit' before SIGTERM, then SIGKILL")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="UCI options (Threads, Hash, ...)")
    max_restarts: int = Field(3, ge=0, le=100,
                              description="engine restarts allowed in one game before the bridge resigns it")

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return shlex.split(value)
        return value

    @field_validator("command")
    @classmethod
    def _exists(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("the command is empty; name the engine binary, e.g. [/usr/games/gnugo, --mode, gtp]")
        binary = value[0]
        found = shutil.which(binary) if os.sep not in binary else (binary if os.access(binary, os.X_OK) else None)
        if found is None:
            hint = " (Debian puts gnugo and stockfish in /usr/games, which is not on root's PATH)" \
                if binary in ("gnugo", "stockfish") else ""
            raise ValueError(f"engine binary {binary!r} not found or not executable{hint}; "
                             f"give its full path or install it")
        return value


class EngineConfig(EngineProcessConfig):
    """The ``engine:`` section: the engine process and how Go games get engines."""

    manager: Literal["per_game", "pool", "kata_analysis"] = Field(
        "per_game", description="how Go games get engines: per_game = one process per game (capped by "
                                "daemon.max_concurrent_games, stopped after daemon.engine_idle_timeout); pool = "
                                "engine.pool_size processes shared by all games, each move replayed into a free one; "
                                "kata_analysis = one `katago analysis` process (engine.command) serving every game "
                                "through its JSON protocol")
    pool_size: int = Field(2, ge=1, le=256, description="with manager: pool, the number of engine processes shared "
                                                        "by all games")
    resign_winrate: float = Field(
        0.05, ge=0, lt=1, description="with manager: kata_analysis, resign when the bot's winrate falls below this "
                                      "(0 = never resign)")
    max_visits: int | None = Field(None, ge=1, description="with manager: kata_analysis, visits per move (the "
                                                           "query's maxVisits; none: the analysis config's)")
    analysis: Literal["off", "main", "malkovich"] = Field(
        "off", description="Go: send the engine's thinking (principal variation, win rate, score, visits) as an OGS "
                           "analysis chat message, at most one a move, to the main chat (main, or chat) or the "
                           "malkovich chat; from kata-genmove_analyze / lz-genmove_analyze when the engine lists "
                           "them, else from its stderr (KataGo, Leela Zero, Leela formats), or from kata_analysis's "
                           "answers (off = none)")

    @field_validator("analysis", mode="before")
    @classmethod
    def _analysis_words(cls, value: Any) -> Any:
        if value is False:  # YAML reads a bare `off` as false
            return "off"
        return "main" if value == "chat" else value  # the players' chat is OGS's main channel

    @model_validator(mode="after")
    def _manager_protocol(self) -> EngineConfig:
        if self.manager != "per_game" and self.protocol != "gtp":
            raise ValueError(f"engine.manager: {self.manager} serves Go engines only; with protocol {self.protocol} "
                             f"use manager: per_game")
        return self


class RoleEngineConfig(EngineProcessConfig):
    """An engine of its own for one role in Go games (gtp2ogs's opening_bot / ending_bot): its own command,
    restarts (``max_restarts``: after that many it is left out of the game, the main engine plays on) and transcript
    lines (named ``GAME-opening`` / ``GAME-ending``). One process per game while its role lasts."""

    max_restarts: int = Field(3, ge=0, le=100,
                              description="restarts of this engine in one game; one failure more and it is left out "
                                          "of the game (the main engine plays on; the game is never resigned for it)")

    @model_validator(mode="after")
    def _gtp(self) -> RoleEngineConfig:
        if self.protocol != "gtp":
            raise ValueError(f"a Go role engine speaks GTP; protocol {self.protocol} cannot play Go here: remove "
                             f"the protocol key")
        return self


class OpeningEngineConfig(RoleEngineConfig):
    moves: int = Field(8, ge=1, le=1000,
                       description="the bot's first N moves are this engine's, the main engine plays the rest "
                                   "(gtp2ogs's opening_bot number_of_opening_moves_to_play, which counts both sides' "
                                   "moves)")


class EndingEngineConfig(RoleEngineConfig):
    after: float = Field(0.8, ge=0, le=1,
                         description="consulted on every move once the game has width*height*after moves (rounded "
                                     "up; gtp2ogs's moves_to_allow_before_checking_ratio): its pass replaces the main "
                                     "engine's move, its resign counts as a vote")
    resign_votes: int = Field(3, ge=1, le=100,
                              description="the bot resigns when this engine has answered resign this many times in a "
                                          "row (gtp2ogs's allowed_resigns)")


class GoConfig(Strict):
    undo: Literal["accept", "reject"] = Field("reject", description="answer to the opponent's undo requests")
    greeting: str = Field("", description="chat line posted when a game starts ('' = none)")
    farewell: str = Field("", description="chat line posted when a game ends ('' = none)")
    stderr_chat: list[Literal["MAIN", "DISCUSSION", "MALKOVICH"]] = Field(
        default_factory=list, description="engine stderr lines with these prefixes are posted to the game chat")
    sgf: bool = Field(True, description="write an SGF record of every finished game")
    opening_engine: OpeningEngineConfig | None = Field(
        None, description="an engine of its own that plays the bot's first `moves` moves (with engine.manager: "
                          "per_game)")
    ending_engine: EndingEngineConfig | None = Field(
        None, description="an engine of its own consulted for passing and resigning late in the game (with "
                          "engine.manager: per_game)")
    min_move_time: float = Field(
        0.0, ge=0, le=60, description="seconds: a move is sent no sooner than this after the bot's turn began, "
                                      "never at the clock's risk (at most half the time left, less 1 s, is spent "
                                      "waiting; gtp2ogs's min_move_time, 1.5 s there by default; 0 = at once)")


class DaemonConfig(Strict):
    max_concurrent_games: int = Field(2, ge=1, le=1000, description="games running at once (with engine.manager: "
                                                                     "per_game, also the engines)")
    data_dir: Path = Field(Path("runs"), description="where transcripts/ and records/ are written")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="the least severe log lines shown (DEBUG adds engine stderr, REST calls and ignored "
                            "server events)")
    log_file: Path | None = Field(None, description="also log to this file (under systemd the journal has "
                                                    "every line already)")
    log_max_bytes: int = Field(
        10_000_000, ge=0, description="the log file is rotated when it would grow past this size, bytes "
                                      "(0: never by the daemon; the file is reopened when logrotate moves it)")
    log_backups: int = Field(5, ge=0, le=1000, description="rotated log files kept (daemon.log.1 ... .N)")
    transcript_max_mb: float = Field(
        10.0, ge=0, description="cap on one game's transcript in MB: engine stderr stops being recorded first (at "
                                "90 %), the engine's output and the commands to it next (at 95 %), the bridge's "
                                "notes at the cap; what was dropped is noted (0 = no cap)")
    transcripts_max_mb: float = Field(
        1000.0, ge=0, description="cap on all the transcripts in data_dir/transcripts, MB: past it the oldest are "
                                  "removed (at the start and every 10 minutes; never a game's in progress nor one "
                                  "written in the last hour; records are kept) (0 = no cap)")
    transcripts_max_days: float = Field(
        0.0, ge=0, description="transcripts last written more than this many days ago are removed, as above "
                               "(0 = kept however old)")
    engine_idle_timeout: float = Field(
        300.0, ge=0, description="seconds a game's engine may sit idle (opponent thinking) before it is stopped to "
                                 "free its slot; it is restarted and replayed on the next turn (0 = never)")
    on_stop: Literal["resume", "finish"] = Field(
        "resume", description="what SIGTERM/SIGINT does to games in progress: resume = stop at once, leaving them on "
                              "the server to be resumed at the next start; finish = take no new game and exit when "
                              "they have ended (a second signal stops at once, as resume)")


def _adapter_specs() -> dict[str, Any]:
    from bridge.registry import adapter_specs

    return adapter_specs()


class _Top(Strict):
    """The checks across sections of the top-level model."""

    @model_validator(mode="after")
    def _roles_need_per_game(self) -> _Top:
        engine, go = getattr(self, "engine", None), getattr(self, "go", None)
        roles = [k for k in ("opening_engine", "ending_engine") if getattr(go, k, None) is not None]
        if roles and engine is not None and engine.manager != "per_game":
            raise ValueError(f"go.{roles[0]} needs engine.manager: per_game (a role engine is a process of each "
                             f"game's own, which a shared {engine.manager} engine would no longer bound); set "
                             f"manager: per_game or remove go.{' and go.'.join(roles)}")
        return self


@lru_cache(maxsize=1)
def config_model() -> type[BaseModel]:
    """The top-level model; ``server`` is a union over every registered adapter's server model."""
    models = tuple(spec.config_model for spec in _adapter_specs().values())
    server_type: Any = models[0]
    if len(models) > 1:
        server_type = Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007
    model: type[BaseModel] = create_model(
        "BridgeConfig",
        __base__=_Top,
        server=(server_type, Field(description="which server to play on, and how")),
        engine=(EngineConfig, Field(description="the engine process")),
        go=(GoConfig, Field(default_factory=lambda: GoConfig(), description="Go game behaviour")),
        rbc=(RbcConfig, Field(default_factory=lambda: RbcConfig(), description="Reconnaissance Blind Chess play")),
        daemon=(DaemonConfig, Field(default_factory=lambda: DaemonConfig(), description="the daemon itself")),
    )
    return model


def json_schema() -> dict[str, Any]:
    schema = config_model().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "bridge configuration"
    return schema


# --- loading with line numbers --------------------------------------------------------------------
def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)


def _format_errors(exc: ValidationError, lines: dict[tuple[Any, ...], int], source: str) -> str:
    out = []
    for err in exc.errors():
        loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and part in _union_tags()))
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = None
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        where = f"{source}:{line}" if line else source
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}; check its spelling against `gamebridge schema` or the README's reference"
        elif err["type"] == "missing":
            msg = "this key is required"
        elif err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
            msg = f"server.kind must be one of {sorted(_adapter_specs())}"
        out.append(f"{where}: {key}: {msg}")
    return "\n".join(out)


def _union_tags() -> set[str]:
    return set(_adapter_specs())


def load_config_text(text: str, source: str = "<config>", base_dir: Path | None = None) -> BaseModel:
    """Parse and validate a YAML document; raise :class:`ConfigError` with one line per problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}; fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must be a YAML mapping with at least 'server' and 'engine' keys")
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    server = data.get("server")
    if isinstance(server, dict) and "kind" not in server:
        raise ConfigError(f"{source}:{lines.get(('server',), '?')}: server.kind: this key is required; "
                          f"one of {sorted(_adapter_specs())}")
    if isinstance(server, dict) and server.get("kind") not in _adapter_specs():
        raise ConfigError(f"{source}:{lines.get(('server', 'kind'), '?')}: server.kind: unknown server "
                          f"{server.get('kind')!r}; one of {sorted(_adapter_specs())}")
    try:
        if base_dir is not None:
            cwd = os.getcwd()
            os.chdir(base_dir)
        try:
            return config_model().model_validate(data)
        finally:
            if base_dir is not None:
                os.chdir(cwd)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, lines, source)) from None


def load_config(path: str | Path) -> Any:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}: the configuration is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          f"save the file as UTF-8") from None
    return load_config_text(text, str(p))


def resolve_secrets(config: BaseModel) -> dict[str, SecretStr]:
    """Read every secret the config names, now, so that a missing variable, file or credential is one
    configuration error before anything starts (not a failure inside an adapter). Raises ConfigError naming each
    key; returns the secrets by key path (a reload compares them, never showing them)."""
    problems: list[str] = []
    found: dict[str, SecretStr] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, SecretRef):
            try:
                found[path] = node.resolve(path)
            except ConfigError as exc:
                problems.append(str(exc))
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name), f"{path}.{name}" if path else name)
        elif isinstance(node, list | tuple):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")
        elif isinstance(node, dict):
            for key, item in node.items():
                walk(item, f"{path}.{key}")

    walk(config, "")
    if problems:
        raise ConfigError("; ".join(problems))
    return found
