"""axe-core, the accessibility engine, run inside a page that a Chromium test drives.

axe-core comes from npm through the project's own setup (``scripts/bootstrap.sh`` runs
``npm ci`` on ``tests/support/js/package-lock.json``). The status page's Content-Security-Policy
allows scripts from linkmon only, so the page that runs axe must come from a browser context
opened with ``bypass_csp=True``: the test browser steps around the policy; the product does not
weaken it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).with_name("js") / "node_modules" / "axe-core" / "axe.min.js"

BLOCKING_IMPACTS = frozenset({"serious", "critical"})

_RUN = """async () => (await axe.run(document)).violations.map((v) => ({
  rule: v.id, impact: v.impact || "", help: v.help,
  targets: v.nodes.map((n) => n.target.join(" ")),
}))"""


@dataclass(frozen=True)
class Violation:
    """One axe rule that failed, and where."""

    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.rule} ({self.impact}): {self.help} at {', '.join(self.targets)}"


def axe_violations(page: Any) -> list[Violation]:
    """Every violation axe-core finds in the page as it is drawn now."""
    if not AXE_JS.exists():
        raise FileNotFoundError(f"{AXE_JS} is missing: run scripts/bootstrap.sh (npm ci)")
    page.add_script_tag(path=str(AXE_JS))
    return [
        Violation(v["rule"], v["impact"], v["help"], tuple(v["targets"]))
        for v in page.evaluate(_RUN)
    ]


def report(violations: list[Violation]) -> str:
    """One line per violation, for an assertion message."""
    return "\n".join(f"  {violation}" for violation in violations)
