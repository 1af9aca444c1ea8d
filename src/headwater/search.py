"""Site search: Pagefind indexes the built pages, and the browser searches that index.

Pagefind (https://pagefind.app) reads the HTML of a built site and writes a static search
bundle: a WebAssembly search engine, the word index in chunks and one fragment per page, all
fetched on demand, so search needs no server. Only the elements marked `data-pagefind-body`
(articles and pages) are indexed; `data-pagefind-ignore` leaves out what every article repeats.

The index is a function of every indexed page, so it is written whole; a build writes it again
only when an HTML page changed, appeared or went (see build.py), and the writer then rewrites
only the bundle's files whose bytes differ (fragments are named by their content).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from headwater.errors import OutputError

BUNDLE = "pagefind/"
"""Where the search bundle lives in the output folder (the search page loads it from here)."""
ENTRY = BUNDLE + "pagefind-entry.json"
"""The bundle's table of contents: a folder without it has no index."""
TIMEOUT = 900.0


def is_bundle_file(name: str) -> bool:
    return name.startswith(BUNDLE)


def index_pages(site_folder: Path) -> dict[str, bytes]:
    """The search bundle for the HTML pages in site_folder, as output names and bytes.

    Raises OutputError when Pagefind is missing or fails; a build then publishes nothing."""
    from pagefind_bin import get_executable  # the binary of the pinned `pagefind[bin]`

    try:
        executable = get_executable()
    except FileNotFoundError as error:
        raise OutputError(f"the Pagefind binary is missing: {error}") from None
    with tempfile.TemporaryDirectory(prefix="headwater-search-") as scratch:
        bundle = Path(scratch) / "bundle"
        command = [
            str(executable),
            "--site",
            str(site_folder),
            "--output-path",
            str(bundle),
            "--force-language",
            "en",
            "--silent",
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise OutputError(f"Pagefind did not finish indexing in {TIMEOUT:.0f} s") from None
        if done.returncode != 0 or not (bundle / "pagefind-entry.json").is_file():
            detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise OutputError(
                f"Pagefind could not index the site (exit {done.returncode}): "
                + (" / ".join(detail) or "no output")
            )
        return {
            BUNDLE + path.relative_to(bundle).as_posix(): path.read_bytes()
            for path in sorted(bundle.rglob("*"))
            if path.is_file() and _wanted(path.name)
        }


def _wanted(name: str) -> bool:
    # Pagefind's ready-made interfaces and highlighter: the search page has its own script.
    return not (("-ui." in name) or name.startswith("pagefind-highlight."))
