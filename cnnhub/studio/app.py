"""The studio's pages: the Gradio layout, wiring each page's handlers to its components.

Every handler lives in its page's module and takes plain values; here they are only called,
their CnnhubErrors shown as one line in the page's status box. Text from the data (class
names, file names, messages) goes into Textbox, Dataframe and caption components, which show
it as text, never as HTML or Markdown.
"""

from __future__ import annotations

import os
import threading
from functools import wraps
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402  (after the analytics switch, which it reads on import)

from cnnhub.custom import ACTIVATIONS, PADDINGS, POOLS  # noqa: E402
from cnnhub.errors import CnnhubError  # noqa: E402
from cnnhub.registry import BACKBONES  # noqa: E402
from cnnhub.settings import CHOICES  # noqa: E402
from cnnhub.studio import data as data_page  # noqa: E402
from cnnhub.studio import export as export_page  # noqa: E402
from cnnhub.studio import model as model_page  # noqa: E402
from cnnhub.studio import runs as runs_page  # noqa: E402
from cnnhub.studio import train as train_page  # noqa: E402
from cnnhub.studio import try_ as try_page  # noqa: E402
from cnnhub.studio.process import Trainer  # noqa: E402
from cnnhub.studio.workspace import Workspace  # noqa: E402

TICK_SECONDS = 1.0
MAX_UPLOAD = "20mb"
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Consolas", "monospace"]


def theme() -> gr.themes.Base:
    """A theme with system fonts only: Gradio's default loads web fonts, this loads nothing."""
    return gr.themes.Base(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def one_line(error: Exception) -> str:
    """An error as the single line a status box shows."""
    return "error: " + " ".join(str(error).split())


def guarded(status):
    """Run a handler; a CnnhubError becomes one line in ``status`` (other outputs unchanged)."""

    def wrap(fn):
        @wraps(fn)
        def inner(*args):
            try:
                return fn(*args)
            except CnnhubError as exc:
                return {status: one_line(exc)}

        return inner

    return wrap


def build_app(workspace: Workspace, trainer: Trainer) -> gr.Blocks:
    """The six pages over ``workspace``, training with ``trainer``."""
    defaults = train_page.defaults()
    with gr.Blocks(title="cnnhub studio", analytics_enabled=False) as app:
        gr.Textbox(
            value=f"cnnhub studio - workspace {workspace.root}",
            show_label=False, interactive=False, container=False, elem_id="studio-title",
        )  # fmt: skip
        report_state = gr.State(None)
        blocks_state = gr.State([])
        current_run = gr.State("")
        shown_log = gr.State(0.0)
        with gr.Tabs():
            with gr.Tab("Data", id="data"):
                d = _data_tab(workspace)
            with gr.Tab("Model", id="model"):
                m = _model_tab(defaults)
            with gr.Tab("Train", id="train"):
                t = _train_tab()
            with gr.Tab("Runs", id="runs") as runs_tab:
                r = _runs_tab()
            with gr.Tab("Try", id="try") as try_tab:
                y = _try_tab()
            with gr.Tab("Export", id="export") as export_tab:
                x = _export_tab()
        _wire_data(workspace, d, report_state)
        _wire_model(m, d, blocks_state, report_state)
        _wire_train(workspace, trainer, t, m, blocks_state, report_state, current_run, shown_log)
        _wire_runs(workspace, r)
        _wire_try(workspace, y)
        _wire_export(workspace, x)
        for tab, page in ((runs_tab, r), (try_tab, y), (export_tab, x)):
            tab.select(lambda current: _run_list(workspace, current), page["run"], page["run"])
        runs_tab.select(lambda: _board(workspace), None, [r["board"], r["message"]])
    return app


# ---------------------------------------------------------------------------- layout


def _data_tab(workspace: Workspace) -> dict[str, Any]:
    folders = workspace.data_folders()
    c: dict[str, Any] = {}
    gr.Markdown("Choose the data under the workspace folder, then Inspect.")
    with gr.Row():
        for role, label in (("train", "Training data"), ("valid", "Validation data"),
                            ("test", "Test data (optional)")):  # fmt: skip
            c[role] = gr.Dropdown(
                choices=folders, value=None, allow_custom_value=True, label=label,
                elem_id=f"data-{role}",
            )  # fmt: skip
        c["val_split"] = gr.Number(0.0, label="or validation fraction", elem_id="data-val-split")
    with gr.Row():
        c["inspect"] = gr.Button("Inspect", variant="primary", elem_id="data-inspect")
        c["refresh"] = gr.Button("Refresh folders", elem_id="data-refresh")
    c["status"] = gr.Textbox(label="Status", interactive=False, elem_id="data-status")
    c["counts"] = gr.Dataframe(label="Images per class and split", interactive=False,
                               elem_id="data-counts")  # fmt: skip
    c["samples"] = gr.Gallery(label="Sample images per class", columns=8, height=260,
                              elem_id="data-samples")  # fmt: skip
    c["report"] = gr.Textbox(label="Inspect report", lines=10, interactive=False,
                             elem_id="data-report")  # fmt: skip
    return c


def _model_tab(defaults: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["model"] = gr.Dropdown(choices=list(BACKBONES), value=defaults["MODEL_NAME"],
                                 label="Backbone", elem_id="model-name")  # fmt: skip
        c["height"] = gr.Textbox(str(defaults["IMG_HEIGHT"]), label="Image height (or auto)",
                                 elem_id="model-height")  # fmt: skip
        c["width"] = gr.Textbox(str(defaults["IMG_WIDTH"]), label="Image width (or auto)",
                                elem_id="model-width")  # fmt: skip
    with gr.Accordion("Registry (click a row to choose that backbone)", open=False,
                      elem_id="model-registry-box"):  # fmt: skip
        c["registry"] = gr.Dataframe(model_page.registry_table(), interactive=False,
                                     elem_id="model-registry")  # fmt: skip
    gr.Markdown("Custom CNN blocks (model `custom`; none: `auto`, derived from the data)")
    with gr.Row():
        c["filters"] = gr.Number(16, label="filters", precision=0, elem_id="block-filters")
        c["kernel"] = gr.Number(3, label="kernel", precision=0, elem_id="block-kernel")
        c["strides"] = gr.Number(1, label="strides", precision=0, elem_id="block-strides")
        c["padding"] = gr.Dropdown(list(PADDINGS), value="same", label="padding",
                                   elem_id="block-padding")  # fmt: skip
        c["activation"] = gr.Dropdown(list(ACTIVATIONS), value="relu", label="activation")
        c["batch_norm"] = gr.Checkbox(False, label="batch norm")
        c["pool"] = gr.Dropdown(list(POOLS), value="max", label="pool", elem_id="block-pool")
        c["pool_size"] = gr.Number(2, label="pool size", precision=0, elem_id="block-pool-size")
        c["dropout"] = gr.Number(0.0, label="dropout")
        c["residual"] = gr.Checkbox(False, label="residual")
    with gr.Row():
        c["position"] = gr.Number(0, label="block # (0: end)", precision=0,
                                  elem_id="block-position")  # fmt: skip
        for action in ("add", "replace", "remove", "up", "down", "load"):
            c[action] = gr.Button(action.capitalize(), elem_id=f"block-{action}")
    c["blocks_text"] = gr.Textbox(label="Blocks (one per line, compact grammar; editable)",
                                  lines=4, elem_id="model-blocks")  # fmt: skip
    c["apply_text"] = gr.Button("Apply text", elem_id="model-apply-text")
    c["status"] = gr.Textbox(label="Forward-pass check", interactive=False,
                             elem_id="model-status")  # fmt: skip
    c["layers"] = gr.Dataframe(label="Layers", interactive=False, elem_id="model-layers")
    gr.Markdown("Head and training settings (the command line's defaults and checks)")
    with gr.Row():
        c["dense"] = gr.Textbox(_dense_text(defaults), label="dense head (e.g. 128-d0.3, none)",
                                elem_id="model-dense")  # fmt: skip
        c["training_type"] = gr.Dropdown(list(CHOICES["TRAINING_TYPE"]),
                                         value=defaults["TRAINING_TYPE"], label="training type")
        c["epochs"] = gr.Number(defaults["EPOCHS"], label="epochs", precision=0,
                                elem_id="model-epochs")  # fmt: skip
        c["batch"] = gr.Number(defaults["BATCH_SIZE"], label="batch size", precision=0,
                               elem_id="model-batch")  # fmt: skip
        c["optimizer"] = gr.Dropdown(list(CHOICES["OPTIMIZER"]), value=defaults["OPTIMIZER"],
                                     label="optimizer")  # fmt: skip
        c["lr"] = gr.Number(defaults["LEARNING_RATE"], label="learning rate", elem_id="model-lr")
    with gr.Row():
        c["flip"] = gr.Checkbox(defaults["AUG_HORIZONTAL_FLIP"], label="horizontal flip",
                                elem_id="model-flip")  # fmt: skip
        c["zoom"] = gr.Number(defaults["AUG_ZOOM"], label="zoom", elem_id="model-zoom")
        c["translation"] = gr.Number(defaults["AUG_TRANSLATION"], label="translation",
                                     elem_id="model-translation")  # fmt: skip
        c["rotation"] = gr.Number(defaults["AUG_ROTATION"], label="rotation")
        c["seed"] = gr.Number(defaults["SEED"], label="seed", precision=0)
    return c


def _dense_text(defaults: dict[str, Any]) -> str:
    from cnnhub.custom import format_dense

    return format_dense(defaults["NUM_NODES"], defaults["NUM_DROPOUTS"])


def _train_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["name"] = gr.Textbox("", label="Run name (empty: the model's name, numbered)",
                               elem_id="train-name")  # fmt: skip
        c["start"] = gr.Button("Start", variant="primary", elem_id="train-start")
        c["stop"] = gr.Button("Stop", variant="stop", elem_id="train-stop")
        c["resume"] = gr.Button("Resume", elem_id="train-resume")
        c["config"] = gr.DownloadButton("Download config", value=None, elem_id="train-config")
    c["status"] = gr.Textbox(label="Status", interactive=False, elem_id="train-status")
    c["epochs"] = gr.Dataframe(label="Per-epoch table", interactive=False, elem_id="train-epochs")
    c["curves"] = gr.Image(label="Loss and accuracy", type="filepath", interactive=False,
                           elem_id="train-curves", height=300)  # fmt: skip
    c["console"] = gr.Textbox(label="Console", lines=12, max_lines=12, interactive=False,
                              autoscroll=True, elem_id="train-console")  # fmt: skip
    c["timer"] = gr.Timer(TICK_SECONDS)
    return c


def _runs_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    c["refresh"] = gr.Button("Refresh", elem_id="runs-refresh")
    c["message"] = gr.Textbox(label="Status", interactive=False, elem_id="runs-status")
    c["board"] = gr.Dataframe(label="Leaderboard", interactive=False, elem_id="runs-board")
    with gr.Row():
        c["run"] = gr.Dropdown(choices=[], label="Run", elem_id="runs-run")
        c["epoch"] = gr.Dropdown(choices=[], label="Epoch (default: best)", elem_id="runs-epoch")
    c["best"] = gr.Textbox(label="Best weights and threshold", interactive=False,
                           elem_id="runs-best")  # fmt: skip
    with gr.Row():
        c["curves"] = gr.Image(label="Curves", type="filepath", interactive=False, height=260)
        c["thresholds_png"] = gr.Image(label="Precision and coverage against threshold",
                                       type="filepath", interactive=False, height=260)
    c["epochs"] = gr.Dataframe(label="Per-epoch table", interactive=False, elem_id="runs-epochs")
    with gr.Row():
        c["confusion"] = gr.Dataframe(label="Confusion matrix (threshold 0)", interactive=False)
        c["per_class"] = gr.Dataframe(label="Per class at the deploy threshold",
                                      interactive=False, elem_id="runs-per-class")
    c["thresholds"] = gr.Dataframe(label="By threshold", interactive=False)
    c["errors"] = gr.Gallery(label="Most confident errors", columns=8, height=220)
    return c


def _try_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["run"] = gr.Dropdown(choices=[], label="Run", elem_id="try-run")
        c["upload"] = gr.File(label="Image", file_count="single", type="filepath",
                              elem_id="try-upload")  # fmt: skip
        c["predict"] = gr.Button("Predict", variant="primary", elem_id="try-predict")
    c["status"] = gr.Textbox(label="Prediction", interactive=False, elem_id="try-status")
    with gr.Row():
        c["top"] = gr.Dataframe(label="Top classes", interactive=False, elem_id="try-top")
        c["image"] = gr.Image(label="Image", interactive=False, height=240)
        c["gradcam"] = gr.Image(label="Grad-CAM", interactive=False, height=240,
                                elem_id="try-gradcam")  # fmt: skip
    with gr.Row():
        c["layer"] = gr.Dropdown(choices=[], label="Feature maps of layer", elem_id="try-layer")
        c["page"] = gr.Number(1, label="channel page", precision=0, minimum=1,
                              elem_id="try-page")  # fmt: skip
        c["maps_button"] = gr.Button("Show feature maps", elem_id="try-maps")
    c["maps_caption"] = gr.Textbox(label="Feature maps", interactive=False,
                                   elem_id="try-maps-caption")  # fmt: skip
    c["maps"] = gr.Image(label="Channels", type="filepath", interactive=False, height=360)
    return c


def _export_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["run"] = gr.Dropdown(choices=[], label="Run", elem_id="export-run")
        c["format"] = gr.Dropdown(export_page.formats(), value="onnx", label="Format",
                                  elem_id="export-format")  # fmt: skip
        c["export"] = gr.Button("Export", variant="primary", elem_id="export-button")
    c["status"] = gr.Textbox(label="Check", lines=3, interactive=False, elem_id="export-status")
    c["file"] = gr.File(label="Download", interactive=False, elem_id="export-file")
    return c


# ---------------------------------------------------------------------------- wiring


def _run_list(workspace: Workspace, current: str | None):
    """The run choice refreshed: the same run if it still exists, else the newest."""
    names = runs_page.run_names(workspace)
    value = current if current in names else (names[0] if names else None)
    return gr.Dropdown(choices=names, value=value)


def _board(workspace: Workspace):
    board, message = runs_page.leaderboard(workspace)
    return board, message or f"{len(board)} evaluated run(s)"


def _wire_data(workspace: Workspace, c: dict[str, Any], report_state) -> None:
    outputs = [c["status"], c["counts"], c["report"], c["samples"], report_state]

    @guarded(c["status"])
    def inspect(train, valid, test, val_split):
        choice = data_page.choose(workspace, train, valid, test, val_split)
        report = data_page.inspect(choice)
        summary = (
            f"{len(report.inspection.class_names)} classes; "
            + ", ".join(f"{s.name} {s.total} images" for s in report.inspection.splits)
        )
        return {c["status"]: summary, c["counts"]: report.counts, c["report"]: report.text,
                c["samples"]: report.samples, report_state: report}  # fmt: skip

    c["inspect"].click(
        inspect, [c["train"], c["valid"], c["test"], c["val_split"]], outputs,
        concurrency_limit=1,
    )  # fmt: skip

    def refresh():
        folders = workspace.data_folders()
        return [gr.Dropdown(choices=folders) for _ in range(3)]

    c["refresh"].click(refresh, None, [c["train"], c["valid"], c["test"]])


MODEL_FORM = ("filters", "kernel", "strides", "padding", "activation", "batch_norm", "pool",
              "pool_size", "dropout", "residual")  # fmt: skip
SETTINGS = {
    "MODEL_NAME": "model", "IMG_HEIGHT": "height", "IMG_WIDTH": "width", "DENSE": "dense",
    "TRAINING_TYPE": "training_type", "EPOCHS": "epochs", "BATCH_SIZE": "batch",
    "OPTIMIZER": "optimizer", "LEARNING_RATE": "lr", "AUG_HORIZONTAL_FLIP": "flip",
    "AUG_ZOOM": "zoom", "AUG_TRANSLATION": "translation", "AUG_ROTATION": "rotation",
    "SEED": "seed",
}  # fmt: skip


def _settings(values: tuple, data_report) -> dict[str, Any]:
    settings = dict(zip(SETTINGS, values))
    if data_report is not None:
        settings.update(data_report.choice.config())
    return settings


def _wire_model(m: dict[str, Any], d: dict[str, Any], blocks_state, report_state) -> None:
    form = [m[k] for k in MODEL_FORM]
    settings = [m[v] for v in SETTINGS.values()]

    def check(blocks, report, *values):
        config_values = _settings(values, report)
        try:
            config = train_page.page_config(config_values, blocks)
        except CnnhubError as exc:
            return None, one_line(exc)
        num_classes = len(report.inspection.class_names) if report is not None else 2
        image = _first_image(report)
        inspection = report.inspection if report is not None else None
        return model_page.check_model(config, num_classes, image, inspection)

    def edit(action):
        @guarded(m["status"])
        def handler(blocks, position, *values):
            block = model_page.block_from_form(*values) if action in ("add", "replace") else None
            new = model_page.edit_blocks(blocks, action, position, block)
            return {blocks_state: new, m["blocks_text"]: model_page.blocks_text(new)}

        return handler

    def after_edit(blocks, report, *values):
        table, message = check(blocks, report, *values)
        return {m["layers"]: table, m["status"]: message} if table is not None else {
            m["status"]: message}

    check_inputs = [blocks_state, report_state, *settings]
    check_outputs = [m["layers"], m["status"]]
    for action in ("add", "replace", "remove", "up", "down"):
        m[action].click(
            edit(action), [blocks_state, m["position"], *form],
            [blocks_state, m["blocks_text"], m["status"]], concurrency_limit=1,
        ).success(after_edit, check_inputs, check_outputs, concurrency_limit=1)  # fmt: skip

    @guarded(m["status"])
    def load(blocks, position):
        values = model_page.blocks_form_values(blocks, position)
        if values is None:
            raise CnnhubError(f"No block number {position}: the blocks are numbered from 1.")
        return dict(zip(form, values))

    m["load"].click(load, [blocks_state, m["position"]], [*form, m["status"]])

    @guarded(m["status"])
    def apply_text(text):
        blocks = model_page.parse_blocks_text(text)
        return {blocks_state: blocks, m["blocks_text"]: model_page.blocks_text(blocks)}

    m["apply_text"].click(
        apply_text, [m["blocks_text"]], [blocks_state, m["blocks_text"], m["status"]]
    ).success(after_edit, check_inputs, check_outputs, concurrency_limit=1)
    m["model"].change(after_edit, check_inputs, check_outputs, concurrency_limit=1)

    @guarded(m["status"])
    def pick(evt: gr.SelectData):
        return {m["model"]: model_page.backbone_at(evt.index[0])}

    m["registry"].select(pick, None, [m["model"], m["status"]])
    for key in ("height", "width", "dense"):
        m[key].submit(after_edit, check_inputs, check_outputs, concurrency_limit=1)


def _first_image(report) -> str | None:
    return None if report is None else report.first_image


def _wire_train(workspace, trainer, t, m, blocks_state, report_state, current_run, shown_log):
    settings = [m[v] for v in SETTINGS.values()]

    @guarded(t["status"])
    def start(name, blocks, report, *values):
        if report is None:
            raise CnnhubError("Choose and inspect the data on the Data page first.")
        config = train_page.page_config(_settings(values, report), blocks)
        started = train_page.start(workspace, trainer, config, name)
        return {current_run: started.run_dir.name, t["config"]: str(started.config_file),
                t["status"]: f"{started.run_dir.name}: started", shown_log: 0.0}  # fmt: skip

    t["start"].click(
        start, [t["name"], blocks_state, report_state, *settings],
        [current_run, t["config"], t["status"], shown_log], concurrency_limit=1,
    )  # fmt: skip

    @guarded(t["status"])
    def stop(name):
        if not name or not trainer.stop(workspace.repository / name):
            raise CnnhubError("No run of this studio is training now.")
        return {t["status"]: f"{name}: stopping (resumable)"}

    t["stop"].click(stop, [current_run], [t["status"]])

    @guarded(t["status"])
    def resume(name, typed):
        name = name or typed
        train_page.resume(workspace, trainer, name)
        return {current_run: name, t["status"]: f"{name}: resumed", shown_log: 0.0}

    t["resume"].click(resume, [current_run, t["name"]], [current_run, t["status"], shown_log],
                      concurrency_limit=1)  # fmt: skip

    def tick(name, shown):
        if not name:
            return {}
        try:
            view = train_page.live_view(workspace, trainer, name)
        except CnnhubError as exc:
            return {t["status"]: one_line(exc)}
        out = {t["status"]: view.status, t["console"]: view.console}
        if view.updated != shown:
            out.update({t["epochs"]: view.epochs, shown_log: view.updated,
                        t["curves"]: str(view.curves) if view.curves else None})  # fmt: skip
        return out

    t["timer"].tick(
        tick, [current_run, shown_log],
        [t["status"], t["console"], t["epochs"], t["curves"], shown_log],
        show_progress="hidden",
    )  # fmt: skip


def _wire_runs(workspace: Workspace, c: dict[str, Any]) -> None:
    def refresh(current):
        board, message = _board(workspace)
        return board, message, _run_list(workspace, current)

    c["refresh"].click(refresh, c["run"], [c["board"], c["message"], c["run"]])

    @guarded(c["message"])
    def show(name, epoch):
        if not name:
            return {}
        detail = runs_page.run_detail(workspace, name, epoch or None)
        return {
            c["epoch"]: gr.Dropdown(choices=[str(e) for e in detail.epoch_choices],
                                    value=str(detail.epoch) if detail.epoch else None),
            c["best"]: detail.best_text,
            c["curves"]: str(detail.curves) if detail.curves else None,
            c["epochs"]: detail.epochs,
            c["thresholds_png"]: str(detail.thresholds_png) if detail.thresholds_png else None,
            c["thresholds"]: detail.thresholds,
            c["confusion"]: detail.confusion,
            c["per_class"]: detail.per_class,
            c["errors"]: detail.errors,
            c["message"]: f"{detail.name}: epoch {detail.epoch}",
        }  # fmt: skip

    outputs = [c[k] for k in ("epoch", "best", "curves", "epochs", "thresholds_png",
                              "thresholds", "confusion", "per_class", "errors", "message")]
    c["run"].change(lambda name: show(name, None), [c["run"]], outputs)
    c["epoch"].input(show, [c["run"], c["epoch"]], outputs)


def _wire_try(workspace: Workspace, c: dict[str, Any]) -> None:
    @guarded(c["status"])
    def predict(name, upload):
        result = try_page.predict(workspace, name, upload)
        overlay, caption = try_page.gradcam(workspace, name, upload)
        layers = try_page.conv_layer_names(workspace, name)
        return {c["status"]: result.text, c["top"]: result.top, c["image"]: result.image,
                c["gradcam"]: overlay, c["maps_caption"]: caption,
                c["layer"]: gr.Dropdown(choices=layers, value=layers[0] if layers else None)}

    c["predict"].click(
        predict, [c["run"], c["upload"]],
        [c["status"], c["top"], c["image"], c["gradcam"], c["maps_caption"], c["layer"]],
        concurrency_limit=1,
    )  # fmt: skip

    @guarded(c["maps_caption"])
    def maps(name, upload, layer, page):
        path, caption = try_page.feature_map_page(workspace, name, upload, layer, page)
        return {c["maps"]: str(path), c["maps_caption"]: caption}

    c["maps_button"].click(maps, [c["run"], c["upload"], c["layer"], c["page"]],
                           [c["maps"], c["maps_caption"]], concurrency_limit=1)  # fmt: skip


def _wire_export(workspace: Workspace, c: dict[str, Any]) -> None:
    @guarded(c["status"])
    def export(name, fmt):
        result = export_page.export(workspace, name, fmt)
        return {c["status"]: result.text, c["file"]: str(result.path)}

    c["export"].click(export, [c["run"], c["format"]], [c["status"], c["file"]],
                      concurrency_limit=1)  # fmt: skip


def launch(
    workspace: Workspace, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
    trainer: Trainer | None = None,
):  # fmt: skip
    """Serve the studio on ``host:port``; returns the Blocks (and does not block when
    ``block`` is false: the caller closes it)."""
    trainer = trainer or Trainer(cwd=workspace.root)
    # Read every run's leaderboard row now, so that the Runs page answers from memory.
    threading.Thread(target=runs_page.leaderboard, args=(workspace,), daemon=True).start()
    app = build_app(workspace, trainer)
    app.queue(default_concurrency_limit=4)
    app.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True,
        theme=theme(), max_file_size=MAX_UPLOAD, allowed_paths=[str(workspace.root)],
        ssr_mode=False, show_error=False, footer_links=[],
    )  # fmt: skip
    if block:
        trainer.stop_all()
    app.studio_trainer = trainer  # type: ignore[attr-defined]
    return app
