"""``python -m cnnhub <command>`` / ``cnnhub <command>``: one entry point for every command.

Each command lives in the module named in ``COMMANDS`` as a ``command(argv) -> int``
function, imported only when it runs, so ``--help`` never loads TensorFlow. A ``CnnhubError``
from any command becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import sys

from cnnhub.errors import CnnhubError

# name: (module with a `command(argv) -> int` function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("cnnhub.runner", "Train models (same flags as run_training.py)."),
    "models": ("cnnhub.registry", "Print the model registry."),
    "weights": ("cnnhub.pretrained", "List or download the ImageNet weights in Keras's cache."),
    "evaluate": ("cnnhub.evaluation.command", "Score saved weights on validation or other data."),
    "compare": ("cnnhub.compare", "Write a leaderboard of the runs in a model repository."),
    "inspect": ("cnnhub.inspect_data", "Check a dataset: counts, sizes, broken files, duplicates."),
    "predict": ("cnnhub.predict", "Classify images with a trained run (top-k, threshold, CSV)."),
    "featuremaps": ("cnnhub.explain.featuremaps", "Plot a run's conv feature maps for an image."),
    "gradcam": ("cnnhub.explain.gradcam", "Grad-CAM heatmap of a run's model over an image."),
    "errors": ("cnnhub.explain.errors", "Gallery of the most confidently wrong validation images."),
    "export": ("cnnhub.export", "Export a run: keras, savedmodel, tflite, tflite-int8, onnx."),
}


def _usage() -> str:
    lines = ["usage: cnnhub <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run `cnnhub <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command; returns the process exit code."""
    from cnnhub.display import safe_output

    safe_output()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.stderr.write(
            f"cnnhub: error: unknown command `{name}`; choose one of {', '.join(COMMANDS)}. "
            f"Received: {name}\n"
        )
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return module.command(rest)
    except CnnhubError as exc:
        sys.stderr.write(f"cnnhub {name}: error: {exc}\n")
        return 2
