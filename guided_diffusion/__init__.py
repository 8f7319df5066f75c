"""ADM ("guided-diffusion") with Progressive Guidance: ADM's modules at this level, our concepts in
subpackages (progressive, sampling, evaluation, testbeds, experiments, models); see docs/layout.md."""
