"""The loop kit: what every trainer (teacher, the distillation recipes, OSEDiff) does the same way, written once.

A trainer reads top to bottom, nanoGPT-style, and calls the kit only for the shared mechanics:

    run = Run("teacher", p.train, ckpt_dir, curves_path)
    ...build the nets, EMA, optimizers, the generator...
    run.restore({"model": net, "ema": ema, "optimizer": opt, "scheduler": sched}, rng)   # resume, if a checkpoint
    net, opt = run.prepare(net, opt)                                                      # device, DDP
    batches = run.batches(shards, seed)
    for step in run.steps():
        for i in range(t.grad_accum):
            with run.micro(i, [net]):            # no DDP all-reduce before the last micro-batch; autocast
                run.backward(loss / t.grad_accum)
        run.update(opt, sched, net.parameters())  # clip, step, schedule, zero
        ema_update(ema, run.unwrap(net), t.ema_rate)
        run.end_step(step, {"loss": ...}, lr=...)  # progress, curves every log_every, checkpoint every ckpt_every

Checkpoints live under a folder named by the fingerprint of the run's inputs (a changed config never resumes a
stale run), hold every registered object's state plus the RNG states, and are written by the main process only.

Several processes (torchrun, see sr/launch.py; gloo on CPU, NCCL on GPUs) split every global batch of
`train.batch_size`: each loads its rows (sr.data.shards.ShardStream) and draws its rows of every random tensor from
the same generator (`Draws`), so N processes compute what one process computes with the whole batch, DDP averaging
the gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn
from tqdm import tqdm

from sr.config import MixedPrecision, TrainParams
from sr.data.shards import Sample, make_loader
from sr.seeds import Draws
from sr.train.checkpoint import load_latest, rng_state, save_checkpoint, set_rng_state
from sr.train.curves import Curves


def make_accelerator(name: str, mixed_precision: MixedPrecision) -> Accelerator:
    """DDP when launched by torchrun (several processes: NCCL on GPUs, gloo on CPU). bf16 autocast runs anywhere;
    fp16 needs CUDA and fails here, before the run builds anything, on a machine without it."""
    on_gpu = torch.cuda.is_available()
    if mixed_precision == "fp16" and not on_gpu:
        raise ValueError(f"{name}: train.mixed_precision fp16 needs a CUDA device; this machine has none "
                         "(use bf16 or no)")
    return Accelerator(mixed_precision=mixed_precision, cpu=not on_gpu)


def warmup_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the base LR, then constant (ResShift/SinSR `milestones[0]`)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))


class Run:
    """One training run: its accelerator, checkpoint folder, curves and progress."""

    def __init__(self, name: str, t: TrainParams, ckpt_dir: Path, curves_path: Path) -> None:
        self.name, self.t, self.ckpt_dir, self.curves_path = name, t, ckpt_dir, curves_path
        self.accelerator = make_accelerator(name, t.mixed_precision)
        self.device, self.world = self.accelerator.device, self.accelerator.num_processes
        if t.batch_size % self.world:
            raise ValueError(f"train.batch_size {t.batch_size} does not split over {self.world} processes")
        self.batch = t.batch_size // self.world  # this process's rows of every global batch
        self.start = 0
        self.objects: dict[str, Any] = {}
        self.generators: tuple[torch.Generator, ...] = ()
        self.running: dict[str, float] = {}
        self.curves = Curves(curves_path)
        self.bar: tqdm | None = None

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    def draws(self, seed: int) -> Draws:
        """The run's random draws, from one generator seeded alike in every process."""
        return Draws(torch.Generator().manual_seed(seed), self.rank, self.world)

    def restore(self, objects: dict[str, Any], *generators: torch.Generator) -> int:
        """Register what a checkpoint holds (anything with state_dict/load_state_dict; None entries are skipped) and
        the run's generators; load the newest checkpoint into them. Returns the first step to run."""
        self.objects = {name: obj for name, obj in objects.items() if obj is not None}
        self.generators = generators
        state = load_latest(self.ckpt_dir)
        if state is not None:
            self.start = state["step"]
            for name, obj in self.objects.items():
                try:
                    obj.load_state_dict(state[name])
                except (KeyError, RuntimeError, ValueError) as exc:  # written by other code: say so, in one line
                    raise self._misfit(name, (str(exc).strip().splitlines() or [type(exc).__name__])[0]) from None
            if "curves" not in state:  # written before the curve rows travelled in checkpoints
                raise self._misfit("curves", "missing")
            self.curves = Curves(self.curves_path, state["curves"])
            set_rng_state(state["rng"], *generators)
            print(f"{self.name}: resumed from checkpoint at step {self.start} ({self.ckpt_dir})", flush=True)
        if self.is_main and self.curves.rows:
            self.curves.flush()  # now: a run resumed at its last step trains no step that would write them
        return self.start

    def _misfit(self, name: str, why: str) -> ValueError:
        return ValueError(f"{self.ckpt_dir}: the checkpoint at step {self.start} does not fit this code ({name}: "
                          f"{why}); remove that folder to train from the start")

    def prepare(self, *objects: Any) -> Any:
        """Move to the device and wrap for DDP (accelerate); None stays None."""
        prepared = [None if obj is None else self.accelerator.prepare(obj) for obj in objects]
        return prepared[0] if len(prepared) == 1 else prepared

    def unwrap(self, module: nn.Module) -> nn.Module:
        return self.accelerator.unwrap_model(module)

    def batches(self, shards: list[Path], seed: int, transform: Callable[[Sample], Sample] | None = None
                ) -> Iterator[Sample]:
        """This process's endless shuffled batches, resumed after the batches the restored steps consumed."""
        t = self.t
        loader = make_loader(shards, self.batch, seed, t.shuffle_buffer, t.num_workers, self.rank, self.world,
                             skip_batches=self.start * t.grad_accum, transform=transform)
        return iter(loader)

    def steps(self) -> Iterator[int]:
        self.bar = tqdm(range(self.start, self.t.steps), initial=self.start, total=self.t.steps, desc=self.name,
                        mininterval=2, disable=not self.is_main)
        yield from self.bar

    @contextlib.contextmanager
    def micro(self, index: int, modules: Iterable[nn.Module]) -> Iterator[None]:
        """One micro-batch of an optimizer step: DDP all-reduces gradients only on the last one; autocast inside."""
        with contextlib.ExitStack() as stack:
            if index < self.t.grad_accum - 1:
                for module in modules:
                    stack.enter_context(self.accelerator.no_sync(module))
            stack.enter_context(self.accelerator.autocast())
            yield

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def update(self, optimizer: torch.optim.Optimizer, scheduler: Any = None,
               clip: Iterable[torch.Tensor] | None = None) -> None:
        """Clip the gradients of `clip` (when train.grad_clip > 0), step the optimizer and scheduler, zero grads."""
        if clip is not None and self.t.grad_clip:
            self.accelerator.clip_grad_norm_(list(clip), self.t.grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    def end_step(self, step: int, stats: dict[str, float], **extra: float) -> int:
        """Smoothed stats on the progress bar, a curves row every log_every steps, a checkpoint every ckpt_every
        (and at the last step). Returns the number of steps done."""
        t, done = self.t, step + 1
        if self.world > 1:  # every process logs the mean over the global batch, as one process would
            values = torch.tensor(list(stats.values()), dtype=torch.float64, device=self.device)
            stats = dict(zip(stats, self.accelerator.reduce(values, "mean").tolist()))
        self.running = {k: 0.9 * self.running.get(k, v) + 0.1 * v for k, v in stats.items()}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in self.running.items()}, refresh=False)
        if done % t.log_every == 0 or done == t.steps:
            self.curves.log(done, **stats, **extra)
        if self.is_main and (done % t.ckpt_every == 0 or done == t.steps):
            self.curves.flush()
            state = {name: obj.state_dict() for name, obj in self.objects.items()}
            save_checkpoint(self.ckpt_dir, done, {**state, "rng": rng_state(*self.generators),
                                                  "curves": self.curves.state()})
        return done
