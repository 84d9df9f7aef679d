"""A real `dvc repro` of the pipeline in a temporary git clone, on the tiny params override: with a recipe removed
from `distill.recipes` it still builds to the package, and editing one recipe's params re-runs only that recipe.
(The paper-scale architectures, imported from stand-ins in the official formats, run in tests/test_rehearsal.py.)"""

import time

import pytest
import yaml

from tests.pipeline_fixtures import clone, run, write_tiny_params

RECIPES = ["sinsr", "tadsr"]  # colearn removed: the pipeline must still build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("clone")
    env = clone(root)
    write_tiny_params(root / "params.yaml", distill={"recipes": RECIPES})
    run(["dvc", "repro"], root, env)
    return root, env


def test_dvc_repro_builds_to_the_package_without_the_removed_recipe_then_is_up_to_date(built):
    root, env = built
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert {f"distill@{r}" for r in RECIPES} <= set(lock) and "distill@colearn" not in lock
    assert list((root / "dist").glob("sr-onestep-*.tar.gz")) and not (root / "models/student-colearn").exists()
    report = yaml.safe_load((root / "metrics/eval.json").read_text())
    shipped = sorted(m for m in report if m.startswith("student-") and "+" not in m)  # "+wavelet": variants
    assert shipped == ["student-osediff", "student-sinsr", "student-tadsr"] and "baseline-srvgg" in report
    start = time.monotonic()
    again = run(["dvc", "repro"], root, env)
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
        status = yaml.safe_load(run(["dvc", "status", "--json"], root, env).stdout.splitlines()[-1])
        assert list(status) == ["distill@tadsr"]
        assert status["distill@tadsr"] == [{"changed deps": {"params.yaml": {"distill.tadsr": "modified"}}}]
    finally:
        write_tiny_params(root / "params.yaml", distill={"recipes": RECIPES})
