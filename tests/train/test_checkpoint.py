import torch

from sr.train.checkpoint import fingerprint, load_latest, rng_state, save_checkpoint, set_rng_state
from sr.train.curves import Curves
from sr.train.ema import ema_copy, ema_update


def test_round_trip_of_model_optimizer_and_rng(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(5)
    torch.randn(2, generator=gen)
    save_checkpoint(tmp_path, 7, {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(gen),
                                  "meta": {"tuple": (1, 2.5), "none": None}})
    expected_next = torch.randn(3, generator=gen)
    state = load_latest(tmp_path)
    assert state["step"] == 7 and state["meta"] == {"tuple": (1, 2.5), "none": None}
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    model2.load_state_dict(state["model"])
    opt2.load_state_dict(state["optimizer"])
    assert torch.equal(model2.weight, model.weight)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    gen2 = torch.Generator()
    set_rng_state(state["rng"], gen2)
    assert torch.equal(torch.randn(3, generator=gen2), expected_next)


def test_keeps_newest_and_ignores_partial(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"x": torch.tensor([step])}, keep=2)
    (tmp_path / "step-00000009").mkdir()  # a half-written folder without state.json is not a checkpoint
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000002", "step-00000003", "step-00000009"]
    assert load_latest(tmp_path)["x"].tolist() == [3]
    assert load_latest(tmp_path / "none") is None


def test_fingerprint_depends_on_file_content(tmp_path):
    f = tmp_path / "a.tar"
    f.write_bytes(b"1")
    first = fingerprint("params", 0, f)
    f.write_bytes(b"2")
    assert fingerprint("params", 0, f) != first and len(first) == 16


def test_ema_update_and_curves_resume_from_the_checkpoints_rows(tmp_path):
    model = torch.nn.Linear(1, 1, bias=False)
    ema = ema_copy(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.weight.fill_(0.0)
    ema_update(ema, model, rate=0.9)
    assert ema.weight.item() == torch.tensor(0.1).item()
    curves = Curves(tmp_path / "c.csv")
    for step in (10, 20):
        curves.log(step, loss=step / 10)
    saved = curves.state()  # what the checkpoint at step 20 holds
    curves.log(30, loss=3)
    curves.flush()
    (tmp_path / "c.csv").unlink()  # dvc removes a stage's outputs before it reruns it
    resumed = Curves(tmp_path / "c.csv", saved)
    resumed.log(30, loss=9)
    resumed.flush()
    assert (tmp_path / "c.csv").read_text() == "step,loss\n10,1\n20,2\n30,9\n"


def test_a_checkpoint_from_other_code_is_a_one_line_error(tmp_path):
    import pytest

    from sr.train.loop import Run
    from tests.pipeline_fixtures import default_params

    generator = torch.Generator().manual_seed(0)
    save_checkpoint(tmp_path / "ckpt", 4, {"step": 4, "net": torch.nn.Linear(2, 2).state_dict(),
                                           "rng": rng_state(generator)})
    run = Run("test", default_params().teacher.train, tmp_path / "ckpt", tmp_path / "curves.csv")
    renamed = torch.nn.ModuleDict({"student": torch.nn.Linear(2, 2)})  # the same weights under new names
    with pytest.raises(ValueError) as err:
        run.restore({"net": renamed}, generator)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'ckpt'}: the checkpoint at step 4 does not fit this code (net: ")
    assert message.endswith("; remove that folder to train from the start") and "\n" not in message
    with pytest.raises(ValueError) as err:  # the weights fit; its curve rows are missing (written by older code)
        run.restore({"net": torch.nn.Linear(2, 2)}, generator)
    assert str(err.value) == (f"{tmp_path / 'ckpt'}: the checkpoint at step 4 does not fit this code (curves: "
                              "missing); remove that folder to train from the start")


def test_a_run_resumed_at_its_last_step_writes_its_curves_again(tmp_path):
    """`dvc repro --force` of a finished stage resumes its last checkpoint: no step is left to log a row, and dvc has
    removed the curves file before the rerun, yet the stage must write it."""
    from sr.train.loop import Run
    from tests.pipeline_fixtures import default_params

    t = default_params().teacher.train.model_copy(update={"steps": 2, "ckpt_every": 2, "log_every": 1})
    net = torch.nn.Linear(2, 2)
    first = Run("test", t, tmp_path / "ckpt", tmp_path / "curves.csv")
    first.restore({"net": net}, torch.Generator().manual_seed(0))
    for step in first.steps():
        first.end_step(step, {"loss": step + 0.5})
    assert (tmp_path / "curves.csv").read_text() == "step,loss\n1,0.5\n2,1.5\n"
    (tmp_path / "curves.csv").unlink()
    again = Run("test", t, tmp_path / "ckpt", tmp_path / "curves.csv")
    assert again.restore({"net": net}, torch.Generator().manual_seed(0)) == 2
    assert list(again.steps()) == []
    assert (tmp_path / "curves.csv").read_text() == "step,loss\n1,0.5\n2,1.5\n"
