"""GET /frontend/settings: what LibreTranslate's web front end asks before it starts."""

from __future__ import annotations

from fastapi import APIRouter

from app import languages
from app.access import parse_keys
from app.deps import RegistryDep, SettingsDep
from app.formats import supported_formats
from app.schemas import FrontendLanguage, FrontendLanguages, FrontendSettings

router = APIRouter(tags=["frontend"])


def _language(code: str) -> FrontendLanguage:
    return FrontendLanguage(code=code, name=languages.language_name(code))


@router.get("/frontend/settings", response_model=FrontendSettings)
async def frontend_settings(settings: SettingsDep, registry: RegistryDep) -> FrontendSettings:
    """Limits, features and the preselected languages (LibreTranslate's shape)."""
    keyed = bool(parse_keys(settings.api_keys))
    source, target = languages.frontend_pair(
        registry, settings.frontend_language_source, settings.frontend_language_target
    )
    return FrontendSettings(
        charLimit=settings.max_text_chars,
        frontendTimeout=settings.frontend_timeout_ms,
        apiKeys=keyed,
        keyRequired=keyed,
        suggestions=settings.suggestions,
        filesTranslation=settings.files_translation,
        supportedFilesFormat=supported_formats() if settings.files_translation else [],
        language=FrontendLanguages(source=_language(source), target=_language(target)),
    )
