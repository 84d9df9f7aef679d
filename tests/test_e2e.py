"""A real `dvc repro` of the pipeline in a temporary git clone, on the tiny params override: with a recipe removed
from `distill.recipes` it still builds to the package; editing one recipe's params re-runs only that recipe; and the
paper-scale ResShift overlay, pointed at stand-ins in the official formats, gets through the teacher stage."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from sr.models.resshift_swin import ResShiftSwinUNet
from sr.models.vq_f4 import VQF4
from tests.models.test_model_folders import TINY_SWIN, TINY_VQ
from tests.models.test_official_import import official_unet_dict, seeded
from tests.pipeline_fixtures import REPO, write_tiny_params

RECIPES = ["sinsr", "tadsr"]  # colearn removed: the pipeline must still build


def _run(cmd, cwd, env, timeout=900):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clone(root: Path) -> dict:
    """The working tree's tracked and unignored files, committed in a fresh git repo (what a user clones)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "TORCH_HOME": str(REPO / ".torch")}
    (root / ".torch").symlink_to(REPO / ".torch")  # the offline LPIPS/NIQE weights the stages are pointed at
    _run(["git", "init", "-q"], root, env)
    _run(["git", "add", "-A"], root, env)
    _run(["git", "commit", "-qm", "clone"], root, env)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("clone")
    env = _clone(root)
    write_tiny_params(root / "params.yaml", distill={"recipes": RECIPES})
    _run(["dvc", "repro"], root, env)
    return root, env


def test_dvc_repro_builds_to_the_package_without_the_removed_recipe_then_is_up_to_date(built):
    root, env = built
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert {f"distill@{r}" for r in RECIPES} <= set(lock) and "distill@colearn" not in lock
    assert list((root / "dist").glob("sr-onestep-*.tar.gz")) and not (root / "models/student-colearn").exists()
    report = yaml.safe_load((root / "metrics/eval.json").read_text())
    assert sorted(m for m in report if m.startswith("student-")) == ["student-osediff", "student-sinsr",
                                                                     "student-tadsr"]
    start = time.monotonic()
    again = _run(["dvc", "repro"], root, env)
    elapsed = time.monotonic() - start
    assert "Running stage" not in again.stdout
    assert elapsed < 30, f"no-op repro took {elapsed:.1f} s"


def test_editing_one_recipe_changes_only_its_stage(built):
    root, env = built
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["distill"]["tadsr"]["lambda_hsd"] = 0.5
    params["distill"]["colearn"]["lambda_gt"] = 3.0  # a recipe that does not run: nothing may change
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        status = yaml.safe_load(_run(["dvc", "status", "--json"], root, env).stdout.splitlines()[-1])
        assert list(status) == ["distill@tadsr"]
        assert status["distill@tadsr"] == [{"changed deps": {"params.yaml": {"distill.tadsr": "modified"}}}]
    finally:
        write_tiny_params(root / "params.yaml", distill={"recipes": RECIPES})


def test_resshift_import_overlay_gets_through_the_teacher_stage(tmp_path):
    """`python -m sr.config apply configs/resshift-v1-import.yaml`, pointed at stand-ins written in the official
    formats (a `module.`-prefixed EMA .pth of UNetModelSwin, a bare-state_dict VQ-f4 .pth) whose network needs
    multiples of 16, gets through `dvc repro teacher`."""
    env = _clone(tmp_path)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(official_unet_dict(seeded(ResShiftSwinUNet(TINY_SWIN), seed=5)), weights / "resshift.pth")
    vq = VQF4(embed_dim=3, n_embed=TINY_VQ.n_embed, ch=TINY_VQ.ch, ch_mult=tuple(TINY_VQ.ch_mult),
              num_res_blocks=TINY_VQ.num_res_blocks, z_channels=3)
    torch.save(seeded(vq, seed=6).state_dict(), weights / "vq_f4.pth")
    _run([sys.executable, "-m", "sr.config", "apply", "configs/resshift-v1-import.yaml"], tmp_path, env)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["download"].update({"sources": [{"kind": "bundled", "names": ["astronaut", "chelsea", "coffee", "rocket"]}],
                               "min_size": 64, "min_val_images": 1})
    params["degrade"].update({"hq_size": 64, "train_crops_per_image": 1, "val_crops_per_image": 1})
    params["teacher"].update({"checkpoint": "weights/resshift.pth", "swin": TINY_SWIN.model_dump(),
                              "autoencoder": {"kind": "vq_f4", "checkpoint": "weights/vq_f4.pth",
                                              "vq": TINY_VQ.model_dump()}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "repro", "teacher"], tmp_path, env)
    teacher = yaml.safe_load((tmp_path / "models/teacher/config.json").read_text())
    assert teacher["arch"] == "resshift_swin" and teacher["source"] == "weights/resshift.pth"
    metrics = yaml.safe_load((tmp_path / "metrics/teacher.json").read_text())
    assert metrics["steps"] == 15 and metrics["val_samples"] >= 1
