"""Socket set-up shared by the blocking and asyncio transports."""

from __future__ import annotations

import errno
import os
import socket
from typing import Final

#: libtirpc's bindresvport tries ports from here up to 1023.
_RESERVED_LOW: Final = 600
_RESERVED_HIGH: Final = 1023


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_reserved(sock: socket.socket, host: str = "") -> None:
    """Bind ``sock`` to a free privileged port, as bindresvport does (needs root).

    rpcbind accepts SET/UNSET over UDP/TCP only from such a port on the loopback.
    """
    count = _RESERVED_HIGH - _RESERVED_LOW + 1
    start = int.from_bytes(os.urandom(2), "big") % count
    last: OSError | None = None
    for i in range(count):
        port = _RESERVED_LOW + (start + i) % count
        try:
            sock.bind((host, port))
            return
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise
            last = exc
    raise last or OSError(errno.EADDRINUSE, "no free reserved port")


def stream_socket(host: str, port: int, timeout: float | None, reserved_port: bool = False) -> socket.socket:
    """A connected TCP socket with TCP_NODELAY (calls are small; never wait for Nagle)."""
    if not reserved_port:
        sock = socket.create_connection((host, port), timeout=timeout)
    else:
        sock = socket.socket(family_of(host), socket.SOCK_STREAM)
        try:
            bind_reserved(sock)
            sock.settimeout(timeout)
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    return sock


def unix_socket(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


def datagram_socket(host: str, port: int, reserved_port: bool = False) -> socket.socket:
    """A UDP socket connected to ``host:port`` (replies from anywhere else are not even read)."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reserved_port:
            bind_reserved(sock)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


__all__ = ["bind_reserved", "stream_socket", "unix_socket", "datagram_socket", "family_of"]
