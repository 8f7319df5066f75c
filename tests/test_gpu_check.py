"""benchmarks/gpu_check.sh --small: every step of the GPU check, on the CPU at toy sizes, so it cannot rot."""

from fixtures_background import background

RUN = background(__file__, "test_gpu_check_small_runs_every_step", ["bash", "benchmarks/gpu_check.sh", "--small"],
                 seconds=40, env={"OUT": "{out}"})


def test_gpu_check_small_runs_every_step(request):
    proc, tmp_path = RUN.result(request, check=False)
    summary = (tmp_path / "summary.md").read_text()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in summary.splitlines()[2:] if line.startswith("| ")]
    names = [row.split(" | ")[0][2:] for row in rows]
    for sampler in ("ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde"):
        for precision in ("fp32", "bf16"):
            assert f"sample {sampler} {precision}" in names
    assert "sample dpmpp_2m bf16 compile (eager)" in names
    assert {"bench_sampling digits", "bench_guidance tiny", "precision/recall 2,000 x 2,048"} <= set(names)
    assert all(" | ok | " in row for row in rows), summary
    assert all(row.rstrip(" |").split(" | ")[-1].strip() for row in rows), summary  # every step reports a result
