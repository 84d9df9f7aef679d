"""The distillation trainer on a tiny random teacher and a real (tiny) trajectory cache: every recipe runs and
writes a loadable one-step model folder; an interrupted run resumes to the same weights; online == cached targets."""

from pathlib import Path

import pytest
import torch

from sr.config import DistillParams
from sr.data.shards import ShardWriter, encode_json, encode_png, iter_samples, make_loader, shard_paths
from sr.models.resshift import ResShiftModel
from sr.seeds import Draws
from sr.train.distill import complete_batch, make_recipe, recipe_keys, train_distill, with_noise
from sr.train.recipes.colearn import ColearnFakes
from sr.train.trajectories import cache_trajectories, trajectory_shards
from tests.pipeline_fixtures import default_params

UNET = {"model_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_levels": [],
        "num_head_channels": 8}


def _teacher(tmp: Path) -> ResShiftModel:
    torch.manual_seed(0)
    p = default_params().teacher
    p = p.model_copy(update={"unet": p.unet.model_copy(update=UNET),
                             "diffusion": p.diffusion.model_copy(update={"steps": 4, "min_noise_level": 0.2})})
    ResShiftModel.build(p, 4, tmp).save_pretrained(tmp / "teacher")
    return ResShiftModel.from_pretrained(tmp / "teacher")


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
    trajectories = default_params().trajectories.model_copy(update={"batch_size": 6, "shard_size": 6})
    cache_trajectories(teacher, train, tmp / "traj", tmp / "traj-work", 0, trajectories)
    return tmp, teacher


def _params(recipe: str, steps: int, **sections) -> DistillParams:
    p = default_params().distill
    train = p.train.model_copy(update={"steps": steps, "batch_size": 2, "grad_accum": 2, "lr": 1e-3, "ema_rate": 0.5,
                                       "ckpt_every": 2, "log_every": 1, "num_workers": 0, "shuffle_buffer": 4})
    updates = {name: getattr(p, name).model_copy(update=values) for name, values in sections.items()}
    return p.model_copy(update={"recipes": [recipe], "train": train, "sample_every": 2, **updates})


@pytest.mark.parametrize("recipe", ["sinsr", "tadsr", "colearn"])
def test_each_recipe_trains_three_steps_and_saves_a_one_step_model(data, tmp_path, recipe):
    root, teacher = data
    train_distill(recipe, _params(recipe, 3), teacher, 0, trajectory_shards(root / "traj"),
                  tmp_path / "student", tmp_path / "work", tmp_path / "curves.csv",
                  grid_samples=list(iter_samples(shard_paths(root / "shards", "val")))[:2],
                  samples_dir=tmp_path / "grids")
    student = ResShiftModel.from_pretrained(tmp_path / "student")
    assert student.config.inference_steps == 1 and student.config.recipe == recipe
    changed = [not torch.equal(a, b) for a, b in zip(student.denoiser.state_dict().values(),
                                                     teacher.denoiser.state_dict().values())]
    assert any(changed)
    lines = (tmp_path / "curves.csv").read_text().splitlines()
    recipe_losses = ",".join(make_recipe(recipe, _params(recipe, 3), teacher).loss_names)
    # distill.image's terms
    assert lines[0] == f"step,loss,{recipe_losses},img_l1,img_grad,img_grid,lr" and len(lines) == 4
    # distill.image.refine_decoder: the student ships its own decoder, trained away from its zero start
    assert student.config.autoencoder == "pixel_unshuffle_refine" and student.autoencoder.refine[-1].weight.abs().sum() > 0
    assert student.autoencoder.phase  # it sees where the cell borders are
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["step-00000002.png", "step-00000003.png"]


def test_recipes_declare_their_losses_groups_and_discriminators(data):
    _, teacher = data
    sinsr, tadsr, colearn = (make_recipe(name, _params(name, 1), teacher) for name in ("sinsr", "tadsr", "colearn"))
    assert sinsr.loss_names == ("distill", "inverse", "gt") and not sinsr.discs and sinsr.disc_lr is None
    assert list(tadsr.discs) == ["latent"] and tadsr.disc_lr == _params("tadsr", 1).tadsr.disc_lr
    assert list(colearn.discs) == ["hq", "lq"] and list(colearn.generator_modules()) == ["student", "downsampler"]
    groups = colearn.generator_groups(1e-3)
    assert [g["lr"] for g in groups] == [1e-3, _params("colearn", 1).colearn.downsampler_lr]
    with pytest.raises(ValueError, match="SinSR has no discriminator"):
        sinsr.discriminator_loss(teacher, None, None)


def test_a_recipes_checkpoint_fingerprint_ignores_the_other_recipes(data):
    base = _params("tadsr", 1)
    other = base.model_copy(update={"sinsr": base.sinsr.model_copy(update={"lambda_gt": 7.0})})
    own = base.model_copy(update={"tadsr": base.tadsr.model_copy(update={"lambda_hsd": 7.0})})
    assert recipe_keys(other, "tadsr") == recipe_keys(base, "tadsr")
    assert recipe_keys(own, "tadsr") != recipe_keys(base, "tadsr")


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
    a = ResShiftModel.from_pretrained(tmp_path / "a").denoiser.state_dict()
    b = ResShiftModel.from_pretrained(tmp_path / "b").denoiser.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    rows = (tmp_path / "resumed" / "curves.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]


def test_online_targets_equal_the_cached_ones(data):
    root, teacher = data
    cached = next(iter(make_loader(trajectory_shards(root / "traj"), 3, 0, 4, 0,
                                   transform=lambda s: with_noise(s, 0, 48, 4))))
    d_cached = complete_batch(cached, teacher, online=False, device=torch.device("cpu"))
    d_online = complete_batch(cached, teacher, online=True, device=torch.device("cpu"))
    torch.testing.assert_close(d_online.target, d_cached.target, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(d_online.y, d_cached.y, rtol=1e-5, atol=1e-5)


def test_colearn_lq_adversarial_term_reaches_the_student_through_the_downsampler(data):
    root, teacher = data
    batch = next(iter(make_loader(trajectory_shards(root / "traj"), 2, 0, 4, 0,
                                  transform=lambda s: with_noise(s, 0, 48, 4))))
    d = complete_batch(batch, teacher, online=False, device=torch.device("cpu"))
    recipe = make_recipe("colearn", _params("colearn", 1), teacher)
    recipe.discs.requires_grad_(False)
    out = recipe.generator_pass(teacher, d, Draws(torch.Generator().manual_seed(0)))
    out.losses["lq_adv"].backward()
    student_grad = sum(q.grad.abs().sum() for q in recipe.student.parameters() if q.grad is not None)
    down_grad = sum(q.grad.abs().sum() for q in recipe.downsampler.parameters() if q.grad is not None)
    assert student_grad > 0 and down_grad > 0
    assert all(q.grad is None for q in recipe.discs.parameters())
    assert all(q.grad is None for q in teacher.denoiser.parameters())
    assert isinstance(out.fakes, ColearnFakes) and not out.fakes.fake.requires_grad


def test_refine_decoder_needs_a_pixel_unshuffle_teacher(data, tmp_path):
    _, teacher = data
    kl = teacher.config.model_copy(update={"autoencoder": "kl"})
    fake = type("T", (), {"config": kl})()
    with pytest.raises(ValueError, match="refine_decoder needs a pixel_unshuffle teacher, this one's autoencoder is kl"):
        make_recipe("sinsr", _params("sinsr", 1), fake)
