"""The Contentful scenarios of scripts/bench.py: the generated articles, served by a local API.

The bench's generated project is turned into a space as `scripts/seed_contentful.py` would
create it (Markdown bodies converted to RichText, slugs to entry links, images to assets) and
served by tests/contentful_server.py — Contentful's Delivery and Preview API paths and shapes,
sync in 100-item pages — on 127.0.0.1. Then, each in a subprocess as a Netlify build would run:

- a cold build (initial sync), a no-op build, one article republished (a sync delta);
- the editors' live preview (`headwater preview`): an auto_save of one article until the page
  an open tab reloads shows the change (the webhook's POST to the reload event, plus the GET
  the tab then makes).

Every incremental output is compared with a cold --full build of the same space.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bench as core

sys.path.insert(0, str(core.REPO / "tests"))

import contentful_server  # noqa: E402 - tests/ is on the path only from here on
from contentful_server import (  # noqa: E402
    DELIVERY_TOKEN,
    PREVIEW_TOKEN,
    ContentfulServer,
    FakeSpace,
)

from headwater.contentful.management import load_local_schema  # noqa: E402
from headwater.contentful.seed import _asset_id, plan_seed  # noqa: E402
from headwater.contentful.signature import sign_request  # noqa: E402
from headwater.sources.local import load_snapshot  # noqa: E402

SPACE = "benchspace01"
ENVIRONMENT = "master"
PAGE_SIZE = 100
WEBHOOK_SECRET = "bench-webhook-secret-" + "s" * 32
PREVIEW_SECRET = "bench-preview-access-" + "p" * 32
WEBHOOK = "/webhooks/contentful"
WAIT = 600.0
WHEN = "2026-11-02T09:00:00.000Z"


def _link(kind: str, target: str) -> dict[str, Any]:
    return {"sys": {"type": "Link", "linkType": kind, "id": target}}


def _sys(kind: str, item_id: str, revision: int = 1) -> dict[str, Any]:
    return {
        "space": _link("Space", SPACE),
        "id": item_id,
        "type": kind,
        "createdAt": WHEN,
        "updatedAt": WHEN,
        "environment": _link("Environment", ENVIRONMENT),
        "revision": revision,
    }


def space_from_project(project: Path) -> FakeSpace:
    """The space seeding the project's content/ would make, in the Delivery API's shapes."""
    locale = "en-US"
    locales = [
        {
            "code": locale,
            "name": "English (United States)",
            "default": True,
            "fallbackCode": None,
            "sys": {"id": "benchlocale", "type": "Locale", "version": 1},
        }
    ]
    types = [
        {"sys": {**_sys("ContentType", t.id)}, **t.body}
        for t in load_local_schema(project / "cms_schema")
    ]
    space = FakeSpace(SPACE, ENVIRONMENT, locales, types)
    for key, asset in sorted(load_snapshot(project / "content").assets.items()):
        item_id = _asset_id(key)
        name = Path(asset.source).name
        digest = hashlib.sha1(key.encode()).hexdigest()
        details: dict[str, Any] = {"size": asset.size or 0}
        if asset.width and asset.height:
            details["image"] = {"width": asset.width, "height": asset.height}
        fields = {
            "title": {locale: asset.title},
            "description": {locale: asset.alt},
            "file": {
                locale: {
                    "url": f"//images.ctfassets.net/{SPACE}/{item_id}/{digest}/{name}",
                    "details": details,
                    "fileName": name,
                    "contentType": asset.mime,
                }
            },
        }
        space.publish({"metadata": {"tags": []}, "sys": _sys("Asset", item_id), "fields": fields})
    for entry in plan_seed(project, locale).entries:
        sys_ = {**_sys("Entry", entry.id), "contentType": _link("ContentType", entry.content_type)}
        space.publish({"metadata": {"tags": []}, "sys": sys_, "fields": entry.fields})
    return space


def revised(item: dict[str, Any], revision: int) -> tuple[dict[str, Any], str]:
    """An editor's edit of one article's title and last paragraph: (the new item, its title)."""
    item = copy.deepcopy(item)
    item["sys"]["revision"] = item["sys"]["revision"] + 1
    item["sys"]["version"] = item["sys"]["revision"] * 2
    fields = item["fields"]
    title = re.sub(r" \(revision \d+\)$", "", fields["title"]["en-US"])
    title = f"{title} (revision {revision})"
    fields["title"]["en-US"] = title
    paragraph = {
        "nodeType": "paragraph",
        "data": {},
        "content": [
            {
                "nodeType": "text",
                "value": f"An edited closing paragraph, revision {revision}.",
                "marks": [],
                "data": {},
            }
        ],
    }
    fields["body"]["en-US"]["content"].append(paragraph)
    return item, title


class BenchServer(ContentfulServer):
    """The tests' API server, plus what the bench asks of the web app: publish an item
    (POST /__bench/publish) and count the API requests since the last count."""

    def __init__(self, space: FakeSpace) -> None:
        super().__init__(space, page_size=PAGE_SIZE, max_items=1000)
        self._httpd.server_close()
        served = self

        class Handler(contentful_server._handler(self)):  # type: ignore[misc]
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/__bench/publish":
                    with served._lock:
                        served.space.publish(json.loads(data))
                    answer = b"{}"
                elif self.path == "/__bench/requests":
                    with served._lock:
                        answer = json.dumps(len(served.requests)).encode()
                        served.requests.clear()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)


def serve(project: Path, slug: str) -> None:
    """The API server process: build the space, print where it is, serve until stdin closes."""
    started = time.perf_counter()
    space = space_from_project(project)
    edited = next(
        item["sys"]["id"]
        for item in space.items.values()
        if item["sys"].get("contentType", {}).get("sys", {}).get("id") == "article"
        and item["fields"]["slug"]["en-US"] == slug
    )
    entries = sum(1 for k in space.items if k.startswith("Entry:"))
    with BenchServer(space) as server:
        said = {"url": server.url, "edited": edited, "entries": entries}
        said.update(assets=len(space.items) - entries, seconds=time.perf_counter() - started)
        print(json.dumps(said), flush=True)
        sys.stdin.read()


class Api:
    """The bench's side of the API server process."""

    def __init__(self, process: subprocess.Popen[str], said: dict[str, Any]) -> None:
        self.process = process
        self.url = str(said["url"])
        self.port = int(self.url.rsplit(":", 1)[1])
        self.edited = str(said["edited"])

    def call(self, method: str, path: str, body: bytes = b"", token: str = DELIVERY_TOKEN) -> Any:
        with closing(http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)) as conn:
            conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            data = response.read()
            assert response.status == 200, f"{method} {path}: {response.status} {data[:200]!r}"
            return json.loads(data)

    def item(self, entry_id: str) -> dict[str, Any]:
        path = f"/spaces/{SPACE}/environments/{ENVIRONMENT}/entries?sys.id[in]={entry_id}"
        found: dict[str, Any] = self.call("GET", path + "&locale=*")["items"][0]
        return found

    def republish(self, entry_id: str, revision: int) -> tuple[int, str]:
        """Publish an edit of the article, as the web app would: (its version, its title)."""
        item, title = revised(self.item(entry_id), revision)
        self.call("POST", "/__bench/publish", json.dumps(item).encode())
        return int(item["sys"]["version"]), title

    def requests(self) -> int:
        """API requests since the last count (the bench's own GETs included)."""
        return int(self.call("POST", "/__bench/requests"))


@contextmanager
def api_server(project: Path, slug: str) -> Iterator[Api]:
    command = [sys.executable, str(Path(__file__)), "serve", str(project), slug]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("{"), f"the API server did not start: {line!r}"
            said = json.loads(line)
            core.log(
                f"  a local Contentful space of {said['entries']:,} entries and "
                f"{said['assets']} assets, served at {said['url']} in {said['seconds']:.1f} s"
            )
            yield Api(process, said)
        finally:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def api_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTFUL_", "HEADWATER_"))}
    for name in ("URL", "CONTEXT", "INCOMING_HOOK_BODY"):
        env.pop(name, None)
    env.update(
        CONTENTFUL_SPACE_ID=SPACE,
        CONTENTFUL_ENVIRONMENT=ENVIRONMENT,
        CONTENTFUL_DELIVERY_TOKEN=DELIVERY_TOKEN,
        CONTENTFUL_PREVIEW_TOKEN=PREVIEW_TOKEN,
        CONTENTFUL_HOST=url,
        CONTENTFUL_PREVIEW_HOST=url,
        CONTENTFUL_WEBHOOK_SECRET=WEBHOOK_SECRET,
        HEADWATER_PREVIEW_SECRET=PREVIEW_SECRET,
        PYTHONUNBUFFERED="1",
    )
    return env


def build_command(project: Path, *, full: bool = False) -> list[str]:
    command = [sys.executable, "-m", "headwater", "--project", str(project), "build"]
    command += ["--source", "contentful", "--out", "public", "--base-url", core.BASE_URL]
    return command + (["--full"] if full else [])


def run_timed(command: list[str], cwd: Path, env: dict[str, str]) -> core.Run:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return core.run_timed(command, cwd)
    finally:
        os.environ.clear()
        os.environ.update(saved)


class ContentfulBench:
    """The Contentful scenarios for one generated project, against one local API server."""

    def __init__(self, bench: core.SizeBench, root: Path) -> None:
        self.n = bench.n
        self.runs = bench.runs
        self.failures = bench.failures
        self.expected_pages = core.expected_pages(bench.corpus, bench.page_files)
        self.source = bench.project
        self.slug = bench.corpus.edited.slug
        self.project = root / "contentful"
        self.reference = root / "contentful-reference"
        for project in (self.project, self.reference):
            for folder in core.COPIED_DIRS:
                shutil.copytree(bench.project / folder, project / folder)

    def run_all(self) -> list[core.Measure]:
        with api_server(self.source, self.slug) as api:
            self.api = api
            self.env = api_env(api.url)
            measures = [self.cold(), self.noop(), *self.republished()]
            self.verify()
            measures.append(self.preview())
        return measures

    def build(self, measure: core.Measure, check: core.ChangeCheck | None = None) -> None:
        self.api.requests()
        run = run_timed(build_command(self.project), self.project, self.env)
        where = f"N={self.n:,} {measure.label}"
        requests = self.api.requests()
        core.log(
            f"  {where}: {run.seconds:.2f} s, {run.maxrss_kib / 1024:.0f} MiB, {requests} requests"
        )
        if run.returncode != 0:
            self.failures.append(f"{where}: exit {run.returncode}\n{core.tail(run.stderr)}")
            return
        summary = core.parse_summary(run.stdout)
        if summary is None:
            self.failures.append(f"{where}: no summary line in:\n{core.tail(run.stdout)}")
            return
        if summary.pages != self.expected_pages:
            self.failures.append(f"{where}: {summary.pages} pages, expected {self.expected_pages}")
        problem = check(summary) if check else None
        if problem:
            self.failures.append(f"{where}: {problem}")
        measure.runs.append(run)
        measure.summaries.append(f"{summary.line} [{requests} API requests]")

    def cold(self) -> core.Measure:
        measure = core.Measure("Contentful: cold build (initial sync)")
        for _ in range(self.runs):
            core.clear_output(self.project)
            self.build(measure)
        return measure

    def noop(self) -> core.Measure:
        measure = core.Measure("Contentful: no-op build")
        for _ in range(self.runs):
            self.build(measure, core.unchanged)
        return measure

    def republished(self) -> list[core.Measure]:
        """The first republish after a cold build, which also links every file of the site
        into the spare folder once (see writer.py), then `runs` more: the cost from then on."""
        first = core.Measure("Contentful: one article republished (first after a cold build)")
        self.api.republish(self.api.edited, 1)
        self.build(first, core.wrote_something)
        measure = core.Measure("Contentful: one article republished")
        for i in range(self.runs):
            self.api.republish(self.api.edited, i + 2)
            self.build(measure, core.wrote_something)
        return [first, measure]

    def verify(self) -> None:
        """The incremental output must equal a cold --full build of the same space."""
        core.clear_output(self.reference)
        run = run_timed(build_command(self.reference, full=True), self.reference, self.env)
        if run.returncode != 0:
            self.failures.append(f"N={self.n:,} Contentful reference build: exit {run.returncode}")
            return
        differences = core.tree_differences(
            core.digest_tree(self.project / "public"), core.digest_tree(self.reference / "public")
        )
        if differences:
            shown = "\n".join("    " + d for d in differences[: core.SHOWN_DIFFERENCES])
            self.failures.append(
                f"N={self.n:,} Contentful: incremental output differs from a --full build in "
                f"{len(differences)} files:\n{shown}"
            )

    def preview(self) -> core.Measure:
        measure = core.Measure("Preview: auto_save → open tab shows it")
        started = time.perf_counter()
        try:
            with preview_service(self.project, self.env) as service:
                core.log(
                    f"  N={self.n:,} preview service: first build in "
                    f"{time.perf_counter() - started:.1f} s"
                )
                for i in range(self.runs):
                    seconds = service.auto_save(self.api, 100 + i)
                    core.log(f"  N={self.n:,} {measure.label}: {seconds:.2f} s")
                    measure.runs.append(core.Run(seconds, service.peak_rss_kib(), 0, "", ""))
        except (AssertionError, OSError) as exc:
            self.failures.append(f"N={self.n:,} {measure.label}: {exc}")
        return measure


class PreviewService:
    """A running `headwater preview`, signed in, with its live-reload event stream open."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        status, headers, _ = self.request("GET", f"/__preview/entry/x?secret={PREVIEW_SECRET}")
        assert status == 303, f"signing in answered {status}"
        self.cookie = headers["set-cookie"].split(";", 1)[0]
        self.events = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        self.events.request("GET", "/__headwater/events", headers={"Cookie": self.cookie})
        self.stream = self.events.getresponse()
        assert self.stream.status == 200, f"the event stream answered {self.stream.status}"
        self.build = self.next_build(-1)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        with closing(http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)) as conn:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )

    def next_build(self, after: int) -> int:
        fields: dict[str, str] = {}
        while True:
            line = self.stream.readline().decode()
            assert line, "the preview service ended its event stream"
            line = line.rstrip("\n")
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
                continue
            if fields.get("event") == "state":
                state = json.loads(fields["data"])
                assert state["ok"], f"a preview build failed: {state}"
                if state["build"] > after:
                    return int(state["build"])
            fields = {}

    def auto_save(self, api: Api, revision: int) -> float:
        """Seconds from the signed auto_save webhook to the reloaded page showing the edit."""
        version, title = api.republish(api.edited, revision)
        data: dict[str, Any] = {"sys": {"id": api.edited, "type": "Entry", "revision": version}}
        data["sys"]["space"] = _link("Space", SPACE)
        data["sys"]["environment"] = _link("Environment", ENVIRONMENT)
        body = json.dumps(data).encode()
        headers = {
            "Content-Type": "application/vnd.contentful.management.v1+json",
            "X-Contentful-Topic": "ContentManagement.Entry.auto_save",
        }
        headers.update(sign_request(WEBHOOK_SECRET, "POST", WEBHOOK, headers, body).as_dict())
        slug = api.item(api.edited)["fields"]["slug"]["en-US"]
        started = time.perf_counter()
        status, _, answer = self.request("POST", WEBHOOK, body, headers)
        assert status == 202, f"the webhook answered {status}: {answer[:200]!r}"
        self.build = self.next_build(self.build)
        status, _, page = self.request("GET", f"/blog/{slug}/", headers={"Cookie": self.cookie})
        seconds = time.perf_counter() - started
        assert status == 200 and title.encode() in page, f"the page does not show {title!r}"
        return seconds

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(found.group(1)) if found else 0

    def close(self) -> None:
        self.stream.close()
        self.events.close()


@contextmanager
def preview_service(project: Path, env: dict[str, str]) -> Iterator[PreviewService]:
    command = [sys.executable, "-m", "headwater", "--project", str(project), "preview"]
    command += ["--port", "0"]
    log = project / "preview.log"
    with (
        log.open("w") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env) as p,
    ):
        service = None
        try:
            assert p.stdout is not None
            ready, _, _ = select.select([p.stdout], [], [], WAIT)
            line = p.stdout.readline() if ready else ""
            assert line.startswith("Previewing drafts at http://"), (
                f"the preview did not start: {line!r}\n{core.tail(log.read_text())}"
            )
            service = PreviewService(p, line.split()[3])
            yield service
        finally:
            if service is not None:
                service.close()
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def targets(local_cold: float | None, measures: list[core.Measure]) -> list[str]:
    """Lines comparing the Contentful figures with issue 9's and 10's targets."""
    by_label = {m.label: m.seconds for m in measures}
    cold = by_label.get("Contentful: cold build (initial sync)")
    lines = []
    if cold and local_cold:
        lines.append(f"Contentful cold / local cold: {cold / local_cold:.2f}× (target ≤ 1.2×)")
    for label, ratio, limit in (
        ("Contentful: one article republished", 0.1, 1.0),
        ("Contentful: no-op build", 0.05, 0.5),
    ):
        seconds = by_label.get(label)
        if seconds and cold:
            lines.append(
                f"{label}: {seconds:.2f} s (target ≤ {limit} s), {seconds / cold:.3f}× the cold "
                f"build (target ≤ {ratio}×)"
            )
    shown = by_label.get("Preview: auto_save → open tab shows it")
    if shown:
        lines.append(f"Preview auto_save → page shows it: {shown:.2f} s (target ≤ 2 s)")
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve":
        sys.exit("usage: bench_contentful.py serve PROJECT EDITED-SLUG (scripts/bench.py runs it)")
    serve(Path(sys.argv[2]), sys.argv[3])
