#!/usr/bin/env python3
"""Import the sample content/ into an empty Contentful space (see headwater.contentful.seed).

CONTENTFUL_SPACE_ID=… CONTENTFUL_MANAGEMENT_TOKEN=… python scripts/seed_contentful.py
python scripts/seed_contentful.py --dry-run    # print the plan; no token, no network
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from headwater.contentful.management import ManagementClient, push_schema
from headwater.contentful.seed import (
    DEFAULT_LOCALE,
    AssetPlan,
    EntryPlan,
    SeedPlan,
    default_locale,
    plan_seed,
    seed,
    upload_base,
)
from headwater.contentful.settings import ContentfulSettings
from headwater.errors import HeadwaterError

REPO = Path(__file__).resolve().parent.parent
__all__ = ["AssetPlan", "EntryPlan", "SeedPlan", "main", "plan_seed", "seed", "upload_base"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="Print the plan; write nothing.")
    parser.add_argument("--project", type=Path, default=REPO, help="The project folder.")
    parser.add_argument("--locale", default=None, help="Locale for --dry-run [en-US].")
    parser.add_argument(
        "--upload-host", default=os.environ.get("CONTENTFUL_UPLOAD_HOST"), help="Upload API host."
    )
    args = parser.parse_args(argv)
    try:
        if args.dry_run:
            plan = plan_seed(args.project, args.locale or DEFAULT_LOCALE)
            print("Dry run, nothing written. Would create:")
            print("\n".join(plan.describe()))
            return 0
        settings = ContentfulSettings.from_env(os.environ, management=True)
        session = requests.Session()
        report = push_schema(args.project / "cms_schema", settings, dry_run=False, session=session)
        print("\n".join(report.lines()))
        client = ManagementClient(settings, session)
        plan = plan_seed(args.project, args.locale or default_locale(client))
        seed(client, plan, uploads=upload_base(settings, args.upload_host))
        print(f"Seeded {len(plan.assets)} assets and {len(plan.entries)} entries.")
        return 0
    except HeadwaterError as exc:
        for problem in getattr(exc, "problems", ()):
            print(problem, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
