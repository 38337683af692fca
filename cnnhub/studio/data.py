"""Data page: choose the training / validation / test data under the root and inspect it.

The report is :mod:`cnnhub.data.inspect`'s (the ``cnnhub inspect`` command's); sample images
are decoded with the training decoder (:func:`cnnhub.data.images.load_image`), so a file
that cannot be decoded shows as such instead of reaching the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnhub.data.images import UnreadableImage, load_image
from cnnhub.data.inspect import Inspection, inspect_sources
from cnnhub.data.sets import DataOptions, read_source
from cnnhub.errors import CnnhubError
from cnnhub.studio.workspace import Workspace

SAMPLES_PER_CLASS = 4
THUMBNAIL = (64, 64)


@dataclass
class DataChoice:
    """The data the Data page chose: absolute paths inside the root ("" when not given)."""

    train: str = ""
    valid: str = ""
    test: str = ""
    val_split: float = 0.0

    def config(self) -> dict[str, Any]:
        """The config keys of this choice."""
        return {
            "DATA_DIR_TRAIN": self.train,
            "DATA_DIR_VALID": self.valid,
            "DATA_DIR_TEST": self.test,
            "VAL_SPLIT": float(self.val_split or 0.0),
        }


@dataclass
class DataReport:
    """What the Data page shows after Inspect."""

    choice: DataChoice
    inspection: Inspection
    text: str
    counts: Any  # pandas DataFrame: images per class and split
    samples: list[tuple[np.ndarray, str]] = field(default_factory=list)
    first_image: str | None = None  # a training image file, for the Model page's check


def choose(
    workspace: Workspace, train: str, valid: str = "", test: str = "", val_split: float = 0.0
) -> DataChoice:
    """The page's picks as a :class:`DataChoice`; every path must lie under the root."""
    if not str(train or "").strip():
        raise CnnhubError("Choose the training data (a folder or file under the root).")
    paths = {
        role: str(workspace.resolve(value, f"{role} data")) if str(value or "").strip() else ""
        for role, value in (("train", train), ("valid", valid), ("test", test))
    }
    split = float(val_split or 0.0)
    if not 0.0 <= split < 1.0:
        raise CnnhubError(f"`val_split` must be in [0, 1). Received: val_split={split}")
    if not paths["valid"] and not split:
        raise CnnhubError(
            "Choose validation data, or a validation fraction (val_split) to cut from the "
            f"training data. Received: valid='', val_split={split}"
        )
    return DataChoice(paths["train"], paths["valid"], paths["test"], split)


def inspect(choice: DataChoice, use_cache: bool = True) -> DataReport:
    """Read and inspect the chosen data as ``cnnhub inspect`` does; sample images per class."""
    import pandas as pd  # lazy: heavy import

    options = DataOptions()
    sources: dict[str, Any] = {}
    for role in ("train", "valid", "test"):
        path = getattr(choice, role)
        if path:
            reference = next(iter(sources.values())) if sources else None
            sources[role] = read_source(path, role, options, reference=reference)
    inspection = inspect_sources(sources, use_cache=use_cache)
    counts = pd.DataFrame(
        {s.name: [int(n) for n in s.counts] for s in inspection.splits},
        index=pd.Index(inspection.class_names, name="class"),
    ).reset_index()
    return DataReport(
        choice=choice,
        inspection=inspection,
        text=inspection.format(detail=True, show=10),
        counts=counts,
        samples=sample_images(sources["train"]),
        first_image=sources["train"].paths[0] if sources["train"].paths else None,
    )


def sample_images(source, per_class: int = SAMPLES_PER_CLASS) -> list[tuple[np.ndarray, str]]:
    """Up to ``per_class`` thumbnails of each class, captioned with the class name (text)."""
    samples = []
    for index, name in enumerate(source.class_names):
        shown = 0
        for i in np.flatnonzero(source.labels == index):
            if shown >= per_class:
                break
            if source.paths is not None:
                try:
                    image = load_image(source.paths[i], size=THUMBNAIL, channels=3)
                except UnreadableImage:
                    continue
            else:
                image = source.images[i]
                if image.shape[-1] == 1:
                    image = np.repeat(image, 3, axis=-1)
            samples.append((image, name))
            shown += 1
    return samples
