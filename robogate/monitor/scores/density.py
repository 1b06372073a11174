"""Likelihood of the policy's embedding under a density fitted on successful rollouts.

The idea of logpZO (a policy's features are unlikely where it fails): fit a density to the
embeddings of successful rollouts and score a step by the negative log-likelihood of its
embedding. Here the density is a Gaussian mixture (scikit-learn) on the standardised
embedding, projected first on the principal components that hold most of its variance.

A density can exceed 1, so a negative log-likelihood can be negative; a failure score may not
(the monitor sums it over windows and divides it by per-step quantiles). The score is therefore
measured from the most likely fitting step: ``max(NLL - min NLL over the fitting steps, 0)``,
zero where an embedding is at least as typical as the most typical one seen in fitting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from robogate._utils.checks import check_int
from robogate.monitor.rollout import Rollout
from robogate.monitor.scores.base import PerStepScore

__all__ = ["EmbeddingDensity"]

_STD_FLOOR = 1e-3


class EmbeddingDensity(PerStepScore):
    """Negative log-likelihood of the embedding under a Gaussian mixture fitted on successes.

    Parameters
    ----------
    components : int
        Mixture components.
    variance : float in (0, 1]
        Share of the standardised embedding's variance the principal components keep.
    seed : int
        Seeds the mixture's initialisation.

    Examples
    --------
    >>> import numpy as np
    >>> from robogate.monitor import Rollout
    >>> rng = np.random.default_rng(0)
    >>> density = EmbeddingDensity(components=2).fit([Rollout(embeddings=rng.normal(size=(500, 4)))])
    >>> near, far = (Rollout(embeddings=np.full((1, 4), v)) for v in (0.0, 5.0))
    >>> bool(density.score(far)[0] > density.score(near)[0])
    True
    """

    signals = ("embeddings",)

    def __init__(self, *, components: int = 8, variance: float = 0.99, seed: int = 0) -> None:
        self.components = check_int(components, "components", minimum=1)
        if not 0.0 < float(variance) <= 1.0:
            raise ValueError(f"variance must be a number in (0, 1], got {variance!r}")
        self.variance = float(variance)
        self.seed = check_int(seed, "seed")

    def get_config(self) -> dict:
        return {"components": self.components, "variance": self.variance, "seed": self.seed}

    def fit(self, rollouts: Sequence[Rollout]) -> EmbeddingDensity:
        """Fit the mixture on every step of ``rollouts`` (successful ones), and the offset that keeps the
        score non-negative."""
        x = np.concatenate([r.embeddings for r in rollouts]).astype(np.float64)
        if len(x) < max(self.components, 2):
            raise ValueError(f"the density needs at least {max(self.components, 2)} embedded steps, got {len(x)}")
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.std_ = np.maximum(std, _STD_FLOOR * float(std.mean()) + 1e-12)
        z = (x - self.mean_) / self.std_
        pca = PCA(self.variance if self.variance < 1.0 else None, random_state=self.seed).fit(z)
        mixture = GaussianMixture(self.components, covariance_type="full", reg_covar=1e-3,
                                  random_state=self.seed).fit(pca.transform(z))
        self._set(self.mean_, self.std_, pca.mean_, pca.components_, mixture.weights_, mixture.means_,
                  mixture.precisions_cholesky_, None)
        self.offset_ = float(np.min(self.negative_log_likelihood(x)))
        return self

    def _set(self, mean, std, pca_mean, pca_components, weights, means, precisions_cholesky, offset) -> None:
        self.mean_, self.std_ = mean, std
        self.pca_mean_, self.pca_components_ = pca_mean, pca_components
        self.weights_, self.means_, self.precisions_cholesky_ = weights, means, precisions_cholesky
        self.offset_ = offset

    def score_steps(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        nll = self.negative_log_likelihood(arrays["embeddings"])
        if self.offset_ is None:  # saved before the offset existed: its thresholds were set on the raw NLL
            return nll
        return np.maximum(nll - self.offset_, 0.0)

    def negative_log_likelihood(self, embeddings: np.ndarray) -> np.ndarray:
        """The mixture's negative log-likelihood (nats) of each embedding (n, d), shape (n,): unshifted."""
        z = (np.asarray(embeddings, dtype=np.float64) - self.mean_) / self.std_
        y = (z - self.pca_mean_) @ self.pca_components_.T  # (n, k)
        # log N(y | mu_j, Sigma_j) with Sigma_j^-1 = P_j P_j^T (P_j: the precision's Cholesky factor)
        proj = np.einsum("nk,jkl->njl", y, self.precisions_cholesky_) - np.einsum(
            "jk,jkl->jl", self.means_, self.precisions_cholesky_)[None]
        log_det = np.log(np.diagonal(self.precisions_cholesky_, axis1=1, axis2=2)).sum(axis=1)
        log_prob = -0.5 * (y.shape[1] * np.log(2 * np.pi) + np.sum(proj**2, axis=2)) + log_det[None]
        return -logsumexp(log_prob + np.log(self.weights_)[None], axis=1)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "std": self.std_, "pca_mean": self.pca_mean_,
                "pca_components": self.pca_components_, "weights": self.weights_, "means": self.means_,
                "precisions_cholesky": self.precisions_cholesky_, "offset": np.asarray(self.offset_, dtype=float)}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        a = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
        self._set(a["mean"], a["std"], a["pca_mean"], a["pca_components"], a["weights"], a["means"],
                  a["precisions_cholesky"], float(a["offset"]) if "offset" in a else None)
