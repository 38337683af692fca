"""cnnhub: pretrained CNN backbones + dense heads for folder-per-class image classification.

Importing the package is cheap (no TensorFlow); modules that need Keras import it themselves.
"""

__version__ = "0.1.0"
