"""Config values outside their documented range, hostile config files and boolean switches are
refused (or read) in one place, cnnhub.settings, before anything is written."""

from __future__ import annotations

import json
import math
import time

import pytest

from cnnhub import settings
from cnnhub.errors import CnnhubError

PACKAGED, _ = settings.load_defaults(user_config=False)
RANGES = settings.value_ranges()
NUMERIC_KEYS = sorted(k for k, v in PACKAGED.items() if settings.is_numeric_key(k, v))


def test_every_numeric_key_has_a_documented_range():
    # A new numeric key without a `# range:` comment in cnnhub/defaults.py fails here.
    assert sorted(RANGES) == NUMERIC_KEYS
    _, helps = settings.load_defaults(user_config=False)
    parser_help = settings.build_parser().format_help()
    for key in NUMERIC_KEYS:
        assert f"Valid range: {RANGES[key]}." in " ".join(parser_help.split()), key
        assert helps[key]
    # The defaults themselves are in range.
    settings.check_ranges(dict(PACKAGED))


def outside(allowed: settings.Range) -> float:
    """A value just outside ``allowed``: above a finite upper bound, else below the lower."""
    if math.isfinite(allowed.high):
        return allowed.high + 1
    return allowed.low - 1


def is_integer_key(key: str) -> bool:
    return "int" in settings._type_name(key, PACKAGED[key])


def as_text(key: str, value: float) -> str:
    return str(int(value)) if is_integer_key(key) else repr(float(value))


@pytest.mark.parametrize("key", NUMERIC_KEYS)
def test_out_of_range_flag_is_refused(key):
    allowed = RANGES[key]
    text = as_text(key, outside(allowed))
    with pytest.raises(CnnhubError) as error:
        settings.resolve([f"--{key.lower()}", text])
    message = str(error.value)
    assert message.startswith(f"`{key.lower()}` must be")
    assert f"in {allowed} (see --help). Received: {key.lower()}=" in message
    assert "\n" not in message


@pytest.mark.parametrize("key", NUMERIC_KEYS)
def test_out_of_range_config_file_value_is_refused(key, tmp_path):
    value = outside(RANGES[key])
    value = int(value) if is_integer_key(key) else value
    path = tmp_path / "run.json"
    path.write_text(
        json.dumps({key.lower(): [value] if isinstance(PACKAGED[key], list) else value})
    )
    with pytest.raises(CnnhubError, match=rf"^`{key.lower()}` must be .* in "):
        settings.resolve(["-c", str(path)])


@pytest.mark.parametrize(
    "key",
    [k for k in NUMERIC_KEYS if settings._type_name(k, PACKAGED[k]) in ("float", "list of float")],
)
@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_nan_and_infinity_are_refused(key, text):
    with pytest.raises(CnnhubError, match=rf"`{key.lower()}` must be"):
        settings.resolve([f"--{key.lower()}={text}"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-lr", "nan"], r"`learning_rate` must be a number in \(0, 10\]"),
        (["--seed", "-1"], r"`seed` must be a number in \[0, 4294967295\]"),
        (["--lr_step_epochs", "0"], r"`lr_step_epochs` must be a number in \[1, "),
        (["--aug_zoom", "50"], r"`aug_zoom` must be a number in \[0, 1\)"),
        (["--aug_rotation", "-3"], r"`aug_rotation` must be a number in \[0, 0.5\]"),
        (["--label_smoothing", "7"], r"`label_smoothing` must be a number in \[0, 1\)"),
        (["--momentum", "-5"], r"`momentum` must be a number in \[0, 1\)"),
    ],
)
def test_the_reported_cases(argv, message):
    with pytest.raises(CnnhubError, match=message):
        settings.resolve(argv)


def test_range_words_and_bounds():
    allowed = settings.Range(1, math.inf, words=("auto",))
    assert str(allowed) == "[1, inf] or auto"
    assert 1 in allowed and 10**9 in allowed and "auto" in allowed
    assert 0 not in allowed and "other" not in allowed and math.inf not in allowed
    assert True not in allowed  # a boolean is not a number
    half_open = settings.Range(0, 1, low_open=True, high_open=True)
    assert str(half_open) == "(0, 1)" and 0 not in half_open and 1 not in half_open
    assert 0.5 in half_open and math.nan not in half_open


@pytest.mark.parametrize("text", ["epochs: true\n", "seed: false\n", "num_nodes: [true]\n"])
def test_booleans_are_not_numbers(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(CnnhubError, match=r"true/false is not a number"):
        settings.resolve(["-c", str(path)])


def test_keys_differing_only_in_case_are_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nEPOCHS: 5\n")
    with pytest.raises(CnnhubError) as error:
        settings.resolve(["-c", str(path)])
    assert str(error.value) == (
        f"Config file {path} sets `epochs` twice (keys are case-insensitive); keep one. "
        "Received: epochs, EPOCHS"
    )


def test_non_utf8_config_file_is_one_error(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes("model_name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(CnnhubError, match=r"is not UTF-8 text \(byte 0xe9 at position 15\)"):
        settings.resolve(["-c", str(path)])


BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}]\n"
        for i in range(8)
    )
    + "custom_conv_blocks: *i\n"
)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 1000  # expands to 9**9 (387 million) strings
    started = time.perf_counter()
    with pytest.raises(CnnhubError, match=r"expands to more than 100,000 values"):
        settings.resolve(["-c", str(path)])
    with pytest.raises(CnnhubError, match=r"expands to more than 100,000 values"):
        settings.resolve(["--layers", BOMB.replace("\n", "\n")])
    assert time.perf_counter() - started < 5


def test_recursive_yaml_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("custom_conv_blocks: &a [*a]\n")
    with pytest.raises(CnnhubError, match=r"expands to more than"):
        settings.resolve(["-c", str(path)])


def test_oversized_config_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * settings.MAX_CONFIG_BYTES + "\n")
    with pytest.raises(CnnhubError, match=r"larger than 1,000,000 bytes"):
        settings.resolve(["-c", str(path)])


SWITCHES = ["DETERMINISTIC", "MIXED_PRECISION", "EARLY_STOPPING"]


@pytest.mark.parametrize("key", SWITCHES)
def test_boolean_flags_work_as_bare_switches(key):
    flag = f"--{key.lower()}"
    assert PACKAGED[key] is False
    assert settings.resolve([flag])[0][key] is True  # last on the line
    config, actions = settings.resolve([flag, "-e", "2"])  # followed by another flag
    assert config[key] is True and config["EPOCHS"] == 2 and key in actions["given"]
    assert settings.resolve([flag, "true"])[0][key] is True
    assert settings.resolve([flag, "false"])[0][key] is False
    with pytest.raises(CnnhubError, match=rf"argument {flag}: expected true/false"):
        settings.resolve([flag, "maybe"])


def test_seed_style_boolean_values_still_work():
    config, _ = settings.resolve(["-start", "False", "-post", "True", "--run_dir", "x"])
    assert config["START_TRAIN"] is False and config["POST_EVAL"] is True
