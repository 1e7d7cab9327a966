"""Request and response models: the public contract (LibreTranslate- and
Hugging Face-compatible where those exist). Limits that depend on settings are checked
in app.limits, so the schema stays static."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_BEAM = 8


class ClientBody(BaseModel):
    """A request body. JSON can carry lone surrogates ("\\ud800"): valid in a Python str,
    but no tokenizer, cache key or response can encode them, so they are refused."""

    @field_validator("*", mode="after")
    @classmethod
    def _encodable(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("text is not valid Unicode (a lone surrogate)") from None
        return value


class TranslateRequest(ClientBody):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"q": "A dog runs on the beach.", "source": "en", "target": "de"}]
        },
    )

    q: str | list[str] = Field(description="text, or a list of texts translated in order")
    source: str = Field(description="source language code, or 'auto' to detect it")
    target: str = Field(description="target language code")
    format: Literal["text", "html"] = "text"
    alternatives: int = Field(0, ge=0, le=MAX_BEAM - 1, description="extra n-best outputs")
    api_key: str | None = Field(None, description="accepted for LibreTranslate compatibility")
    beam_size: int | None = Field(None, ge=1, le=MAX_BEAM, description="1 = greedy")
    max_length: int | None = Field(None, ge=1, le=1000, description="cap on output tokens")


class DetectedLanguage(BaseModel):
    language: str
    confidence: float = Field(description="0-100")


class TranslateResponse(BaseModel):
    translatedText: str | list[str]
    alternatives: list[str] | list[list[str]] | None = None
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None
    model: str
    version: int
    cached: bool | list[bool]
    score: float | list[float] = Field(description="mean log-probability per output token")


class FileTranslation(BaseModel):
    translatedFileUrl: str = Field(description="GET it for the translated file (expires)")


class DetectRequest(ClientBody):
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"q": "Ein Hund läuft am Strand."}]}
    )
    q: str | list[str]
    api_key: str | None = None


class SuggestRequest(ClientBody):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"q": "A dog runs.", "s": "Ein Hund rennt.", "source": "en", "target": "de"}
            ]
        },
    )
    q: str = Field(description="the original text")
    s: str = Field(description="the suggested translation")
    source: str = Field(description="language of q")
    target: str = Field(description="language of s")
    api_key: str | None = None


class SuggestResponse(BaseModel):
    success: bool


class FrontendLanguage(BaseModel):
    code: str
    name: str


class FrontendLanguages(BaseModel):
    source: FrontendLanguage
    target: FrontendLanguage


class FrontendSettings(BaseModel):
    """LibreTranslate's GET /frontend/settings, filled from this service's settings."""

    charLimit: int = Field(description="characters per text (MAX_TEXT_CHARS)")
    frontendTimeout: int = Field(description="milliseconds of typing pause before translating")
    apiKeys: bool = Field(description="API keys are configured")
    keyRequired: bool = Field(description="every inference request needs a key")
    suggestions: bool = Field(description="POST /suggest is accepted")
    filesTranslation: bool = Field(description="POST /translate_file is accepted")
    supportedFilesFormat: list[str] = Field(description="file extensions /translate_file takes")
    language: FrontendLanguages


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class SentimentParameters(ClientBody):
    top_k: int | None = Field(None, ge=1, description="labels per input; all when omitted")


class SentimentRequest(ClientBody):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"inputs": "a gorgeous, witty, seductive movie ."}]},
    )
    inputs: str | list[str]
    parameters: SentimentParameters | None = None


class LabelScore(BaseModel):
    label: str
    score: float


class AttentionRequest(ClientBody):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"task": "translation", "text": "A man sleeps.", "source": "en", "target": "de"}
            ]
        },
    )
    task: Literal["translation", "sentiment"]
    text: str
    source: str | None = None
    target: str | None = None
    layers: list[int] | None = Field(None, description="layer indexes; all when omitted")
    heads: list[int] | None = Field(None, description="head indexes; all when omitted")
    format: Literal["json", "png"] = "json"
    average_heads: bool = Field(False, description="PNG: one averaged map instead of one per head")


class Token(BaseModel):
    piece: str
    start: int
    end: int


Matrix = list[list[list[list[float]]]]  # [layer][head][query][key]


class TranslationAttention(BaseModel):
    task: Literal["translation"] = "translation"
    model: str
    version: int
    translation: str
    source_tokens: list[Token]
    target_tokens: list[Token]
    layers: list[int]
    heads: list[int]
    encoder_attention: Matrix
    decoder_attention: Matrix
    cross_attention: Matrix


class SentimentAttention(BaseModel):
    task: Literal["sentiment"] = "sentiment"
    model: str
    version: int
    tokens: list[Token]
    label: str
    score: float
    layers: list[int]
    heads: list[int]
    attention: Matrix


class ReadWindow(BaseModel):
    """What a classifier reads of a text: at most `pieces` subword pieces; of a longer
    text its first `head` and its last `tail` pieces."""

    pieces: int
    head: int
    tail: int


class ModelInfo(BaseModel):
    task: str
    name: str
    version: int
    loaded_at: str
    load_seconds: float
    metrics: dict[str, object]
    path: str
    engine: str | None = Field(
        None, description="translation: what decodes it, e.g. ctranslate2/int8 on cpu"
    )
    reads: ReadWindow | None = None  # classifiers


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    reasons: list[str] = []
    models: list[str] = []


class ErrorResponse(BaseModel):
    error: str
    error_type: str
