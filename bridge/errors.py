"""One error hierarchy for the whole bridge.

Every message says what happened, where, and what to try.
"""

from __future__ import annotations

EXIT_CONFIG = 78  # sysexits EX_CONFIG: the configuration is wrong; systemd's RestartPreventExitStatus names it
EXIT_FATAL = 77  # sysexits EX_NOPERM: the server refused us (credentials, or a setting it rejects); a restart
#                  will not fix it, so systemd's RestartPreventExitStatus names it too


class BridgeError(Exception):
    """Base class of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """The configuration file is wrong; the message names the key path and the fix."""


class UsageError(BridgeError):
    """A command-line argument is wrong (exit status 2, as argparse's own usage errors)."""


class EngineError(BridgeError):
    """The engine misbehaved (refused a command, answered garbage, timed out)."""


class EngineRefusedError(EngineError):
    """The engine answered a command with a GTP/line-protocol failure ('?')."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"engine refused {command!r}: {message}")
        self.command = command
        self.reply = message


class EngineTimeoutError(EngineError):
    """The engine did not answer within its time budget plus the margin."""


class EngineTerminatedError(EngineError):
    """The engine process exited or its pipes broke."""


class ServerError(BridgeError):
    """The game server answered something unexpected or could not be reached."""


class AuthError(ServerError):
    """The server refused our credentials (never includes the secret itself)."""


class ProtocolError(ServerError):
    """A message from the server could not be understood."""


class FatalAdapterError(BridgeError):
    """A condition an adapter cannot get past by retrying: the server refused the credentials, or rejects a
    setting of the configuration (e.g. a version it does not serve). Raised out of ``Adapter.run``; the daemon
    logs its message as the one ERROR line, stops, and ``gamebridge run`` exits with :data:`EXIT_FATAL`. The message
    says what was refused and which key to fix; it never contains a secret."""
