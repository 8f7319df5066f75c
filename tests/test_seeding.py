import pytest
import torch

from guided_diffusion.sampling.seeding import SampleNoise, parse_classes, sample_labels, sample_seed


def test_a_samples_noise_depends_only_on_seed_and_index():
    whole = SampleNoise(7, range(0, 4), (3, 2, 2), torch.device("cpu"))
    split = SampleNoise(7, range(2, 4), (3, 2, 2), torch.device("cpu"))
    x_whole, x_split = whole.initial(), split.initial()
    assert torch.equal(x_whole[2:], x_split)
    for _ in range(3):
        assert torch.equal(whole(x_whole)[2:], split(x_split))
    other_seed = SampleNoise(8, range(2, 4), (3, 2, 2), torch.device("cpu")).initial()
    assert not torch.equal(other_seed, x_split)
    assert not torch.equal(x_whole[0], x_whole[1])


def test_streams_and_indices_give_distinct_seeds():
    seeds = {sample_seed(0, i, s) for i in range(100) for s in (0, 1)} | {sample_seed(1, 0, 0)}
    assert len(seeds) == 201 and all(0 <= s < 2**63 for s in seeds)


def test_labels():
    random = sample_labels("random", 3, range(10), 1000)
    assert torch.equal(random[4:], sample_labels("random", 3, range(4, 10), 1000))
    assert not torch.equal(random, sample_labels("random", 4, range(10), 1000))
    assert sample_labels("balanced", 3, range(8, 13), 5).tolist() == [3, 4, 0, 1, 2]
    assert sample_labels([7, 2], 3, range(5), 10).tolist() == [7, 2, 7, 2, 7]
    counts = torch.bincount(sample_labels("random", 0, range(5000), 5), minlength=5)
    assert counts.min() > 900


def test_class_choice_is_checked():
    assert parse_classes("3, 7", 10) == [3, 7]
    assert parse_classes("balanced", 10) == "balanced"
    with pytest.raises(ValueError, match=r"in \[0, 10\).*\[12\]"):
        parse_classes("3,12", 10)
    with pytest.raises(ValueError, match="'random', 'balanced'"):
        parse_classes("dogs", 10)
