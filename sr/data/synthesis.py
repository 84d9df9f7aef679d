"""HQ crops -> (HQ, LQ) training pairs written as WebDataset shards.

Every random draw of a sample (crop position, flip, every degradation parameter) comes from one generator seeded by
(seed, split, image id, crop index), so the same params give byte-identical shards, and changing one image changes
only its own samples.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from sr.config import DegradeParams
from sr.data.degradations import bicubic_lq, degrade, mild_degrade, usm_sharpen
from sr.data.shards import ShardWriter, encode_json, encode_png
from sr.seeds import sample_seed


def read_manifest(raw_dir: Path) -> list[dict]:
    path = raw_dir / "manifest.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no manifest; run the download stage first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def random_crop(image: torch.Tensor, size: int, generator: torch.Generator, flip: bool) -> tuple[torch.Tensor, dict]:
    _, height, width = image.shape
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    crop = image[:, top : top + size, left : left + size]
    hflip = flip and bool(torch.rand((), generator=generator) < 0.5)
    if hflip:
        crop = crop.flip(-1)
    return crop.contiguous(), {"top": top, "left": left, "hflip": hflip}


def degrade_mixed(hq: torch.Tensor, p: DegradeParams, generator: torch.Generator, split: str) -> tuple[torch.Tensor, dict]:
    """Train crops: the bicubic-only LQ with p.clean_prob, the mild degradation with p.mild_prob, else Real-ESRGAN's.
    The choice is drawn from the crop's own generator, and only when a probability is set (so shards without a
    mixture keep their bytes). Val crops: always Real-ESRGAN, the degradation the papers report."""
    if split == "train" and (p.clean_prob > 0 or p.mild_prob > 0):
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        if u < p.clean_prob:
            return bicubic_lq(hq, p.scale), {"kind": "bicubic"}
        if u < p.clean_prob + p.mild_prob:
            return mild_degrade(hq, p.scale, p.mild, generator)
    return degrade(hq, p, generator)


def write_shards(raw_dir: Path, out_dir: Path, p: DegradeParams, seed: int) -> dict[str, int]:
    """Build `out_dir/{train,val}-NNNNNN.tar` in a temp folder, then swap it in whole."""
    manifest = read_manifest(raw_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {"train": 0, "val": 0}
    total = sum(p.train_crops_per_image if m["split"] == "train" else p.val_crops_per_image for m in manifest)
    bar = tqdm(total=total, desc="degrade", mininterval=2)
    for split, crops in (("train", p.train_crops_per_image), ("val", p.val_crops_per_image)):
        entries = sorted((m for m in manifest if m["split"] == split), key=lambda m: m["id"])
        with ShardWriter(tmp, split, p.shard_size) as writer:
            for entry in entries:
                array = np.asarray(Image.open(raw_dir / "images" / f"{entry['id']}.png").convert("RGB"))
                image = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0)
                for crop_index in range(crops):
                    sample_id = sample_seed(seed, split, entry["id"], crop_index)
                    generator = torch.Generator().manual_seed(sample_id)
                    hq, where = random_crop(image, p.hq_size, generator, flip=p.use_hflip and split == "train")
                    lq, record = degrade_mixed(hq, p, generator, split)
                    if p.usm_sharpen:
                        hq = usm_sharpen(hq)  # ResShift's `use_sharp`: the target is the sharpened crop too
                    key = f"{entry['id']}_{crop_index:04d}"
                    members = {
                        "hq.png": encode_png(hq),
                        "lq.png": encode_png(lq),
                        "json": encode_json({"key": key, "image_id": entry["id"], "split": split, "seed": sample_id,
                                             "crop": where, "degradation": record}),
                    }
                    writer.write(key, members)
                    counts[split] += 1
                    bar.update()
    bar.close()
    if counts["train"] == 0 or counts["val"] == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{raw_dir / 'manifest.jsonl'}: need train and val images, got {counts}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return counts
