"""``cnnhub gradcam``: the flags and output files of :mod:`cnnhub.explain.gradcam`.

::

    python -m cnnhub gradcam RUN IMAGE [--class NAME] [--layer NAME]
        [--weights best|last|<epoch>|<file>] [--out FILE.png]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnhub.cli import OneLineParser, add_run_argument, add_weights_option, run_command
from cnnhub.display import printable
from cnnhub.errors import CnnhubError
from cnnhub.explain.common import shape_text
from cnnhub.explain.gradcam import (
    class_index_of,
    display_image,
    grad_cam,
    plot_gradcam,
)
from cnnhub.quiet import quiet_tensorflow
from cnnhub.run_folder import check_output_target, check_writable
from cnnhub.run_loading import choose_weights, note, open_run, safe_file_name
from cnnhub.tasks import get_task


def _run(argv: Sequence[str], prog: str) -> int:
    parser = OneLineParser(
        prog=prog,
        description="Grad-CAM heatmap of a run's model over one image, for the predicted class "
        "or the one named with --class.",
    )
    add_run_argument(parser)
    parser.add_argument("image", help="Image file.")
    parser.add_argument(
        "--class",
        dest="class_name",
        default=None,
        help="Class to explain (regression: the target). [default: predicted; regression: the "
        "first target]",
    )
    parser.add_argument(
        "--layer",
        default=None,
        help="Backbone layer whose feature map is used. [default: the last one larger than 1x1]",
    )
    add_weights_option(parser)
    parser.add_argument(
        "--out",
        default=None,
        help="PNG file to write. [default: RUN/explain/gradcam/<image stem>_<class>.png]",
    )
    args = parser.parse_args(list(argv))
    if args.out is not None and not args.out.lower().endswith(".png"):
        raise CnnhubError(f"`--out` must be a .png file path. Received: out={args.out}")
    run = open_run(args.run)
    target = None if args.class_name is None else class_index_of(args.class_name, run.class_names)
    weights = choose_weights(run, args.weights)
    folder = Path(args.out).parent if args.out else run.folder.explain / "gradcam"
    check_writable(folder, "the Grad-CAM figure", "--out", f"out={args.out or folder}")
    if args.out:
        check_output_target(args.out, run, "--out", f"out={args.out}", [args.image])
    image = run.load_input(args.image)
    shown = display_image(args.image)
    quiet_tensorflow()
    # Keras loads here, once the flags and the run are checked.
    from cnnhub.model_factory import build_run_model

    model = build_run_model(run, weights)
    task = get_task(run.config)
    result = grad_cam(model, image, task.explained_output(target), args.layer)
    class_name = run.class_names[result.class_index]
    if args.out:
        path = Path(args.out)
    else:
        stem = safe_file_name(Path(args.image).stem)
        path = folder / f"{stem}_{safe_file_name(class_name)}.png"
    caption = (
        f"image {Path(args.image).name} | run {run.name} | weights {weights.path.name} "
        f"| layer {result.layer}"
    )
    plot_gradcam(shown, result, run.class_names, caption, path, task)
    if result.layer_shape[0] * result.layer_shape[1] <= 1:
        note(f"layer {result.layer} has a 1x1 map: the heatmap cannot show where the model looks.")
    elif not result.heatmap.any():
        what = "probability" if task.thresholded else "value"
        note(f"nothing in the image raises the {what} of {printable(class_name)} here.")
    described = task.describe_output(
        printable(class_name), result.probabilities[result.class_index]
    ).removeprefix("class: ").removeprefix("output: ")
    print(
        f"Grad-CAM for {described} at layer {result.layer} "
        f"({shape_text(result.layer_shape)}): {path}"
    )
    return 0


def command(argv: Sequence[str], prog: str = "cnnhub gradcam") -> int:
    """Entry point of ``cnnhub gradcam``; returns the exit code."""
    return run_command(prog, lambda: _run(argv, prog))
