"""sr-onestep: one-step diffusion super-resolution. `from sr import Upscaler` is the Python API (sr/infer.py)."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy, so that `import sr.<module>` stays light (the ONNX backend must not import torch).
    if name == "Upscaler":
        from sr.infer import Upscaler

        return Upscaler
    raise AttributeError(f"module 'sr' has no attribute {name!r}")
