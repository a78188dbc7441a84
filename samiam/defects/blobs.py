"""Scale-matched blob detector: lattice period from the FFT, multi-scale Laplacian of Gaussian, disks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from samiam.defects.calibrate import Calibration, calibrate, unit_noise_response
from samiam.defects.flatten import robust_sigma
from samiam.defects.patches import patches_at
from samiam.errors import ParameterError


@dataclass
class BlobParams:
    """Parameters of the blob detector.

    Attributes:
        enabled: use the blob detector (False: the AE1 error mask alone, as before).
        threshold: a blob needs a scale-normalised response above this many robust sigmas of the
            response at its scale (after the scan-line noise scaling), at ``persist`` neighbouring
            scales.
        error_gate: AE1 error z-score (at the blob centre, max over a disk of the blob radius) a blob
            needs; lattice-periodic responses are reconstructed by AE1 and fail it.
        min_sigma: smallest LoG sigma (px).
        max_sigma: largest LoG sigma (px).
        lattice_factor: the smallest sigma is at least this x the lattice period, so single atoms
            of the lattice do not respond.
        n_scales: LoG scales (geometric from the smallest to the largest sigma).
        radius_factor: a blob is drawn as a disk of radius radius_factor x sigma.
        persist: a blob must respond with the same sign at this many neighbouring scales (its
            strength is the smallest of them; 1 = no persistence). Noise, JPEG blocks and single
            lattice sites live at one or two scales; defects span a range of scales.
        strong_threshold: blobs this strong (robust sigmas) over ``strong_persist`` scales are kept
            too: small defects at the resolution limit cannot persist over many scales, but stand
            out by strength (0 = off).
        strong_persist: neighbouring scales a strong blob must respond at.
        line_noise_rows: scan-line noise scaling: the response of each row is divided by the noise
            of the rows around it (a band of this many rows) relative to the whole image, when that
            is higher (0 = off). STM noise comes in bursts of scan lines (tip changes, feedback
            ringing); a fixed threshold fires all along such bands.
        line_noise_quantile: percentile of the absolute response used as the noise level of a band.
        min_roundness: blobs finer than ``roundness_below_sigma`` whose Hessian eigenvalue ratio
            (small / large, 1 = round) is below this are dropped: short scan-line streaks and
            noise ridges, not point defects (0 = off).
        roundness_below_sigma: the roundness test applies to blobs with sigma below this (px;
            ``scale_unit="px"``); larger defects may be elongated (tip-dragged adsorbates).
        roundness_below_scale: the same limit in units of the smallest sigma (``scale_unit="feature"``;
            2 = 4 px of the pixel ladder that starts at 2 px).
        outline: grow each blob's disk to the defect's half-maximum outline (``half_max_outline``),
            so the mask and the areas follow the defect's shape (False: disks only).
        scale_unit: ``"feature"``: the scales start at ``min_scale`` x the image's own feature
            scale (``calibrate.feature_scale``; at least ``min_sigma`` and ``lattice_factor`` x the
            atomic spacing) and span a factor ``scale_span``, so defects are matched at the same
            size relative to what the scan resolves whatever the scan size and pixel count;
            ``"px"``: from ``min_sigma`` to ``max_sigma`` pixels (the previous behaviour).
        min_scale: smallest sigma in feature scales (``scale_unit="feature"``).
        scale_span: largest / smallest sigma (``scale_unit="feature"``); 12 is the span of the
            pixel ladder 2-24 px, so ``persist`` neighbouring scales keep covering a factor ~3.
        line_noise_heights: the response is also divided by a scan-line factor from the measured
            noise of each scan line of the heights (``calibrate.noise_level``; only where the lines'
            noise differs), on top of the response's own band factor (``line_noise_rows``).
        noise_floor: each scale's response is divided by the larger of its robust sigma and the
            response that white noise of the image's measured noise level gives at that scale,
            so a clean image with few structures is not thresholded on its noise's own tail.
    """

    enabled: bool = True
    threshold: float = 2.75
    error_gate: float = 1.0
    min_sigma: float = 2.0
    max_sigma: float = 24.0
    lattice_factor: float = 0.5
    n_scales: int = 7
    radius_factor: float = 1.5
    persist: int = 4
    strong_threshold: float = 8.0
    strong_persist: int = 2
    line_noise_rows: int = 41
    line_noise_quantile: float = 75.0
    min_roundness: float = 0.35
    roundness_below_sigma: float = 4.0
    roundness_below_scale: float = 2.0
    outline: bool = True
    scale_unit: str = "feature"
    min_scale: float = 0.1
    scale_span: float = 12.0
    noise_floor: bool = True
    line_noise_heights: bool = True

    def check(self) -> None:
        """Raise ParameterError for out-of-range values."""
        if self.threshold <= 0:
            raise ParameterError(f"blob threshold must be > 0 robust sigmas, got {self.threshold}")
        if not 0 < self.min_sigma <= self.max_sigma:
            raise ParameterError(f"need 0 < min_sigma <= max_sigma, got {self.min_sigma}, {self.max_sigma}")
        if self.n_scales < 1 or self.radius_factor <= 0 or self.lattice_factor < 0:
            raise ParameterError("n_scales must be >= 1, radius_factor > 0 and lattice_factor >= 0")
        for name in ("persist", "strong_persist"):
            if not 1 <= int(getattr(self, name)) <= self.n_scales:
                raise ParameterError(
                    f"{name} must be between 1 and n_scales ({self.n_scales}), got {getattr(self, name)}"
                )
        if self.strong_threshold < 0:
            raise ParameterError(f"strong_threshold must be >= 0 (0 = off), got {self.strong_threshold}")
        if self.line_noise_rows < 0 or not 0 < self.line_noise_quantile < 100:
            raise ParameterError(
                f"need line_noise_rows >= 0 and 0 < line_noise_quantile < 100, got {self.line_noise_rows}, "
                f"{self.line_noise_quantile}"
            )
        if not 0 <= self.min_roundness <= 1:
            raise ParameterError(f"min_roundness must be in [0, 1], got {self.min_roundness}")
        if self.scale_unit not in ("feature", "px"):
            raise ParameterError(f"scale_unit must be 'feature' or 'px', got {self.scale_unit!r}")
        if self.min_scale <= 0 or self.scale_span < 1:
            raise ParameterError(f"need min_scale > 0 and scale_span >= 1, got {self.min_scale}, {self.scale_span}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Blobs:
    """Detected blobs (one row each).

    Attributes:
        yx: float (N, 2) centre (row, column).
        sigma: float (N,) LoG scale of the strongest response.
        strength: float (N,) signed response in robust sigmas (> 0 bump, < 0 pit).
    """

    yx: np.ndarray
    sigma: np.ndarray
    strength: np.ndarray

    def select(self, keep: np.ndarray) -> Blobs:
        return Blobs(self.yx[keep], self.sigma[keep], self.strength[keep])


def lattice_period(heights: np.ndarray, min_period: float = 2.0, prominence: float = 50.0) -> float | None:
    """Period (px) of the strongest lattice peak of the power spectrum, or None if none stands out.

    The power spectrum of the Hann-windowed heights is whitened by its median at each radius
    (so the 1/f background of noise and terraces does not win), and searched between
    ``min_period`` and 1/16 of the shorter side; a peak counts as a lattice when it is at least
    ``prominence`` x the median power at its radius.

    Args:
        heights: HxW heights.
        min_period: shortest period considered (px).
        prominence: peak / radial-median power needed.

    Returns:
        The period in px, or None.
    """
    h, w = heights.shape
    n = min(h, w)
    win = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.rfft2((heights - heights.mean()) * win)) ** 2
    freq = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    radius = np.rint(freq * n).astype(int)
    band = (radius >= 16) & (freq <= 1.0 / min_period)
    if not band.any():
        return None
    nbin = int(radius.max()) + 1
    med = np.asarray(ndi.median(power, radius, np.arange(nbin)), np.float64)
    white = np.where(band, power / np.maximum(med[radius], 1e-30), 0.0)
    k = int(white.argmax())
    if white.flat[k] < prominence:
        return None
    return float(1.0 / freq.flat[k])


def scales(
    params: BlobParams, period: float | None, feature: float | None = None, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Blob sigmas, geometric over ``n_scales``.

    ``scale_unit="px"`` (or no ``feature`` scale given): from max(min_sigma, lattice_factor x period)
    to max_sigma. ``"feature"``: from lo = max(min_sigma, lattice_factor x period, min_scale x feature)
    to scale_span x lo, the top capped at 1/8 of the short side (``shape``).
    """
    if params.scale_unit == "feature" and feature is not None:
        lo = max(params.min_sigma, params.lattice_factor * period if period else 0.0, params.min_scale * feature)
        hi = params.scale_span * lo
        if shape is not None:
            hi = min(hi, min(shape) / 8.0)
        hi = max(hi, lo)
        return np.geomspace(lo, hi, params.n_scales) if params.n_scales > 1 else np.array([lo])
    lo = max(params.min_sigma, params.lattice_factor * period if period else 0.0)
    lo = min(lo, params.max_sigma)
    return np.geomspace(lo, params.max_sigma, params.n_scales) if params.n_scales > 1 else np.array([lo])


def hessian_responses(heights: np.ndarray, sigmas: np.ndarray) -> list[np.ndarray]:
    """Scale-normalised signed blob response ``-sign(trace H) sqrt(det H) sigma^2`` at each scale.

    H is the Hessian of the Gaussian-smoothed heights, computed in Fourier space (one forward
    transform of the reflect-padded image, three inverse transforms per scale). For a round bump
    or pit the response equals half the scale-normalised Laplacian of Gaussian; for a line
    (scan-line streak, step, ridge) one eigenvalue vanishes and so does the response; saddles
    (det H < 0) give 0. Positive for bumps, negative for pits.

    Args:
        heights: HxW heights.
        sigmas: Gaussian scales (px).

    Returns:
        One float32 HxW response per scale.
    """
    from scipy import fft

    h, w = heights.shape
    pad = int(min(3 * float(np.max(sigmas)), h - 1, w - 1))
    shape = (fft.next_fast_len(h + 2 * pad, real=True), fft.next_fast_len(w + 2 * pad, real=True))
    z = np.pad(heights.astype(np.float32), ((pad, shape[0] - h - pad), (pad, shape[1] - w - pad)), mode="reflect")
    spec = fft.rfft2(z, workers=1)
    wy = (2 * np.pi * fft.fftfreq(shape[0])).astype(np.float32)[:, None]
    wx = (2 * np.pi * fft.rfftfreq(shape[1])).astype(np.float32)[None, :]
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    out = []
    for s in sigmas:  # a handful of scales
        g = spec * np.exp(np.float32(-0.5 * s * s) * (wy * wy + wx * wx))
        hyy = fft.irfft2(-(wy * wy) * g, shape, workers=1)[crop]
        hxx = fft.irfft2(-(wx * wx) * g, shape, workers=1)[crop]
        hxy = fft.irfft2(-(wy * wx) * g, shape, workers=1)[crop]
        det = np.maximum(hxx * hyy - hxy * hxy, 0.0)
        out.append((-np.sign(hxx + hyy) * np.sqrt(det) * s * s).astype(np.float32))
    return out


def line_noise_factor(response: np.ndarray, rows: int, quantile: float) -> np.ndarray:
    """Per-row noise of a response relative to the whole image, >= 1 (H,).

    The noise of a row is the ``quantile`` percentile of the absolute response along it (every
    second column); a running median over ``rows`` rows makes it the noise of a band of scan
    lines; divided by the same percentile over the image and floored at 1, it only ever raises the
    threshold, in noisy bands.
    """
    a = np.abs(response[:, ::2])
    row = np.percentile(a, quantile, axis=1)
    band = ndi.median_filter(row, size=max(1, min(rows, len(row))), mode="reflect")
    return np.maximum(band / max(float(np.percentile(a, quantile)), 1e-12), 1.0)


def scan_line_factor(row_noise: np.ndarray) -> np.ndarray:
    """Per-line factor >= 1 (H,) from the measured noise of each scan line (``calibrate.noise_level``).

    Each line's noise (already a running median over 5 lines) relative to the median line,
    floored at 1: noisy scan lines (tip change, feedback ringing) raise the bar by their extra
    noise, quiet lines keep it.
    """
    return np.maximum(row_noise / max(float(np.median(row_noise)), 1e-12), 1.0).astype(np.float32)


def persistent(responses: list[np.ndarray], sigmas: np.ndarray, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Responses that hold their sign over ``n`` neighbouring scales.

    For each run of ``n`` consecutive scales: where all have the same sign, that sign x the smallest
    magnitude, else 0; its scale is the geometric mean of the run.

    Returns:
        (one response per run, the run scales).
    """
    if n <= 1:
        return responses, sigmas
    out = []
    for j in range(len(responses) - n + 1):
        run = responses[j : j + n]
        sign = np.sign(run[0])
        same = np.ones(run[0].shape, bool)
        low = np.abs(run[0])
        for r in run[1:]:
            same &= np.sign(r) == sign
            low = np.minimum(low, np.abs(r))
        out.append(np.where(same, sign * low, 0.0).astype(np.float32))
    logs = np.log(sigmas)
    return out, np.exp([logs[j : j + n].mean() for j in range(len(responses) - n + 1)])


def hessian_at(heights: np.ndarray, yx: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-derivative Hessian (hyy, hxx, hxy) of ``heights`` at scale ``sigma``, only at the points ``yx``.

    Sampled derivative-of-Gaussian kernels of radius 4 sigma over the windows around the points
    (``patches.patches_at``, padded like scipy.ndimage's "reflect"): the cost is per point, not per pixel.
    """
    r = int(np.ceil(4 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g /= g.sum()
    g1 = -t / sigma**2 * g
    g2 = (t * t / sigma**4 - 1 / sigma**2) * g
    w = patches_at(heights, 2 * r + 1, yx.astype(int), mode="symmetric")  # (N, 2r+1, 2r+1)
    hyy = np.einsum("nij,i,j->n", w, g2, g)
    hxx = np.einsum("nij,i,j->n", w, g, g2)
    hxy = np.einsum("nij,i,j->n", w, g1, g1)
    return hyy, hxx, hxy


def roundness(hyy: np.ndarray, hxx: np.ndarray, hxy: np.ndarray) -> np.ndarray:
    """|smaller| / |larger| Hessian eigenvalue: 1 for a round bump or pit, 0 for a line."""
    half_trace = 0.5 * (hyy + hxx)
    root = np.sqrt(0.25 * (hyy - hxx) ** 2 + hxy * hxy)
    a, b = np.abs(half_trace + root), np.abs(half_trace - root)
    return np.minimum(a, b) / np.maximum(np.maximum(a, b), 1e-30)


def blob_responses(
    heights: np.ndarray, params: BlobParams, period: float | None, calibration: Calibration | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Normalised blob responses of one image at its scales (the costly half of ``detect_blobs``).

    Each scale's response is divided by the larger of its robust sigma and the white-noise floor
    (``noise_floor``), then by the scan-line noise factor of its row.

    Args:
        heights: HxW normalised heights.
        params: blob parameters (only the scale, noise-floor and scan-line settings are used).
        period: lattice period (px) or None (replaced by the calibrated spacing in feature mode).
        calibration: the image's calibration; measured here when needed and not given.

    Returns:
        (one float32 HxW response per scale, the scales).
    """
    params.check()
    if calibration is None and (params.scale_unit == "feature" or params.noise_floor):
        calibration = calibrate(heights)
    if calibration is not None and params.scale_unit == "feature":
        period = calibration.spacing
    feature = calibration.feature_scale if calibration is not None else None
    sig = scales(params, period, feature, heights.shape)
    floors = (
        np.asarray(unit_noise_response(tuple(float(s) for s in sig))) * calibration.noise
        if calibration is not None and params.noise_floor
        else np.zeros(len(sig))
    )
    row_factor = None
    by_heights = params.line_noise_heights and calibration is not None
    if by_heights and calibration.lines_differ:
        row_factor = scan_line_factor(calibration.row_noise)
    resp = []
    for r, floor in zip(hessian_responses(heights, sig), floors, strict=True):
        sub = r[::3, ::3]  # robust statistics on a regular subsample: same result, 9x fewer values
        r = (r - np.median(sub)) / max(robust_sigma(sub), float(floor), 1e-12)
        if params.line_noise_rows > 0:
            r = r / line_noise_factor(r, params.line_noise_rows, params.line_noise_quantile)[:, None]
        if row_factor is not None:
            r = r / row_factor[:, None]
        resp.append(r)
    return resp, sig


def detect_blobs(
    heights: np.ndarray,
    params: BlobParams,
    period: float | None,
    exclude: np.ndarray | None = None,
    calibration: Calibration | None = None,
    responses: tuple[list[np.ndarray], np.ndarray] | None = None,
) -> Blobs:
    """Local extrema of the scale-normalised Hessian blob response (bumps and pits).

    Responses from ``blob_responses``. Persistent blobs: the response holds its sign over
    ``persist`` neighbouring scales, per pixel the run with the largest magnitude wins, and blobs
    are the local maxima of that magnitude (window of the smallest scale) above ``threshold``,
    outside ``exclude``. Strong blobs: the same over ``strong_persist`` scales above
    ``strong_threshold``, unless inside a persistent blob's disk. Fine blobs that are not round
    are dropped.

    Args:
        heights: HxW normalised heights.
        params: blob parameters.
        period: lattice period (px) or None.
        exclude: bool HxW pixels where no blob may be centred.
        calibration: the image's calibration (``calibrate.calibrate``); measured here when the
            parameters need it and none is given.
        responses: ``blob_responses`` output computed before with the same scale settings (so a
            sweep over thresholds computes them once).

    Returns:
        The blobs.
    """
    params.check()
    resp, sig = responses if responses is not None else blob_responses(heights, params, period, calibration)
    blobs = _extrema(resp, sig, params.persist, params.threshold, params, exclude)
    if params.strong_threshold > 0:
        strong = _extrema(resp, sig, params.strong_persist, params.strong_threshold, params, exclude)
        if len(strong.sigma) and len(blobs.sigma):  # a strong blob inside a persistent one's disk is the same defect
            i, j = close_pairs(strong.yx, blobs.yx, params.radius_factor * blobs.sigma)
            inside = np.zeros(len(strong.sigma), bool)
            inside[i] = True
            strong = strong.select(~inside)
        blobs = Blobs(
            np.concatenate([blobs.yx, strong.yx]),
            np.concatenate([blobs.sigma, strong.sigma]),
            np.concatenate([blobs.strength, strong.strength]),
        )
    if params.min_roundness <= 0:
        return blobs
    keep = np.ones(len(blobs.sigma), bool)
    fine = params.roundness_below_sigma if params.scale_unit == "px" else params.roundness_below_scale * float(sig[0])
    for s in np.unique(blobs.sigma[blobs.sigma < fine]):  # a few scales
        pick = np.nonzero(blobs.sigma == s)[0]
        keep[pick] = roundness(*hessian_at(heights, blobs.yx[pick], float(s))) >= params.min_roundness
    return blobs.select(keep)


def _extrema(
    responses: list[np.ndarray],
    sigmas: np.ndarray,
    persist: int,
    threshold: float,
    params: BlobParams,
    exclude: np.ndarray | None,
) -> Blobs:
    """Blobs: local maxima of the strongest ``persist``-scale response magnitude above ``threshold``."""
    resp, sig = persistent(responses, sigmas, min(int(persist), len(sigmas)))
    shape = resp[0].shape
    best = np.zeros(shape, np.float32)
    best_sigma = np.full(shape, sig[0], np.float32)
    for s, r in zip(sig, resp, strict=True):
        better = np.abs(r) > np.abs(best)
        best = np.where(better, r, best).astype(np.float32)
        best_sigma = np.where(better, np.float32(s), best_sigma)
    mag = np.abs(best)
    size = 2 * int(np.ceil(1.5 * sig[0])) + 1
    peaks = (mag == ndi.maximum_filter(mag, size=size)) & (mag > threshold)
    # a blob centred closer to the border than the smallest radius is mostly reflected padding
    rim = int(np.ceil(params.radius_factor * sig[0]))
    peaks[:rim], peaks[-rim:], peaks[:, :rim], peaks[:, -rim:] = False, False, False, False
    if exclude is not None:
        peaks &= ~exclude
    ys, xs = np.nonzero(peaks)
    return Blobs(np.stack([ys, xs], 1).astype(np.float64), best_sigma[ys, xs].astype(np.float64), best[ys, xs])


def gate_blobs(blobs: Blobs, error_z: np.ndarray, gate: float, radius_factor: float) -> Blobs:
    """Keep blobs whose AE1 error z-score reaches ``gate`` within their disk (max over a square of side 2r+1)."""
    if len(blobs.sigma) == 0:
        return blobs
    local = ndi.maximum_filter(error_z, size=2 * int(np.ceil(radius_factor * blobs.sigma.min())) + 1)
    y, x = blobs.yx[:, 0].astype(int), blobs.yx[:, 1].astype(int)
    return blobs.select(local[y, x] >= gate)


def blob_mask(blobs: Blobs, shape: tuple[int, int], radius_factor: float) -> np.ndarray:
    """Bool HxW union of disks of radius radius_factor x sigma around each blob."""
    mask = np.zeros(shape, bool)
    if len(blobs.sigma) == 0:
        return mask
    seeds = np.zeros(shape, np.float32)
    y, x = blobs.yx[:, 0].astype(int), blobs.yx[:, 1].astype(int)
    seeds[y, x] = 1.0
    # one distance transform per distinct radius (a few scales), not one per blob
    radii = radius_factor * blobs.sigma
    for r in np.unique(radii):
        pick = radii == r
        s = np.ones(shape, bool)
        s[y[pick], x[pick]] = False
        mask |= ndi.distance_transform_edt(s) <= r
    return mask


def half_max_outline(
    heights: np.ndarray, blobs: Blobs, radius_factor: float, window: float = 3.0, smooth: float = 1.0
) -> np.ndarray:
    """Bool HxW union of the blobs' half-maximum outlines: the defect's own shape, not a disk.

    For each blob (radius r = radius_factor x sigma), in a square of +-``window`` r around its
    centre: the background is the median of the ``smooth``-px smoothed heights farther than 2 r
    from the centre, the peak is the largest signed deviation (bump up, pit down) within sigma/2
    of the centre, and the outline is the connected set of pixels reaching half the peak that
    touches the centre. A blob whose centre does not stand out from its background adds nothing.
    One small window per blob (tens to hundreds per image).

    Args:
        heights: HxW normalised heights.
        blobs: the blobs (their strength's sign says bump or pit).
        radius_factor: disk radius / sigma.
        window: half-side of the search square, in disk radii.
        smooth: Gaussian smoothing of the heights (px).

    Returns:
        The outlines.
    """
    hs = ndi.gaussian_filter(np.asarray(heights, np.float64), smooth) if smooth > 0 else np.asarray(heights, np.float64)
    h, w = hs.shape
    out = np.zeros((h, w), bool)
    for (y, x), s, strength in zip(blobs.yx.astype(int), blobs.sigma, blobs.strength, strict=True):
        r = radius_factor * float(s)
        half = int(np.ceil(window * r))
        y0, y1, x0, x1 = max(0, y - half), min(h, y + half + 1), max(0, x - half), min(w, x + half + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        d2 = (yy - y) ** 2 + (xx - x) ** 2
        ring = d2 > (2 * r) ** 2
        if ring.sum() < 8:
            continue
        patch = hs[y0:y1, x0:x1]
        dev = np.sign(strength) * (patch - np.median(patch[ring]))
        core = d2 <= max(1.0, (0.5 * float(s)) ** 2)
        peak = dev[core].max()
        if peak <= 0:
            continue
        above = dev >= 0.5 * peak
        labels, _ = ndi.label(above)
        touching = np.unique(labels[core & above])
        out[y0:y1, x0:x1] |= np.isin(labels, touching[touching > 0])
    return out


def close_pairs(
    a: np.ndarray, b: np.ndarray, radius_b: np.ndarray, radius_a: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of points a[i], b[j] no farther apart than b's radius (or the larger of both radii).

    A k-d tree lists only the pairs within the largest radius, so thousands of blobs never make
    an all-pairs matrix.

    Args:
        a: (N, 2) points.
        b: (M, 2) points.
        radius_b: (M,) radius of each b point.
        radius_a: optional (N,) radius of each a point; then the limit is max(radius_a[i], radius_b[j]).

    Returns:
        (i, j) index arrays.
    """
    from scipy.spatial import cKDTree

    r_max = float(np.max(radius_b)) if radius_a is None else float(max(np.max(radius_b), np.max(radius_a)))
    found = cKDTree(a).sparse_distance_matrix(cKDTree(b), r_max, output_type="ndarray")
    i, j, d = found["i"], found["j"], found["v"]
    limit = radius_b[j] if radius_a is None else np.maximum(radius_a[i], radius_b[j])
    keep = d <= limit
    return i[keep].astype(np.int64), j[keep].astype(np.int64)


def blob_regions(mask: np.ndarray, blobs: Blobs, radius_factor: float) -> np.ndarray:
    """Split the defect mask into one region per defect: int32 HxW labels (0 = background).

    Blobs whose centres lie inside each other's disk (distance <= the larger radius) are one
    defect; each mask pixel goes to the defect of its nearest blob centre, so touching disks of
    neighbouring defects become separate instances. Mask components without a blob centre (rare:
    the centre's pixel was removed by the clean-up) keep their own label.

    Args:
        mask: bool HxW defect mask.
        blobs: the blobs the mask was drawn from.
        radius_factor: disk radius / sigma.

    Returns:
        int32 HxW labels 1..n.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    comp, n_comp = ndi.label(mask, structure=np.ones((3, 3)))
    yx = blobs.yx.astype(int).reshape(-1, 2)
    radius = (radius_factor * blobs.sigma).reshape(-1)
    inside = mask[yx[:, 0], yx[:, 1]] if len(yx) else np.zeros(0, bool)
    yx, radius = yx[inside], radius[inside]
    if len(yx) == 0:
        return comp.astype(np.int32)
    i, j = close_pairs(yx.astype(np.float64), yx.astype(np.float64), radius, radius)
    pairs = coo_matrix((np.ones(len(i), bool), (i, j)), shape=(len(yx), len(yx)))
    n_groups, group = connected_components(pairs, directed=False)
    seeds = np.zeros(mask.shape, np.int32)
    seeds[yx[:, 0], yx[:, 1]] = group + 1
    _, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    # a pixel takes the defect of its nearest centre in its own component (else of some centre of
    # its component, else its component's own label)
    comp_group = np.zeros(n_comp + 1, np.int64)
    comp_group[comp[yx[:, 0], yx[:, 1]]] = group + 1
    fallback = np.where(comp_group[comp] > 0, comp_group[comp], comp + n_groups)
    labels = np.where(mask, np.where(comp[iy, ix] == comp, seeds[iy, ix], fallback), 0)
    values = np.unique(labels[mask])
    out = np.zeros(mask.shape, np.int32)
    out[mask] = np.searchsorted(values, labels[mask]) + 1  # consecutive 1..n
    return out
