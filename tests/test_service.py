"""The HTTP service: a study uploaded, analysed and fetched over HTTP; the token, the upload limit, traversal and
hostile zips refused; a restart fails the jobs it interrupted; nothing read or written outside the data folder."""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from lumbar.io.write import write_nifti
from lumbar.service.app import TOKEN_FILE, create_app, ensure_token
from lumbar.service.jobs import INTERRUPTED, JobStore

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def service(tmp_path):
    root = tmp_path / "service"
    with TestClient(create_app(root, token=TOKEN, max_upload_bytes=4 * 1024**2, executor=ThreadPoolExecutor(1))) as c:
        yield c, root


@pytest.fixture(scope="module")
def phantom_nifti(tmp_path_factory, phantom):
    path = tmp_path_factory.mktemp("upload") / "t2 phantom.nii.gz"
    write_nifti(phantom.image.array, phantom.image, path)
    return path


def _wait(client: TestClient, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def _outside(root) -> set:
    """Every path beside the data folder (what a job must never touch)."""
    return {p for p in root.parent.rglob("*") if root not in p.parents and p != root}


def test_a_study_is_uploaded_analysed_and_its_results_fetched(service, phantom_nifti):
    client, root = service
    before = _outside(root)
    with open(phantom_nifti, "rb") as f:
        reply = client.post("/jobs", files={"file": ("t2 phantom.nii.gz", f)}, headers=AUTH)
    assert reply.status_code == 201, reply.text
    job = _wait(client, reply.json()["id"])
    assert job["status"] == "done", job
    assert {"findings.json", "report.html", "report.pdf"} <= set(job["files"])
    findings = client.get(f"/jobs/{job['id']}/files/findings.json", headers=AUTH)
    assert findings.status_code == 200 and findings.json()["discs"]
    assert findings.json()["input"]["source"] == "upload.nii.gz"  # not the service's own path
    assert str(root) not in findings.text and str(root) not in client.get(f"/jobs/{job['id']}", headers=AUTH).text
    assert client.get("/jobs", headers=AUTH).json()[0]["id"] == job["id"]
    assert _outside(root) == before  # the job wrote only inside the data folder
    uploads = list((root / "jobs" / job["id"] / "input").iterdir())
    assert [p.name for p in uploads] == ["upload.nii.gz"]  # the client's name is not used
    assert not (root / "jobs" / job["id"] / "view").exists()  # the viewer's copy is made only when it is asked for


def test_every_endpoint_needs_the_token_and_the_token_is_stored_hashed(service):
    client, root = service
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert client.get("/jobs", headers=headers).status_code == 401
        assert client.post("/jobs", files={"file": ("a.png", b"x")}, headers=headers).status_code == 401
    assert client.get("/jobs", headers=AUTH).status_code == 200
    assert TOKEN not in (root / TOKEN_FILE).read_text()
    assert client.get("/docs").status_code == 200  # the API's documentation is public; the API is not


def test_a_first_start_makes_a_token_once(tmp_path):
    """... and makes the data folder its user's alone: uploads and results are patient data (they were readable by
    every user under the usual umask)."""
    first = ensure_token(tmp_path)
    assert first and len(first) >= 32
    assert tmp_path.stat().st_mode & 0o777 == 0o700
    assert ensure_token(tmp_path) is None  # printed once: a restart keeps it and shows nothing
    assert first not in (tmp_path / TOKEN_FILE).read_text()


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(service):
    client, root = service
    reply = client.post("/jobs", files={"file": ("big.nii", b"\0" * (5 * 1024**2))}, headers=AUTH)
    assert reply.status_code == 413  # refused from its declared length, before reading it
    # Sent in chunks, with no length declared: refused while it streams in, and its partial copy removed.
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.nii"\r\n\r\n'
    chunks = iter([head, *([b"\0" * 1024**2] * 5), b"\r\n--B--\r\n"])
    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=B"}
    assert client.post("/jobs", content=chunks, headers=headers).status_code == 413
    assert client.get("/jobs", headers=AUTH).json() == []
    assert not (root / "uploads").exists() or not any((root / "uploads").iterdir())


def test_a_file_is_served_only_if_the_job_wrote_it(service, phantom_nifti):
    client, root = service
    (root.parent / "secret.txt").write_text("not yours")
    with open(phantom_nifti, "rb") as f:
        job = _wait(client, client.post("/jobs", files={"file": ("x.nii.gz", f)}, headers=AUTH).json()["id"])
    for name in ("../../../secret.txt", "..%2F..%2F..%2Fsecret.txt", "/etc/passwd", "../input/upload.nii.gz"):
        assert client.get(f"/jobs/{job['id']}/files/{name}", headers=AUTH).status_code == 404, name
    assert client.get(f"/jobs/{'0' * 32}", headers=AUTH).status_code == 404
    assert client.get("/jobs/..%2F..", headers=AUTH).status_code in (404, 422)


@pytest.mark.parametrize(
    ("name", "payload", "why"),
    [
        ("notes.nii.gz", b"this is not an image", "NIfTI"),
        ("evil.zip", None, "outside the archive"),
    ],
)
def test_a_bad_upload_fails_its_job_with_one_line_and_writes_nothing_outside(service, name, payload, why):
    client, root = service
    if payload is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("../../escaped.dcm", b"DICM")
        payload = buffer.getvalue()
    before = _outside(root)
    job = _wait(client, client.post("/jobs", files={"file": (name, payload)}, headers=AUTH).json()["id"])
    assert job["status"] == "failed" and why in job["error"] and "\n" not in job["error"], job
    assert str(root) not in job["error"]  # the service's own folders are not shown to the client
    assert _outside(root) == before and not list(root.parent.rglob("escaped.dcm"))


def test_a_restart_fails_the_jobs_it_interrupted(tmp_path):
    root = tmp_path / "service"
    store = JobStore(root)
    queued, running, done = store.create(), store.create(), store.create()
    store.set_stage(running, "segmenting slices")
    store.finish(done)
    with TestClient(create_app(root, token=TOKEN, executor=ThreadPoolExecutor(1))) as client:
        jobs = {j["id"]: j for j in client.get("/jobs", headers=AUTH).json()}
    assert jobs[queued]["status"] == jobs[running]["status"] == "failed"
    assert jobs[running]["error"] == INTERRUPTED and jobs[done]["status"] == "done"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data, port):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "lumbar.cli", "serve", "--data", str(data), "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _until(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # the server is still starting
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_server_killed_mid_job_restarts_with_the_job_failed_and_no_partial_output(tmp_path, phantom_nifti):
    """kill -9 of `lumbar serve` while a job runs: its worker dies with it (no orphan finishes the job later), the
    restarted service reports the job failed as interrupted, and the job's output holds no partial study."""
    import os
    import re
    import signal

    import httpx

    data, port = tmp_path / "service", _free_port()
    server = _start(data, port)
    try:
        token = _until(lambda: re.search(r"([A-Za-z0-9_-]{40,})", server.stdout.readline()).group(1))
        auth = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}"
        _until(lambda: httpx.get(f"{url}/jobs", headers=auth).status_code == 200)
        with open(phantom_nifti, "rb") as f:
            job_id = httpx.post(f"{url}/jobs", files={"file": ("x.nii.gz", f)}, headers=auth).json()["id"]
        _until(lambda: httpx.get(f"{url}/jobs/{job_id}", headers=auth).json()["status"] == "running")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        time.sleep(3)  # an orphaned worker would go on writing here
        server = _start(data, port)
        _until(lambda: httpx.get(f"{url}/jobs", headers=auth).status_code == 200)
        job = httpx.get(f"{url}/jobs/{job_id}", headers=auth).json()
        assert job["status"] == "failed" and job["error"] == INTERRUPTED
        time.sleep(3)
        assert httpx.get(f"{url}/jobs/{job_id}", headers=auth).json()["status"] == "failed"
        output = data / "jobs" / job_id / "output"
        assert not (output / "study").exists() or (output / "study" / "findings.json").is_file()
    finally:
        server.kill()
        server.wait(10)


def test_a_second_service_on_the_same_folder_is_refused_in_one_line_and_touches_nothing(tmp_path):
    """Two services on one --data folder would each take the other's running jobs for interrupted ones and clear
    its uploads: a second is refused (exit 2, one line) before it reads or clears anything, and holds nothing
    after."""
    from typer.testing import CliRunner

    from lumbar.cli import app
    from lumbar.io.locks import exclusive
    from lumbar.service.app import SERVICE_LOCK

    data = tmp_path / "service"
    ensure_token(data, TOKEN)
    (data / "tmp").mkdir()
    (data / "tmp" / "upload in progress").write_text("the first service's")
    with exclusive(data / SERVICE_LOCK, blocking=False) as held:  # the first service
        assert held
        result = CliRunner().invoke(app, ["serve", "--data", str(data), "--port", "1"])
    assert result.exit_code == 2 and "another lumbar service is using this folder" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert (data / "tmp" / "upload in progress").read_text() == "the first service's"
    with exclusive(data / SERVICE_LOCK, blocking=False) as held:
        assert held  # the refused one holds nothing


@pytest.fixture(scope="module")
def dicom_series(tmp_path_factory, phantom):
    from lumbar.io.dicom_write import write_dicom_series

    return write_dicom_series(phantom.image, tmp_path_factory.mktemp("dicom") / "series")


def test_a_dicom_series_uploads_as_several_files_or_as_a_zip(service, dicom_series):
    from lumbar.io import dicom

    client, _ = service
    files = [("file", (f"slice {k}.dcm", p.read_bytes())) for k, p in enumerate(dicom_series)]
    several = _wait(client, client.post("/jobs", files=files, headers=AUTH).json()["id"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for p in dicom_series:
            zf.write(p, f"study/series/{p.name}")
    zipped = _wait(
        client, client.post("/jobs", files={"file": ("s.zip", buffer.getvalue())}, headers=AUTH).json()["id"]
    )
    for job in (several, zipped):
        assert job["status"] == "done", job
        findings = client.get(f"/jobs/{job['id']}/files/findings.json", headers=AUTH).json()
        assert findings["input"]["format"] == "DICOM" and findings["discs"]
        assert "segmentation_seg.dcm" in job["files"]  # the DICOM SEG of a DICOM input
    assert client.get(f"/jobs/{zipped['id']}/image", headers=AUTH).status_code == 200  # the zip read again
    assert not dicom._EXTRACTED  # each unpacked zip removed once read: a worker and the service live on


def test_a_zip_member_with_an_absolute_path_is_refused(service):
    client, _ = service
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("/tmp/absolute.dcm", b"DICM")
    job = _wait(client, client.post("/jobs", files={"file": ("a.zip", buffer.getvalue())}, headers=AUTH).json()["id"])
    assert job["status"] == "failed" and "outside the archive" in job["error"]


def test_cors_is_off(service):
    client, _ = service
    preflight = client.options(
        "/jobs", headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    reply = client.get("/jobs", headers={**AUTH, "Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in reply.headers


def _crash(root: str, job_id: str, input_name: str) -> None:
    import os

    os._exit(1)  # what a crash in native code does to the worker process


def test_a_worker_that_dies_fails_its_job_and_the_service_goes_on(tmp_path, monkeypatch, phantom_nifti):
    """A job whose worker process dies is failed with the reason; the broken pool is replaced and the next job runs."""
    import lumbar.service.app as service_app
    from lumbar.resources import process_pool  # spawned, as the service's own: a fork of this threaded process can hang

    root = tmp_path / "service"
    with TestClient(create_app(root, token=TOKEN, executor=process_pool(1))) as client:
        monkeypatch.setattr(service_app, "run_job", _crash)
        first = _wait(client, client.post("/jobs", files={"file": ("a.png", b"x")}, headers=AUTH).json()["id"])
        assert first["status"] == "failed" and "worker analysing it stopped" in first["error"]
        monkeypatch.undo()
        with open(phantom_nifti, "rb") as f:
            second = _wait(client, client.post("/jobs", files={"file": ("b.nii.gz", f)}, headers=AUTH).json()["id"])
        assert second["status"] == "done", second


def _a_kills_its_worker(root: str, job_id: str, input_name: str) -> None:
    """The job of a PNG (a.png) kills its worker once another job is running (or after 5 s); any other job runs."""
    import os
    from pathlib import Path

    from lumbar.service.jobs import run_job

    if not input_name.endswith(".png"):  # the service stores an upload under a name of its own
        return run_job(root, job_id, input_name)
    store = JobStore(Path(root))
    store.set_stage(job_id, "segmenting slices")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(j.status == "running" and j.id != job_id for j in store.all()):
        time.sleep(0.05)
    os._exit(1)


def test_a_worker_that_dies_fails_its_own_job_alone_and_the_jobs_beside_it_still_run(
    tmp_path, monkeypatch, phantom_nifti
):
    """Two workers: the job of a.png kills its worker while the phantom's job runs in the other. A dead worker
    breaks its pool and every job in it; each was failed ("BrokenProcessPool"), one bad study taking the others
    down. Now each job that was running is run again alone: the phantom's is done, a.png's stops its worker again
    and is failed with the reason; a job queued behind them runs in the new pool."""
    import lumbar.service.app as service_app
    from lumbar.resources import process_pool  # spawned, as the service's own: a fork of this threaded process can hang

    monkeypatch.setattr(service_app, "run_job", _a_kills_its_worker)
    root = tmp_path / "service"
    with TestClient(create_app(root, token=TOKEN, executor=process_pool(2))) as client:
        with open(phantom_nifti, "rb") as f:
            beside = client.post("/jobs", files={"file": ("b.nii.gz", f)}, headers=AUTH).json()["id"]
        killer = client.post("/jobs", files={"file": ("a.png", b"x")}, headers=AUTH).json()["id"]
        with open(phantom_nifti, "rb") as f:
            behind = client.post("/jobs", files={"file": ("c.nii.gz", f)}, headers=AUTH).json()["id"]
        jobs = {job_id: _wait(client, job_id, timeout=300) for job_id in (beside, killer, behind)}
    assert jobs[beside]["status"] == "done" and jobs[behind]["status"] == "done", jobs
    assert jobs[killer]["status"] == "failed" and "stopped, alone too" in jobs[killer]["error"]


def test_workers_keep_their_temporary_files_in_the_services_folder(tmp_path):
    """A spawned worker does not inherit ``tempfile.tempdir``: an uploaded zip was unpacked, patient files and all,
    in the system's temporary folder (and left there by a killed worker). The workers' setup sets it."""
    import tempfile

    from lumbar.resources import process_pool
    from lumbar.service.jobs import worker_setup

    with process_pool(1, worker_setup, (str(tmp_path),)) as pool:
        assert pool.submit(tempfile.gettempdir).result() == str(tmp_path)


def test_uploads_a_stopped_service_was_receiving_are_removed_at_start(tmp_path):
    root = tmp_path / "service"
    half = root / "uploads" / "f3eddd" / "upload.nii"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"\0" * 1000)
    with TestClient(create_app(root, token=TOKEN, executor=ThreadPoolExecutor(1))):
        assert not (root / "uploads").exists() or not any((root / "uploads").iterdir())


@pytest.mark.parametrize(
    ("name", "header"),
    [
        (
            "detached.mha",
            b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\nElementDataFile = /etc/passwd\n",
        ),
        (
            "detached.mha",
            b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\n"
            b"ElementDataFile = ../../../token\n",
        ),
        (
            "detached.nrrd",
            b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\ndata file: /etc/hostname\n\n",
        ),
    ],
)
def test_an_uploaded_header_pointing_at_files_elsewhere_fails_its_job_and_reads_nothing(service, name, header):
    """A MetaImage or NRRD header may name its voxel file anywhere (a detached header): uploaded, it must not make the
    service read the server's own files (the token, /etc) into an image it would then serve back."""
    client, root = service
    before = _outside(root)
    job = _wait(client, client.post("/jobs", files={"file": (name, header)}, headers=AUTH).json()["id"])
    assert job["status"] == "failed" and "\n" not in job["error"] and str(root) not in job["error"], job
    assert "points to voxels outside its own folder" in job["error"], job
    assert not job.get("files")
    assert _outside(root) == before


def _upload_through_guard(headers: dict, chunks: list[bytes], limit: int = 1000) -> tuple[int, dict, int]:
    """Drive :class:`GuardedUploads` around an app that reads every body chunk: (status, reply, chunks read)."""
    import asyncio
    import json

    from lumbar.service.app import GuardedUploads

    read = []
    messages = [{"type": "http.request", "body": c, "more_body": k < len(chunks) - 1} for k, c in enumerate(chunks)]

    async def receive():
        read.append(1)
        return messages[len(read) - 1]

    async def app(scope, receive, send):  # a framework that reads the whole body before answering
        more = True
        while more:
            more = (await receive())["more_body"]
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b'{"detail": "stored"}'})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    guard = GuardedUploads(app, authorised=lambda h: h == f"Bearer {TOKEN}", limit=limit)
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"]), len(read)


def test_an_upload_is_refused_before_its_body_is_read():
    """No token, a wrong one, or a declared size over the limit: answered before a byte of the body is read. A
    chunked upload that declares nothing is stopped with 413 at the chunk that passes the limit, not at its end."""
    chunks = [b"x" * 400] * 10
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert _upload_through_guard(headers, chunks) == (401, {"detail": "missing or wrong API token"}, 0)
    too_large = {**AUTH, "Content-Length": "4000"}
    assert _upload_through_guard(too_large, chunks) == (413, {"detail": "upload over 1,000 bytes"}, 0)
    assert _upload_through_guard(AUTH, chunks) == (413, {"detail": "upload over 1,000 bytes"}, 3)  # 1,200 bytes read
    assert _upload_through_guard(AUTH, chunks[:2]) == (201, {"detail": "stored"}, 2)  # 800 bytes: within the limit


def test_a_chunked_upload_over_the_limit_gets_413_and_leaves_nothing(service):
    """Through the whole app (the guard in front of it, so that no body is read before the token is checked): an
    upload sent in chunks with no declared size, past the 4 MiB limit."""
    from lumbar.service.app import GuardedUploads

    client, root = service
    assert [m.cls for m in client.app.user_middleware] == [GuardedUploads]

    def body():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.nii.gz"\r\n\r\n'
        for _ in range(6):
            yield b"x" * 1024**2
        yield b"\r\n--b--\r\n"

    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
    reply = client.post("/jobs", content=body(), headers=headers)
    assert reply.status_code == 413 and reply.json() == {"detail": "upload over 4,194,304 bytes"}
    assert client.get("/jobs", headers=AUTH).json() == []
    assert not (root / "uploads").exists() or not any((root / "uploads").iterdir())


def test_a_picture_is_read_with_the_modality_and_pixel_size_sent_beside_it(service, phantom, tmp_path):
    """A PNG stores neither: the form fields ``modality`` and ``spacing_mm`` are the command line's options, kept with
    the job and used by the analysis and the viewer's image; a pixel size no image has is refused at once."""
    import nibabel as nib
    import numpy as np
    from PIL import Image

    client, root = service
    mid = phantom.image.sagittal_slices()[phantom.image.sagittal_slices().shape[0] // 2]
    png = tmp_path / "slice.png"
    Image.fromarray(np.clip(mid / np.percentile(mid, 99.5) * 255, 0, 255).astype(np.uint8)).save(png)
    sent = {"modality": "MR", "spacing_mm": "0.8"}
    reply = client.post("/jobs", files={"file": ("slice.png", png.read_bytes())}, data=sent, headers=AUTH)
    assert reply.status_code == 201, reply.text
    job = _wait(client, reply.json()["id"])
    stated = {"modality": "MR", "spacing_mm": 0.8, "series": None, "view": None, "force": False}
    assert job["status"] == "done" and job["options"] == stated, job
    findings = client.get(f"/jobs/{job['id']}/files/findings.json", headers=AUTH).json()
    assert findings["input"]["modality"] == "MR" and findings["input"]["spacing_mm"][-2:] == [0.8, 0.8]
    assert findings["units"] == "mm"
    assert client.get(f"/jobs/{job['id']}/image", headers=AUTH).status_code == 200
    view = nib.load(root / "jobs" / job["id"] / "view" / "image.nii.gz")
    assert view.header.get_zooms()[1:] == pytest.approx((0.8, 0.8))  # the viewer's image read with the options too
    for bad, said in (({"spacing_mm": "0.001"}, "spacing 0.001: a pixel size"), ({"modality": "PET"}, "modality:")):
        reply = client.post("/jobs", files={"file": ("slice.png", png.read_bytes())}, data=bad, headers=AUTH)
        assert reply.status_code == 400 and reply.json()["detail"].startswith(said), reply.text
    assert len(client.get("/jobs", headers=AUTH).json()) == 1  # nothing queued for a refused upload


def test_series_view_and_force_are_the_command_lines_options(service, phantom, tmp_path):
    """``series`` picks a series of a zipped DICOM study, ``force`` analyses what the router refuses (flagged),
    a ``view`` that is not a radiograph's is refused before anything is queued."""
    from lumbar.io.dicom_write import write_dicom_series
    from lumbar.io.write import write_nifti
    from lumbar.phantom import make_phantom

    client, _root = service
    study = tmp_path / "study"
    write_dicom_series(phantom.image, study / "a", series_description="SAG T2")
    other = make_phantom(shape=(5, 320, 288), seed=7, contrast="T1")
    write_dicom_series(other.image, study / "b", series_description="SAG T1")
    zipped = tmp_path / "study.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for f in sorted(study.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(study))
    import pydicom

    uid = pydicom.dcmread(next((study / "b").iterdir()), stop_before_pixels=True).SeriesInstanceUID
    reply = client.post("/jobs", files={"file": ("study.zip", zipped.read_bytes())}, data={"series": uid}, headers=AUTH)
    job = _wait(client, reply.json()["id"])
    assert job["status"] == "done" and job["options"]["series"] == uid, job
    findings = client.get(f"/jobs/{job['id']}/files/findings.json", headers=AUTH).json()
    assert findings["input"]["series_description"] == "SAG T1"
    viewed = client.get(f"/jobs/{job['id']}/image", headers=AUTH)
    assert viewed.status_code == 200 and viewed.headers["content-disposition"] == 'attachment; filename="image.nii.gz"'
    import nibabel as nib

    shown = nib.load(_root / "jobs" / job["id"] / "view" / "image.nii.gz").shape
    assert 5 in shown and 7 not in shown  # series b's 5 slices, not series a's 7: the viewer reads the one asked for

    ct = make_phantom(shape=(3, 320, 288), contrast="CT")
    eight_bit = (np.clip((ct.image.array + 1000) / 8, 0, 255) + 256).astype(np.int16)  # no air, no fat: not HU
    write_nifti(eight_bit, ct.image, tmp_path / "ct.nii.gz")
    sent = {"file": ("ct.nii.gz", (tmp_path / "ct.nii.gz").read_bytes())}
    refused = _wait(client, client.post("/jobs", files=sent, data={"modality": "CT"}, headers=AUTH).json()["id"])
    assert refused["status"] == "failed" and "not in Hounsfield units" in refused["error"], refused
    forced = client.post("/jobs", files=sent, data={"modality": "CT", "force": "true"}, headers=AUTH)
    job = _wait(client, forced.json()["id"])
    assert job["status"] == "done" and job["options"]["force"] is True, job
    findings = client.get(f"/jobs/{job['id']}/files/findings.json", headers=AUTH).json()
    assert any(r.startswith("forced: CT values") for r in findings["needs_review"]) and findings["summary_withheld"]

    jobs = len(client.get("/jobs", headers=AUTH).json())
    bad = client.post("/jobs", files=sent, data={"view": "oblique"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("view 'oblique': a radiograph's view"), bad.text
    assert len(client.get("/jobs", headers=AUTH).json()) == jobs


def test_a_malformed_request_is_answered_in_one_line(service):
    client, _ = service
    for reply in (
        client.get("/jobs/abc", headers=AUTH),
        client.get(f"/jobs/{'A' * 32}", headers=AUTH),
        client.post("/jobs", files={"other": ("x.png", b"x")}, headers=AUTH),
        client.post("/jobs", data={"file": "hello"}, headers=AUTH),
    ):
        assert reply.status_code == 422 and set(reply.json()) == {"detail"}, reply.text
        assert isinstance(reply.json()["detail"], str) and "\n" not in reply.json()["detail"]
    assert client.get("/jobs/abc", headers=AUTH).json()["detail"].startswith("job_id: String should match pattern")
    assert client.post("/jobs", files={"other": ("x.png", b"x")}, headers=AUTH).json() == {
        "detail": "file: Field required"
    }


def test_a_file_asked_for_while_its_job_is_deleted_is_sent_or_not_found_never_a_server_error(
    service, phantom_nifti, monkeypatch
):
    """A DELETE landing between the lookup of a result and its sending: the file was opened before it went (sent
    whole), or it was gone before (404); a response that opened the path only when sending gave a 500."""
    client, root = service
    with open(phantom_nifti, "rb") as f:
        job_id = client.post("/jobs", files={"file": ("scan.nii.gz", f)}, headers=AUTH).json()["id"]
    assert _wait(client, job_id)["status"] == "done"
    whole = client.get(f"/jobs/{job_id}/files/findings.json", headers=AUTH)
    assert whole.status_code == 200 and whole.headers["content-length"] == str(len(whole.content))
    assert whole.headers["content-type"] == "application/json"
    assert "findings.json" in whole.headers["content-disposition"]
    found = JobStore.output_path

    def deleted_once_found(self, job, name):
        path = found(self, job, name)
        shutil.rmtree(root / "jobs" / job)  # what DELETE /jobs/<id> does, just after the lookup
        return path

    import mimetypes

    guess = mimetypes.guess_type

    def deleted_once_opened(name, *args, **kwargs):  # called after the file is opened, before it is sent
        shutil.rmtree(root / "jobs" / job_id, ignore_errors=True)
        return guess(name, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(mimetypes, "guess_type", deleted_once_opened)
        opened = client.get(f"/jobs/{job_id}/files/findings.json", headers=AUTH)
    assert opened.status_code == 200 and opened.content == whole.content  # sent whole from the open handle
    assert not (root / "jobs" / job_id).exists()
    with open(phantom_nifti, "rb") as f:
        job_id = client.post("/jobs", files={"file": ("scan.nii.gz", f)}, headers=AUTH).json()["id"]
    assert _wait(client, job_id)["status"] == "done"
    monkeypatch.setattr(JobStore, "output_path", deleted_once_found)
    late = client.get(f"/jobs/{job_id}/files/findings.json", headers=AUTH)
    assert late.status_code == 404 and late.json() == {"detail": "no such file in this job's results"}


def test_a_finished_job_is_deleted_with_its_files_and_a_running_one_is_not(service, phantom_nifti):
    client, root = service
    with open(phantom_nifti, "rb") as f:
        job_id = client.post("/jobs", files={"file": ("scan.nii.gz", f)}, headers=AUTH).json()["id"]
    store = JobStore(root)
    if store.get(job_id).status in ("queued", "running"):
        assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 409
    assert _wait(client, job_id)["status"] == "done"
    assert client.delete(f"/jobs/{job_id}").status_code == 401  # the token, as everywhere
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 204
    assert not (root / "jobs" / job_id).exists() and store.get(job_id) is None
    assert client.get(f"/jobs/{job_id}", headers=AUTH).status_code == 404
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 404
    running = store.create()
    store.set_stage(running, "segmenting")
    assert not store.delete(running) and (root / "jobs" / running).is_dir()
    assert client.delete(f"/jobs/{running}", headers=AUTH).status_code == 409
