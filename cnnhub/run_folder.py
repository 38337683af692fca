"""The run folder: ``<save_location>/model_repository/<run name>/``, its file names, and reading it.

Every command reads a run folder through :class:`RunFolder` (the file names) and
:func:`open_run` (the validated contents): a file that is missing where it must exist, or that
cannot be parsed, raises one :class:`~cnnhub.errors.CnnhubError` that names the damaged file,
before the command writes anything. See the README's "Run folder" section for what each file
holds, and :mod:`cnnhub.run_lock` for the one-writer lock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub import run_hooks, run_lock, settings
from cnnhub.data.images import within
from cnnhub.data.pipeline import decode_file
from cnnhub.data.sets import input_channels
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.safe_csv import read_csv_safe
from cnnhub.weights import WEIGHTS_FILE_SUFFIXES, file_variables

REPOSITORY = "model_repository"
RUN_CONFIG = "run_config.json"
RUN_INFO = "run_info.json"
CLASS_MAPPING = "index_class_mapping.json"
BEST_WEIGHTS = "best_weights.json"
ANALYSIS_REPORT = "analysis_report.csv"
TRAINING_LOG = "training.log"
MODEL_LOGS = "model_logs"
FINAL_MODEL = "final_model.keras"
BEST_MODEL = "best_model.keras"
CHECKPOINT = "checkpoint"
EVALUATIONS = "evaluations"
EXPORT = "export"
EXPORT_METADATA = "metadata.json"
EXPORT_CHECK = "check.json"
REPORT_HTML = "report.html"
MODEL_CARD = "MODEL_CARD.md"
ANALYSIS_METRICS_PNG = "analysis_metrics.png"
SKIPPED_FILES = "skipped_files.csv"
SPLIT_CSV = "split.csv"
SUMMARY = "summary.json"
"""An evaluation folder's (``evaluations/<name>/``) summary of its scores."""
EXPLAIN = "explain"
"""Where explain's commands (errors, gradcam, featuremaps) write without ``--out``."""
WEIGHTS_SUFFIX = ".weights.h5"
LOG_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
"""The columns of ``training.log``, one row per completed epoch."""

_EPOCH_FILE = re.compile(r"^weights-(\d+)-.*\.weights\.h5$")
_HINT = "Pass a run folder made by `cnnhub train` (<save_loc>/model_repository/<run name>)."


def weights_stem(path: str | os.PathLike) -> str:
    """``weights-003-0.8123.weights.h5`` -> ``weights-003-0.8123``; ``best_model.keras`` ->
    ``best_model``: the stem of the report files of a weights file."""
    name = Path(path).name
    for suffix in WEIGHTS_FILE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def epoch_of(path: str | os.PathLike) -> int | None:
    """The epoch of a per-epoch weights file name (``weights-003-0.8123.weights.h5`` -> 3)."""
    match = _EPOCH_FILE.match(Path(path).name)
    return int(match.group(1)) if match else None


@dataclass
class TrainingState:
    """The contents of ``checkpoint/state.json`` (see :mod:`cnnhub.resume`)."""

    epoch: int = 0  # completed epochs
    phase: int = 0
    weights: str = ""
    callbacks: dict[str, dict] = field(default_factory=dict)
    finished: bool = False  # training stopped early
    finalized: bool | None = None  # the finishing steps ran (None: a run from before the key)


def _inside(name: str, folder: str = "path") -> property:
    """A read-only Path property of RunFolder: ``name`` inside its ``folder`` attribute."""
    return property(lambda self: getattr(self, folder) / name, doc=f"{folder}/{name}")


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run's files, and validated reads of them.

    Each ``read_*`` raises CnnhubError naming the damaged file, never a parser's traceback.
    """

    path: Path
    model_name: str = ""
    task: str = "single_label"  # the run's TASK: which columns its logs and reports have

    # ------------------------------------------------------------------ file names
    model_logs = _inside(MODEL_LOGS)
    tensor_logs = _inside("tensor_logs")
    training_log = _inside(TRAINING_LOG)
    class_mapping = _inside(CLASS_MAPPING)
    run_config = _inside(RUN_CONFIG)
    run_info = _inside(RUN_INFO)
    final_model = _inside(FINAL_MODEL)
    best_model = _inside(BEST_MODEL)
    best_weights = _inside(BEST_WEIGHTS)
    analysis_report = _inside(ANALYSIS_REPORT)
    report_html = _inside(REPORT_HTML)
    model_card = _inside(MODEL_CARD)
    split_csv = _inside(SPLIT_CSV)
    skipped_files = _inside(SKIPPED_FILES)
    evaluations = _inside(EVALUATIONS)
    explain = _inside(EXPLAIN)
    analysis_metrics_png = _inside(ANALYSIS_METRICS_PNG)
    checkpoint = _inside(CHECKPOINT)
    state_file = _inside("state.json", folder="checkpoint")
    optimizer_file = _inside("optimizer.npz", folder="checkpoint")

    @property
    def stats_png(self) -> Path:
        return self.path / f"{self.model_name}_stats.png"

    # ------------------------------------------------------------------ validated reads
    def damaged(self, file: Path, problem: str) -> CnnhubError:
        """The error for a damaged or missing file of this run."""
        problem = " ".join(str(problem).split())
        return CnnhubError(
            f"Run folder {self.path} is damaged: {file.relative_to(self.path).as_posix()} "
            f"{problem}. Restore the file or train the run again. Received: run={str(self.path)!r}"
        )

    def _json(self, file: Path, kind: type = dict) -> Any:
        try:
            with open(file, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise self.damaged(file, "is missing") from None
        except (OSError, ValueError) as exc:
            raise self.damaged(file, f"cannot be read ({exc})") from None
        if not isinstance(data, kind):
            raise self.damaged(file, f"does not hold a JSON {kind.__name__}")
        return data

    def read_config(self) -> dict[str, Any]:
        """``run_config.json``, checked as a configuration (missing keys get today's defaults)."""

        config = self._json(self.run_config)
        try:
            settings.validate(config)
        except CnnhubError as exc:
            raise self.damaged(self.run_config, f"is not a valid configuration ({exc})") from None
        return config

    def read_class_names(self) -> list[str]:
        """The class names of ``index_class_mapping.json``, in index order."""
        mapping = self._json(self.class_mapping)
        try:
            names = [mapping[str(i)] for i in range(len(mapping))]
        except KeyError:
            names = []
        if not names or not all(isinstance(n, str) for n in names):
            raise self.damaged(self.class_mapping, "must map 0, 1, ... to class names")
        return names

    def read_info(self) -> dict[str, Any]:
        return self._json(self.run_info)

    def read_best(self) -> dict[str, Any] | None:
        """``best_weights.json`` (None when the run was not post-evaluated), checked."""
        if not self.best_weights.exists():
            return None
        best = self._json(self.best_weights)
        name, epoch, threshold = best.get("weights"), best.get("epoch"), best.get("threshold")
        if (
            not isinstance(name, str)
            or Path(name).name != name
            or not isinstance(epoch, int)
            or (self._thresholded() and not isinstance(threshold, (int, float)))
            or (isinstance(threshold, (int, float)) and not 0.0 <= threshold <= 1.0)
        ):
            raise self.damaged(
                self.best_weights, "must hold a weights file name, an epoch and a threshold"
            )
        return best

    def _thresholded(self) -> bool:
        from cnnhub.tasks import get_task  # lazy: keeps this module light

        return get_task(self.task).thresholded

    def read_csv(self, file: Path, columns: list[str]):
        """A CSV file of the run with at least ``columns``."""

        try:
            frame = read_csv_safe(file)
        except FileNotFoundError:
            raise self.damaged(file, "is missing") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise self.damaged(file, f"cannot be read ({exc})") from None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise self.damaged(file, f"lacks the column(s) {', '.join(missing)}")
        return frame

    def read_training_log(self):
        """``training.log`` as a DataFrame (one row per completed epoch)."""
        from cnnhub.tasks import get_task  # lazy: keeps this module light

        return self.read_csv(self.training_log, get_task(self.task).log_columns())

    def read_report(self):
        """``analysis_report.csv`` as a DataFrame."""
        from cnnhub.tasks import get_task  # lazy: keeps this module light

        return self.read_csv(self.analysis_report, list(get_task(self.task).report_columns))

    # ------------------------------------------------------------------ optional results
    # What a run may hold besides its core files (the report shows what it finds): each reader
    # returns None or an empty list when the file is absent, and fails like the others when a
    # file that is there cannot be read.

    def chosen_stem(self, best: dict[str, Any]) -> str:
        """The report-file stem of the chosen weights: their calibrated reports when the run
        was calibrated (``<stem>-calibrated``), else the weights file's own."""
        calibration = best.get("calibration")
        if isinstance(calibration, dict) and isinstance(calibration.get("reports"), str):
            return Path(calibration["reports"]).name
        return weights_stem(best["weights"])

    def weights_reports(self, stem: str) -> dict[str, Any]:
        """The per-weights CSVs of ``stem`` in ``model_logs`` (predictions, thresholds,
        classes, confusion; a multi-label run's class_thresholds) as frames; a missing file is
        left out."""
        # lazy: loads scikit-learn
        from cnnhub.evaluation.multilabel_reports import multilabel_report_paths
        from cnnhub.evaluation.writer import report_paths

        paths = report_paths(self.model_logs, stem) | multilabel_report_paths(self.model_logs, stem)
        return {kind: self.read_csv(path, []) for kind, path in paths.items() if path.is_file()}

    def read_skipped(self):
        """``skipped_files.csv`` (columns path, reason), or None when the run skipped nothing."""
        path = self.path / SKIPPED_FILES
        return self.read_csv(path, ["path", "reason"]) if path.is_file() else None

    def read_evaluations(self) -> list[tuple[str, dict[str, Any]]]:
        """``(folder name, summary.json)`` of every evaluation under ``evaluations/``."""
        folder = self.path / EVALUATIONS
        if not folder.is_dir():
            return []
        return [
            (entry.name, self._json(entry / "summary.json"))
            for entry in sorted(folder.iterdir())
            if (entry / "summary.json").is_file()
        ]

    def read_exports(self) -> list[dict[str, Any]]:
        """Every export under ``export/<format>/``: ``{"folder", "metadata", "check"}``
        (``check``: ``check.json``, the decision-level check, None for older exports)."""
        folder = self.path / EXPORT
        if not folder.is_dir():
            return []
        found = []
        for entry in sorted(folder.iterdir()):
            if not (entry / EXPORT_METADATA).is_file():
                continue
            check = entry / EXPORT_CHECK
            found.append(
                {
                    "folder": entry.name,
                    "metadata": self._json(entry / EXPORT_METADATA),
                    "check": self._json(check) if check.is_file() else None,
                }
            )
        return found

    def read_deployed_report(self):
        """``analysis_report.csv`` with the chosen weights' rows as deployed: calibrated when
        the run was (``--calibrate temperature``), so figures at the deploy threshold (chosen
        on calibrated probabilities) describe ``best_model.keras`` and its exports."""
        from cnnhub.evaluation.selection import calibrated_report  # lazy: loads scikit-learn

        report = self.read_report()
        best = self.read_best()
        if best is None or not isinstance(best.get("calibration"), dict):
            return report
        overall = self.weights_reports(self.chosen_stem(best)).get("thresholds")
        if overall is None:
            raise self.damaged(self.best_weights, "names calibrated reports that are missing")
        return calibrated_report(report, best, overall)

    def epoch_weights(self) -> dict[int, Path]:
        """Epoch number -> its weights file in ``model_logs`` (empty when there are none)."""
        found: dict[int, Path] = {}
        if self.model_logs.is_dir():
            for entry in self.model_logs.iterdir():
                epoch = epoch_of(entry)
                if epoch is not None and entry.is_file():
                    found[epoch] = entry
        return dict(sorted(found.items()))

    def check_weights(self, file: Path) -> Path:
        """``file`` if it is a readable Keras weights file (.weights.h5 or .keras)."""

        try:
            if file.suffix == ".keras":
                with zipfile.ZipFile(file) as archive:
                    archive.getinfo("model.weights.h5")
            else:
                file_variables(file)
        except FileNotFoundError:
            raise self._weights_error(file, "is missing") from None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise self._weights_error(file, f"cannot be read ({exc})") from None
        return file

    def _weights_error(self, file: Path, problem: str) -> CnnhubError:
        own = (file.parent == self.model_logs and epoch_of(file) is not None) or file in (
            self.final_model,
            self.best_model,
        )
        if own:  # one of the files training wrote
            return self.damaged(file, problem)
        return CnnhubError(
            f"Cannot read weights file {file}: it {problem}. Pass a Keras .weights.h5 or .keras "
            f"file. Received: weights={str(file)!r}"
        )

    def read_state(self) -> TrainingState | None:
        """``checkpoint/state.json`` (None before the first epoch), with its weights file and
        ``optimizer.npz`` checked readable."""
        if not self.state_file.exists():
            return None
        data = self._json(self.state_file)
        try:
            state = TrainingState(**data)
        except TypeError:
            raise self.damaged(self.state_file, "does not hold a training state") from None
        if (
            not isinstance(state.epoch, int)
            or state.epoch < 1
            or Path(state.weights).name != (state.weights or "-")
        ):
            raise self.damaged(self.state_file, "does not hold a training state")
        self.check_weights(self.model_logs / state.weights)
        try:
            with zipfile.ZipFile(self.optimizer_file) as archive:
                bad = archive.testzip()
        except FileNotFoundError:
            raise self.damaged(self.optimizer_file, "is missing") from None
        except (OSError, zipfile.BadZipFile) as exc:
            raise self.damaged(self.optimizer_file, f"cannot be read ({exc})") from None
        if bad is not None:
            raise self.damaged(self.optimizer_file, f"has a corrupt entry {bad}")
        return state


@dataclass
class Run:
    """A run folder's validated contents: config, class names and best-weights choice."""

    folder: RunFolder
    config: dict[str, Any]
    class_names: list[str]
    best: dict[str, Any] | None

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model_logs(self) -> Path:
        return self.folder.model_logs

    @property
    def temperature(self) -> float | None:
        """The temperature fitted to the chosen weights (``--calibrate temperature``), else None.

        It belongs to those weights only: ``best_model.keras`` and every export of them have it
        built in (the final Dense layer divided by it, :mod:`cnnhub.evaluation.calibration`).
        """
        calibration = (self.best or {}).get("calibration")
        if isinstance(calibration, dict) and isinstance(calibration.get("temperature"), float):
            return calibration["temperature"]
        return None

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.config["IMG_HEIGHT"]), int(self.config["IMG_WIDTH"])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Channels of the model's input: 1 for a ``--color_mode grayscale`` run, else 3."""

        return input_channels(self.config)

    def load_input(self, path: str | os.PathLike) -> Any:
        """An image file as this run's model input: float32 (height, width, channels), 0-255.

        The one way every command turns a file into model input: the run's image size and
        channels, decoded as training decoded it (:func:`cnnhub.data.pipeline.decode_file`).

        Raises:
            UnreadableImage: the file cannot be decoded (``reason`` says why).
        """

        return decode_file(path, self.image_size, self.channels).astype(np.float32)

    def epoch_weights(self) -> dict[int, Path]:
        return self.folder.epoch_weights()

    @property
    def weights(self) -> list[Path]:
        """Every epoch's weights file, by epoch."""
        return list(self.epoch_weights().values())


def open_run(path: str | os.PathLike) -> Run:
    """Open a run folder: its config, class names and (when present) ``best_weights.json``.

    Raises:
        CnnhubError: the folder is not a cnnhub run folder, or one of these files is damaged.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CnnhubError(f"Run folder not found: {folder}. {_HINT} Received: run={str(path)!r}")
    if not (folder / RUN_CONFIG).exists() and not (folder / CLASS_MAPPING).exists():
        raise CnnhubError(
            f"{folder} is not a cnnhub run folder: it has no {RUN_CONFIG}. {_HINT} "
            f"Received: run={str(path)!r}"
        )
    run = RunFolder(folder)
    config = run.read_config()
    run = RunFolder(folder, config["MODEL_NAME"], config["TASK"])
    return Run(run, config, run.read_class_names(), run.read_best())


# ---------------------------------------------------------------------- creating a run folder


def _not_writable(folder: Path, reason: str, what: str, flag: str, received: str) -> CnnhubError:
    return CnnhubError(
        f"Cannot write {what} under {folder}: {reason}. Pass a writable folder with {flag}. "
        f"Received: {received}"
    )


def check_writable(folder: str | os.PathLike, what: str, flag: str, received: str) -> None:
    """Fail with one line unless files can be created in ``folder``; creates nothing.

    ``folder`` need not exist yet: then its nearest existing parent must be a writable folder.
    Catches a path under a file, a read-only or unwritable folder, before anything is written.
    The message names ``what`` is written there and the ``flag`` that chooses the folder.
    """
    path = Path(os.path.abspath(folder or "."))
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = f"{existing} is a file, not a folder"
        raise _not_writable(path, reason, what, flag, received)
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise _not_writable(path, exc.strerror or str(exc), what, flag, received) from None


def check_output_target(
    target: str | os.PathLike,
    run: Run,
    flag: str,
    received: str,
    inputs: Sequence[str | os.PathLike] = (),
) -> None:
    """Fail with one line when a command's output ``target`` would replace what it reads.

    ``target`` is the file (or folder) that ``predict``, ``export`` or an explain command
    writes. It may not be one of the command's ``inputs`` (an image being predicted or
    explained), nor the run folder itself, nor a file or folder of the run's own results (its
    config, weights, logs, reports, checkpoint and evaluations): those commands only read a
    run, and a mistyped ``--out`` must not destroy it. Checked before anything is written.
    """
    path = Path(os.path.abspath(target))
    resolved = path.resolve()
    if any(resolved == Path(p).resolve() for p in inputs):
        raise CnnhubError(
            f"`{flag}` is one of the input images ({path}): writing there would replace it. "
            f"Pass another path with {flag}. Received: {received}"
        )
    folder = run.folder
    owned_folders = [
        folder.model_logs, folder.checkpoint, folder.tensor_logs, folder.path / EVALUATIONS
    ]  # fmt: skip
    owned_files = [
        folder.run_config, folder.run_info, folder.class_mapping, folder.best_weights,
        folder.analysis_report, folder.training_log, folder.final_model, folder.best_model,
        folder.split_csv, folder.stats_png, folder.path / SKIPPED_FILES,
        folder.path / ANALYSIS_METRICS_PNG, folder.path / run_lock.LOCK_FILE,
        folder.report_html, folder.model_card,
    ]  # fmt: skip
    run_path = folder.path.resolve()
    if resolved == run_path:
        what = "the run folder itself"
    elif any(resolved == p.resolve() for p in owned_files):
        what = f"the run's own {path.name}"
    elif any(resolved == p.resolve() or p.resolve() in resolved.parents for p in owned_folders):
        what = "inside the run's own results"
    else:
        return
    raise CnnhubError(
        f"`{flag}` is {what} ({path}): the command would overwrite or mix into the run's "
        f"results. Pass a path outside the run folder or under {folder.path / 'explain'} or "
        f"{folder.path / 'export'}. Received: {received}"
    )


def repository_path(save_location: str) -> Path:
    """``<save_location>/model_repository``, or the folder a many-run caller set for its runs
    (:func:`cnnhub.run_hooks.run_repository`)."""
    return run_hooks.repository_override() or Path(save_location or ".") / REPOSITORY


def repository_root(save_location: str, create: bool = True) -> Path:
    """``<save_location>/model_repository``, checked writable, and created unless ``create`` is
    False: the checks made before training starts create nothing, so a command that fails
    later (a bad layer spec, a refused run name) leaves no empty folder behind."""
    root = repository_path(save_location)
    received = f"save_location={save_location}"
    check_writable(root, "run folders", "-sl/--save_loc", received)
    if not create:
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _not_writable(
            root, exc.strerror or str(exc), "run folders", "-sl/--save_loc", received
        ) from None
    return root


def _safe_run_name(name: str) -> str:
    if name in (".", "..") or "/" in name or "\\" in name or os.sep in name or "\0" in name:
        raise CnnhubError(
            "`run_name` must be a plain folder name (no path separators, not . or ..). "
            f"Received: run_name={name!r}"
        )
    return name


def check_run_name(save_location: str, run_name: str, overwrite: bool = False) -> None:
    """Fail early when an explicitly named run folder already exists (never mix runs), or, with
    ``overwrite``, when another process is writing it."""
    path = repository_path(save_location) / _safe_run_name(run_name) if run_name else None
    if path is None or not path.exists():
        return
    if not overwrite:
        raise CnnhubError(
            f"Run folder {path} already exists. Continue it with --resume {path}, replace it "
            "with --overwrite, or choose another --run_name (empty numbers runs automatically). "
            f"Received: run_name={run_name}"
        )
    if path.is_dir():
        run_lock.lock_tree(path)  # held until the folder is replaced; refuses a busy folder


OPTIMIZER_SLOTS = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 2}
"""Arrays of the parameters' size that each optimizer keeps (at most), for the disk estimate."""
HEADER_BYTES = 128 * 1024


def estimate_run_bytes(params: int, epochs: int, optimizer: str) -> int:
    """Bytes a run of ``epochs`` epochs writes, before its first file exists.

    Every epoch's ``.weights.h5`` (float32 weights), ``checkpoint/optimizer.npz`` and its
    temporary copy (optimizer slots), ``final_model.keras`` and ``best_model.keras`` (weights
    plus optimizer slots each), 128 kB of HDF5/zip headers per file (measured: a 2,107-parameter
    model's weights file takes 79 kB), 1 MB of plots and logs, and 10% slack. The per-epoch
    reports depend on the validation set: :class:`cnnhub.resume.DiskSpaceCheck` measures them
    (and everything else) after the first epoch.
    """
    weights = params * 4 + HEADER_BYTES
    slots = OPTIMIZER_SLOTS.get(optimizer, 2) * params * 4
    return int((epochs * weights + 2 * slots + 2 * (weights + slots) + 1_000_000) * 1.1)


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (or would hold it: it need not exist)."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def require_space(folder: Path, need: int, what: str, hint: str, received: str) -> None:
    """Raise CnnhubError when ``folder``'s disk has less than ``need`` bytes free."""
    free = free_bytes(folder)
    if free < need:
        raise CnnhubError(
            f"Not enough disk space under {folder}: about {need / 1e6:,.1f} MB needed for "
            f"{what}, {free / 1e6:,.1f} MB free. {hint} Received: {received}"
        )


def check_free_space(save_location: str, params: int, epochs: int, optimizer: str = "adam") -> None:
    """Fail early when the disk cannot hold the run (see ``estimate_run_bytes``)."""
    root = repository_root(save_location, create=False)
    require_space(
        root,
        estimate_run_bytes(params, epochs, optimizer),
        f"{epochs} epochs of a {params:,}-parameter model",
        "Free space, pass another -sl/--save_loc, or train fewer epochs.",
        f"save_location={save_location}",
    )


def free_run_name(save_location: str, base: str) -> str:
    """``base``, or the first of ``base-2``, ``base-3``, ... with no folder yet."""
    root = repository_path(save_location)
    for n in range(1, 100_000):
        name = base if n == 1 else f"{base}-{n}"
        if not (root / _safe_run_name(name)).exists():
            return name
    raise CnnhubError(f"No free run folder name under {root}. Received: run_name={base}")


def claim_folder(root: Path, run_name: str, base: str, overwrite: bool = False) -> Path:
    """Create and lock a new folder under ``root``: ``run_name``, or else the first free one of
    ``base``, ``base-2``, ...; with ``overwrite`` an existing ``run_name`` folder that no other
    process holds is deleted first."""
    if run_name:
        path = root / _safe_run_name(run_name)
        if overwrite and path.exists():
            run_lock.lock_tree(path)
            shutil.rmtree(path)
            run_lock.forget(path)
        try:
            path.mkdir()
        except FileExistsError:
            raise CnnhubError(
                f"Run folder {path} was created by another process meanwhile. Choose another "
                f"--run_name. Received: run_name={run_name}"
            ) from None
        run_lock.acquire(path)
        return path
    for n in range(1, 100_000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        run_lock.acquire(path)
        return path
    raise CnnhubError(f"No free run folder name under {root}. Received: run_name={base}")


def create_run_folder(
    save_location: str, run_name: str, model_name: str, overwrite: bool = False
) -> RunFolder:
    """Create a new, empty run folder, locked for this process; an automatic name never
    reuses an existing folder. With ``overwrite``, an existing folder of the explicit
    ``run_name`` is deleted first (refused while another process holds it)."""
    path = claim_folder(repository_root(save_location), run_name, model_name, overwrite)
    run = RunFolder(path, model_name)
    run.model_logs.mkdir()
    run.tensor_logs.mkdir()
    return run


def check_save_location(save_location: str, data_dirs: dict[str, str]) -> None:
    """Refuse run folders inside a class-folder dataset, before anything is written.

    The run's plots are PNG files: under ``-dtrain`` the next run would list
    ``model_repository`` as a class and train on them. ``data_dirs`` maps each data flag
    (``-dtrain``) to its path; paths that are not folders (CSV, IDX, .npz) are not walked.
    """

    repository = os.path.realpath(repository_path(save_location))
    for flag, path in data_dirs.items():
        if path and os.path.isdir(path) and within(repository, os.path.realpath(path)):
            raise CnnhubError(
                f"The run folders would be written inside the data folder `{path}` ({flag}), "
                f"where their plots would be read as images of a class next time. Pass a save "
                f"location outside the data with -sl/--save_loc. "
                f"Received: save_location={save_location!r}, {flag} {path}"
            )
