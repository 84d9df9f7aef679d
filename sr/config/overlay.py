"""Apply an overlay (configs/*.yaml: only the keys that change) to a params file, keeping its comments.

The merged file is validated before anything is written, and written atomically, so a bad overlay leaves
params.yaml as it was.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from sr.config.file import Params, load_overlay, merge, parse_params, read_yaml


def _styled(value: Any) -> Any:
    """Plain YAML data as ruamel nodes; short lists of scalars stay on one line, as params.yaml writes them."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _styled(item)
        return node
    if isinstance(value, list):
        node = CommentedSeq(_styled(item) for item in value)
        if all(not isinstance(item, (dict, list)) for item in value):
            node.fa.set_flow_style()
        return node
    return value


def _update(node: CommentedMap, overlay: dict) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            _update(node[key], value)
        else:
            node[key] = _styled(value)


def apply_overlay(overlay_path: str | Path, params_path: str | Path) -> Params:
    """Merge `overlay_path` onto `params_path` in place; returns the validated result."""
    overlay = load_overlay(overlay_path)
    params = parse_params(merge(read_yaml(params_path), overlay), f"{params_path} + {overlay_path}")
    yaml = YAML()
    yaml.width, yaml.preserve_quotes = 120, True  # "no" must stay a string (YAML 1.1 reads a bare no as false)
    document = yaml.load(Path(params_path).read_text())
    _update(document, overlay)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    tmp = Path(params_path).with_name(f".{Path(params_path).name}.tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, params_path)  # the config layer sits below sr.storage, so it renames by hand
    return params
