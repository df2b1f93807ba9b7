"""Training: datasets in the layouts users have, batched augmentation, and resumable loops."""

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
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


@dataclasses.dataclass
class EpochLoop:
    """The loop the landmark networks share: AdamW with a 100-step warm-up and cosine decay, epochs of
    ``steps_per_epoch`` steps (each epoch's draws seeded from ``seed`` and its number, so a resumed run draws what
    an unbroken one would), validation after each epoch, the epoch with the lowest ``key`` kept, a stop after
    ``patience`` epochs without a better one, and a checkpoint after every epoch (``out/checkpoint.pt``)."""

    out: Path
    epochs: int
    steps_per_epoch: int
    patience: int
    seed: int
    lr: float
    key: str  # the validation figure to lower

    def run(self, net, loss_of: Callable, validate: Callable[[], dict], what: str, progress) -> dict:
        """Train ``net``: ``loss_of(rng)`` draws a batch and gives its loss; ``validate()`` the figures of an
        epoch. Returns the loop's state (epochs, the best epoch, the history) with ``net`` holding the best
        weights, in eval mode."""
        import numpy as np
        import torch

        total = self.epochs * self.steps_per_epoch
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + np.cos(np.pi * min(s, total) / total))
        )
        checkpoint = self.out / "checkpoint.pt"
        fresh = {"epoch": 0, "best": float("inf"), "best_epoch": 0, "best_weights": None, "history": []}
        state = resume(checkpoint, net, optimiser, schedule, fresh)
        if state["epoch"]:
            log.info("resumed after epoch %d", state["epoch"])
        progress.stage(f"training the {what}", total=self.epochs)
        progress.advance(state["epoch"])
        while state["epoch"] < self.epochs and state["epoch"] - state["best_epoch"] < self.patience:
            rng = np.random.default_rng(self.seed + 1000 * state["epoch"])
            torch.manual_seed(self.seed + state["epoch"])
            losses = []
            for _ in range(self.steps_per_epoch):
                loss = loss_of(rng)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
            state["epoch"] += 1
            val = validate()
            state["history"].append({"epoch": state["epoch"], "loss": float(np.mean(losses)), **val})
            log.info("epoch %d loss %.4f val %s", state["epoch"], np.mean(losses), json.dumps(val))
            if val[self.key] < state["best"]:
                state["best"], state["best_epoch"] = val[self.key], state["epoch"]
                state["best_weights"] = {k: v.clone() for k, v in net.state_dict().items()}
            save_checkpoint(checkpoint, net, optimiser, schedule, state)
            progress.advance()
        net.load_state_dict(state["best_weights"])
        net.eval()
        return state


def export_image_network(net, name: str, shape: tuple[int, int], out: Path, meta: dict) -> Path:
    """``out/<name>.onnx`` (one grey image ``(n, 1, *shape)`` in, ``logits`` out, any batch size) and its record
    ``out/<name>.json``: how every image network trained here ships."""
    import torch

    from lumbar.io.write import write_text
    from lumbar.models.export import export_onnx

    path = export_onnx(
        net, {"image": torch.zeros(1, 1, *shape)}, out / f"{name}.onnx", {"image": {0: "n"}, "logits": {0: "n"}}
    )
    write_text(out / f"{name}.json", json.dumps(meta, indent=1))
    log.info("validation: %s", json.dumps(meta["validation"]))
    return path
