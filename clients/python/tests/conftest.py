"""The real binary, started once per test session: `helpdex emulate` serving the fixture help
center, and `helpdex serve` syncing it, with one key of each scope and a webhook secret.

The binary is `$HELPDEX_BIN`, else `target/debug/helpdex` of this repository (built by
`cargo test`, which `scripts/test` runs first).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
CUSTOMER_KEY = "customer-key-py-0123456789"
AGENT_KEY = "agent-key-py-0123456789abc"
ADMIN_KEY = "admin-key-py-0123456789abcd"
WEBHOOK_SECRET = "whsec-python-tests"
ZENDESK_EMAIL = "sync@lumenpay.test"
ZENDESK_TOKEN = "demo-admin-token"


def binary() -> str:
    path = os.environ.get("HELPDEX_BIN") or str(REPO / "target" / "debug" / "helpdex")
    if not Path(path).is_file():
        pytest.exit(f"no helpdex binary at {path}: run `cargo build` (or set HELPDEX_BIN)", 2)
    return path


def first_line(stream, what: str, timeout: float = 120.0) -> str:
    """The first line a child prints (it prints its address once listening)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if line:
            return line.strip()
        time.sleep(0.05)
    raise RuntimeError(f"{what} printed nothing")


@dataclass
class Server:
    url: str
    data_dir: str
    zendesk_url: str

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)


@pytest.fixture(scope="session")
def server():
    exe = binary()
    tmp = tempfile.mkdtemp(prefix="helpdex-py-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELPDEX_", "ZENDESK_"))}
    env["HELPDEX_LOG"] = "warn"
    emulator = subprocess.Popen(
        [exe, "emulate", "--listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    procs = [emulator]
    try:
        line = first_line(emulator.stderr, "helpdex emulate")
        zendesk = line.rsplit(" ", 1)[-1]
        assert zendesk.startswith("http://127.0.0.1:"), line
        serve_env = dict(
            env,
            ZENDESK_URL=zendesk,
            ZENDESK_EMAIL=ZENDESK_EMAIL,
            ZENDESK_API_TOKEN=ZENDESK_TOKEN,
            HELPDEX_CUSTOMER_KEY=CUSTOMER_KEY,
            HELPDEX_AGENT_KEY=AGENT_KEY,
            HELPDEX_ADMIN_KEY=ADMIN_KEY,
            HELPDEX_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        serve = subprocess.Popen(
            [exe, "--data-dir", os.path.join(tmp, "data"), "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=serve_env,
        )
        procs.append(serve)
        line = first_line(serve.stdout, "helpdex serve")
        url = line.rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:"), line
        with httpx.Client(base_url=url, timeout=10.0) as c:
            for _ in range(600):
                if c.get("/readyz").status_code == 200:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("helpdex serve never became ready")
        yield Server(url=url, data_dir=os.path.join(tmp, "data"), zendesk_url=zendesk)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def fixture_articles() -> list[dict]:
    paths = sorted(glob.glob(str(REPO / "fixtures" / "helpcenter" / "articles" / "*.json")))
    return [json.load(open(p)) for p in paths]


@pytest.fixture(scope="session")
def openapi(server) -> dict:
    with server.client(None) as c:
        r = c.get("/openapi.json")
        assert r.status_code == 200
        return r.json()
