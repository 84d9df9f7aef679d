"""Torch eager vs ONNX Runtime (CPU provider) on the same one-step student and the same images, side by side in one
run: seconds per megapixel of output for each, at a few LQ sizes, and their ratio.

    python bench/export.py                                   # the packaged student of `make repro`
    python bench/export.py --model models/student-colearn --sizes 64 128 256
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sr import threads

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    threads.configure()
    import numpy as np
    import onnxruntime as ort
    import torch

    from sr.export import OnnxGraph, export_onnx
    from sr.models.loader import load_model
    from sr.package import model_folder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "dist" / "sr-onestep-0.1.0.tar.gz"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(model_folder(args.model, Path(tmp)))
        graph = OnnxGraph(model).eval()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads.thread_count()
        session = ort.InferenceSession(str(export_onnx(model, Path(tmp) / "model.onnx")), options,
                                       providers=["CPUExecutionProvider"])
    print(f"{threads.thread_count()} thread(s); seconds per output megapixel, median of {args.repeats}")
    print(f"{'LQ':>6} {'torch':>10} {'onnxruntime':>12} {'torch / ort':>12}")
    for side in args.sizes:
        image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(side))
        runs = {"torch": lambda image=image: graph(image), "ort": lambda image=image: session.run(
            None, {"image": image.numpy()})}
        seconds = {}
        for name, run in runs.items():
            with torch.no_grad():
                run()  # warm-up
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - start)
            seconds[name] = statistics.median(times) / ((side * model.scale) ** 2 / 1e6)
        print(f"{side:>5}² {seconds['torch']:>10.3f} {seconds['ort']:>12.3f} {seconds['torch'] / seconds['ort']:>11.2f}x")
        np.testing.assert_allclose(graph(image).detach().numpy(), session.run(None, {"image": image.numpy()})[0],
                                   atol=1e-4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
