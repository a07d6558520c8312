"""The widgets in a real browser: JupyterLab in the system Chromium, driven by Playwright.

A kernel-only test sets ``.value`` in Python; here a learner's actions travel the whole way:
a key press on a slider in Chromium, the widget's JavaScript, the comm to the kernel, the
kernel's new PNG back to the page. Two notebooks are opened in one JupyterLab server:

* a copy of ``notebooks/08_sampling.ipynb`` (``ATTNLAB_FAST=1``): Run All, no cell shows an
  error, then the temperature slider moves and the next-token chart and its summary change;
* a two-cell notebook written here that builds :func:`attnlab.widgets.attention_head_explorer`:
  picking another head changes the heatmap and its caption.

The server serves a temporary folder (the notebooks are copies, so nothing in the repository
is touched), listens on 127.0.0.1 at a free port with a random token, keeps its settings in
that folder, and is stopped with its kernels when the tests end, pass or fail. Chromium is
Debian's ``chromium`` (``.ci/run`` installs it); Playwright downloads nothing. Screenshots
go to ``tests/artifacts/`` (ignored by git).

Run only these: ``.venv/bin/python -m pytest -m browser tests/test_browser.py``.
"""

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.name != "posix", reason="the server is stopped through POSIX process "
                       "groups and /proc"),
]

nbformat = pytest.importorskip("nbformat")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(it comes with attnlab[dev])")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (attnlab[notebooks])")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
# What JupyterLab shows when a cell raised or a widget could not be drawn.
ERROR_SIGNS = ("Traceback", "Error displaying widget", "Failed to load model class",
               "Model not found", "Error rendering output")
START_TIMEOUT_S = 90  # the server answering
RUN_ALL_TIMEOUT_S = 240  # Run All of notebook 08 (ATTNLAB_FAST=1): 60-100 s on 2 busy cores
WIDGET_TIMEOUT_S = 30  # one widget update, key press to new PNG on the page
HEADS_NOTEBOOK = "attention_heads.ipynb"
PROMPT = "The value of "  # notebook 08's prompt (its playground starts with it)
# The notebook on screen; every selector below starts here, so that a notebook open in
# another tab is never counted.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _kept_by_top_p(text: str, temperature: float, top_p: float) -> str:
    """What the playground's summary must say ("kept n of V tokens") for ``text`` under the
    shipped model, worked out here with NumPy: softmax(logits / T), most likely first, a token
    kept while the mass before it is below ``top_p`` (top-k off)."""
    import jax.numpy as jnp
    import numpy as np

    from attnlab import load_pretrained

    checkpoint = load_pretrained()
    ids = jnp.asarray(checkpoint.tokenizer.encode(text))[None]
    logits = np.asarray(checkpoint.model(ids, deterministic=True), np.float64)[0, -1]
    z = logits / temperature
    probs = np.sort(np.exp(z - z.max()) / np.exp(z - z.max()).sum())[::-1]
    mass_before = np.cumsum(probs) - probs
    return f"kept {int((mass_before < top_p).sum())} of {len(probs)} tokens"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _heads_notebook() -> "nbformat.NotebookNode":
    v4 = nbformat.v4
    return v4.new_notebook(cells=[
        v4.new_markdown_cell("One attention head of the shipped mini GPT (written by "
                             "tests/test_browser.py)."),
        v4.new_code_cell("from attnlab import load_pretrained\n"
                         "from attnlab.widgets import attention_head_explorer\n\n"
                         "checkpoint = load_pretrained()\n"
                         "explorer = attention_head_explorer(checkpoint.model, "
                         "checkpoint.tokenizer,\n"
                         "                                   text=\"def f(x):\\n    return x + 1\","
                         " layer=0, head=0)\n"
                         "explorer"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})


def _kill_kernels(runtime_dir: Path) -> None:
    """SIGKILL the kernels this server started (they run in sessions of their own, so the
    server's process group does not reach them): the processes whose command line names a
    connection file in this test's own runtime folder."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(runtime_dir) in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _api(url: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def _end_sessions(url: str, token: str) -> None:
    """Shut down every kernel the server runs (its notebook sessions)."""
    for session in _api(url, token, "sessions"):
        _api(url, token, f"sessions/{session['id']}", method="DELETE")


def _stop(server: subprocess.Popen, url: str, token: str, runtime_dir: Path) -> None:
    """Stop the server and its kernels: ask politely, then signal its process group."""
    if server.poll() is None:
        try:
            _api(url, token, "shutdown", method="POST")
            server.wait(timeout=20)
        except Exception:  # no answer, or too slow: signals below
            pass
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if server.poll() is not None:
            break
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass
    _kill_kernels(runtime_dir)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no `chromium` on PATH: install Debian's package (`apt-get install chromium`; "
                    ".ci/run does this) to run the browser tests")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium):
    """A JupyterLab server on 127.0.0.1 serving a temporary folder; yields (url, token, root).
    Stopped, with its kernels, whatever happens in the tests."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root, home = base / "notebooks", base / "jupyter"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "08_sampling.ipynb", root)
    nbformat.write(_heads_notebook(), root / HEADS_NOTEBOOK)
    runtime_dir = home / "runtime"
    # Settings that stop JupyterLab asking about news and updates (a toast over the page).
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), base64.b32encode(os.urandom(20)).decode().lower()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ATTNLAB_FAST": "1",
        # The kernel imports this checkout's attnlab even though it starts in the temporary folder.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=None"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root (a container) without it
    log = (base / "server.log").open("w")
    server = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n"
                            f"{(base / 'server.log').read_text()[-3000:]}")
            try:
                _api(url, token, "status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer at {url} within {START_TIMEOUT_S} s")
                time.sleep(0.5)
        yield url, token, root
    finally:
        _stop(server, url, token, runtime_dir)
        log.close()


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, lab, request):
    """A page in a fresh browser context (no cookies, storage or settings from another test).
    When the test fails, a screenshot of the page goes to tests/artifacts/FAILED-<test>.png.
    Afterwards the test's kernels are shut down (the next test has the CPU to itself)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WIDGET_TIMEOUT_S * 1000)
    # The Colab badge and any other outside address cannot load offline; don't wait for them.
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    failed_before = request.session.testsfailed
    try:
        yield page
    finally:
        try:
            if request.session.testsfailed > failed_before:
                _screenshot(page, f"FAILED-{request.node.name}.png")
        finally:
            context.close()
            with contextlib.suppress(OSError):  # a server that no longer answers is stopped anyway
                _end_sessions(*lab[:2])


# --- driving JupyterLab ---------------------------------------------------------------------


def _open(page, lab, name: str):
    """Open notebook ``name``; wait until all its cells are on the page and the kernel is idle.
    Returns the notebook as read from disk."""
    url, token, root = lab
    notebook = nbformat.read(root / name, as_version=4)
    # A workspace of its own: JupyterLab restores no tab that an earlier test left open.
    workspace = re.sub(r"\W", "-", name)
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{name}?token={token}",
              timeout=START_TIMEOUT_S * 1000)
    cells = page.locator(f"{PANEL} .jp-Notebook .jp-Cell")
    _wait_until(lambda: cells.count() == len(notebook.cells), START_TIMEOUT_S,
                f"the {len(notebook.cells)} cells of {name} to appear")
    _wait_for_idle(page, START_TIMEOUT_S)
    return notebook


def _wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.25, got=None):
    """Poll ``condition`` until it is truthy and return it; after ``timeout_s`` fail, saying
    what was awaited and, if ``got`` is given, what ``got()`` shows instead."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s} s for {what}"
                                 + (f"; got {got()!r}" if got else ""))
        time.sleep(poll_s)
    return result


def _kernel_status(page) -> str:
    return page.locator("#jp-main-statusbar").inner_text()


def _wait_for_idle(page, timeout_s: float, quiet_s: float = 1.5) -> None:
    """Until the status bar says the kernel is idle and it stays so for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while True:
        busy = ("Idle" not in _kernel_status(page)
                or page.locator(f"{PANEL} .jp-CodeCell .jp-InputPrompt", has_text="*").count() > 0)
        now = time.monotonic()
        if busy:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= quiet_s:
            return
        if now > deadline:
            raise AssertionError(f"the kernel was not idle within {timeout_s} s: "
                                 f"{_kernel_status(page)!r}")
        time.sleep(0.25)


def _run_all(page, lab, name: str, notebook) -> None:
    """Run > Run All Cells; wait until every code cell has run, save, and check the saved file:
    every code cell has an execution count and no output is an error."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator("#jp-mainmenu-run .lm-Menu-itemLabel",
                 has_text=re.compile(r"^Run All Cells$")).click()
    # A cell whose source is hidden (a reference solution) shows no prompt, not even [n].
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    shown = sum(not cell.metadata.get("jupyter", {}).get("source_hidden") for cell in code)
    prompts = page.locator(f"{PANEL} .jp-CodeCell .jp-InputPrompt")

    def finished() -> bool:
        texts = [text.strip() for text in prompts.all_text_contents()]
        return "[*]:" not in texts and sum(bool(re.fullmatch(r"\[\d+\]:", t)) for t in texts) == shown

    _wait_until(finished, RUN_ALL_TIMEOUT_S, f"all {len(code)} code cells of {name} to run",
                poll_s=1.0)
    _wait_for_idle(page, RUN_ALL_TIMEOUT_S)
    page.locator(f"{PANEL} .jp-Notebook").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    path = lab[2] / name

    def saved():
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        return cells if all(c.execution_count is not None for c in cells) else None

    _wait_until(saved, WIDGET_TIMEOUT_S, f"{name} to be saved with every cell run")
    errors = [(cell.execution_count, output.get("ename"), output.get("evalue"))
              for cell in saved() for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"cells of {name} raised: {errors}"


def _errors_shown(page) -> list[str]:
    """The text of every output that shows an error (read from the DOM, also off screen)."""
    outputs = page.locator(f"{PANEL} .jp-OutputArea-output").all_text_contents()
    return [text[:500] for text in outputs if any(sign in text for sign in ERROR_SIGNS)]


def _image_bytes(image) -> bytes:
    """The bytes behind an ``<img>`` (a widget ``Image`` shows a blob: URL)."""
    encoded = image.evaluate("""async (img) => {
        const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let text = "";
        for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
    }""")
    return base64.b64decode(encoded)


def _control(page, label: str):
    """The control (slider, dropdown...) whose description label reads exactly ``label``.
    Not limited to the notebook on screen, so that it can serve as ``has=`` of another
    locator (those are relative); scope it with ``page.locator(PANEL).locator(...)``."""
    name = page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$"))
    return page.locator(".widget-inline-hbox", has=name)


def _screenshot(page, name: str, element=None) -> None:
    """Save the page as tests/artifacts/<name>, scrolled to ``element`` if one is given."""
    ARTIFACTS.mkdir(exist_ok=True)
    if element is not None:
        # Cells above it may still change height as they are drawn: scroll, settle, scroll.
        for _ in range(2):
            element.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / name)


# --- the tests ------------------------------------------------------------------------------


def test_sampling_notebook_runs_and_the_temperature_slider_redraws_the_chart(lab, page):
    notebook = _open(page, lab, "08_sampling.ipynb")
    _run_all(page, lab, "08_sampling.ipynb", notebook)
    errors = _errors_shown(page)
    assert not errors, f"cells show errors: {errors}"

    panel, control = page.locator(PANEL), _control(page, "temperature")
    slider = panel.locator(control)
    assert slider.count() == 1
    playground = panel.locator(".widget-vbox", has=control).filter(has=page.locator("img")).last
    chart, info = playground.locator("img.widget-image"), playground.locator(".widget-html-content")
    readout = slider.locator(".widget-readout")
    playground.scroll_into_view_if_needed()
    # The notebook's last word on the slider (the cell after the playground) is 0.80.
    _wait_until(lambda: readout.inner_text().strip() == "0.80", WIDGET_TIMEOUT_S,
                "the temperature readout to show 0.80", got=readout.inner_text)
    # The kernel's state as the notebook left it: T = 0.80, top-k off, top-p 0.95.
    _wait_until(lambda: _kept_by_top_p(PROMPT, 0.80, 0.95) in info.first.inner_text(),
                WIDGET_TIMEOUT_S, "the summary at temperature 0.80", got=info.first.inner_text)
    before_png, before_info = _image_bytes(chart), info.first.inner_text()
    assert before_png.startswith(b"\x89PNG"), "the chart is not a PNG"

    handle = slider.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(14):  # 14 steps of 0.05: 0.80 -> 1.50
        page.keyboard.press("ArrowRight")
    _wait_until(lambda: readout.inner_text().strip() == "1.50", WIDGET_TIMEOUT_S,
                "the readout to show 1.50", got=readout.inner_text)
    # The kernel answered with a new chart and the summary for T = 1.50.
    expected = _kept_by_top_p(PROMPT, 1.50, 0.95)
    _wait_until(lambda: _image_bytes(chart) != before_png and expected in info.first.inner_text(),
                WIDGET_TIMEOUT_S, f"a new chart and {expected!r}", got=info.first.inner_text)
    assert info.first.inner_text() != before_info
    _wait_for_idle(page, WIDGET_TIMEOUT_S)
    after_png = _image_bytes(chart)
    assert after_png.startswith(b"\x89PNG") and after_png != before_png
    _screenshot(page, "08_sampling_temperature_1.50.png", playground)
    errors = _errors_shown(page)
    assert not errors, f"cells show errors after moving the slider: {errors}"


def test_attention_head_explorer_redraws_when_another_head_is_picked(lab, page):
    notebook = _open(page, lab, HEADS_NOTEBOOK)
    _run_all(page, lab, HEADS_NOTEBOOK, notebook)
    errors = _errors_shown(page)
    assert not errors, f"cells show errors: {errors}"

    panel, control = page.locator(PANEL), _control(page, "head")
    head = panel.locator(control).locator("select")
    explorer = panel.locator(".widget-vbox", has=control)
    image = explorer.locator("img.widget-image")
    caption = explorer.locator(".widget-html-content")
    _wait_until(lambda: "layer 0, head 0:" in caption.inner_text(), WIDGET_TIMEOUT_S,
                "the caption for layer 0, head 0")
    before = _image_bytes(image)
    assert before.startswith(b"\x89PNG"), "the heatmap is not a PNG"

    head.select_option(label="2")
    _wait_until(lambda: "layer 0, head 2:" in caption.inner_text(), WIDGET_TIMEOUT_S,
                "the caption for layer 0, head 2")
    _wait_until(lambda: _image_bytes(image) != before, WIDGET_TIMEOUT_S, "the heatmap to change")
    after = _image_bytes(image)
    assert after.startswith(b"\x89PNG") and after != before
    _screenshot(page, "attention_heads_layer0_head2.png", explorer)
    errors = _errors_shown(page)
    assert not errors, f"cells show errors after picking a head: {errors}"
