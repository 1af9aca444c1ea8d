"""The Makefile as a newcomer meets it: `make help` lists every target with its description,
and `make test` names the system tools it lacks and how to install them before it starts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from support import REPO

MAKE = shutil.which("make") or "/usr/bin/make"


def make(folder: Path, *targets: str, path: str) -> subprocess.CompletedProcess[str]:
    command = [MAKE, "-s", "-f", str(REPO / "Makefile"), "-C", str(folder), *targets]
    return subprocess.run(
        command, capture_output=True, text=True, env={"PATH": path}, timeout=60, check=False
    )


def test_make_help_lists_every_described_target(tmp_path: Path) -> None:
    result = make(tmp_path, "help", path="/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    listed = dict(re.findall(r"(?m)^  make (\S+) +(.+)$", result.stdout))
    described = dict(re.findall(r"(?m)^## ([a-z-]+): (.+)$", (REPO / "Makefile").read_text()))
    assert listed == described
    assert {"help", "build", "serve", "test"} <= set(listed)


def test_make_test_names_the_missing_tools_and_their_packages_first(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    # No npm and no java on PATH, and no Nu checker fetched yet in this folder.
    result = make(tmp_path, "test", path=str(empty))
    assert result.returncode != 0
    assert "npm (Node.js) is missing" in result.stdout
    assert "apt-get install nodejs npm" in result.stdout
    assert "java is missing" in result.stdout
    assert "apt-get install default-jre-headless" in result.stdout
    assert ".ci/run installs all of these" in result.stdout
    assert not (tmp_path / ".venv").exists()  # nothing was installed before the check failed
