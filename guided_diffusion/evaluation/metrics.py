"""Metric arithmetic of the ADM evaluator: FID, IS, precision/recall, and more.

Plain functions on numpy arrays (or torch tensors, for the k-NN metrics). The
formulas follow the ADM evaluator (``openai/guided-diffusion``,
``evaluations/evaluator.py``) so numbers are comparable with published ones:

* FID (Heusel et al. 2017): ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``.
* IS (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` per split, mean
  over splits.
* Improved precision/recall (Kynkaanniemi et al. 2019): k-NN manifolds with
  *squared* Euclidean float32 distances, radius = distance to the k-th
  neighbour where a point's own zero distance counts as the first.
* Density/coverage (Naeem et al. 2020) and per-class recall (mean over
  classes of the recall within each class).
* The channel gap of images whose data are grey (the digits): how far a
  sample is from grey, which the feature-based metrics do not see.

The k-NN metrics run in torch on blocks of rows so that 50,000 x 2048
features fit in bounded memory, on the GPU when one is given.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg

ArrayLike = np.ndarray | torch.Tensor

#: Elements of one block of the distance matrix (1 GiB in float32).
DEFAULT_BLOCK_ELEMENTS = 2**28


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov(rowvar=False)``) of ``[N, D]`` features."""
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(
            f"need a [N, D] array with N >= 2 to fit a Gaussian, got shape {features.shape}"
        )
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance ``|mu1-mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))``.

    As in the ADM evaluator: when ``sqrtm`` is not finite, ``eps * I`` is added
    to both covariances; a complex result keeps its real part (and raises if
    its diagonal has an imaginary part above 1e-3).
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"FID: product of covariances is almost singular; adding {eps} to the diagonal",
            stacklevel=2,
        )
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def inception_score(softmax: np.ndarray, split_size: int = 5000) -> float:
    """Inception Score ``mean_splits exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y)))``.

    ``p(y)`` is the mean of ``p(y|x)`` within each split of ``split_size``
    consecutive rows (the last split may be shorter), as in the ADM evaluator.
    """
    preds = np.asarray(softmax, dtype=np.float64)
    if preds.ndim != 2 or len(preds) == 0:
        raise ValueError(f"need a non-empty [N, classes] softmax array, got shape {preds.shape}")
    scores = []
    for start in range(0, len(preds), split_size):
        part = preds[start : start + split_size]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores))


def _as_tensor(x: ArrayLike, device: torch.device | str | None) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float32)


def _block_rows(num_cols: int, block_elements: int) -> int:
    return max(1, block_elements // max(1, num_cols))


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``max(|a|^2 - 2 a.b + |b|^2, 0)`` for all row pairs (the reference formula)."""
    d = torch.addmm(a.square().sum(1, keepdim=True), a, b.T, alpha=-2)  # one fused GEMM
    return d.add_(b.square().sum(1)[None, :]).clamp_min_(0)


def manifold_radii(
    features: ArrayLike,
    nhood_size: int = 3,
    device: torch.device | str | None = None,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> torch.Tensor:
    """Squared distance of each point to its ``nhood_size``-th neighbour.

    The point itself (distance 0) counts as neighbour 0, i.e. the value at
    sorted index ``nhood_size`` of each row of the distance matrix.
    """
    feats = _as_tensor(features, device)
    n = len(feats)
    if n <= nhood_size:
        raise ValueError(f"need more than nhood_size={nhood_size} points for k-NN radii, got {n}")
    rows = _block_rows(n, block_elements)
    radii = torch.empty(n, dtype=torch.float32, device=feats.device)
    for start in range(0, n, rows):
        d = squared_distances(feats[start : start + rows], feats)
        radii[start : start + rows] = d.topk(nhood_size + 1, dim=1, largest=False).values[:, -1]
    return radii


def _manifold_coverage(
    ref: torch.Tensor,
    ref_radii: torch.Tensor,
    sample: torch.Tensor,
    sample_radii: torch.Tensor,
    block_elements: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks: sample inside the ref manifold, ref inside the sample manifold."""
    sample_in = torch.zeros(len(sample), dtype=torch.bool, device=sample.device)
    ref_in = torch.empty(len(ref), dtype=torch.bool, device=ref.device)
    rows = _block_rows(len(sample), block_elements)
    for start in range(0, len(ref), rows):
        stop = start + rows
        d = squared_distances(ref[start:stop], sample)
        ref_in[start:stop] = (d <= sample_radii[None, :]).any(dim=1)
        sample_in |= (d <= ref_radii[start:stop, None]).any(dim=0)
    return sample_in, ref_in


def precision_recall(
    ref_features: ArrayLike,
    sample_features: ArrayLike,
    nhood_size: int = 3,
    device: torch.device | str | None = None,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    ref_radii: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019), ADM arithmetic.

    precision = fraction of samples within ``radius_j`` of some reference j;
    recall = fraction of references within ``radius_i`` of some sample i
    (``<=`` on squared float32 distances, radii from :func:`manifold_radii`;
    ``ref_radii``: the references' radii computed once for many sample sets).
    """
    ref = _as_tensor(ref_features, device)
    sample = _as_tensor(sample_features, ref.device)
    if ref.shape[1] != sample.shape[1]:
        raise ValueError(f"feature sizes differ: ref {ref.shape[1]}, sample {sample.shape[1]}")
    if ref_radii is None:
        ref_radii = manifold_radii(ref, nhood_size, block_elements=block_elements)
    sample_radii = manifold_radii(sample, nhood_size, block_elements=block_elements)
    sample_in, ref_in = _manifold_coverage(ref, ref_radii, sample, sample_radii, block_elements)
    return float(sample_in.double().mean()), float(ref_in.double().mean())


def density_coverage(
    ref_features: ArrayLike,
    sample_features: ArrayLike,
    nhood_size: int = 5,
    device: torch.device | str | None = None,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    ref_radii: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), radii from the references only.

    density = ``1/(k M) sum_j sum_i [d(x_i, y_j) < r_i]``;
    coverage = ``1/N sum_i [min_j d(x_i, y_j) < r_i]``, with ``x`` the N
    references, ``y`` the M samples and ``r_i`` the k-NN radius of ``x_i``
    (``ref_radii``: computed once for many sample sets).
    """
    ref = _as_tensor(ref_features, device)
    sample = _as_tensor(sample_features, ref.device)
    if ref_radii is None:
        ref_radii = manifold_radii(ref, nhood_size, block_elements=block_elements)
    inside = torch.zeros(len(sample), dtype=torch.float64, device=ref.device)
    covered = torch.empty(len(ref), dtype=torch.bool, device=ref.device)
    rows = _block_rows(len(sample), block_elements)
    for start in range(0, len(ref), rows):
        stop = start + rows
        d = squared_distances(ref[start:stop], sample)
        less = d < ref_radii[start:stop, None]
        inside += less.sum(dim=0, dtype=torch.float64)
        covered[start:stop] = less.any(dim=1)
    return float(inside.mean() / nhood_size), float(covered.double().mean())


def per_class_recall(
    ref_features: ArrayLike,
    ref_labels: np.ndarray,
    sample_features: ArrayLike,
    sample_labels: np.ndarray,
    nhood_size: int = 3,
    device: torch.device | str | None = None,
) -> float:
    """Mean over classes of :func:`precision_recall`'s recall within each class.

    Classes with at most ``nhood_size`` references or samples (too few for a
    k-NN radius) are left out; raises if none is left.
    """
    ref_labels, sample_labels = np.asarray(ref_labels), np.asarray(sample_labels)
    ref = _as_tensor(ref_features, device)
    sample = _as_tensor(sample_features, ref.device)
    if len(ref_labels) != len(ref) or len(sample_labels) != len(sample):
        raise ValueError("need one label per feature row")
    recalls = []
    for label in np.intersect1d(ref_labels, sample_labels):
        ref_idx = torch.as_tensor(np.flatnonzero(ref_labels == label), device=ref.device)
        sample_idx = torch.as_tensor(np.flatnonzero(sample_labels == label), device=ref.device)
        if min(len(ref_idx), len(sample_idx)) <= nhood_size:
            continue
        recalls.append(precision_recall(ref[ref_idx], sample[sample_idx], nhood_size)[1])
    if not recalls:
        raise ValueError(f"no class has more than nhood_size={nhood_size} references and samples")
    return float(np.mean(recalls))


def channel_gap(images: np.ndarray) -> np.ndarray:
    """Per image, the mean over pixels of ``(|R - G| + |G - B| + |R - B|) / 3`` (uint8 units) of
    ``[N, H, W, 3]`` images: 0 for grey images, the size of a colour cast otherwise."""
    x = np.asarray(images, dtype=np.int32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return ((np.abs(r - g) + np.abs(g - b) + np.abs(r - b)) / 3.0).mean(axis=(1, 2))
