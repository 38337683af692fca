"""cnnhub.configuration.Config: the typed, frozen result of settings.resolve, still a mapping."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from cnnhub import atomic, settings
from cnnhub.configuration import VIEWS, Config, area_name, read_keys, replace
from cnnhub.data import formats, sources
from cnnhub.evaluation import rules, selection
from cnnhub.tasks import single_label


@pytest.fixture(scope="module")
def config() -> Config:
    return settings.resolve(["-e", "3", "--val_split", "0.25"])[0]


def test_resolve_returns_a_frozen_config(config):
    assert isinstance(config, Config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.EPOCHS = 4
    with pytest.raises(TypeError):
        config["EPOCHS"] = 4  # a read-only mapping


def test_config_reads_like_the_dict_it_replaces(config):
    packaged = settings.load_defaults(user_config=False)[0]
    assert list(config) == list(packaged)  # every key, in defaults.py's order
    assert len(config) == len(packaged)
    assert config["EPOCHS"] == config.EPOCHS == 3
    assert config.get("EPOCHS") == 3 and config.get("NO_SUCH_KEY", "x") == "x"
    assert "VAL_SPLIT" in config and "NO_SUCH_KEY" not in config
    with pytest.raises(KeyError):
        config["NO_SUCH_KEY"]
    as_dict = dict(config)
    assert config == as_dict and as_dict == config
    assert dict(config, EPOCHS=5)["EPOCHS"] == 5  # old-style copies still work
    assert list(config.items()) == list(as_dict.items())


def test_run_config_json_is_written_as_before(config, tmp_path):
    atomic.write_json(tmp_path / "typed.json", config)
    atomic.write_json(tmp_path / "dict.json", dict(config))
    assert (tmp_path / "typed.json").read_bytes() == (tmp_path / "dict.json").read_bytes()
    assert json.loads((tmp_path / "typed.json").read_text())["EPOCHS"] == 3


def test_replace_makes_a_changed_copy(config):
    changed = config.replace(EPOCHS=7, SEED=1)
    assert isinstance(changed, Config)
    assert (changed["EPOCHS"], changed["SEED"], config["EPOCHS"]) == (7, 1, 3)
    assert changed.replace(EPOCHS=3, SEED=config["SEED"]) == config
    with pytest.raises(TypeError):
        config.replace(NO_SUCH_KEY=1)
    # the helper keeps a plain dict (a run_config.json read back) a dict
    assert replace({"EPOCHS": 1, "OLD_KEY": 2}, EPOCHS=4) == {"EPOCHS": 4, "OLD_KEY": 2}
    assert isinstance(replace(config, EPOCHS=4), Config)


def test_every_key_is_in_exactly_one_area_view(config):
    seen = []
    for area, view_class in VIEWS.items():
        view = getattr(config, area)
        assert isinstance(view, view_class)
        for field in dataclasses.fields(view):
            assert getattr(view, field.name) == config[field.name.upper()]
            seen.append(field.name.upper())
    assert sorted(seen) == sorted(config)
    assert config.training.epochs == 3 and config.data.val_split == 0.25
    assert config.evaluation.best_weight_rule == config["BEST_WEIGHT_RULE"]
    assert {"data", "model", "training", "evaluation"} <= set(VIEWS)


def test_fields_and_areas_come_from_the_defaults_file(tmp_path):
    defaults = tmp_path / "defaults.py"
    defaults.write_text(
        "# ---------------------------------------------------------------- data\n"
        "# help\nDATA_DIR_TRAIN = ''\n"
        "# ---------------------------------------------------------------- tuning (optuna)\n"
        "TRIALS = 10  # range: [1, 100]\n"
        "# -------- data sources, splits, protocols\n"
        "VAL_SPLIT = 0.0\n"
    )  # fmt: skip
    expected = {"DATA_DIR_TRAIN": "data", "TRIALS": "tuning", "VAL_SPLIT": "data"}
    assert read_keys(defaults) == expected
    assert area_name("post-evaluation") == "evaluation"
    assert area_name("augmentation (training only)") == "augmentation"


def test_config_survives_pickling(config):
    assert pickle.loads(pickle.dumps(config)) == config


def test_enumerations_are_their_owners():
    assert settings.CHOICES["DATA_FORMAT"] == ("auto", *formats.DATA_FORMATS)
    assert sources.DATA_FORMATS is formats.DATA_FORMATS
    assert rules.RULES is selection.RULES is single_label.CLASSIFICATION_RULES
    assert set(rules.RULES) <= set(settings.CHOICES["BEST_WEIGHT_RULE"])
