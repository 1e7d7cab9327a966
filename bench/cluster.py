"""`python -m bench.cluster`: the service as several replicas behind nginx, on this machine,
without Docker. For tests and benchmarks (`bench.chaos`), not for production.

N replicas (`python -m app`) on free loopback ports, one redis-server they share, and
Debian's nginx in front, run unprivileged from a temporary folder (its config, pid file,
temporary files and logs). nginx's config is generated here with docker/nginx.conf's
failover policy (it includes docker/nginx-failover.conf) and a static upstream of the
replicas' ports instead of Docker's DNS. Every process is started by this module (each in
its own session, so that Ctrl-C reaches this one only) and stopped by the process object it
started (SIGTERM, then SIGKILL), also on Ctrl-C or an exception.

    with Cluster(Path("artifacts"), replicas=3) as cluster:
        httpx.post(f"{cluster.url}/translate", json=...)
        cluster.kill(0)             # SIGKILL
        cluster.start_replica(0)    # same port, models load again
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Annotated

import httpx
import typer

ROOT = Path(__file__).resolve().parent.parent
FAILOVER = ROOT / "docker" / "nginx-failover.conf"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "nginx")

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefer_oom_victim() -> None:
    """Makes this process, and every process it starts from now on, the kernel's first
    choice when memory runs out: on a shared machine a benchmark's replicas should die
    before anyone else's work does."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        log.warning("could not raise the OOM score; other processes are not protected")


def find_nginx() -> str | None:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def nginx_config(folder: Path, listen: int, upstreams: list[int], fail_timeout: int) -> str:
    """docker/nginx.conf's proxy with a static upstream; every path under `folder`."""
    servers = "\n".join(
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout={fail_timeout}s;"
        for port in upstreams
    )
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "nginx-error.log"} warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    server_tokens off;
    client_max_body_size 2m;
{temp}

    upstream api {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{listen};

        location / {{
            proxy_pass http://api;
            include {FAILOVER};
        }}

        location = /nginx-health {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}
}}
"""


def stop_process(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    """Signals a process this module started, then kills it if it outlives `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("process %d did not stop within %gs: killed", process.pid, timeout)
        process.kill()
        process.wait()


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Polls `check` until it is true; raises once `alive` is false or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the process exited")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} within {timeout:g}s")


@dataclass
class Replica:
    index: int
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200


class Cluster:
    """Replicas, Redis and nginx on loopback; a context manager that stops them all."""

    def __init__(
        self,
        artifacts: Path,
        replicas: int = 3,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        folder: Path | None = None,
        graceful_seconds: int = 30,
        fail_timeout: int = 2,
        ready_timeout: float = 600.0,
    ) -> None:
        self.nginx_binary = find_nginx()
        self.redis_binary = shutil.which("redis-server")
        if self.nginx_binary is None or self.redis_binary is None:
            raise RuntimeError("needs nginx and redis-server (apt-get install nginx redis-server)")
        self.artifacts = artifacts.resolve()
        self.env = dict(env or {})
        self.port = port or free_port()
        self.graceful_seconds = graceful_seconds
        self.fail_timeout = fail_timeout
        self.ready_timeout = ready_timeout
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="nlp-cluster-"))
        self.folder.chmod(0o755)  # nginx's workers (user nobody under root) write temp files
        self.redis_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.nginx: subprocess.Popen[bytes] | None = None
        self.replicas = [
            Replica(i, free_port(), self.folder / f"replica-{i}.log") for i in range(replicas)
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    # Lifecycle

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.start_redis()
        for replica in self.replicas:
            self.start_replica(replica.index, wait=False)
        self.start_nginx()
        for replica in self.replicas:
            self.wait_ready(replica.index)
        wait_until(
            self._proxy_ready, 30, "the proxy was not ready", lambda: self._alive(self.nginx)
        )
        log.info("cluster ready at %s (%d replicas)", self.url, len(self.replicas))

    def stop(self) -> None:
        stop_process(self.nginx, signal.SIGTERM, 10)
        for replica in self.replicas:
            stop_process(replica.process, signal.SIGTERM, self.graceful_seconds + 10)
        stop_process(self.redis, signal.SIGTERM, 10)
        if self._own_folder and not os.environ.get("KEEP_CLUSTER_FOLDER"):
            shutil.rmtree(self.folder, ignore_errors=True)

    # Redis

    def start_redis(self) -> None:
        assert self.redis_binary is not None
        command = [self.redis_binary, "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.redis = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(self._redis_answers, 10, "redis-server did not start", self._redis_alive)

    def stop_redis(self) -> None:
        stop_process(self.redis, signal.SIGTERM, 10)
        self.redis = None

    def restart_redis(self) -> None:
        self.stop_redis()
        self.start_redis()

    def _redis_alive(self) -> bool:
        return self._alive(self.redis)

    def _redis_answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    # Replicas

    def start_replica(self, index: int, wait: bool = True) -> None:
        replica = self.replicas[index]
        if replica.running():
            raise RuntimeError(f"replica {index} is running")
        env = dict(
            os.environ,
            ARTIFACTS_DIR=str(self.artifacts),
            REDIS_URL=self.redis_url,
            LOG_LEVEL="WARNING",
            **self.env,
        )
        command = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(replica.port)]
        command += ["--graceful-seconds", str(self.graceful_seconds)]
        with replica.log_path.open("ab") as log_file:
            replica.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_ready(index)

    def wait_ready(self, index: int, timeout: float | None = None) -> None:
        replica = self.replicas[index]
        wait_until(
            replica.ready,
            timeout or self.ready_timeout,
            f"replica {index} was not ready (log: {replica.log_path})",
            replica.running,
        )

    def kill(self, index: int) -> None:
        """SIGKILL: the replica dies with whatever it had in flight."""
        stop_process(self.replicas[index].process, signal.SIGKILL, 10)

    def terminate(self, index: int) -> subprocess.Popen[bytes] | None:
        """SIGTERM: the replica drains (graceful shutdown) and exits; returns its process."""
        process = self.replicas[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process

    # nginx

    def start_nginx(self) -> None:
        assert self.nginx_binary is not None
        config = self.folder / "nginx.conf"
        ports = [replica.port for replica in self.replicas]
        config.write_text(nginx_config(self.folder, self.port, ports, self.fail_timeout))
        error_log = self.folder / "nginx-error.log"
        command = [self.nginx_binary, "-p", str(self.folder), "-e", str(error_log)]
        check = subprocess.run([*command, "-t", "-q", "-c", str(config)], capture_output=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected {config}: {check.stderr.decode()}")
        self.nginx = subprocess.Popen(
            [*command, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._nginx_answers, 10, "nginx did not start", self._nginx_alive)

    def _nginx_alive(self) -> bool:
        return self._alive(self.nginx)

    def _nginx_answers(self) -> bool:
        return httpx.get(f"{self.url}/nginx-health", timeout=2).status_code == 200

    def _proxy_ready(self) -> bool:
        return httpx.get(f"{self.url}/ready", timeout=5).status_code == 200

    @staticmethod
    def _alive(process: subprocess.Popen[bytes] | None) -> bool:
        return process is not None and process.poll() is None


def main(
    artifacts: Annotated[Path, typer.Option(help="ARTIFACTS_DIR of every replica")] = ROOT
    / "artifacts",
    replicas: Annotated[int, typer.Option(min=1, help="service processes")] = 3,
    port: Annotated[int, typer.Option(help="nginx's port (0: a free one)")] = 8080,
    poll_seconds: Annotated[float, typer.Option(help="MODEL_POLL_SECONDS")] = 30.0,
    engine: Annotated[str, typer.Option(help="TRANSLATION_ENGINE of the replicas")] = "ctranslate2",
) -> None:
    """Serve ARTIFACTS_DIR from N replicas behind nginx until Ctrl-C, then stop them all."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    prefer_oom_victim()
    env = {"MODEL_POLL_SECONDS": str(poll_seconds), "TRANSLATION_ENGINE": engine}
    # SIGTERM stops the cluster like Ctrl-C does: the `with` block's exit stops everything.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with Cluster(artifacts, replicas, env=env, port=port or None) as cluster:
        for replica in cluster.replicas:
            log.info("replica %d: %s (pid %d)", replica.index, replica.url, replica.process.pid)  # type: ignore[union-attr]
        log.info("redis: %s; logs and nginx config: %s", cluster.redis_url, cluster.folder)
        log.info("serving on %s; Ctrl-C stops every process", cluster.url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            log.info("stopping")


if __name__ == "__main__":
    typer.run(main)
