"""Resolve a run's configuration: config.py defaults < config file < command-line flags.

The defaults and their help texts live only in the top-level ``config.py``; this module reads
that file, derives every flag from it (typed by the default's type), merges the three layers,
and validates the result. It never imports TensorFlow, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

from cnnhub.errors import CnnhubError

CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.py"

# Allowed values of the enumerated keys.
CHOICES: dict[str, tuple[str, ...]] = {
    "POOLING": ("avg", "max", "flatten"),
    "COLOR_MODE": ("rgb", "grayscale"),
    "TRAINING_TYPE": ("auto", "train_all", "freeze_all", "freeze_some", "fine_tune"),
    "OPTIMIZER": ("sgd", "adam", "adamw", "rmsprop"),
    "LR_SCHEDULE": ("constant", "step", "cosine", "plateau"),
    "LOSS": ("categorical_crossentropy", "categorical_focal_crossentropy"),
    "EARLY_STOPPING_MONITOR": ("val_loss", "val_accuracy", "loss", "accuracy"),
    "EVAL_TOP_METRIC": ("val_accuracy", "val_loss"),
    "BEST_WEIGHT_RULE": ("macro_f1", "coverage_at_precision", "min_class_recall"),
    "STRATEGY": ("auto", "one_device", "mirrored", "multi_worker"),
    "FEATURE_CACHE": ("auto", "true", "false"),
    # "auto" + cnnhub.sources.DATA_FORMATS (not imported here: it loads pandas)
    "DATA_FORMAT": ("auto", "folder", "csv_pixels", "csv_paths", "idx", "cifar_bin", "npz"),
}

# The seed hub's short flags (and a few long aliases) for keys whose flag is not just the key.
FLAG_ALIASES: dict[str, tuple[str, ...]] = {
    "DATA_DIR_TRAIN": ("-dtrain",),
    "DATA_DIR_VALID": ("-dvalid",),
    "DATA_DIR_TEST": ("-dtest",),
    "SAVE_LOCATION": ("-sl", "--save_loc"),
    "MODEL_NAME": ("-m",),
    "IMG_HEIGHT": ("-height", "--height"),
    "IMG_WIDTH": ("-width", "--width"),
    "EPOCHS": ("-e",),
    "BATCH_SIZE": ("-b",),
    "TRAINING_TYPE": ("-tt",),
    "WEIGHTS": ("-w",),
    "START_TRAIN": ("-start",),
    "POST_EVAL": ("-post",),
    "LEARNING_RATE": ("-lr",),
    "ITERATION_NAME": ("--run_name",),
    "CUSTOM_CONV_BLOCKS": ("--layers",),
}

DENSE_ACTIVATIONS = ("relu", "gelu", "swish", "elu", "tanh", "sigmoid", "leaky_relu")

# Keys that take a whole number or `auto` (resolved per model when a run starts, see
# cnnhub.model_defaults).
AUTO_INT_KEYS = frozenset({"IMG_HEIGHT", "IMG_WIDTH"})
AUTO = "auto"

# Keys whose value is structured (YAML on the command line) rather than a plain scalar or list.
STRUCTURED_KEYS = frozenset({"CUSTOM_CONV_BLOCKS"})

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def parse_bool(text: str | bool | int) -> bool:
    """Read true/false/1/0/yes/no/on/off in any case."""
    if isinstance(text, bool):
        return text
    if isinstance(text, int) and text in (0, 1):
        return bool(text)
    lowered = str(text).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true/false, 1/0, yes/no or on/off. Received: {text!r}")


def load_defaults(path: Path = CONFIG_PATH) -> tuple[dict[str, Any], dict[str, str]]:
    """Read ``config.py``: its UPPER_CASE assignments and the comment lines above each one.

    The file is parsed, not executed, so the defaults are plain literals and the comments
    become the flags' help texts.
    """
    if not path.is_file():
        raise CnnhubError(f"Cannot find the defaults file {path}; run cnnhub from its checkout.")
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    defaults: dict[str, Any] = {}
    helps: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Name) and target.id.isupper()):
            continue
        defaults[target.id] = ast.literal_eval(node.value)
        comment: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].lstrip().startswith("#") and "---" not in lines[row]:
            comment.insert(0, lines[row].lstrip("# ").rstrip())
            row -= 1
        helps[target.id] = " ".join(comment)
    return defaults, helps


def _element_type(key: str, default: list) -> type:
    if default:
        return type(default[0])
    return float if "DROPOUT" in key or "THRESHOLD" in key else int


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default``; raise CnnhubError naming the key."""
    try:
        if key in STRUCTURED_KEYS:
            return value
        if key in AUTO_INT_KEYS:
            return auto_or_int(value)
        if isinstance(default, bool):
            return parse_bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError("not a number")
            return float(value)
        if isinstance(default, str):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError("not a string")
            return str(value)
        if isinstance(default, list):
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            if not isinstance(value, (list, tuple)):
                raise ValueError("not a list")
            element = _element_type(key, default)
            return [element(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise CnnhubError(
            f"`{key.lower()}` must be of type {_type_name(key, default)} ({exc}). "
            f"Received: {key.lower()}={value!r}"
        ) from None
    return value


def auto_or_int(value: Any) -> int | str:
    """A whole number, or the word ``auto`` (any case) for the keys of AUTO_INT_KEYS."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("not a whole number or auto")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError("not a whole number or auto") from None


def _type_name(key: str, default: Any) -> str:
    if key in AUTO_INT_KEYS:
        return "int or auto"
    if isinstance(default, list):
        return f"list of {_element_type(key, default).__name__}"
    return type(default).__name__


def _match_key(name: str, defaults: dict[str, Any], source: str) -> str:
    key = name.upper().replace("-", "_")
    if key in defaults:
        return key
    close = difflib.get_close_matches(key, list(defaults), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(k.lower() for k in close)}?" if close else ""
    raise CnnhubError(f"Unknown config key `{name}` in {source}.{hint} Received: {name}")


def read_config_file(path: str | Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """Read a YAML or JSON config file; keys match config.py's case-insensitively."""
    path = Path(path)
    if not path.is_file():
        raise CnnhubError(f"Config file not found: {path}. Pass an existing YAML or JSON file.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CnnhubError(f"Cannot parse config file {path}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CnnhubError(
            f"Config file {path} must hold a mapping of keys to values. "
            f"Received: {type(data).__name__}"
        )
    return {_match_key(str(k), defaults, str(path)): v for k, v in data.items()}


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one stderr line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def build_parser(prog: str = "run_training.py") -> argparse.ArgumentParser:
    """The training command line: one typed flag per config key plus the action flags."""
    defaults, helps = load_defaults()
    parser = _OneLineParser(
        prog=prog,
        description="Train an image classifier on folder-per-class images. "
        "Defaults come from config.py; every flag overrides one config key.",
        argument_default=argparse.SUPPRESS,
    )
    actions = parser.add_argument_group("actions")
    actions.add_argument("-c", "--config", help="YAML or JSON file of config keys (any case).")
    actions.add_argument(
        "--list_models", action="store_true", help="Print the model registry and exit."
    )
    actions.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="Continue a stopped or killed run after its last completed epoch, with its saved "
        "configuration (only -e/--epochs may change, to train longer).",
    )
    actions.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the run folder named by --run_name if it exists (default: refuse).",
    )
    actions.add_argument(
        "--dense",
        metavar="SPEC",
        help='The dense head in one line, setting num_nodes and num_dropouts: "256-d0.5" or '
        '"512-d0.5-256-d0.3" (units, each optionally followed by d<dropout>); "none" for no '
        "hidden layer.",
    )
    actions.add_argument(
        "--summary",
        action="store_true",
        help="Build the model, print its summary (layers, output shapes, params) and exit.",
    )
    keys = parser.add_argument_group("config keys (defaults shown are config.py's)")
    for key, default in defaults.items():
        names = [*FLAG_ALIASES.get(key, ()), f"--{key.lower()}"]
        help_text = helps.get(key, "")
        shown = json.dumps(default) if not isinstance(default, str) else repr(default)
        kwargs: dict[str, Any] = {"dest": key, "help": f"{help_text} [default: {shown}]"}
        if key in CHOICES:
            kwargs["choices"] = CHOICES[key]
        if key in STRUCTURED_KEYS:
            kwargs["type"] = _yaml_value
            kwargs["metavar"] = "YAML"
        elif key in AUTO_INT_KEYS:
            kwargs["type"] = _auto_int_flag
            kwargs["metavar"] = "INT|auto"
        elif isinstance(default, bool):
            kwargs["type"] = _bool_flag
            kwargs["metavar"] = "BOOL"
        elif isinstance(default, list):
            kwargs["nargs"] = "*"
            kwargs["type"] = _element_type(key, default)
        else:
            kwargs["type"] = type(default)
        keys.add_argument(*names, **kwargs)
    return parser


def _bool_flag(text: str) -> bool:
    try:
        return parse_bool(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _auto_int_flag(text: str) -> int | str:
    try:
        return auto_or_int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}. Received: {text!r}") from None


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def resolve(argv: list[str] | None = None, prog: str = "run_training.py") -> tuple[dict, dict]:
    """Parse ``argv`` and return ``(config, actions)``.

    ``config`` holds every key of config.py, resolved and validated; ``actions`` holds the
    non-config flags (``config``, ``list_models``, ``summary``, ``resume``, ``overwrite``) and
    ``given``, the config keys set by flags.
    """
    defaults, _ = load_defaults()
    namespace = vars(build_parser(prog).parse_args(argv))
    actions = {
        "config": namespace.pop("config", None),
        "list_models": namespace.pop("list_models", False),
        "summary": namespace.pop("summary", False),
        "resume": namespace.pop("resume", None),
        "overwrite": namespace.pop("overwrite", False),
    }
    dense = namespace.pop("dense", None)
    if dense is not None:
        from cnnhub.custom import parse_dense

        namespace["NUM_NODES"], namespace["NUM_DROPOUTS"] = parse_dense(dense, name="dense")
    actions["given"] = sorted(namespace)  # config keys set by flags
    config = dict(defaults)
    if actions["config"]:
        for key, value in read_config_file(actions["config"], defaults).items():
            config[key] = _coerce(key, value, defaults[key])
    config.update(namespace)
    validate(config, defaults)
    return config, actions


def validate(config: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
    """Check types, allowed values, ranges and consistency; raise CnnhubError on the first fault."""
    defaults = defaults if defaults is not None else load_defaults()[0]
    unknown = set(config) - set(defaults)
    if unknown:
        _match_key(sorted(unknown)[0], defaults, "the configuration")
    for key, default in defaults.items():
        config[key] = _coerce(key, config.get(key, default), default)
    for key, allowed in CHOICES.items():
        if config[key] not in allowed:
            raise CnnhubError(
                f"`{key.lower()}` must be one of {', '.join(allowed)}. "
                f"Received: {key.lower()}={config[key]!r}"
            )
    positive = ("EPOCHS", "BATCH_SIZE", "IMG_HEIGHT", "IMG_WIDTH", "LEARNING_RATE")
    for key in positive:
        if config[key] != AUTO and config[key] <= 0:
            raise CnnhubError(
                f"`{key.lower()}` must be greater than 0. Received: {key.lower()}={config[key]}"
            )
    if len(config["NUM_NODES"]) != len(config["NUM_DROPOUTS"]):
        raise CnnhubError(
            "`num_nodes` and `num_dropouts` must have the same length (one dropout rate per "
            f"dense layer). Received: num_nodes={config['NUM_NODES']}, "
            f"num_dropouts={config['NUM_DROPOUTS']}"
        )
    if any(n <= 0 for n in config["NUM_NODES"]):
        raise CnnhubError(
            f"`num_nodes` must be positive unit counts. Received: num_nodes={config['NUM_NODES']}"
        )
    if any(not 0 <= d < 1 for d in config["NUM_DROPOUTS"]):
        raise CnnhubError(
            "`num_dropouts` must be rates in [0, 1). "
            f"Received: num_dropouts={config['NUM_DROPOUTS']}"
        )
    if (
        config["TRAINING_TYPE"] == "fine_tune"
        and not 0 < config["FINE_TUNE_AFTER"] < config["EPOCHS"]
    ):
        raise CnnhubError(
            "`fine_tune_after` must be between 1 and epochs - 1 so both fine_tune phases run. "
            f"Received: fine_tune_after={config['FINE_TUNE_AFTER']}, epochs={config['EPOCHS']}"
        )
    if config["NUMBER_OF_LAYERS_TO_FREEZE"] < 0 or config["FINE_TUNE_LAYERS"] < 0:
        raise CnnhubError(
            "`number_of_layers_to_freeze` and `fine_tune_layers` must be >= 0. Received: "
            f"number_of_layers_to_freeze={config['NUMBER_OF_LAYERS_TO_FREEZE']}, "
            f"fine_tune_layers={config['FINE_TUNE_LAYERS']}"
        )
    _check_head_and_colour(config)
    _check_evaluation(config)
    check_data_keys(config)


def dense_activations(config: dict[str, Any]) -> list[str]:
    """DENSE_ACTIVATION as one activation per dense layer of the head."""
    names = [a.strip() for a in config["DENSE_ACTIVATION"].split(",") if a.strip()]
    return names * len(config["NUM_NODES"]) if len(names) == 1 else names


def _check_head_and_colour(config: dict[str, Any]) -> None:
    activations = dense_activations(config)
    unknown = [a for a in activations if a not in DENSE_ACTIVATIONS]
    if unknown or len(activations) != len(config["NUM_NODES"]):
        raise CnnhubError(
            f"`dense_activation` must be one of {', '.join(DENSE_ACTIVATIONS)}, or one of them "
            "per dense layer separated by commas (as many as num_nodes). Received: "
            f"dense_activation={config['DENSE_ACTIVATION']!r}, num_nodes={config['NUM_NODES']}"
        )
    models = [m.strip().lower() for m in config["MODEL_NAME"].split(",")]
    if config["COLOR_MODE"] == "grayscale" and any(m != "custom" for m in models):
        raise CnnhubError(
            "`color_mode` grayscale is for custom nets only: pretrained backbones expect RGB "
            "(grayscale images are converted for them automatically). Received: "
            f"color_mode=grayscale, model_name={config['MODEL_NAME']}"
        )


def _check_evaluation(config: dict[str, Any]) -> None:
    if not re.fullmatch(r"all|top:[1-9]\d*", config["EVAL_WEIGHTS"]):
        raise CnnhubError(
            "`eval_weights` must be `all` or `top:N` with N >= 1. "
            f"Received: eval_weights={config['EVAL_WEIGHTS']!r}"
        )
    if any(not 0 <= t <= 1 for t in config["EVAL_THRESHOLDS"]):
        raise CnnhubError(
            "`eval_thresholds` must be numbers between 0 and 1. "
            f"Received: eval_thresholds={config['EVAL_THRESHOLDS']}"
        )
    if not 0 <= config["BEST_MIN_PRECISION"] <= 1:
        raise CnnhubError(
            "`best_min_precision` must be between 0 and 1. "
            f"Received: best_min_precision={config['BEST_MIN_PRECISION']}"
        )


def check_image_shape(shape: list[int]) -> None:
    """IMAGE_SHAPE: [] or [height, width] or [height, width, channels] (channels 1 or 3)."""
    if shape and (
        len(shape) not in (2, 3) or min(shape) <= 0 or (len(shape) == 3 and shape[2] not in (1, 3))
    ):
        raise CnnhubError(
            "`image_shape` must be empty, height width, or height width channels (channels 1 or "
            f"3), all positive. Received: image_shape={shape}"
        )


def check_data_keys(config: dict[str, Any]) -> None:
    """The data-source, split and imbalance keys (DATA_FORMAT ... SCAN_CACHE)."""
    from cnnhub.class_weights import parse_class_weight

    if not 0 <= config["VAL_SPLIT"] < 1:
        raise CnnhubError(
            "`val_split` must be a fraction in [0, 1), e.g. 0.2 (0 = use data_dir_valid). "
            f"Received: val_split={config['VAL_SPLIT']}"
        )
    if config["FOLDS"] < 0 or config["FOLDS"] == 1:
        raise CnnhubError(
            f"`folds` must be 0 (off) or at least 2. Received: folds={config['FOLDS']}"
        )
    if config["FOLDS"] and (config["VAL_SPLIT"] or config["SPLIT_FILE"]):
        raise CnnhubError(
            "`folds` makes its own validation sets; leave `val_split` and `split_file` unset. "
            f"Received: folds={config['FOLDS']}, val_split={config['VAL_SPLIT']}, "
            f"split_file={config['SPLIT_FILE']!r}"
        )
    if config["DEV"] < 0:
        raise CnnhubError(
            f"`dev` must be 0 (off) or a number of images per class. Received: dev={config['DEV']}"
        )
    check_image_shape(config["IMAGE_SHAPE"])
    weighting = parse_class_weight(config["CLASS_WEIGHT"])
    if config["OVERSAMPLE"] and weighting != "none":
        raise CnnhubError(
            "`oversample` and `class_weight` both correct for class imbalance; use one. "
            f"Received: oversample=True, class_weight={config['CLASS_WEIGHT']!r}"
        )
    if config["CACHE_DIR"] and not config["CACHE"]:
        raise CnnhubError(
            "`cache_dir` says where the cache goes, but `cache` is false; pass --cache true or "
            f"leave cache_dir empty. Received: cache=False, cache_dir={config['CACHE_DIR']!r}"
        )


def format_config(config: dict[str, Any]) -> str:
    """The resolved configuration as aligned ``key = value`` lines, for the start of a run."""
    width = max(len(k) for k in config)
    return "\n".join(f"  {k.lower():<{width}} = {json.dumps(v)}" for k, v in config.items())


def flags_markdown() -> str:
    """Every flag of the training command as a Markdown table (the README embeds this)."""
    parser = build_parser()
    rows = ["| flag | config key | help |", "| --- | --- | --- |"]
    for group in parser._action_groups[2:]:
        for action in group._group_actions:
            flags = ", ".join(f"`{o}`" for o in action.option_strings)
            key = f"`{action.dest}`" if action.dest.isupper() else ""
            text = (action.help or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {flags} | {key} | {text} |")
    return "\n".join(rows)
