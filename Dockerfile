# syntax=docker/dockerfile:1
# The service image (CPU). Build: docker build -t nlp-service .
# GPU hosts use docker/gpu.Dockerfile; the compose file's `trainer` reuses this image.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: a self-contained virtual environment in /opt/venv -------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall
# TensorFlow: this layer is rebuilt only when the pinned dependencies change.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY app ./app
COPY model ./model
COPY tokenizers ./tokenizers
RUN pip install --no-cache-dir --no-deps . \
    && python -P -c "import app.main, model.train, tokenizers.subword"

# --- runtime: the venv, the shipped models, a non-root user ------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    ARTIFACTS_DIR=/srv/artifacts \
    DATA_DIR=/srv/data \
    DEVICE=cpu \
    MODEL_POLL_SECONDS=30 \
    MPLCONFIGDIR=/tmp/matplotlib \
    KERAS_HOME=/tmp/keras
# A numeric uid, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /srv --no-create-home \
        --shell /usr/sbin/nologin app \
    && install -d -o 10001 -g 10001 /srv/data
COPY --from=build /opt/venv /opt/venv
# The shipped models. The app user owns them so that a named volume mounted here is seeded
# with them (Docker copies the image's folder into an empty volume) and stays writable for
# the trainer, which publishes new versions next to them.
COPY --chown=10001:10001 artifacts/ /srv/artifacts/
WORKDIR /srv
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Liveness only: /ready (models loaded) gates traffic in compose and Kubernetes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# On SIGTERM uvicorn stops accepting, finishes in-flight requests for up to 30 s, then the
# lifespan drains the batchers; give the container longer than that to stop (compose
# stop_grace_period, Kubernetes terminationGracePeriodSeconds).
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000", "--graceful-seconds", "30"]
