"""What the config tests share: where the fixtures are, the secrets they use, and how a table
of bad files is checked (blackbox_exporter's config_test style: each file, its exact errors)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from linkmon.config import ConfigError, load_config

TESTDATA = Path(__file__).resolve().parents[2] / "testdata" / "config"
EXAMPLES = Path(__file__).resolve().parents[3] / "config"

SECRETS = {
    "LINKMON_TEST_PROBE_TOKEN": "probe-token-1234",
    "LINKMON_TEST_BOT_TOKEN": "123456:bot-secret-xyz",
    "LINKMON_TEST_AM_PASSWORD": "am-password-987",
}
UNSET_SECRET = "LINKMON_TEST_UNSET_TOKEN"
FILE_SECRET = "am-token-from-file"
LITERAL_SECRET = "s3cr3tpath"

Table = list[tuple[str, list[str]]]
"""Bad files by name (``tests/testdata/config/<name>.yml``) and their errors, in order;
``{dir}`` stands for that folder."""


def each_file(table: Table) -> pytest.MarkDecorator:
    """Parametrize a test over ``table``: ``name``, ``expected``."""
    return pytest.mark.parametrize(("name", "expected"), table, ids=[name for name, _ in table])


def assert_refused(name: str, expected: list[str]) -> None:
    """Loading the bad file ``name`` fails with exactly ``expected``, named by its path."""
    path = TESTDATA / f"{name}.yml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [e.replace("{dir}", str(TESTDATA)) for e in expected]
    assert caught.value.source == str(path)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
