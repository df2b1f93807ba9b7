"""Service bench: 20 clients uploading at once to ``lumbar serve`` on loopback, and the service's overhead over
``lumbar analyze`` on the same study.

Starts ``lumbar serve`` in a temporary data folder (its default worker pool: one analysis per two cores), has 20
threads each upload the phantom T2 volume and poll its job to the end, and reports errors, the upload latency (median
and 95th percentile) and each job's time from upload to done. The overhead compares one job's turnaround, alone on
the service, with ``lumbar analyze`` of the same file in a fresh process (both write the report). ``python
bench/service.py`` prints a table and writes bench/results/service.json and its summary to bench/claims/.
"""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, save

from lumbar.io.write import write_nifti
from lumbar.phantom import make_phantom

CLIENTS = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _job(url: str, auth: dict, path: Path) -> dict:
    started = time.perf_counter()
    with open(path, "rb") as f:
        reply = httpx.post(f"{url}/jobs", files={"file": (path.name, f)}, headers=auth, timeout=120)
    uploaded = time.perf_counter()
    if reply.status_code != 201:
        return {"error": f"upload {reply.status_code}"}
    job_id = reply.json()["id"]
    while True:
        job = httpx.get(f"{url}/jobs/{job_id}", headers=auth, timeout=60).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.25)
    return {
        "error": job["error"] if job["status"] == "failed" else None,
        "upload_s": uploaded - started,
        "turnaround_s": time.perf_counter() - started,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lumbar-service-") as name:
        tmp = Path(name)
        phantom = make_phantom().image
        study = tmp / "phantom_t2.nii.gz"
        write_nifti(phantom.array, phantom, study)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "lumbar.cli", "analyze", str(study), "-o", str(tmp / "cli")],
            check=True,
            capture_output=True,
        )
        cli_s = time.perf_counter() - start
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "lumbar.cli", "serve", "--data", str(tmp / "data"), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            token = None
            while token is None:
                found = re.search(r"([A-Za-z0-9_-]{40,})", server.stdout.readline())
                token = found.group(1) if found else None
            auth, url = {"Authorization": f"Bearer {token}"}, f"http://127.0.0.1:{port}"
            while True:
                try:
                    if httpx.get(f"{url}/jobs", headers=auth).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            alone = _job(url, auth, study)
            results: list[dict] = []
            threads = [threading.Thread(target=lambda: results.append(_job(url, auth, study))) for _ in range(CLIENTS)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
        finally:
            server.kill()
            server.wait(10)
    ok = [r for r in results if not r["error"]]
    uploads = [r["upload_s"] for r in ok]
    turnaround = [r["turnaround_s"] for r in ok]
    payload = {
        "machine": machine(),
        "clients": CLIENTS,
        "errors": len(results) - len(ok),
        "upload_median_s": statistics.median(uploads),
        "upload_p95_s": float(np.percentile(uploads, 95)),
        "turnaround_median_s": statistics.median(turnaround),
        "turnaround_p95_s": float(np.percentile(turnaround, 95)),
        "all_done_s": wall,
        "studies_per_hour": 3600 * len(ok) / wall,
        "cli_analyze_s": cli_s,
        "service_alone_s": alone["turnaround_s"],
        "overhead_percent": 100 * (alone["turnaround_s"] - cli_s) / cli_s,
    }
    path = save("service", payload)
    print(
        f"{CLIENTS} clients at once: {payload['errors']} errors; upload median {payload['upload_median_s']:.2f} s, "
        f"p95 {payload['upload_p95_s']:.2f} s; job done after median {payload['turnaround_median_s']:.1f} s, p95 "
        f"{payload['turnaround_p95_s']:.1f} s; all {CLIENTS} in {wall:.0f} s ({payload['studies_per_hour']:.0f} "
        f"studies/hour)\none study: lumbar analyze {cli_s:.1f} s, through the service {alone['turnaround_s']:.1f} s "
        f"({payload['overhead_percent']:+.0f}%)"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
