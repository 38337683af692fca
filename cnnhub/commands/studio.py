"""``cnnhub studio [--root DIR] [--host 127.0.0.1] [--port 7860]``: serve the web app of
:mod:`cnnhub.studio` on this machine."""

from __future__ import annotations

import sys

from cnnhub.cli import OneLineParser
from cnnhub.errors import CnnhubError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def command(argv: list[str]) -> int:
    """``cnnhub studio``: parse the flags, warn about a public address, serve until Ctrl-C."""
    parser = OneLineParser(
        prog="cnnhub studio",
        description="A local web app to inspect data, build, train, compare, try and export "
        "models (the same engine and run folders as the command line).",
    )
    parser.add_argument(
        "--root", default=".", help="Workspace folder: data is chosen under it, runs go to its "
        "model_repository/. [default: the current folder]",
    )  # fmt: skip
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="Address to listen on. [default: 127.0.0.1, this machine only]",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=7860, help="Port. [default: 7860]")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        raise CnnhubError(f"`--port` must be from 1 to 65535. Received: port={args.port}")
    from cnnhub.studio.workspace import Workspace

    workspace = Workspace(args.root)
    if args.host not in LOCAL_HOSTS:
        sys.stderr.write(
            f"WARNING: the studio listens on {args.host}: anyone who can reach this address "
            "can read the workspace and start training. It has no login; prefer 127.0.0.1 "
            "with an SSH tunnel.\n"
        )
    print(f"cnnhub studio: http://{_url_host(args.host)}:{args.port}/ (workspace "
          f"{workspace.root}; Ctrl-C stops it)", flush=True)  # fmt: skip
    try:
        from cnnhub.studio.app import launch  # lazy: Gradio loads only for this command
    except ModuleNotFoundError as exc:
        if exc.name != "gradio":
            raise
        raise CnnhubError(
            "cnnhub studio needs Gradio: pip install -r requirements.txt (or pip install "
            "'cnnhub[studio]'). Received: no module named gradio"
        ) from None

    launch(workspace, args.host, args.port, block=True)
    return 0


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
