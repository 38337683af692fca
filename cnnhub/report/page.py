"""``report.html``: one self-contained page per run (inline style and PNGs, no script, no fetch).

Every text that comes from the data or the user (class names, file names, paths, settings)
goes through :func:`esc` (``html.escape``): a class folder named ``<img src=x onerror=...>``
shows as that text. Sections (``<section id=...>``, listed in :data:`SECTIONS`) are built from
what :class:`~cnnhub.report.contents.ReportContents` holds; one with nothing to show says so.
Numbers are printed with 4 decimals (:func:`number`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cnnhub.durations import describe_budget_outcome
from cnnhub.evaluation.reporting import tolerance_text
from cnnhub.report import figures
from cnnhub.report.contents import ReportContents, image_file

SECTIONS = {
    "summary": "What was trained",
    "data": "Data",
    "curves": "Training curves",
    "epochs": "Per-epoch scores",
    "thresholds": "Precision, recall and coverage by threshold",
    "confusion": "Confusion matrix",
    "classes": "Per-class scores at the deploy threshold",
    "calibration": "Calibration",
    "errors": "Most confident errors",
    "heldout": "Held-out evaluations",
    "exports": "Exports and their checks",
}
"""Section id -> heading, in page order (a single-label classification run)."""

TASK_SECTIONS = {
    "regression": {
        "summary": "What was trained",
        "data": "Data",
        "curves": "Training curves",
        "epochs": "Per-epoch scores",
        "predictions": "Predicted against actual",
        "errors": "Largest errors",
        "heldout": "Held-out evaluations",
        "exports": "Exports and their checks",
    },
    "multi_label": {
        "summary": "What was trained",
        "data": "Data",
        "curves": "Training curves",
        "epochs": "Per-epoch scores",
        "thresholds": "Scores by threshold (the same threshold for every class)",
        "classes": "Per-class scores at each class's threshold",
        "heldout": "Held-out evaluations",
        "exports": "Exports and their checks",
    },
}
"""The sections of the other tasks (config key TASK), by task."""


def sections_of(task: str) -> dict[str, str]:
    """Section id -> heading of a run of ``task``."""
    return TASK_SECTIONS.get(task, SECTIONS)


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f3f3f3}td.text,th.text{text-align:left}
tr.chosen td{background:#fff3b0;font-weight:bold}
.warning{color:#a00;font-weight:bold}.note{color:#555}
.gallery{display:flex;flex-wrap:wrap;gap:1em}.gallery figure{margin:0;width:160px}
.gallery figcaption{font-size:.8em;word-break:break-all}
img.plot{max-width:100%}
"""


def esc(value: Any) -> str:
    """``value`` as HTML text (escaped, quotes included; a file name that is not valid UTF-8
    shows its odd bytes as ``\\udcXX``)."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def number(value: Any, digits: int = 4) -> str:
    """A number as the page prints it: integers as they are, floats with ``digits`` decimals,
    ``n/a`` for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    return esc(value)


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    table_id: str,
    text_columns: int = 1,
    chosen: Iterable[bool] | None = None,
) -> str:
    """An HTML table; the first ``text_columns`` columns are left-aligned text, the others
    numbers (:func:`number`); rows flagged in ``chosen`` are highlighted."""
    head = "".join(
        f'<th class="text">{esc(c)}</th>' if i < text_columns else f"<th>{esc(c)}</th>"
        for i, c in enumerate(columns)
    )
    body = []
    flags = iter(chosen) if chosen is not None else None
    for row in rows:
        cells = "".join(
            f'<td class="text">{esc(v)}</td>' if i < text_columns else f"<td>{number(v)}</td>"
            for i, v in enumerate(row)
        )
        mark = ' class="chosen"' if flags is not None and next(flags) else ""
        body.append(f"<tr{mark}>{cells}</tr>")
    return f'<table id="{table_id}"><tr>{head}</tr>{"".join(body)}</table>'


def frame_table(frame: pd.DataFrame, table_id: str, text_columns: int = 1, chosen=None) -> str:
    """:func:`table` of a DataFrame."""
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False)
    return table(list(frame.columns), rows, table_id, text_columns, chosen)


def picture(uri: str, alt: str) -> str:
    return f'<img class="plot" src="{uri}" alt="{esc(alt)}">'


# --------------------------------------------------------------------------- sections


def _summary(c: ReportContents) -> str:
    config, info, env = c.config, c.info, c.info.get("environment") or {}
    budget = info.get("time_budget")
    rows = [
        ("run", c.run.name),
        ("task", c.task),
        ("model", config.get("MODEL_NAME")),
        ("weights", config.get("WEIGHTS")),
        ("training type", config.get("TRAINING_TYPE")),
        ("image size", f"{config.get('IMG_HEIGHT')} x {config.get('IMG_WIDTH')}"),
        ("targets" if c.task == "regression" else "classes", len(c.class_names)),
        ("parameters", info.get("params", "n/a")),
        ("started (UTC)", info.get("started", "n/a")),
        ("training time (s)", info.get("train_seconds", "n/a")),
        *([("time budget", describe_budget_outcome(budget))] if budget else []),
        (
            "machine",
            f"{env.get('platform', 'n/a')}; {env.get('cpu_count', '?')} CPUs; "
            f"GPUs: {', '.join(env.get('gpus') or []) or 'none'}",
        ),  # fmt: skip
        (
            "versions",
            ", ".join(
                f"{k} {env[k]}" for k in ("python", "tensorflow", "keras", "numpy") if env.get(k)
            )
            or "n/a",
        ),  # fmt: skip
        ("cnnhub commit", env.get("cnnhub_commit") or "n/a"),
    ]
    if c.best is not None:
        rows.append(
            (
                "chosen weights",
                f"{c.best['weights']} (epoch {c.best['epoch']}), "
                + ("" if c.threshold is None else f"deploy threshold {c.threshold:g} ")
                + f"by rule {c.best.get('rule')}{tolerance_text(c.best)}",
            )  # fmt: skip
        )
    parts = [table(["item", "value"], rows, "summary-table", text_columns=2)]
    changed = [(k, repr(v), repr(d)) for k, (v, d) in c.changed_settings.items()]
    parts.append("<h3>Settings that differ from the defaults</h3>")
    parts.append(
        table(["setting", "this run", "default"], changed, "settings", text_columns=3)
        if changed
        else '<p class="note">none</p>'
    )
    for warning in c.info.get("warnings") or []:
        parts.append(f'<p class="warning">{esc(warning)}</p>')
    return "".join(parts)


def _data(c: ReportContents) -> str:
    data = c.info.get("data") or {}
    parts = []
    splits = data.get("splits") or []
    if splits:
        columns = [c.output_word, *(s["name"] for s in splits)]
        rows = [[name, *(s["counts"].get(name, 0) for s in splits)] for name in c.class_names]
        rows.append(["total", *(sum(s["counts"].values()) for s in splits)])
        parts.append(table(columns, rows, "class-counts"))
        parts.append(
            "<ul>"
            + "".join(
                f"<li>{esc(s['name'])}: {esc(s['format'])} <code>{esc(s['origin'])}</code>"
                f"{'; ' + str(s['duplicates']) + ' exact duplicate(s)' if s.get('duplicates') else ''}"  # noqa: E501
                "</li>"
                for s in splits
            )
            + f"<li>content hash of the file list (SHA-256): <code>"
            f"{esc(data.get('content_sha256', 'n/a'))}</code></li></ul>"
        )
    elif c.info:
        parts.append(
            f"<p>{number(c.info.get('train_images'))} training and "
            f"{number(c.info.get('valid_images'))} validation images.</p>"
        )
    leakage = data.get("leakage") or []
    parts.append('<h3 id="leakage">Leakage between splits</h3>')
    if leakage:
        for item in leakage:
            examples = "; ".join(f"{b} = {a}" for a, b in item.get("examples", []))
            parts.append(
                f'<p class="warning">WARNING: {item["images"]} image(s) of {esc(item["into"])} '
                f"are exact copies of {esc(item['from'])} images, e.g. {esc(examples)}</p>"
            )
    else:
        found = "none found" if data else "not recorded (run from an older cnnhub)"
        parts.append(f'<p class="note">{found}</p>')
    parts.append('<h3 id="skipped">Skipped files</h3>')
    if c.skipped is not None and len(c.skipped):
        parts.append(frame_table(c.skipped, "skipped-files", text_columns=2))
    else:
        parts.append('<p class="note">none</p>')
    return "".join(parts)


def _curves(c: ReportContents) -> str | None:
    if c.log is None or c.log.empty:
        return None
    epoch = None if c.best is None else int(c.best["epoch"])
    return picture(figures.curves(c.log, epoch), "loss and accuracy by epoch")


def _epochs(c: ReportContents) -> str | None:
    epochs = c.epoch_table()
    if epochs is None:
        return None
    chosen = None if c.best is None else [e == c.best["epoch"] for e in epochs["epoch"]]
    where = " at threshold 0" if c.report is not None and "threshold" in c.report else ""
    note = (
        f"Training log, and the validation report's scores{where} (report_*); the chosen "
        "epoch is highlighted."
    )
    return f'<p class="note">{note}</p>' + frame_table(epochs, "epochs-table", 0, chosen)


def _thresholds(c: ReportContents) -> str | None:
    overall = c.chosen.get("thresholds")
    if overall is None:
        return None
    chosen = [
        c.threshold is not None and math.isclose(t, c.threshold, abs_tol=1e-9)
        for t in overall["threshold"]
    ]
    note = "Chosen weights on validation"
    if c.threshold is not None:
        note += f"; deploy threshold {c.threshold:g} highlighted"
    return (
        picture(figures.thresholds(overall, c.threshold), "metrics by threshold")
        + f'<p class="note">{note}.</p>'
        + frame_table(overall, "thresholds-table", 0, chosen)
    )


def _confusion(c: ReportContents) -> str | None:
    confusion = c.chosen.get("confusion")
    if confusion is None:
        return None
    counts = confusion.iloc[:, 1:].to_numpy(dtype=np.float64)
    top = counts.max() if counts.size and counts.max() > 0 else 1.0
    head = "".join(f'<th class="text">{esc(name)}</th>' for name in confusion.columns[1:])
    rows = []
    for name, values in zip(confusion.iloc[:, 0], counts):
        cells = "".join(
            f'<td style="background:rgba(31,119,180,{0.8 * v / top:.2f})">{int(v)}</td>'
            for v in values
        )
        rows.append(f'<tr><th class="text">{esc(name)}</th>{cells}</tr>')
    return (
        '<p class="note">Rows: actual class; columns: predicted class (argmax, threshold 0).</p>'
        f'<table id="confusion-table"><tr><th class="text">actual \\ predicted</th>{head}</tr>'
        + "".join(rows)
        + "</table>"
    )


def _classes(c: ReportContents) -> str | None:
    per_class = c.per_class_at_threshold()
    if per_class is None:
        return None
    columns = ["class", "precision", "recall", "f1", "support", "tp", "fp", "fn"]
    return frame_table(per_class[columns], "classes-table")


def _calibration(c: ReportContents) -> str | None:
    predictions = c.uncalibrated if c.uncalibrated is not None else c.chosen.get("predictions")
    if predictions is None:
        return None
    from cnnhub.evaluation.writer import predictions_arrays  # lazy: scikit-learn

    labels, proba = predictions_arrays(predictions, c.class_names)
    calibrated = None
    if c.calibration is not None and "predictions" in c.chosen:
        _, calibrated = predictions_arrays(c.chosen["predictions"], c.class_names)
    from cnnhub.evaluation.calibration import expected_calibration_error

    rows = [("expected calibration error (15 bins)", expected_calibration_error(labels, proba))]
    if c.calibration is not None:
        rows = [
            ("method", c.calibration.get("method")),
            ("temperature", c.calibration.get("temperature")),
            ("ECE before", c.calibration.get("ece_before")),
            ("ECE after", c.calibration.get("ece_after")),
            ("log loss before", c.calibration.get("log_loss_before")),
            ("log loss after", c.calibration.get("log_loss_after")),
            ("deploy threshold before calibration", c.calibration.get("threshold_before")),
        ]
    return table(["figure", "value"], rows, "calibration-table") + picture(
        figures.reliability(labels, proba, calibrated), "reliability diagram"
    )


def gallery(c: ReportContents, rows: pd.DataFrame, caption) -> str:
    """Thumbnails of the images of ``rows`` (``image_path``), each with ``caption(row)``
    (HTML, already escaped)."""
    items = []
    for row in rows.itertuples(index=False):
        path = image_file(c.run, row.image_path)
        uri = figures.thumbnail(path) if path is not None else None
        shown = (
            f'<img src="{uri}" alt="{esc(row.image_path)}">'
            if uri
            else '<p class="note">(image not readable here)</p>'
        )
        items.append(
            f"<figure>{shown}<figcaption>{esc(row.image_path)}<br>{caption(row)}</figcaption>"
            "</figure>"
        )
    return f'<div class="gallery">{"".join(items)}</div>'


def _errors(c: ReportContents) -> str | None:
    if "predictions" not in c.chosen or "correct" not in c.chosen["predictions"]:
        return None
    wrong = c.confident_errors()
    if wrong.empty:
        return '<p class="note">No validation image is misclassified.</p>'
    return gallery(
        c,
        wrong,
        lambda row: (
            f"actual <b>{esc(row.actual)}</b>, predicted <b>{esc(row.predicted)}</b> "
            f"({number(row.confidence)})"
        ),
    )


def _regression_targets(predictions: pd.DataFrame) -> list[str]:
    """The ``actual``/``predicted``/``error`` column suffixes of a regression ``<stem>.csv``
    (``""`` for one target, ``_<name>`` for several)."""
    return [c[len("actual") :] for c in predictions.columns if c.startswith("actual")]


def _target_name(c: ReportContents, suffix: str) -> str:
    """The target a column suffix names (one target: no suffix, the run's one name)."""
    return suffix[1:] if suffix else c.class_names[0]


def _largest_errors(c: ReportContents) -> str | None:
    predictions = c.chosen.get("predictions")
    if predictions is None or "image_path" not in predictions:
        return None
    targets = _regression_targets(predictions)
    size = sum(predictions[f"error{t}"].abs() for t in targets)
    worst = predictions.assign(_size=size).sort_values("_size", ascending=False).head(12)

    def caption(row) -> str:
        values = row._asdict()
        return "<br>".join(
            f"{esc(_target_name(c, t))}: actual {number(values[f'actual{t}'])}, "
            f"predicted {number(values[f'predicted{t}'])}"
            for t in targets
        )

    return gallery(c, worst.drop(columns="_size"), caption)


def _predicted_vs_actual(c: ReportContents) -> str | None:
    predictions = c.chosen.get("predictions")
    if predictions is None:
        return None
    targets = _regression_targets(predictions)
    rows = []
    for t in targets:
        actual = predictions[f"actual{t}"].to_numpy(np.float64)
        error = predictions[f"error{t}"].to_numpy(np.float64)
        rows.append(
            [_target_name(c, t), float(np.abs(error).mean()),
             float(np.sqrt((error**2).mean())), float(actual.mean()), len(actual)]
        )  # fmt: skip
    return picture(
        figures.predicted_vs_actual(predictions, {t: _target_name(c, t) for t in targets}),
        "predicted against actual",
    ) + table(["target", "mae", "rmse", "mean actual", "images"], rows, "targets-table")


def _class_thresholds(c: ReportContents) -> str | None:
    chosen = c.chosen.get("class_thresholds")
    if chosen is None:
        return None
    return (
        '<p class="note">Each class at the threshold chosen for it on validation '
        "(best_weights.json's class_thresholds).</p>" + frame_table(chosen, "classes-table")
    )


def scalar_columns(records: Sequence[dict[str, Any]], first: Sequence[str]) -> list[str]:
    """``first`` (those present), then every other key with a plain value (text, number,
    missing) in first-seen order: the columns of a table of JSON records of any task."""
    seen: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if value is None or isinstance(value, (str, int, float)):
                seen.setdefault(key, None)
    return [k for k in first if k in seen] + [k for k in seen if k not in first]


def _heldout(c: ReportContents) -> str | None:
    if not c.evaluations:
        return None
    summaries = [s for _, s in c.evaluations]
    columns = scalar_columns(summaries, ["source", "role", "images", "weights"])
    rows = [[name, *(s.get(k) for k in columns)] for name, s in c.evaluations]
    return table(["folder", *columns], rows, "heldout-table", text_columns=3)


def _exports(c: ReportContents) -> str | None:
    if not c.exports:
        return None
    records = []
    for export in c.exports:
        meta, check = export["metadata"], export["check"] or {}
        verification = meta.get("verification") or {}
        record = {
            "format": meta.get("format", export["folder"]),
            "weights": meta.get("weights"),
            "check": "passed" if check.get("passed", True) else "failed",
            "threshold": meta.get("threshold"),
            "size_bytes": meta.get("size_bytes"),
            "max_abs_diff": verification.get("max_abs_diff"),
        }
        skip = {"format", "weights", "source", "runtime", "limit", "passed"}
        record |= {k: v for k, v in check.items() if k not in skip}
        records.append(record)
    columns = scalar_columns(records, ["format", "weights", "check"])
    parts = [
        '<p class="note">Each export compared with the Keras model on the validation images; '
        "decisions at the deploy threshold (export/&lt;format&gt;/check.json).</p>",
        table(columns, [[r.get(k) for k in columns] for r in records], "exports-table", 3),
    ]
    for export in c.exports:
        per_class = (export["check"] or {}).get("per_class")
        if per_class:
            frame = pd.DataFrame(per_class)
            parts.append(f"<h3>{esc(export['folder'])}: decision changes per class</h3>")
            parts.append(frame_table(frame, f"export-{esc(export['folder'])}-classes"))
    return "".join(parts)


BUILDERS = {
    "summary": _summary,
    "data": _data,
    "curves": _curves,
    "epochs": _epochs,
    "thresholds": _thresholds,
    "confusion": _confusion,
    "classes": _classes,
    "calibration": _calibration,
    "errors": _errors,
    "heldout": _heldout,
    "exports": _exports,
}


TASK_BUILDERS = {
    "regression": {"predictions": _predicted_vs_actual, "errors": _largest_errors},
    "multi_label": {"classes": _class_thresholds},
}


def render(contents: ReportContents) -> str:
    """The whole page."""
    sections = []
    builders = BUILDERS | TASK_BUILDERS.get(contents.task, {})
    for key, heading in sections_of(contents.task).items():
        body = builders[key](contents)
        if body is None:
            body = '<p class="note">Not in this run folder.</p>'
        sections.append(f'<section id="{key}"><h2>{esc(heading)}</h2>{body}</section>')
    title = f"cnnhub report: {contents.run.name}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>"
        + "".join(sections)
        + "</body></html>\n"
    )
