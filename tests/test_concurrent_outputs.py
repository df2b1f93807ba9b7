"""Two runs writing the same study folder at once each land whole (the last wins), and what a killed run left
behind is removed by the next run for that study."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lumbar.io.write import write_nifti
from lumbar.outputs import publish

WRITERS, ROUNDS = 6, 15
COMMAND = [sys.executable, "-m", "lumbar.cli", "analyze", "--no-report"]


def _write_as(writer: int, staging: Path) -> int:
    """A study of two files that name their writer: a folder mixing writers is an interleaved one."""
    for name in ("first", "second"):
        (staging / name).write_text(str(writer))
    return writer


def test_concurrent_publishes_each_land_whole_and_leave_no_staging_folders(tmp_path):
    """Six writers publish the same folder fifteen times each, at once: none fails, the folder ends up as one
    writer's, and nothing but the folder remains (unlocked swaps race and raise, or mix two writers' files)."""
    folder = tmp_path / "study"
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for _ in range(ROUNDS):
                publish(folder, lambda staging: _write_as(index, staging))
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in folder.iterdir()) == ["first", "second"]
    assert (folder / "first").read_text() == (folder / "second").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["study"]


def test_staging_folders_of_live_runs_are_kept_and_of_dead_runs_removed(tmp_path):
    """A staging folder that its (live) run holds survives another run's clean-up; one nobody holds (its run was
    killed) and an earlier result moved aside mid-swap are removed, and nothing of another study."""
    folder = tmp_path / "scan"
    for name in (".scan.partial-dead", ".scan.old-dead", ".scan.old-x.partial-live", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")

    def write(staging: Path) -> None:
        publish(folder, lambda inner: (inner / "findings.json").write_text("inner"))  # another run, meanwhile
        (staging / "findings.json").write_text("outer")  # fails if that run took this live folder for debris

    publish(folder, write)
    assert (folder / "findings.json").read_text() == "outer"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".scan.old-x.partial-live", "other", "scan"]


def staging_name(names: list[str]) -> bool:
    return any(name.startswith(".scan.partial-") for name in names)


def _study_is_whole(study: Path) -> None:
    """findings.json parses and every file it lists exists; nothing but the study is beside it."""
    findings = json.loads((study / "findings.json").read_text())
    for path in findings["outputs"].values():
        assert (study / path).exists(), path
    assert [p.name for p in study.parent.iterdir()] == [study.name]


def _staging_in(out: Path) -> str | None:
    """The staging folder in ``out``, if one is there yet. ``out`` itself can appear and vanish first: the run
    probes that it can create the folder, and removes the probe, before it computes anything."""
    try:
        return staging_name(os.listdir(out))
    except FileNotFoundError:
        return None


@pytest.fixture
def scan(tmp_path, phantom) -> Path:
    path = tmp_path / "scan.nii.gz"
    write_nifti(phantom.image.array, phantom.image, path)
    return path


@pytest.mark.slow
def test_two_concurrent_analyze_runs_into_one_folder_leave_one_whole_study(tmp_path, scan):
    out = tmp_path / "out"
    runs = [subprocess.Popen([*COMMAND, str(scan), "-o", str(out)], stderr=subprocess.PIPE) for _ in range(2)]
    for run in runs:
        assert run.wait() == 0, run.stderr.read().decode()
    _study_is_whole(out / "scan")


@pytest.mark.slow
def test_a_rerun_after_a_kill_completes_and_removes_the_killed_runs_staging_folder(tmp_path, scan):
    out = tmp_path / "out"
    run = subprocess.Popen([*COMMAND, str(scan), "-o", str(out)], stdout=subprocess.DEVNULL)
    while not _staging_in(out):  # killed while it writes its staging folder
        assert run.poll() is None, "the run ended before it was killed"
        time.sleep(0.002)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert staging_name(os.listdir(out))
    subprocess.run([*COMMAND, str(scan), "-o", str(out)], check=True, capture_output=True)
    _study_is_whole(out / "scan")


def _mount_point(monkeypatch, folder, staging, fail_on=None):
    """``folder`` behaves as a mount point of another filesystem: renaming it fails (EBUSY), and so does renaming
    anything from ``staging`` into it (EXDEV: shutil.move copies instead); ``fail_on``: a name whose copy fails."""
    import errno
    import os
    import shutil

    from lumbar import outputs

    replace, rename, move = os.replace, os.rename, shutil.move

    def no_move(src, dst):
        if os.fspath(src) == os.fspath(folder):
            raise OSError(errno.EBUSY, "Device or resource busy")
        return replace(src, dst)

    def no_cross(src, dst):
        if Path(src).is_relative_to(staging) and Path(dst).is_relative_to(folder):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return rename(src, dst)

    def failing_move(src, dst, **kwargs):
        if fail_on and Path(src).name == fail_on:
            raise OSError(errno.ENOSPC, "No space left on device")
        return move(src, dst, **kwargs)

    monkeypatch.setattr(outputs.os, "replace", no_move)
    monkeypatch.setattr(os, "rename", no_cross)
    monkeypatch.setattr(shutil, "move", failing_move)
    return outputs


def _results(tmp_path):
    folder, staging = tmp_path / "out", tmp_path / ".out.partial"
    folder.mkdir()
    (folder / "fusion.json").write_text("old")
    (folder / "stale.png").write_text("old")
    staging.mkdir()
    (staging / "fusion.json").write_text("new")
    (staging / "pictures").mkdir()
    (staging / "pictures" / "a.png").write_text("new")
    return folder, staging


def test_a_folder_that_cannot_be_moved_gets_its_contents_replaced(tmp_path, monkeypatch):
    """An output folder that is a mount point (a container's volume) cannot be renamed aside (EBUSY), nor can the
    staged result be renamed into it (another filesystem): the new result replaces its contents, nothing is left
    beside it."""
    folder, staging = _results(tmp_path)
    _mount_point(monkeypatch, folder, staging)._swap_into_place(staging, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["fusion.json", "pictures"]
    assert (folder / "fusion.json").read_text() == "new" and (folder / "pictures" / "a.png").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_copy_into_a_folder_that_cannot_be_moved_leaves_the_earlier_result_whole(tmp_path, monkeypatch):
    folder, staging = _results(tmp_path)
    outputs = _mount_point(monkeypatch, folder, staging, fail_on="pictures")
    with pytest.raises(OSError, match="No space"):
        outputs._swap_into_place(staging, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["fusion.json", "stale.png"]
    assert (folder / "fusion.json").read_text() == "old"


def test_a_real_mount_point_gets_its_contents_replaced(tmp_path):
    """The same through a real tmpfs mounted on the output folder (a user and mount namespace: skipped where the
    system allows none)."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare command to mount a tmpfs without privileges")
    folder = tmp_path / "out"
    folder.mkdir()
    script = tmp_path / "swap.py"
    script.write_text(
        "from pathlib import Path\n"
        "from lumbar import outputs\n"
        f"folder = Path({str(folder)!r})\n"
        "(folder / 'fusion.json').write_text('old')\n"
        "with outputs.staging_folder(folder) as staging:\n"
        "    (staging / 'fusion.json').write_text('new')\n"
        "    (staging / 'pics').mkdir()\n"
        "    (staging / 'pics' / 'a.png').write_text('x')\n"
        "    outputs._swap_into_place(staging, folder)\n"
        "print(sorted(p.name for p in folder.iterdir()), (folder / 'fusion.json').read_text(),\n"
        "      sorted(p.name for p in folder.parent.iterdir() if p.name != 'swap.py'))\n"
    )
    command = f"mount -t tmpfs none {folder} && {sys.executable} {script}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and ("Operation not permitted" in done.stderr or "unshare failed" in done.stderr):
        pytest.skip(f"this system allows no mount namespace: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['fusion.json', 'pics'] new ['out']"


def test_an_earlier_result_set_aside_by_a_swap_killed_midway_is_put_back(tmp_path):
    """A kill between a swap's two renames leaves the earlier result set aside and nothing in its place: the next
    run for that study puts it back (here that run fails, and the earlier result is still there, whole). A result
    set aside whose new one did land, and one being removed, are removed."""
    folder = tmp_path / "scan"
    (tmp_path / ".scan.old-killed" / "scan").mkdir(parents=True)
    (tmp_path / ".scan.old-killed" / "scan" / "findings.json").write_text("earlier")

    def fails(staging: Path) -> None:
        raise RuntimeError("this run fails too")

    with pytest.raises(RuntimeError):
        publish(folder, fails)
    assert (folder / "findings.json").read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan"]

    (tmp_path / ".scan.old-landed" / "scan").mkdir(parents=True)  # the new one was renamed in: this is the old
    (tmp_path / ".scan.removed-gone" / "scan").mkdir(parents=True)  # a failed study's result being removed
    publish(folder, lambda staging: (staging / "findings.json").write_text("new"))
    assert (folder / "findings.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan"]
    shutil.rmtree(folder)
    (tmp_path / ".scan.removed-gone" / "scan").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        publish(folder, fails)
    assert list(tmp_path.iterdir()) == []  # never brought back


def test_a_study_named_near_the_file_systems_limit_is_staged_and_replaced(tmp_path):
    """Staging names are the study's name and a suffix: for a name of 250 bytes that went past 255. Long names stage
    under a part and a digest of the whole, replaced and cleared like any other; two long names sharing their
    first 200 bytes never take each other's folders."""
    from lumbar.outputs import _is_temp_of, _temp_key

    long, twin = tmp_path / ("é" * 100 + "a" * 50), tmp_path / ("é" * 100 + "b" * 50)
    for round_ in ("first", "second"):
        for folder in (long, twin):
            publish(folder, lambda staging, r=round_, f=folder: (staging / "findings.json").write_text(r + f.name))
    assert (long / "findings.json").read_text() == "second" + long.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([long.name, twin.name])
    assert len(os.fsencode(_temp_key(long))) <= 200 and _temp_key(long) != _temp_key(twin)
    assert not _is_temp_of(tmp_path / f".{_temp_key(twin)}.partial-abc", long, "partial")
    assert _temp_key(tmp_path / "scan") == "scan"  # short names as they are


def test_every_file_is_on_disk_before_the_study_is_renamed_into_place(tmp_path, monkeypatch):
    """A power cut after the rename must not leave a study whose files are empty: every file and folder of the
    staging folder is flushed before the swap, and the parent after it."""
    import lumbar.outputs as outputs

    events: list[tuple[str, str]] = []
    real_fsync, real_swap = os.fsync, outputs._swap_into_place

    def fsync(fd: int) -> None:
        events.append(("sync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def swap(staging: Path, folder: Path) -> None:
        events.append(("swap", str(staging)))
        real_swap(staging, folder)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(outputs, "_swap_into_place", swap)

    def write(staging: Path) -> None:
        (staging / "maps").mkdir()
        (staging / "maps" / "a.png").write_bytes(b"png")
        (staging / "findings.json").write_text("{}")

    publish(tmp_path / "scan", write)
    swapped = events.index(next(e for e in events if e[0] == "swap"))
    staging = events[swapped][1]
    synced = {path for kind, path in events[:swapped] if kind == "sync"}
    assert {f"{staging}/maps/a.png", f"{staging}/findings.json", f"{staging}/maps", staging} <= synced
    assert ("sync", str(tmp_path)) in events[swapped:]
