"""Training: datasets in the layouts users have, batched augmentation, and resumable loops."""

import logging
from pathlib import Path

log = logging.getLogger("lumbar.train")


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
