"""``python -m cnnhub <command>`` / ``cnnhub <command>``: one entry point for every command.

Each command's module is imported only when it runs, so ``--help`` never loads TensorFlow.
"""

from __future__ import annotations

import sys

COMMANDS = {
    "train": "Train models (same flags as run_training.py).",
    "models": "Print the model registry.",
}


def _usage() -> str:
    lines = ["usage: cnnhub <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, text in COMMANDS.items()]
    lines += ["", "Run `cnnhub <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        from cnnhub.runner import train_main

        return train_main(rest, prog="cnnhub train")
    if command == "models":
        from cnnhub.registry import format_table

        print(format_table())
        return 0
    sys.stderr.write(
        f"cnnhub: error: unknown command `{command}`; choose one of {', '.join(COMMANDS)}. "
        f"Received: {command}\n"
    )
    return 2
