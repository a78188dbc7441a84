"""Defect classes: Gaussian mixture over AE2 latents, components and covariance type chosen by BIC."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samiam.errors import ParameterError

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


@dataclass
class ClassModel:
    """A fitted mixture with the standardisation of its inputs.

    Attributes:
        mean: feature means used for standardisation.
        std: feature standard deviations used for standardisation.
        gmm: the fitted ``sklearn.mixture.GaussianMixture``.
        selection: the model-selection table: one row per (components, covariance type) with
            bic, aic, and for the chosen model silhouette and davies_bouldin.
    """

    mean: np.ndarray
    std: np.ndarray
    gmm: object
    selection: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.gmm.n_components)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (class, probability of that class, soft assignments (N, n_classes))."""
        if len(features) == 0:
            return np.zeros(0, int), np.zeros(0), np.zeros((0, self.n_classes))
        x = (features - self.mean) / self.std
        soft = self.gmm.predict_proba(x)
        cls = soft.argmax(axis=1)
        return cls, soft[np.arange(len(cls)), cls], soft

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays that rebuild the model with ``from_arrays`` (saved as .npz in the model dir)."""
        g = self.gmm
        return {
            "mean": self.mean,
            "std": self.std,
            "weights": g.weights_,
            "means": g.means_,
            "covariances": g.covariances_,
            "precisions_cholesky": g.precisions_cholesky_,
            "covariance_type": np.array(g.covariance_type),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], selection: dict | None = None) -> ClassModel:
        """Rebuild a fitted model from ``to_arrays`` output."""
        from sklearn.mixture import GaussianMixture

        cov_type = str(arrays["covariance_type"])
        weights = np.asarray(arrays["weights"])
        gmm = GaussianMixture(n_components=len(weights), covariance_type=cov_type)
        gmm.weights_ = weights
        gmm.means_ = np.asarray(arrays["means"])
        gmm.covariances_ = np.asarray(arrays["covariances"])
        gmm.precisions_cholesky_ = np.asarray(arrays["precisions_cholesky"])
        prec_chol = gmm.precisions_cholesky_
        if cov_type == "full":
            gmm.precisions_ = np.einsum("kij,klj->kil", prec_chol, prec_chol)
        elif cov_type == "tied":
            gmm.precisions_ = prec_chol @ prec_chol.T
        else:
            gmm.precisions_ = prec_chol**2
        gmm.converged_ = True
        gmm.n_iter_ = 0
        gmm.lower_bound_ = 0.0
        gmm.n_features_in_ = gmm.means_.shape[1]
        return cls(np.asarray(arrays["mean"]), np.asarray(arrays["std"]), gmm, selection or {})


def fit_classes(
    features: np.ndarray,
    *,
    max_components: int = 8,
    covariance_types: tuple[str, ...] = COVARIANCE_TYPES,
    seed: int = 0,
) -> ClassModel:
    """Fit Gaussian mixtures for 1..max_components and every covariance type; keep the lowest BIC.

    Args:
        features: (N, d) per-defect features (AE2 latents).
        max_components: largest number of classes tried (capped by N/2).
        covariance_types: covariance types tried.
        seed: random state of the mixtures.

    Returns:
        The chosen model with the selection table (BIC, AIC for all; silhouette and
        Davies-Bouldin for the chosen one when it has 2+ classes).

    Raises:
        ParameterError: fewer than 4 defects, or an unknown covariance type.
    """
    from sklearn.metrics import davies_bouldin_score, silhouette_score
    from sklearn.mixture import GaussianMixture

    n = len(features)
    if n < 4:
        raise ParameterError(f"{n} defect(s) found in the training images; at least 4 are needed to fit classes")
    bad = [c for c in covariance_types if c not in COVARIANCE_TYPES]
    if bad:
        raise ParameterError(f"unknown covariance type(s) {bad}; expected some of {list(COVARIANCE_TYPES)}")
    mean = features.mean(0)
    std = features.std(0) + 1e-6
    x = (features - mean) / std
    rows, best, best_bic = [], None, np.inf
    for k in range(1, max(1, min(max_components, n // 2)) + 1):
        for cov in covariance_types:
            gmm = GaussianMixture(n_components=k, covariance_type=cov, random_state=seed, n_init=2, reg_covar=1e-4).fit(
                x
            )
            bic, aic = float(gmm.bic(x)), float(gmm.aic(x))
            rows.append({"components": k, "covariance_type": cov, "bic": bic, "aic": aic})
            if bic < best_bic:
                best, best_bic = gmm, bic
    chosen = {
        "components": int(best.n_components),
        "covariance_type": best.covariance_type,
        "bic": best_bic,
        "aic": float(best.aic(x)),
    }
    labels = best.predict(x)
    if len(np.unique(labels)) >= 2:
        chosen["silhouette"] = float(silhouette_score(x, labels, random_state=seed, sample_size=min(n, 5000)))
        chosen["davies_bouldin"] = float(davies_bouldin_score(x, labels))
    return ClassModel(mean, std, best, {"chosen": chosen, "tried": rows, "n_defects": n})
