"""linkmon/config/apart.py: a large config is loaded in a child process and handed back
pickled, with the same result as loading it here; a child that cannot run falls back to
loading here. Pickles name the classes by module path, which the package changed: both ways
are tested, through the child and in-process."""

from __future__ import annotations

import logging
import pickle
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from linkmon.config import (
    LOAD_APART_BYTES,
    Config,
    ConfigError,
    load_config,
    load_config_apart,
)
from tests.linkmon.config.cases import EXAMPLES, TESTDATA


def padded_copy(source: Path, target: Path) -> Path:
    """``source`` made large enough to be loaded apart, by a trailing comment."""
    text = source.read_text()
    target.write_text(text + "#" * (LOAD_APART_BYTES - len(text.encode())) + "\n")
    return target


def test_a_large_config_is_loaded_in_a_child_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    children: list[list[str]] = []
    real_run = subprocess.run

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        children.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    good = padded_copy(EXAMPLES / "nunukan.yml", tmp_path / "good.yml")
    assert load_config_apart(good) == load_config(good)
    bad = padded_copy(TESTDATA / "invalid-depends-cycle.yml", tmp_path / "bad.yml")
    with pytest.raises(ConfigError) as apart:
        load_config_apart(bad)
    with pytest.raises(ConfigError) as here:
        load_config(bad)
    assert (apart.value.errors, apart.value.source) == (here.value.errors, here.value.source)
    assert str(apart.value) == str(here.value)
    assert [args[-1] for args in children] == [str(good), str(bad)]
    small = TESTDATA / "good-minimal.yml"
    assert load_config_apart(small) == load_config(small)
    assert len(children) == 2  # a small file is loaded in-process


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/false"])
def test_a_child_that_cannot_load_falls_back_to_loading_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, python: str
) -> None:
    good = padded_copy(EXAMPLES / "nunukan.yml", tmp_path / "good.yml")
    monkeypatch.setattr(sys, "executable", python)
    with caplog.at_level(logging.WARNING, logger="linkmon.config.apart"):
        assert load_config_apart(good) == load_config(good)
    assert "cannot load the config in a child process, loading it here" in caplog.text


def test_config_and_config_error_survive_a_pickle(secrets_env: None) -> None:
    """What the child sends: every value of the full config (secrets, paths, private look-ups)
    and a ConfigError with its errors and source."""
    config = load_config(TESTDATA / "good-full.yml")
    copy = pickle.loads(pickle.dumps(config, pickle.HIGHEST_PROTOCOL))
    assert copy == config
    assert type(copy) is Config
    assert copy.link("kec-krayan--kab").depends_on == ("kab-nunukan--dc", "kab-nunukan--drc")
    telegram = copy.alerting.receivers[0]
    assert (
        telegram.urls[0].get_secret_value()
        == config.alerting.receivers[0].urls[0].get_secret_value()
    )
    error = ConfigError(["a: b", "c: d"], "x.yml")
    again = pickle.loads(pickle.dumps(error, pickle.HIGHEST_PROTOCOL))
    assert type(again) is ConfigError
    assert (again.errors, again.source, str(again)) == (error.errors, error.source, str(error))


def test_a_child_of_another_install_falls_back_to_loading_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """linkmon upgraded on disk under a running daemon: the child's pickle names classes by a
    module path this process does not have (as a new layout would for an old daemon)."""
    good = padded_copy(EXAMPLES / "nunukan.yml", tmp_path / "good.yml")
    child = tmp_path / "python"
    # A shell script, not a shebang naming this Python: a checkout's path may hold a space.
    child.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "import sys; '
        "sys.stdout.buffer.write(b'clinkmon.config.gone\\nConfig\\n)R.')\"\n"
    )
    child.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(child))
    with caplog.at_level(logging.WARNING, logger="linkmon.config.apart"):
        assert load_config_apart(good) == load_config(good)
    assert "cannot read what the child process loaded, loading it here" in caplog.text
    assert "No module named 'linkmon.config.gone'" in caplog.text


def test_pickles_name_the_modules_that_define_the_classes(secrets_env: None) -> None:
    """What a child sends names linkmon.config.model and linkmon.config.errors (the package's
    modules, where the classes live); the test above shows what happens if that changes."""
    config = pickle.dumps(load_config(TESTDATA / "good-full.yml"), pickle.HIGHEST_PROTOCOL)
    error = pickle.dumps(ConfigError("x", "y"), pickle.HIGHEST_PROTOCOL)
    assert b"linkmon.config.model" in config
    assert b"linkmon.config.errors" in error
