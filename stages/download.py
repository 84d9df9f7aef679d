"""DVC stage `download`: every configured source -> normalised 8-bit RGB images + manifest + rejects."""

from __future__ import annotations

from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "download"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--out", type=Path, default=Path("data/raw"))
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)

    from sr.data.sources import download

    summary = download(p.download, seed=p.seed, out_dir=args.out)
    print(summary)
    return 0


if __name__ == "__main__":
    from sr.data.images import ImageError
    from sr.data.sources import SourceError

    raise SystemExit(run(main, SourceError, ImageError))
