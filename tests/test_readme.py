"""The README's layout table names every module, so a newcomer finds "where is X" there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def listed_in_layout() -> set[str]:
    """Paths the module column of the table names; ``a/b.py, c.py`` means ``a/b.py, a/c.py``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    for line in section.splitlines():
        cells = re.split(r"(?<!\\)\|", line.strip())
        if len(cells) < 4:
            continue
        folder = ""
        for name in re.findall(r"`([^`]+)`", cells[2]):
            if "/" in name:
                folder = name.rsplit("/", 1)[0]
                found.add(name)
            else:
                found.add(f"{folder}/{name}")
    return found


def test_every_module_of_linkmon_and_probes_is_in_the_layout_table() -> None:
    modules = {
        str(path.relative_to(ROOT))
        for package in ("linkmon", "probes")
        for path in (ROOT / package).rglob("*.py")
    }
    assert sorted(modules - listed_in_layout()) == []


def test_the_layout_table_names_no_module_that_is_gone() -> None:
    listed = listed_in_layout()
    assert sorted(name for name in listed if not (ROOT / name).exists()) == []
