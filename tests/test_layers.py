"""Imports run one way: config → storage, threads → seeds, pretrained → data, diffusion → models → losses → train,
eval → package → infer, publish, export, onnx_backend → cli → stages → flows. A module may import its own package (sr.train.* from sr.train.*) and any
lower layer, never a higher one or a peer package of its own layer (sr.train never imports sr.eval, nor the reverse).
Imports inside functions are kept for heavy optional dependencies only (and in stages/, which import the library
after the thread settings of stages/_cli.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = [
    ["sr.config"],
    ["sr.storage", "sr.threads", "sr.launch"],
    ["sr.seeds", "sr.pretrained"],
    ["sr.data", "sr.diffusion"],
    ["sr.models"],
    ["sr.losses"],
    ["sr.train", "sr.eval"],
    ["sr.package"],
    ["sr.infer", "sr.publish", "sr.export", "sr.onnx_backend"],
    ["sr.cli"],
    ["stages"],
    ["flows"],
]
HEAVY = ("pyiqa", "diffusers", "transformers", "peft", "boto3", "botocore", "basicsr", "onnx", "onnxruntime",
         "sr.models.osediff", "sr.infer")  # sr.infer: torch, which sr-upscale --backend onnx must not import


def _package(module: str) -> tuple[int, str]:
    """(layer, package) of a project module: the longest LAYERS entry that prefixes it."""
    best = max((entry for layer in LAYERS for entry in layer if module == entry or module.startswith(entry + ".")),
               key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer), best


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) for every import of the source."""
    tree = ast.parse(source)
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in inner, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(name if _is_module(name) else node.module, id(node) in inner, node.lineno) for name in names]
    return found


def _is_module(name: str) -> bool:
    path = REPO / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _project(name: str) -> bool:
    return name.split(".")[0] in ("sr", "stages", "flows")


FILES = sorted(p for folder in ("sr", "stages", "flows") for p in (REPO / folder).rglob("*.py") if p != REPO / "sr/__init__.py")


def backward_imports(source: str, me: str) -> list[str]:
    """Every import of `source` (module `me`) that runs against the layers, as `line: what`."""
    layer, package = _package(me)
    found = []
    for name, inside, line in _imports(source):
        if _project(name) and not name.startswith(package) and _package(name)[0] >= layer:
            found.append(f"{line}: {me} (layer {layer}) imports {name} (layer {_package(name)[0]})")
        if inside and not name.startswith(HEAVY) and not me.startswith("stages."):
            found.append(f"{line}: `import {name}` inside a function of {me}")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_run_one_way(path):
    assert backward_imports(path.read_text(), _module_name(path)) == []


def test_the_check_names_backward_peer_and_inner_imports():
    source = "from sr.eval.metrics import Metrics\nimport sr.train.loop\nimport flows.pipeline\n" \
             "def f():\n    import yaml\n    import pyiqa\n"
    assert backward_imports(source, "sr.train.distill") == [
        "1: sr.train.distill (layer 6) imports sr.eval.metrics (layer 6)",
        "3: sr.train.distill (layer 6) imports flows.pipeline (layer 11)",
        "5: `import yaml` inside a function of sr.train.distill",
    ]
