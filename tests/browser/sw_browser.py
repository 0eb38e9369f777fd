"""Browser test machinery (see /work/shared/BROWSER_TESTING.md): Debian Chromium driven by Playwright,
one JupyterLab server, notebooks run in it, and the kernel read or written through jupyter_client.

Used by `conftest.py`; other widget tests reuse it through the fixtures there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client import BlockingKernelClient
from nbclient import NotebookClient
from nbformat.sign import NotebookNotary
from playwright.sync_api import Error as PlaywrightError

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "scopewidgets" / "static"
JS_LIB = REPO / "js" / "lib"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def chromium_path() -> str:
    """Debian's Chromium ($SCOPEWIDGETS_CHROMIUM, /usr/bin/chromium or `chromium` on PATH), or raise
    with the command that installs it. Never `playwright install`: its download fails here."""
    chosen = os.environ.get("SCOPEWIDGETS_CHROMIUM")
    for candidate in [chosen] if chosen else ["/usr/bin/chromium", shutil.which("chromium")]:
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError(
        "Chromium is missing: the browser tests need it. Install it with "
        "`apt-get install -y chromium chromium-driver` (or set SCOPEWIDGETS_CHROMIUM to its path)."
    )


def bundle(name: str) -> str:
    """Text of a built front-end file, failing clearly when `npm run build` has not been run."""
    path = STATIC / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `npm install && npm run build` first")
    return path.read_text(encoding="utf-8")


def wait_until(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll `check()` until it returns something truthy; raise `TimeoutError` naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {result!r})")
        time.sleep(interval)


@dataclass
class Recorder:
    """A Playwright page plus everything it did: request URLs, dialogs, console errors, page errors."""

    page: Any
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        self.page.on("pageerror", lambda err: self.page_errors.append(str(err)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def non_local_requests(self) -> list[str]:
        """Requests whose scheme is not file:, data:, blob: or about:."""
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)]


# ------------------------------------------------------------------------------------------ fake-model pages
_RUN_JS_TEST = """async ({ harness, widget, tests, name }) => {
  const load = async (source) => {
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    try { return await import(url); } finally { URL.revokeObjectURL(url); }
  };
  const lib = await load(harness);
  const loaded = await load(widget);
  const module = loaded.default ?? loaded;
  const suite = await load(tests);
  const el = document.createElement("div");
  document.body.appendChild(el);
  try {
    return await suite[name]({ ...lib, widget: module, el });
  } finally {
    el.remove();
  }
}"""


def run_js_test(page: Any, test_file: Path, name: str) -> Any:
    """Run `export async function name(ctx)` of a `tests/js/<widget>.test.js` file on about:blank.

    `ctx` holds everything `tests/js/harness.js` exports (fakeModel, array, assert, ...), `widget` (the
    default export of `static/<widget>.js`, imported from a Blob URL) and `el` (an attached div). A test
    file named after a module of `js/lib/` without imports (`color.test.js`) gets that module's exports as
    `widget`, read from the source.
    """
    widget_name = test_file.name.removesuffix(".test.js")
    lib = JS_LIB / f"{widget_name}.js"
    sources = {
        "harness": (test_file.parent / "harness.js").read_text(encoding="utf-8"),
        "widget": lib.read_text(encoding="utf-8") if lib.is_file() else bundle(f"{widget_name}.js"),
        "tests": test_file.read_text(encoding="utf-8"),
        "name": name,
    }
    try:
        return page.evaluate(_RUN_JS_TEST, sources)
    except PlaywrightError as exc:  # the JS assertion's message and stack, without Playwright's frames
        raise AssertionError(f"{test_file.name}::{name}: {exc.message}") from None


# ------------------------------------------------------------------------------------------ JupyterLab
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kernel_env() -> dict[str, str]:
    """The environment for kernels: this checkout's `scopewidgets` comes first on PYTHONPATH."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


class Kernel:
    """A kernel of the lab server, read and written with jupyter_client."""

    def __init__(self, connection_file: Path) -> None:
        self.client = BlockingKernelClient(connection_file=str(connection_file))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=30)

    def _reply(self, msg_id: str, timeout: float) -> dict[str, Any]:
        while True:
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    def eval(self, expression: str, timeout: float = 30.0) -> str:
        """The `text/plain` repr of `expression` in the kernel (`"3"`, `"'text'"`, `"None"`)."""
        msg_id = self.client.execute("", silent=True, user_expressions={"r": expression})
        result = self._reply(msg_id, timeout)["user_expressions"]["r"]
        if result["status"] != "ok":
            raise RuntimeError(f"{expression!r} failed in the kernel: {result['ename']}: {result['evalue']}")
        return result["data"]["text/plain"]

    def run(self, code: str, timeout: float = 60.0) -> None:
        """Execute `code` in the kernel; raise with the kernel's error if it fails."""
        msg_id = self.client.execute(code, silent=False, store_history=False)
        content = self._reply(msg_id, timeout)
        if content["status"] != "ok":
            raise RuntimeError(f"kernel error: {content.get('ename')}: {content.get('evalue')}")

    def wait_for(self, expression: str, expected: str, timeout: float = 10.0) -> None:
        """Poll until `eval(expression) == expected` (both as reprs); the error shows the last value."""
        seen: list[str] = []

        def check() -> bool:
            seen.append(self.eval(expression))
            return seen[-1] == expected

        try:
            wait_until(check, timeout, what=f"{expression} == {expected}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the kernel says {expression} == {seen[-1]}") from None

    def close(self) -> None:
        self.client.stop_channels()


class LabServer:
    """One JupyterLab server in a temporary root, with isolated config, settings and runtime dirs.

    The kernels it starts import this checkout's `scopewidgets` (PYTHONPATH points at the repo).
    """

    def __init__(self, root: Path, token: str = "scopewidgets-test") -> None:
        self.root, self.token, self.port = root, token, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        dirs = {name: root / f".{name}" for name in ("runtime", "config", "data", "settings", "workspaces")}
        self.runtime, self.data_dir = dirs["runtime"], dirs["data"]
        notify = dirs["settings"] / "@jupyterlab" / "apputils-extension"
        notify.mkdir(parents=True)
        (notify / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        env = {
            **kernel_env(),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        }
        self.log = (root / "lab.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(
            self._ready,
            timeout=60,
            interval=0.25,
            what=f"JupyterLab on port {self.port} (log: {root / 'lab.log'})",
        )

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"{self.url}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with {self.process.returncode}; see {self.root / 'lab.log'}"
            )
        try:
            return self.api("status") is not None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """Write `cells` (code) as notebook `name` in the server's root."""
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        path = self.root / name
        nbformat.write(notebook, path)
        return path

    def open_notebook(
        self, page: Any, name: str, cells: list[str], wait_for: str, timeout: float = 90.0
    ) -> Kernel:
        """Write, open and run all cells of a notebook; wait for the CSS selector `wait_for` to appear.

        Returns a `Kernel` attached to the notebook's kernel.
        """
        self.write_notebook(name, cells)
        self.open(page, name)
        kernel = "window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel"
        kernel_ready = f"() => {kernel}?.status === 'idle'"
        page.wait_for_function(kernel_ready, timeout=timeout * 1000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(wait_for, timeout=timeout * 1000)
        kernel_id = page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id"
        )
        return Kernel(self.runtime / f"kernel-{kernel_id}.json")

    def open(self, page: Any, name: str, wait_for: str | None = None, timeout: float = 90.0) -> None:
        """Open notebook `name` (already in the root) without running it; wait for `wait_for` if given."""
        page.goto(f"{self.url}/lab/tree/{name}?token={self.token}&reset")
        if wait_for:
            page.wait_for_selector(wait_for, timeout=timeout * 1000)

    def execute(self, name: str, cells: list[str]) -> Any:
        """Run `cells` headless (nbclient) with widget state stored, as JupyterLab's "Save Widget State"
        does; return the notebook (not yet saved: see `save`)."""
        notebook = nbformat.read(self.write_notebook(name, cells), as_version=4)
        client = NotebookClient(notebook, timeout=120, kernel_name="python3", store_widget_state=True)
        client.execute(cwd=str(self.root), env=kernel_env())  # env, cwd: passed on to start_kernel
        return notebook

    def save(self, notebook: Any, name: str, trusted: bool) -> Path:
        """Write `notebook` as `name`; `trusted` signs it for this server (as running it here would)."""
        if trusted:
            NotebookNotary(data_dir=str(self.data_dir)).sign(notebook)
        path = self.root / name
        nbformat.write(notebook, path)
        return path

    def shutdown_kernels(self) -> None:
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        try:
            self.api("shutdown", method="POST")
            self.process.wait(timeout=20)
        except Exception:
            self.process.kill()
            self.process.wait()
        finally:
            self.log.close()
