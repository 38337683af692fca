"""Keep TensorFlow's start-up log lines off the terminal unless the user asks for them.

TensorFlow's C++ libraries log while they load, before any Python code can configure them. With
TensorFlow 2.21 on an AVX-512 CPU, ``import tensorflow`` prints ``All log messages before
absl::InitializeLog() is called ...`` and ``oneDNN custom operations are on ...`` twice (each
of two shared libraries carries its own copy of the logging code). ``TF_CPP_MIN_LOG_LEVEL``
silences TensorFlow's own log calls but not that oneDNN line, and the only switch that removes
it, ``TF_ENABLE_ONEDNN_OPTS=0``, also turns oneDNN off (slower, different numerics). So, besides
setting the log level, the import itself runs with file descriptor 2 pointed at a temporary
file; the captured text is shown only if the import fails.

:func:`quiet_tensorflow` installs that behaviour for the first ``import tensorflow`` of the
process, whichever module does it (``keras`` imports TensorFlow too), so every command is
covered by one call made before it loads TensorFlow; ``cnnhub.cli.main`` makes it before any
command module is imported.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_set_log_level = False  # whether quiet_tensorflow set the variable (so verbose can undo it)


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's start-up logging unless ``verbose``; call before TensorFlow loads.

    Idempotent; ``verbose=True`` after an earlier quiet call undoes it (the training command
    knows its ``--verbose`` setting only once its flags are parsed).
    """
    global _set_log_level
    finder = next((f for f in sys.meta_path if isinstance(f, _QuietImportFinder)), None)
    if verbose:
        if finder is not None:
            sys.meta_path.remove(finder)
        if _set_log_level:
            os.environ.pop(_LOG_LEVEL, None)
            _set_log_level = False
        return
    if _LOG_LEVEL not in os.environ:  # a level the user chose stays theirs
        os.environ[_LOG_LEVEL] = "3"
        _set_log_level = True
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow|absl)")
    with contextlib.suppress(ImportError):
        import absl.logging  # lazy: heavy import, kept off the --help path

        absl.logging.set_verbosity(absl.logging.ERROR)
    if finder is None and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietImportFinder())


@contextlib.contextmanager
def hidden_stderr_fd() -> Iterator[None]:
    """Point file descriptor 2 (where C++ code writes) at a temporary file for the block.

    What was written there is shown on stderr after all if the block raises. Does nothing when
    descriptor 2 cannot be duplicated.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                capture.seek(0)
                sys.stderr.write(capture.read().decode("utf-8", "replace"))


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and wraps its loader in :class:`_QuietLoader`;
    removes itself once used."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib protocol
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader's ``exec_module`` with file descriptor 2 hidden."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec):  # noqa: ANN001 - importlib protocol
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001 - importlib protocol
        with hidden_stderr_fd():
            self._loader.exec_module(module)
