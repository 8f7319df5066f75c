"""Fashion-MNIST's data layer: the idx reader and its errors, checksums, scripts/prepare_fashion.py and the shipped
held-out subset; all on synthetic idx files or the shipped subset, except one test that needs the real files."""

import gzip
import hashlib
import runpy
import sys

import numpy as np
import pytest
from PIL import Image

from guided_diffusion.image_datasets import load_labelled_images
from guided_diffusion.sampling.shards import read_npz
from guided_diffusion.testbeds import fashion

from launch import ROOT

SCRIPT = ROOT / "scripts" / "prepare_fashion.py"
HOW_TO_GET = ("apt-get install dataset-fashion-mnist", "https://github.com/zalandoresearch/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_source(folder, sizes=None, gz=True) -> dict:
    """Tiny idx files under the real names: ``{split: (images, labels)}``, labels cycling through the classes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (sizes or {"train": 20, "test": 10}).items():
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for stem, array in zip(fashion.FILES[split], (images, labels), strict=True):
            data = idx_bytes(array)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data, mtime=0))
            else:
                (folder / stem).write_bytes(data)
        arrays[split] = (images, labels.astype(np.int64))
    return arrays


def run_script(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def script_error(monkeypatch, *args: str) -> str:
    """The script's exit message: one ``error:`` line and the usage hint, as ``run_main`` prints them."""
    with pytest.raises(SystemExit) as exit_:
        run_script(monkeypatch, *args)
    message = exit_.value.code
    assert isinstance(message, str) and message.startswith("error: "), message
    error, hint = message.split("\n")
    assert hint == "usage: prepare_fashion.py (--help for all options)", message
    return error


def assert_clear(message: str, *fragments: str) -> None:
    assert "\n" not in message
    for fragment in (*fragments, *HOW_TO_GET):
        assert fragment in message, (fragment, message)


# ------------------------------------------------------------------------------------------- the shipped subset


def test_shipped_subset_is_balanced_grey_and_matches_its_manifest():
    images, labels, indices = fashion.load_subset()
    manifest = fashion.subset_manifest()
    per_class = manifest["selection"]["per_class"]
    assert per_class == fashion.SUBSET_PER_CLASS and manifest["selection"]["seed"] == fashion.SUBSET_SEED
    count = 10 * per_class
    assert images.shape == (count, 28, 28, 3) and images.dtype == np.uint8 and manifest["count"] == count
    assert labels.dtype == np.int64 and (np.bincount(labels, minlength=10) == per_class).all()
    assert (images[..., 0] == images[..., 1]).all() and (images[..., 1] == images[..., 2]).all()
    assert images.std() > 50  # real pictures, not a blank
    assert indices.dtype == np.int64 and (np.diff(indices) > 0).all() and 0 <= indices[0] and indices[-1] < 10_000
    grey = {"images": np.ascontiguousarray(images[..., 0]), "labels": labels, "indices": indices}
    assert {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in grey.items()} == manifest["arrays_sha256"]
    shipped = fashion.DATA_DIR / "fashion_subset.npz"
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == manifest["file_sha256"]
    assert shipped.stat().st_size == manifest["file_bytes"] < 2_000_000
    source = manifest["source"]
    assert source["split"] == "test" and source["published"]
    assert source["files_sha256"] == {stem: fashion.SHA256[stem] for stem in fashion.FILES["test"]}
    assert manifest["class_names"] == list(fashion.CLASS_NAMES)
    assert (fashion.DATA_DIR / "fashion_mnist_LICENSE.txt").read_text().count("Zalando SE") == 1


def test_subset_selection_is_stratified_and_fixed():
    labels = np.arange(100) % 10
    first = fashion.subset_indices(labels, 3, seed=0)
    assert np.array_equal(first, fashion.subset_indices(labels, 3, seed=0))
    assert not np.array_equal(first, fashion.subset_indices(labels, 3, seed=1))
    assert (np.bincount(labels[first], minlength=10) == 3).all() and (np.diff(first) > 0).all()
    with pytest.raises(ValueError, match=r"class 0 \(T-shirt/top\) has 10 images, fewer than 11"):
        fashion.subset_indices(labels, 11)


# ------------------------------------------------------------------------------------- the idx files and errors


def test_idx_reader_reads_images_and_labels(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256
    assert np.array_equal(fashion.read_idx(idx_bytes(images)), images)
    assert np.array_equal(fashion.read_idx(idx_bytes(np.array([3, 9]))), [3, 9])
    for gz in (True, False):  # gzipped, as published, or already decompressed
        arrays = write_source(tmp_path / f"gz{gz}", gz=gz)
        grey, labels, digests = fashion.read_split(tmp_path / f"gz{gz}", "train", verify=False)
        assert np.array_equal(grey, arrays["train"][0]) and labels.dtype == np.int64
        assert np.array_equal(labels, arrays["train"][1])
        stem = fashion.FILES["train"][0]
        assert digests[stem] == hashlib.sha256(idx_bytes(arrays["train"][0])).hexdigest()
    loaded = fashion.load_fashion(tmp_path / "gzTrue", verify=False)
    assert loaded["train"][0].shape == (20, 28, 28, 3) and loaded["test"][0].shape == (10, 28, 28, 3)
    assert (loaded["test"][0][..., 0] == loaded["test"][0][..., 2]).all()


def test_idx_errors_are_one_clear_message(tmp_path):
    labels = idx_bytes(np.array([1, 2, 3]))
    with pytest.raises(fashion.FashionDataError) as err:
        fashion.read_idx(b"\x00\x00\x08\x02" + labels[4:], "labels.idx")
    assert_clear(str(err.value), "labels.idx", "magic number 0x00000802")
    with pytest.raises(fashion.FashionDataError) as err:
        fashion.read_idx(labels[:-1], "labels.idx")
    assert_clear(str(err.value), "labels.idx is truncated: 10 bytes, its header (3,) says 11")
    with pytest.raises(fashion.FashionDataError, match="shorter than an idx header"):
        fashion.read_idx(b"\x00", "x")

    write_source(tmp_path / "cut")
    stem = fashion.FILES["train"][0]
    data = (tmp_path / "cut" / f"{stem}.gz").read_bytes()
    (tmp_path / "cut" / f"{stem}.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(fashion.FashionDataError) as err:
        fashion.read_split(tmp_path / "cut", "train", verify=False)
    assert_clear(str(err.value), f"{stem}.gz is damaged: not a readable gzip file")

    write_source(tmp_path / "bad_label")
    stem = fashion.FILES["test"][1]
    (tmp_path / "bad_label" / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(np.arange(10) + 3)))
    with pytest.raises(fashion.FashionDataError) as err:
        fashion.read_split(tmp_path / "bad_label", "test", verify=False)
    assert_clear(str(err.value), stem, "label 12 outside 0..9")

    write_source(tmp_path / "short")
    (tmp_path / "short" / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(np.arange(9))))
    with pytest.raises(fashion.FashionDataError, match=r"\(9,\) labels for 10 images"):
        fashion.read_split(tmp_path / "short", "test", verify=False)


def test_checksums_are_verified_by_default(tmp_path, monkeypatch):
    arrays = write_source(tmp_path / "src")
    stem = fashion.FILES["test"][0]
    with pytest.raises(fashion.FashionDataError) as err:
        fashion.read_split(tmp_path / "src", "test")
    digest = hashlib.sha256(idx_bytes(arrays["test"][0])).hexdigest()
    assert_clear(str(err.value), f"{stem}.gz is damaged or not Fashion-MNIST's",
                 f"decompressed bytes is {digest}, expected {fashion.SHA256[stem]}")
    # the files whose checksums are known pass, gzipped or not: the checksums are of the decompressed bytes
    known = {s: hashlib.sha256(idx_bytes(a)).hexdigest()
             for s, a in zip(fashion.FILES["test"], arrays["test"], strict=True)}
    monkeypatch.setattr(fashion, "SHA256", {**fashion.SHA256, **known})
    write_source(tmp_path / "plain", gz=False)
    for folder in ("src", "plain"):
        assert np.array_equal(fashion.read_split(tmp_path / folder, "test")[1], arrays["test"][1])


def test_missing_data_names_the_file_and_where_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(fashion.FashionDataError) as err:
        fashion.read_split(tmp_path / "nowhere", "train")
    assert_clear(str(err.value), f"Fashion-MNIST folder not found: {tmp_path / 'nowhere'}")
    write_source(tmp_path / "src")
    (tmp_path / "src" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(fashion.FashionDataError) as err:
        fashion.load_fashion(tmp_path / "src", verify=False)
    assert_clear(str(err.value), f"t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte) not found in "
                                 f"{tmp_path / 'src'}")


def test_default_source_is_debian_unless_the_variable_is_set(monkeypatch, tmp_path):
    monkeypatch.delenv(fashion.SOURCE_ENV, raising=False)
    assert str(fashion.default_source()) == "/usr/share/datasets/fashion-mnist"
    monkeypatch.setenv(fashion.SOURCE_ENV, "")
    assert str(fashion.default_source()) == "/usr/share/datasets/fashion-mnist"
    arrays = write_source(tmp_path / "mine")
    monkeypatch.setenv(fashion.SOURCE_ENV, str(tmp_path / "mine"))
    assert fashion.default_source() == tmp_path / "mine"
    assert np.array_equal(fashion.read_split(None, "test", verify=False)[0], arrays["test"][0])


# ---------------------------------------------------------------------------------- scripts/prepare_fashion.py


def test_prepare_script_writes_the_training_formats(tmp_path, monkeypatch, capsys):
    arrays = write_source(tmp_path / "src")
    out, sub = tmp_path / "out", tmp_path / "sub"
    run_script(monkeypatch, "--source", str(tmp_path / "src"), "--out", str(out), "--no_verify",
               "--subset_dir", str(sub), "--subset_per_class", "1")
    printed = capsys.readouterr().out
    for split, (images, labels) in arrays.items():
        files = sorted((out / split).iterdir())
        assert [f.name for f in files] == sorted(f"{y}_{i:05d}.png" for i, y in enumerate(labels))
        first = np.asarray(Image.open(out / split / f"{labels[0]}_00000.png"))
        assert first.shape == (28, 28, 3) and np.array_equal(first[..., 1], images[0])
        npz = read_npz(out / f"{split}.npz")
        assert npz["arr_0"].dtype == np.uint8 and np.array_equal(npz["arr_0"], fashion.to_rgb(images))
        assert npz["arr_1"].dtype == np.int64 and np.array_equal(npz["arr_1"], labels)
        assert f"{out}/{split}.npz sha256 {hashlib.sha256((out / f'{split}.npz').read_bytes()).hexdigest()}" in printed
    # what the training scripts read: the class from the file name, the same images from the folder and the npz
    for data in (str(out / "test"), str(out / "test.npz")):
        images, labels = load_labelled_images(data, 28)
        assert images.shape == (10, 3, 28, 28) and np.array_equal(labels.numpy(), arrays["test"][1])
    subset, labels, indices = fashion.load_subset(sub)
    assert np.array_equal(indices, fashion.subset_indices(arrays["test"][1], 1)) and len(subset) == 10
    manifest = fashion.subset_manifest(sub)
    assert manifest["count"] == 10 and not manifest["source"]["published"]
    assert f"{sub}/fashion_subset.npz: 10 test images" in printed


def test_prepare_script_checks_by_default_and_reports_one_error_line(tmp_path, monkeypatch):
    write_source(tmp_path / "src")
    message = script_error(monkeypatch, "--source", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert_clear(message, "train-images-idx3-ubyte.gz is damaged or not Fashion-MNIST's")
    message = script_error(monkeypatch, "--source", str(tmp_path / "none"), "--out", str(tmp_path / "out"))
    assert_clear(message, "error: Fashion-MNIST folder not found")
    monkeypatch.setenv(fashion.SOURCE_ENV, str(tmp_path / "env"))
    assert_clear(script_error(monkeypatch, "--out", str(tmp_path / "out")), str(tmp_path / "env"))


# ------------------------------------------------------------------------------- the real files, where installed


@pytest.mark.skipif(not all((fashion.default_source() / f"{stem}.gz").is_file() or
                            (fashion.default_source() / stem).is_file() for stem in fashion.SHA256),
                    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_installed_files_are_the_published_ones_and_rebuild_the_shipped_subset():
    for split, count in fashion.SPLITS.items():
        images, labels, digests = fashion.read_split(None, split)  # verifies the checksums
        assert images.shape == (count, 28, 28) and (np.bincount(labels) == count // 10).all()
        assert digests == {stem: fashion.SHA256[stem] for stem in fashion.FILES[split]}
    shipped, shipped_labels, shipped_indices = fashion.load_subset()
    index = fashion.subset_indices(labels)
    assert np.array_equal(index, shipped_indices) and np.array_equal(labels[index], shipped_labels)
    assert np.array_equal(fashion.to_rgb(images[index]), shipped)
