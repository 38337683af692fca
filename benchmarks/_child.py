"""``run_training.py`` with timers: ``python benchmarks/_child.py <run_training.py flags>``.

Several runs in one process (TensorFlow imported once): separate their flags with ``---``; the
runs go in order, ``keras.backend.clear_session()`` between them, one RESULT line each.

Runs ``cnnhub.commands.train.train_main`` unchanged, after wrapping a few cnnhub functions with timers
(nothing else is altered), and prints one ``RESULT {json}`` line:

* ``epoch_seconds``: each epoch's training part, from ``on_epoch_begin`` to ``on_epoch_end`` of
  the first callback (before the validation pass, checkpoint and reports run);
* ``validation_seconds``: each epoch's validation pass (``ValidationScorer.on_epoch_end``);
* ``reports_seconds``: each epoch's per-epoch reports (``EpochReports.on_epoch_end``, -post true);
* ``finalize_seconds``: the post-training best-weights choice, plots, best_model.keras;
* ``feature_cache_seconds``: computing the frozen backbone's features (feature cache on);
* ``first_batch_s``: cnnhub's own "First training batch done X s after start-up" figure;
* ``seconds``: the whole ``train_main`` call; ``run_dir``: the run folder.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnnhub import runner  # noqa: E402  (sets the start-up clock, as run_training.py does)
from cnnhub.commands.train import train_main  # noqa: E402
from cnnhub.quiet import quiet_tensorflow  # noqa: E402

TIMES: dict = {
    "epoch_seconds": [],
    "validation_seconds": [],
    "reports_seconds": [],
    "finalize_seconds": None,
    "feature_cache_seconds": None,
    "first_batch_s": None,
}


def _wrap_method(cls, name: str, key: str) -> None:
    original = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            TIMES[key].append(time.perf_counter() - start)

    setattr(cls, name, wrapper)


def _wrap_function(module, name: str, key: str) -> None:
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[key] = time.perf_counter() - start

    setattr(module, name, wrapper)


def install() -> None:
    quiet_tensorflow()
    from cnnhub import callbacks
    from cnnhub.evaluation import run_evaluation

    class EpochTimer(callbacks.FirstBatchTimer):
        """cnnhub's first-batch timer (the first callback of fit) plus per-epoch times."""

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            TIMES["epoch_seconds"].append(time.perf_counter() - self._epoch_started)

        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            TIMES["first_batch_s"] = self.seconds

    # runner imported these names at its top: they are replaced in runner's namespace
    runner.FirstBatchTimer = EpochTimer
    _wrap_method(callbacks.ValidationScorer, "on_epoch_end", "validation_seconds")
    _wrap_method(run_evaluation.EpochReports, "on_epoch_end", "reports_seconds")
    _wrap_function(runner, "finalize", "finalize_seconds")
    _wrap_function(runner, "cached_feature_datasets", "feature_cache_seconds")


def main(argv: list[str]) -> int:
    install()
    runs, current = [], []
    for token in argv:
        if token == "---":
            runs.append(current)
            current = []
        else:
            current.append(token)
    runs.append(current)
    code = 0
    for i, run_argv in enumerate(runs):
        if i:
            import keras

            keras.backend.clear_session()
            for key, value in TIMES.items():
                TIMES[key] = [] if isinstance(value, list) else None
        code = one_run(run_argv) or code
    return code


def one_run(argv: list[str]) -> int:
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    start = time.perf_counter()
    with redirect_stdout(buffer):
        code = train_main(argv)
    seconds = time.perf_counter() - start
    output = buffer.getvalue()
    sys.stderr.write(output[-4000:] if code else "")
    run_dir = None
    for line in reversed(output.splitlines()):
        if line.startswith("Run folder: "):
            run_dir = line[len("Run folder: ") :].strip()
            break
    print(
        "RESULT " + json.dumps(dict(TIMES, code=code, seconds=seconds, run_dir=run_dir)), flush=True
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
