"""A TCP proxy in front of a PostgreSQL server whose answers can be held back, as a server that stops answering
without closing anything: what the tests of a call's time limit drive the client's cancel with."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from psycopg.conninfo import make_conninfo

from bench.proxy import upstream_address


class StallingProxy:
    """A TCP proxy to *dsn*'s server whose answers to the connections it carries can be held back (`hold`); a
    connection made while they are held (the client's cancel request, or a pool's refill) passes freely, and a
    cancel request, known by its packet, lets them go once its connection is closed."""

    CANCEL_REQUEST = struct.pack("!ii", 16, 80877102)

    def __init__(self, dsn: str) -> None:
        self.upstream = upstream_address(dsn)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.dsn = make_conninfo(dsn, host="127.0.0.1", port=self.listener.getsockname()[1])
        self.flowing = threading.Event()
        self.flowing.set()
        self.cancel_seen = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self.flowing.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.socket(self.upstream[0])
            server.connect(self.upstream[1])
            self.sockets += (client, server)
            held = self.flowing.is_set()
            threading.Thread(target=self._forward, args=(client, server), daemon=True).start()
            threading.Thread(target=self._answer, args=(server, client, held), daemon=True).start()

    def _forward(self, client: socket.socket, server: socket.socket) -> None:
        sent = b""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                sent = (sent + data)[-64:]
                server.sendall(data)
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)
        if self.CANCEL_REQUEST in sent and not self.flowing.is_set():
            self.cancel_seen.set()
            self.flowing.set()  # the cancel request was sent and its connection closed

    def _answer(self, server: socket.socket, client: socket.socket, holds: bool) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if holds:
                    self.flowing.wait()
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.flowing.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()
