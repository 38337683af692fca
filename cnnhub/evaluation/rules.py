"""The names of the best-weights rules of :func:`cnnhub.evaluation.selection.choose_best`.

A module of its own, without imports, so that the configuration's checks and ``--help`` can
name the rules without loading the evaluation code (pandas, scikit-learn)."""

RULES = ("macro_f1", "coverage_at_precision", "min_class_recall")
"""Names accepted by :func:`~cnnhub.evaluation.selection.choose_best`'s ``rule``: macro_f1,
coverage_at_precision, min_class_recall."""
