"""``--time_budget``: durations, the plan after the first epoch (fake clock), the plan carried
by --resume, and real tiny runs that stop inside a budget and report planned vs actual."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from cnnhub.commands.train import train_main
from cnnhub.durations import describe_budget_outcome, parse_duration
from cnnhub.errors import CnnhubError
from cnnhub.time_budget import TimeBudget


@pytest.mark.parametrize(
    "text,seconds", [("90s", 90), ("10m", 600), ("1.5h", 5400), ("600", 600), (" 2M ", 120)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "0", "-5m", "m", "1e3s", "10 minutes", "nan"])
def test_bad_durations(text):
    with pytest.raises(CnnhubError, match=r"`time_budget` must be a positive duration"):
        parse_duration(text)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    stop_training = False


def run_epoch(budget: TimeBudget, clock: FakeClock, epoch: int, step_ends, end: float) -> None:
    """One epoch: its batches end at ``step_ends`` (the first begins at the epoch's start),
    the epoch (scoring included) at ``end``."""
    budget.on_epoch_begin(epoch)
    budget.on_train_batch_begin(0)
    for batch, t in enumerate(step_ends):
        clock.now = t
        budget.on_train_batch_end(batch)
        if batch + 1 < len(step_ends):
            budget.on_train_batch_begin(batch + 1)
    clock.now = end
    budget.on_epoch_end(epoch)


def next_epoch(budget: TimeBudget, clock: FakeClock, seconds: float, steps: int = 4) -> int:
    """The epoch after the plan's last measured one: ``steps`` equal steps and 1 s of scoring,
    ``seconds`` in all, stopping after the step where the budget stops the run (as Keras's
    fit does); returns the steps trained."""
    epoch = budget.plan["measured_after_epoch"]
    budget.on_epoch_begin(epoch)
    trained = 0
    while trained < steps and not budget.model.stop_training:
        budget.on_train_batch_begin(trained)
        clock.now += (seconds - 1.0) / steps
        budget.on_train_batch_end(trained)
        trained += 1
    clock.now += 1.0
    budget.on_epoch_end(epoch)
    return trained


def test_the_plan_follows_the_epochs_cost_with_a_fake_clock(capsys):
    clock = FakeClock()
    budget = TimeBudget(100, max_epochs=50, test_fraction=0.5, clock=clock)
    budget.set_model(FakeModel())
    budget.on_train_begin()
    clock.now = 2.0  # model build etc. before the first epoch: counted
    # 4 steps: the first 3 s (tracing), then 1 s each; scoring 2 s.
    run_epoch(budget, clock, 0, [5.0, 6.0, 7.0, 8.0], 10.0)
    # Epoch cost: (8 - 2 - 3) x 4/3 + 2 = 6 s; finishing: 2 x (1 + 0.5) = 3 s, at least
    # 10 s; left after epoch 1: 100 - 10 - 10 = 80 s = 13 epochs (78 s): 14 planned. The 2 s
    # over would train for 0 s after a scoring of 2 s: no shorter 15th epoch.
    plan = budget.plan
    assert plan["planned_epochs"] == 14 and budget.planned_epochs() == 14
    assert plan["last_epoch_steps"] == plan["steps_per_epoch"] == 4
    assert budget.planned_length() == 14.0
    assert plan["epoch_seconds"] == 6.0 and plan["finishing_seconds"] == 10.0
    assert plan["planned_seconds"] == 10 + 13 * 6 + 10 <= 100
    assert "after epoch 1: an epoch costs 6.0 s" in capsys.readouterr().out
    # Epoch 2 has no one-offs: 4 steps of 0.5 s (the first counted), scoring 1 s: 3 s an epoch;
    # finishing stays the first estimate (10 s); left: 100 - 13 - 10 = 77 s = 25 epochs (75 s)
    # and 2 s: 1 s of scoring and 1 s of training, 2 steps: a 28th epoch of 2 of its 4 steps.
    run_epoch(budget, clock, 1, [10.5, 11.0, 11.5, 12.0], 13.0)
    plan = budget.plan
    assert plan["planned_epochs"] == 28 and plan["measured_after_epoch"] == 2
    assert plan["last_epoch_steps"] == 2 and budget.planned_length() == 27.5
    assert plan["epoch_seconds"] == 3.0 and plan["planned_seconds"] == 13 + 25 * 3 + 2 + 10
    assert (
        "after epoch 2: an epoch costs 3.0 s (scoring 1.0 s), finishing ~10.0 s: 28 epoch(s) "
        "planned (the last one 2 of 4 steps), ending at ~1 min 40 s."
    ) in capsys.readouterr().out

    for _ in range(2):  # epochs 3-4 as epoch 2: the same plan, not printed again
        assert next_epoch(budget, clock, 3.0) == 4
    assert budget.planned_epochs() == 28 and capsys.readouterr().out == ""
    # A slow epoch 5 (9 s: 8 s training): the longest of the last three; at 28 s, 62 s are
    # left: 6 more epochs (54 s), and 8 s - 1 s of scoring = 7 s of training, 3 of 4 steps.
    assert next_epoch(budget, clock, 9.0) == 4
    assert budget.plan["epoch_seconds"] == 9.0 and budget.planned_epochs() == 12
    assert budget.planned_length() == 11.75
    assert "after epoch 5: an epoch costs 9.0 s" in capsys.readouterr().out
    # Fast again: once the slow epoch is out of the last three, at 37 s: (100 - 37 - 10) / 3 =
    # 17 more epochs and a 26th of 2 steps.
    for _ in range(3):
        next_epoch(budget, clock, 3.0)
    assert budget.plan["epoch_seconds"] == 3.0 and budget.planned_epochs() == 8 + 17 + 1
    while not budget.model.stop_training:
        trained = next_epoch(budget, clock, 3.0)
    # The last epoch stopped after its 2 steps (1 s) and its scoring (1 s); the run ends at the
    # plan's end, the budget: 25 epochs at 3 s after t=37, the short one, the finishing steps.
    assert trained == 2 and budget.plan["measured_after_epoch"] == 25
    assert clock.now == 37 + 17 * 3 + 2 and clock.now + budget.plan["finishing_seconds"] == 100


def paced_epoch(budget: TimeBudget, clock: FakeClock, steps: list[float], scoring: float) -> int:
    """The epoch after the plan's last measured one, its steps taking ``steps`` seconds each,
    stopping after the step where the budget stops the run (as Keras's fit does), then
    scored; returns the steps trained."""
    epoch = budget.plan["measured_after_epoch"]
    budget.on_epoch_begin(epoch)
    trained = 0
    for trained, seconds in enumerate(steps, 1):
        budget.on_train_batch_begin(trained - 1)
        clock.now += seconds
        budget.on_train_batch_end(trained - 1)
        if budget.model.stop_training:
            break
    clock.now += scoring
    budget.on_epoch_end(epoch)
    return trained


def test_a_machine_that_slows_within_an_epoch_stops_the_run_early(capsys):
    clock = FakeClock()
    budget = TimeBudget(100, max_epochs=50, clock=clock)
    budget.set_model(FakeModel())
    budget.on_train_begin()
    # 10 steps: the first 3 s (tracing), then 0.5 s; scoring 1 s. Epoch: 4.5 x 10/9 + 1 = 6 s,
    # finishing 10 s; at 8.5 s: 81.5 s left = 13 epochs (78 s) and 3.5 s: 1 s of scoring and
    # 2.5 s = 5 steps. 15 planned, ending at 8.5 + 13 x 6 + 2.5 + 1 + 10 = 100 s.
    run_epoch(budget, clock, 0, [3.0 + 0.5 * k for k in range(10)], 8.5)
    assert budget.planned_epochs() == 15 and budget.plan["last_epoch_steps"] == 5
    assert budget.plan["planned_seconds"] == 100.0
    # At the planned pace nothing stops early, though the plan ends at the budget itself.
    for _ in range(12):
        assert paced_epoch(budget, clock, [0.5] * 10, 1.0) == 10
    assert clock.now == 80.5 and budget.planned_epochs() == 15 and not budget.model.stop_training
    capsys.readouterr()
    # Epoch 14's steps take 0.75 s (1.5x the plan). After 4 steps, at 83.5 s, one more step
    # (0.75 s), scoring (1 s) and finishing (10 s) end at 95.25 s: go on. From the 5th step the
    # pace scales them: at 84.25 s, 0.75 + 1.5 x 11 = 17.25 s more is past 100 s: stop there.
    # (Unscaled, the whole epoch would train, and scoring and finishing 1.5x slower would end
    # the run at 88 + 1.5 + 15 = 104.5 s.)
    assert paced_epoch(budget, clock, [0.75] * 10, 1.5) == 5
    assert budget.model.stop_training
    plan = budget.plan
    assert (plan["planned_epochs"], plan["last_epoch_steps"], plan["stopped_early"]) == (
        14,
        5,
        True,
    )
    assert budget.planned_length() == 13.5
    assert capsys.readouterr().out == (
        "\nTime budget 1 min 40 s: the machine slowed down; epoch 14 ends after 5 of 10 steps "
        "and is the last, to end the run inside the budget.\n"
    )
    clock.now += 15.0
    report = budget.report()
    assert report["stopped_early"] is True and report["actual_seconds"] == 100.75
    assert "(OVER the budget; stopped early: the machine slowed down)" in describe_budget_outcome(
        report
    )


def test_one_slow_step_does_not_scale_the_estimates():
    """The pace is the median step: a single 5 s step (a pause) in a 0.5 s epoch does not make
    the rest look 10x longer; the time it took still counts."""
    clock = FakeClock()
    budget = TimeBudget(100, max_epochs=50, clock=clock)
    budget.set_model(FakeModel())
    run_epoch(budget, clock, 0, [3.0 + 0.5 * k for k in range(10)], 8.5)
    for _ in range(10):
        paced_epoch(budget, clock, [0.5] * 10, 1.0)
    # At 68.5 s, with ~21 s to spare: scaled by 10x, finishing alone (100 s) would stop the run.
    assert paced_epoch(budget, clock, [0.5] * 5 + [5.0] + [0.5] * 4, 1.0) == 10
    assert not budget.model.stop_training and "stopped_early" not in budget.plan


@pytest.mark.parametrize(
    "budget_seconds,max_epochs,planned,last_steps",
    [
        (1000, 7, 7, 3),  # EPOCHS is the maximum: whole epochs
        (5, 50, 1, 3),  # over the budget already: the epoch done
        (15, 50, 1, 3),  # 1 s left: less than a scoring (1 s) to train for
        (17, 50, 2, 2),  # 3 s left: 1 s of scoring, 2 s = 2 steps of 1 s
        (22, 50, 3, 3),  # 8 s left: 2 whole epochs, nothing to spare
        (23, 50, 3, 3),  # 1 s to spare: less than a scoring
        (25.5, 50, 4, 2),  # 3.5 s to spare: 1 s of scoring, 2.5 s: 2 whole steps
    ],
)
def test_plan_is_capped_by_epochs_and_keeps_the_epoch_done(
    budget_seconds, max_epochs, planned, last_steps
):
    clock = FakeClock()
    budget = TimeBudget(budget_seconds, max_epochs=max_epochs, clock=clock)
    budget.set_model(FakeModel())
    # Epoch: 3 steps, (3 - 1) x 3/2 = 3 s of training, 1 s of scoring; finishing 2 s, at
    # least 10 s.
    run_epoch(budget, clock, 0, [1.0, 2.0, 3.0], 4.0)
    assert budget.planned_epochs() == planned
    assert budget.plan["last_epoch_steps"] == last_steps
    assert budget.planned_length() == pytest.approx(planned - (3 - last_steps) / 3)
    assert budget.model.stop_training == (planned == 1)


def resumed_budget(last_epoch_steps: int) -> tuple[TimeBudget, FakeClock, dict]:
    """A budget resuming a committed plan of 3 epochs of 4 steps, the last ``last_epoch_steps``
    long: (the budget, its clock, the plan)."""
    saved = {"planned_epochs": 3, "budget_seconds": 60.0, "planned_seconds": 50.0}
    saved.update(steps_per_epoch=4, last_epoch_steps=last_epoch_steps)
    clock = FakeClock()
    budget = TimeBudget(60, max_epochs=10, clock=clock)
    budget.set_model(FakeModel())
    budget.carry = saved
    budget.on_train_begin()
    return budget, clock, saved


def test_resume_keeps_the_plan_and_does_not_replan():
    budget, clock, saved = resumed_budget(4)
    assert budget.planned_epochs() == 3 and budget.resumed
    run_epoch(budget, clock, 1, [100.0], 1000.0)  # a slow epoch 2: no new plan
    assert budget.get_state() == saved and not budget.model.stop_training
    run_epoch(budget, clock, 2, [1001.0], 1002.0)
    assert budget.model.stop_training
    assert budget.report()["resumed"] is True


def test_the_clock_can_start_before_the_run_and_the_finishing_is_reported():
    """``started``: the command's start, before the run's own (its data checks count)."""
    clock = FakeClock()
    clock.now = 30.0
    budget = TimeBudget(100, max_epochs=50, clock=clock, started=10.0)
    budget.set_model(FakeModel())
    run_epoch(budget, clock, 0, [31.0, 32.0, 33.0], 34.0)
    # 24 s elapsed; epoch (33 - 30 - 1) x 3/2 + 1 = 4 s, finishing 10 s: 66 s = 16 more and
    # 2 s: a scoring and 1 s of training, 1 of 3 steps.
    assert budget.plan["elapsed_seconds"] == 24.0 and budget.planned_epochs() == 18
    assert budget.plan["last_epoch_steps"] == 1
    clock.now = 41.5
    report = budget.report()
    assert report["actual_seconds"] == 31.5 and report["actual_finishing_seconds"] == 7.5


def test_a_resume_with_every_epoch_done_reports_the_committed_plan():
    """Killed during the finishing steps: the resumed process trains nothing, and still reports
    the plan its epochs ran under, not an empty one."""
    saved = {"planned_epochs": 3, "budget_seconds": 60.0, "planned_seconds": 50.0}
    clock = FakeClock()
    budget = TimeBudget(60, max_epochs=10, clock=clock)
    budget.carry = saved
    clock.now = 7.5
    report = budget.report()
    assert report == {**saved, "actual_seconds": 7.5, "resumed": True}
    assert describe_budget_outcome(report) == (
        "1 min 0 s: planned 50.0 s (3 epochs), actual 7.5 s (inside the budget; this resumed "
        "process only)"
    )


ARGS = ["-height", "16", "-width", "16", "-b", "16", "--custom_conv_blocks", "c8k3-mp2"]
ARGS += ["--num_nodes", "8", "-lr", "0.01", "-post", "false"]


def test_a_tiny_budget_ends_the_run_after_the_first_epoch(tiny_data, tmp_path, capsys):
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv = [*data, *ARGS, "-sl", str(tmp_path), "-e", "3", "--time_budget", "1s"]
    assert train_main([*argv, "--run_name", "b"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "model_repository" / "b"
    assert len(pd.read_csv(run / "training.log")) == 1
    report = json.loads((run / "run_info.json").read_text())["time_budget"]
    assert report["planned_epochs"] == 1 and report["budget_seconds"] == 1.0
    assert report["actual_seconds"] > 1.0 and report["resumed"] is False
    assert "the budget is too small" in out
    assert 0 < report["actual_finishing_seconds"] < report["actual_seconds"]
    assert "Time budget 1.0 s: planned" in out and "(OVER the budget)" in out
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["finished"] and state["callbacks"]["time_budget"]["planned_epochs"] == 1
    # Resuming the finished plan has nothing left to do.
    assert train_main(["--resume", str(run)]) == 2
    assert "already complete" in capsys.readouterr().err


def test_a_generous_budget_keeps_epochs_and_the_schedule(tiny_data, tmp_path, capsys):
    """EPOCHS stays the maximum; warm-up then one-cycle over the planned 2 epochs: the rate at
    each epoch's last step (training.log) is the formula's (3 steps per epoch). With test data,
    report.html is written once, at the end, and shows the budget's outcome."""
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv = [*data, *ARGS, "-sl", str(tmp_path), "-e", "3", "--time_budget", "1h"]
    argv += ["--lr_schedule", "onecycle", "--warmup_epochs", "1", "--run_name", "g"]
    argv += ["-post", "true", "-dtest", str(tiny_data["valid"])]
    assert train_main(argv) == 0
    out = capsys.readouterr().out
    run = tmp_path / "model_repository" / "g"
    log = pd.read_csv(run / "training.log")
    assert log["epoch"].tolist() == [1, 2, 3]
    # Epoch 1: warm-up ends at the full rate. One-cycle over steps 0..5 of epochs 2-3:
    # PyTorch OneCycleLR (pct 0.3 -> rise ends at step 0.8, anneal cos).
    t = np.array([2.0, 5.0])
    rise_end, last = 0.3 * 6 - 1, 5.0
    frac = (t - rise_end) / (last - rise_end)
    low = 0.01 / 25 / 1e4
    cycle = low + (0.01 - low) * (1 + np.cos(np.pi * frac)) / 2
    np.testing.assert_allclose(log["learning_rate"], [0.01, cycle[0], cycle[1]], rtol=1e-5)
    assert "3 epoch(s) planned" in out and "(EPOCHS = 3 is the maximum)" in out
    assert "(inside the budget)" in out
    assert out.count("Report: ") == 1
    assert out.index("Time budget 60 min 0 s: planned") < out.index("Report: ")
    page = (run / "report.html").read_text(encoding="utf-8")
    assert 'time budget</td><td class="text">60 min 0 s: planned' in page
    assert "3 epochs), actual" in page and "(inside the budget)" in page


def test_the_commands_data_checks_count_in_the_budget(tiny_data, tmp_path, monkeypatch):
    """The budget's clock starts with the command: a data check that takes 1.5 s (a wait added
    to it here) is inside the elapsed time the plan starts from, and in the actual time."""
    import cnnhub.runner as runner

    checked = runner.splits_from_config

    def slow_check(config):
        time.sleep(1.5)
        return checked(config)

    monkeypatch.setattr(runner, "splits_from_config", slow_check)
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv = [*data, *ARGS, "-sl", str(tmp_path), "-e", "1", "--time_budget", "1h"]
    assert train_main([*argv, "--run_name", "c"]) == 0
    info = json.loads((tmp_path / "model_repository" / "c" / "run_info.json").read_text())
    report = info["time_budget"]
    assert report["elapsed_seconds"] >= 1.5
    trained_until = report["actual_seconds"] - report["actual_finishing_seconds"]
    assert trained_until == pytest.approx(report["elapsed_seconds"], abs=0.5)


@pytest.mark.parametrize("value", ["10x", "0s"])
def test_bad_budget_stops_before_training(tmp_path, capsys, value):
    assert train_main(["-sl", str(tmp_path), "--time_budget", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`time_budget` must be a positive duration" in err[0]
    assert not (tmp_path / "model_repository").exists()


def test_a_resumed_run_stops_its_shorter_last_epoch_where_the_committed_plan_says():
    budget, clock, saved = resumed_budget(2)
    assert budget.planned_length() == 2.5
    run_epoch(budget, clock, 1, [1.0, 2.0, 3.0, 4.0], 5.0)  # a whole epoch 2
    assert not budget.model.stop_training
    budget.on_epoch_begin(2)
    budget.on_train_batch_end(0)
    assert not budget.model.stop_training
    budget.on_train_batch_end(1)
    assert budget.model.stop_training and budget.get_state() == saved
    # A plan committed before shorter last epochs existed: whole epochs.
    old = TimeBudget(60, max_epochs=10, clock=clock)
    old.carry = {"planned_epochs": 3, "budget_seconds": 60.0, "planned_seconds": 50.0}
    old.on_train_begin()
    assert old.planned_length() == 3.0


def test_a_shorter_last_epoch_trains_its_steps_at_the_schedules_rates(
    tiny_data, tmp_path, monkeypatch, capsys
):
    """A real run whose plan (forced here: the timing of a real run is not exact) ends with
    1 of its 3 steps: Keras stops the epoch after that step, the epoch is scored and logged like
    any other, one-cycle runs over 2 + 1/3 epochs, and the report says so."""
    import cnnhub.time_budget as time_budget

    made = time_budget.TimeBudget.make_plan

    def shortened(self, done):
        return dict(made(self, done), planned_epochs=3, last_epoch_steps=1)

    monkeypatch.setattr(time_budget.TimeBudget, "make_plan", shortened)
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv = [*data, *ARGS, "-sl", str(tmp_path), "-e", "5", "--time_budget", "1h"]
    argv += ["--lr_schedule", "onecycle", "--warmup_epochs", "1", "--run_name", "s"]
    assert train_main(argv) == 0
    out = capsys.readouterr().out
    run = tmp_path / "model_repository" / "s"
    log = pd.read_csv(run / "training.log")
    assert log["epoch"].tolist() == [1, 2, 3]
    assert len(list((run / "model_logs").glob("*.weights.h5"))) == 3
    with np.load(run / "checkpoint" / "optimizer.npz") as saved:
        assert int(saved["v00000"]) == 3 + 3 + 1  # the optimizer's step count
    # One-cycle over the 4 steps after the warm-up: epoch 2 ends at its step 2, epoch 3 at 3.
    t = np.array([2.0, 3.0])
    rise_end, last = 0.3 * 4 - 1, 3.0
    low = 0.01 / 25 / 1e4
    cycle = low + (0.01 - low) * (1 + np.cos(np.pi * (t - rise_end) / (last - rise_end))) / 2
    np.testing.assert_allclose(log["learning_rate"], [0.01, *cycle], rtol=1e-5)
    report = json.loads((run / "run_info.json").read_text())["time_budget"]
    assert report["last_epoch_steps"] == 1 and report["steps_per_epoch"] == 3
    assert "3 epoch(s) planned (the last one 1 of 3 steps)" in out
    assert "(3 epochs (the last one 1 of 3 steps)), actual" in out
