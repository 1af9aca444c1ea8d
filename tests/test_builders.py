"""What the receiver runs per batch: build-hook answers and `headwater build` exit statuses
become one readable sentence each, transient or not; no message shows the hook's secret path."""

from __future__ import annotations

import email.utils
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hook_server import SECRET_PATH, SECRET_QUERY, Answer, ScriptedHook

from headwater.builders import (
    Forwarder,
    SubprocessBuilder,
    check_hook_url,
    describe,
    exit_failure,
    failure_of,
    hook_host,
    parse_retry_after,
)
from headwater.changes import Change
from headwater.coalesce import PERMANENT, Failure
from headwater.errors import BuildFailedError, ConfigError

PUBLISH = "ContentManagement.Entry.publish"
BATCH = frozenset({Change("Entry", "abc", PUBLISH, 3, "What Causes PTSD?", seq=1)})
NOW = 1_800_000_000.0


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0


def test_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(later, now=NOW) == 90.0
    earlier = email.utils.formatdate(NOW - 90, usegmt=True)
    assert parse_retry_after(earlier, now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


@pytest.fixture
def hook() -> Iterator[ScriptedHook]:
    with ScriptedHook() as server:
        yield server


def forward(hook: ScriptedHook) -> BuildFailedError | str:
    forwarder = Forwarder(hook.url, timeout=10)
    try:
        return forwarder(BATCH)
    except BuildFailedError as exc:
        return exc
    finally:
        forwarder.close()


def assert_no_secret(text: str) -> None:
    assert SECRET_PATH not in text
    assert "6f1d0c2b9e8a7f6e5d4c3b2a" not in text
    assert "hunter2" not in text


def test_a_good_answer_forwards(hook: ScriptedHook) -> None:
    result = forward(hook)
    assert result == f"forwarded to the build hook at 127.0.0.1:{hook.port}"
    [call] = hook.calls
    assert call.path == SECRET_PATH
    assert call.query["token"] == ["hunter2-d41d8cd98f00b204"]
    assert call.query["trigger_title"] == ["Contentful: 1 entry published — What Causes PTSD?"]


@pytest.mark.parametrize(
    ("answer", "sentence", "failure"),
    [
        (Answer(503), "answered 503 Service Unavailable", Failure(True)),
        (Answer(500), "answered 500 Internal Server Error", Failure(True)),
        (Answer(429, {"Retry-After": "7"}), "answered 429 Too Many Requests", Failure(True, 7.0)),
        (Answer(408), "answered 408 Request Timeout", Failure(True)),
        (Answer(404), "answered 404 Not Found; check the hook URL", PERMANENT),
        (Answer(401), "answered 401 Unauthorized", PERMANENT),
    ],
)
def test_hook_answers_are_classified(
    hook: ScriptedHook, answer: Answer, sentence: str, failure: Failure
) -> None:
    hook.script.append(answer)
    error = forward(hook)
    assert isinstance(error, BuildFailedError)
    assert str(error).startswith(f"the build hook at 127.0.0.1:{hook.port} {sentence}")
    assert failure_of(error) == failure
    assert_no_secret(describe(error))


def test_an_unreachable_hook_is_transient_and_named_by_host_only() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on port any more: the connection is refused.
    forwarder = Forwarder(f"http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}", timeout=10)
    try:
        with pytest.raises(BuildFailedError) as caught:
            forwarder(BATCH)
    finally:
        forwarder.close()
    error = caught.value
    assert str(error) == f"could not connect to the build hook at 127.0.0.1:{port}"
    assert failure_of(error) == Failure(True)
    assert error.__cause__ is None and error.__suppress_context__


def test_a_silent_hook_times_out_transiently() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # accepts the connection, never answers
        port = sock.getsockname()[1]
        forwarder = Forwarder(f"http://127.0.0.1:{port}{SECRET_PATH}", timeout=0.2)
        try:
            with pytest.raises(BuildFailedError, match="did not answer within") as caught:
                forwarder(BATCH)
        finally:
            forwarder.close()
    assert failure_of(caught.value).transient


@pytest.mark.parametrize(
    "url",
    ["api.netlify.com/build_hooks/x", "ftp://host/x", "https:///build_hooks/x", "http://h:port/x"],
)
def test_a_hook_url_that_cannot_work_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_hook_url(url)
    assert "build_hooks/x" not in str(caught.value)
    assert "absolute http:// or https:// URL" in str(caught.value)


def test_hook_host_keeps_host_and_port_only() -> None:
    assert hook_host("https://api.netlify.com/build_hooks/abc?x=1") == "api.netlify.com"
    assert hook_host("http://user:pw@127.0.0.1:8080/abc") == "127.0.0.1:8080"


PROBLEMS = [
    "content/article/a.md: slug: [regexp] Use lowercase letters (got 'Bad_Slug')",
    "article “A” (https://app.contentful.com/spaces/sp1/environments/master/entries/e1): "
    "author: [link] links to an author that does not exist",
]


@pytest.mark.parametrize(
    ("returncode", "lines", "sentence", "transient"),
    [
        (
            1,
            ["WARNING:headwater.build:something", *PROBLEMS, "2 content problems; nothing …"],
            f"the build failed because of content: 2 problems (first: {PROBLEMS[0]})",
            False,
        ),
        (
            2,
            ["error: CONTENTFUL_DELIVERY_TOKEN is not set: an API key of space 'sp1'"],
            "the build failed because of its configuration: CONTENTFUL_DELIVERY_TOKEN is not set: "
            "an API key of space 'sp1'",
            False,
        ),
        (
            3,
            ["error: Contentful answered 503 after 5 tries"],
            "the build could not read the CMS: Contentful answered 503 after 5 tries",
            True,
        ),
        (-9, ["half a line"], "the build was killed by SIGKILL", True),
        (
            1,
            ["Traceback (most recent call last):", '  File "x"', "KeyError: 'slug'"],
            "the build crashed: KeyError: 'slug'",
            False,
        ),
        (7, ["odd"], "the build exited with status 7: odd", False),
    ],
    ids=["content", "config", "cms", "killed", "crash", "other"],
)
def test_build_exit_statuses_are_classified(
    returncode: int, lines: list[str], sentence: str, transient: bool
) -> None:
    error = exit_failure("build", returncode, lines)
    assert str(error) == sentence
    assert error.transient == transient


def test_content_failures_keep_every_problem_line_with_its_web_app_link() -> None:
    error = exit_failure("build", 1, ["noise", *PROBLEMS, "2 content problems; nothing"])
    assert error.details == tuple(PROBLEMS)
    assert (
        "https://app.contentful.com/spaces/sp1/environments/master/entries/e1" in (error.details[1])
    )


def test_our_own_stop_and_a_failed_deploy_are_transient() -> None:
    stopped = exit_failure("build", -15, [], stopped=True)
    assert str(stopped) == "the build was stopped because the receiver shut down"
    deploy = exit_failure("deploy", 1, ["rsync: connection unexpectedly closed"])
    assert (
        str(deploy)
        == "the deploy command exited with status 1: rsync: connection unexpectedly closed"
    )
    assert stopped.transient and deploy.transient


def test_an_unexpected_exception_is_described_by_its_type_only() -> None:
    error = ValueError(f"http://127.0.0.1{SECRET_PATH}")
    assert describe(error) == "the receiver failed unexpectedly (ValueError); see its log"
    assert failure_of(error) == PERMANENT


class ScriptedBuild(SubprocessBuilder):
    """A builder whose "build" is a given Python snippet instead of `headwater build`."""

    def __init__(self, project: Path, code: str) -> None:
        super().__init__(project, env={})
        self.code = code

    def command(self, changes: frozenset[Change]) -> list[str]:
        return [sys.executable, "-c", self.code]


@pytest.mark.parametrize(
    ("code", "sentence", "transient"),
    [
        ("import os; os.kill(os.getpid(), 9)", "the build was killed by SIGKILL", True),
        (
            "import sys; print('error: the CMS timed out'); sys.exit(3)",
            "the build could not read the CMS: the CMS timed out",
            True,
        ),
        (
            f"print({PROBLEMS[0]!r}); print('1 content problem; nothing was published.'); exit(1)",
            f"the build failed because of content: 1 problem (first: {PROBLEMS[0]})",
            False,
        ),
    ],
    ids=["killed", "cms", "content"],
)
def test_a_real_child_process_failure_is_classified(
    tmp_path: Path, code: str, sentence: str, transient: bool
) -> None:
    with pytest.raises(BuildFailedError) as caught:
        ScriptedBuild(tmp_path, code)(BATCH)
    assert str(caught.value) == sentence
    assert caught.value.transient == transient
