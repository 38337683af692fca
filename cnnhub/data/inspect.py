"""Look at a dataset before training on it: counts, imbalance, sizes, broken files, duplicates.

:func:`inspect_sources` builds the full report (the ``cnnhub inspect`` command prints it); training
runs the same checks on the splits it is about to use and prints the short form (leakage between
splits is a warning there, never an error). The decode check and the hashes it uses, and
their caches, are :mod:`cnnhub.data.scan`'s.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.data.class_weights import balanced_weights
from cnnhub.data.scan import content_hashes, scan_source
from cnnhub.display import printable

# ---------------------------------------------------------------- the report


@dataclass
class SplitReport:
    """What inspection found in one split."""

    name: str
    origin: str
    data_format: str
    counts: np.ndarray
    keys: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    modes: Counter = field(default_factory=Counter)
    hashes: list[str | None] = field(default_factory=list)
    targets: np.ndarray | None = None  # the task's per-sample targets (DataSource.targets)

    @property
    def total(self) -> int:
        """Images in the split (with label sets, ``counts`` counts labels, not images)."""
        return len(self.keys)

    def duplicate_groups(self) -> list[list[str]]:
        """Keys of samples sharing content, groups of two or more, in first-seen order."""
        groups: dict[str, list[str]] = {}
        for key, digest in zip(self.keys, self.hashes):
            if digest is not None:
                groups.setdefault(digest, []).append(key)
        return [keys for keys in groups.values() if len(keys) > 1]

    def imbalance(self) -> float:
        """Largest class count / smallest (inf when a class is empty)."""
        if not len(self.counts) or self.counts.max() == 0:
            return float("nan")
        low = self.counts.min()
        return float("inf") if low == 0 else float(self.counts.max() / low)


@dataclass
class Inspection:
    """The report of :func:`inspect_sources`."""

    class_names: list[str]
    splits: list[SplitReport]
    task: str = "single_label"  # what the labels are: the task describes them (cnnhub.tasks)

    def cross_duplicates(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """``(split a, split b, [(key in a, key in b), ...])`` for samples in both splits."""
        out = []
        for i, a in enumerate(self.splits):
            first: dict[str, str] = {}
            for key, digest in zip(a.keys, a.hashes):
                if digest is not None:
                    first.setdefault(digest, key)
            for b in self.splits[i + 1 :]:
                pairs = [(first[d], key) for key, d in zip(b.keys, b.hashes) if d in first]
                out.append((a.name, b.name, pairs))
        return out

    def suggested_weights(self) -> dict[str, float]:
        """Balanced class weights of the first (training) split: n / (classes x n_class)."""

        weights = balanced_weights(self.splits[0].counts)
        return {name: round(float(w), 4) for name, w in zip(self.class_names, weights)}

    def summary(self) -> dict[str, Any]:
        """What a run records of its data (``run_info.json``'s ``data``): per split its origin,
        layout and images per class, the leakage found between splits, and a SHA-256 of the
        sorted (split, file path relative to the split's folder, content hash) list: the same
        for the same files wherever the folders are, different when a file, its name (so its
        class folder) or a split changes."""
        digest = hashlib.sha256()
        for line in sorted(
            f"{s.name}\t{_relative(key, s.origin)}\t{h}"
            for s in self.splits
            for key, h in zip(s.keys, s.hashes)
        ):
            digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
        return {
            "splits": [
                {
                    "name": s.name,
                    "origin": str(s.origin),
                    "format": s.data_format,
                    "counts": {c: int(n) for c, n in zip(self.class_names, s.counts)},
                    "duplicates": sum(len(g) - 1 for g in s.duplicate_groups()),
                }
                for s in self.splits
            ],
            "leakage": [
                {"from": a, "into": b, "images": len(pairs), "examples": pairs[:5]}
                for a, b, pairs in self.cross_duplicates()
                if pairs
            ],
            "content_sha256": digest.hexdigest(),
        }

    # ------------------------------------------------------------ text

    def counts_table(self) -> list[str]:
        """Images per class (rows) and split (columns); names escaped for the terminal."""
        names = [printable(s.name) for s in self.splits]
        classes = [printable(c) for c in self.class_names]
        width = max(len("class"), *(len(c) for c in classes))
        cols = [max(7, len(n)) for n in names]
        head = "  ".join(f"{n:>{w}}" for n, w in zip(names, cols))
        lines = [f"  {'class':<{width}}  {head}"]
        for c, name in enumerate(classes):
            cells = "  ".join(f"{int(s.counts[c]):>{w}}" for s, w in zip(self.splits, cols))
            lines.append(f"  {name:<{width}}  {cells}")
        totals = "  ".join(f"{s.total:>{w}}" for s, w in zip(self.splits, cols))
        lines.append(f"  {'total':<{width}}  {totals}")
        return lines

    def format(self, detail: bool = True, show: int = 20) -> str:
        """The report as text; ``detail=False`` is the short form printed by training.

        Every line is escaped (:func:`cnnhub.display.printable`): class names, file names and
        decoder messages come from the data.
        """
        from cnnhub.tasks import get_task  # lazy: the task's modules load on demand

        task = get_task(self.task)
        lines = [
            f"Data: {task.count_outputs(len(self.class_names))}; "
            + "; ".join(f"{s.name}: {s.data_format} `{s.origin}`" for s in self.splits)
        ]
        lines += task.label_lines(self)
        for s in self.splits:
            lines.append(f"  {s.name} images: {_size_line(s)}")
        for s in self.splits:
            if s.skipped:
                if detail:
                    lines.append(f"  {s.name}: {len(s.skipped)} file(s) cannot be decoded:")
                    lines += [f"    {p}: {r}" for p, r in s.skipped[:show]]
                    lines += _more(len(s.skipped), show)
                else:
                    lines.append(
                        f"  {s.name}: skipped {len(s.skipped)} unreadable file(s) "
                        "(listed with the reason in skipped_files.csv)"
                    )
        for s in self.splits:
            groups = s.duplicate_groups()
            if groups:
                extra = sum(len(g) - 1 for g in groups)
                lines.append(
                    f"  {s.name}: {extra} exact duplicate(s) in {len(groups)} group(s)"
                    + (":" if detail else f", e.g. {' = '.join(groups[0][:3])}")
                )
                if detail:
                    lines += [f"    {' = '.join(g)}" for g in groups[:show]]
                    lines += _more(len(groups), show)
        if detail and not any(s.skipped for s in self.splits):
            lines.append("  files that cannot be decoded: none")
        if detail and not any(s.duplicate_groups() for s in self.splits):
            lines.append("  exact duplicates within a split: none")
        cross = self.cross_duplicates()
        if detail and len(self.splits) > 1 and not any(pairs for _, _, pairs in cross):
            lines.append("  exact duplicates across splits: none")
        for a, b, pairs in cross:
            if pairs:
                lines.append(
                    f"  WARNING: {len(pairs)} image(s) of {b} are exact copies of {a} images "
                    f"(leakage between splits)"
                    + (":" if detail else f", e.g. {pairs[0][1]} = {pairs[0][0]}")
                )
                if detail:
                    lines += [f"    {kb} = {ka}" for ka, kb in pairs[:show]]
                    lines += _more(len(pairs), show)
        lines += task.label_advice(self, detail)
        return "\n".join(printable(line) for line in lines)

    def class_lines(self) -> list[str]:
        """The counts table and imbalance line (single_label's :meth:`format` lines)."""
        return [
            *self.counts_table(),
            "  imbalance (largest / smallest class): "
            + ", ".join(f"{s.name} {_ratio(s.imbalance())}" for s in self.splits),
        ]

    def weights_advice(self, detail: bool) -> list[str]:
        """The suggested class weights line, when ``detail`` or the training split is
        imbalanced (over 1.5)."""
        if detail or self.splits[0].imbalance() > 1.5:
            weights = json.dumps(self.suggested_weights(), ensure_ascii=False)
            return [f"  suggested class weights (balanced): --class_weight '{weights}'"]
        return []


def _relative(key: str, origin: str) -> str:
    """``key`` relative to ``origin`` when it lies inside it (as '/'-separated text)."""
    try:
        return Path(key).relative_to(origin).as_posix()
    except ValueError:
        return str(key)


def _more(total: int, shown: int) -> list[str]:
    return [f"    ... and {total - shown} more"] if total > shown else []


def _ratio(value: float) -> str:
    if np.isnan(value):
        return "n/a"
    return "inf (a class is empty)" if np.isinf(value) else f"{value:.2f}"


def _size_line(s: SplitReport) -> str:
    if not s.heights:
        return "none readable"
    h, w = np.asarray(s.heights), np.asarray(s.widths)
    sizes = (
        f"height min {h.min()} / median {np.median(h):g} / max {h.max()}, "
        f"width min {w.min()} / median {np.median(w):g} / max {w.max()}"
    )
    modes = ", ".join(f"{m} {n}" for m, n in s.modes.most_common())
    return f"{sizes}; modes {modes}"


def split_report(name: str, source, scan=None, skipped=(), use_cache: bool = True) -> SplitReport:
    """Inspect one :class:`~cnnhub.data.sources.DataSource` (already cleaned of unreadable files).

    ``scan`` (a :class:`cnnhub.data.scan.ScanResult` covering the source's files) gives sizes and
    modes; ``skipped`` lists the files left out.
    """
    report = SplitReport(
        name=name,
        origin=source.origin,
        data_format=source.data_format,
        counts=source.class_counts(),
        keys=list(source.keys),
        skipped=list(skipped),
        hashes=content_hashes(source, use_cache),
        targets=source.targets,
    )
    if source.in_memory:
        n, height, width, channels = source.images.shape
        report.heights, report.widths = [height] * n, [width] * n
        report.modes = Counter({"L" if channels == 1 else "RGB": n})
    elif scan is not None:
        sizes = [scan.sizes[p] for p in source.paths if p in scan.sizes]
        report.heights = [h for h, _ in sizes]
        report.widths = [w for _, w in sizes]
        report.modes = Counter(scan.modes[p] for p in source.paths if p in scan.modes)
    return report


def inspect_sources(
    sources: dict[str, Any], use_cache: bool = True, channels: int = 3, task: str = "single_label"
) -> Inspection:
    """Scan and inspect sources as read (unreadable files included): the ``inspect`` command.
    ``task`` (TASK) says what the sources' labels are."""
    reports = []
    class_names = None
    for name, source in sources.items():
        if class_names is None:
            class_names = source.class_names
        checked = scan_source(source, use_cache, channels)
        reports.append(split_report(name, checked, checked.scan, checked.skipped, use_cache))
    return Inspection(list(class_names or []), reports, task)


def sources_first(sources: dict[str, Any]):
    return next(iter(sources.values()))
