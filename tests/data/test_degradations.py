"""Real-ESRGAN degradation: determinism, recorded draws within the params, shapes, the ops against basicsr's."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from basicsr.data.degradations import bivariate_Gaussian
from basicsr.utils import USMSharp
from basicsr.utils.img_process_util import filter2D

import sr.data.degradations as deg
from sr.config import DegradationStage, DegradeParams
from sr.data.degradations import bicubic_lq, blur_kernel, degrade, filter_image, usm_sharpen
from tests.pipeline_fixtures import default_params


def _photo(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random image: photo-like for JPEG and the Poisson level count."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, max(h // 8, 2), max(w // 8, 2), generator=g)
    return F.interpolate(small, size=(h, w), mode="bicubic").clamp(0, 1)[0].contiguous()


def _params(**update) -> DegradeParams:
    """params.yaml's degrade section (ResShift's `degradation:` block) with `update`."""
    return default_params().degrade.model_copy(update=update)


def _stage(stage: str = "stage1", **update) -> DegradationStage:
    return getattr(default_params().degrade, stage).model_copy(update=update)


def _run(hq: torch.Tensor, p: DegradeParams, seed: int) -> tuple[torch.Tensor, dict]:
    return degrade(hq, p, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scale", [4, 2])
def test_same_seed_same_bytes_other_seed_differs(scale: int) -> None:
    p = _params(scale=scale)
    hq = _photo(64, 64)
    for seed in range(5):
        lq_a, rec_a = _run(hq, p, seed)
        lq_b, rec_b = _run(hq, p, seed)
        assert lq_a.numpy().tobytes() == lq_b.numpy().tobytes()
        assert rec_a == rec_b
    assert not torch.equal(_run(hq, p, 0)[0], _run(hq, p, 1)[0])


@pytest.mark.parametrize("scale,shape", [(4, (64, 64)), (4, (32, 48)), (2, (64, 64)), (2, (16, 40))])
def test_shape_dtype_range_and_8bit(scale: int, shape: tuple[int, int]) -> None:
    p = _params(scale=scale)
    for seed in range(10):
        lq, _ = _run(_photo(*shape, seed=seed), p, seed)
        assert lq.shape == (3, shape[0] // scale, shape[1] // scale)
        assert lq.dtype == torch.float32
        assert lq.min() >= 0 and lq.max() <= 1
        assert torch.equal(lq, (lq * 255).round() / 255)


def _check_blur(rec: dict, blur, lo_sinc: float) -> None:
    assert rec["size"] % 2 == 1 and 3 <= rec["size"] < blur.kernel_size
    if rec["kind"] == "sinc":
        assert lo_sinc <= rec["cutoff"] <= math.pi
        if rec["size"] < 13:
            assert rec["cutoff"] >= math.pi / 3
        return
    assert rec["kind"] in blur.kernel_list
    assert blur.sigma[0] <= rec["sigma_x"] <= blur.sigma[1]
    if rec["kind"].endswith("aniso"):
        assert blur.sigma[0] <= rec["sigma_y"] <= blur.sigma[1]
        assert -math.pi <= rec["theta"] <= math.pi
    if rec["kind"].startswith("generalized"):
        assert blur.betag_range[0] <= rec["beta"] <= blur.betag_range[1]
    if rec["kind"].startswith("plateau"):
        assert blur.betap_range[0] <= rec["beta"] <= blur.betap_range[1]


def _check_stage(rec: dict, stage: DegradationStage) -> None:
    resize = rec["resize"]
    assert resize["mode"] in ("area", "bilinear", "bicubic")
    match resize["updown"]:
        case "up":
            assert 1.0 <= resize["scale"] <= stage.resize_range[1]
        case "down":
            assert stage.resize_range[0] <= resize["scale"] <= 1.0
        case "keep":
            assert resize["scale"] == 1.0
    noise = rec["noise"]
    assert isinstance(noise["gray"], bool)
    if noise["kind"] == "gaussian":
        assert stage.noise_range[0] <= noise["sigma"] <= stage.noise_range[1]
    else:
        assert noise["kind"] == "poisson"
        assert stage.poisson_scale_range[0] <= noise["scale"] <= stage.poisson_scale_range[1]


def test_records_stay_in_the_param_ranges_and_cover_every_branch() -> None:
    p = _params()
    hq = _photo(64, 64)
    kinds, orders, modes, noises = set(), set(), set(), set()
    second, second_blur = 0, 0
    n = 300
    for seed in range(n):
        _, rec = _run(hq, p, seed)
        assert json.loads(json.dumps(rec)) == rec
        s1 = rec["stage1"]
        _check_blur(s1["blur"], p.blur1, math.pi / 5)
        _check_stage(s1, p.stage1)
        assert isinstance(s1["jpeg_quality"], int) and 30 <= s1["jpeg_quality"] <= 95
        kinds.add(s1["blur"]["kind"])
        modes.add(s1["resize"]["mode"])
        noises.add((s1["noise"]["kind"], s1["noise"]["gray"]))
        if rec["second_order"]:
            second += 1
            s2 = rec["stage2"]
            _check_stage(s2, p.stage2)
            assert s2["resize"]["size"] == [max(1, int(16 * s2["resize"]["scale"]))] * 2
            assert rec["second_blur"] == (s2["blur"] is not None)
            if s2["blur"] is not None:
                second_blur += 1
                _check_blur(s2["blur"], p.blur2, math.pi / 5)
        else:
            assert rec["stage2"] is None and rec["second_blur"] is False
        final = rec["final"]
        orders.add(final["order"])
        assert final["resize_mode"] in ("area", "bilinear", "bicubic")
        assert isinstance(final["jpeg_quality"], int) and 30 <= final["jpeg_quality"] <= 95
        if final["sinc"] is not None:
            assert final["sinc"]["size"] % 2 == 1 and 3 <= final["sinc"]["size"] < p.blur2.kernel_size
            assert math.pi / 3 <= final["sinc"]["cutoff"] <= math.pi
    assert kinds == set(p.blur1.kernel_list) | {"sinc"}
    assert orders == {"resize_sinc_jpeg", "jpeg_resize_sinc"}
    assert modes == {"area", "bilinear", "bicubic"}
    assert noises == {("gaussian", False), ("gaussian", True), ("poisson", False), ("poisson", True)}
    assert 0.4 < second / n < 0.6
    assert 0.65 < second_blur / second < 0.95


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_second_stage_follows_its_probability(prob: float) -> None:
    p = _params(second_order_prob=prob, second_blur_prob=prob)
    hq = _photo(32, 32)
    for seed in range(30):
        _, rec = _run(hq, p, seed)
        assert rec["second_order"] is bool(prob)
        assert rec["second_blur"] is bool(prob)
        assert (rec["stage2"] is not None) is bool(prob)


def test_jpeg_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    p = _params(stage1=_stage(jpeg_range=(30, 40)), stage2=_stage("stage2", jpeg_range=(30, 40)))
    hq = _photo(64, 64)
    with_jpeg = [_run(hq, p, seed) for seed in range(5)]
    for lq, rec in with_jpeg:
        assert 30 <= rec["stage1"]["jpeg_quality"] <= 40 and 30 <= rec["final"]["jpeg_quality"] <= 40
    monkeypatch.setattr(deg, "_jpeg", lambda img, quality: img)
    for seed, (lq, _) in enumerate(with_jpeg):
        without, _ = _run(hq, p, seed)
        assert (lq - without).abs().max() > 2 / 255


def test_jpeg_roundtrip_keeps_colors_and_loses_detail() -> None:
    flat = np.full((16, 16, 3), (0.8, 0.4, 0.1), dtype=np.float32)
    assert np.abs(deg._jpeg(flat, 95) - flat).max() <= 2 / 255  # RGB order survives OpenCV's BGR codec
    noisy = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    assert np.abs(deg._jpeg(noisy, 30) - noisy).mean() > 0.05


def test_bicubic_lq_is_torch_antialiased_bicubic_in_8_bit() -> None:
    hq = _photo(64, 48)
    for scale in (2, 4):
        lq = bicubic_lq(hq, scale)
        want = F.interpolate(hq[None], size=(64 // scale, 48 // scale), mode="bicubic", antialias=True)[0]
        assert lq.shape == (3, 64 // scale, 48 // scale)
        assert torch.equal(lq, (want * 255).round().clamp(0, 255) / 255)
    gray = torch.full((3, 32, 32), 100 / 255)
    assert torch.equal(bicubic_lq(gray, 4), torch.full((3, 8, 8), 100 / 255))


def test_bad_input_is_rejected_with_the_size() -> None:
    with pytest.raises(ValueError, match=r"\(30, 32\) is not a multiple of scale 4"):
        degrade(torch.rand(3, 30, 32), _params(), torch.Generator())
    with pytest.raises(ValueError, match="float32 \\(3, H, W\\)"):
        bicubic_lq(torch.rand(1, 3, 32, 32), 4)


def test_filters_match_basicsr_filter2d() -> None:
    img = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(3))
    hwc = np.ascontiguousarray(img[0].permute(1, 2, 0).numpy())
    for rec in [
        {"kind": "aniso", "size": 13, "sigma_x": 2.5, "sigma_y": 0.7, "theta": 0.6},
        {"kind": "plateau_iso", "size": 9, "sigma_x": 1.2, "beta": 1.5},
        {"kind": "sinc", "size": 11, "cutoff": 1.3},
    ]:
        kernel = blur_kernel(rec)
        want = filter2D(img, torch.from_numpy(kernel)[None])[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(filter_image(hwc, kernel), want, atol=2e-6)
    # the separable isotropic Gaussian equals basicsr's 2-D one
    k1 = blur_kernel({"kind": "iso", "size": 15, "sigma_x": 2.0})
    assert k1.shape == (15,)
    k2 = torch.from_numpy(bivariate_Gaussian(15, 2.0, 2.0, 0, isotropic=True)).float()
    want = filter2D(img, k2[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(filter_image(hwc, k1), want, atol=2e-6)


def test_usm_sharpen_matches_basicsr_and_is_used() -> None:
    hq = _photo(64, 64, seed=5)
    want = USMSharp()(hq[None].contiguous())[0]
    torch.testing.assert_close(usm_sharpen(hq), want, atol=1e-5, rtol=0)
    lq_plain, rec_plain = _run(hq, _params(), 0)
    lq_sharp, rec_sharp = _run(hq, _params(usm_sharpen=True), 0)
    assert rec_sharp["usm_sharpen"] is True and rec_plain["usm_sharpen"] is False
    assert not torch.equal(lq_plain, lq_sharp)


def test_gaussian_noise_level_and_gray_flag() -> None:
    flat = np.full((64, 64, 3), 0.5, dtype=np.float32)
    g = torch.Generator().manual_seed(0)
    color = _stage(gaussian_noise_prob=1.0, noise_range=(10.0, 10.0), gray_noise_prob=0.0)
    out, rec = deg._add_noise(g, flat, color)
    assert rec == {"kind": "gaussian", "sigma": 10.0, "gray": False}
    assert abs(float((out - 0.5).std()) - 10 / 255) < 0.1 * 10 / 255
    assert not np.array_equal(out[..., 0], out[..., 1])
    gray = _stage(gaussian_noise_prob=0.0, gray_noise_prob=1.0)
    out, rec = deg._add_noise(g, _photo(32, 32).permute(1, 2, 0).numpy().copy(), gray)
    assert rec["kind"] == "poisson" and rec["gray"] is True
    noise = out - _photo(32, 32).permute(1, 2, 0).numpy()
    inside = (out > 0.01).all(-1) & (out < 0.99).all(-1)  # away from the clamp all channels get the same noise
    np.testing.assert_allclose(noise[inside][:, 0], noise[inside][:, 2], atol=1e-6)
    assert np.abs(noise).max() > 0


def test_mild_degradation_is_seeded_recorded_and_milder_than_real_esrgan() -> None:
    hq = _photo(64, 64)
    mild = default_params().degrade.mild
    a, rec = deg.mild_degrade(hq, 4, mild, torch.Generator().manual_seed(3))
    b, _ = deg.mild_degrade(hq, 4, mild, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (3, 16, 16)
    assert torch.equal(a, torch.round(a * 255) / 255)  # 8-bit values, like the stored PNG
    assert rec["kind"] == "mild" and mild.blur_sigma[0] <= rec["blur_sigma"] <= mild.blur_sigma[1]
    assert mild.noise_range[0] <= rec["noise_sigma"] <= mild.noise_range[1]
    assert mild.jpeg_range[0] <= rec["jpeg_quality"] <= mild.jpeg_range[1]
    bicubic = bicubic_lq(hq, 4)
    heavy = torch.stack([(_run(hq, _params(), s)[0] - bicubic).abs().mean() for s in range(8)])
    light = torch.stack([(deg.mild_degrade(hq, 4, mild, torch.Generator().manual_seed(s))[0] - bicubic).abs().mean()
                         for s in range(8)])
    assert light.mean() < heavy.mean()  # on average; one Real-ESRGAN draw can be milder than a mild one


def test_train_crops_mix_clean_mild_and_real_esrgan_in_the_param_shares() -> None:
    from sr.data.synthesis import degrade_mixed

    hq = _photo(32, 32)
    p = _params(clean_prob=0.3, mild_prob=0.3)
    kinds = [degrade_mixed(hq, p, torch.Generator().manual_seed(s), "train")[1].get("kind", "realesrgan")
             for s in range(200)]
    shares = {k: kinds.count(k) / len(kinds) for k in ("bicubic", "mild", "realesrgan")}
    assert shares["bicubic"] == pytest.approx(0.3, abs=0.08) and shares["mild"] == pytest.approx(0.3, abs=0.08)
    val = {degrade_mixed(hq, p, torch.Generator().manual_seed(s), "val")[1].get("kind") for s in range(20)}
    assert "bicubic" not in val and "mild" not in val  # val stays Real-ESRGAN, as the papers report
    # without a mixture no extra draw is taken: the crop degrades exactly as before the option existed
    pure = _params(clean_prob=0.0, mild_prob=0.0)
    assert torch.equal(degrade_mixed(hq, pure, torch.Generator().manual_seed(5), "train")[0], _run(hq, pure, 5)[0])


def test_mixture_shares_above_one_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"clean_prob \+ mild_prob must be at most 1, got 1.2"):
        default_params().degrade.model_validate({**default_params().degrade.model_dump(), "clean_prob": 0.7,
                                                 "mild_prob": 0.5})
