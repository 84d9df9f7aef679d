"""Every seeding rule of the project, in one place.

All randomness is derived from the params' global `seed` and names, never from global RNG state: a draw is a pure
function of (seed, purpose, identity), so the same params give the same bytes in any process, on any machine, in any
order of work. The rules that more than one module must agree on are spelled out here:

- a training or val sample's degradation: `sample_seed(seed, split, image id, crop index)`;
- the start noise ε of a training sample, whose teacher target the trajectories stage caches: `trajectory_noise`;
- the start noise ε of an evaluated sample (val shards, held-out photos), the same for the teacher, every student and
  every stage that scores it: `val_noise`;
- a training loop's draws (timesteps, noise, turns), identical however many processes share the batch: `Draws`.
"""

from __future__ import annotations

import hashlib

import torch


def sample_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, stable across processes and Python versions (unlike hash())."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def noise(noise_seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise of `shape` drawn from its own generator."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(noise_seed))


def trajectory_noise_seed(seed: int, key: str) -> int:
    """The seed of a training sample's ε; the trajectory cache stores it next to the teacher's target."""
    return sample_seed(seed, "trajectory-noise", key)


def val_noise(keys: list[str], seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """(len(keys), *shape): one ε per evaluated sample, seeded by its key."""
    return torch.cat([noise(sample_seed(seed, "val-noise", key), (1, *shape)) for key in keys])


class Draws:
    """Random draws for this process's rows of a global batch: every process draws the whole global batch from the
    same generator and keeps its own rows, so N processes draw exactly the numbers one process draws."""

    def __init__(self, generator: torch.Generator, rank: int = 0, world: int = 1) -> None:
        self.generator, self.rank, self.world = generator, rank, world

    def _mine(self, full: torch.Tensor, n: int) -> torch.Tensor:
        return full[self.rank * n : (self.rank + 1) * n]

    def randint(self, low: int, high: int, n: int) -> torch.Tensor:
        return self._mine(torch.randint(low, high, (n * self.world,), generator=self.generator), n)

    def randn(self, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
        n = shape[0]
        return self._mine(torch.randn((n * self.world, *shape[1:]), generator=self.generator), n)

    def rand(self, n: int) -> torch.Tensor:
        return self._mine(torch.rand(n * self.world, generator=self.generator), n)

