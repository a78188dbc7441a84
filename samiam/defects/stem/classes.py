"""Defect classes: K-means over per-defect descriptors, the number of classes chosen by silhouette.

(The STM flow's AE2 + Gaussian mixture needs a trained autoencoder; the STEM descriptors are two
dose-independent numbers, and ``method="gmm"`` (BIC) is kept to compare against.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samiam.defects.stem.instances import PSEUDO_LABELS


@dataclass
class StemClasses:
    """A fitted class model.

    Attributes:
        centres: (K, D) class centres in standardised descriptor space.
        mean: (D,) descriptor mean used for standardising.
        scale: (D,) descriptor standard deviation used for standardising.
        spread: within-class RMS distance (standardised units), for soft assignments.
        names: a name per class: the majority pseudo-label of its training defects.
        selection: K tried -> score (silhouette or -BIC), and the method.
    """

    centres: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    spread: float
    names: list[str]
    selection: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(len(self.centres))

    def predict(self, desc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class (N,), its probability (N,), soft assignments (N, K)) of descriptors (N, D)."""
        if len(desc) == 0:
            return np.zeros(0, int), np.zeros(0), np.zeros((0, self.n_classes))
        x = (desc - self.mean) / self.scale
        d2 = ((x[:, None, :] - self.centres[None]) ** 2).sum(-1)
        logit = -d2 / (2 * self.spread**2)
        soft = np.exp(logit - logit.max(1, keepdims=True))
        soft /= soft.sum(1, keepdims=True)
        cls = d2.argmin(1)
        return cls, soft[np.arange(len(cls)), cls], soft

    def to_npz(self) -> dict[str, np.ndarray]:
        return {"centres": self.centres, "mean": self.mean, "scale": self.scale, "spread": np.array(self.spread)}


def _names(labels: np.ndarray, pseudo: np.ndarray, k: int) -> list[str]:
    names = []
    for c in range(k):
        members = pseudo[labels == c]
        names.append(PSEUDO_LABELS[int(np.bincount(members, minlength=3).argmax())] if len(members) else "empty")
    return names


def fit_classes(
    desc: np.ndarray, pseudo: np.ndarray, max_classes: int = 6, seed: int = 0, method: str = "kmeans"
) -> StemClasses:
    """Fit the classes of a set of defects.

    Args:
        desc: (N, D) descriptors (``instances.descriptors``).
        pseudo: (N,) pseudo-label index of each defect (only names the classes).
        max_classes: largest K tried (from 2).
        seed: random state.
        method: "kmeans" (K by silhouette) or "gmm" (full-covariance mixture, K by BIC).

    Returns:
        The class model (one class when there are fewer than 4 defects).
    """
    from sklearn.cluster import KMeans

    if method not in ("kmeans", "gmm"):
        raise ValueError(f"expected method 'kmeans' or 'gmm', got '{method}'")
    desc = np.asarray(desc, np.float64)
    n, d = desc.shape if desc.ndim == 2 else (0, 2)
    mean = desc.mean(0) if n else np.zeros(d)
    scale = desc.std(0) + 1e-3 if n else np.ones(d)
    if n < 4:
        centres = ((desc - mean) / scale).mean(0, keepdims=True) if n else np.zeros((1, d))
        return StemClasses(centres, mean, scale, 1.0, _names(np.zeros(n, int), pseudo, 1), {"method": method})
    x = (desc - mean) / scale
    scores, best = {}, None
    for k in range(2, min(max_classes, n - 1) + 1):  # a few K
        if method == "kmeans":
            from sklearn.metrics import silhouette_score

            lab = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
            if len(np.unique(lab)) < 2:
                continue
            score = float(silhouette_score(x, lab))
        else:
            from sklearn.mixture import GaussianMixture

            gm = GaussianMixture(k, covariance_type="full", random_state=seed, reg_covar=1e-3).fit(x)
            lab, score = gm.predict(x), -float(gm.bic(x))
        scores[k] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, k, lab)
    if best is None:
        lab, k = np.zeros(n, int), 1
    else:
        _, k, lab = best
    centres = np.stack([x[lab == c].mean(0) if (lab == c).any() else np.zeros(d) for c in range(k)])
    spread = float(np.sqrt(((x - centres[lab]) ** 2).sum(1).mean()) + 1e-3)
    return StemClasses(centres, mean, scale, spread, _names(lab, pseudo, k), {"method": method, "scores": scores})
