"""The search space: a YAML mapping of config keys to a range or a list of choices.

```yaml
learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}   # float range (log-uniform)
batch_size: {low: 8, high: 64, step: 8}                 # int range (the key is an int key)
model_name: [mobilenetv2, efficientnetb0]               # choices
num_nodes: [[], [128], [256, 128]]                       # choices of a list key
num_dropouts: {low: 0.0, high: 0.5}                     # one value for every dense layer
img_size: [96, 128]                                     # img_height and img_width together
```

Keys are config keys in any case, plus ``img_size``. Everything is checked before a trial
runs: unknown keys, keys that cannot be tuned (paths, actions), malformed specs, and every
choice and both ends of every range with the base configuration (``settings.validate``: type,
range, allowed values, consistency), so a space that cannot be trained fails in one line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnhub import settings
from cnnhub.errors import CnnhubError

IMG_SIZE = "IMG_SIZE"
"""Pseudo-key: sets IMG_HEIGHT and IMG_WIDTH to the same value."""

# Keys a trial may not change: where data and runs are, what the command does.
FIXED_KEYS = frozenset(
    {
        *settings.PATH_KEYS,
        "ITERATION_NAME",
        "START_TRAIN",
        "POST_EVAL",
        "VERBOSE",
        "FOLDS",
        "STRATEGY",
        "LOGICAL_CPUS",
        "MLFLOW",
    }
)
RANGE_FIELDS = frozenset({"low", "high", "log", "step"})


@dataclass(frozen=True)
class Dimension:
    """One searched key: a float or int range, or categorical choices."""

    key: str  # config key (or IMG_SIZE)
    kind: str  # "float", "int" or "categorical"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        """The parameter's name in the study (the key in lower case)."""
        return self.key.lower()

    def suggest(self, trial) -> Any:
        """Draw this dimension's value from an Optuna trial."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            low, high, step = int(self.low), int(self.high), int(self.step or 1)
            return trial.suggest_int(self.name, low, high, log=self.log, step=step)
        encoded = [_encode(c) for c in self.choices]
        return _decode(trial.suggest_categorical(self.name, encoded))


def _encode(value: Any) -> Any:
    """Optuna stores choices of None, bool, int, float and str; lists go in as JSON text."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def decode_params(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's stored parameters as config values (JSON-encoded lists decoded)."""
    return {name: _decode(value) for name, value in params.items()}


def apply(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the searched ``values`` (by parameter name) set, validated.

    ``img_size`` sets both image sides; a single number for a list key sets every element;
    ``num_dropouts`` left at one repeated rate follows the length of a searched ``num_nodes``.
    Raises CnnhubError when the combination is not a valid configuration.
    """
    config = dict(base)
    for name, value in values.items():
        key = name.upper()
        if key == IMG_SIZE:
            config["IMG_HEIGHT"] = config["IMG_WIDTH"] = value
        elif isinstance(base.get(key), list) and not isinstance(value, list):
            config[key] = [value] * max(len(base[key]), 1)
        else:
            config[key] = value
    dropouts, nodes = config["NUM_DROPOUTS"], config["NUM_NODES"]
    if len(dropouts) != len(nodes) and len(set(dropouts)) <= 1:
        config["NUM_DROPOUTS"] = [dropouts[0] if dropouts else 0.0] * len(nodes)
    settings.validate(config)
    return config


def read_space(path: str | Path, base: dict[str, Any]) -> list[Dimension]:
    """Read and check the search-space YAML against the validated ``base`` configuration.

    Raises CnnhubError (one line naming the key and what is allowed) for any fault.
    """
    defaults = settings.load_defaults()[0]
    keys = settings.read_config_file(path, {**defaults, IMG_SIZE: None})
    if not keys:
        raise CnnhubError(
            f"Search space {path} is empty; give at least one config key with a range "
            "({low: ..., high: ...}) or a list of choices. Received: an empty file"
        )
    dimensions = []
    for key, spec in keys.items():
        dimension = _dimension(key, spec, defaults, str(path))
        _check_values(dimension, base, str(path))
        dimensions.append(dimension)
    if "MODEL_NAME" not in keys and "," in base["MODEL_NAME"]:
        raise CnnhubError(
            "A trial trains one model: give one model_name, or search it as "
            f"`model_name: [a, b]` in the space. Received: model_name={base['MODEL_NAME']}"
        )
    return dimensions


def _dimension(key: str, spec: Any, defaults: dict[str, Any], where: str) -> Dimension:
    name = key.lower()
    if key in FIXED_KEYS:
        raise CnnhubError(
            f"`{name}` in search space {where} cannot be tuned (a path or an action; set it in "
            f"the base config). Received: {name}"
        )
    if isinstance(spec, dict) and set(spec) == {"choices"}:
        spec = spec["choices"]
    if isinstance(spec, list):
        if not spec:
            raise CnnhubError(
                f"`{name}` in search space {where} lists no choices; give at least one. "
                f"Received: {name}=[]"
            )
        return Dimension(key, "categorical", choices=tuple(spec))
    if not isinstance(spec, dict):
        raise CnnhubError(
            f"`{name}` in search space {where} must be a list of choices or a range "
            f"{{low: L, high: H, log: true|false, step: S}}. Received: {name}={spec!r}"
        )
    return _range(key, spec, defaults, where)


def _range(key: str, spec: dict, defaults: dict[str, Any], where: str) -> Dimension:
    name = key.lower()
    default = defaults["IMG_HEIGHT" if key == IMG_SIZE else key]
    numeric_key = "IMG_HEIGHT" if key == IMG_SIZE else key

    def fail(problem: str) -> CnnhubError:
        return CnnhubError(
            f"`{name}` in search space {where}: {problem}. Received: {name}={spec!r}"
        )

    extra = set(map(str, spec)) - RANGE_FIELDS
    if extra:
        raise fail(f"a range takes low, high, log and step, not {', '.join(sorted(extra))}")
    if not settings.is_numeric_key(numeric_key, default):
        raise fail("a range needs a numeric key; give a list of choices instead")
    if "low" not in spec or "high" not in spec:
        raise fail("a range needs both low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    bounds = (low, high) if step is None else (low, high, step)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bounds):
        raise fail("low, high and step must be numbers")
    if not all(math.isfinite(v) for v in bounds):
        raise fail("low, high and step must be finite")
    if not isinstance(log, bool):
        raise fail("log must be true or false")
    if not low < high:
        raise fail("low must be below high")
    if log and low <= 0:
        raise fail("a log range needs low > 0")
    if log and step is not None:
        raise fail("log and step cannot be combined (Optuna samples one or the other)")
    if step is not None and step <= 0:
        raise fail("step must be positive")
    is_int = numeric_key in settings.AUTO_INT_KEYS or _element(default) is int
    if is_int and not all(float(v).is_integer() for v in bounds):
        raise fail("this key takes whole numbers, so low, high and step must be whole")
    kind = "int" if is_int else "float"
    return Dimension(key, kind, float(low), float(high), log, None if step is None else step)


def _element(default: Any) -> type:
    if isinstance(default, list):
        return type(default[0]) if default else float
    return type(default)


def _check_values(dimension: Dimension, base: dict[str, Any], where: str) -> None:
    """Every choice and both ends of a range, set alone on ``base``, must validate."""
    if dimension.kind == "categorical":
        values = list(dimension.choices)
    else:
        cast = int if dimension.kind == "int" else float
        values = [cast(dimension.low), cast(dimension.high)]
    for value in values:
        try:
            apply(base, {dimension.name: value})
        except CnnhubError as exc:
            raise CnnhubError(
                f"`{dimension.name}` in search space {where}: the value {value!r} is not a valid "
                f"setting: {' '.join(str(exc).split())}"
            ) from None
