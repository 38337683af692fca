"""Resolve a run's configuration: defaults < config.py < config file < command-line flags.

Every key, its default, valid range and help text live only in ``cnnhub/defaults.py`` (shipped
with the package). A source checkout's top-level ``config.py`` sets the user's own defaults on
top; its relative paths are relative to its folder. This module reads both files (parsed, not
executed), derives every flag from the defaults (typed by the default's type), merges the layers
and validates the result. It never imports TensorFlow, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnhub.cli import OneLineParser
from cnnhub.configuration import Config, as_config
from cnnhub.data.augment import check_augmentation
from cnnhub.data.formats import DATA_FORMATS
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.rules import RULES
from cnnhub.evaluation.tta import parse_tta

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULTS_PATH = PACKAGE_DIR / "defaults.py"

# Keys holding a file or folder: relative values in config.py are relative to its folder.
PATH_KEYS = frozenset(
    {
        "DATA_DIR_TRAIN",
        "DATA_DIR_VALID",
        "DATA_DIR_TEST",
        "SAVE_LOCATION",
        "RUN_DIR",
        "SPLIT_FILE",
        "CLASS_NAMES_FILE",
        "CACHE_DIR",
    }
)
# WEIGHTS is one of these words, or else a path (a run folder or a Keras weights file).
WEIGHTS_WORDS = ("auto", "imagenet", "none")

# A config file or YAML flag larger than this is refused unread; a parsed one may hold at most
# MAX_CONFIG_NODES values, counting each use of a YAML alias (anchors can nest exponentially).
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_NODES = 100_000

# Allowed values of the enumerated keys.
CHOICES: dict[str, tuple[str, ...]] = {
    "POOLING": ("avg", "max", "flatten"),
    "COLOR_MODE": ("rgb", "grayscale"),
    "TRAINING_TYPE": ("auto", "train_all", "freeze_all", "freeze_some", "fine_tune"),
    "OPTIMIZER": ("sgd", "adam", "adamw", "rmsprop"),
    "LR_SCHEDULE": ("constant", "step", "cosine", "plateau", "onecycle"),
    # LOSS and BEST_WEIGHT_RULE: every task's values; each task accepts its own (cnnhub.tasks).
    "TASK": ("single_label", "multi_label", "regression"),
    "LOSS": (
        "auto", "categorical_crossentropy", "categorical_focal_crossentropy",
        "binary_crossentropy", "binary_focal_crossentropy", "mse", "mae", "huber",
    ),
    "EARLY_STOPPING_MONITOR": ("val_loss", "val_accuracy", "loss", "accuracy", "val_mae", "mae"),
    "EVAL_TOP_METRIC": ("val_accuracy", "val_loss", "val_mae"),
    "BEST_WEIGHT_RULE": ("auto", *RULES, "mae", "rmse", "r2", "mape"),
    "CALIBRATE": ("none", "temperature"),
    "STRATEGY": ("auto", "one_device", "mirrored", "multi_worker"),
    "FEATURE_CACHE": ("auto", "true", "false"),
    "DATA_FORMAT": ("auto", *DATA_FORMATS),
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

# String keys whose flag may be given without a value, meaning this value (`--mlflow`).
FLAG_CONSTANTS = {"MLFLOW": "auto"}

# Keys whose value is structured (YAML on the command line) rather than a plain scalar or list.
STRUCTURED_KEYS = frozenset({"CUSTOM_CONV_BLOCKS"})

# Keys that take a whole number or `auto` (resolved per model when a run starts, see
# cnnhub.model_defaults).
AUTO_INT_KEYS = frozenset({"IMG_HEIGHT", "IMG_WIDTH"})
AUTO = "auto"

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


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric key: an interval, plus words it also accepts (``auto``)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    words: tuple[str, ...] = ()

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self.words
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):  # nan fails every comparison; inf is never a setting
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        def bound(x: float) -> str:
            return "inf" if math.isinf(x) else f"{x:g}" if x != int(x) else str(int(x))

        text = (
            f"{'(' if self.low_open else '['}{bound(self.low)}, "
            f"{bound(self.high)}{')' if self.high_open else ']'}"
        )
        return " or ".join([text, *self.words])


_RANGE = re.compile(
    r"#\s*range:\s*([\[(])\s*([-+\w.]+)\s*,\s*([-+\w.]+)\s*([\])])((?:\s+or\s+\w+)*)\s*$"
)


def _parse_range(comment: str, where: str) -> Range | None:
    if "range:" not in comment:
        return None
    match = _RANGE.search(comment)
    if not match:
        raise CnnhubError(
            f"{where}: a range must read `# range: [low, high]` (`(`/`)` for open ends, inf "
            f"allowed, then optionally `or <word>`). Received: {comment.strip()}"
        )
    opening, low, high, closing, words = match.groups()
    return Range(
        float(low), float(high), opening == "(", closing == ")", tuple(words.split()[1::2])
    )


@dataclass(frozen=True)
class ConfigSource:
    """What a config.py-style file says: values, the comment above each key, ranges."""

    values: dict[str, Any]
    helps: dict[str, str]
    ranges: dict[str, Range]


def read_config_source(path: Path) -> ConfigSource:
    """Parse a config.py-style file: its UPPER_CASE assignments of literals, the comment lines
    above each one (its help text) and a trailing ``# range: [low, high]`` comment."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise CnnhubError(
            f"Cannot read {path}: {' '.join(str(exc).split())}. Fix or restore the file. "
            f"Received: {path}"
        ) from None
    lines = source.splitlines()
    values: dict[str, Any] = {}
    helps: dict[str, str] = {}
    ranges: dict[str, Range] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Name) and target.id.isupper()):
            continue
        key = target.id
        try:
            values[key] = ast.literal_eval(node.value)
        except ValueError:
            raise CnnhubError(
                f"{path}, line {node.lineno}: `{key}` must be a plain value (a number, string, "
                f"true/false or a list of them). Received: {ast.get_source_segment(source, node)}"
            ) from None
        comment: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].lstrip().startswith("#") and "---" not in lines[row]:
            comment.insert(0, lines[row].lstrip("# ").rstrip())
            row -= 1
        helps[key] = " ".join(comment)
        trailing = lines[node.end_lineno - 1][node.end_col_offset :]
        found = _parse_range(trailing, f"{path}, line {node.end_lineno}")
        if found is not None:
            ranges[key] = found
    return ConfigSource(values, helps, ranges)


def checkout_config() -> Path | None:
    """The top-level ``config.py`` of the source checkout cnnhub runs from, if any.

    That is the folder holding the ``cnnhub`` package when it also holds ``run_training.py``:
    a clone, or an editable install of one. An installed package has no such file.
    """
    root = PACKAGE_DIR.parent
    if (root / "run_training.py").is_file() and (root / "config.py").is_file():
        return root / "config.py"
    return None


def _relative_to(folder: Path, key: str, value: Any) -> Any:
    """``value`` of a path key, resolved against ``folder`` when it is a relative path."""
    if not isinstance(value, str) or not value:
        return value
    if key == "WEIGHTS" and value.strip().lower() in WEIGHTS_WORDS:
        return value
    if key != "WEIGHTS" and key not in PATH_KEYS:
        return value
    path = Path(value).expanduser()
    return value if path.is_absolute() else str(folder / path)


def load_defaults(user_config: Path | None | bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    """The defaults of every key and their help texts.

    The packaged ``cnnhub/defaults.py`` with the checkout's ``config.py`` on top (see
    :func:`checkout_config`; pass ``user_config=False`` for the packaged defaults alone, or a
    path for another file of the same form). Relative paths in that file become paths under its
    folder, so a run does not depend on the current folder.
    """
    packaged = read_config_source(DEFAULTS_PATH)
    defaults = dict(packaged.values)
    path = checkout_config() if user_config is True else user_config or None
    if path is not None:
        folder = Path(path).resolve().parent
        for name, value in read_config_source(Path(path)).values.items():
            key = _match_key(name, defaults, str(path))
            defaults[key] = _relative_to(folder, key, value)
    return defaults, packaged.helps


def value_ranges() -> dict[str, Range]:
    """Every numeric key's valid range, from the ``# range:`` comments of the defaults file."""
    return read_config_source(DEFAULTS_PATH).ranges


def is_numeric_key(key: str, default: Any) -> bool:
    """Whether ``key`` holds a number or a list of numbers (and so needs a range)."""
    if key in AUTO_INT_KEYS:
        return True
    if key in STRUCTURED_KEYS or isinstance(default, (bool, str)):
        return False
    if isinstance(default, list):
        return _element_type(key, default) in (int, float)
    return isinstance(default, (int, float))


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
        if isinstance(default, (int, float)) and isinstance(value, bool):
            raise ValueError("true/false is not a number")
        if isinstance(default, int):
            return _whole_number(value)
        if isinstance(default, float):
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
            if any(isinstance(v, bool) for v in value):
                raise ValueError("true/false is not a number")
            element = _element_type(key, default)
            return [_whole_number(v) if element is int else element(v) for v in value]
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


def _whole_number(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not a whole number")
    if isinstance(value, str):
        value = value.strip()
    return int(value)


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
    """Read a YAML or JSON config file; keys match the defaults' case-insensitively.

    Refused with a CnnhubError: a missing, oversized or non-UTF-8 file, a parse error, content
    that is not a mapping or expands past :data:`MAX_CONFIG_NODES` values (YAML aliases), an
    unknown key, and two keys that differ only in case.
    """
    path = Path(path)
    if not path.is_file():
        raise CnnhubError(f"Config file not found: {path}. Pass an existing YAML or JSON file.")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CnnhubError(
            f"Config file {path} is larger than {MAX_CONFIG_BYTES:,} bytes; a configuration is a "
            f"few kilobytes, so pass the right file. Received: {path.stat().st_size:,} bytes"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CnnhubError(
            f"Config file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"position {exc.start}); save it as UTF-8. Received: {path}"
        ) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # lazy: heavy import, kept off the --help path

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
    check_size(data, f"config file {path}")
    found: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name, value in data.items():
        key = _match_key(str(name), defaults, str(path))
        if key in found:
            raise CnnhubError(
                f"Config file {path} sets `{key.lower()}` twice (keys are case-insensitive); "
                f"keep one. Received: {spelled[key]}, {name}"
            )
        found[key], spelled[key] = value, str(name)
    return found


def check_size(data: Any, source: str, limit: int = MAX_CONFIG_NODES) -> None:
    """Refuse ``data`` (parsed YAML/JSON) that holds more than ``limit`` values.

    YAML aliases share one object, so a few hundred bytes of nested anchors describe billions of
    values that only printing or copying would expand: count every use, iteratively (aliases
    can also make cycles), and stop at the limit.
    """
    stack, count = [data], 0
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            raise CnnhubError(
                f"The {source} expands to more than {limit:,} values (nested YAML anchors or "
                f"aliases?); a configuration holds a few hundred. Received: more than {limit:,}"
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def build_parser(
    prog: str = "run_training.py", defaults: dict[str, Any] | None = None
) -> argparse.ArgumentParser:
    """The training command line: one typed flag per config key plus the action flags.

    ``defaults`` are the values shown in the help (default: :func:`load_defaults`).
    """
    loaded, helps = load_defaults(user_config=defaults is None)
    defaults = loaded if defaults is None else defaults
    ranges = value_ranges()
    parser = OneLineParser(
        prog=prog,
        description="Train an image classifier on folder-per-class images. Defaults come from "
        "cnnhub/defaults.py and the checkout's config.py; every flag overrides one config key.",
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
    keys = parser.add_argument_group("config keys (with their valid range and default)")
    for key, default in defaults.items():
        names = [*FLAG_ALIASES.get(key, ()), f"--{key.lower()}"]
        help_text = helps.get(key, "")
        if key in ranges:
            help_text += f" Valid range: {ranges[key]}."
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
            # A bare switch (--deterministic) means true; --flag false / -start False also work.
            kwargs.update(type=_bool_flag, metavar="BOOL", nargs="?", const=True)
        elif isinstance(default, list):
            kwargs["nargs"] = "*"
            kwargs["type"] = _element_type(key, default)
        else:
            kwargs["type"] = type(default)
        if key in FLAG_CONSTANTS:
            kwargs.update(nargs="?", const=FLAG_CONSTANTS[key])
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
    import yaml  # lazy: heavy import, kept off the --help path

    if len(text) > MAX_CONFIG_BYTES:
        raise argparse.ArgumentTypeError(f"longer than {MAX_CONFIG_BYTES:,} characters")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    try:
        check_size(value, "YAML value")
    except CnnhubError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def resolve(argv: list[str] | None = None, prog: str = "run_training.py") -> tuple[Config, dict]:
    """Parse ``argv`` and return ``(config, actions)``.

    ``config`` (a frozen :class:`~cnnhub.configuration.Config`) holds every key of config.py,
    resolved and validated; ``actions`` holds the
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
        from cnnhub.custom import parse_dense  # lazy: heavy import, kept off the --help path

        namespace["NUM_NODES"], namespace["NUM_DROPOUTS"] = parse_dense(dense, name="dense")
    actions["given"] = sorted(namespace)  # config keys set by flags
    config = dict(defaults)
    if actions["config"]:
        for key, value in read_config_file(actions["config"], defaults).items():
            config[key] = _coerce(key, value, defaults[key])
    config.update(namespace)
    validate(config, defaults)
    return as_config(config), actions


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
    check_ranges(config)
    # lazy: heavy import, kept off the --help path
    from cnnhub.registry import check_input_size, parse_model_names

    for spec in parse_model_names(config["MODEL_NAME"]):
        check_input_size(spec, config["IMG_HEIGHT"], config["IMG_WIDTH"])
    if len(config["NUM_NODES"]) != len(config["NUM_DROPOUTS"]):
        raise CnnhubError(
            "`num_nodes` and `num_dropouts` must have the same length (one dropout rate per "
            f"dense layer). Received: num_nodes={config['NUM_NODES']}, "
            f"num_dropouts={config['NUM_DROPOUTS']}"
        )
    if (
        config["TRAINING_TYPE"] == "fine_tune"
        and not 0 < config["FINE_TUNE_AFTER"] < config["EPOCHS"]
    ):
        raise CnnhubError(
            "`fine_tune_after` must be between 1 and epochs - 1 so both fine_tune phases run. "
            f"Received: fine_tune_after={config['FINE_TUNE_AFTER']}, epochs={config['EPOCHS']}"
        )
    _check_head_and_colour(config)
    check_schedule(config)
    _check_custom_blocks(config)
    _check_evaluation(config)
    check_data_keys(config)
    # lazy: heavy import, kept off the --help path
    from cnnhub.tasks import get_task

    get_task(config).check_config(config)  # the task's refusals and `auto` values
    check_augmentation(config)


def check_ranges(config: dict[str, Any], ranges: dict[str, Range] | None = None) -> None:
    """Every numeric key (and each element of a numeric list) inside its range from the
    defaults file's ``# range:`` comments; NaN and infinities are never in range."""
    ranges = value_ranges() if ranges is None else ranges
    for key, allowed in ranges.items():
        value = config[key]
        if all(v in allowed for v in (value if isinstance(value, list) else [value])):
            continue
        what = "numbers (each)" if isinstance(value, list) else "a number"
        raise CnnhubError(
            f"`{key.lower()}` must be {what} in {allowed} (see --help). "
            f"Received: {key.lower()}={value!r}"
        )


def check_schedule(config: dict[str, Any]) -> None:
    """The warm-up leaves at least one epoch to the schedule; the time budget parses."""
    from cnnhub.durations import parse_duration  # lazy: kept off the --help path

    parse_duration(config["TIME_BUDGET"])
    if config["WARMUP_EPOCHS"] >= config["EPOCHS"]:
        raise CnnhubError(
            "`warmup_epochs` must be less than `epochs` (the warm-up comes before the "
            f"schedule). Received: warmup_epochs={config['WARMUP_EPOCHS']}, "
            f"epochs={config['EPOCHS']}"
        )


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


def _check_custom_blocks(config: dict[str, Any]) -> None:
    # The grammar needs no TensorFlow and no data, so a typo is refused before the scan; only
    # `auto` waits for the class count and image size (the shape check runs at build time).
    from cnnhub.custom import normalize_blocks

    spec = config["CUSTOM_CONV_BLOCKS"]
    if not (isinstance(spec, str) and spec.strip().lower() == "auto"):
        normalize_blocks(spec)


def _check_evaluation(config: dict[str, Any]) -> None:
    if parse_tta(config["TTA"]) and config["FEATURE_CACHE"] == "true":
        raise CnnhubError(
            "`feature_cache` true scores validation on stored backbone features, which test-time "
            "augmentation (views of the images) cannot act on; use feature_cache auto or false, "
            f"or tta none. Received: feature_cache=true, tta={config['TTA']!r}"
        )
    if not re.fullmatch(r"all|top:[1-9]\d*", config["EVAL_WEIGHTS"]):
        raise CnnhubError(
            "`eval_weights` must be `all` or `top:N` with N >= 1. "
            f"Received: eval_weights={config['EVAL_WEIGHTS']!r}"
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
    # lazy: heavy import, kept off the --help path
    from cnnhub.data.class_weights import parse_class_weight

    if config["FOLDS"] == 1:
        raise CnnhubError(
            f"`folds` must be 0 (off) or at least 2. Received: folds={config['FOLDS']}"
        )
    if config["FOLDS"] and (config["VAL_SPLIT"] or config["SPLIT_FILE"]):
        raise CnnhubError(
            "`folds` makes its own validation sets; leave `val_split` and `split_file` unset. "
            f"Received: folds={config['FOLDS']}, val_split={config['VAL_SPLIT']}, "
            f"split_file={config['SPLIT_FILE']!r}"
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
    """Every flag of the training command as a Markdown table (docs/configuration.md embeds this).

    Defaults shown are the packaged ones (a checkout's config.py would make it machine-specific).
    """
    parser = build_parser(defaults=load_defaults(user_config=False)[0])
    rows = ["| flag | config key | help |", "| --- | --- | --- |"]
    for group in parser._action_groups[2:]:
        for action in group._group_actions:
            flags = ", ".join(f"`{o}`" for o in action.option_strings)
            key = f"`{action.dest}`" if action.dest.isupper() else ""
            text = (action.help or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {flags} | {key} | {text} |")
    return "\n".join(rows)
