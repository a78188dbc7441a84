"""Materials from the grid descriptors: over-cluster, then merge what the data cannot tell apart.

1. Descriptors are robustly standardised, each group (intensity, radial, angular) scaled to the same
   total weight, and reduced by PCA.
2. K-means over-clusters them into ``k0`` clusters (more than any image has materials).
3. Windows that straddle a boundary (a high descriptor gradient across the grid) get low weight:
   weight ``1 / (1 + (g / median g)^2)``. Mixed windows form a continuum *between* two materials,
   not a population of their own, and their weight keeps them from filling the valley.
4. Agglomerative merging: for every pair of clusters, their weighted windows are projected on the
   line through the two cluster centres and the density of the projection is estimated (Gaussian
   kernel, Silverman bandwidth). ``valley = min density between the two centres / the lower of the
   two peaks``. Two populations that are one material (a unimodal cloud cut in two by K-means, or
   one material's mixed fringe) have no valley (ratio near 1); two materials have a clear dip.
   The pair with the highest ratio is merged while it exceeds ``merge_valley`` (automatic K), or
   until ``n_materials`` clusters remain (K given).
5. Clusters whose largest connected region on the grid holds less than ``min_material_frac`` of
   the windows are not materials (scattered specks, a boundary line): they merge first, with the
   cluster they are least separated from.

The evidence (valley ratio of every merge, cluster weights) goes to ``FieldClusters.reason``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.ndimage import gaussian_filter
from sklearn.cluster import KMeans

from samiam.errors import ParameterError

_MAX_FIT = 6000  # windows used to fit K-means (all windows are assigned)
# principal directions kept: those along which the windows spread at least this many noise sds
MIN_COMPONENT_SNR = 3.0
SCALES = ("noise", "robust")


@dataclass
class FieldClusters:
    """Materials found on the grid.

    Attributes:
        labels: (rows, cols) int material index of each window, 0..K-1 (-1: no texture).
        posterior: (rows, cols, K) float32 soft assignment.
        n_materials: K.
        reason: how K was chosen (merge history with valley ratios).
    """

    labels: np.ndarray
    posterior: np.ndarray
    n_materials: int
    reason: dict = field(default_factory=dict)

    def keep(self, which: np.ndarray) -> FieldClusters:
        """The same result restricted to the materials ``which`` (renumbered 0..len-1)."""
        remap = np.full(self.n_materials, -1, np.int64)
        remap[which] = np.arange(len(which))
        post = self.posterior[..., which]
        post = post / np.maximum(post.sum(-1, keepdims=True), 1e-12)
        labels = np.where(self.labels >= 0, post.argmax(-1), -1)
        reason = {**self.reason, "dropped_empty": [int(i) for i in np.setdiff1d(np.arange(self.n_materials), which)]}
        return FieldClusters(labels, post.astype(np.float32), len(which), reason)


def noise_scale(grid: np.ndarray, lag: int) -> np.ndarray:
    """Within-material noise of each descriptor: the robust spread of the difference between windows
    ``lag`` cells apart (most such pairs lie inside one material).

    Args:
        grid: (rows, cols, d) descriptors.
        lag: grid cells between the two windows of a pair (windows that do not overlap).

    Returns:
        (d,) noise sd per descriptor (0 where the descriptor does not vary).
    """
    diffs = []
    for axis in (0, 1):
        n = grid.shape[axis]
        step = min(lag, n - 1)
        if step >= 1:
            a = np.take(grid, np.arange(n - step), axis=axis)
            b = np.take(grid, np.arange(step, n), axis=axis)
            diffs.append((a - b).reshape(-1, grid.shape[-1]))
    if not diffs:
        return np.zeros(grid.shape[-1])
    d = np.concatenate(diffs).astype(np.float64)
    return np.median(np.abs(d - np.median(d, 0)), 0) * 1.4826 / np.sqrt(2.0)


def reduce_features(
    grid: np.ndarray, groups: dict[str, slice], max_components: int = 8, lag: int = 4, scale: str = "noise"
) -> np.ndarray:
    """Standardise the descriptors, give each group equal weight, keep the principal directions
    that stand out of the noise.

    ``scale="noise"`` divides each descriptor by its within-material noise (``noise_scale``), so a
    direction counts by how far materials differ *relative to the image's own noise*: the noise of
    a large vacuum region no longer outweighs the lattice difference of two crystals.
    ``scale="robust"`` divides by the spread over all windows (MAD), which favours the descriptors
    that vary most across the image (clipped at 20). In noise units a principal direction is kept
    when the windows spread along it by at least ``MIN_COMPONENT_SNR`` noise sds; in robust units,
    the directions that explain 95 % of the variance are kept.

    Args:
        grid: (rows, cols, d) descriptors.
        groups: column slices of the descriptor groups.
        max_components: principal directions kept at most.
        lag: grid cells between the windows whose differences measure the noise.
        scale: "noise" or "robust".

    Returns:
        (rows, cols, p) reduced descriptors.
    """
    if grid.ndim != 3:
        raise ParameterError(f"expected (rows, cols, d) descriptors, got shape {grid.shape}")
    if scale not in SCALES:
        raise ParameterError(f"scale must be one of {SCALES}, got {scale!r}")
    rows, cols, d = grid.shape
    x = grid.reshape(-1, d).astype(np.float64)
    med = np.median(x, 0)
    sd = x.std(0)
    fallback = np.where(sd > 1e-12, sd, 1.0)
    noise = noise_scale(grid, lag)
    noise = np.where(noise > 1e-6 * fallback, noise, 0.0)
    if scale == "noise":
        spread = noise
    else:
        spread = np.median(np.abs(x - med), 0) * 1.4826
        spread = np.where(spread > 1e-6 * fallback, spread, 0.0)
    div = np.where(spread > 0, spread, fallback)
    x = (x - med) / div
    if scale == "robust":
        x = np.clip(x, -20, 20)  # outliers (saturated, edge windows) do not set the axes
    noise_var = (noise / div) ** 2  # per descriptor, in the scaled units
    for sl in groups.values():
        n = max(sl.stop - sl.start, 1)
        x[:, sl] /= np.sqrt(n)
        noise_var[sl] /= n
    x -= x.mean(0)
    sample = x[:: max(1, len(x) // _MAX_FIT)]
    _, s, vt = np.linalg.svd(sample, full_matrices=False)
    var = s**2 / len(sample)
    along = (vt**2) @ noise_var  # noise variance along each principal direction
    if scale == "noise":
        snr = np.sqrt(var / np.maximum(along, 1e-12 * max(var.max(), 1e-12)))
        p = int(np.clip((snr >= MIN_COMPONENT_SNR).sum(), 1, max_components))
    else:
        frac = np.cumsum(var) / max(var.sum(), 1e-12)
        p = int(np.clip(np.searchsorted(frac, 0.95) + 1, 1, max_components))
    return (x @ vt[:p].T).astype(np.float32).reshape(rows, cols, p)


def boundary_weight(z: np.ndarray) -> np.ndarray:
    """Weight of each window from the descriptor gradient across the grid (low on boundaries).

    Args:
        z: (rows, cols, p) reduced descriptors.

    Returns:
        (rows, cols) weights in (0, 1].
    """
    pad = np.pad(z, ((1, 1), (1, 1), (0, 0)), mode="edge")
    gy = np.linalg.norm(pad[2:, 1:-1] - pad[:-2, 1:-1], axis=-1)
    gx = np.linalg.norm(pad[1:-1, 2:] - pad[1:-1, :-2], axis=-1)
    g = np.maximum(gx, gy)
    ref = max(float(np.median(g)), 1e-9)
    return 1.0 / (1.0 + (g / ref) ** 2)


def valley_ratio(za: np.ndarray, wa: np.ndarray, zb: np.ndarray, wb: np.ndarray) -> float:
    """Density dip between two weighted point clouds along the line through their centres.

    Returns:
        min density between the two centres / the lower of the two peak densities (1 = no dip).
    """
    ca = np.average(za, 0, wa)
    cb = np.average(zb, 0, wb)
    u = cb - ca
    dist = float(np.linalg.norm(u))
    if dist < 1e-12:
        return 1.0
    u /= dist
    ta = (za - ca) @ u / dist  # 0 at centre a, 1 at centre b
    tb = (zb - ca) @ u / dist
    t = np.concatenate([ta, tb])
    w = np.concatenate([wa, wb])

    # bandwidth: Silverman's rule on the tighter of the two clouds (weighted sd), so a big diffuse
    # cloud does not blur a small tight one away
    def wsd(v: np.ndarray, ww: np.ndarray) -> float:
        m = np.average(v, weights=ww)
        return float(np.sqrt(np.average((v - m) ** 2, weights=ww)))

    n_eff = min(wa.sum() ** 2 / (wa**2).sum(), wb.sum() ** 2 / (wb**2).sum())
    bw = 0.9 * max(min(wsd(ta, wa), wsd(tb, wb)), 1e-3) * max(n_eff, 2.0) ** -0.2
    grid = np.linspace(-0.5, 1.5, 401)
    step = grid[1] - grid[0]
    hist = np.histogram(t, bins=np.append(grid - step / 2, grid[-1] + step / 2), weights=w)[0]
    dens = gaussian_filter(hist.astype(np.float64), bw / step, mode="constant")
    ia = int(np.argmin(np.abs(grid - 0.0)))
    ib = int(np.argmin(np.abs(grid - 1.0)))
    half = max(1, int(round(0.25 / step)))
    peak_a = dens[max(0, ia - half) : ia + half + 1].max()
    peak_b = dens[ib - half : ib + half + 1].max()
    valley = dens[ia : ib + 1].min()
    return float(valley / max(min(peak_a, peak_b), 1e-12))


def _fragments(labels: np.ndarray, ids: np.ndarray, ok: np.ndarray, min_frac: float) -> set[int]:
    """Clusters whose largest connected region on the grid is under ``min_frac`` of the valid windows.

    A material forms coherent regions (a film is thin but long); scattered specks or a boundary
    line each cover only a few windows.
    """
    grid = np.full(ok.shape, -1, np.int64)
    grid[ok] = labels
    need = min_frac * ok.sum()
    small = set()
    for i in ids:
        comp, n = ndimage.label(grid == i)
        largest = np.bincount(comp.ravel())[1:].max() if n else 0
        if largest < need:
            small.add(int(i))
    return small


def _losers(flat: np.ndarray, labels: np.ndarray, ids: np.ndarray, weight: np.ndarray, min_frac: float) -> set[int]:
    """Clusters that win under ``min_frac`` of the windows once every cluster is a Gaussian (a cluster
    of mixed windows between two materials: the materials' Gaussians claim them)."""
    _, dense = np.unique(labels, return_inverse=True)
    wins = np.bincount(_posterior(flat, dense, weight, len(ids)).argmax(1), minlength=len(ids))
    return {int(i) for i, n in zip(ids, wins, strict=True) if n < min_frac * len(flat)}


def _merge(labels: np.ndarray, a: int, b: int) -> np.ndarray:
    out = labels.copy()
    out[out == b] = a
    return out


def cluster_field(
    z: np.ndarray,
    n_materials: int = 0,
    *,
    k0: int = 8,
    max_materials: int = 6,
    merge_valley: float = 0.5,
    min_material_frac: float = 0.01,
    seed: int = 0,
    valid: np.ndarray | None = None,
) -> FieldClusters:
    """Cluster the reduced grid descriptors into materials.

    Args:
        z: (rows, cols, p) reduced descriptors.
        n_materials: K, or 0 for automatic.
        k0: clusters of the initial over-clustering.
        max_materials: upper bound on the automatic K.
        merge_valley: merge two clusters while their valley ratio exceeds this (automatic K).
        min_material_frac: clusters below this fraction of the total window weight join a neighbour.
        seed: K-means seed.
        valid: (rows, cols) bool, False for windows that carry no texture (saturated detector);
            they take no part and get label -1 and a zero posterior (``assign_untextured``).

    Returns:
        The materials on the grid.
    """
    if z.ndim != 3:
        raise ParameterError(f"expected (rows, cols, p) descriptors, got shape {z.shape}")
    if n_materials < 0 or max_materials < 1:
        raise ParameterError(f"materials must be >= 0 and max-materials >= 1, got {n_materials}, {max_materials}")
    if not 0 < merge_valley < 1:
        raise ParameterError(f"merge-valley must be in (0, 1), got {merge_valley}")
    rows, cols, p = z.shape
    ok = np.ones((rows, cols), bool) if valid is None else valid.astype(bool)
    if ok.shape != (rows, cols):
        raise ParameterError(f"valid mask must be {rows}x{cols} like the grid, got {ok.shape}")
    if not ok.any():
        raise ParameterError("no window of the image carries texture (all saturated)")
    weight_grid = boundary_weight(z)
    flat = z.reshape(-1, p)[ok.ravel()].astype(np.float64)
    weight = weight_grid[ok]
    k_init = int(min(max(k0, n_materials + 2), len(flat)))
    step = max(1, len(flat) // _MAX_FIT)
    km = KMeans(k_init, n_init=2, random_state=seed).fit(flat[::step], sample_weight=weight[::step])
    labels = km.predict(flat)
    history: list[dict] = []
    valleys: dict[tuple[int, int], float] = {}
    target = n_materials if n_materials > 0 else 1
    while True:
        ids = np.unique(labels)
        if len(ids) <= target:
            break
        small = _fragments(labels, ids, ok, min_material_frac) | _losers(flat, labels, ids, weight, min_material_frac)
        best, pair = -1.0, None
        for ai in range(len(ids)):
            for bi in range(ai + 1, len(ids)):
                a, b = int(ids[ai]), int(ids[bi])
                if (a, b) not in valleys:  # only pairs with the last merged cluster are new
                    ma, mb = labels == a, labels == b
                    valleys[(a, b)] = valley_ratio(flat[ma], weight[ma], flat[mb], weight[mb])
                r = valleys[(a, b)]
                if a in small or b in small:
                    r += 1.0  # a fragment merges first, with its least separated neighbour
                if r > best:
                    best, pair = r, (a, b)
        auto = n_materials == 0
        if auto and best <= merge_valley and len(ids) <= max_materials:
            break
        a, b = pair
        history.append({"merged": [int(a), int(b)], "valley": round(min(best, 1.0), 3), "fragment": best > 1.0})
        keep, drop = (a, b) if (labels == a).sum() >= (labels == b).sum() else (b, a)
        labels = _merge(labels, keep, drop)
        valleys = {pq: v for pq, v in valleys.items() if keep not in pq and drop not in pq}
    ids, labels = np.unique(labels, return_inverse=True)
    k = len(ids)
    posterior = np.zeros((rows, cols, k), np.float32)
    posterior[ok] = _posterior(flat, labels, weight, k)
    label_grid = np.full((rows, cols), -1, np.int64)
    label_grid[ok] = labels
    final_pairs = {}
    for ai in range(k):
        for bi in range(ai + 1, k):
            ma, mb = labels == ai, labels == bi
            final_pairs[f"{ai}-{bi}"] = round(valley_ratio(flat[ma], weight[ma], flat[mb], weight[mb]), 3)
    reason = {
        "rule": "given" if n_materials else "valley merge",
        "merge_valley": merge_valley,
        "initial_clusters": k_init,
        "merges": history,
        "final_valleys": final_pairs,
    }
    return FieldClusters(label_grid, posterior, k, reason)


def _posterior(flat: np.ndarray, labels: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Soft assignment from one diagonal Gaussian per material (fitted on the weighted windows)."""
    logp = np.empty((len(flat), k))
    for i in range(k):
        m = labels == i
        w = weight[m]
        mu = np.average(flat[m], 0, w)
        var = np.average((flat[m] - mu) ** 2, 0, w) + 1e-3
        prior = w.sum() / weight.sum()
        logp[:, i] = -0.5 * (((flat - mu) ** 2) / var + np.log(var)).sum(1) + np.log(prior)
    logp -= logp.max(1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(1, keepdims=True)


def assign_untextured(clusters: FieldClusters, brightness: np.ndarray) -> FieldClusters:
    """Give the windows that took no part (saturated: no texture left) the material whose mean
    window brightness is nearest to theirs. Clipping destroys a region's texture, not the fact that
    it is the brightest (or darkest) thing in the image: a clipped particle joins the bright
    material, not the support.

    Args:
        clusters: the grid result, label -1 on the untextured windows.
        brightness: (rows, cols) mean intensity of every window.

    Returns:
        The same result with every window assigned (one-hot posterior on the former -1 windows).
    """
    if brightness.shape != clusters.labels.shape:
        raise ParameterError(f"brightness must be {clusters.labels.shape} like the grid, got {brightness.shape}")
    empty = clusters.labels < 0
    if not empty.any():
        return clusters
    ok = ~empty
    means = np.array([brightness[ok & (clusters.labels == i)].mean() for i in range(clusters.n_materials)])
    nearest = np.abs(brightness[empty][:, None] - means[None, :]).argmin(1)
    labels = clusters.labels.copy()
    labels[empty] = nearest
    posterior = clusters.posterior.copy()
    posterior[empty] = np.eye(clusters.n_materials, dtype=np.float32)[nearest]
    reason = {**clusters.reason, "untextured_windows": int(empty.sum())}
    return FieldClusters(labels, posterior, clusters.n_materials, reason)
