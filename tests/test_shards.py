import hashlib
import json

import numpy as np
import pytest

from guided_diffusion.evaluation.evaluator import NpzImages
from guided_diffusion.sampling.shards import RUN_ARGS, ShardedRun, StreamedArray, read_npz, write_npz


def test_batches_and_pending_work():
    run = ShardedRun("unused", num_samples=10, batch_size=4)
    assert run.num_batches == 3 and [run.bounds(j) for j in range(3)] == [(0, 4), (4, 8), (8, 10)]
    assert run.pending(0, 2) == [0, 2] and run.pending(1, 2) == [1]
    with pytest.raises(ValueError, match="positive"):
        ShardedRun("unused", 0, 4)


def test_shards_are_written_whole_and_skipped_once_done(tmp_path):
    run = ShardedRun(tmp_path, num_samples=5, batch_size=2)
    run.write(1, {"images": np.ones((2, 2, 2, 3), np.uint8), "labels": np.array([3, 4])})
    assert run.is_done(1) and not run.is_done(0)
    assert run.pending(0, 1) == [0, 2] and run.done_samples() == 2 and run.missing() == [0, 2]
    assert [p.name for p in run.shard_dir.iterdir()] == ["batch_000001.npz"]  # no temporary file left
    assert run.read(1)["labels"].tolist() == [3, 4]


def test_npz_bytes_depend_only_on_the_arrays(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (5, 4, 4, 3), dtype=np.uint8)
    write_npz(tmp_path / "a.npz", {"arr_0": images, "arr_1": np.arange(5)})
    write_npz(tmp_path / "b.npz", {"arr_0": StreamedArray((5, 4, 4, 3), np.uint8, [images[:2], images[2:]]),
                                   "arr_1": np.arange(5)})
    digest = [hashlib.sha256((tmp_path / f"{n}.npz").read_bytes()).hexdigest() for n in "ab"]
    assert digest[0] == digest[1]
    loaded = read_npz(tmp_path / "b.npz")
    assert np.array_equal(loaded["arr_0"], images) and loaded["arr_1"].tolist() == list(range(5))
    assert np.array_equal(np.concatenate(list(NpzImages(tmp_path / "b.npz").batches(2))), images)
    with pytest.raises(ValueError, match="3 rows written"):
        write_npz(tmp_path / "c.npz", {"arr_0": StreamedArray((5, 4, 4, 3), np.uint8, [images[:3]])})
    assert not (tmp_path / "c.npz").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]


def test_run_arguments_are_recorded_and_compared(tmp_path):
    run = ShardedRun(tmp_path / "run", 4, 2)
    args = {"gamma": 0.04, "classes": "random", "num_samples": 4}
    run.check_args(args)
    assert json.loads((tmp_path / "run" / RUN_ARGS).read_text()) == args
    run.check_args(dict(args))
    with pytest.raises(ValueError, match=r"--gamma 0.04 there, 0.1 now") as err:
        run.check_args({**args, "gamma": 0.1})
    assert "classes" not in str(err.value) and "OPENAI_LOGDIR" in str(err.value)


def test_a_run_started_before_a_flag_existed_resumes_with_its_default(tmp_path):
    run = ShardedRun(tmp_path / "run", 4, 2)
    run.check_args({"gamma": 0.04})
    run.check_args({"gamma": 0.04, "grey_data": False}, defaults={"grey_data": False, "eta": 0.0})
    with pytest.raises(ValueError, match=r"--grey_data False there, True now"):
        run.check_args({"gamma": 0.04, "grey_data": True}, defaults={"grey_data": False})
    with pytest.raises(ValueError, match=r"--grey_data None there, False now"):
        run.check_args({"gamma": 0.04, "grey_data": False})  # no default known: a difference


def _batch(n, value=1):
    return {"images": np.full((n, 2, 2, 3), value, np.uint8), "labels": np.arange(n)}


@pytest.mark.parametrize("damage", ["truncate", "flip", "rows", "empty"])
def test_a_damaged_shard_is_set_aside_and_its_batch_sampled_again(tmp_path, damage):
    run = ShardedRun(tmp_path, num_samples=5, batch_size=2)
    for j in range(3):
        run.write(j, _batch(run.bounds(j)[1] - run.bounds(j)[0]))
    path = run.shard_path(1)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # a changed byte inside the image data: the zip CRC catches it
        at = data.index(bytes([1] * 8))
        path.write_bytes(data[:at] + b"\x07" + data[at + 1:])
    elif damage == "rows":
        run.write(1, _batch(1))
    else:
        path.write_bytes(b"")
    assert run.damage(1) and run.damage(0) is None
    logged = []
    assert run.discard_damaged(logged.append) == [1]
    assert run.pending(0, 1) == [1] and "batch 1 (samples 2..3) will be sampled again" in logged[0]
    assert (run.shard_dir / "batch_000001.npz.damaged").is_file()
    assert run.discard_damaged(logged.append) == [] and len(logged) == 1


def test_a_damaged_run_args_file_is_named_with_the_way_out(tmp_path):
    run = ShardedRun(tmp_path, num_samples=5, batch_size=2)
    run.check_args({"a": 1})
    (tmp_path / RUN_ARGS).write_text('{"a": 1,')
    with pytest.raises(ValueError) as err:
        run.check_args({"a": 1})
    message = str(err.value)
    assert str(tmp_path / RUN_ARGS) in message and "is damaged" in message and "delete it" in message
    (tmp_path / RUN_ARGS).write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="is damaged"):
        run.check_args({"a": 1})
