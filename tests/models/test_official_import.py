"""Official-checkpoint import on tiny stand-ins saved the way ResShift saves its releases (scripts/stand_ins.py).

`resshift_realsrx4_*.pth` is trainer.py's EMA state: the DDP model's full state_dict (keys `module.`-prefixed,
Swin buffers included); training checkpoints nest it under 'state_dict' next to counters. `autoencoder_vq_f4.pth`
is a bare state_dict (ResShift loads it with load_state_dict(strict=True)).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from scripts.stand_ins import official_unet_dict, randomize
from sr.config import SwinUNetParams
from sr.models.official import CheckpointError, import_resshift_unet, import_vq_f4, load_official_state_dict
from sr.models.resshift_swin import ResShiftSwinUNet
from sr.models.vq_f4 import VQF4

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = json.loads((FIXTURES / "resshift_tiny_reference.json").read_text())
TINY_UNET = SwinUNetParams(**REFERENCE["unet"]["config"])
TINY_VQ = REFERENCE["vq"]["config"]


def unet_output(model: ResShiftSwinUNet) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    x, lq = torch.randn(2, 3, 16, 16, generator=g), torch.randn(2, 3, 16, 16, generator=g)
    with torch.no_grad():
        return model(x, torch.tensor([0, 5]), lq)


def test_stand_in_has_exactly_the_official_file_layout() -> None:
    stand_in = official_unet_dict(ResShiftSwinUNet(TINY_UNET))
    expected = {"module." + k: s for k, s in REFERENCE["unet"]["state_dict"].items()}
    assert {k: list(v.shape) for k, v in stand_in.items()} == expected


@pytest.mark.parametrize("wrapping", ["ema", "training_checkpoint", "compiled"])
def test_unet_import_round_trips_through_pth_and_safetensors(tmp_path: Path, wrapping: str) -> None:
    source = randomize(ResShiftSwinUNet(TINY_UNET), seed=11)
    state = official_unet_dict(source)
    match wrapping:
        case "ema":
            payload: dict = state
        case "training_checkpoint":
            payload = {"iters_start": 500, "log_step": {"train": 3, "val": 1}, "state_dict": state}
        case "compiled":
            payload = {"module._orig_mod." + k.removeprefix("module."): v for k, v in state.items()}
    torch.save(payload, tmp_path / "resshift_realsrx4_s15_v1.pth")

    imported = import_resshift_unet(tmp_path / "resshift_realsrx4_s15_v1.pth", TINY_UNET).eval()
    before = unet_output(source)
    assert torch.equal(unet_output(imported), before)

    save_file(imported.state_dict(), tmp_path / "model.safetensors")
    reloaded = ResShiftSwinUNet(TINY_UNET)
    reloaded.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=True)
    assert torch.equal(unet_output(reloaded.eval()), before)


def test_vq_import_round_trips_through_pth_and_safetensors(tmp_path: Path) -> None:
    source = randomize(VQF4(**TINY_VQ), seed=12)
    torch.save(source.state_dict(), tmp_path / "autoencoder_vq_f4.pth")
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1

    def run(model: VQF4) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            z = model.encode(image)
            return z, model.decode(z)

    z, decoded = run(source)
    imported = import_vq_f4(tmp_path / "autoencoder_vq_f4.pth", **TINY_VQ).eval()
    assert all(torch.equal(a, b) for a, b in zip(run(imported), (z, decoded)))
    save_file(imported.state_dict(), tmp_path / "vq.safetensors")
    reloaded = VQF4(**TINY_VQ)
    reloaded.load_state_dict(load_file(tmp_path / "vq.safetensors"), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(run(reloaded.eval()), (z, decoded)))


def test_load_official_state_dict_unwraps_and_keeps_only_tensors(tmp_path: Path) -> None:
    w = torch.ones(2)
    torch.save({"model": {"module.a.weight": w, "module._orig_mod.b": w, "note": "x", "step": 3}}, tmp_path / "c.pth")
    state = load_official_state_dict(tmp_path / "c.pth")
    assert list(state) == ["a.weight", "b"] and torch.equal(state["a.weight"], w)


def test_bad_checkpoints_fail_with_one_line_naming_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00not a checkpoint" * 10)
    missing = tmp_path / "absent.pth"
    vq_file = tmp_path / "autoencoder_vq_f4.pth"
    torch.save(VQF4(**TINY_VQ).state_dict(), vq_file)
    other_config = tmp_path / "other.pth"  # same architecture, different width
    torch.save(official_unet_dict(ResShiftSwinUNet(TINY_UNET.model_copy(update={"model_channels": 64}))), other_config)
    pickled_code = tmp_path / "code.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "cfg": Path("x")}, pickled_code)  # weights_only refuses it
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(vq_file.read_bytes()[:1000])

    cases = [
        (lambda: import_vq_f4(corrupt, **TINY_VQ), "not a readable torch checkpoint"),
        (lambda: import_vq_f4(missing), "not found"),
        (lambda: import_resshift_unet(vq_file, TINY_UNET), "does not fit ResShiftSwinUNet: .* missing: .* unexpected:"),
        (lambda: import_resshift_unet(other_config, TINY_UNET), r"shape mismatch \(file vs model\): time_embed"),
        (lambda: import_vq_f4(pickled_code, **TINY_VQ), r"not a readable torch checkpoint \(Unsupported global"),
        (lambda: import_vq_f4(truncated, **TINY_VQ), "not a readable torch checkpoint .*zip archive"),
    ]
    for call, pattern in cases:
        with pytest.raises(CheckpointError, match=pattern) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and message.startswith(str(tmp_path))
        assert len(message) < 1000
