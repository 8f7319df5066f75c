"""A class-labelled Gaussian mixture, where every quantity a guided sampler needs is known exactly.

Each class ``c`` is a mixture of sub-modes, ``p(x | c) = sum_m pi_cm N(mu_cm, diag(v_cm))``. Under the VP
forward process ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` every component stays Gaussian,
``N(sqrt(abar_t) mu, abar_t v + 1 - abar_t)``, so the noisy marginal's score, the noise prediction
``eps(x_t, t) = -sqrt(1 - abar_t) grad log p(x_t)`` and the noisy posterior ``p(y | x_t)`` are closed forms.
:class:`ExactDenoiser` and :class:`ExactClassifier` wrap them as the networks ADM's samplers and the guidance
family call (images of shape ``(B, d, 1, 1)``, original timestep indices); :class:`ExactClassifier` with a
``spurious`` strength is a mis-specified guide: the exact posterior plus a class-specific logit along
directions that carry no class information (nuisance dimensions, whose distribution every class shares, or
dimensions in which the data has almost no variance), which a sample can satisfy without class features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..evaluation.metrics import frechet_distance


@dataclass
class GaussianMixture:
    """Components ``k`` (float64): ``means`` (K, d), diagonal ``variances`` (K, d), ``log_weights`` (K,)
    = log p(c) + log pi_cm, and ``component_class`` (K,); ``support`` (d,) marks the dimensions the data
    varies in (the others hold almost no variance)."""

    means: torch.Tensor
    variances: torch.Tensor
    log_weights: torch.Tensor
    component_class: torch.Tensor
    num_classes: int
    support: torch.Tensor

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def class_free(self) -> torch.Tensor:
        """(d,) the support dimensions whose distribution every component shares (nuisance: no class
        information)."""
        same = (self.means == self.means[:1]).all(0) & (self.variances == self.variances[:1]).all(0)
        return self.support & same

    def _noisy(self, alpha_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Each component's mean and variance (K, d) at ``abar_t``."""
        return math.sqrt(alpha_bar) * self.means, alpha_bar * self.variances + (1 - alpha_bar)

    @staticmethod
    def _by_alpha_bar(fn, n: int, alpha_bar: torch.Tensor | float) -> torch.Tensor:
        """``fn(rows, abar)`` over ``n`` rows grouped by their ``abar_t`` (a number or one per row), in order."""
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1).cpu()
        if ab.numel() == 1:
            return fn(torch.arange(n), float(ab))
        parts, order = [], []
        for value in torch.unique(ab):
            rows = (ab == value).nonzero().squeeze(1)
            parts.append(fn(rows, float(value)))
            order.append(rows)
        return torch.cat(parts)[torch.argsort(torch.cat(order))]

    def component_log_joint(self, x: torch.Tensor, alpha_bar: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``log p(k) + log p(x_t | k)`` (B, K) for flat ``x`` (B, d) at ``abar_t`` (a number or one per row)."""
        x = x.double()

        def at(rows: torch.Tensor, ab: float) -> torch.Tensor:
            mean, var = self._noisy(ab)
            precision = 1 / var  # the diagonal Gaussians' quadratic forms as matrix products
            xs = x[rows]
            quadratic = xs ** 2 @ precision.T - 2 * xs @ (mean * precision).T + (mean ** 2 * precision).sum(1)
            return self.log_weights - 0.5 * (quadratic + var.log().sum(1) + self.dim * math.log(2 * math.pi))

        return self._by_alpha_bar(at, len(x), alpha_bar)

    def log_density(self, x: torch.Tensor, alpha_bar: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``log p(x_t)`` (B,)."""
        return torch.logsumexp(self.component_log_joint(x, alpha_bar), dim=1)

    def class_log_joint(self, x: torch.Tensor, alpha_bar: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``log p(c, x_t)`` (B, C)."""
        return self._per_class(self.component_log_joint(x, alpha_bar))

    def _per_class(self, per_component: torch.Tensor) -> torch.Tensor:
        """logsumexp over each class's components: (..., K) -> (..., C)."""
        mask = self.component_class[None] == torch.arange(self.num_classes, device=per_component.device)[:, None]
        return torch.logsumexp(per_component[..., None, :].masked_fill(~mask, -math.inf), dim=-1)

    def class_log_posterior(self, x: torch.Tensor, alpha_bar: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``log p(c | x_t)`` (B, C): the exact noisy posterior."""
        joint = self.class_log_joint(x, alpha_bar)
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)

    def class_log_density(self, x: torch.Tensor, labels: torch.Tensor,
                          alpha_bar: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``log p(x_t | c)`` (B,) for each row's class."""
        joint = self.class_log_joint(x, alpha_bar).gather(1, labels.view(-1, 1)).squeeze(1)
        return joint - self.class_log_prior()[labels]

    def class_log_prior(self) -> torch.Tensor:
        """``log p(c)`` (C,)."""
        return self._per_class(self.log_weights)

    def score(self, x: torch.Tensor, alpha_bar: torch.Tensor | float, labels: torch.Tensor | None = None
              ) -> torch.Tensor:
        """``grad log p(x_t)`` (B, d), or ``grad log p(x_t | c)`` for ``labels``: responsibilities times each
        component's Gaussian score ``-(x - sqrt(abar) mu_k) / var_k``."""
        x = x.double()
        joint = self.component_log_joint(x, alpha_bar)
        if labels is not None:
            joint = joint.masked_fill(self.component_class[None] != labels.view(-1, 1), -math.inf)
        weights = torch.softmax(joint, dim=1)

        def at(rows: torch.Tensor, ab: float) -> torch.Tensor:
            mean, var = self._noisy(ab)
            return weights[rows] @ (mean / var) - x[rows] * (weights[rows] @ (1 / var))

        return self._by_alpha_bar(at, len(x), alpha_bar)

    def eps(self, x: torch.Tensor, alpha_bar: torch.Tensor | float, labels: torch.Tensor | None = None
            ) -> torch.Tensor:
        """The exact noise prediction ``-sqrt(1 - abar_t) grad log p(x_t)`` (conditional with ``labels``)."""
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64, device=x.device).expand(x.shape[0]).view(-1, 1)
        return -(1 - ab).sqrt() * self.score(x, alpha_bar, labels)

    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draws of ``p(x | c)`` for each label: ``(x (B, d), component (B,))``."""
        within = self.log_weights[None].expand(len(labels), -1).masked_fill(
            self.component_class[None] != labels.view(-1, 1), -math.inf)
        component = torch.multinomial(torch.softmax(within, dim=1), 1, generator=generator).squeeze(1)
        noise = torch.randn(len(labels), self.dim, dtype=torch.float64, generator=generator)
        return self.means[component] + self.variances[component].sqrt() * noise, component

    def class_total_variance(self, dims: torch.Tensor) -> torch.Tensor:
        """(C,) the trace of each class's covariance over ``dims`` (a mask): within plus between its components."""
        cc = self.component_class
        w = (self.log_weights - self.class_log_prior()[cc]).exp()
        means = self.means[:, dims]
        centre = torch.zeros(self.num_classes, means.shape[1], dtype=torch.float64)
        centre.index_add_(0, cc, w[:, None] * means)
        spread = self.variances[:, dims].sum(1) + ((means - centre[cc]) ** 2).sum(1)
        return torch.zeros(self.num_classes, dtype=torch.float64).index_add_(0, cc, w * spread)

    def class_moments(self, c: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (d,) and covariance (d, d) of ``p(x | c)``, or of the data ``p(x)`` without ``c``."""
        mask = torch.ones_like(self.component_class, dtype=torch.bool) if c is None else self.component_class == c
        w = torch.softmax(self.log_weights[mask], dim=0)
        means, variances = self.means[mask], self.variances[mask]
        mean = (w[:, None] * means).sum(0)
        centred = means - mean
        cov = torch.diag((w[:, None] * variances).sum(0)) + (w[:, None, None] * centred[:, :, None]
                                                              * centred[:, None, :]).sum(0)
        return mean, cov


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class ExactDenoiser(nn.Module):
    """``eps(x_t, t)`` of a mixture, called as ADM's UNet: ``(B, d, 1, 1)`` images, original timesteps ``t``;
    with ``conditional=True`` the class-conditional ``eps(x_t, t | y)``."""

    def __init__(self, mixture: GaussianMixture, alphas_cumprod: np.ndarray, conditional: bool = False):
        super().__init__()
        self.mixture = mixture
        self.register_buffer("alphas_cumprod", torch.as_tensor(alphas_cumprod, dtype=torch.float64))
        self.conditional = conditional
        self.num_classes = mixture.num_classes if conditional else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        labels = y if self.conditional else None
        eps = self.mixture.eps(_flat(x), self.alphas_cumprod[t.long()], labels)
        return eps.to(x.dtype).view_as(x)


class ExactClassifier(nn.Module):
    """``log p(y | x_t)`` of a mixture as logits, called as ADM's classifier ``(x, t)``; plus, with
    ``spurious > 0``, ``spurious * <v_y, x_t>`` for a class-specific unit direction ``v_y`` without class
    information (:func:`spurious_directions`; the mis-specified guide; 0: the exact guide)."""

    def __init__(self, mixture: GaussianMixture, alphas_cumprod: np.ndarray, spurious: float = 0.0,
                 directions: torch.Tensor | None = None):
        super().__init__()
        self.mixture = mixture
        self.register_buffer("alphas_cumprod", torch.as_tensor(alphas_cumprod, dtype=torch.float64))
        self.spurious = spurious
        if directions is None:
            directions = spurious_directions(mixture)
        self.register_buffer("directions", directions.double())

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        flat = _flat(x).double()
        logits = self.mixture.class_log_posterior(flat, self.alphas_cumprod[t.long()])
        if self.spurious:
            logits = logits + self.spurious * flat @ self.directions.T
        return logits.to(x.dtype)


def spurious_directions(mixture: GaussianMixture, seed: int = 0) -> torch.Tensor:
    """One random unit direction per class (C, d) within the nuisance dimensions (``class_free``), or, if
    the mixture has none, within the dimensions off the data's support."""
    free = mixture.class_free
    off = (free if free.any() else ~mixture.support).nonzero().squeeze(1)
    if len(off) == 0:
        raise ValueError("the mixture has no dimension without class information for a spurious guide")
    generator = torch.Generator().manual_seed(seed)
    directions = torch.zeros(mixture.num_classes, mixture.dim, dtype=torch.float64)
    raw = torch.randn(mixture.num_classes, len(off), dtype=torch.float64, generator=generator)
    directions[:, off] = raw / raw.norm(dim=1, keepdim=True)
    return directions


@dataclass(frozen=True)
class Structure:
    """A structured mixture: ``clusters`` groups of ``per_cluster`` classes whose members share their cluster's
    centre (the paper's dog breeds), each class ``modes`` sub-modes; ``support_dims`` dimensions carry the
    classes, ``nuisance_dims`` vary (std ``nuisance_std``) the same way in every class, ``null_dims`` hold almost
    no variance (std ``null_std``)."""

    clusters: int = 3
    per_cluster: int = 4
    modes: int = 3
    support_dims: int = 8
    null_dims: int = 8
    nuisance_dims: int = 0
    nuisance_std: float = 0.25
    cluster_spread: float = 0.6  # norm of a cluster centre
    class_spread: float = 0.25  # norm of a class's offset from its cluster's centre
    mode_spread: float = 0.15  # norm of a sub-mode's offset from its class's mean
    mode_std: float = 0.06
    null_std: float = 1e-3
    seed: int = 0


def structured_mixture(structure: Structure = Structure()) -> GaussianMixture:
    """The mixture of ``structure``, equal class and sub-mode weights, drawn from its seed."""
    s = structure
    g = torch.Generator().manual_seed(s.seed)

    def directions(n: int) -> torch.Tensor:
        raw = torch.randn(n, s.support_dims, dtype=torch.float64, generator=g)
        return raw / raw.norm(dim=1, keepdim=True)

    centres = s.cluster_spread * directions(s.clusters)
    num_classes = s.clusters * s.per_cluster
    class_means = centres.repeat_interleave(s.per_cluster, 0) + s.class_spread * directions(num_classes)
    mode_means = class_means.repeat_interleave(s.modes, 0) + s.mode_spread * directions(num_classes * s.modes)
    varying = s.support_dims + s.nuisance_dims
    means = torch.zeros(len(mode_means), varying + s.null_dims, dtype=torch.float64)
    means[:, :s.support_dims] = mode_means
    variances = torch.full_like(means, s.null_std ** 2)
    variances[:, :s.support_dims] = s.mode_std ** 2
    variances[:, s.support_dims:varying] = s.nuisance_std ** 2
    support = torch.zeros(means.shape[1], dtype=torch.bool)
    support[:varying] = True
    log_weights = torch.full((len(means),), -math.log(len(means)), dtype=torch.float64)
    return GaussianMixture(means, variances, log_weights, torch.arange(num_classes).repeat_interleave(s.modes),
                           num_classes, support)


def cluster_of(structure: Structure) -> np.ndarray:
    """Each class's cluster."""
    return np.arange(structure.clusters).repeat(structure.per_cluster)


def true_relevance(structure: Structure, self_share: float = 0.5) -> np.ndarray:
    """The true relevance matrix: ``self_share`` on the class, the rest evenly over its cluster's other members."""
    cluster = cluster_of(structure)
    same = (cluster[:, None] == cluster[None]).astype(np.float64)
    np.fill_diagonal(same, 0.0)
    matrix = (1 - self_share) * same / same.sum(1, keepdims=True)
    np.fill_diagonal(matrix, self_share)
    return matrix


def gaussian_w2(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> float:
    """Squared W2 distance between the Gaussian fitted to ``samples`` (N, d) and ``N(mean, cov)`` (the
    Frechet distance of FID, on exact moments); infinite for non-finite samples."""
    if not torch.isfinite(samples).all():
        return math.inf
    x = samples.double()
    return float(frechet_distance(x.mean(0).numpy(), np.cov(x.numpy(), rowvar=False), mean.numpy(), cov.numpy()))


def mmd(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> float:
    """Squared maximum mean discrepancy between two sample sets with a Gaussian kernel (unbiased estimate)."""
    def kernel_mean(x: torch.Tensor, y: torch.Tensor, same: bool) -> torch.Tensor:
        k = torch.exp(-torch.cdist(x, y) ** 2 / (2 * bandwidth ** 2))
        if same:
            n = len(x)
            return (k.sum() - k.diagonal().sum()) / (n * (n - 1))
        return k.mean()

    a, b = a.double(), b.double()
    return float(kernel_mean(a, a, True) + kernel_mean(b, b, True) - 2 * kernel_mean(a, b, False))


def outcomes(mixture: GaussianMixture, x: torch.Tensor, labels: torch.Tensor,
             guide: ExactClassifier | None = None) -> dict[str, np.ndarray]:
    """Per sample drawn for ``labels``: ``bayes`` (the Bayes label of the clean density, the independent bank,
    is the label), ``guide`` (the guide's top-1 at t = 0 is the label; with ``guide``), ``component`` (the
    most likely sub-mode), ``log_density`` (log p(x | c)) and ``off_support`` (distance off the data's support,
    in units of its standard deviation there). Non-finite samples count as wrong."""
    x = x.double().reshape(len(x), -1)
    labels = labels.long()
    finite = torch.isfinite(x).all(dim=1)
    x = x.nan_to_num(posinf=1e6, neginf=-1e6)
    out = {"bayes": ((mixture.class_log_posterior(x).argmax(1) == labels) & finite).numpy(),
           "component": mixture.component_log_joint(x).argmax(1).numpy(),
           "log_density": mixture.class_log_density(x, labels).numpy()}
    if guide is not None:
        guided = guide(x, torch.zeros(len(x), dtype=torch.long)).argmax(1)
        out["guide"] = ((guided == labels) & finite).numpy()
    off = ~mixture.support
    null_std = mixture.variances[:, off].sqrt().mean() if off.any() else torch.tensor(1.0)
    out["off_support"] = (x[:, off].norm(dim=1) / null_std).numpy()
    return out


def mode_coverage(mixture: GaussianMixture, labels: np.ndarray, components: np.ndarray,
                  min_share: float = 0.25) -> float:
    """Diversity (%): over the classes drawn, the share of each class's sub-modes that hold at least
    ``min_share`` of the samples they would get from ``p(x | c)``."""
    covered = []
    for c in np.unique(labels).tolist():
        mine = labels == c
        modes = (mixture.component_class == c).nonzero().squeeze(1)
        weights = torch.softmax(mixture.log_weights[modes], dim=0).numpy()
        counts = np.array([(components[mine] == k).sum() for k in modes.tolist()])
        covered.append(float((counts >= min_share * weights * mine.sum()).mean()))
    return 100.0 * float(np.mean(covered))


def within_class_spread(mixture: GaussianMixture, x: torch.Tensor | np.ndarray,
                        labels: torch.Tensor | np.ndarray) -> float:
    """Diversity (%): over the classes drawn (at least two samples each), the samples' total variance in the
    class dimensions (the support less the nuisance ones) relative to ``p(x | c)``'s; 100 is the data's own."""
    dims = mixture.support & ~mixture.class_free
    x = torch.as_tensor(x).double().reshape(len(x), -1)[:, dims]
    labels = torch.as_tensor(labels).long()
    classes = mixture.num_classes
    counts = torch.bincount(labels, minlength=classes).double()
    sums = torch.zeros(classes, x.shape[1], dtype=torch.float64).index_add_(0, labels, x)
    squares = torch.zeros(classes, dtype=torch.float64).index_add_(0, labels, (x ** 2).sum(1))
    drawn = counts >= 2
    variance = (squares[drawn] - (sums[drawn] ** 2).sum(1) / counts[drawn]) / (counts[drawn] - 1)
    if not drawn.any():
        return float("nan")
    return 100.0 * float((variance / mixture.class_total_variance(dims)[drawn]).mean())


def ground_truth(mixture: GaussianMixture, x: torch.Tensor, labels: torch.Tensor,
                 guide: ExactClassifier | None = None, min_share: float = 0.25) -> dict[str, float]:
    """What is true of samples ``x`` (N, d) drawn for ``labels``, on average (:func:`outcomes`):
    ``bayes_accuracy`` (%), ``guide_accuracy`` and ``gap`` (%, guide - Bayes, with ``guide``), ``log_density``,
    ``off_support``, ``mode_coverage`` (:func:`mode_coverage`), ``spread`` (:func:`within_class_spread`),
    ``w2`` (mean over classes of the squared W2 distance between Gaussians on the support dimensions) and ``mmd``
    (mean over classes, against fresh draws of p(x | c))."""
    x = x.double().reshape(len(x), -1)
    labels = labels.long()
    each = outcomes(mixture, x, labels, guide)
    out = {"bayes_accuracy": 100.0 * float(each["bayes"].mean())}
    if guide is not None:
        out["guide_accuracy"] = 100.0 * float(each["guide"].mean())
        out["gap"] = out["guide_accuracy"] - out["bayes_accuracy"]
    out["log_density"] = float(each["log_density"].mean())
    out["off_support"] = float(each["off_support"].mean())
    out["mode_coverage"] = mode_coverage(mixture, labels.numpy(), each["component"], min_share)
    out["spread"] = within_class_spread(mixture, x, labels)
    w2s, mmds = [], []
    generator = torch.Generator().manual_seed(0)
    support = mixture.support
    bandwidth = 2 * float(mixture.variances[:, support].sqrt().mean())
    for c in labels.unique().tolist():
        mine = labels == c
        mean, cov = mixture.class_moments(c)
        w2s.append(gaussian_w2(x[mine][:, support], mean[support], cov[support][:, support]))
        reference, _ = mixture.sample(torch.full((int(mine.sum()),), c), generator)
        mmds.append(mmd(x[mine][:, support], reference[:, support], bandwidth))
    out.update(w2=float(np.mean(w2s)), mmd=float(np.mean(mmds)))
    return out
