"""cnnhub's packaged defaults: every configuration key, its valid range and its help text.

This file is read, not imported: its UPPER_CASE assignments are the defaults and the comment
lines above each one are its `--help` text; a trailing `# range:` comment gives the valid range
of a numeric key as an interval (`[0, 1)`, `(0, inf)`), optionally followed by `or <word>` for
a word the key also accepts. Do not edit it to change your defaults; set keys instead in:

- the checkout's top-level `config.py` (used by `python run_training.py` and by `cnnhub` run
  from a checkout or an editable install; relative paths there are relative to its folder),
- a YAML/JSON file passed with `-c/--config` (same names, any case),
- command-line flags `--<key in lower case>` (see `python run_training.py --help`).

Precedence: this file < config.py < config file < flags. The resolved values are saved with
every run as `run_config.json`, so `python run_training.py -c <run>/run_config.json` repeats it.
Relative paths here, and in config files and flags, are relative to the current folder.
"""

# ---------------------------------------------------------------- data
# Folder of training images, one sub-folder per class (folder names are the class names).
DATA_DIR_TRAIN = ""
# Folder of validation images with exactly the same class sub-folders as the training folder.
DATA_DIR_VALID = ""
# Keep decoded, resized images in memory after the first epoch (fast; needs RAM for the dataset).
CACHE = True

# ---------------------------------------------------------------- task
# What a label is (see docs/tasks.md): single_label (one class per image), multi_label (a set of
# classes per image) or regression (one or more numbers per image).
TASK = "single_label"
# regression with csv_paths data: the CSV column(s) holding the numeric target, comma-separated
# for several (as many as NUM_TARGETS). Empty: the `label` column. Folder data: the class
# folders' names are the targets (numbers).
TARGET_COLUMN = ""
# regression: numbers predicted per image (one linear output each).
NUM_TARGETS = 1  # range: [1, 1000]
# multi_label: what separates an image's labels in a csv_paths label cell (img.jpg,beach|people;
# an empty cell is an image with no label).
LABEL_SEPARATOR = "|"

# ---------------------------------------------------------------- output
# Folder in which `model_repository/<run name>/` is created.
SAVE_LOCATION = "."
# Run folder name; empty means the model name, with -2, -3, ... added when that folder exists.
ITERATION_NAME = ""

# ---------------------------------------------------------------- model
# Backbone name (see `python run_training.py --list_models`); several comma-separated names
# train one run each with the same data and settings.
MODEL_NAME = "custom"
# Backbone weights: auto (imagenet for every model that has ImageNet weights, none for custom
# and squeezenet), imagenet (downloaded once into Keras's cache; see `python -m cnnhub
# weights`), none (random init), or an earlier run: its folder, or a .weights.h5 / .keras file
# of the same backbone (with other classes or another head, only the backbone is loaded).
WEIGHTS = "auto"
# Image height in pixels fed to the model (images are resized to IMG_HEIGHT x IMG_WIDTH); auto:
# the model's default input size (224 for resnet50, 299 for xception, ...), the source run's
# size with -w <run>, and for custom the training images' median height (at most 128).
IMG_HEIGHT = "auto"  # range: [1, 8192] or auto
# Image width in pixels fed to the model; auto as for IMG_HEIGHT.
IMG_WIDTH = "auto"  # range: [1, 8192] or auto
# Colour of the model's input: rgb, or grayscale (custom nets only: pretrained backbones
# expect RGB). Images of the other kind are converted.
COLOR_MODE = "rgb"
# How the backbone's feature map becomes a vector: avg, max or flatten.
POOLING = "avg"
# Units of each dense layer of the head, in order; [] for none (softmax straight on the pooling).
NUM_NODES = [128]  # range: [1, 65536]
# Dropout rate after each dense layer; one per entry of NUM_NODES.
NUM_DROPOUTS = [0.3]  # range: [0, 1)
# Activation of the dense layers of the head (relu, gelu, swish, elu, tanh, sigmoid,
# leaky_relu): one for all, or one per layer separated by commas ("relu,gelu").
DENSE_ACTIVATION = "relu"
# Add BatchNormalization after each dense layer of the head.
DENSE_BATCH_NORM = False
# Conv blocks of the `custom` model: a preset name (auto, lenet, vgg_small, fashion,
# alexnet_small), a one-line spec like "c32k3-bn-mp2,c64k3-bn-mp2", or a list of block mappings
# (see docs/custom-cnns.md). auto derives the blocks from the image size and class count.
CUSTOM_CONV_BLOCKS = "auto"

# ---------------------------------------------------------------- training
# Train the model (false: only post-evaluate an existing run given with --run_dir).
START_TRAIN = True
# Score every saved epoch's weights on the validation data after training.
POST_EVAL = True
# Existing run folder for post-evaluation when START_TRAIN is false.
RUN_DIR = ""
# auto: fine_tune with pretrained weights (imagenet or a run), train_all with random ones;
# train_all: everything trains; freeze_all: backbone frozen, head trains; freeze_some: the first
# NUMBER_OF_LAYERS_TO_FREEZE backbone layers frozen; fine_tune: head only for FINE_TUNE_AFTER
# epochs, then the top FINE_TUNE_LAYERS backbone layers (0 = all) at a lower learning rate.
TRAINING_TYPE = "auto"
# freeze_some: how many backbone layers, counted from the input, stay frozen.
NUMBER_OF_LAYERS_TO_FREEZE = 0  # range: [0, 100000]
# fine_tune: epochs of head-only training before the backbone is unfrozen.
FINE_TUNE_AFTER = 3  # range: [1, 100000]
# fine_tune: how many of the backbone's top layers are unfrozen in phase 2 (0 = all).
FINE_TUNE_LAYERS = 0  # range: [0, 100000]
# fine_tune: the learning rate is multiplied by this in phase 2.
FINE_TUNE_LR_FACTOR = 0.1  # range: (0, 1]
# Total epochs (across both fine_tune phases); epochs are numbered from 1.
EPOCHS = 10  # range: [1, 100000]
# Images per batch.
BATCH_SIZE = 32  # range: [1, 65536]
# Optimizer: sgd, adam, adamw or rmsprop.
OPTIMIZER = "adam"
# Initial learning rate.
LEARNING_RATE = 0.001  # range: (0, 10]
# Momentum for sgd and rmsprop.
MOMENTUM = 0.9  # range: [0, 1)
# Weight decay (decoupled for adamw; L2-style decay for the others as Keras applies it).
WEIGHT_DECAY = 0.0  # range: [0, 1)
# Learning-rate schedule: constant, step (x LR_DECAY_FACTOR every LR_STEP_EPOCHS), cosine (to 0
# over EPOCHS), plateau (x LR_DECAY_FACTOR when val_loss stalls for LR_PATIENCE epochs),
# onecycle (per step: up from LEARNING_RATE/25 to LEARNING_RATE in 3/10 of the steps, then down
# to LEARNING_RATE/25/10^4; see docs/training.md).
LR_SCHEDULE = "constant"
# Time budget of the command, start-up included (e.g. 90s, 10m, 1.5h; empty = none; of each
# run with several models or folds): after the first epoch, EPOCHS becomes the most epochs
# that, with their scoring and the finishing steps, fit in it (EPOCHS stays the maximum), the
# last one shortened to what is left, and the schedule is stretched over them; see
# docs/training.md.
TIME_BUDGET = ""
# Epochs of linear learning-rate warm-up (per step, from ~0 to LEARNING_RATE) before the
# schedule, which then runs over the remaining epochs. 0 = off.
WARMUP_EPOCHS = 0  # range: [0, 100000]
# step schedule: epochs between decays.
LR_STEP_EPOCHS = 5  # range: [1, 100000]
# step and plateau schedules: multiply the learning rate by this at each decay.
LR_DECAY_FACTOR = 0.1  # range: (0, 1]
# plateau schedule: epochs without val_loss improvement before a decay.
LR_PATIENCE = 2  # range: [0, 100000]
# Loss: auto (the task's first), categorical_crossentropy or categorical_focal_crossentropy
# (single_label); binary_crossentropy or binary_focal_crossentropy (multi_label); mse, mae or
# huber (regression; huber's delta is one standard deviation of the training targets).
LOSS = "auto"
# Label smoothing for the loss (0 = off).
LABEL_SMOOTHING = 0.0  # range: [0, 1)
# Keep an exponential moving average of the weights (Keras optimizers' use_ema): the weights
# saved and scored each epoch, and the final ones, are the averaged model's.
EMA = False
# EMA: the average's momentum per training step (closer to 1 = longer memory).
EMA_MOMENTUM = 0.99  # range: [0, 1)
# Stop when EARLY_STOPPING_MONITOR has not improved for EARLY_STOPPING_PATIENCE epochs.
EARLY_STOPPING = False
# Metric watched by early stopping: val_loss, val_accuracy, loss or accuracy (regression:
# val_mae or mae instead of the accuracies).
EARLY_STOPPING_MONITOR = "val_loss"
# Epochs without improvement before early stopping.
EARLY_STOPPING_PATIENCE = 5  # range: [0, 100000]
# When early stopping fires, put back the weights of the best epoch in final_model.keras.
EARLY_STOPPING_RESTORE_BEST = True
# Random seed for weights, shuffling and augmentation.
SEED = 42  # range: [0, 4294967295]
# Bit-for-bit repeatable training on the same machine (TensorFlow op determinism, single-
# threaded augmentation); slower, see docs/reproducibility.md.
DETERMINISTIC = False

# ---------------------------------------------------------------- post-evaluation
# Which saved weights post-evaluation scores: all, or top:N (the N best epochs by
# EVAL_TOP_METRIC in training.log).
EVAL_WEIGHTS = "all"
# training.log column that ranks epochs for EVAL_WEIGHTS = top:N (val_accuracy or val_loss;
# regression: val_mae, which val_accuracy means there, or val_loss).
EVAL_TOP_METRIC = "val_accuracy"
# Confidence thresholds scored for precision/recall; [] = 0.0, 0.05, ..., 0.95, 0.99.
EVAL_THRESHOLDS = []  # range: [0, 1]
# How the best weights and deploy threshold are chosen: auto (the task's first), macro_f1 (best
# macro F1 at any threshold), coverage_at_precision (most images accepted with precision_micro
# >= BEST_MIN_PRECISION), or min_class_recall (best worst-class recall); regression: lowest
# validation mae, rmse or mape, or highest r2.
BEST_WEIGHT_RULE = "auto"
# Precision target of the coverage_at_precision rule.
BEST_MIN_PRECISION = 0.9  # range: [0, 1]
# Prefer later weights: above 0, the latest epoch whose score by BEST_WEIGHT_RULE is within
# this of the best score is chosen (in the rule's units), since on a small validation set the
# best of many noisy epoch scores is often a lucky earlier epoch. One standard error of an
# accuracy p on n images, sqrt(p (1 - p) / n), is a good value: 0.005 for 0.94 on 2,500.
BEST_EPOCH_TOLERANCE = 0.0  # range: [0, inf)
# Calibrate the chosen weights' confidences: none, or temperature (fit on the validation
# predictions by log loss, built into best_model.keras and every export; the deploy threshold
# is then chosen on the calibrated probabilities).
CALIBRATE = "none"
# Test-time augmentation when scoring (per-epoch validation, test data, `cnnhub evaluate` and
# `predict` by default): none, or views averaged with the original image, comma-separated:
# flip (left-right), vflip (up-down), crop (the centre, 0.9 of each side, resized back). Exports
# stay single-view.
TTA = "none"

# ---------------------------------------------------------------- augmentation (training only)
# Random left-right flips.
AUG_HORIZONTAL_FLIP = True
# Random up-down flips.
AUG_VERTICAL_FLIP = False
# With a flip on: mirror each image in every other epoch (which epochs drawn per image) instead
# of at random, so any two epochs show every image both ways; short runs learn faster.
AUG_ALTERNATE_FLIPS = False
# Random rotation, as a fraction of a full turn (0.05 = up to +-18 degrees; 0 = off).
AUG_ROTATION = 0.0  # range: [0, 0.5]
# Random zoom in/out, as a fraction of the image size (0 = off).
AUG_ZOOM = 0.1  # range: [0, 1)
# Random shift, as a fraction of the image size (0 = off).
AUG_TRANSLATION = 0.1  # range: [0, 1)
# Random contrast change factor (0 = off).
AUG_CONTRAST = 0.0  # range: [0, 1]
# Random brightness change, as a fraction of the 0-255 range (0 = off).
AUG_BRIGHTNESS = 0.0  # range: [0, 1]
# Random saturation change (keras RandomColorJitter), up to +-this (0 = off; rgb only).
AUG_SATURATION = 0.0  # range: [0, 1]
# Random hue shift (keras RandomColorJitter), up to +-this half-turn of the hue circle (0 = off;
# rgb only).
AUG_HUE = 0.0  # range: [0, 1]
# RandAugment (keras RandAugment): random operations applied to each image (0 = off).
AUG_RANDAUGMENT = 0  # range: [0, 10]
# RandAugment: strength of its operations.
AUG_RANDAUGMENT_MAGNITUDE = 0.5  # range: (0, 1]
# AugMix (keras AugMix): strength of its augmentation chains (0 = off).
AUG_AUGMIX = 0.0  # range: [0, 1]
# Random erasing (keras RandomErasing): probability that a patch of an image is blanked with
# noise (0 = off).
AUG_ERASING = 0.0  # range: [0, 1]
# MixUp (keras MixUp): blend pairs of images and their labels, with this Beta alpha (0 = off).
AUG_MIXUP = 0.0  # range: [0, 1]
# CutMix (keras CutMix): paste a patch of another image, labels mixed by area; this factor
# bounds the mixing weight (0 = off). Use MixUp or CutMix, not both.
AUG_CUTMIX = 0.0  # range: [0, 1]
# Train the last this many epochs without MixUp/CutMix, on clean labels (0 = mix throughout).
MIX_OFF_EPOCHS = 0  # range: [0, 100000]

# ---------------------------------------------------------------- speed and scale
# Distribution: auto (several GPUs -> mirrored, TF_CONFIG set -> multi_worker, else one device),
# one_device, mirrored (all GPUs of this host) or multi_worker (hosts listed in TF_CONFIG).
STRATEGY = "auto"
# Multiply LEARNING_RATE by the number of replicas (BATCH_SIZE is always the global batch).
SCALE_LR = False
# Split the CPU into this many logical devices (0 = no split), to run the mirrored strategy
# without GPUs, e.g. for testing.
LOGICAL_CPUS = 0  # range: [0, 1024]
# Mixed precision: float16 compute on GPUs, bfloat16 on CPUs, float32 softmax and weights.
MIXED_PRECISION = False
# Compile the training step with XLA.
JIT_COMPILE = False
# freeze_all: compute the frozen backbone's features once and train the head on them: auto (on
# when there is no augmentation), true or false. Saved weights are the full model's as usual.
FEATURE_CACHE = "auto"
# With FEATURE_CACHE and augmentation: how many augmented copies of each image to featurise.
FEATURE_CACHE_COPIES = 1  # range: [1, 1000]

# ---------------------------------------------------------------- logging
# Show TensorFlow's start-up log messages.
VERBOSE = False
# Log the finished run to MLflow (config as parameters, per-epoch metrics, best weights,
# artifacts): a tracking URI (sqlite:///path/mlflow.db, http://host:5000), auto for
# sqlite:///<SAVE_LOCATION>/mlflow.db (the flag alone means auto), or empty for off.
MLFLOW = ""

# ---------------------------------------------------------------- data sources, splits, protocols
# Layout of DATA_DIR_TRAIN/VALID/TEST: auto (detected from each path), folder (one sub-folder of
# images per class), csv_pixels (label then pixel values per row), csv_paths (columns
# path,label), idx (MNIST-style images file, labels file beside it), cifar_bin (CIFAR .bin
# batches) or npz (arrays x and y).
DATA_FORMAT = "auto"
# Test data (any layout, the training classes) scored after training with the weights chosen on
# validation; results in <run>/evaluations/<name>-<hash>/ (summary.json). Empty = no test set.
DATA_DIR_TEST = ""
# Hold out this fraction of each class of the training data for validation (seeded), instead of
# DATA_DIR_VALID; the split is saved in the run folder as split.csv. 0 = off.
VAL_SPLIT = 0.0  # range: [0, 1)
# split.csv of an earlier run (columns path,label,split) to reuse its train/valid split of
# DATA_DIR_TRAIN instead of DATA_DIR_VALID or VAL_SPLIT. Empty = off.
SPLIT_FILE = ""
# Text file of class names, one per line: line v names integer label v (CSV, IDX, CIFAR and
# npz data; class folders are named by their folders). Empty = labels name themselves.
CLASS_NAMES_FILE = ""
# Shape of the images in csv_pixels rows and flat npz arrays: height width [channels]; [] =
# square grayscale.
IMAGE_SHAPE = []  # range: [1, 65536]
# Stratified K-fold cross-validation of the training data (K >= 2): one run per fold in
# model_repository/<run name>/model_repository/fold_<k>/ and folds_summary.csv. 0 = off.
FOLDS = 0  # range: [0, 1000]
# Quick smoke run: use at most this many images per class of each split (seeded pick). 0 = all.
DEV = 0  # range: [0, 1000000000]
# Class weights in the training loss: none, balanced (n_images / (n_classes x n_class_images)),
# or a JSON mapping of class names to weights, e.g. '{"cat": 2.0}' (unnamed classes: 1).
CLASS_WEIGHT = "none"
# Balance the training split by repeating images of smaller classes (seeded) up to the size of
# the largest class; an alternative to CLASS_WEIGHT.
OVERSAMPLE = False
# With CACHE, cache decoded images in files under this folder instead of memory, for datasets
# larger than RAM (files deleted after the run). Empty = memory.
CACHE_DIR = ""
# Remember which image files decode, and their content hashes, in ~/.cache/cnnhub (or
# $CNNHUB_CACHE_DIR) so the next run or `cnnhub inspect` does not rescan unchanged files.
SCAN_CACHE = True
