"""params.yaml and dvc.yaml agree with the code: validation errors, declared params, paper-scale configs."""

import importlib
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import pytest
import yaml

from sr.config import (
    DistillRecipe,
    ParamsError,
    ParamsView,
    load_overlay,
    load_params,
    merge,
    open_params,
    parse_params,
)

REPO = Path(__file__).resolve().parents[1]


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _module(stage: dict):
    cmd = stage["do"]["cmd"] if "do" in stage else stage["cmd"]
    return importlib.import_module(cmd.split("-m ", 1)[1].split()[0])


def test_committed_params_validate():
    params = load_params(REPO / "params.yaml")
    assert params.degrade.hq_size == 64 and params.teacher.diffusion.steps == 15


@pytest.mark.parametrize("name", sorted(_stages()))
def test_dvc_params_match_what_the_stage_declares(name):
    stage = _stages()[name]
    if "do" in stage:  # foreach over distill.recipes: one item per recipe of the DistillRecipe type
        assert stage["foreach"] == "${distill.recipes}"
        for recipe in get_args(DistillRecipe):
            declared = [key.replace("${item}", recipe) for key in stage["do"]["params"]]
            assert sorted(declared) == sorted(_module(stage).params(recipe))
    else:
        assert sorted(stage["params"]) == sorted(_module(stage).PARAMS)


def test_the_recipe_list_comes_from_one_type():
    """DistillRecipe names every recipe: its file, the trainer's dispatch, the stage's choices, the dvc deps."""
    recipes = get_args(DistillRecipe)
    assert sorted(p.stem for p in (REPO / "sr/train/recipes").glob("*.py") if p.stem not in ("__init__", "base")) \
        == sorted(recipes)
    assert "sr/train/recipes/${item}.py" in _stages()["distill"]["do"]["deps"]
    for stage in ("evaluate", "latency", "package"):
        deps = _stages()[stage]["deps"]
        assert "models" in deps and not [d for d in deps if d.startswith("models/")], stage


def test_models_carry_no_default_for_a_key_params_yaml_sets():
    """params.yaml is the one source of the embedded default: a field it sets has no second default in code."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())

    def walk(model, values, path):
        for key, value in values.items():
            field = type(model).model_fields[key]
            assert field.is_required(), f"{path}{key} has a code default ({field.default!r}) as well as params.yaml's"
            child = getattr(model, key)
            if isinstance(value, dict):
                walk(child, value, f"{path}{key}.")

    walk(load_params(REPO / "params.yaml"), data, "")


def test_view_refuses_undeclared_keys_and_records_reads():
    view = ParamsView(load_params(REPO / "params.yaml"), ["seed", "degrade.hq_size"])
    assert view.degrade.hq_size == 64 and view.seed == 0
    assert view.read == {"seed", "degrade.hq_size"}
    with pytest.raises(AttributeError, match="param 'degrade.scale' is not declared"):
        view.degrade.scale


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"degrade": {"noise_rnage": 1}}, "params.yaml: degrade.noise_rnage = 1: unknown key; allowed: scale, hq_size"),
        ({"degrade": {"scale": 3}}, "params.yaml: degrade.scale = 3: Input should be 2 or 4"),
        ({"teacher": {"arch": "dit"}}, "params.yaml: teacher.arch = 'dit': Input should be 'unet' or 'resshift_swin'"),
        ({"degrade": {"stage1": {"resize_range": [2, 1]}}}, "params.yaml: degrade.stage1.resize_range = [2, 1]: "),
        ({"download": {"sources": [{"kind": "url", "url": "https://x/a.zip", "sha256": "abc"}]}},
         "params.yaml: download.sources[0].sha256 = 'abc': String should match pattern"),
    ],
)
def test_bad_params_give_one_line_naming_the_key(patch, message):
    data = merge(yaml.safe_load((REPO / "params.yaml").read_text()), patch)
    with pytest.raises(ParamsError) as err:
        parse_params(data)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_typo_fails_fast_from_the_command_line(tmp_path):
    text = (REPO / "params.yaml").read_text().replace("  noise_range: [1.0, 30.0]", "  noise_rnage: [1.0, 30.0]", 1)
    (tmp_path / "params.yaml").write_text(text)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "stages.degrade", "--params", str(tmp_path / "params.yaml")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'params.yaml'}: degrade.stage1.noise_rnage = [1.0, 30.0]: unknown key; allowed: "
        "resize_prob, resize_range, gaussian_noise_prob, noise_range, poisson_scale_range, gray_noise_prob, jpeg_range"
    ]
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(ParamsError, match="cannot read params file"):
        load_params(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("seed: [1,\n")
    with pytest.raises(ParamsError, match=r"bad.yaml: line \d+ is not valid YAML"):
        load_params(tmp_path / "bad.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_overlays_hold_only_changes_and_apply_onto_params_yaml(path, tmp_path):
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    overlay = load_overlay(path)

    def changes_only(over, under, where):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(under.get(key), dict):
                changes_only(value, under[key], f"{where}{key}.")
            else:
                assert under.get(key, object()) != value, f"{path.name}: {where}{key} repeats params.yaml's value"

    changes_only(overlay, base, "")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    proc = subprocess.run([sys.executable, "-m", "sr.config", "apply", str(path), "--params",
                           str(tmp_path / "params.yaml")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    applied = load_params(tmp_path / "params.yaml")
    assert applied == parse_params(merge(base, overlay))
    # paper scale: 256 crops (OSEDiff: 512); the CPU rehearsals keep the embedded default's
    expected = 512 if path.name.startswith("osediff") else base["degrade"]["hq_size"] \
        if path.name.startswith("rehearsal") else 256
    assert applied.degrade.hq_size == expected
    text = (tmp_path / "params.yaml").read_text()
    assert "# The embedded default" in text and "# ResShift v1: T=15" in text  # params.yaml's comments survive


def test_an_overlay_copied_over_params_yaml_says_how_to_apply_it(tmp_path):
    shutil.copy(REPO / "configs/resshift-v1-import.yaml", tmp_path / "params.yaml")
    with pytest.raises(ParamsError) as err:
        load_params(tmp_path / "params.yaml")
    assert str(err.value) == (f"{tmp_path / 'params.yaml'}: is an overlay of params.yaml, not a params file; apply it "
                              f"with `python -m sr.config apply {tmp_path / 'params.yaml'}`")


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"download": {"min_size": 32}}, "download.min_size = 32: smaller than the crops it must hold "
                                         "(degrade.hq_size = 64)"),
        ({"evaluate": {"teacher_steps": [4, 20]}}, "evaluate.teacher_steps = [4, 20]: 20 exceeds the teacher's "
                                                   "teacher.diffusion.steps = 15"),
        ({"teacher": {"arch": "resshift_swin"}}, "teacher.swin.image_size = 64: × autoencoder factor 4 must equal "
                                                 "degrade.hq_size = 64"),
        ({"teacher": {"unet": {"channel_mult": [1, 2, 2, 2, 2, 2]}}},
         "teacher.unet.channel_mult = [1, 2, 2, 2, 2, 2]: the 16-pixel latent of degrade.hq_size = 64 is not a multiple "
         "of 32"),
    ],
)
def test_cross_section_rules_fail_at_load_with_one_line(patch, message):
    data = merge(yaml.safe_load((REPO / "params.yaml").read_text()), patch)
    with pytest.raises(ParamsError) as err:
        parse_params(data)
    assert str(err.value) == f"params.yaml: {message}"


def test_open_params_validates_whole_file(tmp_path):
    (tmp_path / "p.yaml").write_text("download: {sources: [{kind: bundled}]}\nbogus: 1\n")
    with pytest.raises(ParamsError, match="bogus = 1: unknown key"):
        open_params(tmp_path / "p.yaml", ["seed"])
