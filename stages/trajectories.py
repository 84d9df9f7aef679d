"""DVC stage `trajectories`: cache the teacher's deterministic T-step outputs for every training sample."""

from __future__ import annotations

from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "trajectories"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    ap.add_argument("--out", type=Path, default=Path("data/trajectories"))
    ap.add_argument("--work", type=Path, default=Path("checkpoints/trajectories"), help="partial shards for resume")
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)

    from sr.data.shards import shard_paths
    from sr.models.resshift import WEIGHTS_FILE, ResShiftModel
    from sr.train.checkpoint import fingerprint
    from sr.train.trajectories import cache_trajectories

    model = ResShiftModel.from_pretrained(args.teacher)
    train = shard_paths(args.shards, "train")
    # Partial shards of a run with other inputs must never be resumed: key the work folder by every input.
    work = args.work / fingerprint(p.trajectories.model_dump_json(), p.seed, args.teacher / WEIGHTS_FILE, *train)
    count = cache_trajectories(model, train, args.out, work, p.seed, p.trajectories)
    print(f"trajectories: {count} samples cached in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
