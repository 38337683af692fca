"""``folder``: one subfolder of images per class (file-backed)."""

from __future__ import annotations

import os

import numpy as np

from cnnhub.data.images import list_class_folder
from cnnhub.data.sources.base import (
    DataSource,
)


def read_class_folder(root: str | os.PathLike) -> DataSource:
    """A folder with one subfolder of images per class (file-backed)."""
    root = os.fspath(root)
    class_names, samples = list_class_folder(root)
    return DataSource(
        class_names=class_names,
        labels=np.array([label for _, label in samples], dtype=np.int64),
        paths=[path for path, _ in samples],
        root=root,
        origin=root,
        data_format="folder",
    )
