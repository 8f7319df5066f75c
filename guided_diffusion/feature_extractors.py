"""Moved to guided_diffusion.evaluation.feature_extractors; this path is kept for code that imports it."""

from .evaluation.feature_extractors import (  # noqa: F401
    EXTRACTORS,
    INCEPTION_SIZE,
    INCEPTION_WEIGHTS_FILE,
    INCEPTION_WEIGHTS_URL,
    SPATIAL_CHANNELS,
    ClassifierExtractor,
    ExtractorFactory,
    FeatureExtractor,
    InceptionExtractor,
    InceptionV3TF,
    WeightsUnavailableError,
    cache_dir,
    create_extractor,
    download_file,
    fetch_weights,
    load_classifier,
    load_inception,
    register_extractor,
)
