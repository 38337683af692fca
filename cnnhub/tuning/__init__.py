"""Hyperparameter search over cnnhub's config keys with Optuna (``python -m cnnhub tune``).

- :mod:`~cnnhub.tuning.space`: the search-space YAML, checked like a config before any trial.
- :mod:`~cnnhub.tuning.storage`: where a study lives (SQLite in the study folder by default, any
  Optuna database or journal file), and trials of dead processes marked failed.
- :mod:`~cnnhub.tuning.objective`: one trial = one ordinary training run, pruned per epoch.
- :mod:`~cnnhub.tuning.results`: ``study.csv``, the plots and ``best_config.yaml``.
- :mod:`~cnnhub.tuning.study`: the loop that ties them together.

See docs/tuning.md.
"""
