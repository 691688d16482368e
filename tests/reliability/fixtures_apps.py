"""What the reliability tests share: work in a thread of its own (its own database
connection), and a look at which sessions wait for a lock."""

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
from django.db import connection

from tests.conftest import wait_until


class InThread:
    """Run `work` in a thread with its own database connection; keeps what it returned or
    raised, for the test to look at after `join`."""

    def __init__(self, work, *args):
        self.result = None
        self.error: BaseException | None = None
        self.backend_pid: int | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(work, *args), daemon=True)

    def _run(self, work, *args) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.backend_pid = cursor.fetchone()[0]
            self.started.set()
            self.result = work(*args)
        except BaseException as exc:  # handed to the test, which raises or checks it
            self.error = exc
        finally:
            self.started.set()
            connection.close()

    def start(self) -> "InThread":
        self.thread.start()
        self.started.wait(30)
        return self

    def join(self, timeout: float = 60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the thread never finished"
        return self

    def value(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def waits_for_a_lock(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                [self.backend_pid],
            )
            row = cursor.fetchone()
        return bool(row and row[0])

    def wait_until_blocked_or_done(self) -> None:
        """Until the thread waits for a lock another session holds, or has finished."""
        wait_until(
            lambda: not self.thread.is_alive() or self.waits_for_a_lock,
            timeout=30,
            message="the thread neither finished nor waited for a lock",
        )


# -- a misbehaving app: a real HTTP server in front of the demo apps --------------------------

FAULT_BODIES = {
    # (status, content type, body)
    "server_error": (
        500,
        "application/json",
        b'{"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}',
    ),
    "html_error_page": (
        502,
        "text/html",
        b"<html><head><title>502 Bad Gateway</title></head>"
        b"<body><h1>Bad Gateway</h1><p>The proxy got no answer.</p></body></html>",
    ),
    "not_json": (200, "text/plain", b"Service is starting, please wait"),
    "truncated_json": (200, "application/json", b'{"value": [{"accountid": "0000'),
    "wrong_shape": (200, "application/json", b'{"value": {"accountid": "a list was expected"}}'),
    "json_list": (200, "application/json", b'["a", "list", "instead", "of", "an", "object"]'),
}
# Every fault the proxy can play: the canned answers, an answer whose body ends early (its
# Content-Length promised more), a server that never answers, and one that answers only once
# the test lets it (`FaultProxy.let_go`).
FAULTS = [*FAULT_BODIES, "cut_off", "never_answers", "held"]


@dataclass
class Rule:
    """Which requests get the fault: a method and a path pattern, optionally only every Nth
    matching request, or only the first `times` of them. With `after_success`, the request
    reaches the app first and the fault replaces a successful answer (the app acted, its
    answer was lost)."""

    fault: str
    path: str = ""
    method: str = ""
    every: int = 1
    times: int | None = None
    after_success: bool = False
    matched: int = 0

    def applies(self, method: str, path: str) -> bool:
        if self.method and method != self.method:
            return False
        if not re.search(self.path, path):
            return False
        self.matched += 1
        if self.times is not None and self.matched > self.times:
            return False
        return self.matched % self.every == 0


class FaultProxy:
    """A reverse proxy in front of the live demo apps (a ThreadingHTTPServer in a thread)
    that answers chosen requests with a fault instead, and counts every request it got."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.requests: list[tuple[str, str]] = []  # (method, path without the query)
        self.lock = threading.Lock()
        self.released = threading.Event()  # ends the answers that never come
        self.held = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two sends: without this, each answer on a kept-alive
            # connection waits up to 40 ms for the client's delayed acknowledgement.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # the test output stays readable
                pass

            def handle_one(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.client = httpx.Client(base_url=self.upstream, timeout=60)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fault(self, fault: str, path: str = "", **options) -> Rule:
        assert fault in FAULTS, fault
        rule = Rule(fault, path, **options)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules = []
            self.requests = []

    def count(self, path: str = "", method: str = "") -> int:
        """The requests received whose path matches the pattern (and method, when given)."""
        with self.lock:
            return sum(
                1 for m, p in self.requests if re.search(path, p) and (not method or m == method)
            )

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        path = urlsplit(request.path).path
        with self.lock:
            self.requests.append((request.command, path))
            rule = next((r for r in self.rules if r.applies(request.command, path)), None)
        if rule is None:
            self.answer(request, *self.forward(request, body))
            return
        if rule.after_success:
            answer = self.forward(request, body)
            if answer[0] >= 400:
                self.answer(request, *answer)
                return
        if rule.fault == "held":
            self.held.wait(120)
            self.answer(request, *self.forward(request, body))
        elif rule.fault == "never_answers":
            # Keeps the connection open without a byte of answer until the test ends.
            self.released.wait(120)
            request.close_connection = True
        elif rule.fault == "cut_off":
            request.send_response(200)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", "4000")
            request.end_headers()
            request.wfile.write(b'{"value": [{"accountid": "00000000-0000')
            request.wfile.flush()
            request.close_connection = True
        else:
            status, kind, content = FAULT_BODIES[rule.fault]
            self.answer(request, status, {"Content-Type": kind}, content)

    def let_go(self) -> None:
        """Let the held requests through."""
        self.held.set()

    def forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict, bytes]:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in ("host", "content-length", "connection", "accept-encoding")
        }
        answer = self.client.request(request.command, request.path, headers=headers, content=body)
        return answer.status_code, self._kept_headers(answer), self._relinked(answer.content)

    def _relinked(self, content: bytes) -> bytes:
        # Links in the answer (the next page) point at the proxy, as they would at the app.
        return content.replace(self.upstream.encode(), self.url.encode())

    @staticmethod
    def _kept_headers(answer: httpx.Response) -> dict[str, str]:
        return {
            name: value
            for name, value in answer.headers.items()
            if name.lower()
            not in ("content-length", "content-encoding", "transfer-encoding", "connection")
        }

    @staticmethod
    def answer(request, status: int, headers: dict, content: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(content)))
        request.end_headers()
        request.wfile.write(content)

    def stop(self) -> None:
        self.released.set()
        self.held.set()
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


def point_at(connection, proxy: FaultProxy, upstream: str, **tuning) -> None:
    """Send both sides of the connection through the proxy, with the given tuning (timeout,
    max_retries, ...) on each side."""
    for side in ("source", "destination"):
        field = f"{side}_base_url"
        setattr(connection, field, getattr(connection, field).replace(upstream, proxy.url))
        getattr(connection, f"{side}_settings").update(tuning)
    connection.save()
