"""Real servers started by the tests themselves (installed by scripts/test-services.sh)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, what: str, timeout_s: float, *, need_ok: bool = False) -> None:
    """Poll `url` until the server answers (with a 200 when `need_ok`), or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200 or not need_ok:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not start")


class RedisServer:
    """A throwaway redis-server on a loopback port, no persistence."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/test-services.sh (make test does)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments
            self._cmd, cwd=self._workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


class RabbitMqServer:
    """A throwaway RabbitMQ node (Debian's rabbitmq-server) with its own name, ports and data."""

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the unwrapped script: runs as the current user

    def __init__(self, workdir: Path) -> None:
        if not Path(self.SERVER).exists():
            raise RuntimeError("rabbitmq-server is not installed: run scripts/test-services.sh (make test does)")
        self.port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (workdir / "plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "HOME": str(workdir),
            "RABBITMQ_NODENAME": f"ragtest{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(workdir / "feature_flags"),
            "RABBITMQ_PID_FILE": str(workdir / "pid"),
        }
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self._workdir / "mnesia").mkdir(exist_ok=True)
        (self._workdir / "log").mkdir(exist_ok=True)
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [self.SERVER],
            env=self.env,
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"AMQP\x00\x00\x09\x01")
                    if conn.recv(8):  # Connection.Start: the broker accepts clients
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("rabbitmq-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process = None


class ApiServer:
    """`ragapi serve` in its own process, as an operator runs it."""

    def __init__(self, data_dir: Path, *serve_args: str, **env: str) -> None:
        self.serve_args = serve_args
        self.port = free_port()
        # several embedded servers run at once under the test suite: not a quarter of the machine each
        base = {
            "DATA_DIR": str(data_dir),
            "PORT": str(self.port),
            "LOG_LEVEL": "warning",
            "PG_SHARED_BUFFERS_MB": "256",
        }
        self.env = {**os.environ, **base, **env}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "ragapi.api.cli", *args], env=self.env, capture_output=True, timeout=120, check=True
        )
        return done.stdout.decode()

    def start(self) -> None:
        self.launch()
        try:
            self.wait_ready()
        except TimeoutError:
            self.stop()
            raise

    def launch(self) -> None:
        command = [sys.executable, "-m", "ragapi.api.cli", "serve", *self.serve_args]
        self.process = subprocess.Popen(command, env=self.env)  # noqa: S603

    def wait_ready(self) -> None:
        """Ready within 180 s (a first start runs initdb and loads the model, on a machine that may be busy),
        or failed at once if the process has exited."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ragapi serve exited with {self.process.returncode}")
            try:
                wait_for_http(self.url + "/readyz", "ragapi serve", 5, need_ok=True)
                return
            except TimeoutError:
                continue
        raise TimeoutError("ragapi serve did not start")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


class PrometheusServer:
    """Debian's `prometheus` scraping the given targets every second, with its HTTP API on a free port."""

    def __init__(
        self, workdir: Path, targets: list[str], metrics_path: str = "/metrics", bearer_token: str | None = None
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets = targets
        self.metrics_path = metrics_path
        self.bearer_token = bearer_token  # METRICS_BEARER_TOKEN, read from a file as docker-compose's Prometheus does
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.workdir / "prometheus.yml"
        targets = ", ".join(f'"{t}"' for t in self.targets)
        token_file = self.workdir / "metrics_token"
        if self.bearer_token:
            token_file.write_text(self.bearer_token)
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: ragapi\n    metrics_path: {self.metrics_path}\n"
            f"    static_configs: [{{targets: [{targets}]}}]\n"
            + (f"    authorization: {{type: Bearer, credentials_file: {token_file}}}\n" if self.bearer_token else "")
        )
        self._process = subprocess.Popen(  # noqa: S603 - Debian's prometheus binary
            [
                shutil.which("prometheus") or "/usr/bin/prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "prometheus.log").open("wb"),
            start_new_session=True,
        )
        wait_for_http(self.url + "/-/ready", "prometheus", 30, need_ok=True)

    def query(self, expr: str) -> list[dict[str, object]]:
        response = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body.get('error')}")
        result: list[dict[str, object]] = body["data"]["result"]
        return result

    def metric_names(self) -> set[str]:
        return set(httpx.get(self.url + "/api/v1/label/__name__/values", timeout=10).json()["data"])

    def stop(self) -> None:
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=30)
            self._process = None


class LlmServer:
    """bench/llm_server.py: an OpenAI-compatible chat server that streams `tokens` tokens after `ttft_s`
    at `tokens_per_s`, for tests that need answers to stream for a known time."""

    def __init__(self, ttft_s: float, tokens_per_s: float, tokens: int) -> None:
        port = free_port()
        command = [sys.executable, "-m", "bench.llm_server", "--port", str(port), "--ttft", str(ttft_s)]
        command += ["--tps", str(tokens_per_s), "--tokens", str(tokens)]
        self.process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])  # noqa: S603
        self.url = f"http://127.0.0.1:{port}/v1"  # OPENAI_BASE_URL
        try:
            wait_for_http(self.url + "/models", "bench/llm_server.py", 30)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class OidcProvider:
    """tests/oidc/provider.mjs: a real OpenID Connect provider (panva/node-oidc-provider on Node) on a
    loopback port. Its packages are installed from the committed lock file on first use (`npm ci`)."""

    DIR = Path(__file__).resolve().parent / "oidc"

    def __init__(self, workdir: Path) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed (Node 20 or later runs tests/oidc/provider.mjs)")
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._command = [node, str(self.DIR / "provider.mjs"), str(self.port)]
        self._log = workdir / "oidc-provider.log"
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def install(cls) -> None:
        if not (cls.DIR / "node_modules" / "oidc-provider").is_dir():
            npm = shutil.which("npm") or "npm"
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=cls.DIR, check=True, timeout=300)  # noqa: S603

    def start(self) -> None:
        self.install()
        self._process = subprocess.Popen(  # noqa: S603 - our own script
            self._command, cwd=self.DIR, stdout=subprocess.DEVNULL, stderr=self._log.open("wb")
        )
        try:
            wait_for_http(self.issuer + "/.well-known/openid-configuration", "oidc-provider", 30, need_ok=True)
        except TimeoutError:
            self.stop()
            raise

    def register(self, redirect_uri: str, auth_method: str = "client_secret_basic") -> tuple[str, str]:
        """A client of its own (RFC 7591 dynamic registration): (client_id, client_secret, "" for a public one)."""
        metadata = {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": auth_method}
        response = httpx.post(self.issuer + "/reg", json=metadata, timeout=10)
        response.raise_for_status()
        client = response.json()
        return client["client_id"], client.get("client_secret", "")

    def rotate(self) -> str:
        """A new signing key (the previous one stays published); its kid."""
        kid: str = httpx.post(self.issuer + "/__test/rotate", timeout=10).json()["kid"]
        return kid

    def conform(self, conform: bool) -> None:
        """True: the scopes' claims only at the userinfo endpoint, not in the ID token."""
        httpx.post(self.issuer + "/__test/conform", json={"conform": conform}, timeout=10).raise_for_status()

    def last_token_auth(self) -> str:
        """How the last token request authenticated its client: client_secret_basic, client_secret_post, none."""
        method: str = httpx.get(self.issuer + "/__test/last-token-auth", timeout=10).json()["method"]
        return method

    def tamper(self, **changes: object) -> None:
        """Re-sign the token endpoint's next ID tokens with these changes (see provider.mjs); none: stop."""
        httpx.post(self.issuer + "/__test/tamper", json=changes, timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
