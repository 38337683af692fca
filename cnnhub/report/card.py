"""``MODEL_CARD.md``: the run's model card, with the usual (Hugging Face style) headings.

Written from the same :class:`~cnnhub.report.contents.ReportContents` as the page. Text from
the data (class names, paths) goes through :func:`md`: HTML-escaped (a Markdown viewer renders
raw HTML) and with Markdown's special characters backslash-escaped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from pandas.api.types import is_numeric_dtype

from cnnhub.evaluation.headline import HEADLINE_FIGURES
from cnnhub.evaluation.reporting import tolerance_text
from cnnhub.report.contents import ReportContents
from cnnhub.report.page import esc

FEW_IMAGES = 20
"""A class with fewer training images than this is named under the limitations."""
LOW_RECALL = 0.5
"""A class whose validation recall at the deploy threshold is below this is named there too."""

USE = {
    "single_label": "class probabilities; a top probability below the deploy threshold means "
    '"uncertain".',
    "multi_label": "one probability per class; a class is predicted when its probability "
    "reaches its own threshold (best_weights.json's class_thresholds).",
    "regression": "the predicted values, in the targets' own units.",
}
"""What a task's model outputs, in the card's *How to use*."""

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md(value: Any) -> str:
    """``value`` as literal Markdown text (one line)."""
    text = " ".join(str(value).split())
    return _MARKDOWN.sub(r"\\\1", esc(text))


def _figure(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.4f}"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def limitations(c: ReportContents) -> list[str]:
    """Limitations noted automatically: small classes, low recall, leakage, calibration."""
    notes = []
    data = c.info.get("data") or {}
    train = next((s for s in data.get("splits", []) if s["name"] == "train"), None)
    if train is not None and c.task != "regression":
        few = [f"{md(n)} ({k})" for n, k in train["counts"].items() if k < FEW_IMAGES]
        if few:
            notes.append(
                f"Classes with fewer than {FEW_IMAGES} training images: {', '.join(few)}; "
                "their scores rest on very few examples."
            )
    per_class = c.per_class_at_threshold()
    if per_class is not None:
        low = per_class[(per_class["support"] > 0) & (per_class["recall"] < LOW_RECALL)]
        if len(low):
            named = ", ".join(f"{md(r['class'])} ({r['recall']:.2f})" for _, r in low.iterrows())
            notes.append(f"Validation recall below {LOW_RECALL} at the deploy threshold: {named}.")
    for item in data.get("leakage") or []:
        notes.append(
            f"Leakage: {item['images']} image(s) of {md(item['into'])} are exact copies of "
            f"{md(item['from'])} images, so its scores are optimistic."
        )
    if c.info.get("skipped_files"):
        notes.append(f"{c.info['skipped_files']} unreadable file(s) were left out of training.")
    if not notes:
        notes.append("None found automatically (small classes, low recall, leakage).")
    notes.append(
        "Scores are measured on the validation data, which also chose the weights"
        + (" and the threshold" if c.task != "regression" else "")
        + ": expect held-out results to be somewhat lower."
    )
    return notes


def render(c: ReportContents) -> str:
    """The model card as Markdown."""
    config = c.config
    lines = [
        "---",
        "library_name: keras",
        *(["pipeline_tag: image-classification"] if c.task != "regression" else []),
        "tags:",
        "- cnnhub",
        f"- {md(config.get('MODEL_NAME'))}",
        "---",
        "",
        f"# Model card for {md(c.run.name)}",
        "",
        "## Model details",
        "",
        f"- **Model / backbone:** {md(config.get('MODEL_NAME'))} "
        f"(initial weights: {md(config.get('WEIGHTS'))}, training type "
        f"{md(config.get('TRAINING_TYPE'))})",
        f"- **Task:** {md(c.task)}; {len(c.class_names)} "
        + ("targets" if c.task == "regression" else "classes")
        + ": "
        + ", ".join(md(n) for n in c.class_names),
        f"- **Input:** {config.get('IMG_HEIGHT')} x {config.get('IMG_WIDTH')} pixels, raw 0-255 "
        "values (preprocessing is inside the model)",
        f"- **Parameters:** {c.info.get('params', 'n/a')}",
        f"- **Trained:** {md(c.info.get('started', 'n/a'))} with cnnhub commit "
        f"{md((c.info.get('environment') or {}).get('cnnhub_commit') or 'n/a')}",
        "- **Files:** `best_model.keras` (the chosen weights"
        + (", calibrated" if c.calibration else "")
        + "); `report.html` (the full report)",
        "",
        "## Intended uses & limitations",
        "",
        "### Intended use",
        "",
        "_To be written by the model's owner: what the model is for, who uses it, and what it "
        "must not be used for._",
        "",
        "### Limitations (noted automatically)",
        "",
        *(f"- {note}" for note in limitations(c)),
        "",
        "## Training data",
        "",
    ]
    lines += _training_data(c)
    lines += ["", "## Evaluation results", ""]
    lines += _evaluation(c)
    lines += ["", "## How to use", ""]
    lines += [
        "Every cnnhub model takes raw 0-255 pixels and returns "
        + USE.get(c.task, USE["single_label"]),
        "",
        "```python",
        "import keras",
        'model = keras.saving.load_model("best_model.keras")',
        "```",
        "",
        f"Or `python -m cnnhub predict {md(c.run.name)} IMAGE`; exports: `python -m cnnhub "
        f"export {md(c.run.name)} --format onnx` (see the report for those made so far).",
        "",
    ]
    return "\n".join(lines)


def _training_data(c: ReportContents) -> list[str]:
    config, data = c.config, c.info.get("data") or {}
    lines = [
        f"- **Training data:** `{md(config.get('DATA_DIR_TRAIN', ''))}`",
        f"- **Validation data:** `{md(config.get('DATA_DIR_VALID', '') or 'split from training')}`"
        + (f" (VAL_SPLIT {config['VAL_SPLIT']})" if config.get("VAL_SPLIT") else ""),
        f"- **Split seed:** {config.get('SEED')}",
        f"- **Content hash of the file list (SHA-256):** `{data.get('content_sha256', 'n/a')}`",
    ]
    splits = data.get("splits") or []
    if splits:
        lines += ["", _row(c.output_word, *(md(s["name"]) for s in splits))]
        lines.append(_row(*["---"] * (len(splits) + 1)))
        for name in c.class_names:
            lines.append(_row(md(name), *(s["counts"].get(name, 0) for s in splits)))
    return lines


def _task_evaluation(c: ReportContents) -> list[str]:
    """The evaluation of a run without one deploy threshold (regression, multi-label): the
    chosen weights' validation row of the analysis report, and each held-out summary."""
    lines = [
        f"- **Chosen weights:** {md(c.best['weights'])} (epoch {c.best['epoch']}), by the rule "
        f"{md(c.best.get('rule'))} on validation{tolerance_text(c.best)}"
    ]
    if c.best.get("class_thresholds"):
        chosen = ", ".join(f"{md(k)} {v:g}" for k, v in c.best["class_thresholds"].items())
        lines.append(f"- **Class thresholds** (chosen on validation): {chosen}")
    if c.report is None:
        return lines
    rows = c.report[c.report["weights_name"] == c.best["weights"]]
    figures = [
        k for k in rows.columns
        if k not in ("weights_name", "epoch", "threshold") and is_numeric_dtype(rows[k])
    ]  # fmt: skip
    lines += ["", _row("data", "images", *figures), _row(*["---"] * (len(figures) + 2))]
    if len(rows):
        row = rows.iloc[0]
        images = c.info.get("valid_images", "n/a")
        lines.append(_row("validation", images, *(_figure(row[k]) for k in figures)))
    return lines + _evaluation_rows(c, figures)


def _evaluation_rows(c: ReportContents, figures: Sequence[str]) -> list[str]:
    """One table row per evaluation of the run: its role, data, images and ``figures``."""
    return [
        _row(
            f"{md(summary.get('role', 'held-out'))}: `{md(summary.get('source', name))}`",
            summary.get("images", "n/a"),
            *(_figure(summary.get(k)) for k in figures),
        )
        for name, summary in c.evaluations
    ]


def _evaluation(c: ReportContents) -> list[str]:
    if c.best is None:
        return ["Not evaluated yet (train with post-evaluation, or run `cnnhub evaluate`)."]
    if c.threshold is None:
        return _task_evaluation(c)
    rule = c.best.get("rule")
    if rule == "coverage_at_precision":
        rule = f"{rule} (precision target {c.config.get('BEST_MIN_PRECISION')})"
    lines = [
        f"- **Chosen weights:** {md(c.best['weights'])} (epoch {c.best['epoch']})"
        f"{tolerance_text(c.best)}",
        f"- **Deploy threshold:** {c.threshold:g}, chosen on validation by the rule "
        f"{md(rule)}" + (" on calibrated probabilities" if c.calibration else ""),
    ]
    calibration = c.calibration
    if calibration:
        lines.append(
            f"- **Calibration:** temperature {calibration['temperature']:.4f}; expected "
            f"calibration error (15 bins) {calibration['ece_before']:.4f} before, "
            f"{calibration['ece_after']:.4f} after"
        )
    else:
        ece = None
        if c.report is not None and "ece" in c.report:
            rows = c.report[c.report["weights_name"] == c.best["weights"]]
            ece = rows["ece"].iloc[0] if len(rows) else None
        lines.append(f"- **Expected calibration error (15 bins, validation):** {_figure(ece)}")
    lines += ["", _row("data", "images", *HEADLINE_FIGURES), _row(*["---"] * 8)]
    figures = c.validation_figures()
    if figures is not None:
        images = c.info.get("valid_images", "n/a")
        lines.append(_row("validation", images, *(_figure(figures[f]) for f in HEADLINE_FIGURES)))
    lines += _evaluation_rows(c, HEADLINE_FIGURES)
    lines += ["", "Figures at threshold 0 (@0: every image gets its top class) and at the deploy "
              "threshold (@deploy: images below it abstain, which counts as a miss)."]  # fmt: skip
    return lines
