"""Finds artifact versions, verifies and loads them, warms them up and swaps them.

Version policy: the latest version of each model, or the one pinned in MODEL_VERSIONS.
Models found on disk but not loaded yet are *pending*: a request for one gets 503 (retry,
possibly on another replica), never 400; at start-up /ready says not ready until every
model found is loaded or refused, and from SIGTERM on (draining) it says not ready again.
A version whose checksums do not verify (or that fails to load) is refused with a logged
reason and remembered, and the version already serving keeps serving. A poll loop picks
up new versions; the swap replaces the model atomically, and the old model's batcher
finishes its queued items before it stops, so no request is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app import metrics
from app.batching import Batcher
from app.config import Settings
from app.errors import ModelUnavailable
from model import artifacts

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    task: str
    name: str
    version: int
    path: str
    predictor: Any  # model.predictor.Translator or Classifier
    batcher: Batcher[Any, Any]
    manifest: dict[str, Any]
    load_seconds: float
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def key(self) -> str:
        return f"{self.task}/{self.name}"

    async def close(self) -> None:
        await self.batcher.close()  # finishes what it had queued
        self.predictor.close()


def configure_device(device: str) -> str:
    """Hides or requires the GPU before any model is built; returns the device."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if device == "gpu" and not gpus:
        raise RuntimeError("DEVICE=gpu but TensorFlow sees no GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    return "gpu" if gpus else "cpu"


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pins = settings.pinned_versions()
        self.models: dict[str, ServedModel] = {}
        self.refused: dict[str, set[int]] = {}
        self.problems: dict[str, str] = {}
        self.loading = True
        self.draining = False
        # key -> the language pair a model about to be loaded will serve (None: not a
        # translation model, or its manifest could not be read: it may serve any pair).
        self.pending: dict[str, tuple[str, str] | None] = {}
        self.device = "unknown"
        self._lock = asyncio.Lock()

    # Loading

    async def start(self) -> None:
        """Loads every model found (never raises: problems are reported by readiness)."""
        try:
            self.mark_pending()  # before TensorFlow loads: requests for them get 503 at once
            self.device = await asyncio.to_thread(configure_device, self.settings.device)
            log.info("device %s", self.device)
            await self.refresh()
        except Exception as error:
            log.exception("model loading failed")
            self.problems["startup"] = str(error)
        finally:
            self.loading = False
            self.pending.clear()

    def drain(self) -> None:
        """Shutting down: /ready turns 503 and no new version is loaded; models keep serving
        what reaches them until the server closes."""
        if not self.draining:
            log.info("draining: not ready any more")
        self.draining = True

    def mark_pending(self) -> None:
        root = self.settings.artifacts_dir
        for task, name in artifacts.list_models(root) if root.is_dir() else []:
            key = f"{task}/{name}"
            candidates = self._candidates(task, name)
            if key in self.models or not candidates:
                continue
            pair = None
            if task == "translation":
                try:
                    manifest = artifacts.read_manifest(candidates[0].path)
                    pair = (str(manifest["source_language"]), str(manifest["target_language"]))
                except (artifacts.ArtifactError, KeyError):
                    pair = None
            self.pending[key] = pair

    async def refresh(self) -> None:
        """Loads new or changed versions of every model under ARTIFACTS_DIR."""
        async with self._lock:
            root = self.settings.artifacts_dir
            found = artifacts.list_models(root) if root.is_dir() else []
            if not found:
                self.problems["artifacts"] = f"no models found under {root}"
                return
            self.problems.pop("artifacts", None)
            self.mark_pending()
            for task, name in found:
                try:
                    await self._refresh_one(task, name)
                finally:
                    self.pending.pop(f"{task}/{name}", None)

    def _candidates(self, task: str, name: str) -> list[artifacts.ArtifactRef]:
        key = f"{task}/{name}"
        versions = artifacts.list_versions(self.settings.artifacts_dir, task, name)
        if key in self.pins:
            versions = [v for v in versions if v.version == self.pins[key]]
            if not versions:
                self.problems[key] = f"pinned version {self.pins[key]} not found"
        refused = self.refused.get(key, set())
        return [v for v in reversed(versions) if v.version not in refused]

    async def _refresh_one(self, task: str, name: str) -> None:
        key = f"{task}/{name}"
        current = self.models.get(key)
        for ref in self._candidates(task, name):  # newest first
            if current is not None and (
                ref.version == current.version
                or (ref.version < current.version and key not in self.pins)
            ):
                return  # already serving the best candidate
            try:
                served = await asyncio.to_thread(self._load, ref)
            except Exception as error:
                self.refused.setdefault(key, set()).add(ref.version)
                metrics.MODEL_LOAD_FAILURES.labels(key).inc()
                log.error("refused %s version %d: %s", key, ref.version, error)
                if current is None:
                    self.problems[key] = f"version {ref.version} refused: {error}"
                continue
            await self._swap(served)
            return

    def _load(self, ref: artifacts.ArtifactRef) -> ServedModel:
        from model.predictor import Classifier, Translator, load_artifact

        started = time.perf_counter()
        loaded = load_artifact(ref.path, verify=True)
        key = ref.key
        predictor: Any
        concurrency = 1
        if loaded.config.task == "translation":
            engine = self._engine(ref, loaded)
            predictor = Translator(loaded, decoder=engine)
            if engine is not None:
                concurrency = engine.options.inter_threads
            log.info(
                "%s version %d decodes with %s", key, ref.version, predictor.engine_description
            )
            run = self._translation_runner(predictor, key)
        else:
            predictor = Classifier(loaded)
            run = self._classifier_runner(predictor)
        self._warm_up(predictor, loaded.config.task)
        s = self.settings
        batcher: Batcher[Any, Any] = Batcher(
            key,
            run,
            max_batch_size=s.batch_size_for(self.device),
            max_wait_seconds=s.max_batch_wait_ms / 1000,
            max_queue_size=s.max_queue_size,
            concurrency=concurrency,
        )
        seconds = time.perf_counter() - started
        log.info("loaded %s version %d in %.1fs", key, ref.version, seconds)
        return ServedModel(
            ref.task,
            ref.name,
            ref.version,
            str(ref.path),
            predictor,
            batcher,
            loaded.manifest,
            round(seconds, 3),
        )

    def _engine(self, ref: artifacts.ArtifactRef, loaded: Any) -> Any:
        """The CTranslate2 engine over the version's export, or None for the Keras
        decoder (TRANSLATION_ENGINE=keras, or a version exported before the engine)."""
        from model import engine

        folder = ref.path / engine.EXPORT_DIR
        if self.settings.translation_engine != "ctranslate2":
            return None
        if not folder.is_dir():
            log.warning("%s version %d has no engine export: the Keras decoder serves it",
                        ref.key, ref.version)  # fmt: skip
            return None
        device = "cuda" if self.device == "gpu" else "cpu"
        s = self.settings
        compute = s.engine_compute_type
        if compute == "auto":
            compute = engine.choose_compute_type(loaded.manifest.get("engine", {}), device)
        options = engine.EngineOptions(
            device=device,
            compute_type=compute,
            inter_threads=s.engine_inter_threads or (1 if device == "cuda" else 2),
            intra_threads=s.engine_intra_threads,
        )
        return engine.Engine(folder, loaded.tokenizer, options)

    def _warm_up(self, predictor: Any, task: str) -> None:
        """Traces the graphs requests will use, before readiness says yes."""
        if task == "translation":
            if predictor.engine != "keras":
                return  # CTranslate2 has nothing to trace
            from model.decode_options import DecodeOptions

            # The greedy graph, and the beam graph, which serves every width.
            for beam in (1, 2):
                predictor.translate(["warm up"], DecodeOptions(beam_size=beam, max_length=8))
        else:
            predictor.classify(["warm up"])

    @staticmethod
    def _translation_runner(predictor: Any, key: str) -> Any:
        def run(items: Sequence[tuple[str, Any]]) -> list[Any]:
            options = items[0][1]  # a batch shares its options (its group)
            results = predictor.translate([text for text, _ in items], options)
            tokens = sum(nbest[0].token_count for nbest in results)
            metrics.GENERATED_TOKENS.labels(key).inc(tokens)
            return results

        return run

    @staticmethod
    def _classifier_runner(predictor: Any) -> Any:
        def run(texts: Sequence[str]) -> list[Any]:
            return predictor.classify(list(texts))

        return run

    async def _swap(self, served: ServedModel) -> None:
        served.batcher.start()
        old = self.models.get(served.key)
        self.models[served.key] = served
        self.problems.pop(served.key, None)
        metrics.MODEL_INFO.labels(served.key, str(served.version)).set(1)
        if old is not None:
            metrics.MODEL_INFO.remove(old.key, str(old.version))
            log.info("swapped %s: version %d -> %d", served.key, old.version, served.version)
            await old.close()

    async def poll_forever(self) -> None:
        interval = self.settings.model_poll_seconds
        while interval > 0:
            await asyncio.sleep(interval)
            if self.draining:
                return
            try:
                await self.refresh()
            except Exception:
                log.exception("polling for model versions failed")

    async def close(self) -> None:
        for served in list(self.models.values()):
            await served.close()

    # Queries

    def get(self, task: str, name: str) -> ServedModel:
        served = self.models.get(f"{task}/{name}")
        if served is None:
            raise ModelUnavailable(f"model {task}/{name} is not loaded")
        return served

    def of_task(self, task: str) -> list[ServedModel]:
        return [m for m in self.models.values() if m.task == task]

    def pending_of_task(self, task: str) -> list[tuple[str, str] | None]:
        """Pairs (None for any) of the models of a task that are found but not loaded yet."""
        return [pair for key, pair in self.pending.items() if key.split("/")[0] == task]

    def readiness(self) -> tuple[bool, list[str]]:
        reasons = []
        if self.draining:
            reasons.append("shutting down")
        if self.loading:
            reasons.append("models are loading")
        reasons.extend(f"{key}: {problem}" for key, problem in sorted(self.problems.items()))
        if not self.loading and not self.models and not reasons:
            reasons.append("no model loaded")
        return not reasons, reasons
