"""A real headless Chromium for tests of the HTML report: the DOM after scripts ran, console messages, a screenshot.

Chromium runs as a child process in its own session with a throw-away
profile; every run is ended by its pid (its process group) whatever happens.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import time

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
SKIP_REASON = (
    "chromium is not installed (apt-get install chromium; .ci/run installs it): the report is opened in a real browser"
)


@dataclasses.dataclass
class BrowserResult:
    dom: str
    console: list[str]  # console messages and uncaught errors the page logged
    screenshot: str
    seconds: float  # wall time of the slowest run


def _run(args: list[str], timeout: float) -> tuple[str, str, float]:
    start = time.time()
    proc = subprocess.Popen(
        [CHROMIUM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        else:  # the browser's helpers share its process group: end any left behind
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return out, err, time.time() - start


def open_report(path: str, workdir: str, height: int = 4000, timeout: float = 120) -> BrowserResult:
    """Opens ``path`` (file://) once: the DOM dumped with console logging and a 1280-wide screenshot.

    A Chromium that writes no screenshot beside the DOM dump (an older headless
    mode) is run a second time for it.
    """
    common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={os.path.join(workdir, 'chromium-profile')}",
        "--virtual-time-budget=10000",  # lets the page's load handler run before the dump
    ]
    url = "file://" + os.path.abspath(path)
    shot = os.path.join(workdir, "screenshot.png")
    if os.path.exists(shot):
        os.remove(shot)
    screenshot = [f"--screenshot={shot}", f"--window-size=1280,{height}"]
    dom, err, seconds = _run([*common, "--enable-logging=stderr", "--v=0", "--dump-dom", *screenshot, url], timeout)
    console = [line for line in err.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    if not os.path.exists(shot):
        _, _, again = _run([*common, *screenshot, url], timeout)
        seconds = max(seconds, again)
    return BrowserResult(dom, console, shot, seconds)


def ink(png_path: str) -> tuple[float, int]:
    """(share of pixels that are not near-white, number of distinct colours) of a screenshot."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png_path).convert("RGB"))[::4, ::4].reshape(-1, 3)
    inked = np.count_nonzero(pixels.min(axis=1) < 235)
    return inked / len(pixels), len(np.unique(pixels, axis=0))
