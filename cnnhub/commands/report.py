"""``cnnhub report RUN``: (re)write a run's ``report.html`` and ``MODEL_CARD.md``."""

from __future__ import annotations

from collections.abc import Sequence

from cnnhub import run_lock
from cnnhub.cli import OneLineParser, add_run_argument, run_command


def _run(argv: Sequence[str], prog: str) -> int:
    parser = OneLineParser(
        prog=prog,
        description="Write RUN/report.html (one self-contained page: settings, data, curves, "
        "per-epoch scores, thresholds, confusion matrix, calibration, confident errors, "
        "held-out evaluations, exports) and RUN/MODEL_CARD.md from what the run folder holds. "
        "Training writes both at its end; run this after evaluate or export to update them.",
    )
    add_run_argument(parser)
    args = parser.parse_args(list(argv))
    from cnnhub.report import write_report  # lazy: matplotlib and pandas, kept off --help
    from cnnhub.run_folder import open_run
    from cnnhub.tasks import get_task

    run = open_run(args.run)  # not a run folder: one line, before the lock file is created
    get_task(run.config).check_command("report", args.run)
    with run_lock.locked(args.run):  # a run being trained or evaluated is not read half-written
        paths = write_report(args.run)
    print(f"Report: {paths['html']}")
    print(f"Model card: {paths['card']}")
    return 0


def command(argv: Sequence[str], prog: str = "cnnhub report") -> int:
    """Entry point of ``cnnhub report``; returns the exit code."""
    return run_command(prog, lambda: _run(argv, prog))
