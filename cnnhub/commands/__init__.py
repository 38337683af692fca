"""One module per command (``cnnhub <command>``): its flags, printing and exit status.

Each has a ``command(argv) -> int`` that :mod:`cnnhub.cli` runs. The work itself lives in the
library modules, which never import a command module.
"""
