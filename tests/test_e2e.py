"""`dvc repro` on the tiny pipeline that the flow built (tests/conftest.py): a no-op when nothing changed, editing one
recipe's params re-runs only that recipe, and with a recipe removed from `distill.recipes` the pipeline still builds
to the package. (The paper-scale architectures, imported from stand-ins in the official formats, run in
tests/test_rehearsal.py.)"""

import json
import re
import shutil
import time

import yaml

from tests.pipeline_fixtures import FEWER_STEPS, run, write_tiny_params


def test_dvc_repro_after_the_flow_runs_no_stage(tiny_build):
    assert tiny_build.completed, tiny_build.message
    start = time.monotonic()
    again = run(["dvc", "repro"], tiny_build.root, tiny_build.env)
    elapsed = time.monotonic() - start
    assert "Running stage" not in again.stdout
    assert elapsed < 30, f"no-op repro took {elapsed:.1f} s"


def test_editing_one_recipe_changes_only_its_stage(tiny_build):
    params = tiny_build.root / "params.yaml"
    committed = params.read_text()
    edited = yaml.safe_load(committed)
    edited["distill"]["tadsr"]["lambda_hsd"] = 0.5
    params.write_text(yaml.safe_dump(edited, sort_keys=False))
    try:
        status = run(["dvc", "status", "--json"], tiny_build.root, tiny_build.env).stdout.splitlines()[-1]
        # distill@sinsr and distill@colearn read only their own sections: untouched
        assert yaml.safe_load(status) == {
            "distill@tadsr": [{"changed deps": {"params.yaml": {"distill.tadsr": "modified"}}}]}
    finally:
        params.write_text(committed)


def test_a_removed_recipe_rebuilds_only_what_follows_the_students(tiny_build, tmp_path):
    root = shutil.copytree(tiny_build.root, tmp_path / "repo", symlinks=True)  # the user's clone, cache included
    recipes = ["sinsr", "tadsr"]
    write_tiny_params(root / "params.yaml", distill={"recipes": recipes}, **FEWER_STEPS)
    shutil.rmtree(root / "models/student-colearn")  # dvc leaves a removed stage's output in the workspace
    out = run(["dvc", "repro"], root, tiny_build.env).stdout
    assert re.findall(r"Running stage '([^']+)'", out) == ["evaluate", "latency", "package"]
    status = run(["dvc", "status"], root, tiny_build.env).stdout
    assert status.strip().endswith("Data and pipelines are up to date."), status
    report = json.loads((root / "metrics/eval.json").read_text())
    shipped = sorted(m for m in report if m.startswith("student-") and "+" not in m)  # "+wavelet": variants
    assert shipped == ["student-osediff", "student-sinsr", "student-tadsr"] and "baseline-srvgg" in report
    assert list((root / "dist").glob("sr-onestep-*.tar.gz"))
