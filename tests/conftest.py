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
# `make test` runs two pytest-xdist workers side by side: OpenMP threads that spin while they wait would take the
# core from the other worker (sr/threads.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The modules that read the session's `tiny_build`: one xdist worker runs them all, so it is built once.
TINY_BUILD_READERS = ("test_e2e.py", "test_flows_pipeline.py", "test_workers.py")


# The longest modules first (the tiny build's readers take ~7 min together, the rehearsals ~4), so that the other
# worker works through the short ones meanwhile instead of one worker finishing a long one alone at the end.
LONGEST_FIRST = (*TINY_BUILD_READERS, "test_rehearsal.py", "test_processes.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each module keeps its test order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`make test`), a module's tests stay on one worker, so its module-scoped fixtures are built
    once, and TINY_BUILD_READERS share one worker. (xdist's own `--dist loadgroup` marks do not group under pytest 9,
    whose node ids no longer take xdist's group suffix.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "tiny_build" if Path(module).name in TINY_BUILD_READERS else module

    config.option.loadscopereorder = False  # xdist would put the modules with the most tests first instead
    return ByModule(config, log)


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


def _point_at(mp: pytest.MonkeyPatch, s3_server: str) -> None:
    """boto3, and every `dvc` run from here (dvc-s3 honours AWS_ENDPOINT_URL), to the loopback server."""
    for key, value in {"AWS_ENDPOINT_URL": s3_server, **S3_CREDENTIALS}.items():
        mp.setenv(key, value)


def _new_bucket() -> str:
    from sr.storage import s3_client

    name = f"bucket-{os.urandom(4).hex()}"
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Point boto3 (and anything run from this process) at the loopback S3 server with throwaway credentials."""
    _point_at(monkeypatch, s3_server)
    return s3_server


@pytest.fixture
def s3_bucket(s3_env):
    """A fresh, empty bucket on the loopback server; yields its name."""
    return _new_bucket()


@pytest.fixture(scope="module")
def s3(s3_server):
    """The same environment and a fresh bucket for a whole module, whose fixtures (a DVC remote) outlive one test."""
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, s3_server)
        yield _new_bucket()


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, s3_server):
    """The tiny pipeline, built once per session by the Prefect flow and pushed to the loopback S3 server.
    test_e2e, test_flows_pipeline and test_workers (as the all-local reference) read it; a test that edits its
    clone puts it back."""
    from tests.pipeline_fixtures import build_tiny_pipeline

    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, s3_server)
        return build_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "repo", _new_bucket())


@pytest.fixture(scope="module")
def one_thread():
    """Tiny convolutions on 2 busy cores: OpenMP hand-offs between threads cost ~100x the arithmetic."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
