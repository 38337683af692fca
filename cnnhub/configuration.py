"""The resolved configuration as a typed, frozen object: :class:`Config`.

``Config`` is a frozen dataclass whose fields are generated from the keys of
``cnnhub/defaults.py`` (one field per UPPER_CASE key, in the file's order), so a key added there
is a field here with nothing else to change. Each ``# ---- <area>`` section of that file is a
per-area view with lower-case names::

    config.training.epochs        # == config["EPOCHS"]
    config.data.val_split         # == config["VAL_SPLIT"]
    config.replace(EPOCHS=3)      # a changed copy (instead of dict(config, EPOCHS=3))

It is also a read-only mapping of the UPPER_CASE keys (``config["EPOCHS"]``, ``config.get``,
``in``, iteration, ``dict(config)``), so code written against the dict it replaces keeps
working; :func:`cnnhub.atomic.write_json` writes it as that dict (``run_config.json`` is
unchanged). The values are the resolved ones (see :func:`cnnhub.settings.resolve`); this
module only gives them a shape.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

DEFAULTS_PATH = Path(__file__).resolve().parent / "defaults.py"

_HEADER = re.compile(r"^# -{8,} (?P<title>.+?)\s*$")
_KEY = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]*)\s*=")
_AREA_NAMES = {
    "post-evaluation": "evaluation",
    "speed and scale": "scale",
    "data sources, splits, protocols": "data",
}
"""Section titles of defaults.py whose view is not named by their first word."""


def area_name(title: str) -> str:
    """The view name of a defaults.py section title: its alias, else its first word
    (``augmentation (training only)`` -> ``augmentation``)."""
    title = re.sub(r"\(.*?\)", "", title).strip().lower()
    return _AREA_NAMES.get(title) or re.split(r"[^a-z0-9_]+", title)[0]


def read_keys(path: Path = DEFAULTS_PATH) -> dict[str, str]:
    """``{key: its area}`` of every key of defaults.py, in file order."""
    keys: dict[str, str] = {}
    area = "general"  # keys before the first section title
    for line in path.read_text(encoding="utf-8").splitlines():
        header = _HEADER.match(line)
        if header:
            area = area_name(header["title"])
            continue
        key = _KEY.match(line)
        if key:
            keys[key["key"]] = area
    return keys


class _ConfigBase(Mapping):
    """The mapping side of :class:`Config` (its fields are the keys)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_SET:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)

    def __contains__(self, key: object) -> bool:
        return key in _FIELD_SET

    def __repr__(self) -> str:
        return f"Config({dict(self)!r})"

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` (UPPER_CASE keys) applied; an unknown key is a TypeError."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Config:
        """A Config of ``values``, which must hold exactly the keys of defaults.py."""
        missing = [key for key in _FIELDS if key not in values]
        extra = [key for key in values if key not in _FIELD_SET]
        if missing or extra:
            raise KeyError(f"not the configuration's keys: missing {missing}, unknown {extra}")
        return cls(**{key: values[key] for key in _FIELDS})


def _area_view(area: str, keys: list[str]) -> type:
    view = dataclasses.make_dataclass(
        f"{area.title().replace('_', '')}Config",
        [(key.lower(), Any) for key in keys],
        frozen=True,
    )
    view.__module__ = __name__
    view.__doc__ = f"The {area} keys of a Config, by lower-case name (read-only)."
    return view


def _area_property(view: type, keys: list[str]) -> property:
    def get(self):
        return view(*(getattr(self, key) for key in keys))

    return property(get, doc=view.__doc__)


_KEYS = read_keys()
_FIELDS = list(_KEYS)  # file order: run_config.json's key order
_AREAS: dict[str, list[str]] = {}
for _key, _area in _KEYS.items():
    _AREAS.setdefault(_area, []).append(_key)
_FIELD_SET = frozenset(_FIELDS)
VIEWS = {area: _area_view(area, keys) for area, keys in _AREAS.items()}
"""The per-area view classes, by the attribute name that gives them (``config.training``)."""

Config = dataclasses.make_dataclass(
    "Config",
    [(key, Any) for key in _FIELDS],
    bases=(_ConfigBase,),
    namespace={area: _area_property(VIEWS[area], keys) for area, keys in _AREAS.items()},
    frozen=True,
    eq=False,  # Mapping's equality: equal to a dict of the same items, like the dict it replaces
)
Config.__module__ = __name__
Config.__doc__ = """The resolved configuration: one frozen field per key of defaults.py, a
read-only mapping of the same keys, and a view per area of that file (see the module)."""


def as_config(values: Mapping[str, Any]) -> Config:
    """``values`` as a :class:`Config` (itself when it already is one)."""
    return values if isinstance(values, Config) else Config.from_mapping(values)


def replace(config: Mapping[str, Any], **changes: Any) -> Mapping[str, Any]:
    """``config`` with ``changes``: :meth:`Config.replace` for a Config, a changed dict copy
    for a plain dict (a ``run_config.json`` read back, which may predate newer keys)."""
    if isinstance(config, Config):
        return config.replace(**changes)
    return {**config, **changes}
