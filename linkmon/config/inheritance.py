"""How defaults flow down, and the checks on what each probe and office really runs with.

``defaults`` → link → probe for ``interval``, ``timeout`` and the ICMP echoes (``icmp:`` on
defaults or a link is the ``count``/``spacing``/``size`` of every ICMP probe below it);
``defaults`` → link for ``down_after``, ``up_after`` and ``degraded``; ``defaults`` → site for
``service_hours``, ``agent.timezone`` → site for ``timezone``. After loading, every value is
concrete.

The checks that involve two values (timeout < interval, echoes that fit in the timeout, service
that ends after it starts) apply to the values a probe or an office ends up with, never to a
level of the file on its own: a short ``defaults.timeout`` is no error in a config whose ICMP
probes all set their own, nor is ``defaults: {timeout: 500ms}`` one where no probe sends
echoes (issue #12, item 3). A conflict is reported where its values were written (the most
specific level that wrote one of them), once, if it holds for every probe or office that
takes those values from there; if it holds for some of them only (an ICMP probe that cannot
fit its echoes in a timeout its link's TCP probes are fine with), each of those is named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from linkmon.durations import format_duration

from .errors import Findings, Location
from .model import Defaults, IcmpProbe, Link, ProbeConfig, Site

_M = TypeVar("_M", bound=BaseModel)

DEFAULTS: Location = ("defaults",)
PROBE_SETTINGS = ("interval", "timeout", "count", "spacing", "size")
"""What a probe inherits; the last three only an ICMP probe has."""


@dataclass(frozen=True)
class Use:
    """A probe or an office and what it runs with: each value and the level of the file that
    wrote it (``levels``, most general first, ends with the use itself); a value no level
    wrote is linkmon's built-in default and has no origin."""

    levels: tuple[Location, ...]
    values: Mapping[str, Any]
    origin: Mapping[str, Location]

    @property
    def path(self) -> Location:
        return self.levels[-1]

    def below(self, path: Location, level: Defaults | Link | ProbeConfig) -> Use:
        """What ``level`` (at ``path``) runs with: these values, with those it writes."""
        written = _written(level)
        return Use(
            (*self.levels, path),
            {**self.values, **written},
            {**self.origin, **dict.fromkeys(written, path)},
        )

    def only(self, keys: Iterable[str]) -> Use:
        """The same use, keeping ``keys`` (a TCP probe sends no echoes)."""
        keep = set(keys)
        return Use(
            self.levels,
            {k: v for k, v in self.values.items() if k in keep},
            {k: v for k, v in self.origin.items() if k in keep},
        )


@dataclass(frozen=True)
class Rule:
    """A check on the effective values ``keys`` of one use. ``broken`` says whether they
    conflict (False where the rule does not apply); ``message`` words it for the level it is
    reported at, given the keys written there."""

    keys: frozenset[str]
    broken: Callable[[Use], bool]
    message: Callable[[Location, frozenset[str], Use], tuple[Location, str]]


def _timing_broken(use: Use) -> bool:
    return bool(use.values["timeout"] >= use.values["interval"])


def _timing_message(level: Location, written: frozenset[str], use: Use) -> tuple[Location, str]:
    interval, timeout = use.values["interval"], use.values["timeout"]
    if written == {"interval"}:
        return (*level, "interval"), f"must be greater than timeout {format_duration(timeout)}"
    return (*level, "timeout"), f"must be less than interval {format_duration(interval)}"


def _echoes_broken(use: Use) -> bool:
    """All echoes of a round must be sent, and the last one answered, within the timeout."""
    if "count" not in use.values:
        return False  # not an ICMP probe
    return bool(use.values["count"] * use.values["spacing"] >= use.values["timeout"])


def _echoes_message(level: Location, written: frozenset[str], use: Use) -> tuple[Location, str]:
    count, spacing, timeout = (use.values[k] for k in ("count", "spacing", "timeout"))
    return level, (
        f"icmp count × spacing ({count} × {format_duration(spacing)} = "
        f"{format_duration(count * spacing)}) must be less than timeout {format_duration(timeout)}"
    )


def _hours_broken(use: Use) -> bool:
    return bool(use.values["end"] <= use.values["start"])


def _hours_message(level: Location, written: frozenset[str], use: Use) -> tuple[Location, str]:
    start, end = use.values["start"], use.values["end"]
    if written == {"start"}:
        return (*level, "start"), f"must be before end {end:%H:%M}"
    return (*level, "end"), f"must be after start {start:%H:%M}"


TIMING = Rule(frozenset({"interval", "timeout"}), _timing_broken, _timing_message)
ECHOES = Rule(frozenset({"count", "spacing", "timeout"}), _echoes_broken, _echoes_message)
SERVICE_HOURS = Rule(frozenset({"start", "end"}), _hours_broken, _hours_message)


@dataclass
class Inheritance:
    """One load's flow of defaults: ``link`` and ``site`` resolve an item and remember what
    its probes or its office run with; ``check`` then applies the rules to all of them."""

    defaults: Defaults
    agent_timezone: str
    probes: list[Use] = field(default_factory=list)
    offices: list[Use] = field(default_factory=list)

    def __post_init__(self) -> None:
        own = Defaults()
        built_in = {
            "interval": own.interval,
            "timeout": own.timeout,
            **{key: getattr(own.icmp, key) for key in ("count", "spacing", "size")},
        }
        self.from_defaults = Use((), built_in, {}).below(DEFAULTS, self.defaults)

    def link(self, path: Location, link: Link) -> Link:
        """``link`` with every value concrete, its probes too."""
        settings = self.from_defaults.below(path, link)
        probes = tuple(
            self._probe(settings, (*path, "probes", i), probe)
            for i, probe in enumerate(link.probes)
        )
        return link.model_copy(
            update={
                "interval": settings.values["interval"],
                "timeout": settings.values["timeout"],
                "down_after": _own_or(link, self.defaults, "down_after"),
                "up_after": _own_or(link, self.defaults, "up_after"),
                "icmp": self.defaults.icmp.model_copy(
                    update={key: settings.values[key] for key in ("count", "spacing", "size")}
                ),
                "degraded": _inherit(link, "degraded", self.defaults.degraded),
                "probes": probes,
            }
        )

    def _probe(self, link: Use, path: Location, probe: ProbeConfig) -> ProbeConfig:
        keys = PROBE_SETTINGS if isinstance(probe, IcmpProbe) else ("interval", "timeout")
        use = link.below(path, probe).only(keys)
        self.probes.append(use)
        return probe.model_copy(update=use.values)

    def site(self, path: Location, site: Site) -> Site:
        """``site`` with its name, time zone and service hours concrete."""
        hours = _inherit(site, "service_hours", self.defaults.service_hours)
        levels = ((*DEFAULTS, "service_hours"), (*path, "service_hours"))
        origin: dict[str, Location] = {}
        for level, owner in zip(levels, (self.defaults, site), strict=True):
            origin.update((key, level) for key in _written_keys(owner, "service_hours"))
        self.offices.append(Use(levels, {"start": hours.start, "end": hours.end}, origin))
        return site.model_copy(
            update={
                "name": site.name or site.id,
                "timezone": site.timezone or self.agent_timezone,
                "service_hours": hours,
            }
        )

    def check(self, found: Findings, *, defaults_ok: bool) -> None:
        """Every conflict, where it was written (see the module doc). When ``defaults`` had
        errors of its own, conflicts written there are left until those are fixed."""
        _report(found, TIMING, self.probes, defaults_ok)
        _report(found, ECHOES, self.probes, defaults_ok)
        _report(found, SERVICE_HOURS, self.offices, defaults_ok)


def _report(found: Findings, rule: Rule, uses: Sequence[Use], defaults_ok: bool) -> None:
    wrong_for_all = _WrongForAll(rule, uses)
    for use in uses:
        if not rule.broken(use):
            continue
        writers = [use.origin[key] for key in rule.keys if key in use.origin]
        level = max(writers, key=use.levels.index, default=use.path)
        if level[0] == DEFAULTS[0] and not defaults_ok:
            continue
        written = frozenset(key for key in rule.keys if use.origin.get(key) == level)
        if level != use.path and not wrong_for_all(level, written):
            level = use.path  # right for some that take it: name each one it is wrong for
        found.add(*rule.message(level, written, use))


class _WrongForAll:
    """Whether ``rule`` is broken for every use that takes ``keys`` from ``level`` (each of
    them written there, none overridden below), answered once per level and keys: a broken
    default among 10,000 links must not cost a scan per link."""

    def __init__(self, rule: Rule, uses: Iterable[Use]) -> None:
        self.rule = rule
        self.by_origin: dict[tuple[Location, str], list[Use]] = {}
        for use in uses:
            for key, level in use.origin.items():
                self.by_origin.setdefault((level, key), []).append(use)
        self.answers: dict[tuple[Location, frozenset[str]], bool] = {}

    def __call__(self, level: Location, keys: frozenset[str]) -> bool:
        if (level, keys) not in self.answers:
            lists = [self.by_origin.get((level, key), []) for key in keys]
            takers = min(lists, key=len, default=[])
            self.answers[level, keys] = all(
                self.rule.broken(u)
                for u in takers
                if all(u.origin.get(key) == level for key in keys)
            )
        return self.answers[level, keys]


def _written(level: Defaults | Link | ProbeConfig) -> dict[str, Any]:
    """The probe settings ``level`` writes itself, flattened: ``icmp: {count: 3}`` on
    defaults or a link is the ``count`` of the ICMP probes below it."""
    written = {key: getattr(level, key) for key in PROBE_SETTINGS if key in level.model_fields_set}
    if isinstance(level, Defaults | Link):
        written.update((key, getattr(level.icmp, key)) for key in _written_keys(level, "icmp"))
    return written


def _written_keys(owner: BaseModel, key: str) -> set[str]:
    """The keys of the section ``owner.key`` that the file wrote (none if it left it out)."""
    if key not in owner.model_fields_set:
        return set()
    section: BaseModel = getattr(owner, key)
    return section.model_fields_set


def _own_or(owner: BaseModel, inherited: BaseModel, key: str) -> Any:
    return getattr(owner if key in owner.model_fields_set else inherited, key)


def _inherit(owner: BaseModel, key: str, inherited: _M) -> _M:
    """``owner.key`` with the keys it did not set taken from ``inherited``."""
    own: BaseModel = getattr(owner, key)
    if key not in owner.model_fields_set:
        return inherited
    return inherited.model_copy(update={k: getattr(own, k) for k in own.model_fields_set})
