"""DVC stage `degrade`: HQ crops + Real-ESRGAN second-order degradation -> WebDataset shards."""

from __future__ import annotations

from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "degrade"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--raw", type=Path, default=Path("data/raw"))
    ap.add_argument("--out", type=Path, default=Path("data/shards"))
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)
    from sr.data.synthesis import write_shards

    counts = write_shards(args.raw, args.out, p.degrade, p.seed)
    print(f"degrade: {counts['train']} train and {counts['val']} val samples in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
