"""sr-upscale on files, folders and globs; the Python API exactly as the README prints it; the ONNX Runtime backend
without torch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr.cli import main
from sr.export import export_onnx
from sr.models.resshift import ResShiftModel
from sr.package import build_package, selection_record
from tests.eval.test_evaluate import tiny_model_dir
from tests.pipeline_fixtures import REPO

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("cli") / "student", 0, inference_steps=1, recipe="sinsr")


def mixed_folder(root: Path) -> Path:
    """20 files: 17 readable images of every mode and format (two in a subfolder), 3 corrupt ones."""
    rng = np.random.default_rng(0)
    rgb = lambda: rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    (root / "in" / "sub").mkdir(parents=True)
    for i in range(10):
        Image.fromarray(rgb()).save(root / "in" / f"rgb{i}.png")
    Image.fromarray(rgb()).save(root / "in" / "photo.jpg", quality=90)
    Image.fromarray(rgb()).save(root / "in" / "photo.webp")
    Image.fromarray(rgb()[..., 0]).save(root / "in" / "gray.png")
    Image.fromarray(np.dstack([rgb(), rng.integers(0, 256, (12, 14), dtype=np.uint8)])).save(root / "in" / "rgba.png")
    Image.fromarray(rng.integers(0, 65536, (12, 14), dtype=np.uint16)).save(root / "in" / "deep16.png")
    Image.fromarray(rgb()).save(root / "in" / "sub" / "a.png")
    Image.fromarray(rgb()).save(root / "in" / "sub" / "b.bmp")
    (root / "in" / "truncated.png").write_bytes((root / "in" / "rgb0.png").read_bytes()[:60])
    (root / "in" / "noise.jpg").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (root / "in" / "sub" / "empty.png").write_bytes(b"")
    return root / "in"


def test_a_folder_upscales_every_readable_image_and_reports_the_rest(student, tmp_path, capsys):
    folder = mixed_folder(tmp_path)
    assert len([p for p in folder.rglob("*") if p.is_file()]) == 20
    args = [str(folder), str(tmp_path / "out"), "--model", str(student), "--recursive"]
    assert main(args) == 1
    captured = capsys.readouterr()
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert len(written) == 17 and "sub/b.png" in written and "gray.png" in written
    assert {"photo.jpg.png", "photo.webp.png"} <= set(written)  # the two photos would meet as photo.png
    assert Image.open(tmp_path / "out" / "rgba.png").size == (56, 48)
    reported = sorted(line.split(":")[0] for line in captured.err.splitlines() if line.startswith(str(folder)))
    assert reported == [str(folder / "noise.jpg"), str(folder / "sub" / "empty.png"), str(folder / "truncated.png")]
    assert captured.out.strip().endswith(f"17 done, 0 skipped, 3 failed -> {tmp_path / 'out'}")

    assert main(args) == 1  # again: nothing is redone, the corrupt files fail again
    assert "0 done, 17 skipped, 3 failed" in capsys.readouterr().out


def test_globs_formats_single_files_and_overwrite(student, tmp_path, capsys):
    folder = mixed_folder(tmp_path)
    assert main([str(folder / "rgb[0-9].png"), str(tmp_path / "jpg"), "--model", str(student), "--format", "jpg",
                 "--quality", "70"]) == 0
    assert sorted(p.name for p in (tmp_path / "jpg").iterdir()) == [f"rgb{i}.jpg" for i in range(10)]
    assert Image.open(tmp_path / "jpg" / "rgb3.jpg").format == "JPEG"
    assert main([str(folder / "photo.jpg"), str(tmp_path / "one.webp"), "--model", str(student)]) == 0
    assert Image.open(tmp_path / "one.webp").size == (56, 48)
    before = (tmp_path / "one.webp").stat().st_mtime_ns
    assert main([str(folder / "photo.jpg"), str(tmp_path / "one.webp"), "--model", str(student)]) == 0
    assert (tmp_path / "one.webp").stat().st_mtime_ns == before  # skipped
    assert main([str(folder / "photo.jpg"), str(tmp_path / "one.webp"), "--model", str(student), "--overwrite"]) == 0
    assert "1 done, 0 skipped, 0 failed" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "x"), "--model", str(student)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nowhere'}: no such file, folder or matching pattern"


def _package(student: Path, dist: Path) -> Path:
    report = {"_info": {"teacher": "teacher-4"}, "student-sinsr": {"heldout-realesrgan": {"lpips": 0.2, "psnr_y": 20}},
              "teacher-4": {"heldout-realesrgan": {"lpips": 0.3, "psnr_y": 21}, "cost": {"nfe": 4, "params": 1}}}
    report["student-sinsr"]["cost"] = {"nfe": 1, "params": 1}
    selection = selection_record(report, "student-sinsr", "heldout-realesrgan", "lpips", 0.5, "sr-onestep", "0.1.0")
    onnx = export_onnx(ResShiftModel.from_pretrained(student), dist.parent / "model.onnx")
    return build_package(student, selection, report, [], {}, 4, dist, [onnx])


def test_the_python_api_example_of_the_readme_runs_as_printed(student, tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.DOTALL).group(1)
    assert "Upscaler.from_pretrained" in example and len(example.strip().splitlines()) <= 6
    _package(student, tmp_path / "dist")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 26, 3), dtype=np.uint8)).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})  # noqa: S102 - the README example, run as printed
    assert Image.open(tmp_path / "photo_x4.png").size == (104, 80)


def test_onnx_backend_runs_a_package_without_importing_torch(student, tmp_path):
    tarball = _package(student, tmp_path / "dist")
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (30, 20, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    code = ("import sys, json; from sr.cli import main; "
            f"rc = main([{str(tmp_path / 'a.png')!r}, {str(tmp_path / 'b.png')!r}, '--model', {str(tarball)!r}, "
            "'--backend', 'onnx', '--tile', '8', '--overlap', '4']); "
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "torch": False}, done.stderr[-2000:]
    assert Image.open(tmp_path / "b.png").size == (80, 120)
