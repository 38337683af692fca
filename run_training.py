"""Train image classifiers: `python run_training.py -m resnet50 -dtrain DIR -dvalid DIR`.

Defaults come from cnnhub/defaults.py and this checkout's config.py; run
`python run_training.py --help` for every flag.
"""

import sys

from cnnhub.commands.train import train_main

if __name__ == "__main__":
    sys.exit(train_main(sys.argv[1:]))
