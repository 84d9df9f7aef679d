"""Image-quality metrics through pyiqa, offline: PSNR/SSIM on Y, LPIPS, NIQE, and optional DISTS/MUSIQ/CLIPIQA/MANIQA.

Conventions (docs/methods.md §6.2):
- PSNR / SSIM follow BasicSR: Y channel of ITU-R BT.601 YCbCr (16..235 range), `crop_border` pixels dropped on each
  side, inputs RGB (B,3,H,W) in [0,1] float or uint8. PSNR of identical images is inf. pyiqa's SSIM rounds Y to
  integers before filtering (MATLAB style), BasicSR does not: the two agree to ~2e-4.
- LPIPS v0.1 (alex by default, as in pyiqa / OSEDiff's `lpips`; vgg on request), inputs in [0,1].
- NIQE: pyiqa's default takes Y of YIQ, which is what the published Protocol-B tables used; `color_space="ycbcr"`
  gives BasicSR's `calculate_niqe` convention.
- Extras need weights that no registry ships. They are looked up by file name in `extra_weights` (a folder or an
  s3:// prefix), copied under `<torch_home>/hub/`, and a metric whose file is missing is skipped with one warning.

Weights for LPIPS and NIQE come from `sr.pretrained.provision_offline_weights(torch_home)`.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from sr.pretrained import build_quietly, lpips_network, niqe_path, require_files
from sr.storage import StorageError, download_s3, is_s3

LpipsNet = Literal["alex", "vgg"]
NiqeColorSpace = Literal["yiq", "ycbcr"]
ExtraMetric = Literal["dists", "musiq", "clipiqa", "maniqa"]
EXTRA_METRICS: tuple[ExtraMetric, ...] = ("dists", "musiq", "clipiqa", "maniqa")


def extra_spec(name: ExtraMetric) -> tuple[str, str, str, bool]:
    """(pyiqa metric name, weight file name, folder under hub/, full-reference?) of an optional metric."""
    match name:
        case "dists":
            return "dists", "DISTS_weights-f5e65c96.pth", "pyiqa", True
        case "musiq":
            return "musiq", "musiq_koniq_ckpt-e95806b9.pth", "pyiqa", False
        case "clipiqa":
            return "clipiqa", "RN50.pt", "clip", False  # OpenAI CLIP RN50; pyiqa checks its sha256
        case "maniqa":
            # also builds timm's vit_base_patch8_224 from the HF cache; offline without it, it is skipped
            return "maniqa-pipal", "MANIQA_PIPAL-ae6d356b.pth", "pyiqa", False
        case _:
            raise ValueError(f"extra metric: {name!r} is not one of {', '.join(EXTRA_METRICS)}")


def as_unit_float(x: torch.Tensor, what: str) -> torch.Tensor:
    """(B,3,H,W) uint8 or float in [0,1] -> float64 in [0,1]."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{what}: expected an RGB batch (B,3,H,W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.to(torch.float64) / 255.0
    if not x.is_floating_point():
        raise ValueError(f"{what}: expected uint8 or float, got {x.dtype}")
    lo, hi = x.min().item(), x.max().item()
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{what}: float images must be in [0,1], got range [{lo:.4f}, {hi:.4f}]")
    return x.to(torch.float64).clamp(0.0, 1.0)


def crop(x: torch.Tensor, border: int) -> torch.Tensor:
    if border < 0 or 2 * border >= min(x.shape[-2:]):
        raise ValueError(f"crop_border: {border} does not fit an image of size {tuple(x.shape[-2:])}")
    return x[..., border : x.shape[-2] - border, border : x.shape[-1] - border]


def _ycbcr(x: torch.Tensor) -> torch.Tensor:
    """BT.601 YCbCr in 8-bit units (BasicSR's rgb2ycbcr: Y 16..235, Cb/Cr 16..240) of RGB (B,3,H,W) in [0,1]."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack([16.0 + 65.481 * r + 128.553 * g + 24.966 * b,
                        128.0 - 37.797 * r - 74.203 * g + 112.0 * b,
                        128.0 + 112.0 * r - 93.786 * g - 18.214 * b], dim=1)


@torch.no_grad()
def chroma_shift(sr: torch.Tensor, hq: torch.Tensor, crop_border: int = 0) -> torch.Tensor:
    """Mean |ΔCb| and |ΔCr| (BT.601, 8-bit units) of sr against hq, per image: colour casts and colour noise."""
    a, b = _ycbcr(as_unit_float(sr, "sr")), _ycbcr(as_unit_float(hq, "hq"))
    if crop_border:
        a, b = crop(a, crop_border), crop(b, crop_border)
    return (a[:, 1:] - b[:, 1:]).abs().flatten(1).mean(dim=1)


@torch.no_grad()
def grid_energy(x: torch.Tensor, period: int) -> torch.Tensor:
    """Mean |first difference of Y| across the borders of a period × period grid, over the mean elsewhere
    (horizontal and vertical differences pooled), per image: ~1 for a photo, > 1 where a grid shows."""
    y = _ycbcr(as_unit_float(x, "x"))[:, 0]
    dh, dv = (y[:, :, 1:] - y[:, :, :-1]).abs(), (y[:, 1:, :] - y[:, :-1, :]).abs()
    on_h = torch.arange(dh.shape[-1], device=y.device) % period == period - 1  # between columns kp-1 and kp
    on_v = torch.arange(dv.shape[-2], device=y.device) % period == period - 1
    at = torch.cat([dh[:, :, on_h].flatten(1), dv[:, on_v, :].flatten(1)], dim=1).mean(dim=1)
    rest = torch.cat([dh[:, :, ~on_h].flatten(1), dv[:, ~on_v, :].flatten(1)], dim=1).mean(dim=1)
    return at / rest.clamp_min(1e-9)


def blockiness(sr: torch.Tensor, hq: torch.Tensor, period: int) -> torch.Tensor:
    """grid_energy(sr) / grid_energy(hq), per image: 1 = no more grid than the reference has."""
    return grid_energy(sr, period) / grid_energy(hq, period)


class Metrics:
    """Build once per process; every method takes batches and returns one value per image, as a CPU float64 tensor."""

    def __init__(
        self,
        torch_home: Path,
        device: torch.device | str = "cpu",
        extras: Sequence[ExtraMetric] = (),
        extra_weights: str | Path | None = None,
    ) -> None:
        self.torch_home = Path(torch_home)
        self.device = torch.device(device)
        # psnr/ssim are built here with our options; eps=0 so identical images give inf like BasicSR, not 80 dB
        self._psnr = build_quietly(
            self.torch_home, "psnr", self.device, test_y_channel=True, color_space="ycbcr", eps=0.0
        )
        self._ssim = build_quietly(self.torch_home, "ssim", self.device, test_y_channel=True, color_space="ycbcr")
        self._lpips: dict[str, torch.nn.Module] = {}
        self._niqe: dict[str, torch.nn.Module] = {}
        self._extras: dict[str, torch.nn.Module] = {}
        for name in extras:
            model = self._build_extra(name, extra_weights)
            if model is not None:
                self._extras[name] = model

    # ----- full-reference, BasicSR convention -----------------------------------------------------------------------
    @torch.no_grad()
    def psnr_y(self, sr: torch.Tensor, hq: torch.Tensor, crop_border: int = 0) -> torch.Tensor:
        sr, hq = self._pair(sr, hq, crop_border)
        return self._psnr(sr, hq).reshape(-1).double().cpu()

    @torch.no_grad()
    def ssim_y(self, sr: torch.Tensor, hq: torch.Tensor, crop_border: int = 0) -> torch.Tensor:
        sr, hq = self._pair(sr, hq, crop_border)
        return self._ssim(sr, hq).reshape(-1).double().cpu()

    @torch.no_grad()
    def lpips(self, sr: torch.Tensor, hq: torch.Tensor, net: LpipsNet = "alex") -> torch.Tensor:
        sr, hq = self._pair(sr, hq, 0)
        model = self._lpips[net] if net in self._lpips else self._build_lpips(net)
        return model(sr.float(), hq.float()).reshape(-1).double().cpu()

    # ----- no-reference ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def niqe(self, sr: torch.Tensor, color_space: NiqeColorSpace = "yiq") -> torch.Tensor:
        x = as_unit_float(sr, "sr").to(self.device)
        model = self._niqe[color_space] if color_space in self._niqe else self._build_niqe(color_space)
        return model(x).reshape(-1).double().cpu()

    @property
    def extras_available(self) -> list[str]:
        return list(self._extras)

    @torch.no_grad()
    def extra(self, sr: torch.Tensor, hq: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every optional metric that could be built, keyed by our name; full-reference ones need `hq`."""
        x = as_unit_float(sr, "sr").float().to(self.device)
        ref = None if hq is None else as_unit_float(hq, "hq").float().to(self.device)
        scores = {}
        for name, model in self._extras.items():
            if extra_spec(name)[3]:
                if ref is None:
                    continue
                scores[name] = model(x, ref).reshape(-1).double().cpu()
            else:
                scores[name] = model(x).reshape(-1).double().cpu()
        return scores

    # ----- construction ---------------------------------------------------------------------------------------------
    def _pair(self, sr: torch.Tensor, hq: torch.Tensor, crop_border: int) -> tuple[torch.Tensor, torch.Tensor]:
        if sr.shape != hq.shape:
            raise ValueError(f"sr and hq differ in shape: {tuple(sr.shape)} vs {tuple(hq.shape)}")
        sr, hq = as_unit_float(sr, "sr"), as_unit_float(hq, "hq")
        if crop_border:
            sr, hq = crop(sr, crop_border), crop(hq, crop_border)
        return sr.to(self.device), hq.to(self.device)

    def _build_lpips(self, net: LpipsNet) -> torch.nn.Module:
        self._lpips[net] = lpips_network(self.torch_home, net, self.device)
        return self._lpips[net]

    def _build_niqe(self, color_space: NiqeColorSpace) -> torch.nn.Module:
        params = niqe_path(self.torch_home)
        require_files([params], self.torch_home)
        self._niqe[color_space] = build_quietly(
            self.torch_home, "niqe", self.device, color_space=color_space, pretrained_model_path=str(params)
        )
        return self._niqe[color_space]

    def _build_extra(self, name: ExtraMetric, source: str | Path | None) -> torch.nn.Module | None:
        pyiqa_name, file_name, folder, _ = extra_spec(name)
        target = Path(self.torch_home) / "hub" / folder / file_name
        if not target.exists() and not self._copy_weight(file_name, source, target):
            warnings.warn(f"metric {name} skipped: weight file {file_name} not found in {source}", stacklevel=3)
            return None
        try:
            match name:
                case "clipiqa":  # reads <hub>/clip/RN50.pt itself
                    return build_quietly(self.torch_home, pyiqa_name, self.device)
                case "maniqa":  # its explicit-path loader expects a 'params' key that pyiqa's own file lacks
                    from pyiqa.archs.arch_util import load_pretrained_network

                    model = build_quietly(self.torch_home, pyiqa_name, self.device, pretrained=False)
                    with contextlib.redirect_stdout(io.StringIO()):
                        load_pretrained_network(model.net, str(target), True)
                    return model
                case _:
                    return build_quietly(self.torch_home, pyiqa_name, self.device, pretrained_model_path=str(target))
        except Exception as exc:  # noqa: BLE001 - an optional metric must never stop an evaluation
            warnings.warn(
                f"metric {name} skipped: cannot build it from {target}: {type(exc).__name__}: {exc!s:.200}",
                stacklevel=3,
            )
            return None

    @staticmethod
    def _copy_weight(file_name: str, source: str | Path | None, target: Path) -> bool:
        if source is None:
            return False
        if is_s3(str(source)):
            try:
                download_s3(f"{str(source).rstrip('/')}/{file_name}", target)
            except StorageError:
                return False
            return True
        found = Path(source) / file_name
        if not found.is_file():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        shutil.copyfile(found, partial)
        partial.replace(target)
        return True


__all__ = ["EXTRA_METRICS", "Metrics", "blockiness", "chroma_shift", "grid_energy"]
