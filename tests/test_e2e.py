"""A real `dvc repro` of the pipeline in a temporary git clone, on the tiny params override."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.pipeline_fixtures import REPO, write_tiny_params

STAGES = ["download", "degrade", "teacher", "trajectories"]


def _run(cmd, cwd, env, timeout=900):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The working tree's tracked and unignored files, committed in a fresh git repo (what a user clones)."""
    root = tmp_path_factory.mktemp("clone")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    write_tiny_params(root / "params.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    _run(["git", "init", "-q"], root, env)
    _run(["git", "add", "-A"], root, env)
    _run(["git", "commit", "-qm", "clone"], root, env)
    return root, env


def test_dvc_repro_builds_every_stage_then_is_up_to_date(clone):
    root, env = clone
    _run(["dvc", "repro", *STAGES], root, env)
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert set(STAGES) <= set(lock)
    assert (root / "metrics/teacher.json").exists() and list((root / "data/trajectories").glob("traj-*.tar"))
    start = time.monotonic()
    again = _run(["dvc", "repro", *STAGES], root, env)
    elapsed = time.monotonic() - start
    assert "didn't change, skipping" in again.stdout or "is up to date" in again.stdout.lower()
    assert "Running stage" not in again.stdout
    assert elapsed < 30, f"no-op repro took {elapsed:.1f} s"
    status = _run(["dvc", "status", *STAGES], root, env)
    assert "up to date" in status.stdout.lower()
