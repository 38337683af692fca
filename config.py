"""Your defaults for this checkout: edit this file to change what `python run_training.py` does.

Every key of `cnnhub/defaults.py` (each documented there and in `python run_training.py --help`)
may be set here; a key set here replaces the packaged default, and config files (`-c`) and flags
still override it. Relative paths are relative to the folder of this file, so the commands work
from any current folder. `cnnhub` reads this file when it runs from this checkout or from an
editable install of it (`pip install -e .`); a plain `pip install .` reads only its packaged
defaults (pass your settings with `-c` and flags).
"""

# The Fashion-MNIST sample shipped in data/ (10 classes, 100 training / 30 validation images).
DATA_DIR_TRAIN = "data/fashion_mnist_sample/train"
DATA_DIR_VALID = "data/fashion_mnist_sample/valid"
