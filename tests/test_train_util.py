import csv
import json
import os
import signal
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from guided_diffusion import logger
from guided_diffusion.script_util import (
    classifier_and_diffusion_defaults,
    create_classifier_and_diffusion,
    create_model_and_diffusion,
    model_and_diffusion_defaults,
)
from guided_diffusion.train_util import (
    ClassifierTrainLoop,
    StopRequest,
    TrainLoop,
    compute_top_k,
    log_loss_dict,
    parse_ema_rate,
    parse_resume_step_from_filename,
    split_microbatches,
    update_ema,
)

from launch import run_python

TINY = {"image_size": 8, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1,2",
        "attention_resolutions": "4", "diffusion_steps": 50, "class_cond": True, "num_classes": 2}


@pytest.fixture
def logdir(tmp_path):
    with logger.scoped_configure(dir=str(tmp_path / "logs"), format_strs=["csv"]):
        yield tmp_path / "logs"


def tiny_model_and_diffusion(seed=0):
    torch.manual_seed(seed)
    return create_model_and_diffusion(**{**model_and_diffusion_defaults(), **TINY})


def random_batches(n_classes=2, batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    while True:
        labels = torch.randint(0, n_classes, (batch,), generator=g)
        yield torch.rand(batch, 3, 8, 8, generator=g) * 2 - 1, {"y": labels}


def signalled(batches, at: int, signum=signal.SIGTERM):
    """``batches``, sending ``signum`` to this process as batch ``at`` (from 1) is drawn."""
    for i, batch in enumerate(batches, 1):
        if i == at:
            os.kill(os.getpid(), signum)
        yield batch


def make_loop(model, diffusion, **kw):
    args = {"model": model, "diffusion": diffusion, "data": random_batches(), "batch_size": 4,
            "microbatch": -1, "lr": 1e-3, "ema_rate": "0.9,0.5", "log_interval": 1, "save_interval": 2,
            "resume_checkpoint": ""}
    return TrainLoop(**{**args, **kw})


def test_update_ema_arithmetic():
    target = [torch.tensor([1.0, 2.0]), torch.tensor([[10.0]])]
    source = [torch.tensor([3.0, 6.0]), torch.tensor([[0.0]])]
    update_ema(target, source, rate=0.75)
    assert torch.allclose(target[0], torch.tensor([1.5, 3.0]))
    assert torch.allclose(target[1], torch.tensor([[7.5]]))
    assert torch.equal(source[0], torch.tensor([3.0, 6.0]))


def test_parsing_helpers():
    assert parse_ema_rate("0.9999,0.99") == [0.9999, 0.99]
    assert parse_ema_rate(0.5) == [0.5]
    assert parse_resume_step_from_filename("/runs/a/model012345.pt") == 12345
    assert parse_resume_step_from_filename("/runs/a/ema_0.99_000010.pt") == 0
    assert parse_resume_step_from_filename("/runs/256x256_diffusion.pt") == 0
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2]])
    assert compute_top_k(logits, torch.tensor([1, 2]), k=1).tolist() == [1.0, 0.0]
    assert compute_top_k(torch.tensor([[0.1, 0.9, 0.0]]), torch.tensor([2]), k=5).tolist() == [1.0]
    chunks = list(split_microbatches(2, torch.arange(5), torch.arange(5) * 10))
    assert [c[1].tolist() for c in chunks] == [[0, 10], [20, 30], [40]]
    assert len(list(split_microbatches(-1, torch.arange(5)))) == 1


def test_log_loss_dict_splits_by_quartile_of_t(logdir):
    log_loss_dict(SimpleNamespace(num_timesteps=8), torch.tensor([0, 1, 2, 7]),
                  {"loss": torch.tensor([1.0, 2.0, 3.0, 4.0])})
    assert logger.getkvs() == {"loss": 2.5, "loss_q0": 1.5, "loss_q1": 3.0, "loss_q3": 4.0}


class SquareDiffusion:
    """Loss = mean(model(x)^2) per example, independent of t: gradients are deterministic."""

    num_timesteps = 4

    def training_losses(self, model, x, t, model_kwargs=None):
        loss = model(x).pow(2).mean(dim=(1, 2, 3))
        return {"loss": loss, "mse": loss}


@pytest.mark.parametrize("microbatch", [1, 3])
def test_microbatches_give_the_full_batch_gradient(logdir, microbatch):
    grads = []
    for mb in (-1, microbatch):
        torch.manual_seed(0)
        model = nn.Conv2d(3, 3, 1)
        loop = make_loop(model, SquareDiffusion(), microbatch=mb)
        batch = torch.linspace(-1, 1, 4 * 3 * 2 * 2).view(4, 3, 2, 2)
        loop.forward_backward(batch, {})
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))


def test_each_step_moves_every_ema_towards_the_weights(logdir):
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, 1)
    loop = make_loop(model, SquareDiffusion(), ema_rate="0.5,0.9")
    before = [p.detach().clone() for p in model.parameters()]
    loop.run_step(torch.linspace(-1, 1, 4 * 3 * 2 * 2).view(4, 3, 2, 2), {})
    assert loop.step == 1
    for rate, ema in zip((0.5, 0.9), loop.ema_params, strict=True):
        for e, b, p in zip(ema, before, model.parameters(), strict=True):
            assert not torch.equal(b, p)
            assert torch.allclose(e, rate * b + (1 - rate) * p.detach())


def test_ema_warmup_leaves_no_share_of_the_initial_weights(logdir):
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, 1)
    loop = make_loop(model, SquareDiffusion(), ema_rate="0.9999", ema_warmup=True)
    init = [p.detach().clone() for p in model.parameters()]
    batch = torch.linspace(-1, 1, 4 * 3 * 2 * 2).view(4, 3, 2, 2)
    expected = [p.clone() for p in init]
    for k in range(3):
        loop.run_step(batch, {})
        decay = (1 + k) / (10 + k)  # below the rate: warm-up
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, model.parameters(), strict=True)]
    for e, x in zip(loop.ema_params[0], expected, strict=True):
        assert torch.allclose(e, x, atol=1e-6)


def test_train_save_and_resume(logdir, tmp_path):
    model, diffusion = tiny_model_and_diffusion()
    loop = make_loop(model, diffusion, lr_anneal_steps=3)
    loop.run_loop()
    names = sorted(p.name for p in logdir.iterdir() if p.suffix == ".pt")
    assert names == sorted(f"{kind}{step:06d}.pt" for step in (2, 3)
                           for kind in ("model", "opt", "ema_0.9_", "ema_0.5_"))
    assert loop.opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 3)  # last step: lr * (1 - 2/3)
    with open(logdir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["step"] for row in rows] == ["0", "1", "2"]
    assert [row["samples"] for row in rows] == ["4", "8", "12"]

    saved = torch.load(logdir / "model000002.pt", weights_only=True)
    saved_ema = torch.load(logdir / "ema_0.5_000002.pt", weights_only=True)
    saved_opt = torch.load(logdir / "opt000002.pt", weights_only=True)
    assert list(saved) == list(model.state_dict())
    assert not torch.equal(saved["out.2.weight"], saved_ema["out.2.weight"])

    with logger.scoped_configure(dir=str(tmp_path / "resumed"), format_strs=[]):
        model2, diffusion2 = tiny_model_and_diffusion(seed=1)
        resumed = make_loop(model2, diffusion2, resume_checkpoint=str(logdir / "model000002.pt"), max_steps=3)
        assert resumed.resume_step == 2 and resumed.global_step == 2
        for name, p in model2.named_parameters():
            assert torch.equal(p, saved[name]), name
        ema = resumed.mp_trainer.master_params_to_state_dict(resumed.ema_params[1])
        assert all(torch.equal(ema[k], saved_ema[k]) for k in saved_ema)
        state = resumed.opt.state_dict()["state"]
        assert float(state[0]["step"]) == 2.0
        assert torch.equal(state[0]["exp_avg"], saved_opt["state"][0]["exp_avg"])
        resumed.run_loop()
        assert resumed.global_step == 3
        assert (tmp_path / "resumed" / "model000003.pt").exists()
        assert not (tmp_path / "resumed" / "model000002.pt").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_stop_signal_saves_the_step_it_is_on_and_returns(tmp_path, signum):
    before = signal.getsignal(signum)
    model, diffusion = tiny_model_and_diffusion()
    logdir = tmp_path / "logs"
    with logger.scoped_configure(dir=str(logdir), format_strs=["log"]):
        loop = make_loop(model, diffusion, data=signalled(random_batches(), at=3, signum=signum),
                         save_interval=100, max_steps=10)
        loop.run_loop()
    assert loop.global_step == 3 and signal.getsignal(signum) is before
    assert sorted(p.name for p in logdir.iterdir() if p.suffix == ".pt") == [
        "ema_0.5_000003.pt", "ema_0.9_000003.pt", "model000003.pt", "opt000003.pt"]
    assert "stopped by a signal after step 3" in (logdir / "log.txt").read_text()


def test_a_second_interrupt_stops_at_once():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_classifier_training_saves_and_resumes(logdir, tmp_path):
    flags = {**classifier_and_diffusion_defaults(), "image_size": 8, "classifier_width": 32,
             "classifier_depth": 1, "classifier_channel_mult": "1,2", "classifier_attention_resolutions": "4",
             "diffusion_steps": 50, "num_classes": 2}
    torch.manual_seed(0)
    model, diffusion = create_classifier_and_diffusion(**flags)
    common = {"model": model, "diffusion": diffusion, "data": random_batches(),
              "val_data": random_batches(seed=1), "batch_size": 4, "microbatch": 2, "lr": 1e-3,
              "log_interval": 1, "eval_interval": 1, "save_interval": 1}
    ClassifierTrainLoop(iterations=2, **common).run_loop()
    assert sorted(p.name for p in logdir.iterdir() if p.suffix == ".pt") == [
        "model000001.pt", "model000002.pt", "opt000001.pt", "opt000002.pt"]
    header = (logdir / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"train_loss", "train_acc@1", "val_loss", "val_acc@5", "step"} <= set(header)

    with logger.scoped_configure(dir=str(tmp_path / "resumed"), format_strs=[]):
        loop = ClassifierTrainLoop(iterations=3, resume_checkpoint=str(logdir / "model000002.pt"), **common)
        assert loop.step == 2
        loop.run_loop()
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == ["model000003.pt", "opt000003.pt"]

    with logger.scoped_configure(dir=str(tmp_path / "stopped"), format_strs=[]):  # signalled during step 2
        ClassifierTrainLoop(iterations=9, **{**common, "data": signalled(random_batches(), at=2)}).run_loop()
    assert sorted(p.name for p in (tmp_path / "stopped").iterdir()) == ["model000001.pt", "model000002.pt",
                                                                        "opt000001.pt", "opt000002.pt"]


DDP_SNIPPET = """
import json, os, signal, sys, torch
from guided_diffusion import dist_util, logger
from guided_diffusion.resample import LossSecondMomentResampler
from guided_diffusion.script_util import create_model_and_diffusion, model_and_diffusion_defaults
from guided_diffusion.train_util import TrainLoop

dist_util.setup_dist()
rank = dist_util.get_rank()
logger.configure(dir=sys.argv[1], format_strs=[])
sampler = LossSecondMomentResampler(type("D", (), {"num_timesteps": 5})(), history_per_term=1)
# unequal sizes: rank 0 reports t=0,1,2 and rank 1 t=3,4
local_t = torch.tensor([0, 1, 2]) if rank == 0 else torch.tensor([3, 4])
sampler.update_with_local_losses(local_t, local_t.float() + 1)
torch.manual_seed(rank)  # different initial weights and data per rank
flags = {**model_and_diffusion_defaults(), **json.loads(sys.argv[2])}
model, diffusion = create_model_and_diffusion(**flags)
def data():
    for i in range(1, 100):
        if i == 2 and rank == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # rank 1 alone is told to stop, during step 2
        yield torch.rand(2, 3, 8, 8) * 2 - 1, {"y": torch.randint(0, 2, (2,))}
loop = TrainLoop(model=model, diffusion=diffusion, data=data(), batch_size=2, microbatch=1, lr=1e-2,
                 ema_rate="0.9", log_interval=10, save_interval=100, resume_checkpoint="", max_steps=5)
assert loop.use_ddp
loop.run_loop()
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
with open(f"{sys.argv[1]}/../rank{rank}.json", "w") as f:
    json.dump({"history": sampler._loss_history[:, 0].tolist(), "step": loop.global_step,
               "checksum": flat.double().sum().item(), "first": flat[:5].tolist()}, f)
"""


def test_ddp_keeps_ranks_in_sync_and_gathers_sampler_losses(tmp_path):
    (tmp_path / "snippet.py").write_text(DDP_SNIPPET)
    run_python([str(tmp_path / "snippet.py"), str(tmp_path / "logs"), json.dumps(TINY)], nproc=2)
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["history"] == [1.0, 2.0, 3.0, 4.0, 5.0] for r in rows)
    assert rows[0]["first"] == rows[1]["first"] and rows[0]["checksum"] == rows[1]["checksum"]
    assert [r["step"] for r in rows] == [2, 2]  # both stopped after the step rank 1 was signalled in
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "ema_0.9_000002.pt", "model000002.pt", "opt000002.pt"]
