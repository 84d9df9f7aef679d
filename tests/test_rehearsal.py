"""The two rehearsals of the paper-scale path (configs/rehearsal-*.yaml), each as a user runs it in a fresh clone:
scripts/stand_ins.py writes the official-format stand-ins, the overlay is applied, `dvc repro` builds the whole DAG,
and `sr-upscale` runs the result."""

from __future__ import annotations

import json
import math
import sys
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from sr.config import SwinUNetParams, VQParams, load_overlay
from sr.export import OnnxGraph
from sr.models.loader import load_model
from sr.models.resshift_swin import SwinBlock
from tests.pipeline_fixtures import REPO, clone, run

FULL = {"psnr_y", "ssim_y", "lpips", "chroma", "blockiness"}
DATASETS = {"val": FULL,  # 64 px crops: no NIQE (niqe_min_size 96)
            "heldout-realesrgan": FULL | {"niqe"}, "heldout-mild": FULL | {"niqe"}, "heldout-bicubic": FULL | {"niqe"}}


def rehearse(root: Path, kind: str, out: str, overlay: str) -> dict:
    env = clone(root)
    run([sys.executable, "scripts/stand_ins.py", "--kind", kind, "--size", "tiny", "--out", out], root, env)
    run([sys.executable, "-m", "sr.config", "apply", overlay], root, env)
    run(["dvc", "repro"], root, env)
    return env


def check_report(report: dict, students: dict[str, str], teacher_steps: list[int]) -> None:
    """Bicubic, the teacher at each of `teacher_steps`, the GAN baseline and the students were evaluated (each
    student also with the colour fix it does not ship: `students` maps it to that fix), each with every metric of
    every dataset, each a finite number."""
    methods = set(report) - {"_info"}
    teachers = {m for m in methods if m.startswith("teacher-")}
    assert set(report["_info"]["datasets"]) == set(DATASETS)
    assert methods - teachers == {"bicubic", "baseline-srvgg", *students, *(f"{s}+{f}" for s, f in students.items())}
    assert sorted(report[m]["cost"]["nfe"] for m in teachers) == sorted(teacher_steps)
    for method in methods:
        for dataset, metrics in DATASETS.items():
            values = report[method][dataset]
            assert set(values) == metrics, (method, dataset, values)
            assert all(math.isfinite(v) for v in values.values()), (method, dataset, values)


def held_out_photo(root: Path, side: int) -> Path:
    """A side x side center crop of the clone's held-out photo, as a PNG to upscale."""
    row = next(r for r in map(json.loads, (root / "data/raw/manifest.jsonl").read_text().splitlines())
               if r["split"] == "val")
    img = Image.open(root / "data/raw/images" / f"{row['id']}.png")
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img.crop((left, top, left + side, top + side)).save(root / "photo.png")
    return root / "photo.png"


def upscaled(root: Path, env: dict, model: str, side: int, *options: str) -> np.ndarray:
    out = root / f"photo_x4_{side}.png"
    # `python -m sr.cli` is sr-upscale run from the clone's code (the console script imports the installed checkout)
    proc = run([sys.executable, "-m", "sr.cli", str(held_out_photo(root, side)), str(out), "--model", model, *options],
               root, env)
    assert f"1 done, 0 skipped, 0 failed -> {out}" in proc.stdout
    return np.asarray(Image.open(out))


def test_resshift_rehearsal_imports_distills_evaluates_packages_and_upscales(tmp_path):
    env = rehearse(tmp_path, "resshift", "weights/rehearsal", "configs/rehearsal-resshift.yaml")
    overlay = load_overlay(REPO / "configs/rehearsal-resshift.yaml")

    # the teacher is the official-format import, at the overlay's Swin / VQ-f4 architecture
    teacher = json.loads((tmp_path / "models/teacher/config.json").read_text())
    assert teacher["arch"] == "resshift_swin" and teacher["source"] == overlay["teacher"]["checkpoint"]
    assert SwinUNetParams(**teacher["swin"]) == SwinUNetParams(**overlay["teacher"]["swin"])
    assert VQParams(**teacher["vq"]) == VQParams(**overlay["teacher"]["autoencoder"]["vq"])
    model = load_model(tmp_path / "models/teacher")
    windows = [m for m in model.denoiser.modules() if isinstance(m, SwinBlock)]
    assert len(windows) == 18 and {m.shift for m in windows} == {0, 4}  # 9 Swin layers of 2, shifted at 16x16

    report = json.loads((tmp_path / "metrics/eval.json").read_text())
    students = {**{f"student-{r}": "wavelet" for r in ("sinsr", "tadsr", "colearn")}, "student-osediff": "none"}
    check_report(report, students, [15, 1])
    assert report["teacher-15"]["cost"] == {"nfe": 15, "params": sum(p.numel() for p in model.parameters())}
    assert report["student-colearn"]["cost"]["nfe"] == 1

    # the package ships a Swin student (package.students) with its weights, its VQ-f4 and its ONNX graph
    selection = json.loads((tmp_path / "dist/sr-onestep-0.1.0/selection.json").read_text())
    assert selection["student"] in {"student-sinsr", "student-tadsr", "student-colearn"}
    assert selection["students"] == overlay["package"]["students"] == ["sinsr", "tadsr", "colearn"]
    card = (tmp_path / "dist/sr-onestep-0.1.0/README.md").read_text()
    assert "among the students (sinsr, tadsr, colearn) whose PSNR(Y)" in card
    with tarfile.open(tmp_path / "dist/sr-onestep-0.1.0.tar.gz") as tf:
        names = {Path(m.name).relative_to("sr-onestep-0.1.0").as_posix() for m in tf.getmembers() if m.isfile()}
    assert {"config.json", "model.safetensors", "autoencoder.safetensors", "model.onnx", "SHA256SUMS",
            "selection.json", "eval.json", "modeldb.json", "README.md"} <= names
    packaged = json.loads((tmp_path / "dist/sr-onestep-0.1.0/config.json").read_text())
    assert packaged["arch"] == "resshift_swin" and packaged["inference_steps"] == 1
    assert f"student-{packaged['recipe']}" == selection["student"]

    # its ONNX graph runs in ONNX Runtime at sizes it was not traced at, and equals the torch graph there; at 128x128
    # (a 128x128 latent) near-tied VQ-f4 codes pick the same entry as in torch, which a reordering graph optimizer broke
    model = load_model(tmp_path / "dist/sr-onestep-0.1.0")
    session = ort.InferenceSession(str(tmp_path / "dist/sr-onestep-0.1.0/model.onnx"))
    for side in [(20, 36), (128, 128)]:
        image = torch.from_numpy(np.random.RandomState(0).rand(1, 3, *side).astype(np.float32))
        with torch.no_grad():
            expected = OnnxGraph(model)(image).numpy()
        np.testing.assert_allclose(session.run(None, {"image": image.numpy()})[0], expected, atol=1e-4)

    # sr-upscale runs the package tiled on a 256x256 photo
    hq = upscaled(tmp_path, env, "dist/sr-onestep-0.1.0.tar.gz", 256, "--tile", "64", "--overlap", "16")
    assert hq.shape == (1024, 1024, 3) and hq.dtype == np.uint8 and hq.std() > 1


def test_osediff_rehearsal_tunes_the_sd21_structure_evaluates_packages_and_upscales(tmp_path):
    base = "weights/rehearsal/stable-diffusion-2-1-base"
    env = rehearse(tmp_path, "sd21", base, "configs/rehearsal-osediff.yaml")

    # the stand-in is SD-2.1-base's diffusers folder: its block layout, linear projections, OpenCLIP text tower, tokenizer
    folder = tmp_path / base
    unet = json.loads((folder / "unet/config.json").read_text())
    assert unet["down_block_types"] == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    assert unet["up_block_types"] == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
    assert unet["use_linear_projection"] and unet["layers_per_block"] == 2 and len(unet["block_out_channels"]) == 4
    text = json.loads((folder / "text_encoder/config.json").read_text())
    assert (text["num_hidden_layers"], text["hidden_act"], text["vocab_size"]) == (23, "gelu", 49408)
    assert unet["cross_attention_dim"] == text["hidden_size"]
    assert json.loads((folder / "tokenizer/special_tokens_map.json").read_text())["pad_token"] == "!"
    assert len(json.loads((folder / "tokenizer/vocab.json").read_text())) == 49408
    assert json.loads((folder / "scheduler/scheduler_config.json").read_text())["_class_name"] == "PNDMScheduler"
    vae = json.loads((folder / "vae/config.json").read_text())
    assert len(vae["block_out_channels"]) == 4 and vae["latent_channels"] == 4  # f8
    assert (folder / "unet/diffusion_pytorch_model.safetensors").is_file()

    # OSEDiff trained LoRA on it with the overlay's prompt, LoRA on the transformers' linear projections included
    student = json.loads((tmp_path / "models/student-osediff/config.json").read_text())
    assert (student["base"], student["prompt"], student["vae_sample"]) == (base, "a high quality, detailed photo",
                                                                          "sample")
    modules = json.loads((tmp_path / "models/student-osediff/lora_modules.json").read_text())["modules"]["unet"]
    assert "down_blocks.0.attentions.0.proj_in" in modules["default_encoder"]
    assert "mid_block.attentions.0.transformer_blocks.0.attn2.to_k" in modules["default_others"]

    report = json.loads((tmp_path / "metrics/eval.json").read_text())
    check_report(report, {"student-sinsr": "wavelet", "student-osediff": "none"}, [15, 1])
    selection = json.loads((tmp_path / "dist/sr-onestep-0.1.0/selection.json").read_text())
    assert selection["student"] == "student-osediff"
    with tarfile.open(tmp_path / "dist/sr-onestep-0.1.0.tar.gz") as tf:
        names = {Path(m.name).relative_to("sr-onestep-0.1.0").as_posix() for m in tf.getmembers() if m.isfile()}
    assert {"config.json", "lora.safetensors", "lora_modules.json", "SHA256SUMS"} <= names
    assert not any(name.startswith("base/") for name in names)  # the SD-2.1 base stays where the config names it

    # sr-upscale runs the student at OSEDiff's 512x512 output
    hq = upscaled(tmp_path, env, "models/student-osediff", 128)
    assert hq.shape == (512, 512, 3) and hq.std() > 1
