"""Training: datasets in the layouts users have, batched augmentation, and resumable loops."""

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("lumbar.train")


def save_checkpoint(path: Path, net, optimiser, schedule, state: dict) -> None:
    """Everything a run needs to resume (network, optimiser, schedule and the loop's own ``state``), atomically."""
    import torch

    from lumbar.io.write import atomic_path

    parts = {"net": net, "optimiser": optimiser, "schedule": schedule}
    with atomic_path(path) as tmp:
        torch.save({**{k: v.state_dict() for k, v in parts.items()}, "state": state}, tmp)


def resume(path: Path, net, optimiser, schedule, state: dict) -> dict:
    """The loop's state saved at ``path`` (network, optimiser and schedule restored in place), or ``state`` when
    there is no checkpoint yet."""
    import torch

    if not path.is_file():
        return state
    saved = torch.load(path, weights_only=False)
    for key, part in {"net": net, "optimiser": optimiser, "schedule": schedule}.items():
        part.load_state_dict(saved[key])
    return saved["state"]


def log_to(out_dir: Path) -> None:
    """Send the training log to ``out_dir/train.log`` (appending, so a resumed run keeps its history),
    replacing the file of any earlier run in this process."""
    for handler in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:
        log.removeHandler(handler)
        handler.close()
    handler = logging.FileHandler(Path(out_dir) / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread for the while: the small networks train fastest so, and on a busy 2-core machine two
    threads wait on each other (a back-pain step took 13 ms on one thread, 480 ms on two)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
