"""pytest fixtures: one live BeeMesh node per session, a fresh namespace per test, and a
report line (PASS/FAIL/SKIP) per test in conformance/report.txt."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent
READY_TIMEOUT = 30.0


def beemesh_binary() -> Path:
    """$BEEMESH_BIN, else $CARGO_TARGET_DIR/debug/beemesh, else <workspace>/target/debug/beemesh."""
    explicit = os.environ.get("BEEMESH_BIN")
    if explicit:
        return Path(explicit)
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "beemesh")
    candidates.append(WORKSPACE / "target" / "debug" / "beemesh")
    for c in candidates:
        if c.is_file():
            return c
    raise RuntimeError(f"beemesh binary not found (looked at {candidates}); set BEEMESH_BIN")


def report_path() -> Path:
    return Path(os.environ.get("BEEMESH_CONFORMANCE_REPORT", HERE.parent / "report.txt"))


def client_tag() -> str:
    try:
        import kubernetes

        return f"python-kubernetes-{kubernetes.__version__}"
    except Exception:  # noqa: BLE001 - the tag is informational
        return "python-kubernetes"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readyz(url: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=2) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001 - not ready yet
        return False


class Node:
    """A `beemesh up` process in a temporary directory."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="beemesh-py-node-"))
        self.data_dir = self.dir / "data"
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        self.log = open(self.dir / "node.log", "wb")
        self.proc = subprocess.Popen(
            [
                str(beemesh_binary()),
                "up",
                "--data-dir",
                str(self.data_dir),
                "--api-listen",
                f"127.0.0.1:{port}",
                "--node-name",
                "conformance",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.kubeconfig.is_file() and readyz(self.url):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"node not ready within {READY_TIMEOUT}s:\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join((self.dir / "node.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def node():
    n = Node()
    yield n
    n.stop()


@pytest.fixture(scope="session")
def api_client(node):
    from kubernetes import config

    return config.new_client_from_config(config_file=str(node.kubeconfig))


@pytest.fixture
def namespace(api_client, request):
    """A fresh namespace named after the test, deleted afterwards (best effort)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = "py-" + request.node.name.replace("_", "-").lower()[:50].strip("-")
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    # ApiException messages carry every response header; the status and body matter.
    text = re.sub(r"HTTP response headers: HTTPHeaderDict\(\{.*?\}\) ", "", text)
    return text if len(text) <= limit else text[:limit] + "…"


def pytest_runtest_logreport(report):
    """One report line per test: its call phase, or a failed/skipped setup."""
    if report.when == "call" or (report.when == "setup" and not report.passed):
        case = f"python:{report.nodeid.split('::')[-1]}"
        if report.passed:
            line = f"PASS {case} [{client_tag()}]"
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            line = f"SKIP {case} [{client_tag()}]: {_one_line(reason)}"
        else:
            crash = getattr(report.longrepr, "reprcrash", None)
            reason = crash.message if crash is not None else report.longreprtext
            line = f"FAIL {case} [{client_tag()}]: {_one_line(reason)}"
        with open(report_path(), "a", encoding="utf-8") as f:
            f.write(line + "\n")
