"""`sr-export MODEL OUT.onnx`: a one-step model (folder, package, or s3:// URI of either) as one self-contained ONNX
graph that ONNX Runtime, chaiNNer or TensorRT can run without this project or torch.

The graph maps an image (N, 3, h, w) in [0, 1] to (N, 3, h·scale, w·scale) in [0, 1] for any h and w: it pads the
input to the network's size multiple itself and crops the output.
- A ResShift-family student: the start noise ε is a seeded N(0, 1) canvas of 64×64 latent pixels baked into the
  graph and repeated over the latent (the default), or a second input `eps` (N, C, h', w') of the latent's size.
- An OSEDiff student: its fixed prompt's embeddings are baked in. One that tags each image (a tagger prompt) or
  samples its VAE posterior has no fixed graph and is refused with the reason.
`--fp16` stores weights and computes in float16, for GPU runtimes. Metadata properties name the scale and the model.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sr import threads
from sr.models.loader import load_model
from sr.models.resshift import ResShiftModel, bicubic_up
from sr.package import PackageError, model_folder
from sr.storage import StorageError

NOISE_PERIOD = 64  # latent pixels after which the baked ε repeats
OPSET = 18


def noise_canvas(channels: int, seed: int) -> torch.Tensor:
    """(1, channels, 64, 64) standard normal noise from `seed`: the baked ε."""
    shape = (1, channels, NOISE_PERIOD, NOISE_PERIOD)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def tiled_noise(canvas: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The canvas repeated over a (height, width) latent."""
    return canvas.repeat(1, 1, height // NOISE_PERIOD + 1, width // NOISE_PERIOD + 1)[..., :height, :width]


class OnnxGraph(nn.Module):
    """What the exported graph computes: one deterministic step of a one-step student (docs/methods.md §2.3)."""

    def __init__(self, model: ResShiftModel, seed: int = 0, noise_input: bool = False) -> None:
        super().__init__()
        if model.config.inference_steps != 1:
            raise ValueError(f"export: the model takes {model.config.inference_steps} steps; only one-step models "
                             "export as one graph")
        self.model, self.noise_input = model.eval(), noise_input
        diffusion, last = model.diffusion, model.diffusion.steps - 1
        eta = float(diffusion.etas[last])
        self.noise_std = diffusion.kappa * math.sqrt(eta)  # x_T = y + κ√η_T·ε
        self.input_scale = 1 / math.sqrt(diffusion.kappa**2 * eta + 1)  # the denoiser sees x_T / s_T
        self.step = last
        self.multiple = model.size_multiple * model.autoencoder.factor // model.scale  # LQ pixels
        self.register_buffer("canvas", noise_canvas(model.config.latent_channels, seed))

    def forward(self, image: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        h, w = image.shape[-2], image.shape[-1]
        pad_h, pad_w = (self.multiple - h % self.multiple) % self.multiple, (self.multiple - w % self.multiple) % \
            self.multiple
        lq = F.pad(image * 2 - 1, (0, pad_w, 0, pad_h), mode="replicate")
        y = self.model.autoencoder.encode(bicubic_up(lq, self.model.scale))
        if eps is None:
            eps = tiled_noise(self.canvas, y.shape[-2], y.shape[-1])
        x = (y + self.noise_std * eps) * self.input_scale
        t = torch.full((x.shape[0],), self.step, dtype=torch.long, device=x.device)
        hq = self.model.autoencoder.decode(self.model.denoiser(x, t, lq)).clamp(-1, 1)
        return ((hq + 1) / 2)[..., : h * self.model.scale, : w * self.model.scale]


class OSEDiffGraph(nn.Module):
    """What the exported graph of an OSEDiff student computes: one step at t=999 with its fixed prompt (§4.2)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        config = student.config
        if config.tagger is not None:
            raise ValueError("export: the student tags each image for its prompt (a transformers tagger); only a fixed "
                             "prompt exports")
        if config.vae_sample != "mode":
            raise ValueError("export: the student samples its VAE posterior (vae_sample: sample); only the mode exports")
        self.gen, self.scale, self.noise_input = student.gen.eval(), config.scale, False
        with torch.no_grad():
            self.register_buffer("prompt", student.prompter(torch.zeros(1, 3, 8, 8)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2] * self.scale, image.shape[-1] * self.scale
        lq_up = F.interpolate(image * 2 - 1, scale_factor=self.scale, mode="bicubic", align_corners=False).clamp(-1, 1)
        lq_up = F.pad(lq_up, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8), mode="reflect")  # SD's VAE: ×8
        return ((self.gen(lq_up, self.prompt.to(lq_up.dtype))[0] + 1) / 2)[..., :h, :w]


def strip_traces(proto):
    """Drop the exporter's per-node notes (stack traces with file paths, module names): the same model then gives the
    same bytes from any checkout, and no local path leaks into a published file."""
    graphs = [proto.graph, *(f for f in proto.functions)]
    for graph in graphs:
        for node in graph.node:
            node.ClearField("metadata_props")
            node.ClearField("doc_string")
        for info in [*getattr(graph, "value_info", []), *getattr(graph, "input", []), *getattr(graph, "output", [])]:
            info.ClearField("metadata_props")
    proto.graph.ClearField("metadata_props")
    return proto


def export_onnx(model: nn.Module, path: Path, seed: int = 0, noise_input: bool = False,
                fp16: bool = False) -> Path:
    """Write the graph of `model` (a ResShiftModel or an OSEDiffStudent) to `path` (atomically) and return it."""
    import onnx  # only for export: the runtime side needs onnxruntime alone

    if model.config.model_type == "osediff":
        if noise_input:
            raise ValueError("export: an OSEDiff student adds no noise; --noise-input does not apply")
        graph: nn.Module = OSEDiffGraph(model)
        m = 8
    else:
        graph = OnnxGraph(model, seed, noise_input)
        m = graph.multiple
    dtype = torch.float16 if fp16 else torch.float32
    graph = graph.to(dtype).eval()
    # Traced at odd sizes (the padding path) and large enough that every attention grid exceeds one window: the
    # windowed path then serves all sizes (on a grid within one window it equals global attention).
    image = torch.rand(1, 3, 34 * m + 1, 36 * m + 3, dtype=dtype)
    height, width = torch.export.Dim("height", min=1, max=16384), torch.export.Dim("width", min=1, max=16384)
    args: tuple = (image,)
    shapes: dict = {"image": {2: height, 3: width}}
    if noise_input:  # ε has the latent's size, the input's padded to the multiple
        latent = [-(-side // m) * m * model.scale // model.autoencoder.factor for side in image.shape[-2:]]
        args = (image, torch.randn(1, model.config.latent_channels, *latent, dtype=dtype))
        shapes["eps"] = {2: torch.export.Dim("latent_h", min=1, max=16384),
                         3: torch.export.Dim("latent_w", min=1, max=16384)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}-") as tmp:
        staged = Path(tmp) / path.name
        # optimize=False: onnxscript's rewrites reorder float arithmetic, and on the VQ-f4 Swin student that flipped
        # near-tied codebook choices (max |ORT - torch| 0.058 on a 128x128 input, 5e-6 without). Its graph also ran
        # 13 % slower, and exporting took 1.7x as long; ONNX Runtime applies its own graph optimizations at load.
        torch.onnx.export(graph, args, staged, dynamo=True, dynamic_shapes=shapes, opset_version=OPSET,
                          input_names=list(shapes), output_names=["hq"], external_data=False, verbose=False,
                          optimize=False)
        proto = strip_traces(onnx.load(staged))
        noise = "none" if model.config.model_type == "osediff" else "input" if noise_input else f"baked, seed {seed}"
        metadata = {"scale": model.scale, "noise": noise, "model_type": model.config.model_type,
                    "recipe": getattr(model.config, "recipe", None) or "", "dtype": "float16" if fp16 else "float32"}
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=str(value))
        onnx.checker.check_model(proto)
        onnx.save(proto, staged)
        staged.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    threads.configure()
    ap = argparse.ArgumentParser(prog="sr-export", description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a one-step model folder, package .tar.gz, or s3:// URI of either")
    ap.add_argument("output", type=Path, help="the .onnx file to write")
    ap.add_argument("--seed", type=int, default=0, help="seed of the baked start noise (default 0)")
    ap.add_argument("--noise-input", action="store_true", help="take ε as a second input instead of baking it")
    ap.add_argument("--fp16", action="store_true", help="float16 weights and compute, for GPU runtimes")
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="sr-export-") as scratch:
            export_onnx(load_model(model_folder(args.model, Path(scratch))), args.output, args.seed, args.noise_input,
                        args.fp16)
    except (StorageError, PackageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model} -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
