"""Real-ESRGAN second-order degradation (as ResShift/SinSR/TAD-SR train on it), one image at a time on the CPU.

The pipeline follows ResShift's `TrainerDifIR.prepare_data` and its vendored basicsr `RealESRGANDataset`:

    [USM sharpen] -> blur1 -> resize (up/down/keep) -> noise (Gaussian|Poisson, color|gray) -> JPEG
    -> with p=second_order_prob: [blur2 with p=second_blur_prob] -> resize toward (H/scale)*s2 -> noise
    -> with p=0.5: resize to H/scale + final sinc, then JPEG;  else: JPEG, then resize to H/scale + final sinc
    -> clamp, round to 8 bit

Kernel builders are basicsr's (`bivariate_Gaussian`, `bivariate_generalized_Gaussian`, `bivariate_plateau`,
`circular_lowpass_kernel`), but every parameter is drawn here from the caller's `torch.Generator`: basicsr's
`random_*` helpers use the global numpy/torch RNG. Kernel sizes follow ResShift's vendored dataset: odd sizes in
[3, kernel_size) (zero-padding the kernel up to kernel_size, as ResShift does, changes nothing but the work).

Differences from the GPU reference, all for speed on a CPU, none changing the distribution of degradations:
- JPEG is the real codec (OpenCV's libjpeg, integer quality, 4:2:0) instead of basicsr's DiffJPEG imitation of it.
- Filtering is OpenCV's filter2D (same correlation and reflect-101 border as basicsr's filter2D), and isotropic
  Gaussian kernels and the USM Gaussian run as two 1-D passes (they are exactly separable).
- The second-stage kernel is drawn only when the second blur runs.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.data.degradations import (
    bivariate_Gaussian,
    bivariate_generalized_Gaussian,
    bivariate_plateau,
    circular_lowpass_kernel,
    mesh_grid,
)
from torch import Tensor

from sr.config import BlurParams, DegradationStage, DegradeParams, MildParams

RESIZE_MODES = ("area", "bilinear", "bicubic")
USM_RADIUS = 51  # basicsr USMSharp(radius=50) rounds up to an odd size; sigma 0 -> OpenCV's rule gives 8.0
USM_WEIGHT = 0.5
USM_THRESHOLD = 10


# ---------------------------------------------------------------------------------------------------- draws


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=g, dtype=torch.float64).item()


def _chance(g: torch.Generator, p: float) -> bool:
    return torch.rand((), generator=g, dtype=torch.float64).item() < p


def _choice(g: torch.Generator, items: list | tuple, probs: list[float] | tuple[float, ...] | None = None) -> Any:
    if probs is None:
        return items[int(torch.randint(len(items), (), generator=g).item())]
    u = _uniform(g, 0.0, float(sum(probs)))
    for item, acc in zip(items, np.cumsum(probs)):
        if u < acc:
            return item
    return items[-1]


# ---------------------------------------------------------------------------------------------------- kernels


@cache
def _grid(size: int) -> np.ndarray:
    return mesh_grid(size)[0]


def _kernel_sizes(max_size: int) -> list[int]:
    return list(range(3, max(max_size, 5), 2))  # ResShift: range(3, blur_kernel_size, 2)


def _sample_shape(g: torch.Generator, beta_range: tuple[float, float]) -> float:
    # basicsr draws beta below or above 1 with equal chance, so heavy and light tails are equally likely
    return _uniform(g, beta_range[0], 1.0) if _chance(g, 0.5) else _uniform(g, 1.0, beta_range[1])


def sample_blur(g: torch.Generator, blur: BlurParams) -> dict:
    """Draw one first/second-stage blur kernel's parameters (the record; `blur_kernel` builds it)."""
    size = _choice(g, _kernel_sizes(blur.kernel_size))
    if _chance(g, blur.sinc_prob):
        low = math.pi / 3 if size < 13 else math.pi / 5  # small sinc kernels ring less at low cutoffs
        return {"kind": "sinc", "size": size, "cutoff": _uniform(g, low, math.pi)}
    kind = _choice(g, blur.kernel_list, blur.kernel_prob)
    rec: dict[str, Any] = {"kind": kind, "size": size, "sigma_x": _uniform(g, *blur.sigma)}
    if kind.endswith("aniso"):
        rec["sigma_y"] = _uniform(g, *blur.sigma)
        rec["theta"] = _uniform(g, -math.pi, math.pi)
    if kind.startswith("generalized"):
        rec["beta"] = _sample_shape(g, blur.betag_range)
    elif kind.startswith("plateau"):
        rec["beta"] = _sample_shape(g, blur.betap_range)
    return rec


def blur_kernel(rec: dict) -> np.ndarray:
    """The kernel a blur record describes: (k,) for the separable isotropic Gaussian, else (k, k); float32."""
    size, kind = rec["size"], rec["kind"]
    sx = rec.get("sigma_x", 0.0)
    sy, theta = rec.get("sigma_y", sx), rec.get("theta", 0.0)
    iso = not kind.endswith("aniso")
    match kind:
        case "sinc":
            k = circular_lowpass_kernel(rec["cutoff"], size)
        case "iso":  # exp(-(x²+y²)/2σ²) is the outer product of two 1-D Gaussians
            x = np.arange(size, dtype=np.float64) - size // 2
            k = np.exp(-0.5 * (x / sx) ** 2)
            k = k / k.sum()
        case "aniso":
            k = bivariate_Gaussian(size, sx, sy, theta, grid=_grid(size), isotropic=False)
        case "generalized_iso" | "generalized_aniso":
            k = bivariate_generalized_Gaussian(size, sx, sy, theta, rec["beta"], grid=_grid(size), isotropic=iso)
        case "plateau_iso" | "plateau_aniso":
            k = bivariate_plateau(size, sx, sy, theta, rec["beta"], grid=_grid(size), isotropic=iso)
        case _:
            raise ValueError(f"unknown blur kernel kind {kind!r}")
    return k.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- ops
# Inside the pipeline an image is a float32 HWC RGB numpy array: OpenCV filters it an order of magnitude faster
# than torch.conv2d does on the CPU; torch still does the resizes (F.interpolate is the reference's resampler)
# and the noise (its draws take a Generator).


def filter_image(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate each channel of img (H,W,C) with kernel: (k,) = separable k×k, or (k, k); reflect-101 border
    (what basicsr's filter2D gets from F.pad(mode='reflect'))."""
    if kernel.ndim == 1:
        return cv2.sepFilter2D(img, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


@lru_cache(maxsize=1)
def _usm_kernel() -> np.ndarray:
    return cv2.getGaussianKernel(USM_RADIUS, 0)[:, 0].astype(np.float32)


def _usm(img: np.ndarray) -> np.ndarray:
    blur = filter_image(img, _usm_kernel())
    residual = img - blur
    soft_mask = filter_image((np.abs(residual) * 255 > USM_THRESHOLD).astype(np.float32), _usm_kernel())
    sharp = np.clip(img + USM_WEIGHT * residual, 0, 1)
    return soft_mask * sharp + (1 - soft_mask) * img


def _resize(img: np.ndarray, size: tuple[int, int], mode: str, scale: float | None = None) -> np.ndarray:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    if scale is not None:  # first stage: basicsr passes scale_factor, which also sets the sampling grid
        out = F.interpolate(x, scale_factor=scale, mode=mode)
    else:
        out = F.interpolate(x, size=size, mode=mode)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())


def _add_noise(g: torch.Generator, img: np.ndarray, stage: DegradationStage) -> tuple[np.ndarray, dict]:
    gray = _chance(g, stage.gray_noise_prob)
    h, w, _ = img.shape
    if _chance(g, stage.gaussian_noise_prob):
        sigma = _uniform(g, *stage.noise_range)
        noise = torch.randn((h, w, 1 if gray else 3), generator=g).numpy() * np.float32(sigma / 255.0)
        rec = {"kind": "gaussian", "sigma": sigma, "gray": gray}
    else:
        scale = _uniform(g, *stage.poisson_scale_range)
        src = img
        if gray:  # ITU-R 601 luma, as torchvision's rgb_to_grayscale that basicsr calls
            src = img @ np.array([[0.2989], [0.587], [0.114]], dtype=np.float32)
        # basicsr: count photon levels on the 8-bit image and round the count up to a power of two
        src = np.clip(np.round(src * 255.0), 0, 255) / np.float32(255.0)
        vals = np.float32(2.0 ** math.ceil(math.log2(len(np.unique(src)))))
        counts = torch.poisson(torch.from_numpy(src * vals), generator=g).numpy()
        noise = (counts / vals - src) * np.float32(scale)
        rec = {"kind": "poisson", "scale": scale, "gray": gray}
    return np.clip(img + noise, 0, 1), rec


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    rgb = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"OpenCV failed to JPEG-encode an image of shape {img.shape}")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / np.float32(255.0)


def _random_resize(
    g: torch.Generator, img: np.ndarray, stage: DegradationStage, base: tuple[int, int] | None
) -> tuple[np.ndarray, dict]:
    """Stage 1 (base None): scale the current image; stage 2: resize to base*s (base = the LQ size)."""
    updown = _choice(g, ("up", "down", "keep"), stage.resize_prob)
    match updown:
        case "up":
            s = _uniform(g, 1.0, stage.resize_range[1])
        case "down":
            s = _uniform(g, stage.resize_range[0], 1.0)
        case _:
            s = 1.0
    mode = _choice(g, RESIZE_MODES)
    if base is None:
        out = _resize(img, (0, 0), mode, scale=s)
    else:
        out = _resize(img, (max(1, int(base[0] * s)), max(1, int(base[1] * s))), mode)
    return out, {"updown": updown, "scale": s, "mode": mode, "size": list(out.shape[:2])}


def _quantize(img: Tensor) -> Tensor:
    return (img * 255.0).round().clamp(0, 255) / 255.0


def _to_hwc(img: Tensor) -> np.ndarray:
    return np.ascontiguousarray(img.detach().cpu().permute(1, 2, 0).numpy())


def _to_chw(img: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


# ---------------------------------------------------------------------------------------------------- public


def _check_hq(hq: Tensor, scale: int) -> None:
    if hq.dim() != 3 or hq.shape[0] != 3 or hq.dtype != torch.float32:
        raise ValueError(f"hq must be a float32 (3, H, W) image, got {hq.dtype} {tuple(hq.shape)}")
    if hq.shape[1] % scale or hq.shape[2] % scale:
        raise ValueError(f"hq size {tuple(hq.shape[1:])} is not a multiple of scale {scale}")


def usm_sharpen(hq: Tensor) -> Tensor:
    """basicsr's USMSharp (unsharp mask, soft threshold mask) of hq (3,H,W); its 51×51 Gaussian as two 1-D passes."""
    return _to_chw(_usm(_to_hwc(hq)))


def degrade(hq: Tensor, p: DegradeParams, generator: torch.Generator) -> tuple[Tensor, dict]:
    """Real-ESRGAN second-order degradation of hq (3,H,W) in [0,1] -> (lq (3,H/s,W/s) 8-bit valued, record).

    The record holds every draw (JSON-serialisable). With p.usm_sharpen the degradation starts from
    `usm_sharpen(hq)`, which is then also the HQ target to store (ResShift's `use_sharp` replaces the GT).
    """
    _check_hq(hq, p.scale)
    g = generator
    h, w = hq.shape[1:]
    lq_size = (h // p.scale, w // p.scale)
    rec: dict[str, Any] = {"scale": p.scale, "usm_sharpen": p.usm_sharpen}
    out = _to_hwc(hq)
    if p.usm_sharpen:
        out = _usm(out)

    # first stage
    blur1 = sample_blur(g, p.blur1)
    out = filter_image(out, blur_kernel(blur1))
    out, resize1 = _random_resize(g, out, p.stage1, None)
    out, noise1 = _add_noise(g, out, p.stage1)
    q1 = round(_uniform(g, *p.stage1.jpeg_range))
    out = _jpeg(out, q1)
    rec["stage1"] = {"blur": blur1, "resize": resize1, "noise": noise1, "jpeg_quality": q1}

    # second stage (ResShift gates blur2/resize2/noise2; the final resize+sinc and JPEG always run)
    rec["second_order"] = _chance(g, p.second_order_prob)
    rec["second_blur"] = False
    rec["stage2"] = None
    if rec["second_order"]:
        blur2 = None
        if _chance(g, p.second_blur_prob):
            rec["second_blur"] = True
            blur2 = sample_blur(g, p.blur2)
            out = filter_image(out, blur_kernel(blur2))
        out, resize2 = _random_resize(g, out, p.stage2, lq_size)
        out, noise2 = _add_noise(g, out, p.stage2)
        rec["stage2"] = {"blur": blur2, "resize": resize2, "noise": noise2}

    # final: [resize to the LQ size + sinc] and JPEG, in a random order
    sinc = None
    if _chance(g, p.final_sinc_prob):
        sinc = {"size": _choice(g, _kernel_sizes(p.blur2.kernel_size)), "cutoff": _uniform(g, math.pi / 3, math.pi)}
    sinc_first = _chance(g, 0.5)
    mode = _choice(g, RESIZE_MODES)
    quality = round(_uniform(g, *p.stage2.jpeg_range))
    if not sinc_first:
        out = _jpeg(out, quality)
    out = _resize(out, lq_size, mode)
    if sinc is not None:  # else basicsr convolves with a pulse: the identity
        out = filter_image(out, blur_kernel({"kind": "sinc", **sinc}))
    if sinc_first:
        out = _jpeg(out, quality)
    order = "resize_sinc_jpeg" if sinc_first else "jpeg_resize_sinc"
    rec["final"] = {"order": order, "resize_mode": mode, "sinc": sinc, "jpeg_quality": quality}
    return _quantize(_to_chw(out)), rec


def bicubic_lq(hq: Tensor, scale: int) -> Tensor:
    """The bicubic-only LQ: antialiased bicubic downscale of hq (3,H,W) by scale, rounded to 8-bit values."""
    _check_hq(hq, scale)
    size = (hq.shape[1] // scale, hq.shape[2] // scale)
    return _quantize(F.interpolate(hq[None], size=size, mode="bicubic", antialias=True)[0])


def mild_degrade(hq: Tensor, scale: int, p: MildParams, generator: torch.Generator) -> tuple[Tensor, dict]:
    """A mild one-stage degradation of hq (3,H,W) in [0,1]: isotropic Gaussian blur (σ ~ U(blur_sigma)),
    antialiased bicubic ÷scale, Gaussian colour noise (σ ~ U(noise_range)/255), JPEG (quality ~ U(jpeg_range)),
    8-bit values. Draws come from `generator` in that order."""
    _check_hq(hq, scale)
    g = generator
    sigma = _uniform(g, *p.blur_sigma)
    out = filter_image(_to_hwc(hq), blur_kernel({"kind": "iso", "size": p.kernel_size, "sigma_x": sigma}))
    size = (hq.shape[1] // scale, hq.shape[2] // scale)
    x = F.interpolate(_to_chw(out)[None], size=size, mode="bicubic", antialias=True)[0].clamp(0, 1)
    noise = _uniform(g, *p.noise_range)
    x = (x + torch.randn(x.shape, generator=g) * (noise / 255.0)).clamp(0, 1)
    quality = round(_uniform(g, *p.jpeg_range))
    x = _to_chw(_jpeg(_to_hwc(x), quality))
    return _quantize(x), {"kind": "mild", "blur_sigma": sigma, "noise_sigma": noise, "jpeg_quality": quality}
