"""Augmentation policies (RandAugment, AugMix, random erasing, colour jitter, MixUp, CutMix,
alternating flips): Keras's layers, training split only, keyed to (seed, epoch), mixing off for
the last epochs, the feature cache bypassed, and bad combinations refused before training."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from trained_runs import error_lines

from cnnhub import settings
from cnnhub.data.augment import build_augmenter
from cnnhub.data.feature_cache import use_feature_cache
from cnnhub.data.mixing import build_mixer
from cnnhub.data.pipeline import make_dataset
from cnnhub.data.sets import Split
from cnnhub.reproducibility import EpochRandomness

DEFAULTS, _ = settings.load_defaults(user_config=False)
NO_BASE = dict(
    DEFAULTS, AUG_HORIZONTAL_FLIP=False, AUG_ZOOM=0.0, AUG_TRANSLATION=0.0, EPOCHS=3
)  # only the keys a test sets


def config(**keys):
    return dict(NO_BASE, **{k.upper(): v for k, v in keys.items()})


def images(n=6, size=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize(
    ("key", "value", "layer"),
    [
        ("aug_randaugment", 2, keras.layers.RandAugment),
        ("aug_augmix", 0.3, keras.layers.AugMix),
        ("aug_erasing", 0.5, keras.layers.RandomErasing),
        ("aug_saturation", 0.4, keras.layers.RandomColorJitter),
        ("aug_hue", 0.1, keras.layers.RandomColorJitter),
    ],
)
def test_each_policy_key_is_its_keras_layer_and_changes_images(key, value, layer):
    augmenter = build_augmenter(config(**{key: value}), seed=1)
    assert [type(step) for step in augmenter.layers] == [layer]
    x = images()
    EpochRandomness(1, augmenter).on_epoch_begin(0)
    out = keras.ops.convert_to_numpy(augmenter(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)
    # Inference (validation, evaluation) never augments.
    assert np.array_equal(keras.ops.convert_to_numpy(augmenter(x, training=False)), x)


def test_all_off_means_no_augmenter_and_no_mixer():
    assert build_augmenter(config(), seed=1) is None
    assert build_mixer(config(), seed=1) is None


def test_policies_are_keyed_to_seed_and_epoch():
    # RandAugment and AugMix keep their random sub-layers as attributes: every one of their
    # generators must be re-keyed, or a resumed epoch would draw other augmentations.
    cfg = config(aug_randaugment=3, aug_augmix=0.5, aug_erasing=1.0, aug_hue=0.2)
    augmenter = build_augmenter(cfg, 1)
    randomness = EpochRandomness(7, augmenter)
    split = Split(labels=np.zeros(6, int), images=images().astype("uint8"))
    ds = make_dataset(
        split, 2, (16, 16), 6, training=True, seed=7, augmenter=augmenter, epoch=randomness.epoch
    )

    def epoch_output(epoch):
        randomness.on_epoch_begin(epoch)
        return np.concatenate([x.numpy() for x, _ in ds])

    first = epoch_output(2)
    epoch_output(0)  # advances every generator
    assert np.array_equal(epoch_output(2), first)
    assert not np.array_equal(epoch_output(3), first)


MIRRORS = {  # (left-right, up-down) -> the image so mirrored
    (False, False): lambda x: x,
    (True, False): lambda x: x[:, ::-1],
    (False, True): lambda x: x[::-1],
    (True, True): lambda x: x[::-1, ::-1],
}


def mirror_states(originals: np.ndarray, seen: np.ndarray) -> list[tuple[bool, bool]]:
    """Which mirror image of its original each image in ``seen`` is."""
    states = []
    for original, image in zip(originals, seen):
        (state,) = [k for k, mirror in MIRRORS.items() if np.array_equal(mirror(original), image)]
        states.append(state)
    return states


@pytest.mark.parametrize(
    ("flags", "period"),
    [
        ({"aug_horizontal_flip": True}, 2),
        ({"aug_vertical_flip": True}, 2),
        ({"aug_horizontal_flip": True, "aug_vertical_flip": True}, 4),
    ],
)
def test_alternating_flips_show_every_mirror_image_once_per_period(flags, period):
    # Random flips may leave an image unmirrored for several epochs; alternating ones show an
    # image's 2 (or, flipping both ways, 4) mirror images in any 2 (4) consecutive epochs.
    cfg = config(**flags, aug_alternate_flips=True)
    augmenter = build_augmenter(cfg, 5)
    assert [type(layer).__name__ for layer in augmenter.layers] == ["AlternatingFlip"]
    n = 200
    x = images(n, size=8, seed=2)
    randomness = EpochRandomness(5, augmenter)
    # A cached, shuffled training pipeline built once, as a run's: the epoch is read per epoch.
    split = Split(labels=np.arange(n), images=x.astype("uint8"))
    ds = make_dataset(
        split, n, (8, 8), 32, training=True, seed=5, augmenter=augmenter, epoch=randomness.epoch
    )

    def epoch_states(epoch: int) -> list[tuple[bool, bool]]:
        randomness.on_epoch_begin(epoch)
        seen, labels = zip(*((b.numpy(), y.numpy().argmax(axis=1)) for b, y in ds))
        order = np.concatenate(labels)
        assert sorted(order) == list(range(n))
        return mirror_states(x, np.concatenate(seen)[np.argsort(order)])

    # Back to image order (each epoch shuffles): the mirror state of image i in each epoch.
    states = [epoch_states(epoch) for epoch in range(period + 1)]
    for image in range(n):
        per_epoch = [states[epoch][image] for epoch in range(period)]
        assert len(set(per_epoch)) == period, per_epoch  # every mirror image, once
        assert states[period][image] == per_epoch[0]  # and again
    for epoch_states_ in states:  # which half starts mirrored is drawn per image
        counts = {state: epoch_states_.count(state) for state in set(epoch_states_)}
        assert len(counts) == period and min(counts.values()) > n / period * 0.6, counts
    # Inference never flips.
    assert np.array_equal(keras.ops.convert_to_numpy(augmenter(x, training=False)), x)


@pytest.mark.parametrize("key", ["aug_mixup", "aug_cutmix"])
def test_mixing_in_the_pipeline_mixes_labels_and_stops_for_the_last_epochs(key):
    cfg = config(**{key: 1.0}, mix_off_epochs=1, epochs=3)
    labels = np.arange(8) % 2
    split = Split(labels=labels, images=images(8).astype("uint8"))
    mixer = build_mixer(cfg, seed=3)
    randomness = EpochRandomness(3, mixer.layer)

    def epoch_labels(epoch: int, training: bool = True) -> np.ndarray:
        randomness.on_epoch_begin(epoch)
        mixer.on_epoch_begin(epoch)
        ds = make_dataset(
            split, 2, (16, 16), 8, training=training, seed=3, mixer=mixer, epoch=randomness.epoch
        )
        return np.concatenate([y.numpy() for _, y in ds])

    mixed = epoch_labels(0)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-6)
    assert ((mixed > 1e-6) & (mixed < 1 - 1e-6)).any(), "soft labels while mixing"
    np.testing.assert_array_equal(epoch_labels(0), mixed)  # same epoch, same mix
    last = epoch_labels(2)  # epochs=3, mix_off_epochs=1: the last epoch is clean
    assert set(np.unique(last)) == {0.0, 1.0}
    assert sorted(last.argmax(axis=1)) == sorted(labels)
    clean = epoch_labels(0, training=False)  # validation data is never mixed
    np.testing.assert_array_equal(clean.argmax(axis=1), labels)
    assert set(np.unique(clean)) == {0.0, 1.0}


def test_mixing_stops_for_the_last_epochs_of_the_run_as_planned():
    plan = {"epochs": 10}
    cfg = config(aug_mixup=0.2, mix_off_epochs=2, epochs=10)
    mixer = build_mixer(cfg, 0, lambda: plan["epochs"])
    on = []
    for epoch in (5, 7, 8):
        mixer.on_epoch_begin(epoch)
        on.append(bool(mixer.active.numpy()))
    assert on == [True, True, False]
    plan["epochs"] = 6  # --time_budget planned a shorter run
    mixer.on_epoch_begin(3)
    assert bool(mixer.active.numpy())
    mixer.on_epoch_begin(4)
    assert not bool(mixer.active.numpy())


def test_feature_cache_is_bypassed_by_any_augmentation():
    frozen = dict(TRAINING_TYPE="freeze_all", FEATURE_CACHE="auto")
    assert use_feature_cache(config(**frozen), None)
    policy = build_augmenter(config(aug_randaugment=1), 1)
    assert not use_feature_cache(config(**frozen), policy)
    mixer = build_mixer(config(aug_mixup=0.2), 1)
    assert not use_feature_cache(config(**frozen), None, mixer)


def test_mixing_needs_single_label_classification():
    from cnnhub.data.augment import check_augmentation
    from cnnhub.errors import CnnhubError

    check_augmentation(config(aug_mixup=0.2, task="single_label"))
    with pytest.raises(
        CnnhubError, match=r"only single-label classification has.*task='regression'"
    ):
        check_augmentation(config(aug_cutmix=0.5, task="regression"))
    check_augmentation(config(task="regression"))  # no mixing: nothing to refuse


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--aug_mixup", "0.2", "--aug_cutmix", "0.5"], "`aug_mixup` and `aug_cutmix` both mix"),
        (["--mix_off_epochs", "1"], "`mix_off_epochs` switches MixUp/CutMix off"),
        (["--aug_mixup", "0.2", "--mix_off_epochs", "2", "-e", "2"], "smaller than `epochs`"),
        (["--aug_hue", "0.1", "--color_mode", "grayscale"], "`aug_hue` changes colours"),
        (["--aug_cutmix", "0.5", "--feature_cache", "true"], "`feature_cache` true trains on"),
        (["--task", "multi_label", "--aug_mixup", "0.2"], "only single-label classification has"),
        (["--aug_mixup", "1.5"], "`aug_mixup` must be a number in [0, 1]"),
        (["--aug_randaugment", "11"], "`aug_randaugment` must be a number in [0, 10]"),
        (
            ["--aug_alternate_flips", "true", "--aug_horizontal_flip", "false"],
            "`aug_alternate_flips` makes the flips alternate",
        ),
    ],
)
def test_bad_augmentation_settings_fail_before_training(flags, message, tmp_path, capsys):
    from cnnhub.commands.train import train_main

    assert train_main(["-sl", str(tmp_path), "-dtrain", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Received:" in err
    assert len(error_lines(err)) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from conftest import make_image_folder

    return make_image_folder(tmp_path_factory.mktemp("preview") / "train", 3, size=16, seed=4)


def test_augment_preview_writes_the_grid(small_data, tmp_path, capsys):
    from PIL import Image

    from cnnhub.cli import main

    out = tmp_path / "grid.png"
    code = main(
        ["augment-preview", str(small_data), "--out", str(out), "--images", "1", "--copies", "3"]
        + ["--aug_cutmix", "0.8", "--aug_erasing", "1", "-e", "3", "--mix_off_epochs", "1"]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert f"Wrote {out}: 3 images of 3 classes, original + 3 augmented copies" in stdout
    assert "RandomErasing, CutMix" in stdout
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > image.height  # 4 columns, 3 rows


def test_preview_copies_are_the_epochs_draws():
    from cnnhub.data.preview import augmented_copies

    cfg = config(aug_mixup=1.0, aug_randaugment=2, epochs=3, mix_off_epochs=1)
    x, y = images(4), np.eye(2, dtype="float32")[[0, 1, 0, 1]]
    first, layers = augmented_copies(cfg, x, y, 3)
    again, _ = augmented_copies(cfg, x, y, 3)
    assert layers == ["RandAugment", "MixUp"]
    for (a, la), (b, lb) in zip(first, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(first[0][0], first[1][0])
    np.testing.assert_array_equal(first[2][1], y)  # the last epoch does not mix


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--out", "grid.jpg"], "`--out` must be a .png file path"),
        (["--copies", "0"], "`--copies` must be an integer in [1, 20]"),
        (["--aug_mixup", "2"], "`aug_mixup` must be a number in [0, 1]"),
    ],
)
def test_augment_preview_bad_flags(flags, message, small_data, tmp_path, monkeypatch, capsys):
    from cnnhub.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["augment-preview", str(small_data), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(error_lines(err)) == 1
    assert list(tmp_path.iterdir()) == []
