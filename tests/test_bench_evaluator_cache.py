"""benchmarks/bench_evaluator_cache.py: its batches and the evaluator command it times."""

import numpy as np

from benchmarks import bench_evaluator_cache as bench
from evaluations import evaluator


def test_batches_and_command_fit_the_evaluator(tmp_path):
    ref, sample = bench.write_batches(tmp_path, 6, 5, 8)
    with np.load(ref) as r, np.load(sample) as s:
        assert r["arr_0"].shape == (6, 8, 8, 3) and s["arr_0"].dtype == np.uint8 and s["arr_1"].shape == (5,)
    command = bench.evaluator_command(ref, sample, "classifier:digits/features", tmp_path / "c", 32,
                                      tmp_path / "o.json")
    args = evaluator.parse_args(command[2:])
    assert (args.batch_size, args.cache_dir, args.no_cache, args.json) == (32, str(tmp_path / "c"), False, command[-1])
