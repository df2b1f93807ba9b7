"""MR–CT fusion: the MR registered onto the CT, both decomposed by wavelets, the coefficients fused, inverted.

After Palkar & Mishra (2019): an MR shows discs, canal and marrow, a CT shows cortical bone; one image that
keeps both helps planning. The steps:

1. **Registration** by mutual information (SimpleITK: Mattes MI, a rigid stage then an affine one, on a
   coarse-to-fine pyramid), the CT fixed, the MR moving; the MR is resampled onto the CT's grid.
2. **Decomposition**: a multi-level discrete wavelet transform (PyWavelets), of each sagittal plane (2D) or
   of the whole volume (3D).
3. **Fusion of the coefficients**, by a classic rule (approximation averaged, details by the larger
   magnitude) or by a small trained network that weighs the two sources per coefficient (see
   ``lumbar.train.fusion``: trained without labels, SSIM to both sources and a gradient loss).
4. **Inverse transform**, and the measures of the field: entropy, mutual information with each source,
   Q^AB/F (Xydeas & Petrović 2000: how much of the sources' edges the fused image keeps) and SSIM to each source.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lumbar.image import SpineImage

WAVELET = "haar"
LEVELS = 2
CT_WINDOW_HU = (-250.0, 1250.0)  # soft tissue to cortical bone: the range a fused picture shows of the CT
RULES = ("cnn", "classic")
MI_BINS = 64
MI_BINS_REGISTRATION = 32
MI_SAMPLES = 50_000  # random voxels the registration metric is read at, per pyramid level
COARSEST_VOXELS = 16  # the pyramid's coarsest level keeps at least this many voxels along each axis
FINEST_MM = 1.5  # voxel size of the pyramid's finest level (finer images are shrunk to it)
# ITK's threads add the metric's parts in whatever order they finish, so two runs on the same pair differ (a known
# rigid misalignment: mean error 0.16-0.56 mm over runs on 2 threads). One thread makes a registration, and every
# figure built on it, the same on every run and every machine, at about twice the time.
REGISTRATION_THREADS = 1
ENTROPY_BINS = 256
# A weight model: (n, 3, h, w) stacks of (first source, second source, 1 for a detail band) -> (n, 1, h, w) in [0, 1].
WeightModel = Callable[[np.ndarray], np.ndarray]

# --- registration --------------------------------------------------------------------------------------------

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def to_sitk(image: SpineImage) -> sitk.Image:
    """The image as a SimpleITK image in LPS physical space (SimpleITK's), voxels as float32."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(image.array.transpose(2, 1, 0), np.float32))
    linear = image.affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    out.SetSpacing([float(s) for s in spacing])
    out.SetDirection([float(v) for v in (_RAS_TO_LPS @ (linear / spacing)).ravel()])
    out.SetOrigin([float(v) for v in _RAS_TO_LPS @ image.affine[:3, 3]])
    return out


def from_sitk(volume: sitk.Image) -> np.ndarray:
    """Voxels of a SimpleITK image made by :func:`to_sitk` (or resampled onto one), in the SpineImage's order."""
    return sitk.GetArrayFromImage(volume).transpose(2, 1, 0)


@dataclass
class Registration:
    """Where the moving image's points are for the fixed image's: ``transform`` maps fixed (LPS mm) to moving."""

    transform: sitk.Transform
    metric: float  # Mattes mutual information at the end (negative; lower is better)
    initialised_by: str  # "world": the images' own coordinates; "centres": their centres put together
    iterations: int
    seed: int = 1
    note: str = ""  # why the transform is not what was asked for (the affine stage's result set aside)

    def describe(self) -> dict:
        matrix, offset = affine_parts(self.transform)
        return {
            "method": (
                "Mattes mutual information, "
                + ("rigid then affine" if isinstance(self.transform, sitk.AffineTransform) else "rigid")
                + f" (SimpleITK, seed {self.seed}, one thread)"
                + (f"; {self.note}" if self.note else "")
            ),
            "initialised_by": self.initialised_by,
            "final_metric": round(self.metric, 4),
            "iterations": self.iterations,
            "matrix_lps": matrix.round(5).tolist(),
            "translation_lps_mm": offset.round(3).tolist(),
        }


def affine_parts(transform: sitk.Transform) -> tuple[np.ndarray, np.ndarray]:
    """``(A, t)`` with ``transform(p) = A p + t`` for any chain of linear transforms, from where it sends points."""
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    columns = [np.array(transform.TransformPoint(tuple(e))) - origin for e in np.eye(3)]
    return np.stack(columns, axis=1), origin


def _overlap_fraction(fixed: sitk.Image, moving: sitk.Image) -> float:
    """Fraction of the smaller of the two images' bounding boxes (world coordinates) inside the other's: a CT
    cropped to part of the MR's field of view, or an MR of part of the CT's, overlaps wholly, whichever is larger."""

    def box(volume: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
        size = np.array(volume.GetSize()) - 1
        corners = [
            volume.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in size * np.array(b)))
            for b in np.ndindex(2, 2, 2)
        ]
        return np.min(corners, axis=0), np.max(corners, axis=0)

    (f_lo, f_hi), (m_lo, m_hi) = box(fixed), box(moving)
    inter = np.clip(np.minimum(f_hi, m_hi) - np.maximum(f_lo, m_lo), 0, None)
    smaller = min(np.prod(f_hi - f_lo), np.prod(m_hi - m_lo))
    return float(np.prod(inter) / max(smaller, 1e-9))


def register(fixed: SpineImage, moving: SpineImage, *, affine: bool = False, seed: int = 1) -> Registration:
    """Register ``moving`` (the MR) onto ``fixed`` (the CT) by mutual information: rigid, then affine if asked.

    The search starts from the images' own world coordinates when they overlap (one scanner session, or
    images already roughly aligned: at least half of the smaller field of view inside the larger), otherwise from
    their centres put together. ``seed`` (>= 1: SimpleITK reads 0
    as "seed from the clock") picks the voxels the metric is read at, so a registration repeats exactly.
    """
    if seed < 1:
        raise ValueError(f"seed must be >= 1, got {seed}")
    with _itk_threads(REGISTRATION_THREADS):
        return _register(fixed, moving, affine, seed)


_ITK_THREADS_LOCK = threading.Lock()  # one block at a time sets and restores the process-wide setting


@contextlib.contextmanager
def _itk_threads(count: int) -> Iterator[None]:
    """ITK's default thread count set to ``count`` for the block: the metric and the pyramid's filters read that
    global, not the registration method's own setting. Blocks in other threads wait, so that each restores what
    was there before it (two at once could otherwise leave the process on ``count`` threads for good)."""
    with _ITK_THREADS_LOCK:
        before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(count)
        try:
            yield
        finally:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


AFFINE_WORSE = "the affine stage ended with a worse metric than the rigid one: the rigid transform is kept"


def _register(fixed: SpineImage, moving: SpineImage, affine: bool, seed: int) -> Registration:
    f, m = coarse(to_sitk(fixed)), coarse(to_sitk(moving))
    world = _overlap_fraction(f, m) >= 0.5
    initial = (
        sitk.Euler3DTransform()
        if world
        else sitk.CenteredTransformInitializer(
            f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
    )
    rigid, metric, iterations = _run_stage(f, m, sitk.Euler3DTransform(initial), seed)
    if not affine:
        return Registration(rigid, metric, "world" if world else "centres", iterations, seed)
    stage = sitk.AffineTransform(3)
    stage.SetMatrix(rigid.GetMatrix())
    stage.SetTranslation(rigid.GetTranslation())
    stage.SetCenter(rigid.GetCenter())
    stretched, stretched_metric, more = _run_stage(f, m, stage, seed, iterations=100)
    if stretched_metric >= metric:  # the affine stage wandered off (a shear, a level's shift): keep the rigid one
        return Registration(rigid, metric, "world" if world else "centres", iterations + more, seed, AFFINE_WORSE)
    return Registration(stretched, stretched_metric, "world" if world else "centres", iterations + more, seed)


def coarse(volume: sitk.Image, mm: float = FINEST_MM) -> sitk.Image:
    """``volume`` smoothed and resampled to ``mm`` voxels where its own are finer: registration needs no more
    detail, and the pyramid is built from this once."""
    spacing = np.array(volume.GetSpacing())
    if spacing.min() >= mm:
        return volume
    target = np.maximum(spacing, mm)
    size = np.maximum(1, np.round(np.array(volume.GetSize()) * spacing / target)).astype(int)
    # Gaussian widths that take each axis from its own resolution to the target's (at least a quarter voxel).
    sigma = [float(max(np.sqrt(max(t**2 - s**2, 0.0)) / 2.355, s / 4)) for t, s in zip(target, spacing)]
    smoothed = sitk.SmoothingRecursiveGaussian(volume, sigma)
    return sitk.Resample(
        smoothed,
        [int(n) for n in size],
        sitk.Transform(),
        sitk.sitkLinear,
        volume.GetOrigin(),
        [float(t) for t in target],
        volume.GetDirection(),
        0.0,
        sitk.sitkFloat32,
    )


def _run_stage(
    fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform, seed: int, iterations: int = 200
) -> tuple[sitk.Transform, float, int]:
    """One optimisation on a three-level pyramid (4, 2, 1 times the images' voxels, less for a small image), the
    metric read at up to :data:`MI_SAMPLES` random voxels per level."""
    # Coarsest level no smaller than COARSEST_VOXELS along any axis: a small crop is not shrunk to a few voxels.
    most = max(1, min(fixed.GetSize()) // COARSEST_VOXELS)
    levels: dict[int, float] = {}  # shrink factor -> smoothing (mm); of equal factors the last, least smoothed
    for factor, sigma in ((min(4, most), 2.0 * FINEST_MM), (min(2, most), FINEST_MM), (1, 0.0)):
        levels[factor] = sigma
    shrink = list(levels)
    voxels = [np.prod([max(1, n // k) for n in fixed.GetSize()]) for k in shrink]
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=MI_BINS_REGISTRATION)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentagePerLevel([min(0.5, MI_SAMPLES / n) for n in voxels], seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=0.01,
        numberOfIterations=iterations,
        relaxationFactor=0.6,
        gradientMagnitudeTolerance=1e-5,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(shrink)
    method.SetSmoothingSigmasPerLevel(list(levels.values()))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(transform, inPlace=False)
    count = [0]
    method.AddCommand(sitk.sitkIterationEvent, lambda: count.__setitem__(0, count[0] + 1))
    result = method.Execute(fixed, moving)
    if isinstance(result, sitk.CompositeTransform) and result.GetNumberOfTransforms() == 1:
        result = result.GetNthTransform(0)
    return result.Downcast(), float(method.GetMetricValue()), count[0]


def resample_onto(moving: SpineImage, fixed: SpineImage, transform: sitk.Transform, fill: float = 0.0) -> np.ndarray:
    """``moving``'s voxels on ``fixed``'s grid through ``transform`` (linear interpolation, ``fill`` outside)."""
    out = sitk.Resample(to_sitk(moving), to_sitk(fixed), transform, sitk.sitkLinear, fill, sitk.sitkFloat32)
    return from_sitk(out)


def target_errors_mm(estimated: sitk.Transform, truth: sitk.Transform, points_lps: np.ndarray) -> np.ndarray:
    """Distance (mm) between where the estimated and the true transform send each fixed point."""
    a_est, t_est = affine_parts(estimated)
    a_true, t_true = affine_parts(truth)
    return np.linalg.norm(points_lps @ (a_est - a_true).T + (t_est - t_true), axis=1)


def moved_by(image: SpineImage, transform: sitk.Transform) -> SpineImage:
    """``image`` with the same voxels placed elsewhere: where ``transform`` (LPS mm) sends their points. Registering
    the result onto ``image``'s place should find ``transform`` (fixed points to moving ones); a known
    misalignment made this way loses no voxel to the field of view."""
    matrix, offset = affine_parts(transform)
    ras = np.eye(4)
    ras[:3, :3] = _RAS_TO_LPS @ matrix @ _RAS_TO_LPS
    ras[:3, 3] = _RAS_TO_LPS @ offset
    return SpineImage(image.array, ras @ image.affine, modality=image.modality, source=image.source)


def world_points_lps(image: SpineImage, mask: np.ndarray) -> np.ndarray:
    """LPS coordinates (mm) of the voxels of ``mask`` (on ``image``'s grid)."""
    ijk = np.argwhere(mask).astype(float)
    ras = ijk @ image.affine[:3, :3].T + image.affine[:3, 3]
    return ras @ _RAS_TO_LPS.T


# --- intensities ---------------------------------------------------------------------------------------------


def window_ct(hu: np.ndarray) -> np.ndarray:
    """Hounsfield units to [0, 1] over :data:`CT_WINDOW_HU`."""
    low, high = CT_WINDOW_HU
    return np.clip((hu.astype(np.float32) - low) / (high - low), 0.0, 1.0).astype(np.float32)


def normalise_mr(mr: np.ndarray) -> np.ndarray:
    """MR intensities to [0, 1] between the 0.5th and 99.5th percentiles of the voxels with signal."""
    values = mr[mr > 0]
    if values.size == 0:
        return np.zeros(mr.shape, np.float32)
    low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    return np.clip((mr.astype(np.float32) - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


# --- wavelet fusion ------------------------------------------------------------------------------------------


def _decompose(x: np.ndarray, dims: int, levels: int, wavelet: str) -> list:
    import pywt

    if dims == 2:
        return pywt.wavedec2(x, wavelet, level=levels, axes=(-2, -1))
    return pywt.wavedecn(x, wavelet, level=levels)


def _reconstruct(coeffs: list, dims: int, wavelet: str, shape: tuple[int, ...]) -> np.ndarray:
    import pywt

    out = pywt.waverec2(coeffs, wavelet, axes=(-2, -1)) if dims == 2 else pywt.waverecn(coeffs, wavelet)
    return out[tuple(slice(0, n) for n in shape)]


def classic_weights(a: np.ndarray, b: np.ndarray, detail: bool) -> np.ndarray:
    """Weight of ``a`` per coefficient by the classic rules: 0.5 on the approximation, larger magnitude on details."""
    if not detail:
        return np.full(a.shape, 0.5, np.float32)
    return (np.abs(a) >= np.abs(b)).astype(np.float32)


def band_scale(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One scale per plane for a pair of bands ``(n, h, w)``, so that a weight network sees them at unit size:
    the larger of the two planes' standard deviations, shape ``(n, 1, 1)``."""
    return np.maximum(np.maximum(a.std(axis=(-2, -1)), b.std(axis=(-2, -1))), 1e-6)[:, None, None]


def network_weights(model: WeightModel, a: np.ndarray, b: np.ndarray, detail: bool) -> np.ndarray:
    """Weight of ``a`` per coefficient from a weight network, read on 2D planes (a 3D band plane by plane)."""
    planes_a, planes_b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    scale = band_scale(planes_a, planes_b)
    stack = np.stack([planes_a / scale, planes_b / scale, np.full(planes_a.shape, float(detail))], axis=1)
    return model(stack.astype(np.float32))[:, 0].reshape(a.shape)


def wavelet_fuse(
    a: np.ndarray,
    b: np.ndarray,
    *,
    rule: str = "classic",
    model: WeightModel | None = None,
    dims: int = 2,
    levels: int = LEVELS,
    wavelet: str = WAVELET,
) -> np.ndarray:
    """Fuse two images on one grid, values in [0, 1]: decompose, weigh each coefficient, reconstruct.

    ``dims=2`` transforms each plane along the last two axes (a volume's sagittal planes when its first
    axis runs left-right), ``dims=3`` the whole volume. ``rule="cnn"`` needs ``model``.
    """
    if a.shape != b.shape:
        raise ValueError(f"the two images differ in shape: {a.shape} and {b.shape}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}")
    if rule == "cnn" and model is None:
        raise ValueError("the cnn rule needs a weight model")
    if dims not in (2, 3):
        raise ValueError("dims must be 2 or 3")

    def weigh(x: np.ndarray, y: np.ndarray, detail: bool) -> np.ndarray:
        w = network_weights(model, x, y, detail) if rule == "cnn" else classic_weights(x, y, detail)
        return w * x + (1.0 - w) * y

    import pywt

    sides = a.shape[-2:] if dims == 2 else a.shape
    levels = max(1, min(levels, pywt.dwtn_max_level(sides, wavelet)))  # no deeper than the shortest side allows
    ca, cb = _decompose(a, dims, levels, wavelet), _decompose(b, dims, levels, wavelet)
    fused: list = [weigh(ca[0], cb[0], detail=False)]
    for bands_a, bands_b in zip(ca[1:], cb[1:]):
        if dims == 2:
            fused.append(tuple(weigh(x, y, detail=True) for x, y in zip(bands_a, bands_b)))
        else:
            fused.append({key: weigh(bands_a[key], bands_b[key], detail=True) for key in bands_a})
    return np.clip(_reconstruct(fused, dims, wavelet, a.shape), 0.0, 1.0).astype(np.float32)


# --- the measures of a fused image ---------------------------------------------------------------------------


def entropy_bits(x: np.ndarray, bins: int = ENTROPY_BINS) -> float:
    """Shannon entropy (bits) of the histogram of ``x`` (values in [0, 1]) in ``bins`` equal bins."""
    counts, _ = np.histogram(x, bins=bins, range=(0.0, 1.0))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def mutual_information_bits(x: np.ndarray, y: np.ndarray, bins: int = MI_BINS) -> float:
    """Mutual information (bits) of two images with values in [0, 1], from their joint histogram."""
    joint, _, _ = np.histogram2d(x.ravel(), y.ravel(), bins=bins, range=((0.0, 1.0), (0.0, 1.0)))
    p = joint / joint.sum()
    px, py = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (px @ py)[nz])).sum())


# Xydeas & Petrović (2000) constants of the edge-preservation sigmoids.
QG = (0.9994, -15.0, 0.5)  # strength: Gamma, kappa, sigma
QA = (0.9879, -22.0, 0.8)  # orientation


def _sobel(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradients along the last axis and the one before it, in each plane on its own (never across planes)."""
    from scipy import ndimage

    def along(axis: int, across: int) -> np.ndarray:
        derivative = ndimage.convolve1d(x, [1.0, 0.0, -1.0], axis=axis, mode="nearest")
        return ndimage.convolve1d(derivative, [1.0, 2.0, 1.0], axis=across, mode="nearest")

    return along(-1, -2), along(-2, -1)


def edge_preservation(source: np.ndarray, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: Q^{SF} (how well the fused image keeps the source's edge) and the source's edge strength."""
    sx, sy = _sobel(source)
    fx, fy = _sobel(fused)
    g_s, g_f = np.hypot(sx, sy), np.hypot(fx, fy)
    a_s = np.arctan(sy / np.where(sx == 0, 1e-12, sx))
    a_f = np.arctan(fy / np.where(fx == 0, 1e-12, fx))
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = np.where(g_s > g_f, g_f / g_s, g_s / g_f)
    strength = np.where((g_s == 0) & (g_f == 0), 1.0, strength)
    # Orientations are alike modulo π (an edge along x read at +89° in one image and -89° in the other is one
    # edge): 1 for parallel, 0 for perpendicular, as Xydeas & Petrović and the VIFB toolbox compute it.
    orientation = np.abs(np.abs(a_s - a_f) - np.pi / 2) * 2 / np.pi
    q_g = QG[0] / (1.0 + np.exp(QG[1] * (strength - QG[2])))
    q_a = QA[0] / (1.0 + np.exp(QA[1] * (orientation - QA[2])))
    return q_g * q_a, g_s


def q_abf(a: np.ndarray, b: np.ndarray, fused: np.ndarray) -> float:
    """Q^AB/F in [0, 1]: the sources' edge information kept in the fused image, weighted by edge strength
    (planes along the last two axes)."""
    q_af, w_a = edge_preservation(a, fused)
    q_bf, w_b = edge_preservation(b, fused)
    total = float((w_a + w_b).sum())
    return float((q_af * w_a + q_bf * w_b).sum() / total) if total > 0 else float("nan")


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Structural similarity of two images in [0, 1], a volume's planes averaged: scikit-image's defaults (a 7 x 7
    uniform window, sample covariances), not Wang et al.'s 11 x 11 Gaussian, so figures differ a little from
    papers that use the latter."""
    from skimage.metrics import structural_similarity

    planes_x, planes_y = x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:])
    return float(np.mean([structural_similarity(p, q, data_range=1.0) for p, q in zip(planes_x, planes_y)]))


def fusion_measures(mr: np.ndarray, ct: np.ndarray, fused: np.ndarray, every: int = 1) -> dict[str, float]:
    """Entropy, mutual information with each source, Q^AB/F, SSIM to each source; on every ``every``-th plane."""
    mr, ct, fused = mr[::every], ct[::every], fused[::every]
    return {
        "entropy_bits": round(entropy_bits(fused), 4),
        "mi_mr_bits": round(mutual_information_bits(fused, mr), 4),
        "mi_ct_bits": round(mutual_information_bits(fused, ct), 4),
        "q_abf": round(q_abf(mr, ct, fused), 4),
        "ssim_mr": round(ssim(fused, mr), 4),
        "ssim_ct": round(ssim(fused, ct), 4),
    }
