"""sr-upscale: latent tiling (seams, determinism), odd inputs, packages, and the CLI end to end on tiny models."""

import hashlib
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sr import infer
from sr.cli import main as upscale_main
from sr.models.resshift import ResShiftModel
from sr.package import deterministic_tarball
from tests.eval.test_evaluate import tiny_model_dir

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("infer") / "student", 0)


def smooth_lq(h: int, w: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lq = torch.rand(1, 3, h // 2, w // 2, generator=g) * 2 - 1
    return F.interpolate(lq, size=(h, w), mode="bilinear", align_corners=False)


def test_tile_starts_cover_the_canvas_with_the_overlap():
    assert infer.tile_starts(10, 16, 4) == [0]
    starts = infer.tile_starts(100, 32, 8)
    assert starts[0] == 0 and starts[-1] == 100 - 32
    assert all(b - a <= 32 - 8 for a, b in itertools.pairwise(starts))


def test_tiling_machinery_is_exact_for_a_pointwise_denoiser(model_dir):
    # with a 1x1 denoiser there is nothing for a tile border to change: ε slicing, y's encode margin, the blending
    # normalisation and the tiled decode must reproduce the untiled result exactly
    class Pointwise(torch.nn.Module):
        size_multiple = 2

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(48, 48, 1)

        def forward(self, x, t, lq):
            return self.conv(x) + lq.mean(1, keepdim=True)

    model = ResShiftModel.from_pretrained(model_dir)
    model.denoiser = Pointwise()
    lq = smooth_lq(40, 52)
    whole = infer.upscale(model, lq, seed=3, steps=4)
    tiled = infer.upscale(model, lq, seed=3, steps=4, tile=16, overlap=4)
    assert (whole - tiled).abs().max() < 1e-5


def test_tiled_vs_untiled_stays_within_the_seam_bound(model_dir):
    # the random UNet's GroupNorm sees per-tile statistics, so tiles differ near their borders; the Gaussian
    # blend keeps one-step outputs within max 0.5 / mean 0.06 (on the [-1, 1] scale) for 2x2 tiles of 32, overlap 16
    model = ResShiftModel.from_pretrained(model_dir)
    lq = smooth_lq(48, 56)
    whole = infer.upscale(model, lq, seed=0, steps=1)
    tiled = infer.upscale(model, lq, seed=0, steps=1, tile=32, overlap=16)
    assert whole.shape == tiled.shape == (1, 3, 192, 224)
    diff = (whole - tiled).abs()
    assert diff.max() < 0.5 and diff.mean() < 0.06
    assert torch.equal(tiled, infer.upscale(model, lq, seed=0, steps=1, tile=32, overlap=16))  # deterministic
    assert not torch.equal(tiled, infer.upscale(model, lq, seed=1, steps=1, tile=32, overlap=16))


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def test_odd_images_become_rgb_at_four_times_the_size(model_dir, tmp_path):
    rng = np.random.default_rng(0)
    cases = {
        "gray.png": (_png(tmp_path / "gray.png", rng.integers(0, 256, (9, 13), dtype=np.uint8)), (13, 9)),
        "rgba.png": (_png(tmp_path / "rgba.png", rng.integers(0, 256, (10, 7, 4), dtype=np.uint8)), (7, 10)),
        "tiny.png": (_png(tmp_path / "tiny.png", rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)), (1, 1)),
    }
    deep = tmp_path / "deep.png"
    Image.fromarray(rng.integers(0, 65536, (6, 11), dtype=np.uint16).astype(np.uint16)).save(deep)
    assert Image.open(deep).mode.startswith("I")
    cases["deep.png"] = (deep, (11, 6))
    for name, (path, (w, h)) in cases.items():
        out = tmp_path / f"out-{name}"
        assert upscale_main([str(path), str(out), "--model", str(model_dir), "--tile", "8", "--overlap", "2"]) == 0
        result = Image.open(out)
        assert result.mode == "RGB" and result.size == (4 * w, 4 * h), name


def test_bad_inputs_give_one_line_each(model_dir, tmp_path, capsys):
    corrupt = tmp_path / "broken.png"
    good = tmp_path / "ok.png"
    _png(good, np.zeros((8, 8, 3), np.uint8))
    corrupt.write_bytes(good.read_bytes()[:40])
    assert upscale_main([str(corrupt), str(tmp_path / "o.png"), "--model", str(model_dir)]) == 1  # the file failed
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{corrupt}: {corrupt}: ") and "\n" not in err
    assert upscale_main([str(good), str(tmp_path / "o.png"), "--model", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path / 'nowhere'}")
    assert not (tmp_path / "o.png").exists()


def test_packages_are_verified_before_use(model_dir, tmp_path):
    folder = tmp_path / "pkg-1"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    sums = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in ("config.json", "model.safetensors"))
    (folder / "SHA256SUMS").write_text(sums)
    tarball = tmp_path / "pkg-1.tar.gz"
    tarball.write_bytes(deterministic_tarball(folder, "pkg-1"))
    img = _png(tmp_path / "in.png", np.full((8, 8, 3), 100, np.uint8))
    assert upscale_main([str(img), str(tmp_path / "a.png"), "--model", str(tarball)]) == 0
    assert upscale_main([str(img), str(tmp_path / "b.png"), "--model", str(model_dir)]) == 0
    assert Image.open(tmp_path / "a.png").tobytes() == Image.open(tmp_path / "b.png").tobytes()
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")  # now differs from SHA256SUMS
    tarball.write_bytes(deterministic_tarball(folder, "pkg-1"))
    assert upscale_main([str(img), str(tmp_path / "c.png"), "--model", str(tarball)]) == 2


def test_cli_end_to_end(model_dir, tmp_path):
    img = _png(tmp_path / "in.jpg.png", np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    out = tmp_path / "out" / "up.png"
    proc = subprocess.run([sys.executable, "-m", "sr.cli", str(img), str(out), "--model", str(model_dir),
                           "--tile", "16", "--overlap", "4", "--seed", "7"],
                          check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (96, 80)
    assert "-> " in proc.stdout
