"""headwater: build the Three Rivers Wellness site from a headless CMS or a Markdown snapshot."""

from __future__ import annotations

__version__ = "0.1.0"
