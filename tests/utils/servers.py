"""Real HTTP servers for tests: gunicorn and uvicorn started on a loopback port, and a small HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(
    kind: str,
    dsn: str,
    *,
    preload: bool = False,
    workers: int = 1,
    pool: int = 4,
    app: str = "tests.usercode.bank",
    env: dict[str, str] | None = None,
) -> Iterator[int]:
    """Run the *app* module's app (by default the bank's) under *kind* (``gunicorn``: Flask with gthread workers;
    ``uvicorn``: FastAPI) on a free loopback port, with *env* added to its environment; yield the port once it
    answers, stop the server at the end."""
    port = free_port()
    if kind == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", str(workers),
                   "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--log-level", "warning",
                   *(["--preload"] if preload else []), f"{app}:flask_app()"]  # fmt: skip
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", f"{app}:fastapi_app", "--port", str(port),
                   "--log-level", "warning", "--timeout-graceful-shutdown", "5"]  # fmt: skip
    environ = {**os.environ, "BANK_DSN": dsn, "BANK_POOL": str(pool), "PYTHONPATH": str(ROOT), **(env or {})}
    process = subprocess.Popen(command, cwd=ROOT, env=environ)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request(port, "GET", "/counters")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request(port: int, method: str, path: str, *, timeout: float = 20) -> tuple[int, Any]:
    """One request on a new connection: its status and decoded JSON body (None if the body is not JSON)."""
    status, _, body = exchange(port, method, path, timeout=timeout)
    return status, None if isinstance(body, str) else body


def exchange(
    port: int, method: str, path: str, headers: list[tuple[str, str]] | None = None, *, timeout: float = 20
) -> tuple[int, list[tuple[str, str]], Any]:
    """One request on a new connection, with *headers* (a name may repeat): the status, the response's headers
    and its decoded JSON body (its text if the body is not JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path)
        if method in ("POST", "PUT"):
            conn.putheader("Content-Length", "0")
        for name, value in headers or ():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        return response.status, response.getheaders(), json.loads(body)
    except ValueError:
        return response.status, response.getheaders(), body.decode(errors="replace")


def hang_up(port: int, path: str, after: float) -> None:
    """Send a request and close the connection *after* seconds, before the answer (a client that went away)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode())
        time.sleep(after)
