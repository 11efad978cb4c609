"""Free loopback ports for the servers the tests start."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(rng: random.Random | None = None) -> int:
    """A free loopback port below the kernel's ephemeral range.

    A server restarted on its port must find it free again, and the Temporal dev server binds
    several ports of its own with port 0: while our server is down or not yet bound, an outgoing
    connection or those listeners could take a port from the ephemeral range, never one below it.
    """
    rng = rng or random.Random()
    while True:
        port = rng.randrange(20000, _ephemeral_start())
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports from ``free_port``."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(rng)
        if port not in ports:
            ports.append(port)
    return ports
