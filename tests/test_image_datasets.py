import multiprocessing
import os
import signal
import time

import numpy as np
import pytest
import torch
from PIL import Image

from guided_diffusion.image_datasets import (
    ImageDataset,
    center_crop_arr,
    class_labels_from_filenames,
    load_data,
    load_superres_data,
    random_crop_arr,
)


def test_folder_batches_have_shape_range_and_prefix_labels(image_folder):
    (image_folder / "notes.txt").write_text("not an image")
    sub = image_folder / "more"
    sub.mkdir()
    Image.fromarray(np.full((9, 9, 3), 128, np.uint8)).save(sub / "a_000.jpg")

    data = load_data(data_dir=str(image_folder), batch_size=9, image_size=8, class_cond=True, deterministic=True)
    images, extra = next(data)
    assert images.shape == (9, 3, 8, 8) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    # Sorted prefixes: "a" -> 0, "c0" -> 1, "c1" -> 2; files sorted with subfolder contents in place.
    assert extra["y"].dtype == torch.int64
    assert extra["y"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 0]
    # class 0 images are dark, class 1 bright, the jpg mid-grey
    means = images.mean(dim=(1, 2, 3))
    assert (means[:4] < -0.3).all() and (means[4:8] > 0.3).all() and means[8].abs() < 0.05


def test_unconditional_batches_have_no_labels_and_loop_forever(image_folder):
    data = load_data(data_dir=str(image_folder), batch_size=3, image_size=8)
    batches = [next(data) for _ in range(5)]  # 8 images, 2 full batches per epoch
    assert all(extra == {} for _, extra in batches)
    assert all(images.shape == (3, 3, 8, 8) for images, _ in batches)


def test_a_stop_signal_to_the_process_group_leaves_the_loader_worker_running(image_folder):
    data = load_data(data_dir=str(image_folder), batch_size=2, image_size=8)  # 4 batches per epoch
    next(data)
    workers = multiprocessing.active_children()
    assert workers
    for worker in workers:
        os.kill(worker.pid, signal.SIGTERM)  # as a scheduler signals every process; the trainer saves, then stops
    time.sleep(0.2)
    assert all(w.is_alive() for w in workers)
    assert [next(data)[0].shape for _ in range(3)] == [(2, 3, 8, 8)] * 3


def test_class_labels_from_filenames():
    paths = ["/d/dog_1.png", "/d/cat_2.png", "/d/x/dog_3_b.png", "/d/ant.png"]
    assert class_labels_from_filenames(paths) == [2, 1, 2, 0]


def test_center_crop_keeps_exact_size_images_and_takes_the_middle():
    arr = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(center_crop_arr(Image.fromarray(arr), 8), arr)

    # 48 wide x 16 high: thirds red | green | blue. BOX-halve to 24x8, crop the middle 8 columns.
    wide = np.zeros((16, 48, 3), np.uint8)
    wide[:, :16, 0] = wide[:, 16:32, 1] = wide[:, 32:, 2] = 255
    out = center_crop_arr(Image.fromarray(wide), 8)
    assert out.shape == (8, 8, 3)
    assert (out[..., 1] == 255).all() and (out[..., 0] == 0).all() and (out[..., 2] == 0).all()


def test_center_crop_resizes_the_smaller_side_with_bicubic():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (10, 13, 3), dtype=np.uint8))
    expected = np.array(img.resize((10, 8), resample=Image.BICUBIC))[:, 1:9]  # 13 * 0.8 = 10.4 -> 10
    assert np.array_equal(center_crop_arr(img, 8), expected)


def test_random_crop_shape_and_content():
    arr = np.full((20, 30, 3), 77, np.uint8)
    out = random_crop_arr(Image.fromarray(arr), 8)
    assert out.shape == (8, 8, 3) and (out == 77).all()


def test_sharding_takes_every_nth_image():
    paths = [f"p{i}.png" for i in range(7)]
    ds = ImageDataset(8, paths, classes=list(range(7)), shard=1, num_shards=3)
    assert ds.local_images == ["p1.png", "p4.png"] and ds.local_classes == [1, 4]
    assert len(ds) == 2


def test_npz_source_reads_images_and_labels_in_order(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    labels = np.array([5, 4, 3, 2, 1, 0])
    np.savez(tmp_path / "samples_6x8x8x3.npz", images, labels)
    data = load_data(
        data_dir=str(tmp_path / "samples_6x8x8x3.npz"),
        batch_size=4,
        image_size=8,
        class_cond=True,
        deterministic=True,
        random_flip=False,
    )
    batch, extra = next(data)
    expected = torch.from_numpy(images[:4]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(batch, expected)
    assert extra["y"].tolist() == [5, 4, 3, 2]

    small = load_data(data_dir=str(tmp_path / "samples_6x8x8x3.npz"), batch_size=2, image_size=4)
    assert next(small)[0].shape == (2, 3, 4, 4)


def test_npz_without_labels_cannot_be_class_conditional(tmp_path):
    np.savez(tmp_path / "x.npz", np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="arr_1"):
        next(load_data(data_dir=str(tmp_path / "x.npz"), batch_size=1, image_size=8, class_cond=True))


def test_errors_for_missing_or_too_few_images(tmp_path, image_folder):
    with pytest.raises(ValueError, match="unspecified"):
        next(load_data(data_dir="", batch_size=1, image_size=8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no jpg"):
        next(load_data(data_dir=str(tmp_path / "empty"), batch_size=1, image_size=8))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        next(load_data(data_dir=str(image_folder), batch_size=9, image_size=8))


def test_superres_batches_carry_area_downsampled_low_res(image_folder):
    large, kwargs = next(load_superres_data(str(image_folder), 4, large_size=8, small_size=4, class_cond=True))
    assert large.shape == (4, 3, 8, 8) and kwargs["low_res"].shape == (4, 3, 4, 4)
    expected = large.reshape(4, 3, 4, 2, 4, 2).mean(dim=(3, 5))
    assert torch.allclose(kwargs["low_res"], expected, atol=1e-6)
    assert kwargs["y"].shape == (4,)

