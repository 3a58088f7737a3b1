"""The report's two drawings as SVG, for the page (inline) and the PDF (WeasyPrint draws the same markup).

Colours, lines and fonts are SVG presentation attributes (fill, stroke, font-size), not `style=`: the site's
Content-Security-Policy forbids inline styles, and WeasyPrint applies presentation attributes without any CSS.
Every text is escaped (format_html); every count is in a `data-n` beside its box's key (`data-box`), so that tests
and the browser journey read the numbers the drawing shows.
"""

import textwrap
from dataclasses import dataclass, field
from itertools import groupby

from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from reports.render.values import month as month_text
from reports.render.values import number
from reports.tables import ArmFlow, Box, Flow, MonthCount

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 12
CHAR_WIDTH = 7.0  # the average advance of DejaVu Sans at 12 px, with room to spare
LINE_HEIGHT = 16
PADDING = 8
INDENT = 14
INK = "#212529"
MUTED = "#6c757d"
BOX_FILL = "#ffffff"
BOX_STROKE = "#495057"
# One colour per site of the recruitment chart (the colour-blind-safe Okabe-Ito palette), the legend names them.
SITE_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
TARGET_COLOUR = "#D62728"


def counted(label: object, n: int) -> str:
    """A box's line: its label and count, "Randomised (n = 38)". The spaces around "=" do not break."""
    # Translators: a box of the flow diagram: its label and its number of families.
    text = _("%(label)s (n = %(n)s)") % {"label": label, "n": number(n)}
    # No line break inside "(n = 38)": non-breaking spaces around the sign (textwrap breaks at ASCII spaces only).
    return text.replace(" = ", "\u00a0=\u00a0")


@dataclass
class _Line:
    text: str
    indent: int = 0
    bold: bool = False
    key: str = ""  # the box's key, on the line that carries its count
    n: int | None = None


@dataclass
class _Drawing:
    parts: list[str] = field(default_factory=list)

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def box(self, x: float, y: float, width: float, lines: list[_Line]) -> float:
        """A box of wrapped lines at (x, y); returns its height."""
        wrapped: list[_Line] = []
        for line in lines:
            chars = max(int((width - 2 * PADDING - line.indent) / CHAR_WIDTH), 10)
            pieces = textwrap.wrap(line.text, chars, break_on_hyphens=False) or [""]
            for number_, piece in enumerate(pieces):
                first = number_ == 0
                wrapped.append(
                    _Line(piece, line.indent, line.bold, line.key if first else "", line.n if first else None)
                )
        height = 2 * PADDING + LINE_HEIGHT * len(wrapped) - 4
        self.add(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="{}" stroke="{}" stroke-width="1.2"/>',
                x,
                y,
                width,
                height,
                BOX_FILL,
                BOX_STROKE,
            )
        )
        for index, line in enumerate(wrapped):
            data = format_html(' data-box="{}" data-n="{}"', line.key, line.n) if line.key else ""
            self.add(
                format_html(
                    '<text x="{}" y="{}"{}{}>{}</text>',
                    x + PADDING + line.indent,
                    y + PADDING + 12 + index * LINE_HEIGHT,
                    mark_safe(' font-weight="bold"') if line.bold else "",
                    data,
                    line.text,
                )
            )
        return height

    def arrow(self, x1: float, y1: float, x2: float, y2: float, *, head: bool = True) -> None:
        self.add(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.2"{}/>',
                x1,
                y1,
                x2,
                y2,
                BOX_STROKE,
                mark_safe(' marker-end="url(#flow-arrow)"') if head else "",
            )
        )

    def text(self, x: float, y: float, content: str, *, anchor: str = "middle", bold: bool = False, fill=MUTED):
        self.add(
            format_html(
                '<text x="{}" y="{}" text-anchor="{}" fill="{}"{}>{}</text>',
                x,
                y,
                anchor,
                fill,
                mark_safe(' font-weight="bold"') if bold else "",
                content,
            )
        )

    def svg(self, *, width: float, height: float, title: str, css_class: str, extra_defs: str = "") -> SafeString:
        # Every part was made by format_html, which escaped its values.
        parts = format_html_join("", "{}", ((part,) for part in self.parts))
        return format_html(
            '<svg xmlns="http://www.w3.org/2000/svg" class="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
            'role="img" aria-label="{}" font-family="{}" font-size="{}" fill="{}">'
            "<title>{}</title>{}{}</svg>",
            css_class,
            width,
            height,
            width,
            height,
            title,
            FONT,
            FONT_SIZE,
            INK,
            title,
            extra_defs,
            parts,
        )


def _with_reasons(box: Box, key: str, indent: int = 0) -> list[_Line]:
    lines = [_Line(counted(box.label, box.n), indent, key=key, n=box.n)]
    lines += [
        _Line(counted(reason.label, reason.n), indent + INDENT, key=f"{key}-reason-{index}", n=reason.n)
        for index, reason in enumerate(box.reasons)
    ]
    return lines


def _allocation_lines(arm: ArmFlow) -> list[_Line]:
    return [
        _Line(str(arm.label), bold=True),
        *_with_reasons(arm.allocated, f"{arm.arm}-allocated"),
        *_with_reasons(arm.received, f"{arm.arm}-received", INDENT),
        *_with_reasons(arm.not_received, f"{arm.arm}-not_received", INDENT),
    ]


def _follow_up_lines(arm: ArmFlow) -> list[_Line]:
    # Each time point with why the others were not assessed (missed, refused, stopped, not yet due).
    lines = [
        line for index, box in enumerate(arm.follow_ups) for line in _with_reasons(box, f"{arm.arm}-follow_up-{index}")
    ]
    return lines + _with_reasons(arm.lost, f"{arm.arm}-lost") + _with_reasons(arm.withdrawn, f"{arm.arm}-withdrawn")


def _analysis_lines(arm: ArmFlow) -> list[_Line]:
    return _with_reasons(arm.analysed, f"{arm.arm}-analysed")


FLOW_WIDTH = 760
MARGIN = 20
GAP = 28  # between rows of boxes


def flow_diagram(flow: Flow) -> SafeString:
    """The CONSORT flow diagram for pilot trials (Eldridge et al. 2016): enrolment (assessed, excluded with
    reasons, randomised), then one column per arm: allocation, follow-up, analysis."""
    drawing = _Drawing()
    main_x, main_width = 110.0, 320.0
    main_centre = main_x + main_width / 2
    side_x = main_x + main_width + 40
    side_width = FLOW_WIDTH - MARGIN - side_x
    y = float(MARGIN)

    drawing.text(MARGIN, y + 4, _("Enrolment"), anchor="start", bold=True)
    y += 14
    assessed_height = drawing.box(main_x, y, main_width, _with_reasons(flow.assessed, "assessed"))
    y += assessed_height
    # The excluded box hangs to the right of the line from "assessed" down to "randomised".
    excluded_top = y + GAP
    excluded_height = drawing.box(side_x, excluded_top, side_width, _with_reasons(flow.excluded, "excluded"))
    branch_y = excluded_top + min(excluded_height / 2, 20)
    drawing.arrow(main_centre, branch_y, side_x, branch_y)
    randomised_top = excluded_top + excluded_height + GAP
    drawing.arrow(main_centre, y, main_centre, randomised_top)
    y = randomised_top
    y += drawing.box(main_x, y, main_width, _with_reasons(flow.randomised, "randomised"))

    arms = flow.arms or []
    columns = max(len(arms), 1)
    column_width = (FLOW_WIDTH - 2 * MARGIN - (columns - 1) * 40) / columns
    lefts = [MARGIN + index * (column_width + 40) for index in range(columns)]
    centres = [left + column_width / 2 for left in lefts]

    # The split: down from "randomised", across the arms, down into each arm.
    split_y = y + GAP / 2
    drawing.arrow(main_centre, y, main_centre, split_y, head=False)
    if arms:
        drawing.arrow(min(centres), split_y, max(centres), split_y, head=False)
    drawing.text(MARGIN, split_y + 4, _("Allocation"), anchor="start", bold=True)
    for centre in centres[: len(arms)]:
        drawing.arrow(centre, split_y, centre, split_y + GAP)
    y = split_y + GAP

    for stage, lines_of in (
        (_("Allocation"), _allocation_lines),
        (_("Follow-up"), _follow_up_lines),
        (_("Analysis"), _analysis_lines),
    ):
        if stage != _("Allocation"):
            drawing.text(MARGIN, y - GAP / 2 + 4, stage, anchor="start", bold=True)
        heights = [drawing.box(left, y, column_width, lines_of(arm)) for arm, left in zip(arms, lefts, strict=False)]
        bottom = y + max(heights, default=0)
        if stage != _("Analysis"):
            for height, centre in zip(heights, centres, strict=False):
                drawing.arrow(centre, y + height, centre, bottom + GAP)
        y = bottom + GAP

    marker = format_html(
        '<defs><marker id="flow-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{}"/></marker></defs>',
        BOX_STROKE,
    )
    return drawing.svg(
        width=FLOW_WIDTH,
        height=y - GAP + MARGIN,
        title=_("Flow of families through the trial (CONSORT diagram)"),
        css_class="report-flow",
        extra_defs=marker,
    )


CHART_HEIGHT = 260
CHART_LEFT = 48
CHART_TOP = 16
CHART_BOTTOM = 64  # room for the months
LEGEND_HEIGHT = 24


def _nice_top(largest: float) -> int:
    """The top of the y axis: a round number at or above `largest`."""
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if largest <= step * 5:
            return max(step * int(-(-largest // step)), step)
    return int(largest) + 1


def recruitment_chart(counts: list[MonthCount]) -> SafeString:
    """Families randomised per month, a bar per month stacked by site, with the target of the sites shown
    (the sum of their monthly targets) as a dashed line."""
    months = sorted({count.month for count in counts})
    sites = sorted({count.site_code for count in counts})
    colours = {site: SITE_COLOURS[index % len(SITE_COLOURS)] for index, site in enumerate(sites)}
    in_order = sorted(counts, key=lambda count: count.month)
    by_month = {month: list(group) for month, group in groupby(in_order, lambda count: count.month)}
    totals = {month: sum(c.randomised for c in by_month[month]) for month in months}
    targets = {month: sum(c.target for c in by_month[month]) for month in months}
    top = _nice_top(max([*totals.values(), *targets.values(), 1]))

    slot = max(min(48.0, 640 / max(len(months), 1)), 14.0)
    width = CHART_LEFT + slot * len(months) + MARGIN
    width = max(width, 360)
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    base = CHART_TOP + plot_height
    drawing = _Drawing()

    def y_of(value: float) -> float:
        return round(base - plot_height * value / top, 1)

    step = _nice_top(top / 4) if top > 4 else 1
    tick = 0
    while tick <= top:
        drawing.add(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#dee2e6" stroke-width="1"/>',
                CHART_LEFT,
                y_of(tick),
                width - MARGIN,
                y_of(tick),
            )
        )
        drawing.text(CHART_LEFT - 6, y_of(tick) + 4, number(tick), anchor="end")
        tick += step
    label_every = max(1, -(-len(months) // 16))
    for index, month in enumerate(months):
        x = CHART_LEFT + index * slot + slot * 0.15
        bar_width = slot * 0.7
        stacked = 0
        for count in sorted(by_month[month], key=lambda c: c.site_code):
            if count.randomised:
                drawing.add(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-site="{}" data-month="{}" '
                        'data-n="{}"><title>{}</title></rect>',
                        round(x, 1),
                        y_of(stacked + count.randomised),
                        round(bar_width, 1),
                        round(y_of(stacked) - y_of(stacked + count.randomised), 1),
                        colours[count.site_code],
                        count.site_code,
                        month.isoformat(),
                        count.randomised,
                        f"{count.site_code}, {month_text(month)}: {number(count.randomised)}",
                    )
                )
            stacked += count.randomised
        if index % label_every == 0:
            label_x = round(x + bar_width / 2, 1)
            drawing.add(
                format_html(
                    '<text x="{}" y="{}" text-anchor="end" fill="{}" font-size="10" transform="rotate(-45 {} {})">'
                    "{}</text>",
                    label_x,
                    base + 14,
                    MUTED,
                    label_x,
                    base + 14,
                    formats.date_format(month, "M Y"),
                )
            )
    if months:
        points = []
        for index, month in enumerate(months):
            points += [
                f"{CHART_LEFT + index * slot:.1f},{y_of(targets[month])}",
                f"{CHART_LEFT + (index + 1) * slot:.1f},{y_of(targets[month])}",
            ]
        drawing.add(
            format_html(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="6 4" '
                'data-target="{}"/>',
                " ".join(points),
                TARGET_COLOUR,
                " ".join(f"{targets[month]:g}" for month in months),
            )
        )
    drawing.add(
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>',
            CHART_LEFT,
            base,
            width - MARGIN,
            base,
            BOX_STROKE,
        )
    )
    # The legend: each site's colour, and the target's line.
    legend_y = CHART_HEIGHT + 4
    x = float(CHART_LEFT)
    for site in sites:
        drawing.add(format_html('<rect x="{}" y="{}" width="12" height="12" fill="{}"/>', x, legend_y, colours[site]))
        drawing.text(x + 16, legend_y + 10, site, anchor="start", fill=INK)
        x += 16 + CHAR_WIDTH * len(site) + 16
    drawing.add(
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" stroke-dasharray="6 4"/>',
            x,
            legend_y + 6,
            x + 24,
            legend_y + 6,
            TARGET_COLOUR,
        )
    )
    drawing.text(x + 30, legend_y + 10, _("Target"), anchor="start", fill=INK)
    if not months:
        drawing.text(width / 2, base - plot_height / 2, _("No family randomised in this period."))
    return drawing.svg(
        width=round(width, 1),
        height=CHART_HEIGHT + LEGEND_HEIGHT + 4,
        title=_("Families randomised per month and site, against the target"),
        css_class="report-chart",
    )
