"""A loopback TCP proxy that puts a network between clients and a server, and counts their round trips.

    python -m bench.proxy DSN [--delay 0.5]

listens on 127.0.0.1 (its port is the first line it prints, as JSON) and forwards every connection to the server
*DSN* names (a unix socket or a TCP address), each byte held back *delay* milliseconds in each direction: a
round trip through it costs twice the delay, as a network between an application and its database does. Each
direction is a queue of chunks stamped with their delivery time, sent in order by a thread of its own, so a chunk
waits for its own delay only, never for the delays of the chunks before it (a pipelined client's bytes go through
as they would on a wire). On its standard input it answers ``counts`` (round trips and turns so far) and ``delays``
(the delays it applied since the last ``delays``) with a line of JSON each.

**A round trip** is a time the client waits for the server with nothing of its own in flight. The proxy reads the
protocol's message framing both ways and counts, per connection, each message the client sends while it is
*idle*: when every request it sent (a Sync, a simple Query, its startup) has had its ReadyForQuery delivered back,
no extended-protocol message is waiting for its Sync, and a Flush's answer (server data that left the server after
the Flush reached it) has come back; or when the server handed it the turn (an authentication challenge, the
answer to an SSL request, a CopyIn response). A client that pipelines, sending while answers stream back, is never
idle in between and counts once; a client that takes turns counts each turn. The effects of the server's messages
are applied when they are delivered to the client, not when they reach the proxy: a client that sends before an
answer could have reached it did not wait for it.

*Turns* are the naive count beside it: each time the server starts sending after the client sent something since
the server's last send. The two agree for a client that takes turns; a pipelining client that keeps sending while
answers arrive makes more turns than round trips.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from psycopg.conninfo import conninfo_to_dict
from typing_extensions import Self

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
Direction = Literal["client", "server"]  # who sent the chunk


@dataclass
class Conversation:
    """One connection's round-trip accounting (see the module's docstring), shared by its four threads."""

    round_trips: int = 0
    turns: int = 0
    #: Requests the server owes a ReadyForQuery (or, for an SSL request, its one-byte answer) not yet delivered.
    owed: int = 0
    #: Extended-protocol messages sent since the client's last Sync or Flush.
    open: bool = False
    #: Whether the last Flush's answer is still on its way; the time it reached the server, once it did.
    flush_pending: bool = False
    flush_seq: int = 0
    flush_reached: float = float("inf")
    #: The server handed the turn to the client (an authentication challenge, CopyIn, an SSL answer).
    awaiting: bool = False
    client_spoke: bool = False
    #: Both streams became opaque (TLS): counted as turns from then on.
    opaque: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def idle(self) -> bool:
        return self.awaiting or (self.owed == 0 and not self.open and not self.flush_pending)

    def client_sent(self, kinds: list[str]) -> int:
        """Account for the messages of a chunk that just arrived from the client; return the highest Flush
        sequence among them (0 for none)."""
        flush = 0
        with self.lock:
            self.client_spoke = True
            for kind in kinds:
                if kind in ("X", "cancel"):  # asks for no answer
                    continue
                if self.idle():
                    self.round_trips += 1
                self.awaiting = False
                if kind in ("Q", "F", "startup", "ssl", "opaque"):
                    self.owed += 1
                elif kind == "S":
                    self.owed += 1
                    self.open = False
                elif kind == "H":
                    # A Flush after a Sync asks for nothing that the Sync's own answer does not bring (and the
                    # server, with nothing left to send, does not answer it)
                    if self.open:
                        self.flush_pending, self.flush_reached = True, float("inf")
                        self.flush_seq += 1
                        flush = self.flush_seq
                    self.open = False
                elif kind in ("P", "B", "D", "E", "C"):
                    self.open = True
        return flush

    def client_delivered(self, flush: int, at: float) -> None:
        if flush:
            with self.lock:
                if flush == self.flush_seq:
                    self.flush_reached = at

    def server_sent(self) -> None:
        with self.lock:
            if self.client_spoke:
                self.turns += 1
                self.client_spoke = False

    def server_delivered(self, kinds: list[str], left_server: float) -> None:
        with self.lock:
            if self.flush_pending and left_server >= self.flush_reached:
                self.flush_pending = False
            for kind in kinds:
                if kind in ("Z", "ssl-answer"):
                    self.owed = max(0, self.owed - 1)
                elif kind == "opaque":
                    self.owed, self.open, self.flush_pending = 0, False, False
                if kind in ("challenge", "G", "W", "ssl-answer"):
                    self.awaiting = True


class Framing:
    """Splits one direction's byte stream into the protocol's messages, naming each as `Conversation` expects."""

    def __init__(self, side: Direction) -> None:
        self.side = side
        self.buffer = bytearray()
        self.startup = side == "client"  # a client's first messages have no type byte
        self.raw = 0  # one-byte answers to SSL or GSS requests expected from the server
        self.opaque = False
        self.peer: Framing | None = None

    def feed(self, data: bytes) -> list[str]:
        if self.opaque:
            return ["opaque"]
        self.buffer += data
        kinds: list[str] = []
        while self.buffer:
            if self.raw:
                answer = bytes(self.buffer[0:1])
                del self.buffer[0]
                self.raw -= 1
                kinds.append("ssl-answer")
                if answer in (b"S", b"G"):  # encrypted from here on: the framing is no longer readable
                    self.go_opaque()
                    kinds.append("opaque")
                    break
                continue
            if self.startup:
                if len(self.buffer) < 8:
                    break
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    break
                del self.buffer[:length]
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    assert self.peer is not None
                    self.peer.raw += 1
                    kinds.append("ssl")
                elif code == CANCEL_REQUEST:
                    kinds.append("cancel")
                else:
                    kinds.append("startup")
                    self.startup = False
                continue
            if len(self.buffer) < 5:
                break
            kind = chr(self.buffer[0])
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                break
            if kind == "R" and self.side == "server":
                (auth,) = struct.unpack("!i", self.buffer[5:9])
                # 0 is AuthenticationOk, 12 SASLFinal: neither waits for the client
                kind = "R" if auth in (0, 12) else "challenge"
            del self.buffer[: 1 + length]
            kinds.append(kind)
        return kinds

    def go_opaque(self) -> None:
        self.opaque = True
        self.buffer.clear()
        if self.peer is not None:
            self.peer.opaque = True


@dataclass
class Stamp:
    direction: Direction
    received: float
    delivered: float


class Pipe:
    """One direction of one connection: a reader that stamps chunks with their delivery time, and a writer that
    delivers them in order when each is due."""

    def __init__(
        self, proxy: Proxy, conv: Conversation, direction: Direction, src: socket.socket, dst: socket.socket
    ) -> None:
        self.proxy, self.conv, self.direction, self.src, self.dst = proxy, conv, direction, src, dst
        self.framing = Framing(direction)
        self.queue: deque[tuple[float, bytes, list[str], int] | None] = deque()
        self.ready = threading.Condition()
        self.threads = [
            threading.Thread(target=self.read, daemon=True, name=f"proxy {direction} reader"),
            threading.Thread(target=self.write, daemon=True, name=f"proxy {direction} writer"),
        ]

    def read(self) -> None:
        try:
            while data := self.src.recv(65536):
                now = time.perf_counter()
                kinds = self.framing.feed(data)
                flush = 0
                if self.direction == "client":
                    flush = self.conv.client_sent(kinds)
                else:
                    self.conv.server_sent()
                with self.ready:
                    self.queue.append((now, data, kinds, flush))
                    self.ready.notify()
        except OSError:
            pass
        finally:
            with self.ready:
                self.queue.append(None)
                self.ready.notify()

    def write(self) -> None:
        delay = self.proxy.delay
        try:
            while True:
                with self.ready:
                    while not self.queue:
                        self.ready.wait()
                    item = self.queue.popleft()
                if item is None:
                    with contextlib.suppress(OSError):
                        self.dst.shutdown(socket.SHUT_WR)
                    return
                received, data, kinds, flush = item
                wait = received + delay - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                # accounted for before the bytes go: the peer may answer them before this thread runs again
                delivered = time.perf_counter()
                if self.direction == "client":
                    self.conv.client_delivered(flush, delivered)
                else:
                    self.conv.server_delivered(kinds, received)
                self.dst.sendall(data)
                self.proxy.stamps.append(Stamp(self.direction, received, delivered))
        except OSError:
            with contextlib.suppress(OSError):
                self.src.shutdown(socket.SHUT_RDWR)


class Proxy:
    """The proxy, in this process: ``with Proxy(dsn, delay=0.0005) as proxy:`` connect to 127.0.0.1:``proxy.port``."""

    def __init__(self, dsn: str, *, delay: float = 0.0005) -> None:
        self.upstream = upstream_address(dsn)
        self.delay = delay
        self.conversations: list[Conversation] = []
        #: The last 100,000 chunks' arrival and delivery times.
        self.stamps: deque[Stamp] = deque(maxlen=100_000)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.acceptor = threading.Thread(target=self.accept, daemon=True, name="proxy acceptor")

    def __enter__(self) -> Self:
        self.acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.acceptor.join(5)
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            family, address = self.upstream
            server = socket.socket(family, socket.SOCK_STREAM)
            try:
                server.connect(address)
            except OSError:
                client.close()
                server.close()
                continue
            for s in (client, server):
                if s.family != socket.AF_UNIX:
                    # Nagle's algorithm would hold small messages back by a delay of its own
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conv = Conversation()
            there = Pipe(self, conv, "client", client, server)
            back = Pipe(self, conv, "server", server, client)
            there.framing.peer, back.framing.peer = back.framing, there.framing
            with self.lock:
                self.conversations.append(conv)
                self.sockets += [client, server]
            for t in there.threads + back.threads:
                t.start()

    def counts(self) -> dict[str, Any]:
        """Round trips and turns so far, in all and per connection (in the order they were accepted)."""
        with self.lock:
            convs = list(self.conversations)
        return {
            "round_trips": sum(c.round_trips for c in convs),
            "turns": sum(c.turns for c in convs),
            "per_connection": [c.round_trips for c in convs],
        }

    def delays(self) -> dict[str, dict[str, float]]:
        """Per direction, the delays applied (milliseconds) since the last call: median, min, max and count."""
        stamps = list(self.stamps)
        self.stamps.clear()
        out: dict[str, dict[str, float]] = {}
        for direction in ("client", "server"):
            ms = [(s.delivered - s.received) * 1e3 for s in stamps if s.direction == direction]
            if ms:
                out[direction] = {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "chunks": len(ms)}
        return out


def upstream_address(dsn: str) -> tuple[socket.AddressFamily, Any]:
    """Where *dsn*'s server listens: its unix socket, or its TCP address."""
    info = conninfo_to_dict(dsn)
    host = str(info.get("host") or "/var/run/postgresql")
    port = int(info.get("port") or 5432)
    if "," in host:
        msg = f"the proxy forwards to one server, and {dsn!r} names several hosts"
        raise ValueError(msg)
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (str(info.get("hostaddr") or host), port)


class ProxyProcess:
    """The proxy in a process of its own, so that it never waits for the measured process's interpreter lock:
    ``with ProxyProcess(dsn, delay=0.0005) as proxy: proxy.port, proxy.counts()``."""

    def __init__(self, dsn: str, *, delay: float = 0.0005) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.proxy", dsn, "--delay", str(delay * 1e3)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.port: int = json.loads(self._line())["port"]

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            msg = f"the proxy process ended (exit code {self.process.wait()})"
            raise RuntimeError(msg)
        return line

    def _ask(self, what: str) -> Any:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(what + "\n")
        stdin.flush()
        return json.loads(self._line())

    def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = self._ask("counts")
        return counts

    def delays(self) -> dict[str, dict[str, float]]:
        delays: dict[str, dict[str, float]] = self._ask("delays")
        return delays

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("dsn", help="the server to forward to (its host and port; a unix socket directory or TCP)")
    parser.add_argument("--delay", type=float, default=0.5, help="milliseconds added each way (default 0.5)")
    args = parser.parse_args(argv)
    with Proxy(args.dsn, delay=args.delay / 1e3) as proxy:
        print(json.dumps({"port": proxy.port}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            answer: object = proxy.counts() if command == "counts" else proxy.delays() if command == "delays" else {}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
