"""The real server (`kodomo serve` on a migrated SQLite file with the demo city) and Chromium.

Chromium comes from Debian (/usr/bin/chromium); Playwright never downloads a browser of its own.
When it is missing and we are root, `apt-get install -y chromium` is tried; otherwise the browser
tests fail when KODOMO_REQUIRE_BROWSER=1 and are skipped (with the reason shown) when not.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
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
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def _unavailable(reason: str) -> None:
    if os.environ.get("KODOMO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required (KODOMO_REQUIRE_BROWSER=1): {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True,
                          timeout=1200, check=False)


def _install_chromium() -> str | None:
    """None when Chromium is there (perhaps just installed), else why it is not."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and we are not root to install it (apt-get install chromium)"
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and apt-get is not available"
    result = _apt_get("install", "-y", "chromium")
    if result.returncode != 0:
        # The package lists may simply be empty (a slim image); refresh them once.
        _apt_get("update")
        result = _apt_get("install", "-y", "chromium")
    if result.returncode != 0 or not CHROMIUM.exists():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return f"apt-get install -y chromium failed: {' / '.join(tail)}"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = _install_chromium()
    if reason is not None:
        _unavailable(reason)
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        _unavailable(f"the playwright package is not installed ({error})")
    manager = sync_playwright().start()
    try:
        launched = manager.chromium.launch(executable_path=chromium_path, headless=True,
                                           args=CHROMIUM_ARGS)
    except Exception as error:
        manager.stop()
        _unavailable(f"Chromium at {chromium_path} did not start: {error}")
        raise
    try:
        yield launched
    finally:
        launched.close()
        manager.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kodomo() -> list[str]:
    script = Path(sys.executable).parent / "kodomo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "main"]


def _server_env(data_dir: Path) -> dict[str, str]:
    # The test process's own KODOMO_* settings (secret, key file) are not the server's.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KODOMO_") or k == "KODOMO_DEMO_PASSWORD"}
    env.update({"KODOMO_DEMO": "1", "KODOMO_DATA_DIR": str(data_dir)})
    return env


def _run(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a", encoding="utf-8") as out:
        result = subprocess.run([*_kodomo(), *args], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"kodomo {' '.join(args)} failed:\n{log.read_text(encoding='utf-8')}")


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kodomo serve exited with {process.returncode}:\n"
                        f"{log.read_text(encoding='utf-8')}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"kodomo serve did not answer within {START_TIMEOUT}s:\n"
                f"{log.read_text(encoding='utf-8')}")


@pytest.fixture(scope="session")
def served_data(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Path:
    """A temporary data directory: a migrated SQLite file with the demo city."""
    data_dir = tmp_path_factory.mktemp("browser-server")
    env = _server_env(data_dir)
    log = data_dir / "server.log"
    _run(["db", "upgrade"], env, log)
    _run(["demo", "load"], env, log)
    return data_dir


@contextmanager
def _serving(data_dir: Path, face: str) -> Iterator[str]:
    """`kodomo serve --face FACE` on the data directory until the block ends; its base URL."""
    env = _server_env(data_dir)
    log = data_dir / f"server-{face}.log"
    port = _free_port()
    with log.open("a", encoding="utf-8") as out:
        process = subprocess.Popen(
            [*_kodomo(), "serve", "--face", face, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def server(served_data: Path) -> Iterator[str]:
    """The base URL of `kodomo serve` (both faces) with the demo city."""
    with _serving(served_data, "all") as url:
        yield url


@pytest.fixture(scope="session")
def staff_server(served_data: Path) -> Iterator[str]:
    """The base URL of `kodomo serve --face staff` (the LGWAN side) on the same database."""
    with _serving(served_data, "staff") as url:
        yield url


@pytest.fixture(scope="session")
def public_server(served_data: Path) -> Iterator[str]:
    """The base URL of `kodomo serve --face public` (the internet side) on the same database."""
    with _serving(served_data, "public") as url:
        yield url


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser context (no cookies) for each test."""
    context = browser.new_context(base_url=server, locale="ja-JP")
    context.set_default_timeout(15_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
