"""Facts in, words out: the state machine's alert changes as receivers get them.

The state machine says *what* changed (:class:`~linkmon.state.AlertChange`: a key, times, a
cause, figures); the :class:`Composer` builds the :class:`~linkmon.alerts.model.Alert`: its
labels (the identity, and so the fingerprint), its annotations (in the agent's language, times
in the office's own zone, :mod:`linkmon.alerts.text`), its delivery group.

It keeps the alerts firing as they were sent, so a resolve carries exactly the labels of its
firing — after a reload renamed an office, after a restart (storage hands them back: see
:meth:`Composer.began`, what the state machine restarts from), and for a subject a reload
removed, whose resolve says so in the agent's zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from linkmon.alerts import text
from linkmon.alerts.model import Alert
from linkmon.state import AlertChange, AlertKey, AlertKind, LinkRule, Rules

_SEVERITY = {
    AlertKind.LINK_DOWN: "critical",
    AlertKind.LINK_FLAPPING: "warning",
    AlertKind.SERVICE_UNAVAILABLE: "critical",
    AlertKind.REGIONAL_INCIDENT: "critical",
}
# What a key's subject is: the delivery group's prefix and the words for a removed one.
_ABOUT: dict[AlertKind, tuple[str, Literal["link", "office", "region"]]] = {
    AlertKind.LINK_DOWN: ("link", "link"),
    AlertKind.LINK_FLAPPING: ("link", "link"),
    AlertKind.SERVICE_UNAVAILABLE: ("site", "office"),
    AlertKind.REGIONAL_INCIDENT: ("kabupaten", "region"),
}


class Composer:
    """Alerts for one agent: its ``rules`` (names, zones, labels), ``language`` and ``timezone``.

    ``firing``: the alerts storage kept as firing when the agent last stopped.
    """

    def __init__(
        self, rules: Rules, *, language: str, timezone: str, firing: Iterable[Alert] = ()
    ) -> None:
        self.reconfigure(rules, language=language, timezone=timezone)
        self._firing = {AlertKey.parse(alert.key): alert for alert in firing}

    def reconfigure(self, rules: Rules, *, language: str, timezone: str) -> None:
        self._rules, self._language, self._timezone = rules, language, timezone

    def began(self) -> dict[AlertKey, float]:
        """The firing alerts as the state machine knows them: by key, when each began."""
        return {key: alert.starts_at for key, alert in self._firing.items()}

    def firing(self) -> list[Alert]:
        """Alerts firing now, for the Alertmanager re-send."""
        return list(self._firing.values())

    def compose(self, changes: Sequence[AlertChange]) -> tuple[Alert, ...]:
        """The notifications for ``changes``, in order; the firing book follows them."""
        alerts = []
        for change in changes:
            if change.firing:
                alert = self._fire(change)
                self._firing[change.key] = alert
            else:
                alert = self._firing.pop(change.key).resolve(change.at, self._resolved(change))
            alerts.append(alert)
        return tuple(alerts)

    # -- words -------------------------------------------------------------------------------

    def _fire(self, change: AlertChange) -> Alert:
        key, lang, since = change.key, self._language, change.since
        link: LinkRule | None = None
        if key.kind.about_link:
            link = self._rules.links[key.subject]
            site = link.from_site
            office, peer = self._place(link.from_site), self._place(link.to_site).name
            if key.kind is AlertKind.LINK_DOWN:
                words = text.link_down(
                    lang,
                    link=link.id,
                    office=office,
                    peer=peer,
                    network=link.network,
                    cause=change.cause,
                    detail=change.detail,
                    since=since,
                )
            else:
                words = text.link_flapping(
                    lang,
                    link=link.id,
                    office=office,
                    peer=peer,
                    changes=change.changes,
                    window=change.window,
                    since=since,
                )
        elif key.kind is AlertKind.SERVICE_UNAVAILABLE:
            site = key.subject
            words = text.service_unavailable(
                lang, office=self._place(site), links=change.links, since=since
            )
        else:
            site = key.subject
            words = text.regional_incident(
                lang,
                kabupaten=self._place(site),
                down=change.down,
                total=change.total,
                offices=[self._place(office).name for office in change.offices],
                cause=change.cause,
                since=since,
            )
        return Alert.create(
            str(key),
            f"{_ABOUT[key.kind][0]}:{key.subject}",
            self._labels(change, site, link),
            words,
            starts_at=since,
        )

    def _resolved(self, change: AlertChange) -> dict[str, str]:
        key, lang, since, at = change.key, self._language, change.since, change.at
        if change.removed:
            return text.removed(
                lang, about=_ABOUT[key.kind][1], subject=key.subject, timezone=self._timezone, at=at
            )
        if key.kind.about_link:
            link = self._rules.links[key.subject]
            office, peer = self._place(link.from_site), self._place(link.to_site).name
            words = text.link_restored if key.kind is AlertKind.LINK_DOWN else text.link_calm
            return words(lang, link=link.id, office=office, peer=peer, since=since, at=at)
        if key.kind is AlertKind.SERVICE_UNAVAILABLE:
            return text.service_restored(lang, office=self._place(key.subject), since=since, at=at)
        return text.regional_resolved(lang, kabupaten=self._place(key.subject), since=since, at=at)

    def _labels(self, change: AlertChange, site: str, link: LinkRule | None) -> dict[str, str]:
        info = self._rules.sites.get(site)
        kabupaten = (link.kabupaten if link else None) or (info.kabupaten if info else None)
        return {
            "alertname": change.key.kind.value,
            "agent": self._rules.agent,
            "site": site,
            "kabupaten": kabupaten or "",
            "link": link.id if link else "",
            "network": link.network if link else "",
            "severity": _SEVERITY[change.key.kind],
            "cause": change.cause,
        }

    def _place(self, site: str) -> text.Place:
        """A site as people know it; one not configured by its id, in the agent's zone."""
        info = self._rules.sites.get(site)
        if info is None:
            return text.Place(site, self._timezone)
        return text.Place(info.name, info.timezone)
