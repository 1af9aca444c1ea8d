"""Shared fixtures: one build of the sample site, and the external tools the site checks drive."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from support import make_repo_project

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://example.test"
CHROMIUM = Path("/usr/bin/chromium")
VNU_JAR_DEFAULT = REPO_ROOT / ".cache/tools/node_modules/vnu-jar/build/dist/vnu.jar"


def in_ci() -> bool:
    """True under CI=true, where a missing test tool is a failure rather than a skip."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing_tool(what: str, install: str) -> NoReturn:
    """Skip the test for lack of `what` locally; fail it in CI, where every check must run."""
    message = f"{what} is missing; install it with: {install}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(message)


def build_env() -> dict[str, str]:
    """The environment for a local build: no CMS settings, so nothing reaches the network."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFUL_")}


@pytest.fixture(scope="session")
def base_url() -> str:
    """The base URL the sample site is built with (no trailing slash)."""
    return BASE_URL


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's own content, copied and built once in a temporary directory."""
    project = make_repo_project(tmp_path_factory.mktemp("sample-site") / "project")
    out = project / "public"
    command = [
        sys.executable,
        "-m",
        "headwater",
        "--project",
        str(project),
        "build",
        "--source",
        "local",
        "--base-url",
        BASE_URL,
    ]
    result = subprocess.run(
        command, cwd=project, env=build_env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"sample site build exited {result.returncode}\n"
            f"$ {' '.join(command)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}",
            pytrace=False,
        )
    return out


def checkout_state() -> dict[str, int]:
    """Every file of the checkout's own build folders with its modification time."""
    return {
        str(path): path.stat().st_mtime_ns
        for folder in (REPO_ROOT / "public", REPO_ROOT / ".cache" / "headwater")
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def hermetic() -> Iterator[None]:
    """The suite builds copies in temporary folders: the developer's public/ and build cache
    (manifests, stores) are the same after it as before."""
    before = checkout_state()
    yield
    after = checkout_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the tests changed the checkout's own files: {changed[:10]}"


@pytest.fixture(scope="session")
def vnu_command() -> list[str]:
    """`java -jar vnu.jar`: the W3C Nu HTML checker, as `make test` installs it."""
    jar = Path(os.environ.get("VNU_JAR") or VNU_JAR_DEFAULT)
    if not jar.is_file():
        missing_tool(
            f"the Nu HTML checker ({jar})",
            "make test  (npm install --no-save --no-package-lock --prefix .cache/tools "
            "vnu-jar@26.9.27)",
        )
    java = shutil.which("java")
    if java is None:
        missing_tool("java (runs the Nu HTML checker)", "apt-get install default-jre-headless")
    return [java, "-jar", str(jar)]


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Debian's Chromium, which Playwright drives; the tests never download a browser."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing_tool(f"Chromium ({CHROMIUM})", "apt-get install chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def html_files(sample_site: Path) -> list[Path]:
    """Every HTML file of the built site, in a stable order."""
    return sorted(sample_site.rglob("*.html"))
