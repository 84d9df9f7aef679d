"""Shared fixtures: a real S3-compatible server (moto in server mode) on loopback, started by the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Offline LPIPS/NIQE weights live where `make` provisions them (python -m sr.eval.weights).
os.environ.setdefault("TORCH_HOME", str(REPO / ".torch"))



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server process on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("moto S3 server did not start within 30 s")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _new_bucket() -> str:
    from sr.storage import s3_client

    name = f"bucket-{os.urandom(4).hex()}"
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Point boto3 (and anything run from this process) at the loopback S3 server with throwaway credentials."""
    for key, value in {"AWS_ENDPOINT_URL": s3_server, **S3_CREDENTIALS}.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def s3_bucket(s3_env):
    """A fresh, empty bucket on the loopback server; yields its name."""
    return _new_bucket()


@pytest.fixture(scope="module")
def s3(s3_server):
    """The same environment and a fresh bucket for a whole module, whose fixtures (a DVC remote) outlive one test;
    boto3 and every `dvc` run from here find the server through AWS_ENDPOINT_URL (dvc-s3 honours it)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"AWS_ENDPOINT_URL": s3_server, **S3_CREDENTIALS}.items():
            mp.setenv(key, value)
        yield _new_bucket()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny convolutions on 2 busy cores: OpenMP hand-offs between threads cost ~100x the arithmetic."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
