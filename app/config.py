"""Settings: the one place that reads the environment (and an optional .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SHIPPED_ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", protected_namespaces=())

    # Models
    artifacts_dir: Path = Field(SHIPPED_ARTIFACTS, description="root of <task>/<name>/<version>/")
    model_versions: str = Field(
        "", description="pinned versions, e.g. 'translation/en-de=4,sentiment/en=1'"
    )
    model_poll_seconds: float = Field(30.0, ge=0, description="0 disables polling for versions")
    sentiment_model: str = Field(
        "en",
        description="name of the sentiment model /sentiment serves when it is loaded; "
        "otherwise the first loaded one",
    )
    device: Literal["auto", "cpu", "gpu"] = "auto"
    translation_engine: Literal["ctranslate2", "keras"] = Field(
        "ctranslate2",
        description="ctranslate2: the export inside each translation version (the Keras "
        "decoder serves a version without one); keras: the reference decoder",
    )
    engine_compute_type: Literal[
        "auto", "int8", "int8_float32", "float32", "float16", "int8_float16", "bfloat16"
    ] = Field(
        "auto",
        description="auto: int8 on a CPU (int8_float16 on a GPU) when the version's export "
        "check found it within 0.3 BLEU of float32, else float32 (float16 on a GPU)",
    )
    engine_inter_threads: int | None = Field(
        None, ge=1, le=64, description="batches decoded at once per model; unset: 2 on a CPU"
    )
    engine_intra_threads: int = Field(
        1, ge=1, le=64, description="threads per batch (int8 with more than 1 runs slower)"
    )
    # Batching
    max_batch_size: int | None = Field(
        None, ge=1, le=1024, description="items per model call; unset: 32 on a CPU, 128 on a GPU"
    )
    max_batch_wait_ms: float = Field(5.0, ge=0, le=1000)
    max_queue_size: int = Field(512, ge=1, description="queued items per model before 503")

    # Cache
    redis_url: str | None = Field(None, description="e.g. redis://localhost:6379/0")
    cache_ttl_seconds: int = Field(86_400, ge=1)
    cache_max_items: int = Field(10_000, ge=0, description="in-process LRU size without Redis")
    redis_timeout_seconds: float = Field(0.25, gt=0)
    redis_retry_seconds: float = Field(5.0, ge=0, description="pause after a Redis failure")

    # Limits
    max_text_chars: int = Field(2_000, ge=1)
    max_sentences_per_text: int = Field(50, ge=1, description="sentences (or lines) per text")
    max_sentiment_chars: int = Field(
        20_000,
        ge=1,
        description="characters per /sentiment text (whole reviews); the model reads a bounded "
        "number of pieces of it, the first and the last ones (GET /models: reads)",
    )
    max_items_per_request: int = Field(64, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1_024)
    request_timeout_seconds: float = Field(30.0, gt=0, description="deadline; then 504")

    # Files (POST /translate_file)
    max_file_bytes: int = Field(5_000_000, ge=1_024, description="uploaded file size")
    max_file_chars: int = Field(100_000, ge=1, description="text to translate in one file")
    max_file_unpacked_bytes: int = Field(
        50_000_000, ge=1_024, description="a .docx's declared uncompressed size (zip bombs)"
    )
    file_chunk_sentences: int = Field(
        32, ge=1, description="a file's sentences go to the batcher this many at a time"
    )
    file_store_dir: Path | None = Field(
        None, description="translated files; unset: a temporary folder removed at shutdown"
    )
    file_store_ttl_seconds: int = Field(3_600, ge=1, description="then downloads give 404")
    file_store_max_files: int = Field(256, ge=1, description="oldest removed beyond this")
    file_store_max_bytes: int = Field(500_000_000, ge=1_024, description="oldest removed beyond")

    # Decoding defaults
    default_beam_size: int = Field(4, ge=1, le=8)
    max_output_tokens: int = Field(200, ge=1, le=1000)

    # Access
    api_keys: str = Field("", description="comma-separated keys; empty: no key needed")
    rate_limit_per_minute: int = Field(0, ge=0, description="per key or client; 0: no limit")
    cors_origins: str = Field("", description="comma-separated allowed origins; empty: none")

    # Suggestions (POST /suggest): the user data the service keeps
    data_dir: Path = Field(Path("data"), description="the service's own files (SQLite)")
    suggestions: bool = Field(True, description="accept POST /suggest; off: 403")
    suggestions_database_url: str | None = Field(
        None,
        description="sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB; "
        "unset: sqlite in DATA_DIR/suggestions.sqlite3",
    )

    # Web front end (GET /frontend/settings, LibreTranslate's)
    files_translation: bool = Field(True, description="accept POST /translate_file")
    frontend_timeout_ms: int = Field(500, ge=0, description="typing pause before translating")
    frontend_language_source: str = Field("auto", description="preselected source language")
    frontend_language_target: str = Field(
        "", description="preselected target; empty: the first the source can go to"
    )

    keep_alive_seconds: int = Field(
        75,
        ge=1,
        description="idle keep-alive connections close after this; longer than a client's or "
        "load balancer's own idle timeout, so that they close first and never reuse a "
        "connection the service is closing",
    )
    malloc_arena_max: int = Field(
        2,
        ge=0,
        description="glibc malloc arenas (0: glibc's default of 8 per core); few arenas keep "
        "the memory of many request threads from growing apart",
    )
    malloc_trim_seconds: float = Field(
        60.0, ge=0, description="hand free heap pages back to the kernel this often; 0: never"
    )

    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value}")
        return value

    @field_validator("suggestions_database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("SUGGESTIONS_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    def suggestions_url(self) -> str:
        """The database URL; SQLite in DATA_DIR unless one is set."""
        if self.suggestions_database_url:
            return self.suggestions_database_url
        return f"sqlite:///{(self.data_dir / 'suggestions.sqlite3').resolve()}"

    def batch_size_for(self, device: str) -> int:
        if self.max_batch_size is not None:
            return self.max_batch_size
        return 128 if device == "gpu" else 32

    def pinned_versions(self) -> dict[str, int]:
        """'translation/en-de=3' -> {'translation/en-de': 3}."""
        pins: dict[str, int] = {}
        for entry in filter(None, (e.strip() for e in self.model_versions.split(","))):
            key, sep, version = entry.partition("=")
            if not sep or not version.strip().isdigit() or key.count("/") != 1:
                raise ValueError(f"MODEL_VERSIONS entry {entry!r} is not task/name=version")
            pins[key.strip()] = int(version)
        return pins
