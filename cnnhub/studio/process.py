"""Training subprocesses: the same ``run_training.py`` the command line runs, one per run folder.

A run starts as ``python run_training.py -c <config.yaml>`` (``--resume <run>`` to continue),
with an argument list, never a shell string. Its output goes through a pseudo-terminal where
the platform has one, so Keras prints its per-batch progress bar as in a terminal; the console
text and the latest epoch and batch are kept for the Train page. Stop sends SIGINT, exactly
Ctrl-C: the run ends after saving what it finished, and Resume continues it.

One writer per run folder: the :class:`Trainer` refuses a second start into a folder it is
already training (two browser tabs), and probes :mod:`cnnhub.run_lock` for a folder that
another process (a CLI run) holds.
"""

from __future__ import annotations

import codecs
import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnhub import run_lock
from cnnhub.errors import CnnhubError

CONSOLE_LINES = 400
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EPOCH = re.compile(r"^Epoch (\d+)/(\d+)")
_BATCH = re.compile(r"^\s*(\d+)/(\d+)\s")

try:
    import pty
except ImportError:  # pragma: no cover - Windows: plain pipes, no batch progress
    pty = None  # type: ignore[assignment]


def training_command() -> list[str]:
    """The command line of a training run, without its arguments.

    ``run_training.py`` of the checkout when cnnhub runs from one, else ``-m cnnhub train``
    (the same ``train_main``).
    """
    script = Path(__file__).resolve().parents[2] / "run_training.py"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "cnnhub", "train"]


@dataclass
class Job:
    """One training subprocess and what it printed."""

    run_dir: Path
    argv: list[str]
    process: subprocess.Popen
    started: float = field(default_factory=time.time)
    console: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=CONSOLE_LINES)
    )
    live_line: str = ""
    epoch: tuple[int, int] | None = None
    batch: tuple[int, int] | None = None
    stopping: bool = False
    _reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the subprocess has not exited."""
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def console_text(self) -> str:
        """The last lines of output, the line being rewritten (progress bar) last."""
        lines = list(self.console)
        if self.live_line:
            lines.append(self.live_line)
        return "\n".join(lines)

    def status(self) -> str:
        """One line: running (epoch, batch) or how it ended."""
        code = self.returncode
        if code is None:
            parts = ["stopping" if self.stopping else "running"]
            if self.epoch:
                parts.append(f"epoch {self.epoch[0]}/{self.epoch[1]}")
            if self.batch:
                parts.append(f"batch {self.batch[0]}/{self.batch[1]}")
            return ", ".join(parts)
        if code == 0:
            return "finished"
        if code in (130, -signal.SIGINT):
            return "stopped (resumable: press Resume)"
        return f"failed (exit status {code}): see the console"

    def _feed(self, text: str) -> None:
        """Split output into lines; ``\\r`` rewrites the live line (a progress bar)."""
        text = _ANSI.sub("", text.replace("\b", ""))
        for piece in re.split(r"(\r\n|\n|\r)", text):
            if piece in ("\n", "\r\n"):
                self._finish_line()
            elif piece == "\r":
                self._note(self.live_line)
                self.live_line = ""
            else:
                self.live_line += piece
                self._note(self.live_line)

    def _finish_line(self) -> None:
        self._note(self.live_line)
        if self.live_line.strip():
            self.console.append(self.live_line.rstrip())
        self.live_line = ""

    def _note(self, line: str) -> None:
        epoch = _EPOCH.match(line)
        if epoch:
            self.epoch = (int(epoch.group(1)), int(epoch.group(2)))
            self.batch = None
        batch = _BATCH.match(line)
        if batch:
            self.batch = (int(batch.group(1)), int(batch.group(2)))

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the subprocess and for its output to be read; return its exit status."""
        code = self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        return code


def _read_fd(job: Job, fd: int) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            break
        job._feed(decoder.decode(chunk))
    job._feed(decoder.decode(b"", final=True))
    job._finish_line()
    os.close(fd)


class Trainer:
    """Starts, stops and resumes training subprocesses; at most one per run folder."""

    def __init__(self, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None):
        self.env = env
        self.cwd = cwd
        self._lock = threading.Lock()
        self._jobs: dict[Path, Job] = {}

    def job(self, run_dir: str | os.PathLike) -> Job | None:
        """The latest job of ``run_dir`` (running or ended), if this studio started one."""
        return self._jobs.get(Path(run_dir).resolve())

    def jobs(self) -> list[Job]:
        """Every job of this studio, oldest first."""
        return sorted(self._jobs.values(), key=lambda job: job.started)

    def start(self, config_file: str | os.PathLike, run_dir: str | os.PathLike) -> Job:
        """Train ``run_training.py -c config_file`` into ``run_dir`` (named by the config)."""
        return self._launch(["-c", str(config_file)], run_dir)

    def resume(self, run_dir: str | os.PathLike) -> Job:
        """Continue a stopped run: ``run_training.py --resume run_dir``."""
        return self._launch(["--resume", str(Path(run_dir).resolve())], run_dir)

    def stop(self, run_dir: str | os.PathLike) -> bool:
        """Interrupt a running job as Ctrl-C does; False when it is not running."""
        job = self.job(run_dir)
        if job is None or not job.running:
            return False
        job.stopping = True
        job.process.send_signal(signal.SIGINT)
        return True

    def stop_all(self, timeout: float = 30.0) -> None:
        """Interrupt every running job and wait for them (the studio is closing)."""
        running = [job for job in self._jobs.values() if job.running]
        for job in running:
            self.stop(job.run_dir)
        for job in running:
            try:
                job.wait(timeout)
            except subprocess.TimeoutExpired:
                job.process.kill()

    def _launch(self, args: list[str], run_dir: str | os.PathLike) -> Job:
        key = Path(run_dir).resolve()
        with self._lock:
            current = self._jobs.get(key)
            if current is not None and current.running:
                raise CnnhubError(
                    f"Run folder {key} is already being trained by this studio (process "
                    f"{current.process.pid}). Wait for it to finish, or stop it first. "
                    f"Received: run={key.name!r}"
                )
            if key.is_dir():
                # Another process (a CLI run) may hold the folder: refuse now, clearly.
                run_lock.acquire(key)
                run_lock.release(key)
            job = self._spawn([*training_command(), *args], key)
            self._jobs[key] = job
        return job

    def _spawn(self, argv: list[str], run_dir: Path) -> Job:
        env = dict(self.env if self.env is not None else os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        common = dict(cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        if pty is not None:
            master, slave = pty.openpty()
            try:
                process = subprocess.Popen(argv, stdout=slave, stderr=slave, **common)
            finally:
                os.close(slave)
            fd = master
        else:  # pragma: no cover - Windows
            process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **common
            )
            fd = process.stdout.fileno()
        job = Job(run_dir, argv, process)
        job._reader = threading.Thread(target=_read_fd, args=(job, fd), daemon=True)
        job._reader.start()
        return job
