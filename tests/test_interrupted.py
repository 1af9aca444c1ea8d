"""A build killed at any point leaves the old or the new site, never a mix; the next is correct."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import build, make_project, snapshot_tree

# Runs a build in a child process with one stage replaced by a version that says "ready" and
# then waits forever, so the test can kill the process at exactly that point.
DRIVER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    import headwater.build as build_module
    import headwater.render as render_module
    import headwater.writer as writer
    from headwater.config import make_options

    stage = sys.argv[2]
    def hold():
        print("ready", flush=True)
        threading.Event().wait()

    if stage == "render":
        real_render = render_module.render_route
        count = [0]
        def render_route(env, site, route):
            count[0] += 1
            if count[0] == 3:
                hold()
            return real_render(env, site, route)
        render_module.render_route = render_route
    else:
        real_swap = writer.Publisher.swap
        def swap(self):
            if stage == "after-swap":
                real_swap(self)
            hold()
        writer.Publisher.swap = swap

    options = make_options(root=Path(sys.argv[1]), out="public", base_url="https://example.test",
                           source="local", preview=False, full=False)
    build_module.build(options)
    """
)


def bytes_of(folder: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in snapshot_tree(folder).items()}


@pytest.mark.parametrize("stage", ["render", "before-swap", "after-swap"])
def test_killed_build_leaves_a_whole_site_and_the_next_build_is_right(
    tmp_path: Path, stage: str
) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    old = bytes_of(project / "public")
    path = project / "content" / "article" / "first-article.md"
    path.write_text(path.read_text().replace("The First Article", "A Renamed Article"))
    assert build(project, "--full", "--out", str(project / "expected")).exit_code == 0
    new = bytes_of(project / "expected")

    child = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(project), stage],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout:
            child.stdout.close()

    assert bytes_of(project / "public") == (new if stage == "after-swap" else old)
    result = build(project)
    assert result.exit_code == 0, result.output
    assert bytes_of(project / "public") == new
