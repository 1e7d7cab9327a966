# syntax=docker/dockerfile:1
# The service image for NVIDIA GPU hosts, on TensorFlow's own CUDA build of the release we
# pin (CUDA and cuDNN come with it). Build from the repository root:
#   docker build -f docker/gpu.Dockerfile -t nlp-service:gpu .
# Run with the NVIDIA container toolkit: docker run --gpus all ... (or docker-compose.gpu.yml).
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    ARTIFACTS_DIR=/srv/artifacts \
    DATA_DIR=/srv/data \
    DEVICE=gpu \
    MODEL_POLL_SECONDS=30 \
    MPLCONFIGDIR=/tmp/matplotlib \
    KERAS_HOME=/tmp/keras

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The image's interpreter already has tensorflow==2.21.0 (CUDA build), which satisfies our
# pin, so pip installs only the rest; `python` is made to exist for the health checks.
COPY pyproject.toml README.md ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && python3 -m pip install --no-cache-dir -r /tmp/requirements.txt \
    && { command -v python >/dev/null || ln -s "$(command -v python3)" /usr/local/bin/python; }
COPY app ./app
COPY model ./model
COPY tokenizers ./tokenizers
RUN python3 -m pip install --no-cache-dir --no-deps . \
    && python3 -P -c "import app.main, model.train, tokenizers.subword" \
    && rm -rf /src

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /srv --no-create-home \
        --shell /usr/sbin/nologin app \
    && install -d -o 10001 -g 10001 /srv/data
COPY --chown=10001:10001 artifacts/ /srv/artifacts/
WORKDIR /srv
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000", "--graceful-seconds", "30"]
