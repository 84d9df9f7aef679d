"""params.yaml and dvc.yaml agree with the code: validation errors, declared params, paper-scale configs."""

import importlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sr.config import ParamsError, ParamsView, load_params, open_params, parse_params

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
    declared = stage["do"]["params"] if "do" in stage else stage["params"]
    assert sorted(declared) == sorted(_module(stage).PARAMS)


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
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, value in patch.items():
        data[section] = {**data[section], **value} if section != "download" else value
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
def test_paper_scale_configs_validate(path):
    params = load_params(path)
    assert params.degrade.hq_size == (512 if path.name.startswith("osediff") else 256)  # OSEDiff: 512 crops


def test_open_params_validates_whole_file(tmp_path):
    (tmp_path / "p.yaml").write_text("download: {sources: [{kind: bundled}]}\nbogus: 1\n")
    with pytest.raises(ParamsError, match="bogus = 1: unknown key"):
        open_params(tmp_path / "p.yaml", ["seed"])
