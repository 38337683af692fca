"""Multi-label against single-label training on the same images: per-epoch time and scores.

    python benchmarks/bench_multilabel.py                 # 1200 train / 300 valid mosaics, 4 epochs
    python benchmarks/bench_multilabel.py --quick         # 200 / 60 mosaics, 2 epochs

Data: 2x2 mosaics (56x56 grayscale PNGs) of four random Fashion-MNIST items (the training IDX
file in ``../shared/datasets/fashion-mnist/`` beside the checkout). A mosaic's multi-label
labels are the set of its items' classes (1 to 4 labels, joined by ``|`` in a ``csv_paths``
CSV); the single-label run trains on the same images labelled by the top-left item only.
Both runs train the ``custom`` model from random weights at 56x56 in one ``_child.py``
process, one after the other, with the same flags. Reported per task: the median seconds of
an epoch's training part, of the validation pass, and of the per-epoch scoring (the reports
written for every epoch's weights, from the predictions the validation pass made), the scoring
as a share of the epoch, and the final figures of the weights chosen on validation
(multi-label: mAP, micro and macro F1 at each class's threshold, subset accuracy; single-label:
accuracy and macro F1 at threshold 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    add_common_args,
    child_env,
    run_children,
    start_results,
    table,
    work_dir,
    write_json,
)

IDX = ROOT.parent / "shared" / "datasets" / "fashion-mnist" / "train-images-idx3-ubyte.gz"


def write_mosaics(folder: Path, train: int, valid: int, seed: int = 0) -> dict[str, Path]:
    """PNG mosaics and four CSVs: ``{multi,single}_{train,valid}.csv`` (path,label)."""
    from PIL import Image

    from cnnhub.data.sources import read_idx

    source = read_idx(IDX)
    names = source.class_names
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True)
    csvs: dict[str, Path] = {}
    for split, count in (("train", train), ("valid", valid)):
        multi, single = ["path,label"], ["path,label"]
        for i in range(count):
            items = rng.choice(len(source), 4, replace=False)
            tiles = source.images[items, :, :, 0]
            mosaic = np.block([[tiles[0], tiles[1]], [tiles[2], tiles[3]]])
            name = f"img/{split}_{i:05d}.png"
            Image.fromarray(mosaic).save(folder / name)
            classes = sorted({names[source.labels[j]] for j in items})
            multi.append(f"{name},{'|'.join(classes)}")
            single.append(f"{name},{names[source.labels[items[0]]]}")
        for task, lines in (("multi", multi), ("single", single)):
            csvs[f"{task}_{split}"] = folder / f"{task}_{split}.csv"
            csvs[f"{task}_{split}"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csvs


def best_figures(run_dir: str) -> dict[str, float]:
    """The analysis-report figures of the weights chosen on validation."""
    import pandas as pd

    best = json.loads((Path(run_dir) / "best_weights.json").read_text(encoding="utf-8"))
    report = pd.read_csv(Path(run_dir) / "analysis_report.csv")
    rows = report[report["weights_name"] == best["weights"]]
    if "threshold" in rows.columns:  # single-label: figures at threshold 0
        rows = rows[rows["threshold"] == 0.0]
    return {key: float(value) for key, value in rows.iloc[0].items() if key != "weights_name"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=1200, help="training mosaics")
    parser.add_argument("--valid", type=int, default=300, help="validation mosaics")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=32)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.train, args.valid, args.epochs = 200, 60, 2
    results = start_results("multilabel", args, tensorflow=False)
    with work_dir("multilabel", keep=args.keep) as work:
        csvs = write_mosaics(work, args.train, args.valid)
        common = ["-m", "custom", "-w", "none", "-height", "56", "-width", "56", "-e",
                  str(args.epochs), "-b", str(args.batch_size), "-sl", str(work / "runs"),
                  "--lr_schedule", "cosine"]  # fmt: skip
        runs = [
            [*common, "--task", task, "--run_name", task, "-dtrain", str(csvs[f"{short}_train"]),
             "-dvalid", str(csvs[f"{short}_valid"])]
            for task, short in (("multi_label", "multi"), ("single_label", "single"))
        ]  # fmt: skip
        outcomes = run_children(runs, child_env(work), timeout=3600)
        rows, results["runs"] = [], []
        for (task, _), outcome in zip((("multi_label", 0), ("single_label", 0)), outcomes):
            if outcome["code"]:
                raise RuntimeError(f"{task} run failed (exit {outcome['code']})")
            epoch = statistics.median(outcome["epoch_seconds"])
            validation = statistics.median(outcome["validation_seconds"])
            scoring = statistics.median(outcome["reports_seconds"])
            figures = best_figures(outcome["run_dir"])
            results["runs"].append(
                dict(
                    task=task,
                    epoch_s=epoch,
                    validation_s=validation,
                    scoring_s=scoring,
                    figures=figures,
                )  # fmt: skip
            )
            if task == "multi_label":
                shown = (f"mAP {figures['map']:.3f}, micro-F1 {figures['f1_micro']:.3f}, "
                         f"macro-F1 {figures['f1_macro']:.3f}, subset acc "
                         f"{figures['subset_accuracy']:.3f}")  # fmt: skip
            else:
                shown = f"accuracy {figures['accuracy']:.3f}, macro-F1 {figures['f1_macro']:.3f}"
            total = epoch + validation + scoring
            rows.append([task, epoch, validation, scoring, f"{scoring / total:.1%}", shown])
    print(table(["task", "train s/epoch", "validation s", "scoring s", "scoring share",
                 "best weights (validation)"], rows))  # fmt: skip
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
