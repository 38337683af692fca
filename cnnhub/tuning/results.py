"""A study's results in its folder: ``study.csv``, two plots, ``best_config.yaml``.

``study.csv`` and ``best_config.yaml`` are rewritten after every trial (atomically), so a killed
study still has them; the plots are drawn when the command ends.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd

from cnnhub import atomic
from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.run_folder import RunFolder
from cnnhub.tuning.space import decode_params

STUDY_CSV = "study.csv"
BEST_CONFIG = "best_config.yaml"
IMPORTANCE_PNG = "param_importances.png"
HISTORY_PNG = "optimization_history.png"
# Keys best_config.yaml leaves out: the repeated run gets its own folder name.
NOT_REPEATED = ("ITERATION_NAME",)


def trials_frame(study, metric: str) -> pd.DataFrame:
    """One row per trial: number, state, best metric, seconds, parameters, run folder, error."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else math.nan
        )
        attrs = trial.user_attrs
        params = {
            f"param_{k}": json.dumps(v) if isinstance(v, list) else v
            for k, v in decode_params(trial.params).items()
        }
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                f"best_{metric}": attrs.get(f"best_{metric}", math.nan),
                "epochs": trial.last_step if trial.last_step is not None else 0,
                "pruned_epoch": attrs.get("pruned_epoch", ""),
                "seconds": round(seconds, 2),
                **params,
                "run": attrs.get("run", ""),
                "error": attrs.get("error", ""),
            }
        )
    return pd.DataFrame(rows)


def best_trial(study):
    """The best COMPLETE trial, or None when no trial completed."""
    try:
        return study.best_trial
    except ValueError:
        return None


def write_tables(study, study_dir: Path, metric: str) -> None:
    """Rewrite ``study.csv`` and, once a trial completed, ``best_config.yaml``."""
    write_csv_safe(study_dir / STUDY_CSV, trials_frame(study, metric))
    best = best_trial(study)
    run = best.user_attrs.get("run") if best is not None else None
    if run and RunFolder(Path(run)).run_config.is_file():
        write_best_config(Path(run), study_dir / BEST_CONFIG, best.number, metric, best.value)


def write_best_config(run: Path, path: Path, number: int, metric: str, value: float) -> None:
    """The best trial's resolved configuration as YAML that ``run_training.py -c`` repeats."""
    import yaml  # lazy: heavy import, kept off the --help path

    config = json.loads(RunFolder(run).run_config.read_text(encoding="utf-8"))
    kept = {k.lower(): v for k, v in config.items() if k not in NOT_REPEATED}
    header = (
        f"# Best trial {number} ({metric} {value:.4f}), run folder {run}.\n"
        "# Repeat it with: python run_training.py -c best_config.yaml\n"
    )
    atomic.write_text(path, header + yaml.safe_dump(kept, sort_keys=False, allow_unicode=True))


def write_plots(study, study_dir: Path) -> list[str]:
    """Parameter importances and optimisation history as PNGs; returns what was left out (why).

    Importances need two completed trials that differ in a parameter.
    """
    import matplotlib  # lazy: heavy import, kept off the --help path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy import, kept off the --help path
    import optuna  # lazy: heavy import, kept off the --help path
    import optuna.visualization.matplotlib as ovm  # lazy: heavy import

    skipped = []
    plots = {HISTORY_PNG: ovm.plot_optimization_history, IMPORTANCE_PNG: ovm.plot_param_importances}
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():  # both plots are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = plot(study)
        except (ValueError, RuntimeError) as exc:
            skipped.append(f"{name} ({' '.join(str(exc).split())})")
            continue
        figure = axes.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        atomic.save_figure(study_dir / name, figure, dpi=100)
        plt.close(figure)
    return skipped
