"""The browser viewer, driven in headless Chromium (Debian's ``chromium`` through Playwright): a finished job opens,
its canvas draws the image with the label overlay, the level table matches findings.json, hovering a level shows its
grades and measurements, and hiding a structure changes the picture. Skips where Playwright or Chromium is absent."""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from lumbar.io.write import write_nifti
from lumbar.service.app import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "viewer-test-token-0123456789"


@pytest.fixture
def server(tmp_path):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(tmp_path / "service", token=TOKEN, executor=ThreadPoolExecutor(1))
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.1)
    yield url
    uv.should_exit = True
    thread.join(10)


def _picture(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)


def test_the_viewer_shows_a_job_its_levels_and_its_overlay(server, tmp_path, phantom):
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    study = tmp_path / "t2.nii.gz"
    write_nifti(phantom.image.array, phantom.image, study)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with open(study, "rb") as f:
        job_id = httpx.post(f"{server}/jobs", files={"file": ("t2.nii.gz", f)}, headers=auth).json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{server}/jobs/{job_id}", headers=auth).json()["status"] != "done":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.3)
    findings = httpx.get(f"{server}/jobs/{job_id}/files/findings.json", headers=auth).json()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
        )
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        page.goto(f"{server}/")
        page.fill("#token", TOKEN)
        page.click("#login button")
        page.click(f"tr.job[data-id='{job_id}']")
        page.wait_for_selector(f"body[data-loaded='{job_id}']", timeout=60_000)
        page.wait_for_timeout(500)
        levels = page.eval_on_selector_all("tr.level", "rows => rows.map(r => r.dataset.level)")
        assert levels == [d["level"] for d in findings["discs"]]
        page.hover(f"tr.level[data-level='{levels[0]}']")
        details = page.inner_text("#details")
        assert details.startswith(levels[0]) and "pfirrmann" in details and "canal_ap_mm" in details
        canvas = page.locator("#gl")
        shown = _picture(canvas.screenshot())
        page.screenshot(path=str(tmp_path / "viewer.png"))
        assert shown.std() > 10, "the canvas drew nothing"
        colour = np.abs(shown[..., 0] - shown[..., 2]) > 40  # the overlay's colours, absent from a grey image
        assert colour.mean() > 0.01, "no label overlay on the image"
        for box in ("vertebra", "disc", "canal"):
            page.uncheck(f".show[value='{box}']")
        page.wait_for_timeout(300)
        hidden = _picture(canvas.screenshot())
        assert (np.abs(hidden[..., 0] - hidden[..., 2]) > 40).mean() < 0.2 * colour.mean()
        browser.close()
