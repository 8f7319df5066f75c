"""Metric arithmetic against the ADM evaluator's golden values and closed forms."""

from pathlib import Path

import numpy as np
import pytest
import torch

from guided_diffusion import metrics

GOLDEN = Path(__file__).parent / "fixtures" / "golden_metrics.npz"


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as f:
        return {k: f[k] for k in f.files}


def test_golden_fid(golden):
    fid = metrics.frechet_distance(
        *metrics.feature_statistics(golden["sample_features"]),
        *metrics.feature_statistics(golden["ref_features"]),
    )
    assert fid == pytest.approx(float(golden["fid"]), abs=1e-4)


def test_golden_inception_score(golden):
    score = metrics.inception_score(golden["softmax"], int(golden["is_split_size"]))
    assert score == pytest.approx(float(golden["inception_score"]), abs=1e-4)


def test_golden_precision_recall_and_radii(golden):
    ref, sample, k = golden["ref_features"], golden["sample_features"], int(golden["nhood_size"])
    precision, recall = metrics.precision_recall(ref, sample, k)
    assert precision == pytest.approx(float(golden["precision"]), abs=1e-4)
    assert recall == pytest.approx(float(golden["recall"]), abs=1e-4)
    np.testing.assert_allclose(metrics.manifold_radii(ref, k).numpy(), golden["ref_radii"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(metrics.manifold_radii(sample, k).numpy(), golden["sample_radii"], rtol=0, atol=1e-4)


def test_golden_precision_recall_small_blocks(golden):
    """Row blocks of 7 rows (block boundaries everywhere) give the same numbers."""
    result = metrics.precision_recall(golden["ref_features"], golden["sample_features"], 3, block_elements=7 * 600)
    assert result == pytest.approx((float(golden["precision"]), float(golden["recall"])), abs=1e-12)


def test_fid_identical_sets_is_zero():
    x = np.random.RandomState(0).standard_normal((500, 16))
    stats = metrics.feature_statistics(x)
    assert metrics.frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_known_gaussians():
    rng = np.random.RandomState(1)
    a = rng.standard_normal((6, 6))
    sigma1 = a @ a.T + np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    # sigma2 = I: FID = |mu1 - mu2|^2 + tr(S1) + 6 - 2 tr(S1^(1/2)); sqrt via eigenvalues.
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + 6 - 2 * np.sum(np.sqrt(np.linalg.eigvalsh(sigma1)))
    assert metrics.frechet_distance(mu1, sigma1, mu2, np.eye(6)) == pytest.approx(expected, rel=1e-9)
    # Diagonal covariances: sum of (s1 + s2 - 2 sqrt(s1 s2)).
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    fid = metrics.frechet_distance(np.zeros(3), np.diag(s1), np.ones(3), np.diag(s2))
    assert fid == pytest.approx(3 + 1 + 1 + 0, rel=1e-9)


def test_fid_of_sampled_gaussians_matches_closed_form():
    rng = np.random.RandomState(2)
    x = rng.standard_normal((20000, 4)) * 2.0 + 1.0  # N(1, 4 I)
    y = rng.standard_normal((20000, 4))  # N(0, I)
    fid = metrics.frechet_distance(*metrics.feature_statistics(x), *metrics.feature_statistics(y))
    assert fid == pytest.approx(4 * 1 + 4 * (4 + 1 - 2 * 2), rel=0.05)


def test_fid_singular_covariance_is_finite():
    x = np.random.RandomState(3).standard_normal((3, 8))  # rank-2 covariance in 8-d
    stats = metrics.feature_statistics(x)
    assert np.isfinite(metrics.frechet_distance(*stats, *stats))


def test_fid_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.feature_statistics(np.zeros((1, 3)))


def test_inception_score_closed_forms():
    assert metrics.inception_score(np.full((10, 4), 0.25)) == pytest.approx(1.0)
    one_hot = np.eye(8)[np.arange(40) % 8] * (1 - 8e-12) + 1e-12
    assert metrics.inception_score(one_hot) == pytest.approx(8.0, rel=1e-6)
    # Rows sorted by class, splits of 5 rows: one class per split, IS = 1.
    assert metrics.inception_score(one_hot[np.argsort(np.arange(40) % 8, kind="stable")], 5) == pytest.approx(
        1.0, rel=1e-6
    )
    # Splits of 4 rows, each covering 4 classes: IS = 4.
    assert metrics.inception_score(np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]] * (1 - 4e-12) + 1e-12, 4) == pytest.approx(
        4.0, rel=1e-6
    )


def test_precision_recall_identical_and_far_apart():
    x = np.random.RandomState(4).standard_normal((300, 10)).astype(np.float32)
    assert metrics.precision_recall(x, x) == (1.0, 1.0)
    assert metrics.precision_recall(x, x + 100.0) == (0.0, 0.0)


def _naive_precision_recall(ref, sample, k):
    def radii(x):
        d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        return np.sort(d, axis=1)[:, k]

    d = ((ref[:, None, :] - sample[None, :, :]) ** 2).sum(-1)
    r_ref, r_sample = radii(ref), radii(sample)
    return (d <= r_ref[:, None]).any(0).mean(), (d <= r_sample[None, :]).any(1).mean()


def test_precision_recall_matches_naive_definition():
    rng = np.random.RandomState(5)
    ref = rng.standard_normal((200, 5))
    sample = rng.standard_normal((150, 5)) * 1.5 + 0.5
    expected = _naive_precision_recall(ref, sample, 3)
    assert metrics.precision_recall(ref, sample, 3, block_elements=1000) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected[0] < 1.0 and 0.0 < expected[1] < 1.0


def test_manifold_radii_needs_enough_points():
    with pytest.raises(ValueError, match="nhood_size"):
        metrics.manifold_radii(np.zeros((3, 2)), 3)


def test_density_coverage_matches_definition():
    rng = np.random.RandomState(6)
    ref = rng.standard_normal((120, 4))
    sample = rng.standard_normal((90, 4)) + 0.7
    k = 5
    d_ref = ((ref[:, None] - ref[None]) ** 2).sum(-1)
    radii = np.sort(d_ref, axis=1)[:, k]
    d = ((ref[:, None] - sample[None]) ** 2).sum(-1)
    density = (d < radii[:, None]).sum(0).mean() / k
    coverage = (d.min(1) < radii).mean()
    result = metrics.density_coverage(ref, sample, k, block_elements=500)
    assert result == pytest.approx((density, coverage), abs=1e-9)
    x = ref.astype(np.float32)
    assert metrics.density_coverage(x, x + 100.0) == (0.0, 0.0)


def test_per_class_recall_sees_swapped_classes():
    """Labels swapped between two clusters: global recall is high, per-class recall is 0."""
    rng = np.random.RandomState(7)
    a, b = rng.standard_normal((50, 3)), rng.standard_normal((50, 3)) + 20
    ref, ref_labels = np.concatenate([a, b]), np.repeat([0, 1], 50)
    sample = np.concatenate([b + 0.01, a + 0.01])
    assert metrics.precision_recall(ref, sample)[1] == pytest.approx(1.0)
    assert metrics.per_class_recall(ref, ref_labels, sample, ref_labels) == 0.0
    assert metrics.per_class_recall(ref, ref_labels, sample[::-1].copy(), ref_labels) > 0.9


def test_per_class_recall_is_mean_of_class_recalls():
    rng = np.random.RandomState(8)
    ref, sample = rng.standard_normal((80, 3)), rng.standard_normal((60, 3)) * 0.5
    ref_labels, sample_labels = rng.randint(0, 3, 80), rng.randint(0, 3, 60)
    expected = np.mean(
        [metrics.precision_recall(ref[ref_labels == c], sample[sample_labels == c])[1] for c in range(3)]
    )
    assert metrics.per_class_recall(ref, ref_labels, sample, sample_labels) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no class"):
        metrics.per_class_recall(ref[:4], np.arange(4), sample[:4], np.arange(4))


def test_precision_recall_accepts_tensors():
    x = torch.randn(50, 6)
    assert metrics.precision_recall(x, x.clone()) == (1.0, 1.0)


def test_precision_recall_counts_points_on_the_radius():
    """A sample exactly at a reference's radius is inside (``<=``, as in the reference)."""
    ref = np.array([[0.0], [1.0], [2.0], [3.0]])  # radii (squared): 9, 4, 4, 9
    sample = np.array([[-3.0], [6.0], [100.0], [200.0]])  # -3 and 6 lie on the radii of 0 and 3
    assert metrics.precision_recall(ref, sample)[0] == 0.5


def test_channel_gap_is_zero_for_grey_and_the_mean_pairwise_difference_otherwise():
    images = np.zeros((3, 2, 2, 3), dtype=np.uint8)
    images[0] = 77  # grey
    images[1, ..., 0] = 30  # R 30, G 0, B 0: (30 + 0 + 30) / 3 = 20
    images[2, 0, 0] = (255, 0, 0)  # one pixel of four: (255 + 0 + 255) / 3 / 4
    gap = metrics.channel_gap(images)
    np.testing.assert_allclose(gap, [0.0, 20.0, 510 / 3 / 4])


def test_radii_computed_once_give_the_same_scores():
    rng = np.random.default_rng(7)
    ref, sample = rng.normal(size=(300, 5)).astype(np.float32), rng.normal(size=(120, 5)).astype(np.float32) + 0.2
    assert metrics.precision_recall(ref, sample, 3, ref_radii=metrics.manifold_radii(ref, 3)) == \
        metrics.precision_recall(ref, sample, 3)
    assert metrics.density_coverage(ref, sample, ref_radii=metrics.manifold_radii(ref, 5)) == \
        metrics.density_coverage(ref, sample)
    assert metrics.precision_recall(ref, sample, 3, ref_radii=metrics.manifold_radii(ref, 8)) != \
        metrics.precision_recall(ref, sample, 3)  # the radii given are the ones used
