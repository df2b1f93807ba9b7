"""Batched augmentation on tensors, so that it costs little next to the network on a CPU or GPU.

Geometry: rotation, isotropic and anisotropic scaling and translation, sampled in one affine grid that
also crops or pads to the training size. No flips: a sagittal slice is always shown head up, anterior
left, and a flip would teach the network an anatomy that does not occur.

Intensity, for carrying a T2 model over to other sequences and scanners (domain randomisation in the
spirit of SynthSeg, Billot et al., Med Image Anal 2023): a random monotone or non-monotone intensity
curve, full inversion, gamma, a smooth multiplicative bias field, lower resolution, blur and noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def _chance(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def random_affine(
    images: torch.Tensor,
    masks: torch.Tensor,
    out_size: tuple[int, int],
    g: torch.Generator,
    max_rotation_deg: float = 15.0,
    scale_range: tuple[float, float] = (0.75, 1.33),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate, scale, shift and crop/pad ``images (B,1,H,W)`` and ``masks (B,H,W)`` to ``out_size``."""
    b, _, h_in, w_in = images.shape
    h_out, w_out = out_size
    dev = images.device
    angle = _uniform(b, -max_rotation_deg, max_rotation_deg, g, dev) * math.pi / 180
    log_lo, log_hi = math.log(scale_range[0]), math.log(scale_range[1])
    scale = torch.exp(_uniform(b, log_lo, log_hi, g, dev))
    aniso = torch.exp(_uniform(b, -0.1, 0.1, g, dev))
    sx, sy = scale * aniso, scale / aniso
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Pixel-space map output -> input, then into grid_sample's normalised coordinates.
    a = torch.stack([torch.stack([cos / sx, -sin / sy], -1), torch.stack([sin / sx, cos / sy], -1)], -2)
    d_out = torch.tensor([w_out / 2, h_out / 2], device=dev)
    d_in = torch.tensor([w_in / 2, h_in / 2], device=dev)
    theta_lin = a * d_out[None, None, :] / d_in[None, :, None]
    shift_x = _uniform(b, -1, 1, g, dev) * (abs(w_in - w_out) / 2 + 0.1 * w_in) / (w_in / 2)
    shift_y = _uniform(b, -1, 1, g, dev) * (abs(h_in - h_out) / 2 + 0.1 * h_in) / (h_in / 2)
    theta = torch.cat([theta_lin, torch.stack([shift_x, shift_y], -1)[..., None]], -1)
    grid = F.affine_grid(theta, [b, 1, h_out, w_out], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    masks = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return images, masks[:, 0].long()


def random_intensity_curve(x: torch.Tensor, g: torch.Generator, n_points: int = 6) -> torch.Tensor:
    """Map intensities through a random piecewise-linear curve per image; dark background stays dark."""
    b = x.shape[0]
    ys = torch.rand(b, n_points, generator=g, device=x.device)
    ys[:, 0] = 0.0
    xs = x.clamp(0, 1) * (n_points - 1)
    lo = xs.floor().long().clamp(max=n_points - 2)
    frac = xs - lo
    flat = lo.view(b, -1)
    y0 = torch.gather(ys, 1, flat).view_as(x)
    y1 = torch.gather(ys, 1, flat + 1).view_as(x)
    return y0 + frac * (y1 - y0)


def bias_field(shape: torch.Size, g: torch.Generator, device: torch.device, strength: float = 0.35) -> torch.Tensor:
    """Smooth multiplicative field exp(N(0, strength)) from a 4x4 grid, as from coil sensitivity."""
    b, _, h, w = shape
    coarse = torch.randn(b, 1, 4, 4, generator=g, device=device) * strength
    return torch.exp(F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, round(2.5 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


def random_intensity(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Apply the intensity randomisations, each with its own probability, to ``x (B,1,H,W)`` in [0, 1]."""
    b, dev = x.shape[0], x.device
    out = x.clone()
    pick = _chance(b, 0.35, g, dev)
    if pick.any():
        out[pick] = random_intensity_curve(out[pick], g)
    pick = _chance(b, 0.15, g, dev)
    if pick.any():
        body = out[pick] > 0.02
        out[pick] = torch.where(body, 1.0 - out[pick], out[pick])
    pick = _chance(b, 0.5, g, dev)
    if pick.any():
        gamma = torch.exp(_uniform(int(pick.sum()), math.log(0.6), math.log(1.6), g, dev)).view(-1, 1, 1, 1)
        out[pick] = out[pick].clamp(min=0) ** gamma
    pick = _chance(b, 0.5, g, dev)
    if pick.any():
        out[pick] = out[pick] * bias_field(out[pick].shape, g, dev)
    pick = _chance(b, 0.25, g, dev)
    if pick.any():
        h, w = out.shape[-2:]
        factor = float(_uniform(1, 1.5, 3.0, g, dev))
        small = F.interpolate(out[pick], size=(max(8, int(h / factor)), w), mode="bilinear", align_corners=False)
        out[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    pick = _chance(b, 0.2, g, dev)
    if pick.any():
        out[pick] = gaussian_blur(out[pick], float(_uniform(1, 0.5, 1.5, g, dev)))
    contrast = torch.exp(_uniform(b, -0.3, 0.3, g, dev)).view(-1, 1, 1, 1)
    brightness = _uniform(b, -0.1, 0.1, g, dev).view(-1, 1, 1, 1)
    out = out * contrast + brightness
    noise_sigma = _uniform(b, 0.0, 0.06, g, dev).view(-1, 1, 1, 1) * _chance(b, 0.6, g, dev).view(-1, 1, 1, 1)
    out = out + torch.randn(out.shape, generator=g, device=dev) * noise_sigma
    return out.clamp(-0.2, 1.5)


def mild_intensity(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Gamma, contrast, brightness and noise only: for grading, where the disc's signal relative to its
    surroundings is the finding itself and must survive augmentation (no curves, no inversion)."""
    b, dev = x.shape[0], x.device
    gamma = torch.exp(_uniform(b, math.log(0.75), math.log(1.33), g, dev)).view(-1, 1, 1, 1)
    contrast = torch.exp(_uniform(b, -0.15, 0.15, g, dev)).view(-1, 1, 1, 1)
    brightness = _uniform(b, -0.05, 0.05, g, dev).view(-1, 1, 1, 1)
    noise_sigma = _uniform(b, 0.0, 0.03, g, dev).view(-1, 1, 1, 1)
    out = x.clamp(min=0) ** gamma * contrast + brightness
    return (out + torch.randn(out.shape, generator=g, device=dev) * noise_sigma).clamp(-0.2, 1.5)
