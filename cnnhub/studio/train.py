"""Train page: the page's settings as a config file, training started as the CLI starts it,
and the live view of a run (progress, curves, per-epoch table, console).

The settings are checked exactly as the command line checks them (:func:`cnnhub.settings.
validate` over the same defaults); the YAML written here is the file the run is started with
(``run_training.py -c <file>``), so "Download config" repeats the run from the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnhub import atomic, settings
from cnnhub.custom import format_layers, parse_dense
from cnnhub.errors import CnnhubError
from cnnhub.run_folder import RunFolder, check_run_name, free_run_name
from cnnhub.studio.process import Job, Trainer
from cnnhub.studio.workspace import Workspace

# The config keys the Data and Model pages set (the rest keep the CLI's defaults).
PAGE_KEYS = (
    "DATA_DIR_TRAIN", "DATA_DIR_VALID", "DATA_DIR_TEST", "VAL_SPLIT",
    "MODEL_NAME", "CUSTOM_CONV_BLOCKS", "IMG_HEIGHT", "IMG_WIDTH", "NUM_NODES", "NUM_DROPOUTS",
    "TRAINING_TYPE", "EPOCHS", "BATCH_SIZE", "OPTIMIZER", "LEARNING_RATE",
    "AUG_HORIZONTAL_FLIP", "AUG_ZOOM", "AUG_TRANSLATION", "AUG_ROTATION", "SEED",
)  # fmt: skip


def defaults() -> dict[str, Any]:
    """The CLI's defaults (cnnhub/defaults.py and the checkout's config.py)."""
    return settings.load_defaults()[0]


def page_config(values: dict[str, Any], blocks: list[dict[str, Any]] | None = None) -> dict:
    """The full, validated config of the page's ``values`` (config keys; ``DENSE`` is the head
    in the ``--dense`` grammar) and the custom CNN's ``blocks``.

    Raises:
        CnnhubError: a value the command line would refuse, with the CLI's message.
    """
    values = dict(values)
    dense = values.pop("DENSE", None)
    if dense is not None:
        values["NUM_NODES"], values["NUM_DROPOUTS"] = parse_dense(str(dense), name="dense")
    if blocks:
        values["CUSTOM_CONV_BLOCKS"] = format_layers(blocks)
    config = defaults()
    config.update({k: v for k, v in values.items() if v is not None})
    settings.validate(config)
    return config


@dataclass
class Started:
    """A run the Train page started: its folder, config file and job."""

    run_dir: Path
    config_file: Path
    job: Job


def run_name(workspace: Workspace, config: dict[str, Any], requested: str = "") -> str:
    """``requested`` (refused when that run folder exists), else the first free name of the
    model (``custom``, ``custom-2``, ...), as the CLI numbers runs."""
    save = str(workspace.root)
    name = str(requested or "").strip()
    if name:
        workspace.resolve(workspace.repository / name, "run_name")
        check_run_name(save, name)
        return name
    return free_run_name(save, str(config["MODEL_NAME"]).split(",")[0].strip())


def write_config(workspace: Workspace, config: dict[str, Any], name: str) -> Path:
    """The YAML that trains this run from the command line: the page's keys, the workspace
    as save location and the run name. Returns its path (in the studio folder)."""
    import yaml  # lazy: heavy import

    keys = {k.lower(): config[k] for k in PAGE_KEYS}
    keys.update(save_location=str(workspace.root), iteration_name=name)
    text = (
        "# cnnhub studio: repeat this run from the command line with\n"
        f"#   python run_training.py -c {name}.yaml\n"
        + yaml.safe_dump(keys, sort_keys=False, allow_unicode=True)
    )
    folder = workspace.studio_dir / "configs"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    atomic.write_text(path, text)
    return path


def start(
    workspace: Workspace, trainer: Trainer, config: dict[str, Any], requested_name: str = ""
) -> Started:
    """Write the config and start ``run_training.py -c <it>`` (refused if the folder is busy)."""
    name = run_name(workspace, config, requested_name)
    path = write_config(workspace, config, name)
    run_dir = workspace.repository / name
    return Started(run_dir, path, trainer.start(path, run_dir))


def resume(workspace: Workspace, trainer: Trainer, name: str) -> Job:
    """Continue the stopped run ``name`` (``run_training.py --resume <run>``)."""
    return trainer.resume(workspace.run(name))


@dataclass
class LiveView:
    """What the Train page shows of one run, read afresh at every tick."""

    status: str
    epochs: Any  # DataFrame of training.log (empty before the first epoch ends)
    curves: Path | None  # the run's <model>_stats.png, rewritten every epoch
    console: str
    updated: float  # latest modification time of training.log and the curves (0: none)


def live_view(workspace: Workspace, trainer: Trainer, name: str) -> LiveView:
    """Progress, per-epoch table, curves and console of run ``name``."""
    import pandas as pd  # lazy: heavy import

    from cnnhub.run_folder import LOG_COLUMNS

    if not name:
        return LiveView("no run yet", pd.DataFrame(columns=LOG_COLUMNS), None, "", 0.0)
    run_dir = workspace.run(name) if (workspace.repository / name).is_dir() else None
    job = trainer.job(workspace.repository / name)
    status = job.status() if job else "not started from this studio"
    console = job.console_text() if job else ""
    epochs = pd.DataFrame(columns=LOG_COLUMNS)
    curves, updated = None, 0.0
    if run_dir is not None:
        model = _model_name(run_dir)
        folder = RunFolder(run_dir, model)
        if folder.training_log.is_file():
            updated = folder.training_log.stat().st_mtime
            try:
                epochs = folder.read_training_log().round(4)
            except CnnhubError:
                pass  # being rewritten this instant: the next tick reads it
        if folder.stats_png.is_file():
            curves = folder.stats_png
            # The curves are drawn after the log is written: either changing means news.
            updated = max(updated, folder.stats_png.stat().st_mtime)
    return LiveView(f"{name}: {status}", epochs, curves, console, updated)


def _model_name(run_dir: Path) -> str:
    import json

    try:
        return str(json.loads(RunFolder(run_dir).run_config.read_text("utf-8"))["MODEL_NAME"])
    except (OSError, ValueError, KeyError, TypeError):
        return run_dir.name


def wait_for(job: Job, timeout: float) -> int | None:
    """Poll ``job`` until it ends or ``timeout`` seconds pass; its exit status or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not job.running:
            return job.returncode
        time.sleep(0.2)
    return None
