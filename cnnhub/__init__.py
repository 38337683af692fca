"""cnnhub: pretrained CNN backbones + dense heads for folder-per-class image classification.

Importing the package is cheap (no TensorFlow); modules that need Keras import it themselves.
"""

import time

STARTED = time.perf_counter()
"""When cnnhub was first imported (~ process start): the start-up time line counts from it."""

__version__ = "0.1.0"
