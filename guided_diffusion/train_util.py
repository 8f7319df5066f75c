"""Training loops for diffusion models and noise-aware classifiers.

Step counting: a checkpoint named ``model{N:06d}.pt`` (with ``ema_{rate}_{N:06d}.pt`` and
``opt{N:06d}.pt`` beside it) holds the state after N optimizer steps, and resuming from it
continues with step N + 1. Checkpoints are written into ``logger.get_dir()`` by rank 0.

Stopping: Ctrl-C, SIGTERM or SIGUSR1 (a scheduler's stop, or its warning: ``sbatch --signal=USR1@120``)
make a loop save a checkpoint at the step it is on and return (:class:`StopRequest`), so nothing trained is
lost and ``--resume_checkpoint`` continues from there; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import copy
import functools
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import blobfile as bf
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel.distributed import DistributedDataParallel as DDP
from torch.optim import AdamW

from . import dist_util, logger
from .checkpoints import load_checkpoint
from .fp16_util import MixedPrecisionTrainer
from .nn import update_ema
from .resample import LossAwareSampler, ScheduleSampler, UniformSampler, create_named_schedule_sampler

Batches = Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]

# Ctrl-C, a scheduler's stop, and the warning a scheduler can be asked to send before its time limit
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s)


class StopRequest:
    """While entered (in the main thread), a stop signal is recorded instead of ending the process; calling the
    request says whether any rank has received one, so that every rank stops after the same step. A second
    Ctrl-C raises KeyboardInterrupt as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def __call__(self) -> bool:
        return dist_util.any_rank(self.requested)


def log_stop(step: int) -> None:
    logger.log(f"stopped by a signal after step {step}: checkpoint model{step:06d}.pt written; "
               f"--resume_checkpoint it to continue")


class TrainLoop:
    """Trains a diffusion model with AdamW, EMA copies, microbatching and optional DDP.

    Training stops after ``lr_anneal_steps`` steps (with the learning rate decayed linearly
    to zero) or ``max_steps`` steps, counting resumed steps; with neither it runs forever.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        diffusion: Any,
        data: Batches,
        batch_size: int,
        microbatch: int,
        lr: float,
        ema_rate: float | str,
        log_interval: int,
        save_interval: int,
        resume_checkpoint: str,
        use_fp16: bool = False,
        fp16_scale_growth: float = 1e-3,
        schedule_sampler: ScheduleSampler | None = None,
        weight_decay: float = 0.0,
        lr_anneal_steps: int = 0,
        use_bf16: bool = False,
        max_steps: int = 0,
        ema_warmup: bool = False,
    ):
        self.model = model
        self.diffusion = diffusion
        self.data = data
        self.batch_size = batch_size
        self.microbatch = microbatch if microbatch > 0 else batch_size
        self.lr = lr
        self.ema_rate = parse_ema_rate(ema_rate)
        self.ema_warmup = ema_warmup
        self.log_interval = log_interval
        self.save_interval = save_interval
        self.resume_checkpoint = resume_checkpoint
        self.schedule_sampler = schedule_sampler or UniformSampler(diffusion)
        self.weight_decay = weight_decay
        self.lr_anneal_steps = lr_anneal_steps
        self.max_steps = max_steps

        self.step = 0
        self.resume_step = 0
        self.global_batch = batch_size * dist_util.get_world_size()

        self._load_and_sync_parameters()
        self.mp_trainer = MixedPrecisionTrainer(
            model=model,
            use_fp16=use_fp16,
            fp16_scale_growth=fp16_scale_growth,
            use_bf16=use_bf16,
        )
        self.opt = AdamW(self.mp_trainer.master_params, lr=lr, weight_decay=weight_decay)
        if self.resume_step:
            load_optimizer_state(self.opt, resume_checkpoint, self.resume_step)
            self.ema_params = [self._load_ema_parameters(rate) for rate in self.ema_rate]
        else:
            self.ema_params = [
                copy.deepcopy(self.mp_trainer.master_params) for _ in self.ema_rate
            ]
        self.ddp_model, self.use_ddp = wrap_ddp(model)

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far, including those of the resumed run."""
        return self.step + self.resume_step

    def _load_and_sync_parameters(self) -> None:
        if self.resume_checkpoint:
            self.resume_step = parse_resume_step_from_filename(self.resume_checkpoint)
            logger.log(f"loading model from checkpoint: {self.resume_checkpoint}...")
            load_checkpoint(self.model, self.resume_checkpoint)
        dist_util.sync_params(self.model.parameters())

    def _load_ema_parameters(self, rate: float) -> list[torch.Tensor]:
        ema_checkpoint = find_ema_checkpoint(self.resume_checkpoint, self.resume_step, rate)
        if ema_checkpoint is None:
            logger.warn(f"no EMA checkpoint for rate {rate}; starting it from the model")
            return copy.deepcopy(self.mp_trainer.master_params)
        logger.log(f"loading EMA from checkpoint: {ema_checkpoint}...")
        state_dict = dist_util.load_state_dict(ema_checkpoint, map_location=dist_util.dev())
        ema_params = self.mp_trainer.state_dict_to_master_params(state_dict)
        dist_util.sync_params(ema_params)
        return ema_params

    def _done(self) -> bool:
        limits = [n for n in (self.lr_anneal_steps, self.max_steps) if n]
        return any(self.global_step >= n for n in limits)

    def run_loop(self) -> None:
        """Train until a step limit is reached or a stop signal comes, saving every ``save_interval`` steps and
        at the end."""
        saved_at, stopped = None, False
        with StopRequest() as stop:
            while not self._done() and not stopped:
                batch, cond = next(self.data)
                self.run_step(batch, cond)
                if (self.global_step - 1) % self.log_interval == 0:
                    logger.dumpkvs()
                if self.global_step % self.save_interval == 0:
                    self.save()
                    saved_at = self.global_step
                stopped = stop()
        if saved_at != self.global_step and self.step > 0:
            self.save()
        if stopped:
            log_stop(self.global_step)

    def run_step(self, batch: torch.Tensor, cond: dict[str, torch.Tensor]) -> None:
        """One optimizer step on ``batch`` (split into microbatches)."""
        self._anneal_lr()
        self.forward_backward(batch, cond)
        if self.mp_trainer.optimize(self.opt):
            self._update_ema()
        self.log_step()
        self.step += 1

    def forward_backward(self, batch: torch.Tensor, cond: dict[str, torch.Tensor]) -> None:
        """Accumulate gradients of the batch-mean weighted loss, one microbatch at a time."""
        self.mp_trainer.zero_grad()
        dev = dist_util.dev()
        keys = list(cond)
        chunks = list(split_microbatches(self.microbatch, batch, *(cond[k] for k in keys)))
        for i, (micro, *values) in enumerate(chunks):
            micro = micro.to(dev)
            micro_cond = {k: v.to(dev) for k, v in zip(keys, values, strict=True)}
            last_batch = i == len(chunks) - 1
            t, weights = self.schedule_sampler.sample(micro.shape[0], dev)
            compute_losses = functools.partial(
                self.diffusion.training_losses, self.ddp_model, micro, t, model_kwargs=micro_cond
            )
            if last_batch or not self.use_ddp:
                losses = compute_losses()
            else:
                with self.ddp_model.no_sync():
                    losses = compute_losses()
            if isinstance(self.schedule_sampler, LossAwareSampler):
                self.schedule_sampler.update_with_local_losses(t, losses["loss"].detach())
            loss = (losses["loss"] * weights).mean()
            log_loss_dict(self.diffusion, t, {k: v * weights for k, v in losses.items()})
            self.mp_trainer.backward(loss * (micro.shape[0] / batch.shape[0]))

    def _update_ema(self) -> None:
        for rate, params in zip(self.ema_rate, self.ema_params, strict=True):
            if self.ema_warmup:  # the k-th update: decay (1 + k) / (10 + k) until it reaches the rate
                rate = min(rate, (1 + self.global_step) / (10 + self.global_step))
            update_ema(params, self.mp_trainer.master_params, rate=rate)

    def _anneal_lr(self) -> None:
        if self.lr_anneal_steps:
            set_annealed_lr(self.opt, self.lr, self.global_step / self.lr_anneal_steps)

    def log_step(self) -> None:
        logger.logkv("step", self.global_step)
        logger.logkv("samples", (self.global_step + 1) * self.global_batch)

    def save(self) -> None:
        """Write model, EMA and optimizer checkpoints for the current step (rank 0)."""
        step = self.global_step
        save_on_rank0(
            f"model{step:06d}.pt",
            self.mp_trainer.master_params_to_state_dict(self.mp_trainer.master_params),
        )
        for rate, params in zip(self.ema_rate, self.ema_params, strict=True):
            save_on_rank0(f"ema_{rate}_{step:06d}.pt", self.mp_trainer.master_params_to_state_dict(params))
        save_on_rank0(f"opt{step:06d}.pt", self.opt.state_dict())
        dist_util.barrier()


def training_defaults() -> dict:
    """Flags of the diffusion training scripts (besides the model's)."""
    return dict(
        data_dir="",
        schedule_sampler="uniform",
        lr=1e-4,
        weight_decay=0.0,
        lr_anneal_steps=0,
        max_steps=0,
        batch_size=1,
        microbatch=-1,  # -1 disables microbatches
        ema_rate="0.9999",  # comma-separated list of EMA rates
        ema_warmup=False,  # True: EMA decay (1 + k) / (10 + k) at update k, up to the rate (no share of the init left)
        log_interval=10,
        save_interval=10000,
        resume_checkpoint="",
        use_fp16=False,
        use_bf16=False,
        fp16_scale_growth=1e-3,
        seed=0,
        random_flip=True,
    )


def train_from_args(args: Any, model: nn.Module, diffusion: Any, data: Batches) -> None:
    """Run a :class:`TrainLoop` configured by the flags of :func:`training_defaults`."""
    TrainLoop(
        model=model,
        diffusion=diffusion,
        data=data,
        batch_size=args.batch_size,
        microbatch=args.microbatch,
        lr=args.lr,
        ema_rate=args.ema_rate,
        log_interval=args.log_interval,
        save_interval=args.save_interval,
        resume_checkpoint=args.resume_checkpoint,
        use_fp16=args.use_fp16,
        fp16_scale_growth=args.fp16_scale_growth,
        schedule_sampler=create_named_schedule_sampler(args.schedule_sampler, diffusion),
        weight_decay=args.weight_decay,
        lr_anneal_steps=args.lr_anneal_steps,
        use_bf16=args.use_bf16,
        max_steps=args.max_steps,
        ema_warmup=args.ema_warmup,
    ).run_loop()


class ClassifierTrainLoop:
    """Trains a (noise-aware) classifier ``model(x, timesteps=t) -> logits`` with AdamW.

    With ``noised`` the inputs are ``diffusion.q_sample(x, t)`` at timesteps from
    ``schedule_sampler``; otherwise clean images at t = 0. Runs ``iterations`` steps in
    total (resumed ones included), saving ``model{N}.pt`` and ``opt{N}.pt``.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        diffusion: Any,
        data: Batches,
        val_data: Batches | None = None,
        batch_size: int,
        microbatch: int = -1,
        lr: float,
        weight_decay: float = 0.0,
        anneal_lr: bool = False,
        iterations: int,
        noised: bool = True,
        schedule_sampler: ScheduleSampler | None = None,
        resume_checkpoint: str = "",
        log_interval: int = 10,
        eval_interval: int = 5,
        save_interval: int = 10000,
        use_fp16: bool = False,
    ):
        self.model = model
        self.diffusion = diffusion
        self.data = data
        self.val_data = val_data
        self.batch_size = batch_size
        self.microbatch = microbatch
        self.lr = lr
        self.anneal_lr = anneal_lr
        self.iterations = iterations
        self.noised = noised
        self.schedule_sampler = schedule_sampler or UniformSampler(diffusion)
        self.log_interval = log_interval
        self.eval_interval = eval_interval
        self.save_interval = save_interval

        self.resume_step = 0
        if resume_checkpoint:
            self.resume_step = parse_resume_step_from_filename(resume_checkpoint)
            logger.log(f"loading model from checkpoint: {resume_checkpoint}... at {self.resume_step} step")
            load_checkpoint(model, resume_checkpoint)
        dist_util.sync_params(model.parameters())
        self.mp_trainer = MixedPrecisionTrainer(model=model, use_fp16=use_fp16, initial_lg_loss_scale=16.0)
        self.opt = AdamW(self.mp_trainer.master_params, lr=lr, weight_decay=weight_decay)
        if resume_checkpoint:
            load_optimizer_state(self.opt, resume_checkpoint, self.resume_step)
        self.ddp_model, self.use_ddp = wrap_ddp(model)
        self.step = self.resume_step

    def run_loop(self) -> None:
        """Train up to ``iterations`` steps (or until a stop signal), evaluating, logging and saving on their
        intervals and when stopped."""
        world_size = dist_util.get_world_size()
        with StopRequest() as stop:
            while self.step < self.iterations:
                logger.logkv("step", self.step)
                logger.logkv("samples", (self.step + 1) * self.batch_size * world_size)
                if self.anneal_lr:
                    set_annealed_lr(self.opt, self.lr, self.step / self.iterations)
                self.forward_backward_log(self.data)
                self.mp_trainer.optimize(self.opt)
                if self.val_data is not None and self.step % self.eval_interval == 0:
                    self.model.eval()
                    with torch.no_grad():
                        self.forward_backward_log(self.val_data, prefix="val")
                    self.model.train()
                if self.step % self.log_interval == 0:
                    logger.dumpkvs()
                self.step += 1
                stopping = stop()
                if self.step % self.save_interval == 0 or self.step == self.iterations or stopping:
                    self.save()
                if stopping:
                    log_stop(self.step)
                    break

    def forward_backward_log(self, data: Batches, prefix: str = "train") -> None:
        """Loss/accuracy logging for one batch, and its gradient when grad mode is on."""
        batch, extra = next(data)
        dev = dist_util.dev()
        labels = extra["y"].to(dev)
        batch = batch.to(dev)
        if self.noised:
            t, _ = self.schedule_sampler.sample(batch.shape[0], dev)
            batch = self.diffusion.q_sample(batch, t)
        else:
            t = torch.zeros(batch.shape[0], dtype=torch.long, device=dev)
        training = torch.is_grad_enabled()
        net = self.ddp_model if training else self.model
        chunks = list(split_microbatches(self.microbatch, batch, labels, t))
        if training:
            self.mp_trainer.zero_grad()
        for i, (sub_batch, sub_labels, sub_t) in enumerate(chunks):
            if training and self.use_ddp and i < len(chunks) - 1:
                with self.ddp_model.no_sync():
                    logits = net(sub_batch, timesteps=sub_t)
            else:
                logits = net(sub_batch, timesteps=sub_t)
            loss = F.cross_entropy(logits, sub_labels, reduction="none")
            log_loss_dict(
                self.diffusion,
                sub_t,
                {
                    f"{prefix}_loss": loss.detach(),
                    f"{prefix}_acc@1": compute_top_k(logits, sub_labels, k=1),
                    f"{prefix}_acc@5": compute_top_k(logits, sub_labels, k=5),
                },
            )
            if training:
                self.mp_trainer.backward(loss.mean() * len(sub_batch) / len(batch))

    def save(self) -> None:
        """Write ``model{step}.pt`` and ``opt{step}.pt`` (rank 0)."""
        save_on_rank0(
            f"model{self.step:06d}.pt",
            self.mp_trainer.master_params_to_state_dict(self.mp_trainer.master_params),
        )
        save_on_rank0(f"opt{self.step:06d}.pt", self.opt.state_dict())
        dist_util.barrier()


def parse_ema_rate(ema_rate: float | str) -> list[float]:
    """EMA rates from a float or a comma-separated string such as ``"0.9999,0.99"``."""
    if isinstance(ema_rate, (int, float)):
        return [float(ema_rate)]
    return [float(x) for x in ema_rate.split(",") if x.strip()]


def wrap_ddp(model: nn.Module) -> tuple[nn.Module, bool]:
    """``(DistributedDataParallel(model), True)`` when training on several ranks, else ``(model, False)``."""
    if not dist_util.is_distributed() or dist_util.get_world_size() == 1:
        return model, False
    dev = dist_util.dev()
    device_ids = [dev] if dev.type == "cuda" else None
    ddp = DDP(
        model,
        device_ids=device_ids,
        output_device=dev if device_ids else None,
        bucket_cap_mb=128,
        find_unused_parameters=False,
    )
    return ddp, True


def set_annealed_lr(opt: torch.optim.Optimizer, base_lr: float, frac_done: float) -> None:
    """Set the learning rate to ``base_lr * (1 - frac_done)``."""
    for param_group in opt.param_groups:
        param_group["lr"] = base_lr * (1 - frac_done)


def parse_resume_step_from_filename(filename: str) -> int:
    """The N of ``.../model{N}.pt``; 0 if the name has no such number."""
    split = filename.split("model")
    if len(split) < 2:
        return 0
    try:
        return int(split[-1].split(".")[0])
    except ValueError:
        return 0


def get_blob_logdir() -> str:
    """Where checkpoints are written: the logger's directory."""
    logdir = logger.get_dir()
    assert logdir is not None
    return logdir


def find_ema_checkpoint(main_checkpoint: str | None, step: int, rate: float) -> str | None:
    """Path of ``ema_{rate}_{step:06d}.pt`` beside ``main_checkpoint`` if it exists."""
    if not main_checkpoint:
        return None
    path = bf.join(bf.dirname(main_checkpoint), f"ema_{rate}_{step:06d}.pt")
    return path if bf.exists(path) else None


def load_optimizer_state(opt: torch.optim.Optimizer, main_checkpoint: str, step: int) -> None:
    """Load ``opt{step:06d}.pt`` beside ``main_checkpoint`` into ``opt`` if it exists."""
    path = bf.join(bf.dirname(main_checkpoint), f"opt{step:06d}.pt")
    if not bf.exists(path):
        logger.warn(f"no optimizer state {path}; starting a fresh optimizer")
        return
    logger.log(f"loading optimizer state from checkpoint: {path}")
    opt.load_state_dict(dist_util.load_state_dict(path, map_location=dist_util.dev()))


def save_on_rank0(filename: str, obj: Any) -> None:
    """``torch.save(obj)`` into the log directory, on rank 0 only."""
    if dist_util.get_rank() != 0:
        return
    logger.log(f"saving {filename}...")
    with bf.BlobFile(bf.join(get_blob_logdir(), filename), "wb") as f:
        torch.save(obj, f)


def log_loss_dict(diffusion: Any, ts: torch.Tensor, losses: dict[str, torch.Tensor]) -> None:
    """Log the mean of each loss, and its mean per quartile of t as ``{key}_q{0..3}``."""
    quartiles = (4 * ts.detach().cpu() // diffusion.num_timesteps).tolist()
    for key, values in losses.items():
        logger.logkv_mean(key, values.mean().item())
        for quartile, sub_loss in zip(quartiles, values.detach().cpu().tolist(), strict=True):
            logger.logkv_mean(f"{key}_q{quartile}", sub_loss)


def compute_top_k(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per example, 1.0 if the label is among the top ``k`` logits (k capped at the class count)."""
    top_ks = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).indices
    return (top_ks == labels[:, None]).float().sum(dim=-1)


def split_microbatches(microbatch: int, *args: torch.Tensor) -> Iterator[Sequence[torch.Tensor]]:
    """Split equally long tensors into chunks of ``microbatch`` rows (<= 0: one chunk)."""
    bs = len(args[0])
    if microbatch <= 0 or microbatch >= bs:
        yield args
        return
    for i in range(0, bs, microbatch):
        yield tuple(x[i : i + microbatch] for x in args)
