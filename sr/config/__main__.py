"""`python -m sr.config apply configs/X.yaml [--params params.yaml]`: merge an overlay onto the params file in place.

`python -m sr.config check [--params params.yaml]` validates a params file and prints nothing else on success.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sr.config.file import ParamsError, load_params
from sr.config.overlay import apply_overlay


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sr.config", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="merge an overlay (configs/*.yaml) onto the params file")
    apply.add_argument("overlay", type=Path)
    apply.add_argument("--params", type=Path, default=Path("params.yaml"))
    check = sub.add_parser("check", help="validate the params file")
    check.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    try:
        if args.command == "apply":
            apply_overlay(args.overlay, args.params)
            print(f"{args.params}: applied {args.overlay}")
        else:
            load_params(args.params)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
