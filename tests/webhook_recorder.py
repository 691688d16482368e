"""A subscriber on a local port for the demo apps to notify: it answers Business Central's
handshake as asked and keeps every notification it receives, with its query and headers, so
that a test can look at it or hand it on to the console's receiver."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Delivery:
    query: str
    headers: dict[str, str]
    body: dict

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query)


class Recorder:
    """Answers each notification with `status` (a subscriber that is gone answers 410)."""

    def __init__(self, status: int = 200) -> None:
        self.handshakes: list[str] = []
        self.deliveries: list[Delivery] = []
        self.status = status
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                query = urlsplit(self.path).query
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                token = parse_qs(query).get("validationToken")
                if token:
                    recorder.handshakes.append(token[0])
                    answer = token[0].encode()
                else:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    recorder.deliveries.append(Delivery(query, headers, json.loads(body)))
                    answer = b""
                self.send_response(200 if token else recorder.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def notifications(self) -> list[dict]:
        """The bodies of the notifications received, in order."""
        return [delivery.body for delivery in self.deliveries]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
