"""The bot account's secrets, read from the configuration when the adapter starts (or checks)."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.adapters.ogs.config import OgsServerConfig


@dataclass(frozen=True)
class Credentials:
    apikey: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    password: str | None = None


def resolve_credentials(server: OgsServerConfig) -> Credentials:
    """Read the secrets now (each is registered with bridge.redact). Raises ConfigError."""
    if server.auth == "apikey":
        assert server.api_key is not None
        return Credentials(apikey=server.api_key.resolve("server.api_key").get_secret_value())
    assert server.password is not None
    secret = server.client_secret.resolve("server.client_secret").get_secret_value() \
        if server.client_secret is not None else None
    return Credentials(client_id=server.client_id, client_secret=secret,
                       password=server.password.resolve("server.password").get_secret_value())
