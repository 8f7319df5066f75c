"""benchmarks/bench_sampling.py's pricing of a guided step's convolutions (the --profile yardstick)."""

import torch

from benchmarks import bench_sampling

from tiny import CLASSIFIER_FLAGS, MODEL_FLAGS, tiny_classifier, tiny_model_and_diffusion


def conv_flops_by_hooks(net: torch.nn.Module, *inputs, **kwargs) -> int:
    """2 x (output elements) x (inputs per output element) over every convolution, counted by hand."""
    total = 0

    def count(module, args, out):
        nonlocal total
        total += 2 * out.numel() * module.weight[0].numel()

    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    handles = [m.register_forward_hook(count) for m in convs]
    with torch.no_grad():
        net(*inputs, **kwargs)
    for h in handles:
        h.remove()
    return total


def test_conv_gflop_per_step_counts_model_forward_and_classifier_forward_and_backward():
    model, _ = tiny_model_and_diffusion(class_cond=True, num_classes=5)
    classifier = tiny_classifier(5)
    flags = {**MODEL_FLAGS, **CLASSIFIER_FLAGS, "class_cond": True}
    x, t = torch.randn(3, 3, 8, 8), torch.full((3,), 500)
    expected = (conv_flops_by_hooks(model, x, t, y=torch.zeros(3, dtype=torch.long))
                + 2 * conv_flops_by_hooks(classifier, x, t))
    got = bench_sampling.conv_gflop_per_step(model, classifier, flags, 3, torch.device("cpu"))
    assert expected > 0 and abs(got * 1e9 - expected) <= 1e-6 * expected


def test_matmul_rate_is_a_positive_rate():
    rate = bench_sampling.matmul_gflops(torch.float32, torch.device("cpu"), n=64, repeats=2)
    assert 0 < rate < 1e6
