"""Autocast, compile and channels_last wrappers for sampling: outputs, gradients, attributes, clear errors."""

import pytest
import torch

from guided_diffusion.progressive.guidance import ClassifierFreeGuidance, ClassifierGuidance
from guided_diffusion.sampling.precision import Accelerated, accelerate, check_precision

from tiny import tiny_classifier, tiny_model_and_diffusion

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def nets():
    model, _ = tiny_model_and_diffusion(class_cond=True, num_classes=5, label_dropout=0.1)
    return model, tiny_classifier(5)


def test_fp32_changes_nothing(nets):
    model, _ = nets
    assert accelerate(model, "fp32") is model


def test_bf16_autocast_gives_float32_outputs_and_gradients_close_to_fp32(nets):
    model, classifier = nets
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([10, 60]), torch.tensor([1, 3])
    fast = accelerate(model, "bf16")
    with torch.no_grad():
        exact, approx = model(x, t, y), fast(x, t, y)
    assert approx.dtype == torch.float32 and next(model.parameters()).dtype == torch.float32  # weights untouched
    assert (approx - exact).abs().max() < 0.05 * exact.abs().max() and not torch.equal(approx, exact)
    grad32 = ClassifierGuidance(classifier, 2.0)(x, t, y=y)
    grad16 = ClassifierGuidance(accelerate(classifier, "bf16"), 2.0)(x, t, y=y)
    assert grad16.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(grad16.flatten(), grad32.flatten(), dim=0)
    assert cosine > 0.99


def test_wrapped_model_keeps_the_attributes_samplers_read(nets):
    model, _ = nets
    fast = accelerate(model, "bf16")
    assert fast.null_class == model.null_class == 5 and fast.num_classes == 5
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([10, 60]), torch.tensor([1, 3])
    with torch.no_grad():
        out = ClassifierFreeGuidance(fast, 1.5)(x, t, y=y)
    assert out.shape == (2, 6, 8, 8) and out.dtype == torch.float32


def test_channels_last_gives_the_same_outputs(nets):
    model, _ = nets
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([10, 60]), torch.tensor([1, 3])
    with torch.no_grad():
        plain = model(x, t, y)
        fast = Accelerated(model, "fp32", channels_last=True)(x, t, y)
    model.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)


def test_bad_precisions_are_clear_errors():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        check_precision("fp16", CPU)
    with pytest.raises(ValueError, match="do not combine"):
        check_precision("bf16", CPU, use_fp16=True)
    with pytest.raises(ValueError, match="must be one of"):
        check_precision("int8", CPU)
    assert check_precision("bf16", CPU) == torch.bfloat16


def test_compile_runs_and_its_failure_is_a_clear_error(nets, monkeypatch):
    model, _ = nets
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([10, 60]), torch.tensor([1, 3])
    monkeypatch.setenv("GUIDED_DIFFUSION_COMPILE_BACKEND", "eager")  # graph capture without a C++ build
    with torch.no_grad():
        torch.testing.assert_close(accelerate(model, "fp32", compile=True)(x, t, y), model(x, t, y))

    def broken(net, backend):
        def run(*args, **kwargs):
            raise RuntimeError("InductorError: no working C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(ValueError, match="--compile: torch.compile cannot compile UNetModel here .*run without"):
        with torch.no_grad():
            accelerate(model, "fp32", compile=True)(x, t, y)


def test_cast_weights_converts_the_torso_once_and_agrees_with_autocast(nets):
    import copy

    model, _ = nets
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([10, 60]), torch.tensor([1, 3])
    cast = accelerate(copy.deepcopy(model), "bf16", cast_weights=True)
    assert cast.net.input_blocks[0][0].weight.dtype == torch.bfloat16 and cast.net.out[2].weight.dtype == torch.float32
    with torch.no_grad():
        a, b, exact = cast(x, t, y), accelerate(model, "bf16")(x, t, y), model(x, t, y)
    assert (a - b).abs().max() < 0.02 * exact.abs().max()
    assert next(model.parameters()).dtype == torch.float32  # the original is untouched without cast_weights


def test_the_cuda_fp16_path_runs_on_cpu_float16_autocast():
    """``--precision fp16`` is refused on CPUs (their float16 kernels are slow), so no GPU means its code never
    runs in the jobs here: the same wrapper, float16 torso and float32 norms, under the CPU's float16 autocast,
    through a guided DPM-Solver++ batch with ProG, close to float32."""
    import copy

    import numpy as np

    from guided_diffusion.progressive.information_degree import gamma_per_step
    from guided_diffusion.progressive.plan import GuidancePlan, build_guidance
    from guided_diffusion.sampling.batch import sample_batch
    from guided_diffusion.sampling.samplers import respacing_for
    from guided_diffusion.sampling.seeding import SampleNoise

    from tiny import random_relevance

    model, spaced = tiny_model_and_diffusion(class_cond=True, num_classes=5,
                                             timestep_respacing=respacing_for("dpmpp_2m", "5"))
    classifier = tiny_classifier(5)
    half_model, half_classifier = (accelerate(copy.deepcopy(net), "fp16", cast_weights=True)
                                   for net in (model, classifier))
    assert half_model.net.input_blocks[0][0].weight.dtype == torch.float16
    assert half_model.net.out[0].weight.dtype == torch.float32  # norms stay float32, as ADM's fp16 mode
    plan = GuidancePlan("prog", random_relevance(5), gamma_per_step(0.04, 5, 250))
    labels = torch.tensor([0, 1, 2, 3])
    images = {}
    for name, (m, c) in {"fp32": (model, classifier), "fp16": (half_model, half_classifier)}.items():
        denoiser, cond_fn = build_guidance(plan, m, c, 4.0, class_cond=True)
        images[name] = sample_batch(spaced, denoiser, cond_fn, plan, labels,
                                    SampleNoise(0, range(4), (3, 8, 8), CPU), sampler="dpmpp_2m")["images"]
    gap = np.abs(images["fp16"].astype(int) - images["fp32"].astype(int))
    assert gap.mean() < 2.0 and (gap > 16).mean() < 0.02, (gap.mean(), (gap > 16).mean())  # (a few clipped
    # pixels of the random network may flip between 0 and 255)
    assert not np.array_equal(images["fp16"], images["fp32"])  # float16 really ran
