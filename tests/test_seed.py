"""scripts/seed_contentful.py plans the sample content as Contentful entries and creates them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import frontmatter
import pytest
import requests
import responses
from responses import matchers

from headwater.contentful.management import MEDIA_TYPE, ManagementClient
from headwater.contentful.richtext import render_richtext
from headwater.contentful.settings import ContentfulSettings
from headwater.errors import ConfigError, ContentError
from headwater.markup import MarkdownRenderer, _anchor_headings

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "contentful"
SETTINGS = ContentfulSettings(
    space="yadj1kx9rmg0", environment="master", management_token="CFPAT-x"
)
ENV = f"https://api.contentful.com/spaces/{SETTINGS.space}/environments/master"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "seed_contentful", REPO / "scripts/seed_contentful.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["seed_contentful"] = module
    spec.loader.exec_module(module)
    return module


seed_script = load_script()


@pytest.fixture(scope="module")
def plan() -> Any:
    return seed_script.plan_seed(REPO)


def test_every_image_and_entry_of_the_sample_is_planned(plan: Any) -> None:
    assert [(a.path.name, a.content_type) for a in plan.assets] == [
        ("three-rivers.svg", "image/svg+xml")
    ]
    assert plan.assets[0].description.startswith("Three flowing lines"), "the alt text"
    files = sorted(REPO.glob("content/*/*.md"))
    assert sorted(e.id for e in plan.entries) == sorted(
        [f"{p.parent.name}-{p.stem}" for p in files] + ["siteSettings"]
    )


def test_entries_are_published_after_what_they_link_to(plan: Any) -> None:
    position = {entry.id: n for n, entry in enumerate(plan.entries)}
    links = {entry.id: set(entry.links) for entry in plan.entries}
    for entry in plan.entries:
        for target in entry.links:
            in_cycle = entry.id in links[target]
            assert position[target] < position[entry.id] or in_cycle, (entry.id, target)
    assert position["page-home"] < position["siteSettings"]
    assert position["author-dr-maya-chen"] < position["article-what-causes-ptsd"]
    assert "page-contact" in links["article-what-to-expect-at-your-first-visit"], "a body link"


def test_fields_are_in_the_default_locale_with_links_by_id(plan: Any) -> None:
    article = next(e for e in plan.entries if e.id == "article-what-causes-ptsd")
    assert set(article.fields["title"]) == {"en-US"}
    fields = {name: values["en-US"] for name, values in article.fields.items()}
    assert fields["publishDate"] == "2026-11-02"
    assert fields["author"] == {
        "sys": {"type": "Link", "linkType": "Entry", "id": "author-dr-maya-chen"}
    }
    assert [t["sys"]["id"] for t in fields["topics"]] == [
        "topic-ptsd",
        "topic-ketamine-therapy",
        "topic-mental-health",
    ]
    assert fields["heroImage"]["sys"] == {
        "type": "Link",
        "linkType": "Asset",
        "id": plan.assets[0].id,
    }
    settings = next(e for e in plan.entries if e.id == "siteSettings")
    assert settings.fields["homePage"]["en-US"]["sys"]["id"] == "page-home"
    assert settings.fields["navigation"]["en-US"][0] == "Home|/"


def test_markdown_bodies_become_rich_text_only_where_the_model_says_so(plan: Any) -> None:
    renderer = MarkdownRenderer(site_host="example.test")
    urls = {"page-contact": "/contact/", "article-what-to-expect-at-your-first-visit": None}
    rich_text = 0
    for entry in plan.entries:
        if entry.content_type == "siteSettings":
            continue
        body = entry.fields["body"]["en-US"]
        if entry.content_type in ("author", "topic"):
            assert isinstance(body, str), "Text fields keep their Markdown"
            continue
        assert body["nodeType"] == "document"
        path = REPO / "content" / entry.content_type / f"{entry.id.split('-', 1)[1]}.md"
        markdown = frontmatter.load(str(path)).content.strip() + "\n"

        def link_entry(target: Any) -> str | None:
            ident = target["sys"]["id"]
            kind, slug = ident.split("-", 1)
            prefix = {"article": "/blog/", "page": "/", "author": "/authors/"}[kind]
            return urls.get(ident) or f"{prefix}{slug}/"

        html = render_richtext(
            body, link_entry=link_entry, link_asset=lambda t: None, embed=lambda k, t: ""
        )
        assert renderer.sanitise(_anchor_headings(html, [])) == renderer.render(markdown).html
        rich_text += 1
    assert rich_text == 8, "two articles and six pages"


def test_dry_run_prints_the_plan_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTENTFUL_MANAGEMENT_TOKEN", raising=False)
    assert seed_script.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Dry run, nothing written. Would create:\n1 assets and 14 entries")
    assert "entry article-what-causes-ptsd (article): What Causes PTSD?" in out
    assert "  body: RichText (9 blocks: paragraph)" in out


def small_plan(tmp_path: Path) -> Any:
    image = tmp_path / "logo.svg"
    image.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', encoding="utf-8")
    asset = seed_script.AssetPlan("image-logo", "logo", "The clinic's logo", image, "image/svg+xml")
    author = seed_script.EntryPlan("author-a", "author", "A", {"name": {"en-US": "A"}})
    link = {"sys": {"type": "Link", "linkType": "Entry", "id": "author-a"}}
    article = seed_script.EntryPlan(
        "article-b", "article", "B", {"author": {"en-US": link}}, links=("author-a",)
    )
    return seed_script.SeedPlan(locale="en-US", assets=[asset], entries=[author, article])


def entity(kind: str, ident: str, version: int, **fields: Any) -> dict[str, Any]:
    return {"sys": {"type": kind, "id": ident, "version": version}, "fields": fields}


@responses.activate
def test_seeding_uploads_creates_and_publishes_in_order(tmp_path: Path) -> None:
    plan = small_plan(tmp_path)
    auth = {"Authorization": "Bearer CFPAT-x"}
    responses.get(
        f"{ENV}/entries",
        json={"sys": {"type": "Array"}, "total": 0, "skip": 0, "limit": 0, "items": []},
        match=[matchers.query_param_matcher({"limit": "0"})],
    )
    responses.post(
        "https://upload.contentful.com/spaces/yadj1kx9rmg0/environments/master/uploads",
        status=201,
        json={"sys": {"type": "Upload", "id": "up1"}},
        match=[
            matchers.header_matcher({**auth, "Content-Type": "application/octet-stream"}),
            matchers.body_matcher('<svg xmlns="http://www.w3.org/2000/svg"/>'),
        ],
    )
    file = {"contentType": "image/svg+xml", "fileName": "logo.svg"}
    responses.put(
        f"{ENV}/assets/image-logo",
        status=201,
        json=entity("Asset", "image-logo", 1),
        match=[
            matchers.json_params_matcher(
                {
                    "fields": {
                        "title": {"en-US": "logo"},
                        "description": {"en-US": "The clinic's logo"},
                        "file": {
                            "en-US": {
                                **file,
                                "uploadFrom": {
                                    "sys": {"type": "Link", "linkType": "Upload", "id": "up1"}
                                },
                            }
                        },
                    }
                }
            )
        ],
    )
    responses.put(
        f"{ENV}/assets/image-logo/files/en-US/process",
        status=204,
        match=[matchers.header_matcher({"X-Contentful-Version": "1"})],
    )
    responses.get(f"{ENV}/assets/image-logo", json=entity("Asset", "image-logo", 1))
    processed = {"file": {"en-US": {**file, "url": "//images.ctfassets.net/x/logo.svg"}}}
    responses.get(f"{ENV}/assets/image-logo", json=entity("Asset", "image-logo", 2, **processed))
    responses.put(
        f"{ENV}/assets/image-logo/published",
        json=entity("Asset", "image-logo", 3),
        match=[matchers.header_matcher({"X-Contentful-Version": "2"})],
    )
    for ident, kind in (("author-a", "author"), ("article-b", "article")):
        responses.put(
            f"{ENV}/entries/{ident}",
            status=201,
            json=entity("Entry", ident, 1),
            match=[
                matchers.header_matcher(
                    {"X-Contentful-Content-Type": kind, "Content-Type": MEDIA_TYPE}
                )
            ],
        )
    for ident in ("author-a", "article-b"):
        responses.put(
            f"{ENV}/entries/{ident}/published",
            json=entity("Entry", ident, 2),
            match=[matchers.header_matcher({"X-Contentful-Version": "1"})],
        )
    waits: list[float] = []
    lines: list[str] = []
    client = ManagementClient(SETTINGS, requests.Session())
    seed_script.seed(
        client,
        plan,
        uploads=seed_script.upload_base(SETTINGS),
        report=lines.append,
        sleep=waits.append,
    )
    calls = [
        (c.request.method, (c.request.url or "").split("/master")[-1]) for c in responses.calls
    ]
    assert calls == [
        ("GET", "/entries?limit=0"),
        ("POST", "/uploads"),
        ("PUT", "/assets/image-logo"),
        ("PUT", "/assets/image-logo/files/en-US/process"),
        ("GET", "/assets/image-logo"),
        ("GET", "/assets/image-logo"),
        ("PUT", "/assets/image-logo/published"),
        ("PUT", "/entries/author-a"),
        ("PUT", "/entries/article-b"),
        ("PUT", "/entries/author-a/published"),
        ("PUT", "/entries/article-b/published"),
    ]
    assert waits == [1.0], "waited once for processing"
    body = json.loads(responses.calls[8].request.body or b"")
    assert body == {"fields": {"author": {"en-US": plan.entries[1].fields["author"]["en-US"]}}}
    assert lines[0] == "uploading logo.svg as asset image-logo"


@responses.activate
def test_seeding_refuses_a_space_that_has_entries(tmp_path: Path) -> None:
    responses.get(
        f"{ENV}/entries",
        json={"sys": {"type": "Array"}, "total": 4, "skip": 0, "limit": 0, "items": []},
    )
    client = ManagementClient(SETTINGS, requests.Session())
    with pytest.raises(ConfigError, match="already holds 4 entries"):
        seed_script.seed(client, small_plan(tmp_path), uploads="https://upload.contentful.com")
    assert len(responses.calls) == 1


def test_upload_host_sits_beside_the_management_host() -> None:
    eu = ContentfulSettings(
        "s", "master", management_token="t", management_host="https://api.eu.contentful.com"
    )
    assert seed_script.upload_base(eu) == "https://upload.eu.contentful.com"
    assert seed_script.upload_base(eu, "http://127.0.0.1:9/") == "http://127.0.0.1:9"


def test_a_link_to_a_missing_slug_is_a_content_problem(tmp_path: Path) -> None:
    shutil.copytree(REPO / "cms_schema", tmp_path / "cms_schema")
    shutil.copytree(REPO / "content", tmp_path / "content")
    article = tmp_path / "content" / "article" / "what-causes-ptsd.md"
    article.write_text(
        article.read_text(encoding="utf-8").replace("author: dr-maya-chen", "author: nobody"),
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as raised:
        seed_script.plan_seed(tmp_path)
    (problem,) = raised.value.problems
    assert (problem.origin, problem.field, problem.value) == (
        "content/article/what-causes-ptsd.md",
        "author",
        "nobody",
    )
