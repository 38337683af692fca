"""Look at a dataset before training on it: counts, imbalance, sizes, broken files, duplicates.

``python -m cnnhub inspect DATA [--valid DATA] [--test DATA]`` prints the full report; training
runs the same checks on the splits it is about to use and prints the short form (leakage between
splits is a warning there, never an error).

Duplicates are exact: the SHA-1 of a file's bytes, or of the pixel array (with its shape) for
in-memory sources (CSV pixels, IDX, CIFAR, .npz). Two files with the same pixels but different
encodings are not found.

Caches: the decode check (:func:`cnnhub.images.scan_images`) and the file hashes are remembered
per dataset in ``$CNNHUB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/cnnhub``, i.e.
``~/.cache/cnnhub``), under ``scans/`` and ``hashes/``, one JSON file per dataset path named by
the SHA-1 of its absolute path. Entries are keyed by absolute file path, size and mtime, so a
changed file is checked again. Delete the folder to forget everything; a cache folder that
cannot be written only costs a rescan.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any

import numpy as np

from cnnhub.atomic import write_json
from cnnhub.display import printable

CACHE_ENV = "CNNHUB_CACHE_DIR"
_HASH_CACHE_VERSION = 1


# ---------------------------------------------------------------- caches


def cache_root() -> Path:
    """``$CNNHUB_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnhub``, else ``~/.cache/cnnhub``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cnnhub"


def cache_file(kind: str, origin: str | os.PathLike) -> Path | None:
    """The cache file of ``kind`` (``scans`` or ``hashes``) for the dataset at ``origin``.

    None when the cache folder cannot be created or written (caching is then skipped).
    """
    key = hashlib.sha1(os.fsencode(os.path.abspath(os.fspath(origin)))).hexdigest()[:20]
    folder = cache_root() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return folder / f"{key}.json"


def scan_source_files(paths: Sequence[str], origin: str, use_cache: bool, channels: int = 3):
    """:func:`cnnhub.images.scan_images` with the per-dataset cache (see the module docstring)."""
    from cnnhub.images import scan_images

    target = cache_file("scans", origin) if use_cache else None
    try:
        return scan_images(paths, cache_file=target, channels=channels)
    except OSError:  # the cache could not be written after all: scan without it
        return scan_images(paths, channels=channels)


def _sha1_file(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_hash_cache(path: Path | None) -> dict[str, list]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _HASH_CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def file_hashes(
    paths: Sequence[str], cache: Path | None = None, workers: int | None = None
) -> list[str | None]:
    """SHA-1 of each file's bytes (None for a file that cannot be read or is not a regular
    file), cached by size+mtime."""
    entries = _read_hash_cache(cache)
    out: list[str | None] = [None] * len(paths)
    todo: list[tuple[int, str, list[int]]] = []
    for i, path in enumerate(paths):
        try:
            stat = os.stat(path)
        except OSError:
            continue
        if not S_ISREG(stat.st_mode):
            continue  # a FIFO would block the read (scans skip these files anyway)
        key = [stat.st_size, stat.st_mtime_ns]
        cached = entries.get(os.path.abspath(path))
        if isinstance(cached, list) and len(cached) == 3 and cached[:2] == key:
            out[i] = cached[2]
        else:
            todo.append((i, path, key))
    if not todo:
        return out

    def one(path: str) -> str | None:
        try:
            return _sha1_file(path)
        except OSError:
            return None

    n_workers = workers or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool:
        digests = list(pool.map(one, [p for _, p, _ in todo]))
    for (i, path, key), digest in zip(todo, digests):
        out[i] = digest
        if digest is not None:
            entries[os.path.abspath(path)] = [*key, digest]
    if cache is not None:
        try:
            write_json(cache, {"version": _HASH_CACHE_VERSION, "entries": entries})
        except OSError:
            pass  # an unwritable cache only costs hashing again next time
    return out


def content_hashes(source, use_cache: bool = True) -> list[str | None]:
    """One content hash per sample of a :class:`cnnhub.sources.DataSource`."""
    if source.in_memory:
        shape = ",".join(map(str, source.images.shape[1:])).encode()
        return [hashlib.sha1(shape + image.tobytes()).hexdigest() for image in source.images]
    cache = cache_file("hashes", source.origin) if use_cache else None
    return file_hashes(source.paths, cache)


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

    @property
    def total(self) -> int:
        return int(self.counts.sum())

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
        from cnnhub.class_weights import balanced_weights

        weights = balanced_weights(self.splits[0].counts)
        return {name: round(float(w), 4) for name, w in zip(self.class_names, weights)}

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
        lines = [
            f"Data: {len(self.class_names)} classes; "
            + "; ".join(f"{s.name}: {s.data_format} `{s.origin}`" for s in self.splits)
        ]
        lines += self.counts_table()
        lines.append(
            "  imbalance (largest / smallest class): "
            + ", ".join(f"{s.name} {_ratio(s.imbalance())}" for s in self.splits)
        )
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
        if detail or self.splits[0].imbalance() > 1.5:
            weights = json.dumps(self.suggested_weights(), ensure_ascii=False)
            lines.append(f"  suggested class weights (balanced): --class_weight '{weights}'")
        return "\n".join(printable(line) for line in lines)


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
    """Inspect one :class:`~cnnhub.sources.DataSource` (already cleaned of unreadable files).

    ``scan`` (a :class:`cnnhub.images.ScanResult` covering the source's files) gives sizes and
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
    sources: dict[str, Any], use_cache: bool = True, channels: int = 3
) -> Inspection:
    """Scan and inspect sources as read (unreadable files included): the ``inspect`` command."""
    reports = []
    class_names = None
    for name, source in sources.items():
        if class_names is None:
            class_names = source.class_names
        scan, skipped = None, []
        if not source.in_memory:
            scan = scan_source_files(source.paths, source.origin, use_cache, channels)
            skipped = scan.skipped
            source = source.drop_paths([p for p, _ in skipped])
        reports.append(split_report(name, source, scan, skipped, use_cache))
    return Inspection(list(class_names or []), reports)


# ---------------------------------------------------------------- command


def command(argv: list[str]) -> int:
    """``cnnhub inspect DATA [--valid DATA] [--test DATA]``."""
    from cnnhub.cli import OneLineParser
    from cnnhub.sources import DATA_FORMATS

    parser = OneLineParser(
        prog="cnnhub inspect",
        description="Report a dataset before training: images per class and split, imbalance, "
        "image sizes and modes, files that cannot be decoded (with the reason), exact duplicates "
        "within a split and across splits (leakage), and balanced class weights. DATA is a "
        "folder with one sub-folder per class, or a CSV (pixels or path,label), IDX, CIFAR "
        ".bin or .npz file.",
    )
    parser.add_argument(
        "data",
        help="training data (or the only dataset to inspect), or a folder whose subfolders are "
        "the splits (train, valid or validation, test): all of them are inspected",
    )
    parser.add_argument("--valid", default="", help="validation data (any format)")
    parser.add_argument("--test", default="", help="test data (any format)")
    parser.add_argument(
        "--data_format",
        default="auto",
        choices=("auto", *DATA_FORMATS),
        help="layout of every dataset given (default: detected per path)",
    )
    parser.add_argument(
        "--class_names_file", default="", help="class names, one per line (line v = label v)"
    )
    parser.add_argument(
        "--image_shape",
        type=int,
        nargs="*",
        default=[],
        help="height width [channels] of csv_pixels rows / flat npz arrays",
    )
    parser.add_argument(
        "--show", type=int, default=20, help="list at most this many items per finding"
    )
    parser.add_argument(
        "--no_cache", action="store_true", help="ignore and do not write the scan/hash cache"
    )
    args = parser.parse_args(argv)
    from cnnhub.data import DataOptions, read_source

    options = DataOptions(
        data_format=args.data_format,
        class_names_file=args.class_names_file,
        image_shape=tuple(args.image_shape),
    )
    from cnnhub.settings import check_image_shape

    check_image_shape(list(args.image_shape))
    sources = {}
    for name, (role, path) in _datasets(args.data, args.valid, args.test).items():
        reference = sources_first(sources) if sources else None
        sources[name] = read_source(path, role, options, reference=reference)
    report = inspect_sources(sources, use_cache=not args.no_cache)
    print(report.format(detail=True, show=max(args.show, 1)))
    return 0


def _datasets(data: str, valid: str, test: str) -> dict[str, tuple[str, str]]:
    """``{report name: (role, path)}`` of what to inspect, training data first.

    DATA may be a folder of splits (``train/``, ``valid/`` or ``validation/``, ``test/``...):
    then every split found is inspected, named by its folder, with the leakage check across
    them.
    """
    from cnnhub.errors import CnnhubError
    from cnnhub.images import SPLIT_ROLES, split_folders

    splits = split_folders(data) if os.path.isdir(data) else {}
    if splits and (valid or test):
        raise CnnhubError(
            f"`{data}` holds the splits {', '.join(splits)} itself; pass either it alone or "
            f"one split with --valid/--test. Received: data={data!r}, "
            f"valid={valid!r}, test={test!r}"
        )
    if splits:
        return {name: (SPLIT_ROLES[name.lower()], path) for name, path in splits.items()}
    several = bool(valid or test)
    found = {"train" if several else "data": ("train", data)}
    found.update({name: (name, path) for name, path in (("valid", valid), ("test", test)) if path})
    return found


def sources_first(sources: dict[str, Any]):
    return next(iter(sources.values()))
