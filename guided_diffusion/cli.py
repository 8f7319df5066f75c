"""What every script shares on the command line: the flags of shipped models and of ADM's released checkpoints
applied by name, bad input reported as one ``error:`` line instead of a traceback (bad flags too:
:class:`ScriptParser`), and --help in groups with every default shown."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable, Iterable
from typing import NoReturn

from . import dist_util
from .checkpoints import CheckpointError
from .flags import explicit_flags  # noqa: F401  (the scripts take it from here)
from .models import is_shipped, manifest, shipped_names
from .models.released import RELEASED, released
from .script_util import classifier_defaults, model_and_diffusion_defaults, sr_model_and_diffusion_defaults

# how a checkpoint is run (or trained on), not what it is: a value given for these wins without a word
RUN_FLAGS = frozenset({"use_fp16", "classifier_use_fp16", "use_checkpoint", "dropout"})
KIND_DEFAULTS: dict[str, Callable[[], dict]] = {"diffusion": model_and_diffusion_defaults,
                                                "classifier": classifier_defaults,
                                                "superres": sr_model_and_diffusion_defaults}


def checkpoint_manifest(name: str) -> dict | None:
    """What a shipped model's name or a released ADM checkpoint (``adm/64x64_diffusion``, or any path whose file
    name is a released file's) says of itself: ``name``, ``kind`` and ``flags`` (for a released checkpoint every
    flag of its kind's network, the ADM README's over the defaults); None for any other path."""
    if is_shipped(name):
        return manifest(name)
    entry = released(name)
    if entry is None:
        return None
    defaults = {k: v for k, v in KIND_DEFAULTS[entry.kind]().items() if k != "timestep_respacing"}
    return {"name": entry.name, "file": entry.file, "kind": entry.kind, "flags": {**defaults, **entry.flags}}


def apply_shipped_flags(args: argparse.Namespace, explicit: set[str], name: str, keys, kind: str | None = None,
                        flag: str = "", info: dict | None = None) -> None:
    """For a shipped model ``name`` or a released ADM checkpoint (:func:`checkpoint_manifest`), set the flags
    among ``keys`` that were not given to its manifest's values (``flags``, then ``sample_flags``), so that
    ``--model_path digits/cadm`` or ``--model_path models/64x64_diffusion.pt`` alone builds the right network.
    A flag in ``explicit`` (given) that contradicts the checkpoint's network is a ValueError naming both values
    (the :data:`RUN_FLAGS` excepted); the flags it fixes then count as given, so that a later checkpoint (the
    classifier after the model) that needs another image size is one too. With ``kind`` (``diffusion``,
    ``classifier`` or ``superres``), a checkpoint of another kind is a ValueError naming ``flag``. ``info``
    stands in for the registry's manifest (a model about to be shipped)."""
    info = info or checkpoint_manifest(name)
    if info is None:
        return
    what = f"{flag or 'the checkpoint'} {name}"
    if kind and info.get("kind", kind) != kind:
        raise ValueError(f"{what} is a {info['kind']} model, not a {kind} model; {kind} models by name: "
                         f"{', '.join(names_of_kind(kind)) or 'none'}")
    fixed = {k: v for k, v in _network_flags(info["flags"]).items() if k in keys}
    wrong = [f"--{k} {v} (not {getattr(args, k)})" for k, v in fixed.items()
             if k in explicit and getattr(args, k) != v]
    if wrong:
        origin = f"ADM's {info['file']}" if "file" in info else f"the shipped {info.get('name', name)}"
        raise ValueError(f"{what} is {origin}, made with {', '.join(wrong)}; its name sets these flags: drop "
                         "them from the command line, or pass checkpoints that fit each other")
    for key, value in {**info["flags"], **info.get("sample_flags", {})}.items():
        if key in keys and key not in explicit:
            setattr(args, key, value)
    explicit.update(fixed)


def names_of_kind(kind: str) -> list[str]:
    """The shipped models and released ADM checkpoints of ``kind``, by name."""
    return ([n for n in shipped_names() if manifest(n).get("kind") == kind]
            + [r.name for r in RELEASED.values() if r.kind == kind])


def _network_flags(flags: dict) -> dict:
    """The flags that a checkpoint's weights fix: all but :data:`RUN_FLAGS` and, for a model without classes,
    its number of classes."""
    free = RUN_FLAGS | ({"num_classes", "label_dropout"} if flags.get("class_cond") is False else set())
    return {k: v for k, v in flags.items() if k not in free}


INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, CheckpointError)
USAGE_HINT = "(--help for all options)"  # the line after an error: where to look


def run_main(main: Callable[[], object], errors: tuple[type[BaseException], ...] = INPUT_ERRORS) -> None:
    """Run a script's ``main``; a bad input (one of ``errors``) exits with its message and a usage hint (as
    :class:`ScriptParser` does for a bad flag), not a traceback."""
    try:
        main()
    except errors as exc:
        # a bad input is the same on every rank: rank 0 alone says so (mpiexec stops the others)
        hint = f"usage: {os.path.basename(sys.argv[0])} {USAGE_HINT}"
        sys.exit(f"error: {exc}\n{hint}" if _launch_rank() == 0 else 1)


def _launch_rank() -> int:
    """This process's rank, also before the process group exists (from the launcher's environment)."""
    if dist_util.is_distributed():
        return dist_util.get_rank()
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def shown(value: object) -> str:
    """A default as --help writes it."""
    return "empty" if value == "" else "none" if value is None else str(value)


class FlagHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help with each flag's default after its help text (``notes``: dest -> what to write instead), and a
    one-line usage (the options are listed below it)."""

    def __init__(self, prog: str, notes: dict[str, str] | None = None) -> None:
        super().__init__(prog, max_help_position=34)
        self.notes = notes or {}

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.nargs == 0 or action.default is argparse.SUPPRESS \
                or "%(default)" in text or "default:" in text:  # (a help text that names its default itself)
            return text
        default = self.notes.get(action.dest) or shown(action.default)
        default = default.replace("%", "%%")  # help strings are %-formatted
        return f"{text} (default: {default})" if text else f"default: {default}"

    def add_usage(self, usage: str | None, actions: Iterable[argparse.Action], groups: Iterable,
                  prefix: str | None = None) -> None:
        if usage is None:
            positionals = [self._format_args(a, a.dest) for a in actions if not a.option_strings]
            usage = " ".join(["%(prog)s", "[options]", *positionals])
        super().add_usage(usage, actions, groups, prefix)


class ScriptParser(argparse.ArgumentParser):
    """The scripts' parser: a bad flag is one ``error:`` line and a usage hint (on rank 0 alone), not the usage
    of every flag; --help groups the flags and shows their defaults. ``default_notes()``, called when help is
    shown, gives what to write as the default of some flags (dest -> text), e.g. a shipped model's value."""

    def __init__(self, *args, default_notes: Callable[[], dict[str, str]] | None = None, **kwargs) -> None:
        self.default_notes = default_notes
        self._notes: dict[str, str] | None = None
        super().__init__(*args, **kwargs)

    def _get_formatter(self) -> argparse.HelpFormatter:
        return FlagHelpFormatter(self.prog, self._notes)

    def format_help(self) -> str:
        self._notes = self.default_notes() if self.default_notes else None  # only for help: it may read files
        try:
            return super().format_help()
        finally:
            self._notes = None

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            known = [s for action in self._actions for s in action.option_strings]
            flags = [word.split("=")[0] for word in message.split()[2:] if word.startswith("--")]
            close = [match for flag in flags for match in difflib.get_close_matches(flag, known, n=1, cutoff=0.8)]
            if close:
                message += f" (did you mean {close[0]}?)"
        usage = self.format_usage().strip()
        self.exit(2, f"error: {message}\n{usage} {USAGE_HINT}\n" if _launch_rank() == 0 else None)
