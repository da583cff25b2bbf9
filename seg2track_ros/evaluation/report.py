"""The evaluation report: metrics.json, report.md and two PNG plots.

``metrics.json`` holds every number of an ``EvaluationResult`` (fractions, as trackeval
computes them); ``report.md`` and ``format_table`` show the headline scores in percent.
Plots use matplotlib's object API on the Agg canvas, so no GUI backend and no global
pyplot state is touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seg2track_ros.classmap import describe_unmapped
from seg2track_ros.evaluation.evaluate import (
    COMBINED,
    ClassMetrics,
    EvaluationError,
    EvaluationResult,
)

METRICS_JSON = "metrics.json"
REPORT_MD = "report.md"
HOTA_ALPHA_PNG = "hota_alpha.png"
PER_SEQUENCE_PNG = "per_sequence.png"

# (header, value); scores are shown in percent with one decimal, IDSW as a count.
TABLE_COLUMNS: tuple[tuple[str, Callable[[ClassMetrics], float | int | None]], ...] = (
    ("HOTA", lambda m: m.hota),
    ("DetA", lambda m: m.deta),
    ("AssA", lambda m: m.assa),
    ("sMOTSA", lambda m: m.smotsa),
    ("MOTSA", lambda m: m.motsa),
    ("IDF1", lambda m: m.idf1),
    ("IDSW", lambda m: m.idsw),
)
NOT_APPLICABLE = "n/a"  # a class with neither ground truth nor results in a sequence


@dataclass(frozen=True)
class ReportFiles:
    """Where the report of one evaluation is written."""

    metrics_json: Path
    report_md: Path
    hota_alpha_png: Path
    per_sequence_png: Path

    @classmethod
    def in_dir(cls, out_dir: Path) -> ReportFiles:
        out_dir = Path(out_dir)
        return cls(
            metrics_json=out_dir / METRICS_JSON,
            report_md=out_dir / REPORT_MD,
            hota_alpha_png=out_dir / HOTA_ALPHA_PNG,
            per_sequence_png=out_dir / PER_SEQUENCE_PNG,
        )

    def all(self) -> tuple[Path, ...]:
        return (self.metrics_json, self.report_md, self.hota_alpha_png, self.per_sequence_png)


def _cell(header: str, value: float | int | None) -> str:
    if header == "IDSW":
        return str(value)
    if value is None:
        return NOT_APPLICABLE
    return f"{100.0 * value:.1f}"


def class_table(result: EvaluationResult, class_name: str) -> str:
    """A markdown table of one class: a row per sequence and COMBINED, aligned for terminals."""
    headers = ["sequence", *(header for header, _ in TABLE_COLUMNS)]
    body = [
        [name, *(_cell(header, value(metrics)) for header, value in TABLE_COLUMNS)]
        for name, metrics in result.rows(class_name)
    ]
    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (width + 1) + ":" if i else ":" + "-" * (width + 1)
            for i, width in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(row) for row in body)])


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def format_table(result: EvaluationResult) -> str:
    """The headline scores of every class (percent, IDSW as a count), for printing."""
    blocks = [
        f"{class_name} ({result.benchmark}, {_count(len(result.sequences), 'sequence')})\n"
        + class_table(result, class_name)
        for class_name in result.classes
    ]
    return "\n\n".join(blocks)


def render_markdown(result: EvaluationResult) -> str:
    """report.md: one table per class, and what the numbers are."""
    lines = [
        f"# Tracking evaluation: {result.benchmark}",
        "",
        f"- ground truth: `{result.gt_dir}`",
        f"- results: `{result.results_dir}`",
        "- sequences: "
        + ", ".join(
            f"{name} ({result.sequence_lengths[name]} frames)" for name in result.sequences
        ),
        "- computed by trackeval (HOTA, CLEAR, Identity); scores in percent, IDSW a count;"
        f" {COMBINED} scores all sequences together; {NOT_APPLICABLE}: the class has neither"
        " ground truth nor results in that sequence",
        f"- all numbers: `{METRICS_JSON}`; plots: `{HOTA_ALPHA_PNG}`, `{PER_SEQUENCE_PNG}`",
        *_unmapped_lines(result),
        "",
    ]
    for class_name in result.classes:
        lines += [f"## {class_name}", "", class_table(result, class_name), ""]
    lines += inputs_markdown(result)
    return "\n".join(lines)


def inputs_markdown(result: EvaluationResult) -> list[str]:
    """report.md's "Inputs" section: the evaluate command, and for each sequence the
    command and the parameters (those that differ from the defaults) behind its results,
    from the ``<seq>.run.yaml`` that `seg2track run`/`replay` wrote."""
    from seg2track_ros.provenance import RECORD_SUFFIX

    lines = ["## Inputs", ""]
    if result.command:
        lines += ["Evaluated with:", "", "```bash", result.command, "```", ""]
    recorded = {k: v for k, v in result.run_records.items() if v}
    missing = [k for k in result.sequences if not result.run_records.get(k)]
    if missing:
        lines += [
            f"No record of how the results of {', '.join(missing)} were produced (no"
            f" `<seq>{RECORD_SUFFIX}` next to them: written by something other than"
            " `seg2track run` or `seg2track replay`).",
            "",
        ]
    changed_sets = {repr(r.get("parameters_changed") or {}) for r in recorded.values()}
    for name, record in recorded.items():
        lines += [
            f"### {name}",
            "",
            f"- command: `{record.get('command', '?')}`",
            f"- code: {record.get('code', '?')}; written {record.get('written', '?')}",
        ]
        for key, value in (record.get("inputs") or {}).items():
            lines.append(f"- {key}: `{value}`")
        unmapped = describe_unmapped(record.get("unmapped_tracks") or {})
        if unmapped:
            lines.append(f"- {unmapped} (not scored)")
        if len(changed_sets) > 1 or name == next(iter(recorded)):
            lines += ["", _parameters_table(record.get("parameters_changed") or {})]
        else:
            lines += ["", f"Parameters: as for {next(iter(recorded))}."]
        lines += [
            "",
            f"(every parameter's value: `{name}{RECORD_SUFFIX}` and `{METRICS_JSON}`)",
            "",
        ]
    return lines


def _unmapped_lines(result: EvaluationResult) -> list[str]:
    """A headline warning when the class map left tracks out of any sequence's results:
    those objects count as missed, so the scores are not the tracker's alone."""
    totals: dict[str, int] = {}
    for record in result.run_records.values():
        for name, count in ((record or {}).get("unmapped_tracks") or {}).items():
            totals[name] = totals.get(name, 0) + int(count)
    note = describe_unmapped(dict(sorted(totals.items())))
    if not note:
        return []
    return [
        f"- **{note}** by the class map when the results were written; they are not"
        " scored (see Inputs; map their classes with `--class-map` to keep them)"
    ]


def _parameters_table(changed: dict) -> str:
    if not changed:
        return "Parameters: all at their defaults (config/tracker.yaml)."
    rows = ["| parameter (not the default) | value |", "| --- | --- |"]
    rows += [f"| `{name}` | `{value}` |" for name, value in changed.items()]
    return "\n".join(rows)


def write_metrics_json(result: EvaluationResult, path: Path) -> None:
    text = json.dumps(result.to_dict(), indent=2, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def plot_hota_alpha(result: EvaluationResult, path: Path) -> None:
    """HOTA of each class over the localisation threshold alpha, all sequences combined."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, class_name in enumerate(result.classes):
        metrics = result.combined[class_name]
        if metrics.hota_curve is None:
            continue
        color = f"C{index}"
        curve = [100.0 * value for value in metrics.hota_curve]
        axes.plot(result.alphas, curve, "-o", color=color, markersize=3, label=class_name)
    axes.set_xlabel("localisation threshold alpha (mask IoU)")
    axes.set_ylabel("HOTA (%)")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 102.0)
    axes.grid(True, alpha=0.3)
    axes.set_title(f"HOTA over alpha, {result.benchmark}, {COMBINED}")
    if axes.lines:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")


def plot_per_sequence(result: EvaluationResult, path: Path) -> None:
    """Bars of HOTA, sMOTSA and IDF1 per sequence (and COMBINED), one panel per class."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    shown = (("HOTA", "hota"), ("sMOTSA", "smotsa"), ("IDF1", "idf1"))
    figure = Figure(figsize=(8.0, 3.2 * len(result.classes)), dpi=100)
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(len(result.classes), 1, squeeze=False)[:, 0]
    width = 0.8 / len(shown)
    for axes, class_name in zip(axes_list, result.classes, strict=True):
        rows = result.rows(class_name)
        for offset, (_, field) in enumerate(shown):
            for position, (_, metrics) in enumerate(rows):
                value = getattr(metrics, field)
                x = position + (offset - (len(shown) - 1) / 2) * width
                if value is None:
                    axes.text(x, 1.0, NOT_APPLICABLE, ha="center", va="bottom", fontsize=7)
                    continue
                axes.bar(x, 100.0 * value, width=width, color=f"C{offset}")
        axes.set_xticks(range(len(rows)), [name for name, _ in rows])
        axes.axhline(0.0, color="black", linewidth=0.6)
        axes.set_ylabel("%")
        axes.set_title(class_name)
        axes.grid(True, axis="y", alpha=0.3)
    legend_handles = [
        Patch(color=f"C{offset}", label=label) for offset, (label, _) in enumerate(shown)
    ]
    figure.legend(handles=legend_handles, loc="upper center", ncol=len(shown), frameon=False)
    figure.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.35 / figure.get_figheight()))
    figure.savefig(path, format="png")


def write_report(result: EvaluationResult, out_dir: Path) -> ReportFiles:
    """Write metrics.json, report.md, hota_alpha.png and per_sequence.png into out_dir."""
    files = ReportFiles.in_dir(out_dir)
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_metrics_json(result, files.metrics_json)
        files.report_md.write_text(render_markdown(result), encoding="utf-8")
        plot_hota_alpha(result, files.hota_alpha_png)
        plot_per_sequence(result, files.per_sequence_png)
    except OSError as exc:
        raise EvaluationError(f"cannot write the report into {out_dir}: {exc}") from exc
    return files
