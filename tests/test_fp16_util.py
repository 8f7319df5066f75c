import copy

import pytest
import torch
from torch import nn

from guided_diffusion import logger
from guided_diffusion.fp16_util import MixedPrecisionTrainer
from guided_diffusion.script_util import create_model_and_diffusion, model_and_diffusion_defaults
from guided_diffusion.unet import convert_module_to


class Tiny(nn.Module):
    """A conv (cast to low precision like the U-Net torso), a norm and a linear head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.head = nn.Linear(4, 1)
        self.dtype = torch.float32

    def _convert(self, dtype):
        self.conv.apply(lambda m: convert_module_to(m, dtype))
        self.dtype = dtype

    def convert_to_fp16(self):
        self._convert(torch.float16)

    def convert_to_bf16(self):
        self._convert(torch.bfloat16)

    def forward(self, x):
        h = self.conv(x.type(self.dtype)).float()
        return self.head(self.norm(h).mean(dim=(2, 3)))


@pytest.fixture(autouse=True)
def _quiet_logger(tmp_path):
    with logger.scoped_configure(dir=str(tmp_path), format_strs=[]):
        yield


def loss_of(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    return model(torch.randn(3, 2, 5, 5, generator=g)).pow(2).mean()


def test_master_params_are_two_flat_fp32_groups():
    model = Tiny()
    trainer = MixedPrecisionTrainer(model=model, use_fp16=True)
    n_vec = sum(p.numel() for p in model.parameters() if p.ndim <= 1)
    n_mat = sum(p.numel() for p in model.parameters() if p.ndim > 1)
    assert [tuple(p.shape) for p in trainer.master_params] == [(n_vec,), (1, n_mat)]
    assert all(p.dtype == torch.float32 for p in trainer.master_params)
    assert model.conv.weight.dtype == torch.float16 and model.head.weight.dtype == torch.float32
    assert model.dtype == torch.float16


def test_overflow_skips_the_step_and_lowers_the_scale():
    model = Tiny()
    trainer = MixedPrecisionTrainer(model=model, use_fp16=True)
    opt = torch.optim.SGD(trainer.master_params, lr=1.0)
    before = [p.detach().clone() for p in trainer.master_params]
    model_before = [p.detach().clone() for p in model.parameters()]
    trainer.zero_grad()
    trainer.backward(loss_of(model))
    model.conv.weight.grad[0, 0, 0, 0] = float("inf")
    assert trainer.optimize(opt) is False
    assert trainer.lg_loss_scale == 19.0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.master_params, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(model_before, model.parameters(), strict=True))
    assert all(p.grad is None for p in trainer.master_params)

    trainer.zero_grad()
    trainer.backward(loss_of(model) * float("nan"))
    assert trainer.optimize(opt) is False and trainer.lg_loss_scale == 18.0


def test_fp16_step_unscales_gradients_and_grows_the_scale():
    model = Tiny()
    reference = copy.deepcopy(model)
    trainer = MixedPrecisionTrainer(model=model, use_fp16=True, fp16_scale_growth=0.25, initial_lg_loss_scale=8.0)
    opt = torch.optim.SGD(trainer.master_params, lr=1.0)
    trainer.zero_grad()
    trainer.backward(loss_of(model))
    assert trainer.optimize(opt) is True
    assert trainer.lg_loss_scale == 8.25

    loss_of(reference).backward()
    expected = {n: p.detach() - p.grad for n, p in reference.named_parameters()}
    state = trainer.master_params_to_state_dict(trainer.master_params)
    for name, value in expected.items():
        assert torch.allclose(state[name], value, atol=2e-3), name
    # the model's own (low precision) weights follow the master weights
    assert torch.equal(model.conv.weight, state["conv.weight"].half())
    assert torch.equal(model.head.weight, state["head.weight"])


def test_state_dict_round_trip_keeps_model_keys_in_fp32():
    model = Tiny()
    trainer = MixedPrecisionTrainer(model=model, use_fp16=True)
    state = trainer.master_params_to_state_dict(trainer.master_params)
    assert list(state) == list(model.state_dict())
    assert all(v.dtype == torch.float32 for v in state.values())
    masters = trainer.state_dict_to_master_params(state)
    assert all(torch.equal(a, b) for a, b in zip(masters, trainer.master_params, strict=True))
    fresh = Tiny()
    fresh.load_state_dict(state)  # strict: a plain fp32 model accepts it


def test_bf16_computes_in_bf16_without_loss_scaling():
    model = Tiny()
    trainer = MixedPrecisionTrainer(model=model, use_bf16=True)
    opt = torch.optim.SGD(trainer.master_params, lr=0.1)
    assert model.conv.weight.dtype == torch.bfloat16
    master_before = [p.detach().clone() for p in trainer.master_params]
    trainer.zero_grad()
    trainer.backward(loss_of(model))
    assert trainer.optimize(opt) is True
    assert trainer.lg_loss_scale == 20.0
    assert not all(torch.equal(a, b) for a, b in zip(master_before, trainer.master_params, strict=True))

    trainer.zero_grad()
    trainer.backward(loss_of(model) * float("inf"))
    assert trainer.optimize(opt) is False and trainer.lg_loss_scale == 20.0


def test_fp32_matches_plain_adamw():
    model, reference = Tiny(), Tiny()
    trainer = MixedPrecisionTrainer(model=model)
    assert trainer.master_params == list(model.parameters())
    opt = torch.optim.AdamW(trainer.master_params, lr=0.01)
    ref_opt = torch.optim.AdamW(reference.parameters(), lr=0.01)
    for seed in range(3):
        trainer.zero_grad()
        trainer.backward(loss_of(model, seed))
        assert trainer.optimize(opt)
        ref_opt.zero_grad()
        loss_of(reference, seed).backward()
        ref_opt.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b)


def test_fp16_and_bf16_are_exclusive():
    with pytest.raises(ValueError):
        MixedPrecisionTrainer(model=Tiny(), use_fp16=True, use_bf16=True)


@pytest.mark.parametrize("precision", ["use_fp16", "use_bf16"])
def test_unet_trains_in_low_precision(precision):
    flags = model_and_diffusion_defaults()
    flags.update(image_size=8, num_channels=32, num_res_blocks=1, channel_mult="1,2",
                 attention_resolutions="4", diffusion_steps=50)
    torch.manual_seed(0)
    model, diffusion = create_model_and_diffusion(**flags)
    trainer = MixedPrecisionTrainer(model=model, **{precision: True})
    low = torch.float16 if precision == "use_fp16" else torch.bfloat16
    assert model.input_blocks[0][0].weight.dtype == low
    opt = torch.optim.AdamW(trainer.master_params, lr=1e-3)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    trainer.zero_grad()
    losses = diffusion.training_losses(model, x, torch.tensor([3, 40]))
    trainer.backward(losses["loss"].mean())
    assert trainer.optimize(opt) is True
    state = trainer.master_params_to_state_dict(trainer.master_params)
    assert list(state) == list(model.state_dict())
    assert torch.equal(model.input_blocks[0][0].weight, state["input_blocks.0.0.weight"].to(low))
