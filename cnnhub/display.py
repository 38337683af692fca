"""Names from the file system and the data, made safe to show on a terminal.

Class names, file names and folder names are untrusted text: an ``ESC ]0;...BEL`` sequence
retitles the terminal, a right-to-left override (U+202E) reverses what follows, a newline
forges an output line, and a file name that is not valid UTF-8 (held by Python as lone
surrogates, ``surrogateescape``) cannot even be encoded for printing. Every command prints
such names through :func:`printable`.
"""

from __future__ import annotations

import sys
from typing import Any


def printable(text: Any) -> str:
    """``text`` with every non-printable character escaped as Python does in ``repr``.

    Control and format characters (ESC, BEL, newline, tab, U+202E, ...) and the lone
    surrogates that stand for undecodable file-name bytes become ``\\x1b``, ``\\u202e``,
    ``\\udcff`` and so on; printable text (any script) is unchanged. Applying it twice gives
    the same result as once.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def plot_text(text: Any) -> str:
    """``text`` as matplotlib draws it literally: :func:`printable`, and ``$`` -> ``\\$`` (no
    math mode). Lone surrogates would make matplotlib's font code raise."""
    return printable(text).replace("$", r"\$")


def warn(message: str) -> None:
    """Print ``warning: <message>`` on stderr (escaped: messages carry file names)."""
    sys.stderr.write(f"warning: {printable(message)}\n")
    sys.stderr.flush()


def safe_output() -> None:
    """Never fail to print a name: stdout and stderr escape what they cannot encode.

    A command's entry point calls this, a safety net under :func:`printable`: a file name that
    is not valid UTF-8, printed raw somewhere, then shows as ``\\udcff`` instead of raising
    ``UnicodeEncodeError`` (Python's default for stdout) at the end of a long run.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass  # not a text stream that can change (replaced by a test harness, closed)
