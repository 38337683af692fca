"""``cnnhub models``: print the model registry (:mod:`cnnhub.registry`)."""

from __future__ import annotations

from cnnhub.cli import OneLineParser
from cnnhub.registry import (
    format_table,
)


def command(argv: list[str]) -> int:
    """``cnnhub models``: print the registry table."""

    OneLineParser(prog="cnnhub models", description="Print the model registry.").parse_args(argv)
    print(format_table())
    return 0
