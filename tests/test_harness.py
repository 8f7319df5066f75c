"""guided_diffusion.experiments.harness: settings, the main job on a testbed's networks, the run cache."""

import json
from dataclasses import asdict

from guided_diffusion.experiments.harness import Config, Lab


def test_reuse_takes_only_the_named_samplers_and_precisions_runs(tmp_path):
    ddpm, solver = Config("adm", "vanilla", 4.0, sampler="ddpm", steps=3), Config("adm", "vanilla", 4.0,
                                                                                   sampler="dpmpp_2m", steps=3)
    ddpm_bf16 = Config("adm", "vanilla", 4.0, sampler="ddpm", steps=3, precision="bf16")
    earlier = tmp_path / "results.json"
    earlier.write_text(json.dumps({"runs": [{"config": asdict(c), "seed": 1, "fid": f, "seconds": 2.0}
                                            for c, f in ((ddpm, 0.5), (solver, 9.0), (ddpm_bf16, 0.6))]}))
    lab = Lab.__new__(Lab)  # reuse touches only the cache: no models needed
    lab.cache = {}
    assert lab.reuse(earlier, ("ddpm",)) == 2
    assert lab.cache == {(ddpm, 1): {"fid": 0.5, "seconds": 2.0}, (ddpm_bf16, 1): {"fid": 0.6, "seconds": 2.0}}
    lab.cache = {}
    assert lab.reuse(earlier, ("ddpm", "dpmpp_2m"), ("fp32",)) == 2
    assert set(lab.cache) == {(ddpm, 1), (solver, 1)}
