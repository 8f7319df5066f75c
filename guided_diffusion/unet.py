"""ADM networks: the noise-predicting U-Net, its encoder half (the noise-aware
classifier) and the super-resolution U-Net (Dhariwal & Nichol 2021, Sec. 3).

Module and parameter names follow the released checkpoints exactly, so every
official state dict loads with ``strict=True``; the code itself is organised
per concept: time embedding, residual block, attention, the three networks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .nn import avg_pool_nd, checkpoint, conv_nd, normalization, timestep_embedding, zero_module

# ---------------------------------------------------------------- primitives


_LOW_PRECISION_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def convert_module_to(module: nn.Module, dtype: torch.dtype) -> None:
    """Cast the convolutions of ``module`` (not norms or linears), as ADM's fp16 mode."""
    if isinstance(module, _LOW_PRECISION_LAYERS):
        module.weight.data = module.weight.data.to(dtype)
        if module.bias is not None:
            module.bias.data = module.bias.data.to(dtype)


# ---------------------------------------------------------- resampling layers


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling (spatial axes only), then an optional 3x3 conv."""

    def __init__(self, channels: int, use_conv: bool, dims: int = 2, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.dims = dims
        if use_conv:
            self.conv = conv_nd(dims, channels, self.out_channels, 3, padding=1)
        elif self.out_channels != channels:
            raise ValueError("Upsample without a conv cannot change the channel count")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == self.channels
        if self.dims == 3:
            x = F.interpolate(x, (x.shape[2], x.shape[3] * 2, x.shape[4] * 2), mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if hasattr(self, "conv") else x


class Downsample(nn.Module):
    """2x downsampling of the spatial axes: a strided 3x3 conv or average pooling."""

    def __init__(self, channels: int, use_conv: bool, dims: int = 2, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        stride = (1, 2, 2) if dims == 3 else 2
        if use_conv:
            self.op = conv_nd(dims, channels, self.out_channels, 3, stride=stride, padding=1)
        else:
            if self.out_channels != channels:
                raise ValueError("Downsample without a conv cannot change the channel count")
            self.op = avg_pool_nd(dims, kernel_size=stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == self.channels
        return self.op(x)


# ------------------------------------------------------------ residual block


class TimestepBlock(nn.Module):
    """A module whose forward also takes the timestep embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    """Sequential that passes the embedding to the children that take one."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TimestepBlock) else layer(x)
        return x


class ResBlock(TimestepBlock):
    """Residual block conditioned on the time embedding.

    With ``use_scale_shift_norm`` the embedding gives (scale, shift) applied as
    ``norm(h) * (1 + scale) + shift`` (ADM's AdaGN); otherwise it is added.
    ``up``/``down`` resample inside the block (BigGAN-style, ``resblock_updown``).
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        out_channels: int | None = None,
        use_conv: bool = False,
        use_scale_shift_norm: bool = False,
        dims: int = 2,
        use_checkpoint: bool = False,
        up: bool = False,
        down: bool = False,
    ):
        super().__init__()
        self.out_channels = out_channels or channels
        self.use_checkpoint = use_checkpoint
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            normalization(channels), nn.SiLU(), conv_nd(dims, channels, self.out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False, dims), Upsample(channels, False, dims)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False, dims), Downsample(channels, False, dims)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        emb_out = 2 * self.out_channels if use_scale_shift_norm else self.out_channels
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, emb_out))
        self.out_layers = nn.Sequential(
            normalization(self.out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(conv_nd(dims, self.out_channels, self.out_channels, 3, padding=1)),
        )
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            kernel = 3 if use_conv else 1
            self.skip_connection = conv_nd(dims, channels, self.out_channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return checkpoint(self._forward, (x, emb), self.parameters(),
                          self.use_checkpoint and self.training and torch.is_grad_enabled())

    def _forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)
        emb_out = emb_out.reshape(*emb_out.shape, *([1] * (h.dim() - 2)))
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


# ----------------------------------------------------------------- attention


ATTENTION_BACKENDS = ("auto", "sdpa", "matmul")


def _check_backend(backend: str) -> None:
    if backend not in ATTENTION_BACKENDS:
        raise ValueError(f"attention backend must be one of {ATTENTION_BACKENDS}, got {backend!r}")


def matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v softmax(q^T k / sqrt(d))^T for (N, d, T) tensors: two batched matmuls and a softmax.

    PyTorch's half and bfloat16 softmax accumulates in float32, so it is within one unit in the last
    place of ADM's explicit float32 round trip without the float32 copy of the weights. The matmul
    orders keep the (T, T) weights and their gradient contiguous (no copy of the largest tensor in the
    backward pass)."""
    weight = torch.bmm(q.transpose(1, 2) * q.shape[1] ** -0.5, k)  # (N, T, S)
    return torch.bmm(weight.softmax(dim=-1), v.transpose(1, 2)).transpose(1, 2)


class QKVAttention(nn.Module):
    """Multi-head softmax(q k^T / sqrt(d)) v over a packed (B, 3*H*d, T) tensor.

    ``legacy_order=True`` reads the channels per head as [q_h, k_h, v_h] (ADM's
    ``QKVAttentionLegacy``); otherwise as [q_all, k_all, v_all] (``QKVAttention``,
    ``use_new_attention_order``). ``backend``: ``"sdpa"`` (PyTorch's fused kernel), ``"matmul"``
    (:func:`matmul_attention`) or ``"auto"``: SDPA, except bfloat16 on CPU, where the fused kernel
    gains nothing over float32 and the matmul form is faster (``benchmarks/bench_unet.py``).
    """

    def __init__(self, n_heads: int, legacy_order: bool = False, backend: str = "auto"):
        super().__init__()
        _check_backend(backend)
        self.n_heads = n_heads
        self.legacy_order = legacy_order
        self.backend = backend

    def uses_sdpa(self, qkv: torch.Tensor) -> bool:
        if self.backend == "auto":
            return not (qkv.dtype == torch.bfloat16 and qkv.device.type == "cpu")
        return self.backend == "sdpa"

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        bs, width, length = qkv.shape
        assert width % (3 * self.n_heads) == 0
        ch = width // (3 * self.n_heads)
        if self.legacy_order:
            q, k, v = qkv.reshape(bs * self.n_heads, 3 * ch, length).split(ch, dim=1)
        else:
            q, k, v = (t.reshape(bs * self.n_heads, ch, length) for t in qkv.chunk(3, dim=1))
        if self.uses_sdpa(qkv):
            # (B*H, T, d) with d contiguous: the fused kernels are several times slower on strided input
            q, k, v = (x.transpose(1, 2).contiguous() for x in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        else:
            a = matmul_attention(q, k, v)
        return a.reshape(bs, -1, length)


class QKVAttentionLegacy(QKVAttention):
    """The per-head [q_h, k_h, v_h] channel layout, under the original class name."""

    def __init__(self, n_heads: int):
        super().__init__(n_heads, legacy_order=True)


class AttentionBlock(nn.Module):
    """Self-attention over all spatial positions, with a residual connection."""

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        num_head_channels: int = -1,
        use_checkpoint: bool = False,
        use_new_attention_order: bool = False,
    ):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            if channels % num_head_channels:
                raise ValueError(f"channels {channels} not divisible by num_head_channels {num_head_channels}")
            self.num_heads = channels // num_head_channels
        self.use_checkpoint = use_checkpoint
        self.norm = normalization(channels)
        self.qkv = conv_nd(1, channels, channels * 3, 1)
        self.attention = QKVAttention(self.num_heads) if use_new_attention_order else QKVAttentionLegacy(self.num_heads)
        self.proj_out = zero_module(conv_nd(1, channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self._forward, (x,), self.parameters(),
                          self.use_checkpoint and self.training and torch.is_grad_enabled())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        h = self.proj_out(self.attention(self.qkv(self.norm(x))))
        return (x + h).reshape(b, c, *spatial)


class AttentionPool2d(nn.Module):
    """CLIP-style attention pooling: the mean token attends to all positions."""

    def __init__(self, spacial_dim: int, embed_dim: int, num_heads_channels: int, output_dim: int | None = None):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(embed_dim, spacial_dim**2 + 1) / embed_dim**0.5)
        self.qkv_proj = conv_nd(1, embed_dim, 3 * embed_dim, 1)
        self.c_proj = conv_nd(1, embed_dim, output_dim or embed_dim, 1)
        self.num_heads = embed_dim // num_heads_channels
        self.attention = QKVAttention(self.num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        x = x.reshape(b, c, -1)
        x = torch.cat([x.mean(dim=-1, keepdim=True), x], dim=-1)
        x = x + self.positional_embedding[None].to(x.dtype)
        return self.c_proj(self.attention(self.qkv_proj(x)))[:, :, 0]


def set_attention_backend(model: nn.Module, backend: str) -> nn.Module:
    """Set every attention layer of ``model`` to ``backend`` (one of ATTENTION_BACKENDS)."""
    _check_backend(backend)
    for m in model.modules():
        if isinstance(m, QKVAttention):
            m.backend = backend
    return model


# ------------------------------------------------------------------ networks


def _as_resolution_set(attention_resolutions: Sequence[int]) -> set[int]:
    return {int(r) for r in attention_resolutions}


class _UNetBase(nn.Module):
    """Time embedding, encoder path and middle block shared by all ADM networks."""

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        num_res_blocks: int,
        attention_resolutions: Sequence[int],
        dropout: float,
        channel_mult: Sequence[float],
        conv_resample: bool,
        dims: int,
        use_checkpoint: bool,
        use_fp16: bool,
        num_heads: int,
        num_head_channels: int,
        use_scale_shift_norm: bool,
        resblock_updown: bool,
        use_new_attention_order: bool,
        num_classes: int | None = None,
        label_dropout: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
        if label_dropout and num_classes is None:
            raise ValueError("label_dropout needs a class-conditional model (class_cond)")
        self.num_classes = num_classes
        self.label_dropout = label_dropout
        # index of the null class (an extra label embedding) learned by label dropout
        self.null_class = num_classes if label_dropout else None
        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.num_res_blocks = num_res_blocks
        self.attention_resolutions = attention_resolutions
        self.dropout = dropout
        self.channel_mult = tuple(channel_mult)
        self.conv_resample = conv_resample
        self.use_checkpoint = use_checkpoint
        self.dtype = torch.float16 if use_fp16 else torch.float32
        self.num_heads = num_heads
        self.num_head_channels = num_head_channels
        attn_at = _as_resolution_set(attention_resolutions)
        emb_dim = model_channels * 4
        self._emb_dim, self._attn_at = emb_dim, attn_at
        self._res_kwargs = dict(dims=dims, use_checkpoint=use_checkpoint, use_scale_shift_norm=use_scale_shift_norm)
        self._attn_kwargs = dict(num_head_channels=num_head_channels, use_checkpoint=use_checkpoint,
                                 use_new_attention_order=use_new_attention_order)
        res, attn = self._res, self._attn
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes + (1 if label_dropout else 0), emb_dim)

        ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(conv_nd(dims, in_channels, ch, 3, padding=1))])
        self._skip_channels = [ch]
        self._feature_size = ch
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(mult * model_channels))]
                ch = int(mult * model_channels)
                if ds in attn_at:
                    layers.append(attn(ch))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                self._feature_size += ch
                self._skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                down = res(ch, ch, down=True) if resblock_updown else Downsample(ch, conv_resample, dims, ch)
                self.input_blocks.append(TimestepEmbedSequential(down))
                self._skip_channels.append(ch)
                self._feature_size += ch
                ds *= 2
        self.middle_block = TimestepEmbedSequential(res(ch), attn(ch), res(ch))
        self._feature_size += ch
        self._ch, self._ds = ch, ds

    def _res(self, ch_in: int, ch_out: int | None = None, **kw) -> ResBlock:
        return ResBlock(ch_in, self._emb_dim, self.dropout, out_channels=ch_out, **self._res_kwargs, **kw)

    def _attn(self, ch: int, heads: int | None = None) -> AttentionBlock:
        return AttentionBlock(ch, num_heads=self.num_heads if heads is None else heads, **self._attn_kwargs)

    def _embed(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.time_embed(timestep_embedding(timesteps, self.model_channels))

    def _convert(self, dtype: torch.dtype, *parts: nn.Module) -> None:
        for part in parts:
            part.apply(lambda m: convert_module_to(m, dtype))
        self.dtype = dtype


class UNetModel(_UNetBase):
    """The ADM denoiser: ``model(x, timesteps, y=None) -> eps`` (and sigma channels).

    :param attention_resolutions: downsample rates (1, 2, 4, ...) with attention.
    :param num_classes: if set, class-conditional through a label embedding.
    :param label_dropout: in training, the probability of replacing a label by
        the null class ``num_classes`` (an extra embedding), for classifier-free guidance.
    :param num_heads_upsample: heads in the decoder's attention (-1: num_heads).
    """

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_resolutions: Sequence[int],
        dropout: float = 0,
        channel_mult: Sequence[float] = (1, 2, 4, 8),
        conv_resample: bool = True,
        dims: int = 2,
        num_classes: int | None = None,
        use_checkpoint: bool = False,
        use_fp16: bool = False,
        num_heads: int = 1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
        label_dropout: float = 0.0,
    ):
        super().__init__(
            image_size, in_channels, model_channels, num_res_blocks, attention_resolutions, dropout,
            channel_mult, conv_resample, dims, use_checkpoint, use_fp16, num_heads, num_head_channels,
            use_scale_shift_norm, resblock_updown, use_new_attention_order, num_classes, label_dropout,
        )
        self.out_channels = out_channels
        self.num_heads_upsample = num_heads if num_heads_upsample == -1 else num_heads_upsample

        ch, ds = self._ch, self._ds
        skips = list(self._skip_channels)
        self.output_blocks = nn.ModuleList([])
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers: list[nn.Module] = [self._res(ch + skips.pop(), int(model_channels * mult))]
                ch = int(model_channels * mult)
                if ds in self._attn_at:
                    layers.append(self._attn(ch, self.num_heads_upsample))
                if level and i == num_res_blocks:
                    up = self._res(ch, ch, up=True) if resblock_updown else Upsample(ch, conv_resample, dims, ch)
                    layers.append(up)
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(
            normalization(ch), nn.SiLU(), zero_module(conv_nd(dims, int(model_channels * channel_mult[0]),
                                                              out_channels, 3, padding=1))
        )

    def convert_to_fp16(self) -> None:
        """Run the torso in float16 (norms, embeddings and the output head stay float32)."""
        self._convert(torch.float16, self.input_blocks, self.middle_block, self.output_blocks)

    def convert_to_bf16(self) -> None:
        """As :meth:`convert_to_fp16`, in bfloat16 (no loss scaling needed to train)."""
        self._convert(torch.bfloat16, self.input_blocks, self.middle_block, self.output_blocks)

    def convert_to_fp32(self) -> None:
        self._convert(torch.float32, self.input_blocks, self.middle_block, self.output_blocks)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if (y is not None) != (self.num_classes is not None):
            raise ValueError("pass y if and only if the model is class-conditional")
        emb = self._embed(timesteps)
        if self.num_classes is not None:
            if self.training and self.label_dropout:
                y = torch.where(torch.rand(y.shape, device=y.device) < self.label_dropout, self.null_class, y)
            emb = emb + self.label_emb(y)
        hs = []
        h = x.type(self.dtype)
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h.type(x.dtype))


class SuperResModel(UNetModel):
    """A UNetModel that also sees a bilinearly upsampled low-resolution image."""

    def __init__(self, image_size: int, in_channels: int, *args, **kwargs):
        super().__init__(image_size, in_channels * 2, *args, **kwargs)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, low_res: torch.Tensor | None = None,
                **kwargs) -> torch.Tensor:
        if low_res is None:
            raise ValueError("SuperResModel needs low_res=")
        upsampled = F.interpolate(low_res, x.shape[2:], mode="bilinear")
        return super().forward(torch.cat([x, upsampled], dim=1), timesteps, **kwargs)


POOLS = ("adaptive", "attention", "spatial", "spatial_v2")


class EncoderUNetModel(_UNetBase):
    """The encoder half of the U-Net with a pooling head: ADM's noise-aware classifier.

    :param pool: ``adaptive`` (mean pool + 1x1 conv), ``attention`` (attention
        pooling), ``spatial`` / ``spatial_v2`` (MLP over per-block mean features).
    """

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_resolutions: Sequence[int],
        dropout: float = 0,
        channel_mult: Sequence[float] = (1, 2, 4, 8),
        conv_resample: bool = True,
        dims: int = 2,
        use_checkpoint: bool = False,
        use_fp16: bool = False,
        num_heads: int = 1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
        pool: str = "adaptive",
    ):
        super().__init__(
            image_size, in_channels, model_channels, num_res_blocks, attention_resolutions, dropout,
            channel_mult, conv_resample, dims, use_checkpoint, use_fp16, num_heads, num_head_channels,
            use_scale_shift_norm, resblock_updown, use_new_attention_order,
        )
        self.out_channels = out_channels
        self.pool = pool
        ch = self._ch
        if pool == "adaptive":
            self.out = nn.Sequential(
                normalization(ch), nn.SiLU(), nn.AdaptiveAvgPool2d((1, 1)),
                zero_module(conv_nd(dims, ch, out_channels, 1)), nn.Flatten(),
            )
        elif pool == "attention":
            if num_head_channels == -1:
                raise ValueError("attention pooling needs num_head_channels")
            self.out = nn.Sequential(
                normalization(ch), nn.SiLU(),
                AttentionPool2d(image_size // self._ds, ch, num_head_channels, out_channels),
            )
        elif pool == "spatial":
            self.out = nn.Sequential(nn.Linear(self._feature_size, 2048), nn.ReLU(), nn.Linear(2048, out_channels))
        elif pool == "spatial_v2":
            self.out = nn.Sequential(
                nn.Linear(self._feature_size, 2048), normalization(2048), nn.SiLU(), nn.Linear(2048, out_channels)
            )
        else:
            raise ValueError(f"unknown pool {pool!r}; expected one of {POOLS}")

    def convert_to_fp16(self) -> None:
        self._convert(torch.float16, self.input_blocks, self.middle_block)

    def convert_to_bf16(self) -> None:
        self._convert(torch.bfloat16, self.input_blocks, self.middle_block)

    def convert_to_fp32(self) -> None:
        self._convert(torch.float32, self.input_blocks, self.middle_block)

    def _torso(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        emb = self._embed(timesteps)
        spatial = self.pool.startswith("spatial")
        means = []
        h = x.type(self.dtype)
        for block in self.input_blocks:
            h = block(h, emb)
            if spatial:
                means.append(h.type(x.dtype).mean(dim=(2, 3)))
        h = self.middle_block(h, emb)
        if spatial:
            means.append(h.type(x.dtype).mean(dim=(2, 3)))
            return torch.cat(means, dim=-1)
        return h.type(x.dtype)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.out(self._torso(x, timesteps))
