"""The dataset layouts cnnhub reads (one reader each in :mod:`cnnhub.data.sources`).

A module of its own, without imports, so that the configuration's checks and ``--help`` can
name the layouts without loading the readers (pandas)."""

DATA_FORMATS = ("folder", "csv_pixels", "csv_paths", "idx", "cifar_bin", "npz")
"""Values accepted for ``data_format`` besides ``"auto"``."""
