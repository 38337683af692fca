"""``multi_label``: a set of classes per image (one sigmoid per class). Not implemented yet:
the ``multilabel`` work fills in this :class:`~cnnhub.tasks.base.Task`."""

from __future__ import annotations

from typing import Any

from cnnhub.errors import CnnhubError
from cnnhub.tasks.base import Task


class MultiLabel(Task):
    """Several classes per image."""

    name = "multi_label"

    def check_config(self, config: dict[str, Any]) -> None:
        raise CnnhubError(
            "Task multi_label is not available yet; use --task single_label or regression. "
            "Received: task='multi_label'"
        )
