"""Language codes and names, and the choice of a model for a language pair."""

from __future__ import annotations

from app.errors import BadRequest, ModelLoading, UnsupportedLanguage
from app.registry import ModelRegistry, ServedModel

NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}


AUTO_NAME = "Auto Detect"  # LibreTranslate's name for the 'auto' source


def language_name(code: str) -> str:
    if code == "auto":
        return AUTO_NAME
    return NAMES.get(code, code)


def pairs(registry: ModelRegistry) -> list[tuple[str, str]]:
    return sorted((m.predictor.source, m.predictor.target) for m in registry.of_task("translation"))


def frontend_pair(registry: ModelRegistry, source: str, target: str) -> tuple[str, str]:
    """The pair a front end preselects: the preferred codes where they are served, else the
    first served ones ('auto' as the source only when a language identifier is loaded)."""
    served = pairs(registry)
    if source == "auto" and registry.of_task("langid"):
        chosen = "auto"
    elif source in {s for s, _ in served} or not served:
        chosen = source
    else:
        chosen = served[0][0]
    targets = [t for s, t in served if chosen in ("auto", s)]
    if target in targets or not targets:
        return chosen, target or "en"
    return chosen, targets[0]


def translation_model(registry: ModelRegistry, source: str, target: str) -> ServedModel:
    for served in registry.of_task("translation"):
        if (served.predictor.source, served.predictor.target) == (source, target):
            return served
    if any(pair in (None, (source, target)) for pair in registry.pending_of_task("translation")):
        raise ModelLoading(f"the {source}->{target} model is loading; retry shortly")
    supported = ", ".join(f"{s}->{t}" for s, t in pairs(registry)) or "none loaded"
    raise UnsupportedLanguage(
        f"language pair {source}->{target} is not supported; supported pairs: {supported}"
    )


def langid_model(registry: ModelRegistry) -> ServedModel:
    models = registry.of_task("langid")
    if not models and registry.pending_of_task("langid"):
        raise ModelLoading("the language identifier is loading; retry shortly")
    if not models:
        raise BadRequest("language detection is unavailable: no language identifier is loaded")
    return models[0]
