"""What a caller that trains many runs in one process (``cnnhub tune``) adds to each run.

Training reads these context variables; outside such a caller they are unset and training is
unchanged. A context variable rather than new arguments, so the dozen functions between the
command and the Keras callbacks do not each carry a tuner's concerns:

- :func:`run_repository`: the folder run folders are created in, instead of
  ``<save_location>/model_repository`` (a study's trials go to ``model_repository/<study>/``).
- :func:`epoch_checks`: callbacks that run after each epoch's commit point, each made for the run
  by a factory (the tuner's pruning check, which may stop the run like early stopping does).
- :func:`feature_memo`: backbone features kept between runs, so frozen-backbone runs with the
  same backbone, image size and data compute them once (:mod:`cnnhub.feature_cache`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_REPOSITORY: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "cnnhub_repository", default=None
)
_EPOCH_CHECKS: contextvars.ContextVar[tuple[Callable[..., Any], ...]] = contextvars.ContextVar(
    "cnnhub_epoch_checks", default=()
)
_FEATURE_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "cnnhub_feature_memo", default=None
)


@contextlib.contextmanager
def _setting(var: contextvars.ContextVar, value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def run_repository(folder: str | Path) -> contextlib.AbstractContextManager[None]:
    """Within the block, run folders are created directly in ``folder``."""
    return _setting(_REPOSITORY, Path(folder))


def repository_override() -> Path | None:
    """The folder set by :func:`run_repository`, or None."""
    return _REPOSITORY.get()


def epoch_checks(factory: Callable[[Any, dict], Any]) -> contextlib.AbstractContextManager:
    """Within the block, ``factory(run, config)`` makes a Keras callback (or None) for each run,
    run after every epoch's commit point (its weights, logs and resume state are written)."""
    return _setting(_EPOCH_CHECKS, (*_EPOCH_CHECKS.get(), factory))


def make_epoch_checks(run: Any, config: dict[str, Any]) -> list:
    """The callbacks of the factories set by :func:`epoch_checks` for ``run``."""
    made = (factory(run, config) for factory in _EPOCH_CHECKS.get())
    return [callback for callback in made if callback is not None]


def feature_memo(memo: dict) -> contextlib.AbstractContextManager[None]:
    """Within the block, backbone features are kept in ``memo`` (key -> arrays) and reused."""
    return _setting(_FEATURE_MEMO, memo)


def current_feature_memo() -> dict | None:
    """The dict set by :func:`feature_memo`, or None (features are not kept)."""
    return _FEATURE_MEMO.get()
