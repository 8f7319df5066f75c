import pytest
import torch

from guided_diffusion import unet

from golden import build_golden_network, load_fixture, relative_error

NETWORK_FIXTURES = [
    "golden_unet_legacyattn_plain.pt",
    "golden_unet_newattn_scaleshift_updown.pt",
    "golden_classifier_adaptive_pool.pt",
    "golden_classifier_attention_pool.pt",
    "golden_superres.pt",
]


def _block_outputs(model, inputs):
    """Forward pass recording every input block, the middle block and every output block."""
    recorded = {}
    hooks = []
    named = dict(model.named_modules())
    for name in [n for n in named if n.count(".") == 1 and n.split(".")[0] in ("input_blocks", "output_blocks")]:
        hooks.append(named[name].register_forward_hook(lambda m, i, o, name=name: recorded.__setitem__(name, o)))
    hooks.append(model.middle_block.register_forward_hook(lambda m, i, o: recorded.__setitem__("middle_block", o)))
    with torch.no_grad():
        out = model(**inputs)
    for h in hooks:
        h.remove()
    return out, recorded


@pytest.mark.parametrize("name", NETWORK_FIXTURES)
def test_forward_matches_reference(name):
    fixture = load_fixture(name)
    model = build_golden_network(fixture)
    out, blocks = _block_outputs(model, fixture["inputs"])
    assert out.shape == fixture["output"].shape
    assert relative_error(out, fixture["output"]) < 1e-4
    reference_blocks = fixture["activations_of_first_sample"]
    assert set(blocks) == set(reference_blocks)
    for block, expected in reference_blocks.items():
        assert relative_error(blocks[block][0], expected) < 1e-4, block


@pytest.mark.parametrize("name", NETWORK_FIXTURES[:2])
def test_sdpa_and_matmul_softmax_attention_agree(name):
    fixture = load_fixture(name)
    model = build_golden_network(fixture)
    with torch.no_grad():
        fused = model(**fixture["inputs"])
        unet.set_attention_backend(model, "matmul")
        plain = model(**fixture["inputs"])
    assert relative_error(fused, plain) < 1e-5
    assert relative_error(plain, fixture["output"]) < 1e-4


def test_matmul_attention_gradients_agree_with_sdpa():
    # the guidance gradient flows back through the classifier's attention
    qkv = torch.randn(2, 3 * 2 * 16, 37, dtype=torch.float64, requires_grad=True)
    grads = []
    for backend in ("sdpa", "matmul"):
        out = unet.QKVAttention(2, backend=backend)(qkv)
        (grad,) = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), qkv)
        grads.append(grad)
    assert relative_error(grads[0], grads[1]) < 1e-10


def test_auto_attention_takes_matmul_for_bf16_on_cpu_only():
    layer = unet.QKVAttention(2)
    qkv = torch.randn(2, 3 * 2 * 16, 64)
    assert layer.uses_sdpa(qkv) and not layer.uses_sdpa(qkv.bfloat16())
    assert torch.equal(layer(qkv), unet.QKVAttention(2, backend="sdpa")(qkv))
    assert torch.equal(layer(qkv.bfloat16()), unet.QKVAttention(2, backend="matmul")(qkv.bfloat16()))
    with pytest.raises(ValueError, match="attention backend"):
        unet.QKVAttention(2, backend="flash")
    with pytest.raises(ValueError, match="attention backend"):
        unet.set_attention_backend(layer, "math")


def test_low_precision_softmax_rounds_the_float32_softmax():
    # why matmul_attention drops ADM's explicit float32 round trip around the softmax
    weight = 8 * torch.randn(4, 64, 300, generator=torch.Generator().manual_seed(2))
    for dtype in (torch.bfloat16, torch.float16):
        low = weight.to(dtype)
        direct, round_trip = low.softmax(-1).float(), low.float().softmax(-1).to(dtype).float()
        assert (direct - round_trip).abs().le(torch.finfo(dtype).eps * round_trip).all()  # at most one ulp apart
        assert (direct != round_trip).float().mean() < 1e-3


def test_head_orders_differ():
    qkv = torch.randn(2, 3 * 2 * 4, 5)
    legacy = unet.QKVAttentionLegacy(2)(qkv)
    new = unet.QKVAttention(2, legacy_order=False)(qkv)
    assert legacy.shape == new.shape == (2, 8, 5)
    assert not torch.allclose(legacy, new)
    # one head: the two orders only differ in how q, k, v are sliced, identically
    one = torch.randn(2, 3 * 4, 5)
    assert torch.allclose(unet.QKVAttention(1, True)(one), unet.QKVAttention(1, False)(one), atol=1e-6)


def _tiny_unet(**kw):
    args = dict(image_size=8, in_channels=3, model_channels=32, out_channels=3, num_res_blocks=1,
                attention_resolutions=(2,), channel_mult=(1, 2), num_heads=2)
    return unet.UNetModel(**{**args, **kw})


def test_convert_to_fp16_casts_convolutions_only():
    model = _tiny_unet(num_classes=3)
    model.convert_to_fp16()
    assert model.dtype == torch.float16
    assert model.input_blocks[0][0].weight.dtype == torch.float16
    assert model.input_blocks[1][0].in_layers[0].weight.dtype == torch.float32  # GroupNorm
    assert model.input_blocks[1][0].emb_layers[1].weight.dtype == torch.float32  # Linear
    assert model.time_embed[0].weight.dtype == torch.float32
    assert model.out[2].weight.dtype == torch.float32
    assert set(model.state_dict()) == set(_tiny_unet(num_classes=3).state_dict())


def test_bf16_forward_close_to_fp32():
    torch.manual_seed(0)
    model = _tiny_unet()
    for p in model.parameters():  # zero-initialised layers would hide the torso
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([3, 700])
    with torch.no_grad():
        ref = model(x, t)
        model.convert_to_bf16()
        low = model(x, t)
    assert low.dtype == torch.float32
    assert relative_error(low, ref) < 5e-2


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    plain = _tiny_unet()
    ckpt = _tiny_unet(use_checkpoint=True)
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.05)
    ckpt.load_state_dict(plain.state_dict())
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    for m in (plain, ckpt):
        m(x, t).square().sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_class_conditioning_needs_labels():
    model = _tiny_unet(num_classes=3)
    with pytest.raises(ValueError, match="class-conditional"):
        model(torch.randn(1, 3, 8, 8), torch.tensor([0]))
    with pytest.raises(ValueError, match="class-conditional"):
        _tiny_unet()(torch.randn(1, 3, 8, 8), torch.tensor([0]), y=torch.tensor([1]))


@pytest.mark.parametrize("pool", unet.POOLS)
def test_encoder_pools(pool):
    torch.manual_seed(0)
    model = unet.EncoderUNetModel(image_size=8, in_channels=3, model_channels=32, out_channels=5,
                                  num_res_blocks=1, attention_resolutions=(2,), channel_mult=(1, 2),
                                  num_head_channels=16, pool=pool)
    x, t = torch.randn(3, 3, 8, 8), torch.tensor([0, 5, 9])
    assert model(x, t).shape == (3, 5)


def test_unknown_pool_is_rejected():
    with pytest.raises(ValueError, match="unknown pool"):
        unet.EncoderUNetModel(8, 3, 32, 5, 1, (), channel_mult=(1,), pool="max")


def test_timestep_embedding_closed_form():
    emb = unet.timestep_embedding(torch.tensor([0, 10]), 6)
    assert emb.shape == (2, 6)
    assert torch.allclose(emb[0], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    freqs = torch.tensor([1.0, 10000 ** (-1 / 3), 10000 ** (-2 / 3)])
    assert torch.allclose(emb[1], torch.cat([torch.cos(10 * freqs), torch.sin(10 * freqs)]), atol=1e-6)
    assert unet.timestep_embedding(torch.tensor([1]), 5)[0, -1] == 0


def test_superres_requires_low_res():
    fixture = load_fixture("golden_superres.pt")
    model = build_golden_network(fixture)
    inputs = {k: v for k, v in fixture["inputs"].items() if k != "low_res"}
    with pytest.raises(ValueError, match="low_res"):
        model(**inputs)


@pytest.mark.parametrize("name", NETWORK_FIXTURES)
def test_fp16_torso_stays_close_to_reference(name):
    fixture = load_fixture(name)
    model = build_golden_network(fixture)
    model.convert_to_fp16()
    with torch.no_grad():
        out = model(**fixture["inputs"])
    assert out.dtype == torch.float32
    assert relative_error(out, fixture["output"]) < 1e-2
