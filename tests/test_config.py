"""Settings come from options, then Netlify's variables, then documented defaults."""

from __future__ import annotations

import pytest

from headwater.config import DEFAULT_BASE_URL, resolve_base_url, resolve_source
from headwater.errors import ConfigError


def test_base_url_option_wins_over_netlify() -> None:
    assert (
        resolve_base_url("https://a.example/", {"URL": "https://b.example"}) == "https://a.example"
    )


def test_base_url_falls_back_to_netlify_then_default() -> None:
    assert resolve_base_url(None, {"URL": "https://b.example"}) == "https://b.example"
    assert resolve_base_url(None, {}) == DEFAULT_BASE_URL


def test_deploy_previews_use_their_own_url() -> None:
    env = {
        "URL": "https://b.example",
        "CONTEXT": "deploy-preview",
        "DEPLOY_PRIME_URL": "https://p--b.example",
    }
    assert resolve_base_url(None, env) == "https://p--b.example"


def test_base_url_without_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http"):
        resolve_base_url("clinic.example", {})


def test_auto_source_picks_contentful_only_with_a_space() -> None:
    assert resolve_source("auto", {}) == "local"
    assert resolve_source("auto", {"CONTENTFUL_SPACE_ID": "abc"}) == "contentful"
    assert resolve_source("local", {"CONTENTFUL_SPACE_ID": "abc"}) == "local"
