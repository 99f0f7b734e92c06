"""`linkmon report` in words: the month's figures as a text table, CSV or an HTML page.

The figures come from :mod:`linkmon.report`; here they are laid out in Bahasa Indonesia or
English, with times in each office's own zone. The HTML page is self-contained (no script,
no font or style from the internet) so it prints and mails as it is.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from typing import Literal

from ..alerts.text import duration, month_name, zone_abbr
from ..report import Group, Report, Row
from .common import local

Format = Literal["text", "csv", "html"]
FORMATS: tuple[Format, ...] = ("text", "csv", "html")

_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Laporan ketersediaan {month}",
        "agent": "Agen {agent} · dibuat {generated}",
        "partial": "Bulan berjalan: dihitung sampai {now}.",
        "offices": "Kantor",
        "links": "Link",
        "zone": "Zona",
        "avail_full": "Tersedia 24×7",
        "avail_service": "Tersedia jam layanan",
        "outages": "Gangguan",
        "downtime": "Total putus",
        "longest": "Terlama",
        "mttr": "MTTR",
        "outages_service": "Gangguan jam layanan",
        "downtime_service": "Putus jam layanan",
        "maint": "Pemeliharaan",
        "measured": "Waktu diukur",
        "maint_title": "Jendela pemeliharaan (dikecualikan)",
        "no_maint": "Tidak ada.",
        "reason": "Alasan",
        "start": "Mulai",
        "end": "Selesai",
        "link": "Link",
        "chart": "Ketersediaan kantor, {name}",
        "legend_full": "24×7",
        "legend_service": "jam layanan",
        "notes": "Cara menghitung",
        "note1": "Bulan dihitung menurut jam setempat kantor (WIB/WITA/WIT); jam layanan "
        "menurut service_hours tiap kantor, hari kerja saja.",
        "note2": "Link dianggap putus selama berstatus putus atau tak terjangkau. Kantor "
        "dianggap tidak dapat melayani selama tidak ada jalur ke pusat (DC atau "
        "DRC); melalui DRC saja tetap dihitung melayani. Waktu ketika jalur kantor tidak "
        "diketahui (link belum dinilai, atau linkmon buta karena uplink-nya sendiri putus) "
        "tidak dihitung sebagai waktu diukur.",
        "note3": "Waktu pemeliharaan tidak dihitung sebagai waktu diukur maupun waktu putus. "
        "MTTR = total putus / jumlah gangguan. Gangguan yang melewati batas bulan "
        "dihitung di tiap bulan dengan bagiannya masing-masing.",
        "note4": "Waktu ketika linkmon tidak berjalan dihitung tersedia.",
    },
    "en": {
        "title": "Availability report {month}",
        "agent": "Agent {agent} · generated {generated}",
        "partial": "Running month: counted up to {now}.",
        "offices": "Office",
        "links": "Link",
        "zone": "Zone",
        "avail_full": "Available 24×7",
        "avail_service": "Available service hours",
        "outages": "Outages",
        "downtime": "Downtime",
        "longest": "Longest",
        "mttr": "MTTR",
        "outages_service": "Outages service hours",
        "downtime_service": "Down service hours",
        "maint": "Maintenance",
        "measured": "Measured",
        "maint_title": "Maintenance windows (excluded)",
        "no_maint": "None.",
        "reason": "Reason",
        "start": "Start",
        "end": "End",
        "link": "Link",
        "chart": "Office availability, {name}",
        "legend_full": "24×7",
        "legend_service": "service hours",
        "notes": "How it is counted",
        "note1": "Months follow each office's local clock (WIB/WITA/WIT); service hours follow "
        "each office's service_hours, working days only.",
        "note2": "A link is out while down or unreachable. An office is out while it has no "
        "path to pusat (DC or DRC); via the DRC only still counts as serving. Time when an "
        "office's path is unknown (a link not judged, or linkmon blind behind its own "
        "failed uplink) does not count as measured time.",
        "note3": "Maintenance time counts neither as measured time nor as downtime. MTTR = "
        "downtime / number of outages. An outage across a month boundary counts in "
        "each month with its part.",
        "note4": "Time linkmon was not running counts as available.",
    },
}
LANGUAGES = tuple(_WORDS)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3f} %"


def _dur(seconds: float | None, language: str) -> str:
    return "-" if not seconds else duration(seconds, language)


def _columns(row: Row, language: str) -> list[str]:
    f, s = row.full, row.service
    return [
        row.name,
        zone_abbr(row.period[0], row.timezone),
        _pct(f.availability),
        _pct(s.availability),
        str(f.outages),
        _dur(f.downtime, language),
        _dur(f.longest, language),
        _dur(f.mttr, language),
        str(s.outages),
        _dur(s.downtime, language),
        _dur(f.maintenance, language),
    ]


def _headings(first: str, language: str) -> list[str]:
    w = _WORDS[language]
    return [
        first,
        w["zone"],
        w["avail_full"],
        w["avail_service"],
        w["outages"],
        w["downtime"],
        w["longest"],
        w["mttr"],
        w["outages_service"],
        w["downtime_service"],
        w["maint"],
    ]


def _month_name(report: Report, language: str) -> str:
    return f"{month_name(report.month, language)} {report.year}"


# ------------------------------------------------------------------------------ text


def render_text(report: Report, language: str) -> str:
    w = _WORDS[language]
    lines = [
        w["title"].format(month=_month_name(report, language)),
        w["agent"].format(agent=report.agent, generated=local(report.generated, report.timezone)),
    ]
    if report.partial:
        lines.append(w["partial"].format(now=local(report.generated, report.timezone)))
    for group in report.groups:
        lines += ["", f"== {group.name} ({group.id})"]
        for title, rows in ((w["offices"], group.offices), (w["links"], group.links)):
            if rows:
                lines += [
                    "",
                    *_table(
                        [_headings(title, language), *(_columns(r, language) for r in rows)], left=2
                    ),
                ]
    lines += ["", w["maint_title"]]
    if not report.maintenance:
        lines.append("  " + w["no_maint"])
    else:
        lines += _table(
            [
                [w["link"], w["start"], w["end"], w["reason"]],
                *(
                    [m.link, local(m.start, m.timezone), local(m.end, m.timezone), m.reason]
                    for m in report.maintenance
                ),
            ],
            left=4,
        )
    lines += ["", w["notes"], *(f"- {w[f'note{i}']}" for i in range(1, 5))]
    return "\n".join(lines)


def _table(rows: list[list[str]], left: int) -> list[str]:
    """Columns padded to their widest cell; the first ``left`` read left, figures right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


# ------------------------------------------------------------------------------ csv

CSV_FIELDS = (
    "month",
    "scope",
    "id",
    "name",
    "kabupaten",
    "timezone",
    "hours",
    "availability",
    "outages",
    "downtime_seconds",
    "longest_seconds",
    "mttr_seconds",
    "measured_seconds",
    "maintenance_seconds",
)


def render_csv(report: Report) -> str:
    """One row per link or office and per set of hours (``24x7``, ``service``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    month = f"{report.year}-{report.month:02d}"
    for group in report.groups:
        for row in (*group.offices, *group.links):
            for hours, fig in (("24x7", row.full), ("service", row.service)):
                writer.writerow(
                    [
                        month,
                        row.scope,
                        row.id,
                        row.name,
                        group.id,
                        row.timezone,
                        hours,
                        "" if fig.availability is None else f"{fig.availability:.6f}",
                        fig.outages,
                        f"{fig.downtime:.0f}",
                        f"{fig.longest:.0f}",
                        "" if fig.mttr is None else f"{fig.mttr:.0f}",
                        f"{fig.measured:.0f}",
                        f"{fig.maintenance:.0f}",
                    ]
                )
    return buffer.getvalue()


# ------------------------------------------------------------------------------ html

_CSS = """
body { font: 11pt/1.35 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1b1f24;
       margin: 24px; }
h1 { font-size: 18pt; margin: 0 0 4px; }
h2 { font-size: 14pt; margin: 28px 0 8px; border-bottom: 2px solid #1b1f24; }
h3 { font-size: 11pt; margin: 14px 0 4px; }
p.meta { margin: 0; color: #555; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 4px 0 10px; }
th, td { border: 1px solid #c8ccd1; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #eef0f2; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td:first-child { white-space: normal; }
td.bad { color: #b00020; font-weight: bold; }
svg { display: block; margin: 6px 0; }
ul.notes { font-size: 9pt; color: #333; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { margin: 0; }
  section.group + section.group { break-before: page; }
  tr, svg { break-inside: avoid; }
}
"""
_GOOD, _FAIR, _POOR = "#2e7d32", "#f9a825", "#c62828"


def _colour(value: float | None) -> str:
    if value is None:
        return "#9e9e9e"
    return _GOOD if value >= 0.995 else _FAIR if value >= 0.98 else _POOR


def _axis_floor(values: Sequence[float]) -> float:
    """Where the availability axis starts: low enough for the worst office, in nice steps."""
    worst = min(values, default=1.0)
    for floor in (0.99, 0.98, 0.95, 0.9, 0.8, 0.5):
        if worst >= floor + 0.002:
            return floor
    return 0.0


def chart(group: Group, floor: float, language: str) -> str:
    """Inline SVG: two bars per office, 24×7 and service hours, on an axis from ``floor`` to
    100 %. No script, no fonts or images from elsewhere: it prints and works offline."""
    w = _WORDS[language]
    rows = group.offices
    label_w, plot_w, bar_h, row_h, top = 250, 560, 9, 30, 34
    height = top + row_h * len(rows) + 28
    width = label_w + plot_w + 80

    def x(value: float) -> float:
        return label_w + plot_w * max(0.0, value - floor) / (1.0 - floor)

    title = html.escape(w["chart"].format(name=group.name))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
        f'<text x="0" y="14" font-size="13" font-weight="bold">{title}</text>',
        f'<rect x="{label_w}" y="20" width="10" height="8" fill="#455a64"/>'
        f'<text x="{label_w + 14}" y="28">{html.escape(w["legend_full"])}</text>'
        f'<rect x="{label_w + 70}" y="20" width="10" height="8" fill="#455a64" '
        f'fill-opacity="0.55"/>'
        f'<text x="{label_w + 84}" y="28">{html.escape(w["legend_service"])}</text>',
    ]
    for i, (colour, words) in enumerate(
        ((_GOOD, "≥ 99.5 %"), (_FAIR, "≥ 98 %"), (_POOR, "< 98 %"))
    ):
        lx = label_w + 250 + i * 90
        parts.append(
            f'<rect x="{lx}" y="20" width="10" height="8" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="28">{html.escape(words)}</text>'
        )
    steps = 5
    for i in range(steps + 1):
        tick = floor + (1.0 - floor) * i / steps
        gx = x(tick)
        parts.append(
            f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" '
            f'y2="{top + row_h * len(rows)}" stroke="#d0d4d8"/>'
            f'<text x="{gx:.1f}" y="{top + row_h * len(rows) + 14}" '
            f'text-anchor="middle">{tick * 100:g} %</text>'
        )
    for index, row in enumerate(rows):
        y = top + index * row_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + row_h / 2 + 4:.1f}" '
            f'text-anchor="end">{html.escape(row.name)}</text>'
        )
        for offset, value, tint in (
            (3, row.full.availability, 1.0),
            (3 + bar_h + 2, row.service.availability, 0.55),
        ):
            if value is None:
                continue
            bar = x(value) - label_w
            parts.append(
                f'<rect x="{label_w}" y="{y + offset}" width="{bar:.1f}" '
                f'height="{bar_h}" fill="{_colour(value)}" fill-opacity="{tint}"/>'
                f'<text x="{label_w + bar + 4:.1f}" y="{y + offset + bar_h - 1}" '
                f'font-size="9">{value * 100:.2f} %</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(first: str, rows: list[Row], language: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _headings(first, language))
    body = []
    for row in rows:
        cells = _columns(row, language)
        tds = []
        for i, cell in enumerate(cells):
            value = (
                (row.full.availability, row.service.availability)[i - 2] if i in (2, 3) else None
            )
            cls = (
                ' class="bad"'
                if value is not None and value < 0.98
                else ' class="text"'
                if i < 2
                else ""
            )
            tds.append(f"<td{cls}>{html.escape(cell)}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _meta(text: str) -> str:
    return f'<p class="meta">{html.escape(text)}</p>'


def render_html(report: Report, language: str) -> str:
    """A self-contained page: inline CSS and SVG, no script, nothing fetched; prints on A4."""
    w = _WORDS[language]
    month = _month_name(report, language)
    generated = local(report.generated, report.timezone)
    out = [
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">',
        f"<title>{html.escape(w['title'].format(month=month))} · "
        f"{html.escape(report.agent)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(w['title'].format(month=month))}</h1>",
        _meta(w["agent"].format(agent=report.agent, generated=generated)),
    ]
    if report.partial:
        out.append(_meta(w["partial"].format(now=generated)))
    # One axis for every chart, so that bars compare across kabupaten.
    floor = _axis_floor(
        [
            v
            for g in report.groups
            for r in g.offices
            for v in (r.full.availability, r.service.availability)
            if v is not None
        ]
    )
    for group in report.groups:
        out.append(f'<section class="group"><h2>{html.escape(group.name)}</h2>')
        if group.offices:
            out.append(chart(group, floor, language))
            out.append(f"<h3>{html.escape(w['offices'])}</h3>")
            out.append(_html_table(w["offices"], group.offices, language))
        if group.links:
            out.append(f"<h3>{html.escape(w['links'])}</h3>")
            out.append(_html_table(w["links"], group.links, language))
        out.append("</section>")
    out.append(f"<section><h2>{html.escape(w['maint_title'])}</h2>")
    if report.maintenance:
        head = "".join(
            f'<th class="text">{html.escape(w[k])}</th>' for k in ("link", "start", "end", "reason")
        )
        rows = "".join(
            f"<tr><td>{html.escape(m.link)}</td>"
            f'<td class="text">{html.escape(local(m.start, m.timezone))}</td>'
            f'<td class="text">{html.escape(local(m.end, m.timezone))}</td>'
            f'<td class="text">{html.escape(m.reason)}</td></tr>'
            for m in report.maintenance
        )
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    else:
        out.append(f"<p>{html.escape(w['no_maint'])}</p>")
    notes = "".join(f"<li>{html.escape(w[f'note{i}'])}</li>" for i in range(1, 5))
    out.append(f'</section><h3>{html.escape(w["notes"])}</h3><ul class="notes">{notes}</ul>')
    out.append("</body></html>")
    return "\n".join(out)


def render(report: Report, fmt: Format, language: str) -> str:
    """The report in ``fmt``; CSV is the same in every language (it is read by programs)."""
    if fmt == "csv":
        return render_csv(report)
    return render_html(report, language) if fmt == "html" else render_text(report, language)
