"""Fixtures for the config tests: the test secrets in the environment, the full good file."""

from __future__ import annotations

import pytest

from linkmon.config import Config, load_config
from tests.linkmon.config.cases import SECRETS, TESTDATA, UNSET_SECRET


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(UNSET_SECRET, raising=False)


@pytest.fixture
def full(secrets_env: None) -> Config:
    return load_config(TESTDATA / "good-full.yml")
