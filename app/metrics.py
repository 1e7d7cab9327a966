"""Every Prometheus metric, defined once. Labels stay low-cardinality: endpoint route
templates, status codes, model keys, cache results; never text, client addresses or keys."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

REQUESTS = Counter("nlp_requests_total", "HTTP requests", ["endpoint", "status"])
REQUEST_DURATION = Histogram(
    "nlp_request_duration_seconds", "HTTP request latency", ["endpoint"], buckets=LATENCY_BUCKETS
)
INFLIGHT = Gauge("nlp_inflight_requests", "HTTP requests being served")

BATCH_SIZE = Histogram("nlp_batch_size", "Items per model call", ["model"], buckets=BATCH_BUCKETS)
QUEUE_WAIT = Histogram(
    "nlp_queue_wait_seconds",
    "Time an item waits for its batch",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_DEPTH = Gauge("nlp_queue_depth", "Items waiting for a batch", ["model"])
INFERENCE_DURATION = Histogram(
    "nlp_inference_duration_seconds",
    "Model call duration per batch",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
GENERATED_TOKENS = Counter("nlp_generated_tokens_total", "Tokens generated", ["model"])
REJECTED = Counter("nlp_rejected_total", "Items refused or dropped", ["model", "reason"])

CACHE_REQUESTS = Counter("nlp_cache_requests_total", "Cache lookups per item", ["result"])
MODEL_INFO = Gauge("nlp_model_info", "Loaded model versions (value 1)", ["model", "version"])
MODEL_LOAD_FAILURES = Counter("nlp_model_load_failures_total", "Refused versions", ["model"])
FILES_TRANSLATED = Counter(
    "nlp_files_translated_total",
    "Files sent to /translate_file, by format (or unknown) and outcome",
    ["format", "outcome"],  # outcome: ok, too_large, rejected (4xx), failed
)

SUGGESTIONS = Counter(
    "nlp_suggestions_total", "Suggestions stored: result is new or repeated", ["result"]
)
