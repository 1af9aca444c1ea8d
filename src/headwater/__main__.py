"""Run the command line as `python -m headwater`."""

from __future__ import annotations

from headwater.cli import run

run()
