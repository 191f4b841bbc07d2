"""Headless Chromium driven over the DevTools protocol (one page's websocket): what prints the PDF scorecards
and what the report's tests open the page with. One browser process serves many pages."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from sipas_pipeline.errors import InputError
from sipas_pipeline.localhost import free_port

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def executable() -> Path:
    """The Chromium on this machine; InputError (one line) when there is none."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise InputError("no Chromium found (chromium, chromium-browser or google-chrome): install it, e.g. "
                     "apt-get install chromium, to print the PDF scorecards")


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"Chromium: {method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv(timeout=timeout))
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        """Navigate to `url` and wait until it has loaded."""
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", returnByValue=True, expression=expression)["result"].get("value")


class Browser:
    """A headless Chromium for as long as the `with` block lasts; `.page` is its first page's DevTools client."""

    def __init__(self, profile: Path | None = None, width: int = 1100, height: int = 1400):
        self.profile = profile
        self.size = (width, height)
        self.proc: subprocess.Popen | None = None
        self.page: DevTools | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Browser:
        if self.profile is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sipas-chromium-")
            self.profile = Path(self._tmp.name)
        port = free_port()
        self.proc = subprocess.Popen([str(executable()), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--disable-dev-shm-usage", f"--remote-debugging-port={port}",
                                      f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pages: list[dict] = []
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [p for p in json.load(r) if p["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if not pages:
            self.__exit__(None, None, None)
            raise RuntimeError("Chromium did not start (no DevTools page)")
        self.page = DevTools(pages[0]["webSocketDebuggerUrl"])
        return self

    def __exit__(self, *exc) -> None:
        if self.page is not None:
            self.page.ws.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self._tmp is not None:
            self._tmp.cleanup()
