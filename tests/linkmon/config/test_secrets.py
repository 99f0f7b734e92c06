"""linkmon/config/secrets.py: ``${ENV}`` and ``file:`` values are read at load time; a Secret
shows where its value came from, never the value: not in repr, a dump of the config or an
error message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from linkmon.config import Config, ConfigError, format_errors, load_config, parse_config
from tests.linkmon.config.cases import (
    FILE_SECRET,
    LITERAL_SECRET,
    SECRETS,
    TESTDATA,
    Table,
    assert_refused,
    each_file,
)

INVALID: Table = [
    (
        "invalid-http-header-newline",
        [
            "links[0].probes[0].headers.X-Site: must be printable ASCII, without line breaks",
        ],
    ),
    (
        "invalid-secret-env-missing",
        [
            "alerting.receivers[0].url: environment variable LINKMON_TEST_UNSET_TOKEN is not set",
        ],
    ),
    (
        "invalid-secret-file-missing",
        [
            "alerting.receivers[0].headers.Authorization: cannot read secret file "
            "{dir}/secrets/missing-token: No such file or directory",
        ],
    ),
    (
        "invalid-secret-reference",
        [
            "alerting.receivers[0].headers.Authorization: '${' must start a reference like "
            "${TOKEN} (letters, digits, '_')",
        ],
    ),
]


@each_file(INVALID)
def test_unusable_secret_fails_with_exact_errors(
    name: str, expected: list[str], secrets_env: None
) -> None:
    assert_refused(name, expected)


def test_secrets_show_where_they_come_from_never_their_value(full: Config) -> None:
    telegram, am, am_single, relay = full.alerting.receivers
    assert str(telegram.urls[0]) == (
        "https://198.18.0.5/bot${LINKMON_TEST_BOT_TOKEN}/sendMessage?chat_id=-100"
    )
    assert str(am.headers["Authorization"]) == "file:secrets/am-token"
    assert str(am_single.urls[0]) == "http://noc:***@198.18.1.21:9093"
    assert str(relay.urls[0]) == "http://198.18.0.6:9099/…"
    shown = [repr(full), str(full), full.model_dump_json(), str(full.model_dump())]
    for text in shown:
        for secret in [*SECRETS.values(), FILE_SECRET, LITERAL_SECRET]:
            assert secret not in text


def test_a_secret_is_never_quoted_in_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LINKMON_TEST_BAD_URL", "ftp://user:hunter2@198.18.0.5/x")
    (tmp_path / "token").write_text("")
    (tmp_path / "bad").mkdir()
    text = """
alerting:
  receivers:
    - {name: a, kind: webhook, url: "${LINKMON_TEST_BAD_URL}"}
    - {name: b, kind: webhook, url: "http://198.18.0.5/", headers: {X-Token: "file:token"}}
    - {name: c, kind: webhook, url: "http://198.18.0.5/", headers: {X-Token: "file:bad"}}
    - name: d
      kind: webhook
      url: "http://198.18.0.5/"
      headers: {X-Token: "${LINKMON_TEST_BAD_URL}\\n"}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=tmp_path)
    assert caught.value.errors == [
        "alerting.receivers[0].url: must be an http:// or https:// URL",
        f"alerting.receivers[1].headers.X-Token: secret file {tmp_path / 'token'} is empty",
        f"alerting.receivers[2].headers.X-Token: secret file {tmp_path / 'bad'} is not a "
        "regular file",
        "alerting.receivers[3].headers.X-Token: must be printable ASCII, without line breaks",
    ]
    assert "hunter2" not in format_errors(caught.value)


def test_environment_is_untouched_by_loading(secrets_env: None) -> None:
    before = dict(os.environ)
    load_config(TESTDATA / "good-full.yml")
    assert dict(os.environ) == before
