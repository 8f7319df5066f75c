"""Cheaper network evaluations for sampling: autocast to bf16 / fp16, torch.compile, channels_last.

:func:`accelerate` wraps the diffusion model or the classifier. The wrapper runs the network under
``torch.autocast`` and returns float32 outputs, so the sampler's arithmetic and the guidance
gradient (taken with respect to a float32 input) stay in float32. With ``cast_weights`` (what the
sampling scripts use) the torso's weights are also cast to the autocast dtype once, as ADM's
``convert_to_fp16`` does (norms, embeddings and the output head stay float32), so that autocast does
not cast them again at every call. ADM's ``--use_fp16`` (float16 torso without autocast, GPUs only)
keeps its meaning; the two are not combined.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .wrapper import Wrapper

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPILE_BACKEND = "GUIDED_DIFFUSION_COMPILE_BACKEND"  # torch.compile's backend (default inductor; eager: no codegen)


def check_precision(precision: str, device: torch.device, use_fp16: bool = False) -> torch.dtype:
    """The autocast dtype of ``--precision``, or a ValueError saying why it cannot run here."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and use_fp16:
        raise ValueError(f"--precision {precision} (autocast) and --use_fp16 True (float16 weights) do not combine: "
                         f"choose one")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA device (CPU autocast is bf16 only): use --precision bf16")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16; use fp16")
    return PRECISIONS[precision]


class Accelerated(Wrapper):
    """``net`` under autocast (float32 outputs), optionally compiled and in channels_last.

    Attributes the samplers read off the network (``null_class``, ``num_classes``, ...) are the
    wrapped network's.
    """

    def __init__(self, net: nn.Module, precision: str = "fp32", compile: bool = False,
                 channels_last: bool = False, cast_weights: bool = False):
        super().__init__()
        if cast_weights and precision != "fp32" and hasattr(net, f"convert_to_{precision}"):
            getattr(net, f"convert_to_{precision}")()
        self.net = net
        self.autocast_dtype = PRECISIONS[precision]
        self.channels_last = channels_last
        if channels_last:
            net.to(memory_format=torch.channels_last)
        self._run = torch.compile(net, backend=os.environ.get(COMPILE_BACKEND, "inductor")) if compile else net
        self._compiled = compile
        self._checked = not compile

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self._checked:
            return self._first_compiled_call(x, *args, **kwargs)
        return self._call(self._run, x, *args, **kwargs)

    def _call(self, fn, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.autocast_dtype == torch.float32:
            return fn(x, *args, **kwargs).float()
        with torch.autocast(x.device.type, dtype=self.autocast_dtype):
            out = fn(x, *args, **kwargs)
        return out.float()

    def _first_compiled_call(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The compiled network's first call; if compiling fails where the plain network runs, a ValueError."""
        try:
            out = self._call(self._run, x, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - dynamo and inductor raise many kinds
            self._call(self.net, x, *args, **kwargs)  # the plain network's own error, if it has one
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise ValueError(f"--compile: torch.compile cannot compile {type(self.net).__name__} here "
                             f"({type(err).__name__}: {first}); run without --compile") from err
        self._checked = True
        return out


def accelerate(net: nn.Module, precision: str = "fp32", compile: bool = False, channels_last: bool = False,
               cast_weights: bool = False) -> nn.Module:
    """``net`` itself for fp32 without compile or channels_last (nothing to do), else :class:`Accelerated`
    (``cast_weights``: convert ``net``'s torso to the autocast dtype in place)."""
    if precision == "fp32" and not compile and not channels_last:
        return net
    if compile and not torch._dynamo.is_dynamo_supported():
        raise ValueError("--compile: torch.compile is not supported with this Python / platform; run without it")
    return Accelerated(net, precision, compile, channels_last, cast_weights)
