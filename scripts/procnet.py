"""The TCP sockets of a Linux process, from the kernel's tables (``/proc/net/tcp`` and ``tcp6``): each socket's
inode with its addresses, so that a count of descriptors can say what they are. Used by the endurance benchmark
(``scripts/endurance.py``) and by the tests' leak check (``tests/conftest.py``)."""

from __future__ import annotations

import socket
from typing import NamedTuple


class TcpSocket(NamedTuple):
    table: str  # "tcp" or "tcp6"
    local: str  # "host:port"
    remote: str
    listening: bool


def tcp_address(hex_addr: str) -> str:
    """``0100007F:1F90`` (a /proc/net/tcp address: little-endian words) as ``127.0.0.1:8080``."""
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # /proc/net/tcp6: four little-endian 32-bit words
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return f"{ip}:{int(port, 16)}"


def tcp_sockets(net_dir: str = "/proc/net") -> dict[str, TcpSocket]:
    """Socket inode -> its TCP socket, from ``net_dir`` (``/proc/net``: this process's network namespace;
    ``/proc/PID/net``: another's). Tables that cannot be read are left out."""
    found: dict[str, TcpSocket] = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{net_dir}/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9:
                found[cols[9]] = TcpSocket(table, tcp_address(cols[1]), tcp_address(cols[2]), cols[3] == "0A")
    return found
