"""Where a study lives, and trials of processes that died.

``--storage`` is a database URL for Optuna's RDB storage (``sqlite:///...``,
``postgresql://user:pw@host/db``, ``mysql://...``) or a file path for Optuna's journal file
(several processes on one machine or a shared file system, no database). The default is
``study.db`` (SQLite) in the study folder, so running the same command again continues it.

A trial whose process died (killed, out of memory, power loss) stays RUNNING in the storage.
Every trial records its host and process id; on start-up, RUNNING trials of this host whose
process is gone are marked FAIL. Database storages also get Optuna's heartbeat, which marks
trials of dead processes on *other* machines FAIL after the grace period.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from cnnhub.errors import CnnhubError

STUDY_DB = "study.db"
HEARTBEAT_SECONDS = 60
GRACE_SECONDS = 180
SQLITE_BUSY_SECONDS = 60  # processes sharing one SQLite file wait for its lock this long
CREATE_ATTEMPTS = 5
_RACE_ERRORS = ("IntegrityError", "OperationalError")  # sqlalchemy's, on concurrent creation


def default_storage(study_dir: Path) -> str:
    """The SQLite URL of ``study.db`` in the study folder."""
    return f"sqlite:///{Path(study_dir).resolve() / STUDY_DB}"


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url`` (a database URL, or a journal file path).

    Raises CnnhubError when the URL is malformed, its driver is missing or it cannot be opened.
    """
    import optuna  # lazy: heavy import, kept off the --help path

    try:
        if "://" not in url:
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(str(url)))
        return _database(url)
    except Exception as exc:  # noqa: BLE001 - any failure here is the URL or the database
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CnnhubError(
            "--storage must be a database URL Optuna can open (sqlite:///path/study.db, "
            "postgresql://user:password@host/db, ...) or a journal file path; "
            f"{type(exc).__name__}: {first}. Received: storage={url!r}"
        ) from None


def _database(url: str) -> Any:
    """RDBStorage with a heartbeat. Processes starting together on a new database race to
    create its tables; the losers see the winner's rows (a unique-key or locking error) and
    simply open the database again."""
    import optuna  # lazy: heavy import, kept off the --help path

    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS}
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # the heartbeat is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                )
        except Exception as exc:
            if type(exc).__name__ not in _RACE_ERRORS or attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def owner() -> dict[str, Any]:
    """This process's identity, stored with each trial it runs."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def fail_dead_trials(study) -> list[int]:
    """Mark FAIL the RUNNING trials whose process is gone; return their numbers.

    This host's trials are checked by process id; other hosts' by Optuna's heartbeat (database
    storages only, after its grace period).
    """
    import optuna  # lazy: heavy import, kept off the --help path

    with warnings.catch_warnings():  # marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    host = socket.gethostname()
    failed = []
    storage = study._storage  # Optuna has no public setter for another process's trial
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != host or not attrs.get("pid") or _alive(int(attrs["pid"])):
            continue
        storage.set_trial_user_attr(
            trial._trial_id, "error", f"process {attrs['pid']} on {host} ended during the trial"
        )
        if storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
            failed.append(trial.number)
    return failed
