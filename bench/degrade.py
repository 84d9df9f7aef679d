"""Speed of sr.data.degradations.degrade against the reference code path, both on the CPU.

The reference is ResShift's / Real-ESRGAN's own: the kernels of basicsr's RealESRGANDataset (random_mixed_kernels,
circular_lowpass_kernel, with ResShift's kernel-size ranges), then the second-order pipeline of
ResShift's prepare_data / Real-ESRGAN's RealESRGANModel.feed_data (USMSharp, filter2D, F.interpolate,
random_add_gaussian_noise_pt / random_add_poisson_noise_pt, DiffJPEG), run here with basicsr's functions.

    python bench/degrade.py [--n 50] [--size 256] [--scale 4] [--batch 1] [--threads 1]

Rows compare like for like: both without USM sharpening (ResShift's `use_sharp: False`), both with it.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.data.degradations import (
    circular_lowpass_kernel,
    random_add_gaussian_noise_pt,
    random_add_poisson_noise_pt,
    random_mixed_kernels,
)
from basicsr.utils import DiffJPEG, USMSharp
from basicsr.utils.img_process_util import filter2D

from sr.config import BlurParams, DegradeParams
from sr.data.degradations import degrade


def reference_kernel(blur: BlurParams) -> torch.Tensor:
    """One first/second-stage kernel as basicsr's RealESRGANDataset.__getitem__ makes it (ResShift's ranges)."""
    size = random.choice(list(range(3, blur.kernel_size, 2)))
    if np.random.uniform() < blur.sinc_prob:
        omega_c = np.random.uniform(np.pi / 3 if size < 13 else np.pi / 5, np.pi)
        kernel = circular_lowpass_kernel(omega_c, size, pad_to=False)
    else:
        kernel = random_mixed_kernels(
            blur.kernel_list, blur.kernel_prob, size, blur.sigma, blur.sigma, [-math.pi, math.pi],
            blur.betag_range, blur.betap_range, noise_range=None,
        )  # fmt: skip
    pad = (blur.kernel_size - size) // 2
    return torch.FloatTensor(np.pad(kernel, ((pad, pad), (pad, pad))))


def reference_sinc(p: DegradeParams) -> torch.Tensor:
    k2 = p.blur2.kernel_size
    if np.random.uniform() < p.final_sinc_prob:
        size = random.choice(list(range(3, k2, 2)))
        return torch.FloatTensor(circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), size, pad_to=k2))
    pulse = torch.zeros(k2, k2)
    pulse[k2 // 2, k2 // 2] = 1
    return pulse


def _resize_draw(resize_prob, resize_range) -> float:
    updown = random.choices(["up", "down", "keep"], resize_prob)[0]
    if updown == "up":
        return np.random.uniform(1, resize_range[1])
    if updown == "down":
        return np.random.uniform(resize_range[0], 1)
    return 1.0


def _noise(out: torch.Tensor, stage) -> torch.Tensor:
    if np.random.uniform() < stage.gaussian_noise_prob:
        return random_add_gaussian_noise_pt(
            out, sigma_range=stage.noise_range, clip=True, rounds=False, gray_prob=stage.gray_noise_prob
        )
    return random_add_poisson_noise_pt(
        out, scale_range=stage.poisson_scale_range, gray_prob=stage.gray_noise_prob, clip=True, rounds=False
    )


def reference_degrade(gt: torch.Tensor, p: DegradeParams, jpeger: DiffJPEG, usm: USMSharp | None) -> torch.Tensor:
    """gt (B,3,H,W) -> lq, following ResShift's prepare_data line by line with basicsr's functions."""
    b = gt.shape[0]
    kernel1 = torch.stack([reference_kernel(p.blur1) for _ in range(b)])
    kernel2 = torch.stack([reference_kernel(p.blur2) for _ in range(b)])
    sinc_kernel = torch.stack([reference_sinc(p) for _ in range(b)])
    ori_h, ori_w = gt.shape[2:]
    sf = p.scale
    if usm is not None:
        gt = usm(gt)
    # first stage
    out = filter2D(gt.contiguous(), kernel1)
    scale = _resize_draw(p.stage1.resize_prob, p.stage1.resize_range)
    out = F.interpolate(out, scale_factor=scale, mode=random.choice(["area", "bilinear", "bicubic"]))
    out = _noise(out, p.stage1)
    jpeg_p = out.new_zeros(b).uniform_(*p.stage1.jpeg_range)
    out = jpeger(torch.clamp(out, 0, 1), quality=jpeg_p)
    # second stage
    if random.random() < p.second_order_prob:
        if random.random() < p.second_blur_prob:
            out = filter2D(out.contiguous(), kernel2)
        scale = _resize_draw(p.stage2.resize_prob, p.stage2.resize_range)
        size = (int(ori_h / sf * scale), int(ori_w / sf * scale))
        out = F.interpolate(out, size=size, mode=random.choice(["area", "bilinear", "bicubic"]))
        out = _noise(out, p.stage2)
    # final: [resize back + sinc] and JPEG in a random order
    jpeg_p = out.new_zeros(b).uniform_(*p.stage2.jpeg_range)
    if random.random() < 0.5:
        mode = random.choice(["area", "bilinear", "bicubic"])
        out = F.interpolate(out, size=(ori_h // sf, ori_w // sf), mode=mode)
        out = filter2D(out.contiguous(), sinc_kernel)
        out = jpeger(torch.clamp(out, 0, 1), quality=jpeg_p)
    else:
        out = jpeger(torch.clamp(out, 0, 1), quality=jpeg_p)
        mode = random.choice(["area", "bilinear", "bicubic"])
        out = F.interpolate(out, size=(ori_h // sf, ori_w // sf), mode=mode)
        out = filter2D(out.contiguous(), sinc_kernel)
    return torch.clamp((out * 255.0).round(), 0, 255) / 255.0


def time_ours(images: list[torch.Tensor], p: DegradeParams) -> float:
    degrade(images[0], p, torch.Generator().manual_seed(0))  # warm-up (caches, lazy inits)
    start = time.perf_counter()
    for i, hq in enumerate(images):
        degrade(hq, p, torch.Generator().manual_seed(i))
    return len(images) / (time.perf_counter() - start)


def time_reference(images: list[torch.Tensor], p: DegradeParams, batch: int) -> float:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    jpeger = DiffJPEG(differentiable=False)
    usm = USMSharp() if p.usm_sharpen else None
    batches = [torch.stack(images[i : i + batch]) for i in range(0, len(images), batch)]
    with torch.no_grad():
        reference_degrade(batches[0], p, jpeger, usm)
        start = time.perf_counter()
        for gt in batches:
            reference_degrade(gt, p, jpeger, usm)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="samples per measurement")
    parser.add_argument("--size", type=int, default=256, help="HQ crop size (256 paper scale, 64 embedded default)")
    parser.add_argument("--scale", type=int, default=4, choices=[2, 4])
    parser.add_argument("--batch", type=int, default=1, help="reference batch size (ours is per sample)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads, both sides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    gen = torch.Generator().manual_seed(1234)
    # smooth random images (upsampled noise) so the Poisson level count and JPEG see photo-like content
    images = [
        F.interpolate(torch.rand(1, 3, args.size // 8, args.size // 8, generator=gen), size=args.size, mode="bicubic")
        .clamp(0, 1)[0]
        .contiguous()
        for _ in range(args.n)
    ]
    print(f"degradation x{args.scale}, {args.n} samples of {args.size}x{args.size}, threads {args.threads}, "
          f"reference batch {args.batch}")  # fmt: skip
    print(f"{'USM sharpen':<12} {'ours/s':>9} {'reference/s':>12} {'ratio':>7}")
    for usm in (False, True):
        p = DegradeParams(scale=args.scale, usm_sharpen=usm)
        ours = time_ours(images, p)
        ref = time_reference(images, p, args.batch)
        print(f"{usm!s:<12} {ours:9.1f} {ref:12.1f} {ours / ref:7.2f}")


if __name__ == "__main__":
    main()
