import numpy as np
import pytest
import torch

from guided_diffusion.progressive.information_degree import (
    InformationDegree,
    check_gamma,
    check_relevance,
    gamma_per_step,
    uniform_relevance,
)

from tiny import random_relevance


def eq5_step(s: torch.Tensor, labels: torch.Tensor, gamma: float) -> torch.Tensor:
    """Eq. 5 taken literally: Delta s_c = -gamma (1 - s_c), the others give it up in proportion to their shares."""
    out = s.clone()
    for b, c in enumerate(labels.tolist()):
        delta_c = -gamma * (1 - s[b, c])
        others = [i for i in range(s.shape[1]) if i != c]
        rest = s[b, others].sum()
        out[b, c] = s[b, c] - delta_c
        out[b, others] = s[b, others] + delta_c * s[b, others] / rest
    return out


@pytest.mark.parametrize("gamma", [0.0, 0.04, 0.3, 0.9])
def test_closed_form_matches_eq5_applied_step_by_step(gamma):
    relevance = random_relevance(6)
    labels = torch.tensor([0, 3, 5, 3])
    degree = InformationDegree.from_relevance(relevance, labels, gamma)
    s = s_T = torch.as_tensor(relevance, dtype=torch.float64)[labels]
    off_target = ~torch.nn.functional.one_hot(labels, 6).bool()
    for k in range(60):
        s_k = degree.at(k).double()
        torch.testing.assert_close(s_k, s, atol=1e-6, rtol=0)
        torch.testing.assert_close(s_k.sum(dim=1), torch.ones(4, dtype=torch.float64), atol=1e-6, rtol=0)
        assert (s_k.argmax(dim=1) == labels).all()
        if degree.weight(k) > 1e-30:  # every off-target share shrinks by the same factor: ratios are kept
            torch.testing.assert_close(s_k[off_target] / s_T[off_target],
                                       torch.full((20,), degree.weight(k), dtype=torch.float64), rtol=1e-5, atol=0)
        s = eq5_step(s, labels, gamma)


def test_step_zero_is_s_T_and_gamma_one_is_one_hot_from_the_second_step():
    relevance = random_relevance(5, seed=1)
    labels = torch.tensor([4, 0, 2])
    degree = InformationDegree.from_relevance(relevance, labels, 1.0)
    s_T = torch.as_tensor(relevance, dtype=torch.float32)[labels]
    assert torch.equal(degree.at(0), s_T)
    one_hot = torch.nn.functional.one_hot(labels, 5).float()
    for k in (1, 2, 249):
        assert torch.equal(degree.at(k), one_hot)
    no_schedule = InformationDegree.from_relevance(relevance, labels, 0.0)
    assert all(torch.equal(no_schedule.at(k), s_T) for k in (0, 1, 100))


def test_one_hot_s_T_stays_exactly_one_hot():
    labels = torch.tensor([1, 0])
    degree = InformationDegree.from_relevance(np.eye(3), labels, 0.04)
    assert all(torch.equal(degree.at(k), torch.eye(3)[labels]) for k in (0, 1, 7))


def test_weight_is_the_remaining_off_target_fraction():
    degree = InformationDegree.from_relevance(uniform_relevance(4, 0.4), torch.tensor([2]), 0.04)
    assert degree.weight(0) == 1.0
    assert degree.weight(25) == pytest.approx(0.96**25)
    off_target = 1 - degree.at(25)[0, 2].item()
    assert off_target == pytest.approx(0.4 * 0.96**25, rel=1e-5)
    with pytest.raises(ValueError, match="from 0"):
        degree.at(-1)


@pytest.mark.parametrize("gamma", [-0.01, 1.01, float("nan")])
def test_gamma_outside_unit_interval_is_an_error(gamma):
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        check_gamma(gamma)
    with pytest.raises(ValueError, match="gamma"):
        InformationDegree.from_relevance(np.eye(2), torch.tensor([0]), gamma)


def test_gamma_for_a_reference_step_count():
    assert gamma_per_step(0.04, 25) == 0.04  # per actual step by default
    converted = gamma_per_step(0.04, 25, reference_steps=250)
    assert (1 - converted) ** 25 == pytest.approx(0.96**250)
    assert gamma_per_step(0.04, 250, reference_steps=250) == pytest.approx(0.04)
    assert gamma_per_step(1.0, 25, 250) == 1.0 and gamma_per_step(0.0, 25, 250) == 0.0
    with pytest.raises(ValueError, match="positive"):
        gamma_per_step(0.04, 0, 250)


def test_uniform_label_smoothing():
    matrix = uniform_relevance(5, 0.2)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert matrix[0, 0] == pytest.approx(0.8) and matrix[0, 1] == pytest.approx(0.05)
    check_relevance(matrix)
    with pytest.raises(ValueError, match="largest share"):
        uniform_relevance(5, 0.8)


def test_relevance_checks_say_what_is_wrong():
    good = random_relevance(4)
    assert check_relevance(good, 4).dtype == np.float64
    with pytest.raises(ValueError, match="for 4 classes but the classifier has 10"):
        check_relevance(good, 10)
    with pytest.raises(ValueError, match="classes x classes"):
        check_relevance(good[:3])
    with pytest.raises(ValueError, match="row 2 sums to"):
        bad = good.copy()
        bad[2] *= 1.5
        check_relevance(bad)
    with pytest.raises(ValueError, match=r"diagonal entry must be its largest.*\[1\]"):
        bad = good.copy()
        bad[1] = good[1][[1, 0, 2, 3]]  # the diagonal's mass moves to column 0
        check_relevance(bad)
    with pytest.raises(ValueError, match="non-negative"):
        bad = good.copy()
        bad[0, 1] = -0.1
        check_relevance(bad)


def test_s_T_rows_must_favour_their_label():
    with pytest.raises(ValueError, match="largest entry is its label's"):
        InformationDegree(torch.tensor([[0.5, 0.5, 0.0]]), torch.tensor([0]), 0.1)
    with pytest.raises(ValueError, match="relevance matrix's classes"):
        InformationDegree.from_relevance(np.eye(3), torch.tensor([3]), 0.1)
