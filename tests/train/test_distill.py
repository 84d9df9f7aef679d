"""The distillation trainer on a tiny random teacher and a real (tiny) trajectory cache: every recipe runs and
writes a loadable one-step model folder; an interrupted run resumes to the same weights; online == cached targets."""

from pathlib import Path

import pytest
import torch

from sr.config import (
    AutoencoderParams,
    DiffusionParams,
    DistillParams,
    SwinUNetParams,
    TrainParams,
    TrajectoriesParams,
    UNetParams,
)
from sr.data.shards import ShardWriter, encode_json, encode_png, iter_samples, make_loader, shard_paths
from sr.data.trajectories import cache_trajectories, trajectory_shards
from sr.diffusion.resshift import ResShift
from sr.models.build import (
    ResShiftModel,
    build_autoencoder,
    build_denoiser,
    load_model_dir,
    model_config,
    save_model_dir,
)
from sr.train.distill import Nets, _micro_data, evaluate_student, generator_losses, train_distill, with_noise

UNET = UNetParams(model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_levels=[], num_head_channels=8)
DIFFUSION = DiffusionParams(steps=4, min_noise_level=0.2)


def _teacher(tmp: Path) -> ResShiftModel:
    torch.manual_seed(0)
    ae_params = AutoencoderParams()
    ae = build_autoencoder(ae_params, tmp, scale=4)
    denoiser = build_denoiser("unet", UNET, SwinUNetParams(), ae.channels)
    config = model_config("unet", UNET, SwinUNetParams(), ae_params, DIFFUSION, 4, ae.channels)
    model = ResShiftModel(denoiser.eval(), ae, ResShift.from_params(DIFFUSION), config)
    save_model_dir(tmp / "teacher", model)
    return load_model_dir(tmp / "teacher")


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def data(tmp_path_factory, one_thread):
    tmp = tmp_path_factory.mktemp("distill")
    teacher = _teacher(tmp)
    g = torch.Generator().manual_seed(1)
    for split, count in (("train", 12), ("val", 4)):
        with ShardWriter(tmp / "shards", split, 6) as writer:
            for i in range(count):
                hq = torch.rand(3, 16, 16, generator=g)
                lq = torch.nn.functional.avg_pool2d(hq[None], 4)[0]
                writer.write(f"{split}{i:03d}", {"hq.png": encode_png(hq), "lq.png": encode_png(lq),
                                                 "json": encode_json({"index": i})})
    train = shard_paths(tmp / "shards", "train")
    cache_trajectories(teacher, train, tmp / "traj", tmp / "traj-work", 0, TrajectoriesParams(batch_size=6, shard_size=6))
    return tmp, teacher


def _params(recipe: str, steps: int, **overrides) -> DistillParams:
    train = TrainParams(steps=steps, batch_size=2, grad_accum=2, lr=1e-3, ema_rate=0.5, ckpt_every=2, log_every=1,
                        num_workers=0, shuffle_buffer=4)
    return DistillParams(recipes=[recipe], train=train, sample_every=2, **overrides)


@pytest.mark.parametrize("recipe", ["sinsr", "tadsr", "colearn"])
def test_each_recipe_trains_three_steps_and_saves_a_one_step_model(data, tmp_path, recipe):
    root, teacher = data
    overrides = {"colearn": {"downsampler": "conv"}} if recipe == "colearn" else {}
    train_distill(recipe, _params(recipe, 3, **overrides), teacher, 0, trajectory_shards(root / "traj"),
                  tmp_path / "student", tmp_path / "work", tmp_path / "curves.csv",
                  grid_samples=list(iter_samples(shard_paths(root / "shards", "val")))[:2],
                  samples_dir=tmp_path / "grids")
    student = load_model_dir(tmp_path / "student")
    assert student.config["steps_inference"] == 1 and student.config["recipe"] == recipe
    changed = [not torch.equal(a, b) for a, b in zip(student.denoiser.state_dict().values(),
                                                     teacher.denoiser.state_dict().values())]
    assert any(changed)
    lines = (tmp_path / "curves.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss,") and len(lines) == 4
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["step-00000002.png", "step-00000003.png"]


class _Stop(Exception):
    pass


@pytest.mark.parametrize("recipe", ["tadsr", "colearn"])
def test_resume_after_interruption_gives_the_same_weights(data, tmp_path, recipe):
    root, teacher = data
    shards = trajectory_shards(root / "traj")

    def run(work: Path, out: Path, stop_at: int | None = None) -> None:
        def on_step(step: int, stats: dict) -> None:
            if step == stop_at:
                raise _Stop

        train_distill(recipe, _params(recipe, 4), teacher, 0, shards, out, work, work / "curves.csv", on_step=on_step)

    run(tmp_path / "straight", tmp_path / "a")
    with pytest.raises(_Stop):
        run(tmp_path / "resumed", tmp_path / "b", stop_at=2)
    assert not (tmp_path / "b").exists()
    run(tmp_path / "resumed", tmp_path / "b")
    a, b = load_model_dir(tmp_path / "a").denoiser.state_dict(), load_model_dir(tmp_path / "b").denoiser.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    rows = (tmp_path / "resumed" / "curves.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]


def test_online_targets_equal_the_cached_ones(data):
    root, teacher = data
    cached = next(iter(make_loader(trajectory_shards(root / "traj"), 3, 0, 4, 0,
                                   transform=lambda s: with_noise(s, 0, 48, 4))))
    d_cached = _micro_data(cached, teacher, online=False, device=torch.device("cpu"))
    d_online = _micro_data(cached, teacher, online=True, device=torch.device("cpu"))
    torch.testing.assert_close(d_online["target"], d_cached["target"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(d_online["y"], d_cached["y"], rtol=1e-5, atol=1e-5)


def test_evaluation_reports_student_teacher_and_bicubic(data, tmp_path):
    root, teacher = data
    val = list(iter_samples(shard_paths(root / "shards", "val")))
    metrics = evaluate_student(teacher, teacher, val, 0, tmp_path / "m.json", tmp_path / "no-torch-home", 3)
    assert metrics["val_samples"] == 4 and "lpips_student" not in metrics
    assert metrics["psnr_y_bicubic"] > 10
    assert metrics["psnr_y_gap_to_teacher_db"] == pytest.approx(metrics["psnr_y_teacher"] - metrics["psnr_y_student"],
                                                                abs=1e-3)


def test_colearn_lq_adversarial_term_reaches_the_student_through_the_downsampler(data):
    root, teacher = data
    p = _params("colearn", 1)
    batch = next(iter(make_loader(trajectory_shards(root / "traj"), 2, 0, 4, 0,
                                  transform=lambda s: with_noise(s, 0, 48, 4))))
    d = _micro_data(batch, teacher, online=False, device=torch.device("cpu"))
    nets = Nets("colearn", p, teacher, torch.zeros(1, 48, 4, 4))
    nets.discs.requires_grad_(False)
    losses, keep, _ = generator_losses("colearn", p, nets, nets.student, nets.downsampler, teacher, d,
                                       torch.Generator().manual_seed(0))
    losses["lq_adv"].backward()
    student_grad = sum(q.grad.abs().sum() for q in nets.student.parameters() if q.grad is not None)
    down_grad = sum(q.grad.abs().sum() for q in nets.downsampler.parameters() if q.grad is not None)
    assert student_grad > 0 and down_grad > 0
    assert all(q.grad is None for q in nets.discs.parameters())
    assert all(q.grad is None for q in teacher.denoiser.parameters())
    assert set(keep) == {"fake", "y_hat"} and not keep["fake"].requires_grad
