"""The stack's ports: proving they are free before anything starts, and whether one answers."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

from meshfleet.dev.config import HOST
from meshfleet.dev.errors import PortInUseError


def check_ports_free(ports: Mapping[str, int], host: str = HOST) -> None:
    """Bind each port once to prove it is free, before anything starts.

    SO_REUSEADDR is set as the servers themselves set it, so a port that only lingers in
    TIME_WAIT after a previous run does not count as taken.

    Raises:
        PortInUseError: names every taken port and what it was meant for.
    """
    busy: list[str] = []
    for what, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                busy.append(f"port {port} ({what}) on {host} is already in use")
    if busy:
        raise PortInUseError(
            "; ".join(busy)
            + ". Stop whatever holds it (another `meshfleet dev` or `meshfleet demo`?) or choose "
            "other ports with --temporal-port, --ui-port and --simulator-port."
        )


def answers_http(host: str, port: int) -> bool:
    """Whether an HTTP server answers on ``host:port``.

    Any HTTP status line is an answer: the simulator is up even if "/" is a 404.
    """
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False
