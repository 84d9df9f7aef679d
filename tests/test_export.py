"""sr-export: the one-step student as one ONNX graph, run by ONNX Runtime with the same numbers as torch."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from sr.export import OnnxGraph, export_onnx, noise_canvas, tiled_noise
from sr.models.resshift import ResShiftModel
from tests.eval.test_evaluate import TEACHER
from tests.pipeline_fixtures import REPO

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def student(path: Path) -> ResShiftModel:
    """A random one-step student with attention on its half-resolution level, windows of 4 latent positions."""
    torch.manual_seed(3)
    unet = TEACHER.unet.model_copy(update={"attention_levels": [1], "attention_window": 4})
    ResShiftModel.build(TEACHER.model_copy(update={"unet": unet}), 4, path.parent, inference_steps=1,
                        recipe="tadsr").save_pretrained(path)
    return ResShiftModel.from_pretrained(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = student(root / "student")
    return root, model, export_onnx(model, root / "model.onnx"), export_onnx(model, root / "eps.onnx", noise_input=True)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.clip(array[0].transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


# (LQ sizes) a grid within one attention window (global in torch, one masked window in the graph), odd sides that
# the graph pads, and a grid of several windows
SIZES = [(6, 8), (17, 23), (40, 52)]


def _both(model, baked: Path, size: tuple[int, int]) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A seeded image of `size`, and (ONNX Runtime, torch) outputs for it."""
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(size[0]))
    with torch.no_grad():
        want = OnnxGraph(model)(image)
    got = ort.InferenceSession(str(baked), providers=["CPUExecutionProvider"]).run(None, {"image": image.numpy()})[0]
    return image, got, want.numpy()


def test_the_8_bit_images_agree_on_at_least_one_size(exported):
    # ≤1e-4 apart, a value can still round to the next 8-bit level; on small images it usually does not
    _, model, baked, _ = exported
    same = [png(got) == png(want) for _, got, want in (_both(model, baked, size) for size in SIZES)]
    assert any(same), same


@pytest.mark.parametrize("size", SIZES)
def test_onnx_runtime_matches_torch(exported, size):
    _, model, baked, eps_graph = exported
    image, got, want = _both(model, baked, size)
    assert got.shape == (1, 3, size[0] * 4, size[1] * 4)
    assert np.abs(got - want).max() <= 1e-4
    # the baked ε is the seeded canvas repeated over the latent: the same as passing it as the second input
    eps = tiled_noise(noise_canvas(48, 0), size[0] + size[0] % 2, size[1] + size[1] % 2)
    session = ort.InferenceSession(str(eps_graph), providers=["CPUExecutionProvider"])
    given = session.run(None, {"image": image.numpy(), "eps": eps.numpy()})[0]
    assert np.abs(given - got).max() <= 1e-5


def test_graph_is_one_self_contained_file_with_metadata(exported):
    root, _, baked, _ = exported
    proto = onnx.load(baked)
    assert [i.name for i in proto.graph.input] == ["image"] and [o.name for o in proto.graph.output] == ["hq"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["scale"] == "4" and meta["noise"] == "baked, seed 0" and meta["recipe"] == "tadsr"
    assert sorted(p.name for p in root.iterdir()) == ["eps.onnx", "model.onnx", "student"]  # no external data


def test_the_graph_equals_the_torch_upscale_at_the_same_noise(exported):
    """What the graph computes is the student's one step (sr.infer.upscale with the same ε), not an approximation."""
    _, model, _, _ = exported
    image = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(1))
    eps = torch.randn(1, 48, 16, 20, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        graph = OnnxGraph(model, noise_input=True)(image, eps)
    torch.testing.assert_close(graph * 2 - 1, model.upscale(image * 2 - 1, eps), rtol=0, atol=2e-6)


def test_fp16_export_stores_half_weights_and_the_cli_writes_the_same_bytes(exported, tmp_path):
    root, model, _, _ = exported
    half = export_onnx(model, tmp_path / "half.onnx", fp16=True)
    proto = onnx.load(half)
    weights = [t for t in proto.graph.initializer if np.prod(t.dims) > 64]  # not the shape and scalar constants
    assert weights and {t.data_type for t in weights} == {onnx.TensorProto.FLOAT16}
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    done = subprocess.run([sys.executable, "-m", "sr.export", str(root / "student"), str(tmp_path / "cli.onnx"),
                           "--fp16"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "cli.onnx").read_bytes() == half.read_bytes()  # deterministic bytes


def test_cli_refuses_a_multistep_model(tmp_path):
    torch.manual_seed(0)
    ResShiftModel.build(TEACHER, 4, tmp_path).save_pretrained(tmp_path / "teacher")  # T steps
    refused = subprocess.run([sys.executable, "-m", "sr.export", str(tmp_path / "teacher"), str(tmp_path / "t.onnx")],
                             cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: export: the model takes 4 steps; only one-step models export as one graph"


def test_an_osediff_student_with_a_fixed_prompt_exports(tmp_path):
    """Its graph is one step at t=999 with the prompt's embeddings baked in; a tagger or a sampled VAE is refused."""
    from sr.models.osediff import OSEDiffConfig, OSEDiffStudent, make_generator
    from sr.models.sd import build_small_sd
    from sr.models.tagger import Prompter, TaggerSpec
    from tests.pipeline_fixtures import default_params

    p = default_params().osediff
    sd = build_small_sd(p.small.model_copy(update={"vae_channels": [8, 8, 8], "unet_channels": [8, 16],
                                                   "cross_attention_dim": 8, "text_heads": 1}), seed=0)
    gen = make_generator(sd, p.lora, "mode", torch.Generator().manual_seed(0))
    config = OSEDiffConfig(base="base", scale=4, vae_sample="mode", prompt="a photo")
    model = OSEDiffStudent(gen, Prompter(sd.text_encoder, sd.tokenizer, "a photo"), config)
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "osediff.onnx")), providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, 10, 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = (model(image * 2 - 1) + 1) / 2
    assert np.abs(session.run(None, {"image": image.numpy()})[0] - want.numpy()).max() <= 1e-4
    for update, reason in (({"vae_sample": "sample"}, "samples its VAE posterior"),
                           ({"tagger": TaggerSpec(path="t", threshold=0.5, max_tags=3)}, "tags each image")):
        model.config = config.model_copy(update=update)
        with pytest.raises(ValueError, match=reason):
            export_onnx(model, tmp_path / "refused.onnx")
