"""Every page of the built site works in a real browser, with no network.

The site is built strictly, served on 127.0.0.1, and each page is loaded in headless Chromium
driven through the Chrome DevTools Protocol (the ``websockets`` package; no browser download).
A page fails on any formula left as raw ``\\( ... \\)`` text or shown as a KaTeX error, a broken
image, a console error or uncaught exception, a failed request, or a request to another host
(the maths renderer and fonts must ship with the site), or docstring markup (``:param``,
``.. warning::``, ``Example::``) shown as text on the API page.

Slow (a site build and a browser): ``pytest -m slow tests/test_browser.py``. Needs the
``chromium`` executable (Debian: ``apt-get install chromium``); skipped without it.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)"),
]

#: What the page reports once loaded: formulas, rendered formulas, KaTeX errors, broken images.
PROBE = """(() => {
  const maths = [...document.querySelectorAll('.arithmatex')];
  const raw = maths.filter(e => !e.querySelector('.katex')).map(e => e.textContent.slice(0, 80));
  const errors = [...document.querySelectorAll('.katex-error')]
    .map(e => e.textContent.slice(0, 80));
  const images = [...document.querySelectorAll('article img')];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);
  // Docstring markup that reached the page as text (outside code): Sphinx fields and directives.
  const article = document.querySelector('article').cloneNode(true);
  article.querySelectorAll('pre, code, .arithmatex').forEach(e => e.remove());
  const markup = article.textContent.match(/:param |:math:|:class:|\\.\\. \\w+::|\\w::\\s/g) || [];
  return JSON.stringify({maths: maths.length, raw, errors, images: images.length, broken, markup,
                         ready: document.readyState});
})()"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """Build the site once and serve it on a free local port."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("websockets")
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", folder],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        )
        assert result.returncode == 0, result.stderr[-4000:]
        handler = functools.partial(_QuietHandler, directory=folder)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Path(folder), f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


class Browser:
    """A headless Chromium and one DevTools session on one tab."""

    def __init__(self, profile: str):
        from websockets.sync.client import connect

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group, so that close() can stop the renderer and helper
            # processes too: they go on writing to the profile after the browser exits.
            start_new_session=True,
        )
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                url = match.group(1)
            elif not line and self.process.poll() is not None:
                break
        assert url, "chromium did not start its DevTools server"
        # Keep reading stderr so that chromium never blocks on a full pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()
        self.ids = itertools.count(1)
        self.browser = connect(url, max_size=None)
        target = self.call(self.browser, "Target.createTarget", url="about:blank")["targetId"]
        page_url = url.split("/devtools/")[0] + f"/devtools/page/{target}"
        self.page = connect(page_url, max_size=None)
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(self.page, f"{domain}.enable")

    def call(self, socket, method: str, **params):
        message_id = next(self.ids)
        socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(socket.recv(timeout=60))
            if message.get("id") == message_id:
                assert "error" not in message, message
                return message["result"]
            if socket is getattr(self, "page", None):
                self.events.append(message)

    def drain(self, seconds: float) -> None:
        """Collect the page's events for a while (late console messages, requests)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.page.recv(timeout=left)))
            except TimeoutError:
                break

    def load(self, url: str) -> dict:
        self.events.clear()
        self.call(self.page, "Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, f"{url} did not finish loading"
            self.drain(0.2)
        self.drain(0.5)
        for _ in range(20):
            value = self.call(self.page, "Runtime.evaluate", expression=PROBE, returnByValue=True)
            report = json.loads(value["result"]["value"])
            if not report["raw"]:
                break
            self.drain(0.25)
        return report

    def close(self) -> None:
        for socket in (self.page, self.browser):
            socket.close()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        # Whatever of the group outlived the browser goes now.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def problems(report: dict, events: list[dict], base: str) -> list[str]:
    """Everything wrong with one loaded page, as readable lines."""
    found = [f"unrendered maths: {text!r}" for text in report["raw"]]
    found += [f"KaTeX error: {text!r}" for text in report["errors"]]
    found += [f"broken image: {src}" for src in report["broken"]]
    found += [f"docstring markup shown as text: {text!r}" for text in report["markup"]]
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            found.append(f"console error: {args}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            found.append(f"log error: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith((base, "data:", "blob:", "about:")):
                found.append(f"request to another host: {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"failed request: {params.get('errorText')}")
    return found


def pages(folder: Path) -> list[str]:
    return sorted(
        str(p.relative_to(folder).parent).replace(".", "") + "/"
        for p in folder.rglob("index.html")
        if "vendor" not in p.parts and "broken-probe" not in p.parts
    )


def test_every_page_renders_offline_in_a_browser(site):
    folder, base = site
    paths = pages(folder)
    assert "api/" in paths and "/" in paths and len(paths) > 10, paths
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = Browser(profile)
        try:
            failures, total_maths = {}, 0
            for path in paths:
                url = base + ("/" + path).replace("//", "/")
                report = browser.load(url)
                total_maths += report["maths"]
                found = problems(report, browser.events, base)
                if found:
                    failures[path] = found
        finally:
            browser.close()
    assert not failures, json.dumps(failures, indent=1)[:6000]
    # The check above must have had something to check.
    assert total_maths > 100, total_maths


def test_the_probe_catches_unrendered_maths_and_broken_images(site, tmp_path):
    """The check can fail: a page whose renderer is missing and whose image is absent."""
    folder, base = site
    broken = folder / "broken-probe"
    broken.mkdir()
    (broken / "index.html").write_text(
        '<html><body><article><span class="arithmatex">\\(x^2\\)</span>'
        '<img src="missing.png"><p>.. warning:: raw</p>'
        '<script>console.error("boom")</script></article></body></html>'
    )
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = Browser(profile)
        try:
            report = browser.load(f"{base}/broken-probe/")
            found = problems(report, browser.events, base)
        finally:
            browser.close()
    assert any(line.startswith("unrendered maths") for line in found), found
    assert any(line.startswith("broken image") for line in found), found
    assert any(line.startswith("console error") for line in found), found
    assert any(line.startswith("docstring markup") for line in found), found
