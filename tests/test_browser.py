"""The classroom in a real browser: JupyterLab runs notebook 01 and its UMAP slider moves the plot;
an exported HTML page draws its plotly figures with the network off.

Needs Debian's Chromium and ChromeDriver (``apt-get install chromium chromium-driver``, done
by ``.ci/run``) and selenium (requirements-test.txt). Without them the tests skip, unless
``EXPLAINER_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns the skip into a failure.
Screenshots are kept in ``build/test-artifacts/``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "build" / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# The flags that keep headless Chromium off the network it cannot reach (see the machine notes).
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1800"]


def _require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        message = f"browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("EXPLAINER_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def browser():
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(what, timeout: float, interval: float = 1.0, message: str = ""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s: {message}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab, headless, serving a copy of notebook 01 whose profile is ``ci``."""
    _require_browser()
    import nbformat
    nb = nbformat.read(str(REPO / "notebooks" / "01_poisoning.ipynb"), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert 'profile: str = "classroom"' in params.source
    params.source = params.source.replace('profile: str = "classroom"', 'profile: str = "ci"')
    nbformat.write(nb, str(tmp_path / "01_poisoning.ipynb"))
    port, token = _free_port(), "explainer-browser-test"
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         '--ServerApp.jpserver_extensions={"jupyterlab_rise": True}'],  # JUPYTER_NO_CONFIG skips its config
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env={**os.environ, "JUPYTER_NO_CONFIG": "1"})
    try:
        def up():
            if server.poll() is not None:
                raise AssertionError("JupyterLab exited: " + (tmp_path / "jupyterlab.log").read_text()[-500:])
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False
        _wait(up, 90, 0.5, "JupyterLab did not start")
        yield f"http://127.0.0.1:{port}/lab/tree/01_poisoning.ipynb?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.copy(tmp_path / "jupyterlab.log", ARTIFACTS / "jupyterlab.log") if ARTIFACTS.exists() else None


JS_UMAP_STATE = """
const labels = [...document.querySelectorAll('.widget-label')].filter(l => l.textContent.trim() === 'iterate');
if (!labels.length) return null;
let box = labels[0];
while (box && !box.querySelector('.js-plotly-plot')) box = box.parentElement;
if (!box) return null;
const plot = box.querySelector('.js-plotly-plot');
const title = plot.querySelector('.gtitle');
const handle = labels[0].parentElement.querySelector('.noUi-handle');
return {title: title ? title.textContent : '', points: plot.querySelectorAll('.scatterlayer .point').length,
        slider: handle ? handle.getAttribute('aria-valuenow') : null};
"""


@pytest.mark.browser
def test_notebook_01_in_jupyterlab_renders_the_umap_widget_and_follows_the_slider(browser, jupyterlab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(jupyterlab)
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120, 1, "notebook did not open")
    time.sleep(3)  # let the kernel start before asking it to run everything
    try:
        run_menu = _wait(lambda: [m for m in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
                                  if m.text.strip() == "Run"], 30, 1, "no Run menu")
        run_menu[0].click()
        item = _wait(lambda: [i for i in browser.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel")
                              if i.text.strip() == "Run All Cells"], 10, 0.5, "no 'Run All Cells' item")
        item[0].click()
        state = _wait(lambda: (s := browser.execute_script(JS_UMAP_STATE)) and s["points"] > 0 and s["title"] and s,
                      900, 2, "the UMAP widget of notebook 01 did not render")
        errors = browser.execute_script(
            "return [...document.querySelectorAll('[data-mime-type=\"application/vnd.jupyter.error\"]')]"
            ".map(e => e.textContent.slice(0, 300));")
        assert not errors, errors
        assert "step" in state["title"]
        before = state["title"]
        handle = browser.execute_script(
            "const l = [...document.querySelectorAll('.widget-label')].find(l => l.textContent.trim() === 'iterate');"
            "return l.parentElement.querySelector('.noUi-handle');")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
        handle.send_keys(Keys.END)  # noUiSlider's keyboard support: jump to the last iterate
        after = _wait(lambda: (s := browser.execute_script(JS_UMAP_STATE)) and s["title"] != before and s,
                      60, 0.5, "the plot did not follow the slider")
        assert after["slider"] != state["slider"] and after["points"] == state["points"]
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", handle)
        time.sleep(1)
    finally:
        browser.save_screenshot(str(ARTIFACTS / "browser-01_poisoning.png"))
    assert (ARTIFACTS / "browser-01_poisoning.png").stat().st_size > 10_000
    # The present mode (jupyterlab-rise): the same notebook as live slides.
    browser.get(jupyterlab.replace("/lab/tree/", "/rise/"))
    slides = _wait(lambda: browser.execute_script("return document.querySelectorAll('.reveal .slides section').length"),
                   120, 1, "the present mode showed no slides")
    time.sleep(2)
    browser.save_screenshot(str(ARTIFACTS / "browser-01_present_mode.png"))
    assert slides >= 5 and "Poisoning" in browser.find_element(By.CSS_SELECTOR, ".reveal .slides").text


@pytest.mark.browser
def test_exported_html_draws_its_figures_offline(browser, ci_notebook):
    """``explainer run`` HTML: plotly.js embedded, no remote script, every figure drawn."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folder = ci_notebook("01")
    html = folder / "01_poisoning.html"
    browser.get(html.as_uri())
    counts = _wait(lambda: (c := browser.execute_script(
        "return [document.querySelectorAll('.plotly-graph-div').length,"
        " document.querySelectorAll('.plotly-graph-div .main-svg').length];")) and c[0] > 0 and c[1] >= c[0] and c,
        60, 0.5, "figures were not drawn")
    assert counts[0] >= 2
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    remote = [u for u in fetched if u.startswith(("http:", "https:"))]
    remote += [e["message"] for e in browser.get_log("browser") if "Failed to load resource" in e["message"]]
    assert not remote, remote
    browser.save_screenshot(str(ARTIFACTS / "browser-01_poisoning_html.png"))
    _press_play_and_see_it_move(browser, "01 (the cloak at work)")
    # The static deck (`explainer run --slides`): reveal.js from disk, a figure drawn on its slide.
    browser.get((folder / "01_poisoning.slides.html").as_uri())
    total = _wait(lambda: browser.execute_script("return window.Reveal && Reveal.isReady() && Reveal.getTotalSlides()"),
                  30, 0.5, "the deck did not start")
    for _ in range(total):  # to the first slide with a drawn figure
        if browser.execute_script("return !!Reveal.getCurrentSlide().querySelector('.plotly-graph-div .main-svg')"):
            break
        browser.execute_script("Reveal.next()")
    assert browser.execute_script("return !!Reveal.getCurrentSlide().querySelector('.plotly-graph-div .main-svg')")
    time.sleep(1)
    browser.save_screenshot(str(ARTIFACTS / "browser-01_poisoning_deck.png"))
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert not [u for u in fetched if not u.startswith(("file:", "data:", "blob:"))], fetched
    assert not [e["message"] for e in browser.get_log("browser") if "Failed to load resource" in e["message"]]


# The first plotly figure with animation frames, its play button pressed as a reader would, and
# what its traces show now (JSON), to see the figure move without a kernel.
ANIMATED = """
const gd = [...document.querySelectorAll('.plotly-graph-div')].find(g => g._transitionData &&
    g._transitionData._frames && g._transitionData._frames.length > 1);
if (!gd) return null;
if (arguments[0]) {
  const play = [...gd.querySelectorAll('.updatemenu-button')].find(b => b.textContent.includes('play'));
  play.dispatchEvent(new MouseEvent('click', {bubbles: true}));
}
return JSON.stringify(gd.data.map(t => [t.x, t.y]));
"""


def _press_play_and_see_it_move(browser, what: str):
    before = _wait(lambda: browser.execute_script(ANIMATED, False), 30, 0.5, f"{what}: no animated figure")
    browser.execute_script(ANIMATED, True)
    _wait(lambda: browser.execute_script(ANIMATED, False) != before, 30, 0.2, f"{what}: play did not move it")


@pytest.mark.browser
def test_the_trainers_animations_play_in_the_exported_pages_without_a_kernel(browser, ci_notebook):
    """02's and 04's exported pages (``explainer run``): pressing play moves their animation."""
    for name, what in (("02_adaptive_defence", "02 (the trainer adapting)"), ("04_time_travel", "04 (the trainer waiting)")):
        browser.get((ci_notebook(name[:2]) / f"{name}.html").as_uri())
        _press_play_and_see_it_move(browser, what)
