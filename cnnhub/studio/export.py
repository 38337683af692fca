"""Export page: the verified export of :func:`cnnhub.export.export_run` (the ``cnnhub export``
command's), its check, and the file to download."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnhub.studio.workspace import Workspace


def formats() -> list[str]:
    """The export formats, as ``cnnhub export --format`` names them."""
    from cnnhub.export import FORMATS

    return list(FORMATS)


@dataclass
class Exported:
    """What the Export page shows after an export."""

    path: Path
    text: str


def export(workspace: Workspace, name: str, fmt: str) -> Exported:
    """Export run ``name``'s best weights as ``fmt`` into ``<run>/export/<fmt>/``, verified."""
    from cnnhub.export import export_run, human_size
    from cnnhub.run_folder import check_writable
    from cnnhub.run_loading import choose_weights, open_run
    from cnnhub.tasks import get_task

    run = open_run(workspace.run(name))
    quiet = lambda _message: None  # noqa: E731 (notes are for the terminal)
    weights = choose_weights(run, "best", show=quiet)
    # The run's task's deploy decision: one threshold, one per class, or none (regression).
    threshold = get_task(run.config).predict_threshold(run, "best", weights)
    out_dir = run.path / "export" / fmt
    check_writable(out_dir, "the export", "--out", f"out={out_dir}")
    result = export_run(run, weights, fmt, out_dir, threshold)
    check = result.metadata.get("verification", {})
    text = (
        f"Exported {run.name} ({weights.path.name}) as {fmt}: {result.path.name}, "
        f"{human_size(result.size_bytes)}.\n"
        f"Check with {result.runtime} on {check.get('source', 'validation images')}: "
        f"{result.check_text} ({check.get('limit', '')}).\n"
        f"Latency: {result.latency_ms:.3f} ms per image (batch 1, this machine)."
        + (f" Threshold {threshold:g}." if isinstance(threshold, float) else "")
    )
    return Exported(_downloadable(workspace, run.name, fmt, result.path), text)


def _downloadable(workspace: Workspace, run_name: str, fmt: str, path: Path) -> Path:
    """The file to download: the model file, or a zip of a SavedModel folder."""
    if not path.is_dir():
        return path
    import shutil

    folder = workspace.studio_dir / "exports"
    folder.mkdir(exist_ok=True)
    return Path(shutil.make_archive(str(folder / f"{run_name}-{fmt}"), "zip", path))
