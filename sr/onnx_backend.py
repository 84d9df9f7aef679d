"""Run an exported model (`model.onnx` from sr-export or a package) with ONNX Runtime: numpy, Pillow and onnxruntime
only, so `sr-upscale --backend onnx` needs no torch.

Large images are tiled in LQ pixels: every tile goes through the whole graph and overlapping outputs are blended
with Gaussian weights. The graph pads each tile to its own size multiple, so tiles may have any size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from sr.data.images import to_rgb8
from sr.package import model_folder

ONNX_FILE = "model.onnx"


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile starts covering [0, size) with at least `overlap` shared pixels between neighbours."""
    if tile >= size:
        return [0]
    stride = max(1, tile - overlap)
    count = -(-(size - tile) // stride) + 1
    return sorted({round(i * (size - tile) / (count - 1)) for i in range(count)})


def _weight(height: int, width: int) -> np.ndarray:
    def axis(n: int) -> np.ndarray:
        x = np.arange(n, dtype=np.float32) - (n - 1) / 2
        return np.exp(-0.5 * (x / max(n / 4, 1e-6)) ** 2)

    return axis(height)[:, None] * axis(width)[None, :]


class OnnxUpscaler:
    """`OnnxUpscaler.from_pretrained(folder | package | s3:// | model.onnx).upscale(PIL image or uint8 array)`."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.scale = int(meta.get("scale", 4))
        self.dtype = np.float16 if meta.get("dtype") == "float16" else np.float32

    @classmethod
    def from_pretrained(cls, spec: str | Path, threads: int | None = None) -> OnnxUpscaler:
        """An .onnx file, or a model folder or package (or s3:// URI of either) that holds model.onnx."""
        if str(spec).endswith(".onnx"):
            return cls(Path(spec), threads)
        with tempfile.TemporaryDirectory(prefix="sr-onnx-") as scratch:
            folder = model_folder(spec, Path(scratch))
            if not (folder / ONNX_FILE).is_file():
                raise FileNotFoundError(f"{spec}: has no {ONNX_FILE} (export one with sr-export)")
            return cls(folder / ONNX_FILE, threads)

    def _run(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w, 3) in [0, 1] -> (h·s, w·s, 3) in [0, 1]."""
        image = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=self.dtype)
        return self.session.run(None, {"image": image})[0][0].transpose(1, 2, 0).astype(np.float32)

    def upscale(self, image: Image.Image | np.ndarray, tile: int | None = None,
                overlap: int = 32) -> Image.Image | np.ndarray:
        """`image` (PIL, any mode, or an (h, w[, c]) uint8 array) ×scale, the same type back."""
        pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
        rgb = np.asarray(to_rgb8(pil, "image"), dtype=np.float32) / 255.0
        h, w, s = rgb.shape[0], rgb.shape[1], self.scale
        if tile is None or (tile >= h and tile >= w):
            out = self._run(rgb)
        else:
            out, total = np.zeros((h * s, w * s, 3), np.float32), np.zeros((h * s, w * s, 1), np.float32)
            th, tw = min(tile, h), min(tile, w)
            for top in _starts(h, th, overlap):
                for left in _starts(w, tw, overlap):
                    weight = _weight(th * s, tw * s)[..., None]
                    region = (slice(top * s, (top + th) * s), slice(left * s, (left + tw) * s))
                    out[region] += self._run(rgb[top : top + th, left : left + tw]) * weight
                    total[region] += weight
            out /= total
        array = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(array, "RGB") if isinstance(image, Image.Image) else array
