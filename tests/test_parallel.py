"""The forked path of parallel.py: shards really run in other processes, results come back in
order, a child's failure reaches the parent — and a site over the thresholds builds right.

Each runs in a fresh interpreter: run_sharded stays in-process while any other thread runs
(fork would copy its locks), and the test process may have some."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from support import make_project, write

WORKERS = 3
ARTICLES = 320
"""More articles than the parse, check (200) and render (300 routes) thresholds."""


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_shards_run_in_forked_processes_and_results_keep_their_order() -> None:
    result = python(
        f"""
        import os
        from headwater.parallel import run_sharded

        def work(shard):
            return [(item * item, os.getpid()) for item in shard]

        results = run_sharded(work, list(range(50)), workers={WORKERS})
        assert [square for square, _ in results] == [i * i for i in range(50)], results
        pids = {{pid for _, pid in results}}
        print(len(pids), os.getpid() in pids)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(WORKERS), "True"]


def test_an_exception_in_a_child_is_raised_in_the_parent() -> None:
    result = python(
        f"""
        import os
        from headwater.parallel import run_sharded

        parent = os.getpid()

        def work(shard):
            if os.getpid() != parent and 7 in shard:
                raise ValueError("item 7 is broken")
            return list(shard)

        try:
            run_sharded(work, list(range(20)), workers={WORKERS})
        except ValueError as exc:
            print("raised:", exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "raised: item 7 is broken"


def test_a_child_that_dies_is_reported() -> None:
    result = python(
        f"""
        import os
        from headwater.parallel import run_sharded

        parent = os.getpid()

        def work(shard):
            if os.getpid() != parent:
                os._exit(9)
            return list(shard)

        try:
            run_sharded(work, list(range(20)), workers={WORKERS})
        except RuntimeError as exc:
            print("raised:", exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("raised: a render worker died (wait status")


def test_a_site_over_the_thresholds_is_parsed_checked_and_rendered_in_several_processes(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "site")
    for n in range(ARTICLES):
        write(
            project,
            f"article/generated-{n:03d}.md",
            f"---\ntitle: Generated article {n}\nsummary: Article number {n}.\n"
            f"author: dr-test\npublishDate: 2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}\n"
            f"topics: [testing]\n---\n\nThe body of article {n}.\n",
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}
    command = [sys.executable, "-m", "headwater", "--project", str(project), "-vv", "build"]
    command += ["--source", "local", "--base-url", "https://example.test"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    cpus = os.cpu_count() or 1
    assert cpus >= 2, "the machines this suite runs on have at least two CPUs"
    forked = re.findall(r"DEBUG (\d+) items in (\d+) processes \((\w+)\)", result.stderr)
    kinds = {name for _, count, name in forked if int(count) == min(cpus, int(_))}
    assert {"_parse_shard", "work"} <= kinds, result.stderr
    public = project / "public"
    for n in range(ARTICLES):
        page = public / "blog" / f"generated-{n:03d}" / "index.html"
        assert f"<p>The body of article {n}.</p>" in page.read_text(), page
    pages = [p for p in public.rglob("*.html")]
    assert re.search(rf"Built {len(pages)} pages and \d+ other files", result.stdout)
