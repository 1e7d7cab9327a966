"""Fixtures of the model tests: tiny untrained models, and the subprocess runs.

The subprocess runs (the training CLI, its error cases, a two-replica training) start in
the background as soon as the first model test runs, so that their TensorFlow imports and
graph tracing overlap the in-process tests instead of adding to them. Only the runs that
the selected tests ask for are started.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import pytest

from model.config import ModelConfig
from model.transformer import Seq2SeqTransformer, TransformerClassifier, build_model
from tests import synthetic

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 600  # a hung subprocess fails its test instead of the whole session


@dataclass
class Run:
    """A subprocess writing its output to files (pipes could fill up and block it)."""

    process: subprocess.Popen[bytes]
    folder: Path

    @classmethod
    def start(cls, args: list[str], folder: Path, env_changes: dict[str, str] | None = None) -> Run:
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
        env.update(env_changes or {})
        with (folder / "stdout").open("wb") as out, (folder / "stderr").open("wb") as err:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err)
        return cls(process, folder)

    def result(self) -> subprocess.CompletedProcess[str]:
        try:
            code = self.process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"{self.process.args} ran longer than {RUN_TIMEOUT_S} s")
        return subprocess.CompletedProcess(
            self.process.args,
            code,
            (self.folder / "stdout").read_text("utf-8", "replace"),
            (self.folder / "stderr").read_text("utf-8", "replace"),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# A run's outcome and its folder (the CLI runs write their artifacts under folder/"out").
Finished = tuple[subprocess.CompletedProcess[str], Path]


def train_cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "model.train", "translation", *map(str, args)]


# Two logical CPU devices must be configured before TensorFlow initializes, hence a fresh
# interpreter. Its batches have odd sizes, which split unevenly over the two replicas.
MIRRORED_SCRIPT = """
import json, os, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
from model import training
from model.config import preset

replicas = []
make_strategy = training.strategy_for

def recording_strategy_for(name):
    strategy = make_strategy(name)
    replicas.append(strategy.num_replicas_in_sync)
    return strategy

training.strategy_for = recording_strategy_for
# Equally long texts: each set is a single batch, of an odd size.
rows = [("a good film", "POSITIVE") if i % 2 else ("a dull film", "NEGATIVE") for i in range(46)]
model_config, train_config = preset("tiny", "sentiment")
train_config = train_config.replace(epochs=1, strategy="mirrored", vocab_size=40)
corpus = training.Corpus("sst2", rows[:31], rows[31:])
path = training.train(corpus, model_config, train_config, sys.argv[1], verbose=0)
print(json.dumps({"path": str(path), "replicas": replicas}), flush=True)
os._exit(0)  # TensorFlow's teardown of the strategy's threads takes many seconds
"""


def _cli_translation(folder: Path, corpus_dir: Path) -> Run:
    command = train_cli(
        "--preset", "tiny", "--data-dir", corpus_dir, "--epochs", "1",
        "--max-train-lines", "100", "--out", folder / "out",
    )  # fmt: skip
    return Run.start(command, folder)


def _cli_missing_file(folder: Path, corpus_dir: Path) -> Run:
    command = train_cli("--preset", "tiny", "--pairs", folder / "missing.tsv", "--out", folder)
    return Run.start(command, folder)


def _cli_mismatched_lines(folder: Path, corpus_dir: Path) -> Run:
    data = folder / "data"
    synthetic.write_lines(data / "train.en", ["one", "two", "three"], gz=False)
    synthetic.write_lines(data / "train.de", ["eins", "zwei"], gz=False)
    command = train_cli("--preset", "tiny", "--data-dir", data, "--out", folder / "out")
    return Run.start(command, folder)


def _cli_unknown_preset(folder: Path, corpus_dir: Path) -> Run:
    command = train_cli("--preset", "huge", "--data-dir", corpus_dir, "--out", folder / "out")
    return Run.start(command, folder)


def _jax_training(folder: Path, corpus_dir: Path) -> Run:
    """The training job under KERAS_BACKEND=jax saves a fitted model (publishing needs TF)."""
    command = train_cli(
        "--preset", "tiny", "--data-dir", corpus_dir, "--epochs", "2",
        "--max-train-lines", "100", "--out", folder / "out",
    )  # fmt: skip
    return Run.start(command, folder, {"KERAS_BACKEND": "jax"})


def _mirrored_training(folder: Path, corpus_dir: Path) -> Run:
    return Run.start([sys.executable, "-c", MIRRORED_SCRIPT, str(folder / "out")], folder)


def _cli_sentiment_recipe(folder: Path, corpus_dir: Path) -> Run:
    data = folder / "data"
    recipe = synthetic.write_sentiment_mixture(data, weights=(1.0, 2.0, 0.5))
    rng = random.Random(5)
    unlabeled = [synthetic.review(i % 2, rng, 20) for i in range(30)]
    pretrain = synthetic.write_lines(data / "unlabeled.txt.gz", unlabeled)
    command = [
        sys.executable, "-m", "model.train", "sentiment", "--recipe", recipe, "--data-dir", data,
        "--preset", "tiny", "--epochs", "2", "--vocab-size", "80", "--max-source-length", "32",
        "--pretrain-epochs", "1", "--pretrain-text", pretrain, "--out", folder / "out",
    ]  # fmt: skip
    return Run.start([str(arg) for arg in command], folder)


def _cli_sentiment_dev(folder: Path, corpus_dir: Path) -> Run:
    train = synthetic.write_sst(folder / "train.tsv", 200, 1)
    dev = synthetic.write_sst(folder / "dev.tsv", 30, 2, "content")
    command = [
        sys.executable, "-m", "model.train", "sentiment", "--train", train, "--dev", dev,
        "--preset", "tiny", "--epochs", "1", "--vocab-size", "60", "--out", folder / "out",
    ]  # fmt: skip
    return Run.start([str(arg) for arg in command], folder)


# fixture name -> how to start its run
LAUNCHERS: dict[str, Callable[[Path, Path], Run]] = {
    "cli_translation_run": _cli_translation,
    "cli_missing_file_run": _cli_missing_file,
    "cli_mismatched_lines_run": _cli_mismatched_lines,
    "cli_unknown_preset_run": _cli_unknown_preset,
    "mirrored_training_run": _mirrored_training,
    "jax_training_run": _jax_training,
    "cli_sentiment_recipe_run": _cli_sentiment_recipe,
    "cli_sentiment_dev_run": _cli_sentiment_dev,
}


@pytest.fixture(scope="session", autouse=True)
def background_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path
) -> Iterator[dict[str, Run]]:
    wanted = {name for item in request.session.items for name in item.fixturenames}
    runs = {
        name: launch(tmp_path_factory.mktemp(name), corpus_dir)
        for name, launch in LAUNCHERS.items()
        if name in wanted
    }
    yield runs
    for run in runs.values():
        run.stop()  # only runs whose tests were skipped or not reached are still going


def _finished(runs: dict[str, Run], name: str) -> Finished:
    return runs[name].result(), runs[name].folder


@pytest.fixture(scope="session")
def cli_translation_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "cli_translation_run")


@pytest.fixture(scope="session")
def cli_missing_file_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "cli_missing_file_run")


@pytest.fixture(scope="session")
def cli_mismatched_lines_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "cli_mismatched_lines_run")


@pytest.fixture(scope="session")
def cli_unknown_preset_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "cli_unknown_preset_run")


@pytest.fixture(scope="session")
def jax_training_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "jax_training_run")


@pytest.fixture(scope="session")
def mirrored_training_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "mirrored_training_run")


@pytest.fixture(scope="session")
def cli_sentiment_recipe_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "cli_sentiment_recipe_run")


@pytest.fixture(scope="session")
def cli_sentiment_dev_run(background_runs: dict[str, Run]) -> Finished:
    return _finished(background_runs, "cli_sentiment_dev_run")


# Tiny untrained models (seconds to build, milliseconds to run).


@pytest.fixture(scope="session")
def tiny_config() -> ModelConfig:
    """Two layers per stack, so that per-layer caches and masks are exercised."""
    return ModelConfig(
        vocab_size=40, d_model=16, num_heads=2, d_ff=32, encoder_layers=2, decoder_layers=2,
        dropout=0.0, max_length=32,
    )  # fmt: skip


@pytest.fixture(scope="session")
def seq2seq(tiny_config: ModelConfig) -> Seq2SeqTransformer:
    """Shared and read-only: tests that change weights build their own model."""
    keras.utils.set_random_seed(7)
    model = build_model(tiny_config)
    assert isinstance(model, Seq2SeqTransformer)
    return model


@pytest.fixture(scope="session")
def classifier_config(tiny_config: ModelConfig) -> ModelConfig:
    return tiny_config.replace(task="sentiment", labels=("NEGATIVE", "POSITIVE"))


@pytest.fixture(scope="session")
def classifier(classifier_config: ModelConfig) -> TransformerClassifier:
    """Shared and read-only, like `seq2seq`."""
    keras.utils.set_random_seed(5)
    model = build_model(classifier_config)
    assert isinstance(model, TransformerClassifier)
    return model
