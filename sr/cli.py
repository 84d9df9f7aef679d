"""`sr-upscale INPUT OUTPUT --model M`: upscale an image, a folder of images (`--recursive` for subfolders) or a glob
pattern, loading the model once.

OUTPUT is a file for a single input file with an image suffix, else a folder that mirrors the inputs' relative paths.
Existing outputs are skipped unless `--overwrite`; an unreadable input is reported with its reason and the batch
goes on. A one-line summary ends the run; the exit status is 1 when any file failed, 2 when nothing could start (a
bad model, a missing input). `--backend onnx` runs an exported model.onnx through ONNX Runtime without torch.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import get_args

from tqdm import tqdm

from sr import threads
from sr.config import ColorFix
from sr.data.images import IMAGE_FORMATS, ImageError, load_rgb8, save_image
from sr.onnx_backend import OnnxUpscaler
from sr.package import PackageError
from sr.storage import StorageError

INPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def find_inputs(spec: str, recursive: bool) -> tuple[list[Path], Path]:
    """(input files, the folder their output paths are relative to) for a file, a folder or a glob pattern."""
    if any(c in spec for c in "*?["):
        fixed = []
        for part in Path(spec).parts:  # the folder part before the first wildcard
            if any(c in part for c in "*?["):
                break
            fixed.append(part)
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        return files, Path(*fixed) if fixed else Path(".")
    path = Path(spec)
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        return sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES), path
    if path.is_file():
        return [path], path.parent
    raise FileNotFoundError(f"{spec}: no such file, folder or matching pattern")


def output_paths(files: list[Path], root: Path, output: Path, single: bool, fmt: str | None) -> list[Path]:
    """Where each input's result goes: OUTPUT itself for one file given as a file name, else OUTPUT/<relative path>
    with the format's suffix (<name>.<old suffix>.<format> where two inputs would otherwise meet, a.jpg and a.png)."""
    if single and output.suffix.lower().lstrip(".") in {*IMAGE_FORMATS, "jpeg"}:
        return [output]
    relative = [source.relative_to(root) if source.is_relative_to(root) else Path(source.name) for source in files]
    plain = [output / r.with_suffix(f".{fmt or 'png'}") for r in relative]
    return [path if plain.count(path) == 1 else output / r.parent / f"{r.name}.{fmt or 'png'}"
            for path, r in zip(plain, relative)]


def load_upscaler(args: argparse.Namespace):
    if args.backend == "onnx":  # numpy + onnxruntime: no torch on this path
        return OnnxUpscaler.from_pretrained(args.model, threads.thread_count())
    from sr.infer import Upscaler  # torch

    return Upscaler.from_pretrained(args.model, args.device, args.cache_dir)


def upscale_one(upscaler, args: argparse.Namespace, source: Path, progress: bool):
    image = load_rgb8(source, str(source))
    tile = args.tile if args.tile > 0 else None
    if args.backend == "onnx":
        return upscaler.upscale(image, tile, args.overlap)
    return upscaler.upscale(image, tile, args.overlap, args.seed, args.steps, args.color_fix, args.batch, progress)


def main(argv: list[str] | None = None) -> int:
    threads.configure()
    ap = argparse.ArgumentParser(prog="sr-upscale", description=__doc__.splitlines()[0])
    ap.add_argument("input", help="an image, a folder, or a glob pattern (quote it)")
    ap.add_argument("output", type=Path, help="an image file (single input) or a folder")
    ap.add_argument("--model", required=True, help="model folder, package .tar.gz, or s3:// URI of either")
    ap.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders of a folder input")
    ap.add_argument("--overwrite", action="store_true", help="replace outputs that exist (default: skip them)")
    ap.add_argument("--format", choices=sorted(IMAGE_FORMATS), default=None, help="output format (default png)")
    ap.add_argument("--quality", type=int, default=None, help="jpg/webp quality (Pillow's default when unset)")
    ap.add_argument("--tile", type=int, default=128, help="tile size in LQ pixels (0: never tile; default 128)")
    ap.add_argument("--overlap", type=int, default=32, help="tile overlap in LQ pixels (default 32)")
    ap.add_argument("--batch", type=int, default=4, help="tiles per network call (torch backend)")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model folder's own)")
    ap.add_argument("--color-fix", choices=list(get_args(ColorFix)), default="none",
                    help="colour correction towards the bicubic-upsampled input (docs/methods.md §4.6)")
    ap.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=None, help="where s3:// models and packages are unpacked")
    args = ap.parse_args(argv)
    if args.backend == "onnx" and (args.color_fix != "none" or args.steps is not None):
        ap.error("--color-fix and --steps need --backend torch (an exported graph is one fixed step)")
    try:
        files, root = find_inputs(args.input, args.recursive)
        upscaler = load_upscaler(args)
    except (StorageError, PackageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    single = len(files) == 1 and Path(args.input).is_file()
    targets = output_paths(files, root, args.output, single, args.format)
    done = skipped = failed = 0
    bar = tqdm(list(zip(files, targets)), desc="sr-upscale", unit="image", disable=single or not files, mininterval=1)
    for source, target in bar:
        if target.exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            save_image(upscale_one(upscaler, args, source, progress=single), target, args.quality)
            done += 1
        except (ImageError, ValueError, OSError) as exc:
            tqdm.write(f"{source}: {exc}", file=sys.stderr)
            failed += 1
    print(f"sr-upscale: {done} done, {skipped} skipped, {failed} failed -> {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
