import hashlib

import numpy as np
import pytest

from guided_diffusion.sampling.shards import read_npz
from guided_diffusion.testbeds.digits import load_digits_split, upsample, write_digits


def test_split_is_stratified_and_fixed():
    split = load_digits_split()
    (train_x, train_y), (test_x, test_y) = split["train"], split["test"]
    assert train_x.shape == (1497, 16, 16, 3) and test_x.shape == (300, 16, 16, 3)
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int64
    assert (np.bincount(test_y, minlength=10) >= 29).all() and (np.bincount(test_y) <= 31).all()
    assert (train_x[..., 0] == train_x[..., 2]).all()  # grey
    again = load_digits_split()
    assert np.array_equal(again["test"][0], test_x) and np.array_equal(again["train"][1], train_y)
    other = load_digits_split(seed=1)
    assert not np.array_equal(other["test"][1], test_y)
    rows = {r.tobytes() for r in train_x} & {r.tobytes() for r in test_x}
    assert len(rows) <= 2  # the split does not share images (the raw set has a handful of duplicates)


def test_upsampling_keeps_the_strokes():
    image = np.zeros((8, 8))
    image[:, 3:5] = 16
    big = upsample(image, 16)
    assert big.shape == (16, 16, 3) and big[:, 6:10, 0].mean() > 200 and big[:, :3, 0].max() < 30
    assert np.array_equal(upsample(image, 8)[..., 0], np.round(image * 255 / 16).astype(np.uint8))


def test_written_data_is_deterministic(tmp_path):
    first = write_digits(tmp_path / "a")
    second = write_digits(tmp_path / "b")
    assert first == second
    for split, count in (("train", 1497), ("test", 300)):
        files = sorted((tmp_path / "a" / split).iterdir())
        assert len(files) == count and files[0].name.split("_")[0].isdigit()
        digest = hashlib.sha256((tmp_path / "a" / f"{split}.npz").read_bytes()).hexdigest()
        assert digest == first[split]
        npz = read_npz(tmp_path / "a" / f"{split}.npz")
        assert npz["arr_0"].shape == (count, 16, 16, 3) and npz["arr_1"].shape == (count,)


@pytest.mark.parametrize("size", [8, 32])
def test_other_sizes(size):
    assert load_digits_split(image_size=size, held_out=100)["test"][0].shape == (100, size, size, 3)
