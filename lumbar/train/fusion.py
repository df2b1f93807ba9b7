"""Train the MR–CT fusion weight network without labels: SSIM to both sources and a gradient loss.

No patient here has both an MR and a CT, so training pairs share one anatomy by construction:

* **phantom pairs**: the project's procedural spine (``lumbar.phantom``) rendered as T2 or T1 MRI and as CT from
  one random specification (disc heights, darkening, bulges, tilts, body sizes, noise, bias field);
* **SPIDER pairs** (with ``--data``): a real sagittal MR slice beside a CT made from its expert mask (cortical
  rim and trabecular core, disc, canal; air, fat and muscle from the MR's own intensities), so the MR side
  carries real texture. Patients are split: the held-out figures come from patients never trained on.

Each step: random aligned crops, a two-level Haar transform of both (in torch, equal to PyWavelets' ``haar``), the
network's weight for every coefficient of every band, the fused coefficients, the inverse transform; the loss
is ``(1 - SSIM(F, MR)) + (1 - SSIM(F, CT)) + GRADIENT_WEIGHT * |(|grad F| - max(|grad MR|, |grad CT|))|`` (mean),
which asks for both sources' structure and the stronger edge of the two at every pixel. Held-out pairs are
then fused by the network and by the classic rules and measured (entropy, MI, Q^AB/F, SSIM).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from lumbar.io.write import write_text
from lumbar.labels import Structure
from lumbar.models.export import export_onnx
from lumbar.models.networks import FusionWeightNet
from lumbar.phantom import DiscSpec, PhantomSpec, make_phantom
from lumbar.progress import SILENT, Progress
from lumbar.tasks.fusion import fusion_measures, normalise_mr, wavelet_fuse, window_ct
from lumbar.train import log, log_to

GRADIENT_WEIGHT = 2.0
CROP = 128  # a multiple of 4: two Haar levels divide it exactly


@dataclass
class FusionConfig:
    out: str
    data: str | None = None  # SPIDER (or any PNG/NIfTI training layout with masks); phantoms alone without it
    phantoms: int = 48
    steps: int = 1500
    batch_size: int = 8
    lr: float = 1e-3
    channels: int = 8
    held_out_fraction: float = 0.2
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


@dataclass
class Pair:
    """One aligned MR/CT pair of 2D slices in [0, 1] and the anatomy (patient or phantom) it comes from."""

    source: str
    mr: np.ndarray
    ct: np.ndarray


# --- training pairs ------------------------------------------------------------------------------------------


def phantom_pairs(n: int, seed: int) -> list[Pair]:
    """Sagittal slices through the spine of ``n`` random phantoms, each rendered as MR (T2 or T1) and CT."""
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(n):
        spec = random_phantom_spec(rng, seed=int(rng.integers(1 << 30)))
        mr_contrast = "T2" if k % 3 else "T1"
        mr = make_phantom(replace(spec, contrast=mr_contrast))
        ct = make_phantom(replace(spec, contrast="CT", seed=spec.seed + 1))
        for i in range(3, spec.shape[0] - 3):  # the slices through the spine, not the flanks
            pairs.append(
                Pair(
                    f"phantom{seed}-{k}",
                    normalise_mr(mr.image.sagittal_slices()[i]),
                    window_ct(ct.image.sagittal_slices()[i]),
                )
            )
    return pairs


def random_phantom_spec(rng: np.random.Generator, seed: int) -> PhantomSpec:
    """A phantom's anatomy and image quality drawn at random (discs degenerate at random levels)."""
    discs = {
        level: DiscSpec(height_loss=rng.uniform(0, 0.5), darkening=rng.uniform(0, 1), bulge_mm=rng.uniform(0, 4))
        for level in ("L1", "L2", "L3", "L4", "L5")
        if rng.random() < 0.4
    }
    spec = PhantomSpec(
        body_height_mm=rng.uniform(23, 31),
        body_depth_mm=rng.uniform(30, 42),
        disc_height_mm=rng.uniform(7, 12),
        canal_ap_mm=rng.uniform(10, 18),
        discs=discs,
        noise=rng.uniform(0.01, 0.06),
        bias=rng.uniform(0, 0.4),
        cranial_shift_mm=rng.uniform(0, 40),
        seed=seed,
    )
    spec.tilt_deg = {level: tilt + rng.normal(0, 3) for level, tilt in spec.tilt_deg.items()}
    return spec


def pseudo_ct(mr: np.ndarray, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A CT slice (HU) of the anatomy of an MR slice in [0, 1] and its expert classes.

    Bone: a 1.5 mm cortical rim (600-900 HU) round a trabecular core (150-300 HU); disc 70-90 HU; canal 0-20 HU;
    outside the labels, air where the MR has no signal and soft tissue from fat (-100 HU, bright on MR) to
    muscle (50 HU, dark), from the MR's own smoothed intensities.
    """
    smooth = ndimage.gaussian_filter(mr, 1.5)
    hu = 50.0 - 150.0 * np.clip((smooth - 0.3) / 0.4, 0.0, 1.0)
    hu[smooth < 0.04] = -1000.0
    bone = classes == Structure.VERTEBRA
    core = ndimage.binary_erosion(bone, iterations=2)
    hu[bone] = rng.uniform(600, 900)
    hu[core] = rng.uniform(150, 300)
    hu[classes == Structure.DISC] = rng.uniform(70, 90)
    hu[classes == Structure.CANAL] = rng.uniform(0, 20)
    hu = ndimage.gaussian_filter(hu, 0.7) + rng.normal(0, 15, hu.shape)
    return hu.astype(np.float32)


def spider_pairs(data: Path, seed: int) -> list[Pair]:
    """Real SPIDER slices beside CTs made from their masks (see :func:`pseudo_ct`), one pair per slice."""
    from lumbar.train.datasets import load_dataset

    rng = np.random.default_rng(seed)
    return [
        Pair(s.patient, s.image.astype(np.float32), window_ct(pseudo_ct(s.image, s.mask, rng)))
        for s in load_dataset(data, target_mm=1.0)
    ]


def split_pairs(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Pairs split by anatomy (patient or phantom): none in both parts."""
    sources = sorted({p.source for p in pairs})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(sources, size=max(1, round(len(sources) * fraction)), replace=False))
    return [p for p in pairs if p.source not in held], [p for p in pairs if p.source in held]


# --- the differentiable fusion ---------------------------------------------------------------------------------


def haar_forward(x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One level of the 2D Haar transform of ``(n, 1, h, w)`` (h, w even), as PyWavelets' ``dwt2(x, 'haar')``."""
    a, b, c, d = F.pixel_unshuffle(x, 2).unbind(1)  # the 2x2 blocks' top-left, top-right, bottom-left, bottom-right
    bands = ((a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2)
    approx, h, v, dd = (band[:, None] for band in bands)
    return approx, (h, v, dd)


def haar_inverse(approx: torch.Tensor, details: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The inverse of :func:`haar_forward`."""
    h, v, d = details
    blocks = ((approx + h + v + d) / 2, (approx + h - v - d) / 2, (approx - h + v - d) / 2, (approx - h - v + d) / 2)
    return F.pixel_shuffle(torch.cat(blocks, 1), 2)


def _weighed(net: torch.nn.Module, a: torch.Tensor, b: torch.Tensor, detail: bool) -> torch.Tensor:
    spread = {"dim": (-2, -1), "keepdim": True, "correction": 0}  # numpy's std, as inference computes it
    scale = torch.maximum(a.std(**spread), b.std(**spread)).clamp_min(1e-6)
    w = net(torch.cat([a / scale, b / scale, torch.full_like(a, float(detail))], 1))
    return w * a + (1 - w) * b


def fuse_torch(net: torch.nn.Module, mr: torch.Tensor, ct: torch.Tensor, levels: int = 2) -> torch.Tensor:
    """The network's fusion of ``(n, 1, h, w)`` pairs, differentiably (Haar, ``levels`` levels)."""
    if levels == 0:
        return _weighed(net, mr, ct, detail=False)
    approx_mr, details_mr = haar_forward(mr)
    approx_ct, details_ct = haar_forward(ct)
    approx = fuse_torch(net, approx_mr, approx_ct, levels - 1)
    details = tuple(_weighed(net, x, y, detail=True) for x, y in zip(details_mr, details_ct))
    return haar_inverse(approx, details)


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], device=x.device).view(1, 1, 3, 3) / 8
    gx, gy = F.conv2d(x, kx, padding=1), F.conv2d(x, kx.transpose(2, 3), padding=1)
    return torch.sqrt(gx**2 + gy**2 + 1e-8)


def fusion_loss(fused: torch.Tensor, mr: torch.Tensor, ct: torch.Tensor, ssim_loss: torch.nn.Module) -> torch.Tensor:
    target = torch.maximum(gradient_magnitude(mr), gradient_magnitude(ct))
    edges = (gradient_magnitude(fused) - target).abs().mean()
    return ssim_loss(fused, mr) + ssim_loss(fused, ct) + GRADIENT_WEIGHT * edges


def _crops(pairs: list[Pair], n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    mrs, cts = [], []
    for k in rng.integers(len(pairs), size=n):
        pair = pairs[k]
        padded = [np.pad(x, [(0, max(0, CROP - s)) for s in x.shape]) for x in (pair.mr, pair.ct)]
        r = rng.integers(padded[0].shape[0] - CROP + 1)
        c = rng.integers(padded[0].shape[1] - CROP + 1)
        mr, ct = (x[r : r + CROP, c : c + CROP] for x in padded)
        if rng.random() < 0.5:
            mr, ct = mr[:, ::-1], ct[:, ::-1]
        mrs.append(mr.copy())
        cts.append(ct.copy())
    return (
        torch.from_numpy(np.stack(mrs).astype(np.float32))[:, None],
        torch.from_numpy(np.stack(cts).astype(np.float32))[:, None],
    )


def train_net(pairs: list[Pair], cfg: FusionConfig, progress: Progress = SILENT) -> torch.nn.Module:
    from monai.losses import SSIMLoss

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = FusionWeightNet(cfg.channels)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, cfg.steps)
    ssim_loss = SSIMLoss(spatial_dims=2, data_range=1.0)
    progress.stage("training the fusion network", cfg.steps)
    running = 0.0
    for step in range(1, cfg.steps + 1):
        mr, ct = _crops(pairs, cfg.batch_size, rng)
        loss = fusion_loss(fuse_torch(net, mr, ct), mr, ct, ssim_loss)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running = loss.item() if step == 1 else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0:
            log.info("step %d loss %.4f", step, running)
        progress.advance()
    return net.eval()


def numpy_model(net: torch.nn.Module):
    """The network as the weight model :func:`lumbar.tasks.fusion.wavelet_fuse` takes (numpy in, numpy out)."""

    def run(stack: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(stack)).numpy()

    return run


def held_out_measures(net: torch.nn.Module, pairs: list[Pair]) -> dict:
    """Mean measures of held-out pairs fused by the network, the classic rules, and each source alone."""
    rows: dict[str, list[dict]] = {"cnn": [], "classic": [], "mr_alone": [], "ct_alone": []}
    model = numpy_model(net)
    for pair in pairs:
        mr, ct = pair.mr[None], pair.ct[None]
        rows["cnn"].append(fusion_measures(mr, ct, wavelet_fuse(mr, ct, rule="cnn", model=model)))
        rows["classic"].append(fusion_measures(mr, ct, wavelet_fuse(mr, ct, rule="classic")))
        rows["mr_alone"].append(fusion_measures(mr, ct, mr))
        rows["ct_alone"].append(fusion_measures(mr, ct, ct))
    return {
        method: {key: round(float(np.mean([r[key] for r in values])), 4) for key in values[0]}
        for method, values in rows.items()
    }


def check_haar() -> None:
    """The torch transform equals PyWavelets' (what inference uses) on a random image: refuse to train if not."""
    import pywt

    x = np.random.default_rng(0).random((8, 12)).astype(np.float32)
    approx, details = haar_forward(torch.from_numpy(x)[None, None])
    ref_approx, ref_details = pywt.dwt2(x, "haar")
    assert np.allclose(approx[0, 0].numpy(), ref_approx, atol=1e-5)
    for mine, ref in zip(details, ref_details):
        assert np.allclose(mine[0, 0].numpy(), ref, atol=1e-5)


def train_fusion(cfg: FusionConfig, progress: Progress = SILENT) -> Path:
    """Train, measure on held-out anatomies, export ``fusion.onnx`` and ``fusion.json`` into ``cfg.out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    check_haar()
    started = time.time()
    progress.stage("rendering phantom pairs")
    pairs = phantom_pairs(cfg.phantoms, cfg.seed)
    if cfg.data:
        pairs += spider_pairs(Path(cfg.data), cfg.seed)
    train, held_out = split_pairs(pairs, cfg.held_out_fraction, cfg.seed)
    log.info(
        "%d training pairs, %d held out (%d anatomies)", len(train), len(held_out), len({p.source for p in held_out})
    )
    net = train_net(train, cfg, progress)
    progress.stage("measuring held-out pairs")
    by_kind = {
        kind: held_out_measures(net, [p for p in held_out if p.source.startswith("phantom") == (kind == "phantom")])
        for kind in ("phantom", "spider")
        if any(p.source.startswith("phantom") == (kind == "phantom") for p in held_out)
    }
    axes = {0: "n", 2: "h", 3: "w"}
    export_onnx(net, {"image": torch.zeros(1, 3, 32, 32)}, out / "fusion.onnx", {"image": axes, "logits": axes})
    meta = {
        "name": "fusion",
        "task": "MR–CT fusion: weight of the MR per wavelet coefficient",
        "trained_on": "phantom MR/CT pairs"
        + (" and SPIDER MR slices beside CTs made from their masks" if cfg.data else ""),
        "trained_steps": cfg.steps,
        "wavelet": "haar",
        "levels": 2,
        "input": "(n, 3, h, w): MR band, CT band (each / the larger std of the two), 1 on detail bands",
        "held_out": by_kind,
        "held_out_anatomies": sorted({p.source for p in held_out}),
        "pairs": {"train": len(train), "held_out": len(held_out)},
        "config": {k: v for k, v in asdict(cfg).items() if k != "command"},
        "command": cfg.command,
        "minutes": round((time.time() - started) / 60, 1),
    }
    write_text(out / "fusion.json", json.dumps(meta, indent=1))
    log.info("held out: %s", json.dumps(by_kind))
    return out / "fusion.onnx"
