"""VQF4 is ResShift's VQModelTorch: same state-dict layout, same encode/decode numbers, codebook snap in decode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sr.models.vq_f4 import VQF4

FIXTURES = Path(__file__).parent / "fixtures"


def seeded_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The fixture's weight rule: one generator seeded 0, keys in sorted order, randn * 0.2."""
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in sorted(model.state_dict().items())}


def test_default_config_has_the_official_layout() -> None:
    official = json.loads((FIXTURES / "vq_f4_official_keys.json").read_text())
    official.pop("_note")
    model = VQF4()
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == official
    assert (model.factor, model.channels) == (4, 3)
    assert sum(p.numel() for p in model.parameters()) == 55_322_782


def test_tiny_config_reproduces_the_reference_encode_and_decode() -> None:
    ref = json.loads((FIXTURES / "resshift_tiny_reference.json").read_text())["vq"]
    model = VQF4(**ref["config"]).eval()
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == ref["state_dict"]
    model.load_state_dict(seeded_weights(model))
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        z = model.encode(image)
        decoded = model.decode(z)
    assert model.factor == 2 and z.shape == (1, 3, 8, 8)
    torch.testing.assert_close(z, torch.tensor(ref["latent"]).view(1, 3, 8, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(decoded, torch.tensor(ref["decoded"]).view(1, 3, 16, 16), atol=1e-5, rtol=0)


def test_decode_snaps_to_the_codebook_with_straight_through_gradients() -> None:
    model = VQF4(embed_dim=3, n_embed=16, ch=32, ch_mult=(1, 2), num_res_blocks=1)
    g = torch.Generator().manual_seed(0)
    model.quantize.embedding.weight.data = torch.randn(16, 3, generator=g)
    z = torch.randn(2, 3, 4, 5, generator=g, requires_grad=True)

    zq = model.quantize(z)
    codes = model.quantize.embedding.weight
    nearest = torch.cdist(z.detach().permute(0, 2, 3, 1).reshape(-1, 3), codes).argmin(1)
    assert torch.allclose(zq.permute(0, 2, 3, 1).reshape(-1, 3), codes[nearest])
    assert torch.equal(model.quantize(z, chunk=7), zq)  # chunking changes nothing
    # A nudge far smaller than the distance to the next code leaves the decoded image unchanged (up to rounding),
    # while the same nudge without the codebook snap moves it.
    with torch.no_grad():
        moved = (model.decode(z + 1e-3) - model.decode(z)).abs().max()
        unsnapped = model.decoder(model.post_quant_conv(z + 1e-3)) - model.decoder(model.post_quant_conv(z))
    assert moved < 1e-5 < unsnapped.abs().max()
    model.decode(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_bad_shapes_raise_one_line() -> None:
    model = VQF4(embed_dim=3, n_embed=16, ch=32, ch_mult=(1, 2, 4), num_res_blocks=1)
    with pytest.raises(ValueError, match="multiples of 4"):
        model.encode(torch.zeros(1, 3, 10, 8))
    with pytest.raises(ValueError, match=r"expected \(B, 3, h, w\)"):
        model.decode(torch.zeros(1, 4, 4, 4))


def test_the_codebook_exports_for_every_size(tmp_path) -> None:
    """sr-export traces at one size; a snap that loops over chunks would keep that size's chunk count and fail in
    ONNX Runtime at every other size (it did, for every Swin + VQ-f4 student)."""
    import onnxruntime as ort

    codebook = VQF4(embed_dim=3, n_embed=64, ch=32, ch_mult=(1, 2), num_res_blocks=1).quantize.eval()
    side = torch.export.Dim("side", min=1, max=4096)
    traced = torch.randn(1, 3, 8, 40, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(codebook, (traced, 64), tmp_path / "snap.onnx", dynamo=True, external_data=False,
                      dynamic_shapes=({3: side}, None), input_names=["z"])  # 320 vectors: 5 chunks of 64
    session = ort.InferenceSession(str(tmp_path / "snap.onnx"))
    for width in (3, 40, 100):
        z = torch.randn(1, 3, 8, width, generator=torch.Generator().manual_seed(width))
        with torch.no_grad():
            expected = codebook(z, 64)
        np.testing.assert_allclose(session.run(None, {"z": z.numpy()})[0], expected.numpy(), atol=1e-6)
