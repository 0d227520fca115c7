"""Real headless Chromium (Debian ``chromium`` + ``chromium-driver``) driven by Selenium.

The browser is installed with apt-get when missing and we are root. When it
cannot be had, tests fail in CI (``CI`` set) and are skipped with the reason
elsewhere. Selenium is given the system binaries explicitly, so it never
tries to download a browser or a driver.

Fixtures:

* ``chromium``: a session-wide WebDriver (fresh ``--user-data-dir``) with the
  browser console log enabled (``goog:loggingPrefs``);
* ``static_server``: a factory for a real ``http.server`` on 127.0.0.1
  serving a directory and recording the status of every request.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_CANDIDATES = ("chromedriver",)
DRIVER_EXTRA_PATHS = ("/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver")
APT_TIMEOUT = 900

CHROME_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


def _which(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    for p in extra:
        if os.access(p, os.X_OK):
            return p
    return None


def _find() -> tuple[str | None, str | None]:
    return _which(CHROMIUM_CANDIDATES), _which(DRIVER_CANDIDATES, DRIVER_EXTRA_PATHS)


def _apt_install() -> str:
    """Try ``apt-get install -y chromium chromium-driver``; returns what happened."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root, cannot apt-get install chromium chromium-driver"
    if not shutil.which("apt-get"):
        return "apt-get not available"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False)
        if proc.returncode != 0:
            # The package lists may be missing on a fresh machine.
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=APT_TIMEOUT, check=False)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"apt-get failed: {exc}"
    if proc.returncode != 0:
        return f"apt-get install exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
    return "installed"


@functools.cache
def browser_binaries() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, installing them if needed; else the reason why not."""
    browser, driver = _find()
    if browser and driver:
        return browser, driver
    outcome = _apt_install()
    browser, driver = _find()
    if browser and driver:
        return browser, driver
    return f"headless Chromium unavailable (chromium={browser}, chromedriver={driver}; {outcome})"


def require_browser() -> tuple[str, str]:
    found = browser_binaries()
    if isinstance(found, str):
        if os.environ.get("CI"):
            pytest.fail(found)
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium WebDriver with console logging (one per test session)."""
    browser, driver_path = require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path)
    from selenium.common.exceptions import WebDriverException

    try:
        drv = webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:  # the driver failed to start: say why
        message = f"headless Chromium did not start: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """Browser console entries of level SEVERE since the last call (the log is drained)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


@dataclass
class StaticServer:
    root: Path
    url: str
    #: (path, status) of every request, in order.
    requests: list[tuple[str, int]] = field(default_factory=list)

    @property
    def not_found(self) -> list[str]:
        return [p for p, s in self.requests if s >= 400]


@pytest.fixture
def static_server() -> Iterator[Callable[[Path], StaticServer]]:
    """Factory: serve a directory over real HTTP on 127.0.0.1 (stopped after the test)."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(root: Path) -> StaticServer:
        record = StaticServer(root=root, url="")
        lock = threading.Lock()

        class Handler(SimpleHTTPRequestHandler):
            def log_request(self, code: Any = "-", size: Any = "-") -> None:
                with lock:
                    record.requests.append((self.path, int(code) if str(code).isdigit() else 0))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        handler = functools.partial(Handler, directory=str(root))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, name="static-server", daemon=True)
        thread.start()
        servers.append((httpd, thread))
        record.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        return record

    yield start
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
