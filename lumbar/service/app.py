"""The HTTP service (``lumbar serve``): upload a study, follow its job, fetch its findings, masks and report.

Every endpoint but the OpenAPI docs needs the API token (``Authorization: Bearer <token>``): generated on the first
start, printed once, stored only as its SHA-256. Uploads are streamed to disk and refused past ``max_upload_bytes``
(413); the client's file name is never used as a path (only its ending picks the reader); a zip is unpacked by the
same guarded reader as on the command line (absolute paths, ``..`` and links refused). A file is served only if it
is one the job wrote. CORS is not enabled.
"""

import hashlib
import hmac
import json
import mimetypes
import os
import queue
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from lumbar.errors import InputError
from lumbar.io.read import check_read_options, check_view
from lumbar.resources import default_workers, process_pool
from lumbar.service.jobs import JOB_ID, JobStore, run_job, worker_setup, write_view_image
from lumbar.version import __version__

TOKEN_FILE = "api-token.sha256"
SERVICE_LOCK = ".lumbar-serve.lock"  # held by the one service that uses the folder (``lumbar serve``)
STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3
CHUNK = 1024**2
UNAUTHORISED = "missing or wrong API token"
KNOWN_ENDINGS = (".nii.gz", ".nii", ".mha", ".nrrd", ".png", ".jpg", ".jpeg", ".zip", ".dcm")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_token(root: Path, token: str | None = None) -> str | None:
    """Store the hash of ``token`` (or of a new one when none is stored yet); returns a new token to print once,
    else None. The token itself is never written."""
    path = root / TOKEN_FILE
    if token is None and path.is_file():
        return None
    new = token or secrets.token_urlsafe(32)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)  # uploads and results are patient data: the service's user alone reads them, whatever umask
    tmp = root / f".{TOKEN_FILE}.{uuid.uuid4().hex}"
    tmp.write_text(_digest(new) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return None if token else new


def _stored_name(filename: str | None) -> str:
    """The name the service stores an upload under: ``upload`` and the ending that picks its reader."""
    lower = (filename or "").lower()
    ending = next((e for e in KNOWN_ENDINGS if lower.endswith(e)), ".dcm")  # DICOM files often have no ending
    return "upload" + ending


class GuardedUploads:
    """ASGI middleware in front of the app: a request that carries a body (an upload) is answered before any of its
    body is read when its token is missing or wrong (401) or it declares more than ``limit`` bytes (413), and with 413
    as soon as more than ``limit`` bytes have come (a chunked upload declares nothing). The web framework reads a
    whole multipart body to disk before an endpoint or its token check runs: without this, anyone who can reach the
    port could fill the disk."""

    def __init__(self, app, *, authorised: Callable[[str | None], bool], limit: int) -> None:
        self.app, self.authorised, self.limit = app, authorised, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # a header given twice counts by its first, as the app's own token check reads it
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in reversed(scope["headers"])}
        if not self.authorised(headers.get("authorization")):
            await _reply(send, 401, UNAUTHORISED, [(b"www-authenticate", b"Bearer")])
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await _reply(send, 413, self._too_large())
            return
        received, over = 0, False

        async def counted():
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                over = True
                raise ValueError(self._too_large())  # stops the framework's reading; its reply is replaced below
            return message

        answered = False

        async def replaced(message) -> None:
            nonlocal answered
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await _reply(send, 413, self._too_large())
            answered = True

        try:
            await self.app(scope, counted, replaced)
        except Exception:
            if not over or answered:
                raise
            await _reply(send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"upload over {self.limit:,} bytes"


def _opened(path: Path, filename: str, gone: str) -> StreamingResponse:
    """``path`` sent from a handle opened now: a job deleted after this (``DELETE /jobs/<id>``) still sends what
    was asked, and one deleted before is a 404 with ``gone``, never a 500 from a file that vanished between
    finding and sending it (which a response opening the path only when it sends would give). No range requests:
    the viewer and clients fetch whole files."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (the generator below closes it, sent or abandoned)
    except (FileNotFoundError, NotADirectoryError):
        raise HTTPException(status.HTTP_404_NOT_FOUND, gone) from None

    def chunks() -> Iterator[bytes]:
        with handle:
            yield from iter(lambda: handle.read(CHUNK), b"")

    quoted = quote(filename)
    disposition = f'filename="{filename}"' if quoted == filename else f"filename*=utf-8''{quoted}"
    headers = {
        "content-length": str(os.fstat(handle.fileno()).st_size),
        "content-disposition": f"attachment; {disposition}",
    }
    media = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return StreamingResponse(chunks(), media_type=media, headers=headers)


async def _reply(send, code: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """A JSON error reply ``{"detail": ...}``, as the app's own errors are."""
    body = json.dumps({"detail": detail}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": code, "headers": start})
    await send({"type": "http.response.body", "body": body})


def create_app(
    root: str | Path,
    *,
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    executor: Executor | None = None,
) -> FastAPI:
    """The service over the data folder ``root``. ``token`` sets the API token (tests); ``executor`` runs the jobs
    (default: a process pool of :func:`default_workers`)."""
    root = Path(root).resolve()
    store = JobStore(root)
    ensure_token(root, token)
    expected = (root / TOKEN_FILE).read_text().strip()
    setup = (worker_setup, (tempfile.gettempdir(),))  # the workers' temporary files where this process keeps its own
    pools = [executor or process_pool(default_workers(), *setup)]
    replacing = threading.Lock()
    alone: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
    requeued: set[str] = set()

    def in_pool(job_id: str, input_name: str) -> Future:
        """Queue a job in the pool; a pool broken by a worker that died is replaced first."""
        with replacing:
            try:
                return pools[0].submit(run_job, str(root), job_id, input_name)
            except BrokenExecutor:
                pools[0] = process_pool(getattr(pools[0], "_max_workers", default_workers()), *setup)
                return pools[0].submit(run_job, str(root), job_id, input_name)

    def run(job_id: str, input_name: str) -> None:
        """Queue a job. A worker that dies (a crash in native code, the memory killer) breaks its pool and fails every
        job in it: a job that had not started is queued again in a new pool (once); one that was running (the one that
        killed the worker, or one beside it) is run again alone, and fails with the reason only if it stops its
        worker then too. One bad study never stops the service, nor fails the others."""
        future = in_pool(job_id, input_name)

        def settled(done: Future) -> None:
            if done.cancelled():  # the service is stopping: the job stays queued, marked interrupted at the next start
                return
            error = done.exception()
            if error is None:
                return
            job = store.get(job_id)
            if job is None or job.status in ("done", "failed"):
                return
            if isinstance(error, BrokenExecutor) and job.status == "queued" and job_id not in requeued:
                requeued.add(job_id)  # once: a job that stops its worker before it starts is run alone next
                run(job_id, input_name)
            elif isinstance(error, BrokenExecutor):
                store.requeue(job_id, "queued: to be run again alone, as a worker stopped while it ran")
                alone.put((job_id, input_name))
            else:
                store.fail_unfinished(job_id, f"internal error: its worker failed ({type(error).__name__})")

        future.add_done_callback(settled)

    def run_alone() -> None:
        """Run the jobs a dying worker interrupted, one at a time, each in a new process of its own."""
        while (item := alone.get()) is not None:
            job_id, input_name = item
            with process_pool(1, *setup) as pool:
                try:
                    pool.submit(run_job, str(root), job_id, input_name).result()
                except BrokenExecutor as error:
                    reason = f"internal error: the worker analysing it stopped, alone too ({type(error).__name__})"
                    store.fail_unfinished(job_id, reason)
                except Exception as error:  # anything else fails that job, never this thread (the jobs after it)
                    store.fail_unfinished(job_id, f"internal error: its worker failed ({type(error).__name__})")

    bearer = HTTPBearer(auto_error=False)

    def token_ok(token: str) -> bool:
        return hmac.compare_digest(_digest(token), expected)

    def valid(header: str | None) -> bool:  # the upload guard's check, on the raw header, before any body is read
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and token_ok(token.strip())

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None or not token_ok(credentials.credentials):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, UNAUTHORISED, headers={"WWW-Authenticate": "Bearer"})

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.fail_interrupted()
        shutil.rmtree(root / "uploads", ignore_errors=True)  # uploads a stopped service was receiving
        retries = threading.Thread(target=run_alone, name="lumbar-run-alone", daemon=True)
        retries.start()
        yield
        alone.put(None)
        pools[0].shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="lumbar", version=__version__, lifespan=lifespan)
    app.add_middleware(GuardedUploads, authorised=valid, limit=max_upload_bytes)

    @app.exception_handler(RequestValidationError)
    async def one_line(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A malformed request in one line, as every other error (the framework's default is a list of objects)."""
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'malformed request')}"}, status_code=422)

    api = APIRouter(dependencies=[Depends(authorised)])
    JobId = Annotated[str, PathParam(pattern=JOB_ID)]

    def job_or_404(job_id: str):
        job = store.get(job_id)
        if job is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
        return job

    def describe(job) -> dict:
        return {
            "id": job.id,
            "status": job.status,
            "stage": job.stage,
            "error": job.error or None,
            "created": job.created,
            "finished": job.finished,
            "files": store.output_files(job.id) if job.status == "done" else [],
            "options": store.options(job.id),
        }

    @api.get("/jobs")
    def list_jobs() -> list[dict]:
        """Every job, newest first."""
        return [describe(job) for job in store.all()]

    @api.post("/jobs", status_code=status.HTTP_201_CREATED)
    async def submit(
        file: Annotated[list[UploadFile], File()],
        modality: Annotated[str | None, Form(description="MR, CT or XR where the file does not say it")] = None,
        spacing_mm: Annotated[float | None, Form(description="a PNG/JPEG's pixel size in mm (it stores none)")] = None,
        series: Annotated[str | None, Form(description="SeriesInstanceUID or SeriesNumber in a zip of several")] = None,
        view: Annotated[str | None, Form(description="a radiograph's view (frontal or lateral) its file lacks")] = None,
        force: Annotated[bool, Form(description="analyse a study no pipeline is made for (flagged)")] = False,
    ) -> dict:
        """Upload one study (a NIfTI, MHA, NRRD, PNG/JPEG, a zipped DICOM folder, or the DICOM files of one series as
        several ``file`` fields) and queue its analysis; ``modality``, ``spacing_mm``, ``series``, ``view`` and
        ``force`` are the command line's ``--modality``, ``--spacing``, ``--series``, ``--view`` and ``--force``."""
        try:
            check_read_options(spacing_mm, modality)
            check_view(view)
        except InputError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc).replace("--", "", 1)) from None
        staging = root / "uploads" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        try:
            names = ["upload.dcm" if len(file) > 1 else _stored_name(file[0].filename)]
            targets = [staging / f"{k:05d}.dcm" for k in range(len(file))] if len(file) > 1 else [staging / names[0]]
            for upload, target in zip(file, targets):  # its size bounded as it arrived (GuardedUploads)
                with open(target, "wb") as out:
                    while chunk := await upload.read(CHUNK):
                        out.write(chunk)
            options = {"modality": modality, "spacing_mm": spacing_mm, "series": series, "view": view, "force": force}
            job_id = store.create(options)
            inputs = store.folder(job_id) / "input"
            if len(file) > 1:
                staging.replace(inputs / "series")
                input_name = "series"
            else:
                targets[0].replace(inputs / names[0])
                input_name = names[0]
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        run(job_id, input_name)
        return {"id": job_id, "status": "queued"}

    @api.get("/jobs/{job_id}")
    def get_job(job_id: JobId) -> dict:
        """A job's status, its stage while it runs, its error if it failed, and its files once done."""
        return describe(job_or_404(job_id))

    @api.delete("/jobs/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
    def delete_job(job_id: JobId) -> None:
        """Remove a finished job: its upload, options and results (nothing is removed otherwise: keep what you need)."""
        job_or_404(job_id)
        if not store.delete(job_id):
            raise HTTPException(status.HTTP_409_CONFLICT, "the job is queued or running: delete it once it is done")

    @api.get("/jobs/{job_id}/files/{name:path}")
    def get_file(job_id: JobId, name: str) -> StreamingResponse:
        """One file the job wrote, by a name its status lists (``findings.json``, ``report.pdf``, ...)."""
        job_or_404(job_id)
        path = store.output_path(job_id, name)
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file in this job's results")
        return _opened(path, Path(name).name, "no such file in this job's results")

    @api.get("/jobs/{job_id}/image")
    def get_image(job_id: JobId) -> StreamingResponse:
        """The job's image as read (NIfTI, float32, the input's geometry), for the viewer."""
        if job_or_404(job_id).status != "done":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this job has no image to view (it is not done)")
        try:
            image = write_view_image(store, job_id)
        except (FileNotFoundError, StopIteration):  # deleted while its image was being made
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job") from None
        return _opened(image, "image.nii.gz", "no such job")

    app.include_router(api)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def viewer() -> str:
        """The browser viewer (public: it asks for the token and sends it with every API call)."""
        return (STATIC / "viewer.html").read_text(encoding="utf-8")

    return app
