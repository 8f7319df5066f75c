"""The evaluator CLI: npz streaming, sharded extraction, the five ADM result lines."""

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image
from torch import nn

from evaluations import evaluator
from guided_diffusion import dist_util, evaluation, metrics
from guided_diffusion.evaluation import feature_extractors as fe

REPO = Path(__file__).resolve().parents[1]
SCRIPT_ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's guided_diffusion


class PixelExtractor(fe.FeatureExtractor):
    """Tiny deterministic extractor: features are scaled pixel values."""

    def __init__(self):
        super().__init__(nn.Identity(), "cpu")

    def features(self, images):
        x = images.double().flatten(1) / 255
        return {"pool": x[:, :12], "spatial": x[:, 12:20], "softmax": torch.softmax(3 * x[:, :10], dim=1)}


fe.register_extractor("pixels", lambda arg, device, weights: PixelExtractor())


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The reference-feature cache of in-process runs in the test's folder, not the user's."""
    monkeypatch.setenv("GUIDED_DIFFUSION_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "reference_features"


def random_images(n, size=4, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, size, size, 3)).astype(np.uint8)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_images_streams_rows(tmp_path, save):
    images = random_images(10)
    save(tmp_path / "a.npz", arr_0=images, arr_1=np.arange(10))
    reader = evaluation.NpzImages(tmp_path / "a.npz")
    assert len(reader) == 10 and reader.shape == (10, 4, 4, 3)
    batches = list(reader.batches(4))
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), images)
    np.testing.assert_array_equal(np.concatenate(list(reader.batches(2, 3, 8))), images[3:8])


def test_npz_images_clear_errors(tmp_path):
    np.savez(tmp_path / "nokey.npz", images=random_images(2))
    with pytest.raises(ValueError, match="no array 'arr_0'.*images"):
        evaluation.NpzImages(tmp_path / "nokey.npz")
    np.savez(tmp_path / "float.npz", random_images(2).astype(np.float32))
    with pytest.raises(ValueError, match="uint8.*float32"):
        evaluation.NpzImages(tmp_path / "float.npz")
    np.savez(tmp_path / "nchw.npz", random_images(2).transpose(0, 3, 1, 2).copy())
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\].*\(2, 3, 4, 4\)"):
        evaluation.NpzImages(tmp_path / "nchw.npz")
    with pytest.raises(FileNotFoundError):
        evaluation.NpzImages(tmp_path / "missing.npz")


def test_shard_bounds_partition_rows():
    for n in (0, 1, 7, 10):
        for world in (1, 2, 3, 4):
            bounds = [evaluation.shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def _dist_worker(rank, world, port, paths, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # as torchrun sets them  # fmt: skip
    dist_util.setup_dist()
    try:
        assert (dist_util.get_rank(), dist_util.get_world_size()) == (rank, world)
        for i, path in enumerate(paths):
            result = evaluation.extract_npz(path, PixelExtractor(), batch_size=3)
            if rank == 0:
                np.savez(Path(out_dir) / f"{i}.npz", **result)
            else:
                assert result is None
    finally:
        dist.destroy_process_group()


def test_distributed_extraction_equals_single_process(tmp_path):
    paths = []
    for i, n in enumerate((11, 1)):  # uneven shards; one rank with an empty shard
        np.savez(tmp_path / f"in{i}.npz", random_images(n, seed=i))
        paths.append(str(tmp_path / f"in{i}.npz"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_dist_worker, args=(2, port, paths, str(tmp_path)), nprocs=2, join=True)
    for i, path in enumerate(paths):
        single = evaluation.extract_npz(path, PixelExtractor(), batch_size=4)
        with np.load(tmp_path / f"{i}.npz") as gathered:
            assert sorted(gathered.files) == sorted(single)
            for key in single:
                np.testing.assert_array_equal(gathered[key], single[key])


def test_cli_prints_five_lines_and_json(tmp_path, capsys):
    ref, sample = random_images(40, seed=1), random_images(30, seed=2)
    np.savez(tmp_path / "ref.npz", ref, np.arange(40) % 2)
    np.savez(tmp_path / "sample.npz", sample, np.arange(30) % 2)
    argv = [str(tmp_path / "ref.npz"), str(tmp_path / "sample.npz"), "--feature-extractor", "pixels",
            "--batch-size", "7", "--json", str(tmp_path / "out.json"), "--extra", "--split-size", "10"]  # fmt: skip
    result = evaluator.main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    names = ["Inception Score", "FID", "sFID", "Precision", "Recall", "Density", "Coverage", "Per-class recall"]
    assert [line.split(":")[0] for line in lines[-8:]] == names

    f_ref, f_sample = PixelExtractor().extract(ref), PixelExtractor().extract(sample)
    expected = {
        "inception_score": metrics.inception_score(f_sample["softmax"], 10),
        "fid": metrics.frechet_distance(
            *metrics.feature_statistics(f_sample["pool"]), *metrics.feature_statistics(f_ref["pool"])
        ),
        "sfid": metrics.frechet_distance(
            *metrics.feature_statistics(f_sample["spatial"]), *metrics.feature_statistics(f_ref["spatial"])
        ),
    }
    expected["precision"], expected["recall"] = metrics.precision_recall(f_ref["pool"], f_sample["pool"])
    expected["density"], expected["coverage"] = metrics.density_coverage(f_ref["pool"], f_sample["pool"])
    expected["per_class_recall"] = metrics.per_class_recall(
        f_ref["pool"], np.arange(40) % 2, f_sample["pool"], np.arange(30) % 2
    )
    assert result == pytest.approx(expected, rel=1e-9)
    assert expected["fid"] > 0 and expected["sfid"] > 0
    for line, key in zip(lines[-8:], expected, strict=True):
        assert float(line.split(":")[1]) == pytest.approx(expected[key], rel=1e-9)
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["num_ref"] == 40 and written["num_samples"] == 30
    assert {k: written[k] for k in expected} == pytest.approx(expected, rel=1e-12)


def test_fid_statistics_uses_stored_inception_stats(tmp_path):
    images = random_images(6)
    stored = {"mu": np.ones(12), "sigma": np.eye(12), "mu_s": np.zeros(8), "sigma_s": 2 * np.eye(8)}
    np.savez(tmp_path / "ref.npz", arr_0=images, **stored)
    features = PixelExtractor().extract(images)
    stats = evaluation.fid_statistics(tmp_path / "ref.npz", features, use_stored=True)
    np.testing.assert_array_equal(stats["pool"][0], stored["mu"])
    np.testing.assert_array_equal(stats["spatial"][1], stored["sigma_s"])
    fitted = evaluation.fid_statistics(tmp_path / "ref.npz", features, use_stored=False)
    np.testing.assert_allclose(fitted["pool"][0], features["pool"].mean(0))


def test_cli_rejects_too_few_images(tmp_path):
    np.savez(tmp_path / "ref.npz", random_images(10))
    np.savez(tmp_path / "sample.npz", random_images(3))
    with pytest.raises(ValueError, match="sample.npz: 3 images.*nhood_size=3"):
        evaluator.main([str(tmp_path / "ref.npz"), str(tmp_path / "sample.npz"), "--feature-extractor", "pixels"])


def test_script_end_to_end_with_classifier_extractor(tmp_path):
    """``python evaluations/evaluator.py`` with one of our classifier checkpoints as extractor.

    Needs guided_diffusion.script_util (create_classifier).
    """
    from test_feature_extractors import CLASSIFIER_FLAGS

    from guided_diffusion import script_util

    torch.manual_seed(0)
    model = script_util.create_classifier(**{**script_util.classifier_defaults(), **CLASSIFIER_FLAGS})
    torch.save(model.state_dict(), tmp_path / "clf.pt")
    (tmp_path / "clf.json").write_text(json.dumps({"flags": CLASSIFIER_FLAGS}))
    np.savez(tmp_path / "ref.npz", random_images(12, size=16, seed=3))
    np.savez(tmp_path / "sample.npz", random_images(10, size=16, seed=4))
    cmd = [sys.executable, "evaluations/evaluator.py", str(tmp_path / "ref.npz"), str(tmp_path / "sample.npz"),
           "--feature-extractor", f"classifier:{tmp_path / 'clf.pt'}", "--device", "cpu", "--no_cache"]  # fmt: skip
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=SCRIPT_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()[-5:]
    assert [line.split(":")[0] for line in lines] == ["Inception Score", "FID", "sFID", "Precision", "Recall"]
    values = [float(line.split(":")[1]) for line in lines]
    assert np.isfinite(values[2]) and values[2] >= 0  # sFID on the classifier's middle-block map
    assert 1.0 <= values[0] <= 5.0 and values[1] > 0 and 0 <= values[3] <= 1 and 0 <= values[4] <= 1


def test_script_reports_missing_inception_weights(tmp_path):
    np.savez(tmp_path / "ref.npz", random_images(6))
    cmd = [sys.executable, "evaluations/evaluator.py", str(tmp_path / "ref.npz"), str(tmp_path / "ref.npz"),
           "--inception-weights", str(tmp_path / "absent.pth")]  # fmt: skip
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=SCRIPT_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "absent.pth does not exist" in proc.stderr


def test_script_under_mpiexec_matches_single_process(tmp_path):
    """``mpiexec -n 2 python evaluations/evaluator.py``: sharded extraction, rank 0 reports the same numbers."""
    from test_feature_extractors import CLASSIFIER_FLAGS

    from guided_diffusion import script_util

    from launch import run_python

    torch.manual_seed(0)
    model = script_util.create_classifier(**{**script_util.classifier_defaults(), **CLASSIFIER_FLAGS})
    torch.save(model.state_dict(), tmp_path / "clf.pt")
    (tmp_path / "clf.json").write_text(json.dumps({"flags": CLASSIFIER_FLAGS}))
    np.savez(tmp_path / "ref.npz", random_images(13, size=16, seed=3), np.arange(13) % 2)
    np.savez(tmp_path / "sample.npz", random_images(11, size=16, seed=4), np.arange(11) % 2)
    results = {}
    for nproc in (1, 2):  # the second reads the reference features that the first cached
        out = tmp_path / f"result{nproc}.json"
        run_python(["evaluations/evaluator.py", str(tmp_path / "ref.npz"), str(tmp_path / "sample.npz"),
                    "--feature-extractor", f"classifier:{tmp_path / 'clf.pt'}", "--device", "cpu",
                    "--batch-size", "4", "--extra", "--json", str(out), "--cache_dir", str(tmp_path / "c")],
                   nproc=nproc)
        results[nproc] = json.loads(out.read_text())
    assert [results[n]["ref_features_cached"] for n in (1, 2)] == [False, True]
    for key in ("inception_score", "fid", "precision", "recall", "density", "coverage", "per_class_recall"):
        assert results[2][key] == pytest.approx(results[1][key], rel=1e-6, abs=1e-9), key


class CountingPixels(PixelExtractor):
    """PixelExtractor that counts the images it is given."""

    seen = 0

    def features(self, images):
        CountingPixels.seen += len(images)
        return super().features(images)


fe.register_extractor("counting", lambda arg, device, weights: CountingPixels())


def _batches(tmp_path):
    np.savez(tmp_path / "ref.npz", random_images(40, seed=1), np.arange(40) % 2)
    np.savez(tmp_path / "sample.npz", random_images(30, seed=2), np.arange(30) % 2)
    return [str(tmp_path / "ref.npz"), str(tmp_path / "sample.npz")]


def test_reference_features_cached_once_then_read(tmp_path, capsys, private_cache):
    """The second run against the same reference extracts only the samples and reports the same numbers."""
    argv = [*_batches(tmp_path), "--feature_extractor", "counting", "--batch_size", "16", "--extra"]
    CountingPixels.seen = 0
    first = evaluator.main(argv)
    assert CountingPixels.seen == 70 and len(list(private_cache.glob("*.npz"))) == 1
    second = evaluator.main(argv + ["--json", str(tmp_path / "out.json")])
    assert CountingPixels.seen == 70 + 30 and second == first
    assert json.loads((tmp_path / "out.json").read_text())["ref_features_cached"] is True
    assert "read from the cache" in capsys.readouterr().out
    evaluator.main(argv + ["--no-cache"])
    evaluator.main(argv + ["--no_cache", "--cache-dir", str(tmp_path / "other")])
    assert CountingPixels.seen == 100 + 2 * 70 and not (tmp_path / "other").exists()
    assert not list(private_cache.glob(".*"))  # no temporary file left behind


def test_cache_key_follows_content_extractor_and_keys(tmp_path):
    class Linear(fe.FeatureExtractor):
        def features(self, images):
            return {"pool": self.model(images.float().flatten(1))}

    np.savez(tmp_path / "a.npz", random_images(5, seed=1))
    np.savez(tmp_path / "b.npz", random_images(5, seed=1))
    np.savez(tmp_path / "c.npz", random_images(5, seed=2))
    a, b, c = (evaluation.evaluator.NpzImages(tmp_path / f"{n}.npz") for n in "abc")
    torch.manual_seed(0)
    net = Linear(nn.Linear(48, 4), "cpu")
    key = evaluation.evaluator.cache_key(a, net, ("pool",))
    assert key == evaluation.evaluator.cache_key(b, Linear(net.model, "cpu"), ("pool",))  # same bytes, same weights
    assert key != evaluation.evaluator.cache_key(c, net, ("pool",))
    assert key != evaluation.evaluator.cache_key(a, net, ("pool", "spatial"))
    with torch.no_grad():
        net.model.bias[0] += 1e-6
    assert key != evaluation.evaluator.cache_key(a, net, ("pool",))


def test_unreadable_cache_entry_is_extracted_again_and_replaced(tmp_path, capsys, private_cache):
    argv = [*_batches(tmp_path), "--feature-extractor", "counting"]
    first = evaluator.main(argv)
    (entry,) = private_cache.glob("*.npz")
    for damage in (b"not a zip", entry.read_bytes()[:200]):
        entry.write_bytes(damage)
        CountingPixels.seen = 0
        assert evaluator.main(argv) == first and CountingPixels.seen == 70
        assert "replacing an entry that could not be read" in capsys.readouterr().out
    assert evaluator.main(argv) == first and "read from the cache" in capsys.readouterr().out


def test_image_folders_in_place_of_npz(tmp_path, capsys):
    ref, sample = random_images(40, seed=1), random_images(30, seed=2)
    for name, images in (("ref", ref), ("sample", sample)):
        (tmp_path / name / "sub").mkdir(parents=True)
        for i, image in enumerate(images):  # PNG is lossless; names sort in index order
            Image.fromarray(image).save(tmp_path / name / ("sub" if i % 2 else "") / f"{i:03d}.png")
    (tmp_path / "ref" / "notes.txt").write_text("not an image")
    reader = evaluation.evaluator.open_images(tmp_path / "sample")
    order = sorted(range(30), key=lambda i: f"sub/{i:03d}" if i % 2 else f"{i:03d}")
    np.testing.assert_array_equal(np.concatenate(list(reader.batches(7))), sample[order])
    npz = _batches(tmp_path)
    argv = ["--feature-extractor", "pixels", "--extra", "--no_cache"]
    from_npz = evaluator.main([*npz, *argv])
    from_folders = evaluator.main([str(tmp_path / "ref"), str(tmp_path / "sample"), *argv])
    assert np.isnan(from_folders.pop("per_class_recall")) and not np.isnan(from_npz.pop("per_class_recall"))
    assert from_folders == pytest.approx(from_npz, rel=1e-9)  # the same images, in another order
    assert f"needs labels (arr_1 of an .npz) in both batches; none in {tmp_path / 'ref'}" in capsys.readouterr().out


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .png, .jpg or .jpeg images"):
        evaluation.evaluator.open_images(tmp_path / "empty")
    (tmp_path / "mixed").mkdir()
    Image.fromarray(random_images(1)[0]).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(random_images(1, size=6)[0]).save(tmp_path / "mixed" / "b.jpg")
    with pytest.raises(ValueError, match=r"different sizes, 4x4 \(a.png\) and 6x6 \(b.jpg\)"):
        evaluation.evaluator.open_images(tmp_path / "mixed")
    (tmp_path / "mixed" / "b.jpg").write_bytes(b"broken")
    with pytest.raises(ValueError, match="b.jpg: not a readable image"):
        evaluation.evaluator.open_images(tmp_path / "mixed")
    with pytest.raises(ValueError, match="is a folder; an .npz file is needed here.*labels"):
        evaluation.NpzImages(tmp_path / "mixed")  # robustness reads labels: it takes .npz files only
