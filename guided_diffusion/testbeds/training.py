"""Training a testbed's shipped networks with the project's own training scripts (a checkout's ``scripts/``),
and packaging them as shipped models (``guided_diffusion/models/<testbed>/<name>.pt`` with ``<name>.json``).

A testbed's :class:`ModelSet` lists its specs (``MODELS`` of :mod:`.digits`, :mod:`.fashion`), one per model:
``{"script": "image_train" | "classifier_train" | "autoencoder_train", "kind": "diffusion" | "classifier" |
"autoencoder", "steps", "flags"}``; a
diffusion spec also names the EMA it ships (``weights``), and a spec may name its training data (``data``:
``train``, the image folder, the default, or ``train.npz``). :func:`run` is ``scripts/train_<testbed>_models.py``.

Resumable: :func:`train` skips a model whose final checkpoint is complete in its run folder, and resumes an
interrupted one from its latest complete checkpoint (``--resume_checkpoint``: weights, optimizer and EMAs). Each
session's seconds are appended to the run folder's ``sessions.json`` and their sum is the manifest's
``seconds``. A resumed run is not bit-identical to an uninterrupted one: data order and noise restart from the
seed. A run folder being trained holds the training script's process id (``training.pid``): a second run started
while that process lives (left behind by a session that ended) stops instead of training the same model twice.
A model is packaged again only when its final checkpoint is newer than its manifest.

Stopping cleanly (``--hours``, Ctrl-C or SIGTERM to the run, a scheduler's time limit): :class:`Stopper` sends
each running training script SIGTERM, which saves a checkpoint at the step it is on
(:class:`~guided_diffusion.train_util.StopRequest`) and exits; the session is recorded, no further model starts,
nothing is packaged, and running the same command again resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import script_util as su
from ..evaluation import autoencoder
from ..evaluation.clean_classifiers import ADM, build_classifier
from ..evaluation.feature_extractors import ClassifierExtractor, load_classifier
from ..evaluation.held_out import default_job_channel_gap, held_out_metrics, unguided_quality
from ..models import MODELS_DIR
from ..sampling.shards import read_npz
from ..train_util import STOP_SIGNALS, ClassifierTrainLoop, TrainLoop, parse_ema_rate

ROOT = Path(__file__).resolve().parents[2]  # the checkout, whose scripts/ train
SESSIONS = "sessions.json"  # in a model's run folder: [{"from_step", "to_step", "seconds"}, ...]
LOCK = "training.pid"  # in a model's run folder while it trains: the training script's process id


@dataclass(frozen=True)
class ModelSet:
    """A testbed's shipped models: their specs, sampling defaults, data and held-out images."""

    testbed: str  # the models are "<testbed>/<name>", shipped in guided_diffusion/models/<testbed>/
    models: dict[str, dict]  # name -> spec
    sample_flags: dict[str, dict]  # diffusion model -> the main job's defaults with it
    write_data: Callable[[Path], dict[str, str]]  # writes train/, test/, train.npz, test.npz; returns npz sha256s
    data: str  # the manifests' description of the training data
    held_out: Callable[[Path], tuple[np.ndarray, np.ndarray]]  # (data folder) -> uint8 NHWC images, labels
    # diffusion models: FID of this many unguided samples vs test.npz in the space of the "features" model, beside
    # the train-vs-test floor, and a per-class grid <name>_samples.png (evaluation.held_out.unguided_quality)
    quality_samples: int = 0

    @property
    def made_by(self) -> str:
        return f"python scripts/train_{self.testbed}_models.py"


# --------------------------------------------------------------------------------------------- the specs


def classifier_spec(iterations: int, seed: int, noised: bool, base: dict, save_interval: int = 0, **arch) -> dict:
    """A classifier's spec: ``base`` flags (noise schedule, training), the architecture's, ``noised`` (a guide)
    or clean (an evaluation network, with random crops); a checkpoint every ``save_interval`` steps (0: at the
    end only)."""
    return dict(script="classifier_train", kind="classifier", steps=iterations,
                flags={**base, **arch, "noised": noised, "iterations": iterations,
                       "save_interval": save_interval or iterations, "random_crop": not noised, "seed": seed})


def command(spec: dict, data_dir: Path) -> list[str]:
    """The training command of a model spec (an entry of MODELS)."""
    flags = {"data_dir": data_dir / spec.get("data", "train"), **spec["flags"]}
    return [sys.executable, f"scripts/{spec['script']}.py", *[str(a) for k, v in flags.items() for a in (f"--{k}", v)]]


def final_checkpoint(spec: dict) -> str:
    """The file of the run folder that is shipped."""
    steps = spec["steps"]
    return f"{spec['weights']}_{steps:06d}.pt" if spec["kind"] == "diffusion" else f"model{steps:06d}.pt"


def checkpoint_files(spec: dict, step: int) -> list[str]:
    """The files the training scripts write at ``step``: weights, optimizer state and (diffusion) each EMA."""
    names = [f"model{step:06d}.pt", f"opt{step:06d}.pt"]
    if spec["kind"] == "diffusion":
        names += [f"ema_{rate}_{step:06d}.pt" for rate in parse_ema_rate(spec["flags"]["ema_rate"])]
    return names


def _loads(path: Path) -> bool:
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:  # torn by an interruption while it was written, or not a checkpoint  # noqa: BLE001
        return False


def latest_checkpoint(spec: dict, run_dir: Path) -> int:
    """The latest step whose checkpoint files are all there and load (0: none)."""
    found = (re.fullmatch(r"model(\d+)\.pt", p.name) for p in run_dir.glob("model*.pt"))
    steps = sorted({int(m.group(1)) for m in found if m}, reverse=True)
    for step in steps:
        if all((run_dir / name).is_file() and _loads(run_dir / name) for name in checkpoint_files(spec, step)):
            return step
    return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sessions(run_dir: Path) -> list[dict]:
    path = run_dir / SESSIONS
    return json.loads(path.read_text()) if path.is_file() else []


class Stopper:
    """Stops a run cleanly: the training scripts it started are sent SIGTERM and no further one starts."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()

    def stop(self, *_: object) -> None:  # also a signal handler
        with self._lock:
            self.stopped.set()
            for process in self._running:
                process.send_signal(signal.SIGTERM)

    def start(self, argv: list[str], **kwargs) -> subprocess.Popen | None:
        """``subprocess.Popen(argv, **kwargs)``, unless the run is stopping (None)."""
        with self._lock:
            if self.stopped.is_set():
                return None
            process = subprocess.Popen(argv, **kwargs)
            self._running.add(process)
            return process

    def finished(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(process)


def train(name: str, spec: dict, work_dir: Path, data_dir: Path, threads: int, stopper: Stopper | None = None
          ) -> float:
    """Train a spec into ``work_dir/name``, resuming from its latest complete checkpoint, unless it is finished;
    returns the seconds of all its sessions. Once ``stopper`` is stopped, a model it stopped or never started is
    left where it is instead of raising."""
    stopper = stopper or Stopper()
    run_dir = work_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    start_step = latest_checkpoint(spec, run_dir)
    if start_step < spec["steps"]:
        argv = command(spec, data_dir)
        if start_step:
            argv += ["--resume_checkpoint", str(run_dir / f"model{start_step:06d}.pt")]
        env = {**os.environ, "OPENAI_LOGDIR": str(run_dir), "OPENAI_LOG_FORMAT": "log,csv",
               "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        lock = run_dir / LOCK
        if lock.is_file() and _alive(int(lock.read_text() or 0)):
            raise RuntimeError(f"{name} is being trained by process {lock.read_text()} ({lock}); let it finish "
                               f"or stop it first")
        start = time.perf_counter()
        with open(work_dir / f"{name}.out", "a") as out:
            process = stopper.start(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            if process is None:
                return sum(s["seconds"] for s in sessions(run_dir))
            out.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}: from step {start_step}\n")
            out.flush()
            lock.write_text(str(process.pid))
            try:
                returncode = process.wait()
            finally:
                lock.unlink(missing_ok=True)
                stopper.finished(process)
        end_step = latest_checkpoint(spec, run_dir)
        record = sessions(run_dir) + [{"from_step": start_step, "to_step": end_step,
                                       "seconds": round(time.perf_counter() - start, 1)}]
        (run_dir / SESSIONS).write_text(json.dumps(record, indent=1) + "\n")
        if (returncode or end_step < spec["steps"]) and not stopper.stopped.is_set():
            raise RuntimeError(f"{name}: training stopped at step {end_step} of {spec['steps']} (exit "
                               f"{returncode}; {work_dir / f'{name}.out'}); run again to resume")
    return sum(s["seconds"] for s in sessions(run_dir))


# ----------------------------------------------------------------------------------------------- packaging


def build(spec: dict) -> tuple[dict, torch.nn.Module, object]:
    """A spec's network flags (as its manifest records them), network and diffusion (None for an autoencoder)."""
    flags = spec["flags"]
    if spec["kind"] == "autoencoder":
        built = {k: flags.get(k, v) for k, v in autoencoder.DEFAULTS.items()}
        return built, autoencoder.build(built), None
    if spec["kind"] == "diffusion":
        defaults = su.model_and_diffusion_defaults()
        flags = {**defaults, **{k: v for k, v in flags.items() if k in defaults}}
        net, diffusion = su.create_model_and_diffusion(**flags)
        return flags, net, diffusion
    defaults = su.classifier_and_diffusion_defaults()
    built = {**defaults, **{k: v for k, v in flags.items() if k in defaults}}
    noise = {k: v for k, v in built.items() if k in su.diffusion_defaults()}
    diffusion = su.create_gaussian_diffusion(steps=noise.pop("diffusion_steps"), **noise)
    if flags.get("classifier_arch", ADM) != ADM:  # a torchvision network: ADM's encoder flags do not apply
        built = {k: v for k, v in built.items() if not k.startswith("classifier_")}
        built["classifier_arch"] = flags["classifier_arch"]
    return built, build_classifier(built), diffusion


def package(models: ModelSet, name: str, work_dir: Path, data_dir: Path, seconds: float, data_hashes: dict,
            out_dir: Path) -> dict:
    """Store a trained model as float16 weights with its manifest in ``out_dir``; return the manifest."""
    spec = models.models[name]
    steps = spec["steps"]
    build_flags, net, diffusion = build(spec)
    state = torch.load(work_dir / name / final_checkpoint(spec), map_location="cpu", weights_only=True)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(half, out_dir / f"{name}.pt")
    net.load_state_dict(half)  # what is shipped, in float32
    images, labels = models.held_out(data_dir)
    manifest = {
        "name": f"{models.testbed}/{name}",
        "kind": spec["kind"],
        "flags": {k: v for k, v in build_flags.items() if k != "timestep_respacing"},
        "training": {"command": " ".join(str(c) for c in command(spec, Path(f"data/{models.testbed}"))[1:]),
                     "made_by": models.made_by, "steps": steps, "seconds": round(seconds),
                     "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
                     "data": models.data, "train_npz_sha256": data_hashes["train"]},
        "held_out": held_out_metrics(spec["kind"], net, diffusion, images, labels,
                                     noised=spec["flags"].get("noised", True)),
        "num_params": sum(v.numel() for v in half.values()),
        "weights": "float16 state dict",
    }
    runs = sessions(work_dir / name)
    if len(runs) > 1:
        manifest["training"]["sessions"] = runs
    if spec["kind"] == "diffusion":
        manifest["sample_flags"] = models.sample_flags[name]
        manifest["weights"] += f" ({spec['weights']} at step {steps})"
        guide = load_classifier(str(out_dir / f"{models.sample_flags[name]['classifier_path'].split('/')[-1]}.pt"))
        gap = default_job_channel_gap(net, manifest, guide[0])
        manifest["default_job_channel_gap"] = {"mean": float(gap.mean()), "share_above_5": float((gap > 5).mean()),
                                               "samples": len(gap), "per_sample": [round(float(g), 3) for g in gap]}
        if models.quality_samples:
            features = ClassifierExtractor(*load_classifier(str(out_dir / "features.pt")), device="cpu")
            test, train_images = read_npz(data_dir / "test.npz"), read_npz(data_dir / "train.npz")["arr_0"]
            metrics, grid = unguided_quality(net, manifest, features, test["arr_0"], train_images,
                                             models.quality_samples)
            manifest["unguided"] = {**metrics, "features": f"{models.testbed}/features",
                                    "grid": f"{name}_samples.png"}
            Image.fromarray(grid).save(out_dir / f"{name}_samples.png")
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ------------------------------------------------------------------------------------------ the whole run


def schedule(durations: dict[str, float], jobs: int) -> tuple[float, dict[str, float]]:
    """When each model finishes if trained in the given order on ``jobs`` lanes, each taking the next model
    when it is free (as :func:`run` does); returns the makespan and each model's finish time."""
    lanes = [0.0] * jobs
    finish = {}
    for name, seconds in durations.items():
        lane = lanes.index(min(lanes))
        lanes[lane] += seconds
        finish[name] = lanes[lane]
    return max(lanes, default=0.0), finish


def argparser(models: ModelSet, doc: str) -> argparse.ArgumentParser:
    names = ",".join(models.models)
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=names, help=f"comma-separated subset of {names}")
    parser.add_argument("--work_dir", default=f"runs/{models.testbed}_models",
                        help="training logs and checkpoints (a second run resumes from them)")
    parser.add_argument("--out_dir", default=str(MODELS_DIR / models.testbed))
    parser.add_argument("--jobs", type=int, default=1, help="models trained at once (threads split between them)")
    parser.add_argument("--train_only", action="store_true", help="train (or resume); package nothing")
    parser.add_argument("--package_only", action="store_true", help="skip training; package existing checkpoints")
    parser.add_argument("--seconds", default="", help="with --package_only, training seconds of models not shipped "
                        "before and without a sessions record: name=seconds,...")
    parser.add_argument("--hours", type=float, default=0.0, help="stop cleanly after this many hours (0: no limit): "
                        "each model saves the step it is on; run the same command again to resume")
    return parser


def train_until_stopped(models: ModelSet, names: list[str], work_dir: Path, data_dir: Path, jobs: int,
                        stopper: Stopper, hours: float = 0.0) -> dict[str, float]:
    """Train ``names``, ``jobs`` at a time, until they are done or ``stopper`` stops the run (after ``hours`` if
    given, or on a stop signal); each model's seconds of training."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    previous = {s: signal.signal(s, stopper.stop) for s in STOP_SIGNALS}
    timer = threading.Timer(hours * 3600, stopper.stop)
    timer.daemon = True
    if hours > 0:
        timer.start()
    try:
        with ThreadPoolExecutor(jobs) as pool:
            return dict(zip(names, pool.map(lambda n: train(n, models.models[n], work_dir, data_dir, threads,
                                                            stopper), names), strict=True))
    finally:
        timer.cancel()
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(models: ModelSet, argv: list[str] | None = None, doc: str = "") -> None:
    """Prepare the data, train (or resume) the models given, then package each one trained since it was last
    packaged (the guides first: the diffusion models' channel-gap check samples with them)."""
    args = argparser(models, doc).parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(models.models)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {', '.join(models.models)}")
    work_dir, out_dir = Path(args.work_dir).resolve(), Path(args.out_dir)
    data_dir = work_dir / "data"
    hashes = models.write_data(data_dir)
    seconds = {n: sum(s["seconds"] for s in sessions(work_dir / n)) for n in names}
    seconds.update({k: float(v) for k, v in (item.split("=") for item in args.seconds.split(",") if item)})
    if not args.package_only:
        stopper = Stopper()
        seconds.update(train_until_stopped(models, names, work_dir, data_dir, args.jobs, stopper, args.hours))
        steps = {n: (latest_checkpoint(models.models[n], work_dir / n), models.models[n]["steps"])
                 for n in names} if stopper.stopped.is_set() else {}  # otherwise every model finished
        if any(done < total for done, total in steps.values()):
            print(f"stopped; steps trained: {', '.join(f'{n} {d}/{t}' for n, (d, t) in steps.items())}; nothing "
                  f"packaged. Run the same command again to resume.")
            return
    if args.train_only:
        return
    for name in sorted(names, key=lambda n: models.models[n]["kind"] == "diffusion"):
        previous = out_dir / f"{name}.json"
        source = work_dir / name / final_checkpoint(models.models[name])
        if not args.package_only and previous.is_file() and previous.stat().st_mtime > source.stat().st_mtime:
            print(f"{models.testbed}/{name}: packaged after its last training; kept")
            continue
        if args.package_only and previous.is_file() and not seconds[name]:
            seconds[name] = json.loads(previous.read_text())["training"]["seconds"]
        manifest = package(models, name, work_dir, data_dir, seconds[name], hashes, out_dir)
        print(f"{models.testbed}/{name}: {manifest['num_params']} parameters, {seconds[name]:.0f} s, "
              f"held out {manifest['held_out']}")


# -------------------------------------------------------------------------------------- measuring the cost


def seconds_per_step(spec: dict, steps: int = 3, warmup: int = 1, precision: str = "fp32") -> dict[str, float]:
    """The cost of one training step of a spec (the training loop's own step on random data of the spec's shape):
    ``cpu`` (process CPU seconds, which contention on other cores barely changes) and ``wall`` seconds, each
    the mean of ``steps`` steps after ``warmup``. ``precision``: ``fp32``, ``bf16`` (the diffusion loop's
    ``use_bf16``: bf16 weights, fp32 master copy), ``autocast`` (bf16 autocast around the step) or ``forward``
    (a forward pass in fp32 without gradient: a sampling step's cost)."""
    _, net, diffusion = build(spec)
    flags = spec["flags"]
    size, batch = flags["image_size"], flags["batch_size"]
    num_classes = flags.get("num_classes", 10)
    generator = torch.Generator().manual_seed(0)

    def batches():
        while True:
            x = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
            yield x, {"y": torch.randint(0, num_classes, (batch,), generator=generator)}

    data = batches()
    if spec["kind"] == "autoencoder":
        optimizer = torch.optim.Adam(net.parameters(), lr=flags["lr"])

        def step():
            autoencoder.train_step(net, optimizer, next(data)[0])
    elif spec["kind"] == "diffusion":
        loop = TrainLoop(model=net, diffusion=diffusion, data=data, batch_size=batch, microbatch=-1, lr=flags["lr"],
                         ema_rate=flags["ema_rate"], log_interval=10**9, save_interval=10**9, resume_checkpoint="",
                         use_bf16=precision == "bf16")

        def step():
            x, cond = next(data)
            loop.run_step(x, cond if flags.get("class_cond") else {})
    else:
        loop = ClassifierTrainLoop(model=net, diffusion=diffusion, data=data, batch_size=batch, lr=flags["lr"],
                                   iterations=10**9, noised=flags["noised"])

        def step():
            loop.forward_backward_log(data)
            loop.mp_trainer.optimize(loop.opt)

    if precision == "forward":  # sampling's cost: one forward pass, no gradient
        net.eval()
        x, cond = next(data)
        t = torch.zeros(batch, dtype=torch.long)
        kwargs = {"y": cond["y"]} if flags.get("class_cond") else {}

        def step():
            with torch.no_grad():
                net(x, t, **kwargs)

    def timed():
        if precision == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                step()
        else:
            step()

    for _ in range(warmup):
        timed()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        timed()
    return {"cpu": (time.process_time() - cpu) / steps, "wall": (time.perf_counter() - wall) / steps}
