#!/usr/bin/env python3
"""Measure the webhook receiver's recovery: the time from a restart to the forwarded change,
and the retry schedule it actually follows against a build hook that answers 503.

Runs the real `headwater webhook --forward` in subprocesses against a loopback build hook:

1. restart: publish with a long quiet period, stop the receiver (SIGTERM, or SIGKILL), start
   it again on the same journal, and time start → hook call and "Listening" → hook call;
2. retries: a hook answering 503 N times, then 200; prints the gap before each call.

    python scripts/measure_receiver.py [--runs 5] [--retry-min 0.5] [--retry-max 4] [--fails 6]
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from headwater.contentful.signature import sign_request

SECRET = "m" * 64
WEBHOOK_PATH = "/webhooks/contentful"
WAIT = 60.0


class Hook:
    """A loopback build hook: answers 503 `fails` times, then 200; records call times."""

    def __init__(self, fails: int = 0) -> None:
        self.fails = fails
        self.calls: list[tuple[float, int]] = []
        self.cond = threading.Condition()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.cond:
                    status = 503 if len(hook.calls) < hook.fails else 200
                    hook.calls.append((time.monotonic(), status))
                    hook.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/build_hooks/measure"

    def wait(self, count: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.calls) >= count, WAIT):
                raise SystemExit(f"the hook got {len(self.calls)} calls, not {count}")


def start(project: Path, *args: str) -> tuple[subprocess.Popen[str], int, float]:
    """A receiver, its port, and when its "Listening" line arrived (monotonic)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}
    env.update(CONTENTFUL_WEBHOOK_SECRET=SECRET, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "headwater", "--project", str(project), "webhook"]
    process = subprocess.Popen(
        [*command, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], WAIT)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("Listening on "):
        raise SystemExit(f"the receiver did not start: {line!r}")
    port = urlsplit(line.split()[2]).port
    assert port is not None
    return process, port, time.monotonic()


def publish(port: int, entry: str) -> None:
    body = json.dumps({"sys": {"id": entry, "type": "Entry", "revision": 1}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Contentful-Topic": "ContentManagement.Entry.publish",
    }
    headers.update(sign_request(SECRET, "POST", WEBHOOK_PATH, headers, body).as_dict())
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    connection.request("POST", WEBHOOK_PATH, body=body, headers=headers)
    status = connection.getresponse().status
    connection.close()
    if status != 202:
        raise SystemExit(f"the receiver answered {status}")


def stop(process: subprocess.Popen[str], how: signal.Signals) -> None:
    process.send_signal(how)
    process.wait(WAIT)
    if process.stdout is not None:
        process.stdout.close()


def measure_restart(how: signal.Signals, runs: int) -> None:
    from_start, from_listening = [], []
    for run in range(runs):
        hook = Hook()
        with tempfile.TemporaryDirectory() as folder:
            project = Path(folder)
            args = ["--forward", hook.url, "--quiet", "600"]
            first, port, _ = start(project, *args)
            publish(port, f"entry-{run}")
            stop(first, how)
            began = time.monotonic()
            second, _, listening = start(project, *args)
            hook.wait(1)
            forwarded = hook.calls[0][0]
            stop(second, signal.SIGTERM)
        hook.server.shutdown()
        from_start.append(forwarded - began)
        from_listening.append(forwarded - listening)
    print(
        f"restart after {how.name}, {runs} runs: start → forwarded median "
        f"{statistics.median(from_start):.3f} s (min {min(from_start):.3f}, max "
        f"{max(from_start):.3f}); 'Listening' → forwarded median "
        f"{statistics.median(from_listening) * 1000:.1f} ms (max {max(from_listening) * 1000:.1f})"
    )


def measure_retries(fails: int, retry_min: float, retry_max: float) -> None:
    hook = Hook(fails)
    with tempfile.TemporaryDirectory() as folder:
        args = ["--forward", hook.url, "--quiet", "0"]
        args += ["--retry-min", str(retry_min), "--retry-max", str(retry_max)]
        process, port, _ = start(Path(folder), *args)
        published = time.monotonic()
        publish(port, "entry")
        hook.wait(fails + 1)
        stop(process, signal.SIGTERM)
    hook.server.shutdown()
    print(f"retry schedule, --retry-min {retry_min} --retry-max {retry_max}, {fails} × 503:")
    previous = published
    for number, (at, status) in enumerate(hook.calls, 1):
        step = min(retry_max, retry_min * 2 ** (number - 2)) if number > 1 else 0.0
        window = f"(expected {step / 2:.3f}–{step:.3f})" if number > 1 else "(quiet 0)"
        print(f"  call {number}: {status} after {at - previous:.3f} s {window}")
        previous = at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--retry-min", type=float, default=0.5)
    parser.add_argument("--retry-max", type=float, default=4.0)
    parser.add_argument("--fails", type=int, default=6)
    options = parser.parse_args()
    measure_restart(signal.SIGTERM, options.runs)
    measure_restart(signal.SIGKILL, options.runs)
    measure_retries(options.fails, options.retry_min, options.retry_max)


if __name__ == "__main__":
    main()
