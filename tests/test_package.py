"""The packaging rule, the model card, and a byte-deterministic archive (two runs -> the same sha256)."""

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from sr.package import SelectionError, deterministic_tarball, select_student, verify_package
from stages import package as stage
from tests.eval.test_evaluate import tiny_model_dir

REPO = Path(__file__).resolve().parents[1]


def fake_report(students: dict[str, tuple[float, float]], teacher_psnr: float = 25.0) -> dict:
    """students: name -> (psnr_y, lpips) on heldout-realesrgan."""
    def entry(psnr: float, lpips: float, nfe: int) -> dict:
        return {"heldout-realesrgan": {"psnr_y": psnr, "ssim_y": 0.7, "lpips": lpips},
                "cost": {"nfe": nfe, "params": 1000}}

    report = {"bicubic": entry(23.0, 0.5, 0), "teacher-15": entry(teacher_psnr, 0.3, 15)}
    report.update({name: entry(psnr, lp, 1) for name, (psnr, lp) in students.items()})
    report["_info"] = {"teacher": "teacher-15", "focus_dataset": "heldout-realesrgan", "notes": []}
    return report


def test_rule_prefers_best_lpips_among_students_within_the_psnr_margin():
    report = fake_report({"student-sinsr": (24.8, 0.28), "student-tadsr": (24.0, 0.20), "student-colearn": (24.6, 0.25)})
    # tadsr has the best LPIPS but is 1 dB below the teacher: colearn wins
    assert select_student(report, "heldout-realesrgan", "lpips", 0.5) == "student-colearn"
    # a wider margin lets tadsr qualify: then it wins
    assert select_student(report, "heldout-realesrgan", "lpips", 1.5) == "student-tadsr"
    # higher is better for PSNR
    assert select_student(report, "heldout-realesrgan", "psnr_y", 1.5) == "student-sinsr"


def test_colour_fix_variants_and_the_baseline_are_scored_but_never_shipped():
    report = fake_report({"student-sinsr": (24.8, 0.28), "student-sinsr+wavelet": (24.9, 0.10),
                          "baseline-srvgg": (24.9, 0.05)})
    assert select_student(report, "heldout-realesrgan", "lpips", 0.5) == "student-sinsr"


def test_rule_fails_clearly_when_nothing_qualifies_or_the_dataset_is_missing():
    report = fake_report({"student-sinsr": (23.9, 0.28), "student-tadsr": (24.0, 0.20)})
    with pytest.raises(SelectionError, match=r"no student qualifies: PSNR\(Y\) on heldout-realesrgan must be >= "
                                             r"teacher-15's 25.00 - 0.5 dB = 24.50; got student-sinsr 23.90, "
                                             r"student-tadsr 24.00"):
        select_student(report, "heldout-realesrgan", "lpips", 0.5)
    with pytest.raises(SelectionError, match="package.dataset: 'val' was not evaluated"):
        select_student(report, "val", "lpips", 0.5)
    with pytest.raises(SelectionError, match="no student"):
        select_student(fake_report({}), "heldout-realesrgan", "lpips", 0.5)


def _workspace(root: Path) -> list[str]:
    tiny_model_dir(root / "models" / "student-colearn", 3, inference_steps=1, recipe="colearn")
    tiny_model_dir(root / "models" / "student-sinsr", 4, inference_steps=1, recipe="sinsr")
    (root / "metrics").mkdir()
    report = fake_report({"student-sinsr": (24.8, 0.28), "student-colearn": (24.6, 0.25)})
    (root / "metrics" / "eval.json").write_text(json.dumps(report))
    (root / "plots" / "eval").mkdir(parents=True)
    (root / "plots" / "eval" / "grid-heldout-realesrgan.png").write_bytes(b"\x89PNG fake grid")
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "degrade": {"outs": [{"path": "data/shards", "md5": "a" * 32 + ".dir"}]},
        "distill@colearn": {"outs": [{"path": "models/student-colearn", "md5": "b" * 32 + ".dir"}]}}}))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    # relative paths, as dvc.yaml gives them: the tests chdir into `root`
    return ["--params", "params.yaml", "--models", "models", "--metrics", "metrics/eval.json", "--plots", "plots/eval",
            "--lock", "dvc.lock", "--out", "dist"]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> tuple[Path, list[str]]:
    """A workspace and one run of the package stage in it (each run exports the ONNX graph: seconds)."""
    root = tmp_path_factory.mktemp("package")
    args = _workspace(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert stage.main(args) == 0
    return root, args


def test_two_package_runs_give_identical_archives(packaged, monkeypatch):
    tmp_path, args = packaged
    monkeypatch.chdir(tmp_path)
    tarball = tmp_path / "dist" / "sr-onestep-0.1.0.tar.gz"
    first = hashlib.sha256(tarball.read_bytes()).hexdigest()
    (tmp_path / "dist" / "sr-onestep-0.1.0" / "README.md").touch()  # a newer mtime must not matter
    assert stage.main(args) == 0
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() == first

    folder = tmp_path / "dist" / "sr-onestep-0.1.0"
    verify_package(folder, "dist")  # every file is listed in SHA256SUMS with its hash, nothing extra
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == ["README.md", "SHA256SUMS", "config.json", "eval.json", "grids/grid-heldout-realesrgan.png",
                     "model.onnx", "model.safetensors", "modeldb.json", "selection.json"]
    assert json.loads((folder / "selection.json").read_text()) == {
        "name": "sr-onestep", "version": "0.1.0", "student": "student-colearn", "dataset": "heldout-realesrgan",
        "metric": "lpips", "value": 0.25, "lower_is_better": True, "max_psnr_drop_db": 0.5}
    assert (folder / "model.safetensors").read_bytes() == (
        tmp_path / "models" / "student-colearn" / "model.safetensors").read_bytes()
    card = (folder / "README.md").read_text()
    assert "**student-colearn**" in card and "| teacher-15 | 25.00 |" in card
    assert f"`models/student-colearn` (dvc.lock md5): `{'b' * 32}.dir`" in card
    assert "`data/shards` (dvc.lock md5): `" + "a" * 32 in card and "![grids/grid-heldout-realesrgan.png]" in card
    assert "teacher's minus 0.5 dB: 0.2500." in card
    assert "| **student-colearn** | 24.60 | 0.7000 | 0.2500 | – | – | – | 1 | 1,000 |" in card  # no chroma/blockiness here
    assert "commit" not in card  # nothing that changes run to run; latency is only pointed to
    assert "machine-dependent" in card and "metrics/latency.json" in card

    with tarfile.open(tarball, "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert members[0].name == "sr-onestep-0.1.0" and members[0].isdir()
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "" for m in members)
    assert tarball.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime


def test_the_model_card_is_a_valid_modeldb_entry_naming_every_weight_file(packaged):
    import jsonschema

    folder = packaged[0] / "dist" / "sr-onestep-0.1.0"
    card = json.loads((folder / "modeldb.json").read_text())
    jsonschema.validate(card, json.loads((REPO / "docs" / "modeldb.schema.json").read_text()))
    assert card["scale"] == 4 and card["architecture"] == "resshift-unet" and card["license"] is None
    assert card["trainingHRSize"] == 64 and card["dataset"] == "bundled"
    assert card["metrics"]["heldout-realesrgan"] == {"psnr_y": 24.6, "lpips": 0.25, "ssim_y": 0.7}
    sums = dict(line.split("  ")[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert {r["file"]: r["sha256"] for r in card["resources"]} == {
        "model.safetensors": sums["model.safetensors"], "model.onnx": sums["model.onnx"]}
    assert {r["file"]: r["size"] for r in card["resources"]}["model.onnx"] == (folder / "model.onnx").stat().st_size
    with pytest.raises(jsonschema.ValidationError, match="sha256"):
        jsonschema.validate({**card, "resources": [{**card["resources"][0], "sha256": "xyz"}]},
                            json.loads((REPO / "docs" / "modeldb.schema.json").read_text()))


def test_tarball_bytes_do_not_depend_on_file_times_or_creation_order(tmp_path):
    for name, order in (("a", ["x.txt", "sub/y.bin"]), ("b", ["sub/y.bin", "x.txt"])):
        for rel in order:
            path = tmp_path / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rel.encode())
    assert deterministic_tarball(tmp_path / "a", "pkg") == deterministic_tarball(tmp_path / "b", "pkg")


def test_no_qualifying_student_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    args = _workspace(tmp_path)
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps(fake_report({"student-sinsr": (20.0, 0.2)})))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["stages.package", *args])
    from stages._cli import run

    assert run(stage.main, ValueError) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: package: no student qualifies") and "\n" not in err
    assert not (tmp_path / "dist").exists()


def test_publish_uploads_the_archive(tmp_path, monkeypatch, s3_bucket):
    args = _workspace(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["package"]["publish"] = f"s3://{s3_bucket}/models"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert stage.main(args) == 0
    from sr.storage import read_s3_bytes

    assert read_s3_bytes(f"s3://{s3_bucket}/models/sr-onestep/latest").decode().strip() == "0.1.0"
    selection = read_s3_bytes(f"s3://{s3_bucket}/models/sr-onestep/0.1.0/selection.json")
    assert selection == (tmp_path / "dist/sr-onestep-0.1.0/selection.json").read_bytes()
    data = read_s3_bytes(f"s3://{s3_bucket}/models/sr-onestep/0.1.0/sr-onestep-0.1.0.tar.gz")
    assert data == (tmp_path / "dist" / "sr-onestep-0.1.0.tar.gz").read_bytes()
