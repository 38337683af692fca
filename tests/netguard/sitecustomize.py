"""Python imports this at start-up when tests put this folder on PYTHONPATH: no network."""

import no_network  # noqa: F401
