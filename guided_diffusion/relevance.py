"""Moved to guided_diffusion.progressive.relevance; this path is kept for code that imports it."""

from .progressive.relevance import (  # noqa: F401
    CLASS_DESCRIPTIONS_DIR,
    DEFAULT_ENCODER,
    EncoderUnavailable,
    OpenClipEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    classifier_confusion,
    cosine_similarity,
    create_encoder,
    description_texts,
    descriptions_hash,
    load_descriptions,
    load_relevance,
    relevance_from_confusion,
    relevance_from_descriptions,
    remove_stop_words,
    save_relevance,
    shape_relevance,
    shaping_name,
    shipped_relevance,
)
