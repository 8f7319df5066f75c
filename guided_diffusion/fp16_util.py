"""Mixed-precision training: fp32 master weights for a model computing in fp16 or bf16.

In low precision the optimizer sees two flat fp32 "master" parameters: all parameters
with ``ndim <= 1`` concatenated (shape ``(-1,)``) and all others (shape ``(1, -1)``), in
``model.named_parameters()`` order, as in openai/guided-diffusion, so optimizer
checkpoints are interchangeable with it. fp16 uses dynamic loss scaling (``2 **
lg_loss_scale``); a step whose gradients overflow is skipped and the scale lowered.
bf16 needs no loss scaling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from . import logger
from .unet import convert_module_to

INITIAL_LOG_LOSS_SCALE = 20.0

NamedParams = list[tuple[str, torch.Tensor]]
ParamGroups = list[tuple[NamedParams, tuple[int, ...]]]


def convert_module_to_f16(module: nn.Module) -> None:
    """Cast a convolution's weight and bias to float16 (other modules untouched)."""
    convert_module_to(module, torch.float16)


def convert_module_to_f32(module: nn.Module) -> None:
    """Cast a convolution's weight and bias back to float32."""
    convert_module_to(module, torch.float32)


def get_param_groups_and_shapes(named_model_params: Iterable[tuple[str, torch.Tensor]]) -> ParamGroups:
    """Split parameters into the vector/scalar group and the matrix group."""
    named = list(named_model_params)
    return [
        ([(n, p) for n, p in named if p.ndim <= 1], (-1,)),
        ([(n, p) for n, p in named if p.ndim > 1], (1, -1)),
    ]


def make_master_params(param_groups_and_shapes: ParamGroups) -> list[nn.Parameter]:
    """One flat fp32 parameter per group, initialised from the (possibly low-precision) values."""
    master_params = []
    for group, shape in param_groups_and_shapes:
        flat = _flatten_dense_tensors([p.detach().float() for _, p in group]).view(shape)
        master_params.append(nn.Parameter(flat.clone(), requires_grad=True))
    return master_params


def unflatten_master_params(group: NamedParams, master_param: torch.Tensor) -> list[torch.Tensor]:
    """Views of a flat master parameter shaped like the group's model parameters."""
    return list(_unflatten_dense_tensors(master_param.view(-1), [p for _, p in group]))


def model_grads_to_master_grads(
    param_groups_and_shapes: ParamGroups, master_params: Sequence[nn.Parameter]
) -> None:
    """Copy model gradients (zeros where absent) into the fp32 master gradients."""
    for master, (group, shape) in zip(master_params, param_groups_and_shapes, strict=True):
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in group]
        master.grad = _flatten_dense_tensors([g.detach().float() for g in grads]).view(shape)


def master_params_to_model_params(
    param_groups_and_shapes: ParamGroups, master_params: Sequence[nn.Parameter]
) -> None:
    """Copy master weights back into the model, casting to each parameter's dtype."""
    for master, (group, _) in zip(master_params, param_groups_and_shapes, strict=True):
        for (_, param), value in zip(group, unflatten_master_params(group, master.detach()), strict=True):
            param.detach().copy_(value)


def master_params_to_state_dict(
    model: nn.Module,
    param_groups_and_shapes: ParamGroups | None,
    master_params: Sequence[torch.Tensor],
    use_fp16: bool,
) -> dict[str, torch.Tensor]:
    """The model's state dict (same keys) with parameters taken from ``master_params``.

    ``use_fp16`` means "master params are flattened" (fp16 or bf16 training).
    """
    state_dict = model.state_dict()
    if use_fp16:
        assert param_groups_and_shapes is not None
        for master, (group, _) in zip(master_params, param_groups_and_shapes, strict=True):
            for (name, _), value in zip(group, unflatten_master_params(group, master.detach()), strict=True):
                state_dict[name] = value
    else:
        for (name, _), value in zip(model.named_parameters(), master_params, strict=True):
            state_dict[name] = value.detach()
    return state_dict


def state_dict_to_master_params(
    model: nn.Module, state_dict: dict[str, torch.Tensor], use_fp16: bool
) -> list[torch.Tensor]:
    """Inverse of :func:`master_params_to_state_dict` (e.g. to load EMA weights)."""
    if use_fp16:
        named = [(name, state_dict[name]) for name, _ in model.named_parameters()]
        return list(make_master_params(get_param_groups_and_shapes(named)))
    return [state_dict[name] for name, _ in model.named_parameters()]


def zero_grad(params: Iterable[torch.Tensor]) -> None:
    """Drop the gradients of ``params``."""
    for p in params:
        p.grad = None


def check_overflow(value: float) -> bool:
    """True for inf, -inf or NaN."""
    return not np.isfinite(value)


class MixedPrecisionTrainer:
    """Owns the backward pass and optimizer step of a model trained in fp32, fp16 or bf16.

    With ``use_fp16`` (or ``use_bf16``) the model is converted with
    ``model.convert_to_fp16()`` (``convert_to_bf16()``) and the optimizer must be built on
    :attr:`master_params`.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        use_fp16: bool = False,
        fp16_scale_growth: float = 1e-3,
        initial_lg_loss_scale: float = INITIAL_LOG_LOSS_SCALE,
        use_bf16: bool = False,
    ):
        if use_fp16 and use_bf16:
            raise ValueError("use_fp16 and use_bf16 are exclusive")
        self.model = model
        self.use_fp16 = use_fp16
        self.use_bf16 = use_bf16
        self.fp16_scale_growth = fp16_scale_growth
        self.lg_loss_scale = initial_lg_loss_scale
        self.model_params = list(model.parameters())
        self.master_params: list[nn.Parameter] = self.model_params
        self.param_groups_and_shapes: ParamGroups | None = None
        if self.flat_master:
            self.param_groups_and_shapes = get_param_groups_and_shapes(model.named_parameters())
            self.master_params = make_master_params(self.param_groups_and_shapes)
            if use_fp16:
                model.convert_to_fp16()
            else:
                model.convert_to_bf16()

    @property
    def flat_master(self) -> bool:
        """Whether master params are separate flat fp32 copies (fp16 or bf16 training)."""
        return self.use_fp16 or self.use_bf16

    def zero_grad(self) -> None:
        zero_grad(self.model_params)

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (times the loss scale in fp16)."""
        if self.use_fp16:
            loss = loss * (2**self.lg_loss_scale)
        loss.backward()

    def optimize(self, opt: torch.optim.Optimizer) -> bool:
        """Take an optimizer step; returns False when it was skipped for non-finite gradients."""
        if not self.flat_master:
            grad_norm, param_norm = self._compute_norms()
            logger.logkv_mean("grad_norm", grad_norm)
            logger.logkv_mean("param_norm", param_norm)
            opt.step()
            return True
        assert self.param_groups_and_shapes is not None
        grad_scale = 2**self.lg_loss_scale if self.use_fp16 else 1.0
        if self.use_fp16:
            logger.logkv_mean("lg_loss_scale", self.lg_loss_scale)
        model_grads_to_master_grads(self.param_groups_and_shapes, self.master_params)
        grad_norm, param_norm = self._compute_norms(grad_scale=grad_scale)
        if check_overflow(grad_norm):
            if self.use_fp16:
                self.lg_loss_scale -= 1
                logger.log(f"Found NaN, decreased lg_loss_scale to {self.lg_loss_scale}")
            else:
                logger.log("Found NaN in gradients, skipping step")
            zero_grad(self.master_params)
            return False
        logger.logkv_mean("grad_norm", grad_norm)
        logger.logkv_mean("param_norm", param_norm)
        for p in self.master_params:
            p.grad.mul_(1.0 / grad_scale)
        opt.step()
        zero_grad(self.master_params)
        master_params_to_model_params(self.param_groups_and_shapes, self.master_params)
        if self.use_fp16:
            self.lg_loss_scale += self.fp16_scale_growth
        return True

    def _compute_norms(self, grad_scale: float = 1.0) -> tuple[float, float]:
        with torch.no_grad():
            param_sq = sum(torch.norm(p, p=2, dtype=torch.float32) ** 2 for p in self.master_params)
            grads = [p.grad for p in self.master_params if p.grad is not None]
            grad_sq = sum(torch.norm(g, p=2, dtype=torch.float32) ** 2 for g in grads)
        grad_norm = float(torch.as_tensor(grad_sq).sqrt()) / grad_scale
        return grad_norm, float(torch.as_tensor(param_sq).sqrt())

    def master_params_to_state_dict(self, master_params: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """State dict of the model with the given master params (e.g. EMA) as its weights."""
        return master_params_to_state_dict(
            self.model, self.param_groups_and_shapes, master_params, self.flat_master
        )

    def state_dict_to_master_params(self, state_dict: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Master params (same layout as :attr:`master_params`) from a state dict."""
        return state_dict_to_master_params(self.model, state_dict, self.flat_master)
