"""A stand-in for Netlify's build hook on 127.0.0.1: answers as scripted (e.g. 503, 503, then
200), and records every call with the status it got."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

WAIT = 30.0
SECRET_PATH = "/build_hooks/6f1d0c2b9e8a7f6e5d4c3b2a"
SECRET_QUERY = "token=hunter2-d41d8cd98f00b204"


@dataclass(frozen=True)
class Call:
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    at: float
    """time.monotonic() when it arrived."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedHook:
    """Answers each POST with the next scripted Answer, then 200 for ever."""

    def __init__(self, *answers: int | Answer) -> None:
        self.script = [a if isinstance(a, Answer) else Answer(a) for a in answers]
        self.calls: list[Call] = []
        self.cond = threading.Condition()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                with hook.cond:
                    answer = hook.script.pop(0) if hook.script else Answer(200)
                url = urlsplit(self.path)
                # Recorded before answering: whoever got the answer finds the call listed.
                with hook.cond:
                    hook.calls.append(
                        Call(url.path, parse_qs(url.query), body, answer.status, time.monotonic())
                    )
                    hook.cond.notify_all()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{SECRET_PATH}?{SECRET_QUERY}"

    def __enter__(self) -> ScriptedHook:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT)

    def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.calls), timeout)

    def succeeded(self) -> list[Call]:
        with self.cond:
            return [call for call in self.calls if call.status < 300]
