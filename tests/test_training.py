"""d2l_shim.training: the divergence check, and the epoch plumbing of ``TrainingRun``
with a stand-in framework.

The stand-in's generator makes images whose brightness is its one weight, so
the SWD to held-out images follows that weight; its checkpoint is a dict.
"""
import math
import types

import numpy as np
import pytest

from d2l_shim import swd, training

HELD_OUT = np.random.default_rng(0).integers(0, 256, size=(8, 64, 64, 3), dtype=np.uint8)


def stand_in(saved):
    calls = []

    def sample_images(net_G, num_images, latent_dim):
        rng = np.random.default_rng(net_G["seed"])
        noise = rng.integers(0, 256, size=(num_images, 64, 64, 3))
        return np.clip(noise * net_G["weight"], 0, 255).astype(np.uint8)

    def set_seed(seed, epoch=None):
        calls.append(("set_seed", seed, epoch))

    def save_checkpoint(path, net_D, net_G, trainer_D, trainer_G, history, seed):
        saved[path] = (dict(net_G), list(history), seed)

    def load_checkpoint(path, net_D, net_G, trainer_D, trainer_G, data_iter, seed):
        if path not in saved:
            return []
        weights, history, _ = saved[path]
        net_G.update(weights)
        return list(history)

    module = types.SimpleNamespace(sample_images=sample_images, set_seed=set_seed,
                                   save_checkpoint=save_checkpoint,
                                   load_checkpoint=load_checkpoint, try_gpu=lambda: "cpu")
    return type("StandInRun", (training.TrainingRun,), {"_framework": module}), calls


def train(run_class, net_G, num_epochs, checkpoint=None, losses=(1.0, 2.0)):
    run = run_class({}, net_G, None, None, [], HELD_OUT, 4, num_epochs, seed=3,
                    checkpoint=checkpoint)
    epochs = []
    for epoch in run.epochs():
        epochs.append(epoch)
        net_G["weight"] = 1.0 - 0.1 * epoch  # "training" moves the generator
        run.add(losses[0] * 32, losses[1] * 32, 32)
    return run, epochs


def test_epochs_reseed_score_and_summarize(capsys):
    run_class, calls = stand_in({})
    run, epochs = train(run_class, {"weight": 0.0, "seed": 1}, 6)
    assert epochs == [1, 2, 3, 4, 5, 6]
    assert [c for c in calls if c[2] is not None and c[2] < 1000] == [
        ("set_seed", 3, e) for e in epochs]
    assert len(run.history) == 7 and math.isnan(run.history[0][0])
    assert [row[:2] for row in run.history[1:]] == [(1.0, 2.0)] * 6
    values = [row[2] for row in run.history]
    assert len(set(values)) == 7 and all(value > 0 for value in values)
    assert capsys.readouterr().out.startswith("loss_D 1.000, loss_G 2.000, ")
    parsed = swd.parse_summary("before\n" + run.swd_summary() + "\nafter")
    assert parsed["held_out"] == len(HELD_OUT) and parsed["epochs"] == swd.JUDGED_EPOCHS
    assert parsed["untrained"] == pytest.approx(values[0], abs=0.05)
    assert parsed["trained"] == pytest.approx(float(np.median(values[-5:])), abs=0.05)
    change = round(100 * (np.median(values[-5:]) / values[0] - 1)) / 100
    assert parsed["change"] == pytest.approx(change)


def test_a_checkpointed_run_continues_after_its_last_epoch(capsys):
    saved = {}
    run_class, _ = stand_in(saved)
    first, epochs = train(run_class, {"weight": 0.0, "seed": 1}, 2, checkpoint="c")
    assert epochs == [1, 2] and len(saved["c"][1]) == 3
    resumed, epochs = train(run_class, {"weight": 0.5, "seed": 1}, 4, checkpoint="c")
    assert epochs == [3, 4]
    assert resumed.history[:3] == first.history
    capsys.readouterr()
    _, epochs = train(run_class, {"weight": 0.5, "seed": 1}, 4, checkpoint="c")
    assert epochs == []
    assert capsys.readouterr().out.strip() == "c already holds 4 epochs: nothing to train"


def test_a_diverged_epoch_stops_the_run():
    run_class, _ = stand_in({})
    with pytest.raises(training.DivergedError, match="generator loss became nan in epoch 1"):
        train(run_class, {"weight": 0.0, "seed": 1}, 3, losses=(1.0, math.nan))


def test_summary_needs_a_trained_epoch_and_parse_needs_a_summary():
    run_class, _ = stand_in({})
    run = run_class({}, {"weight": 0.0, "seed": 1}, None, None, [], HELD_OUT, 4, 3)
    run.history = [(math.nan, math.nan, 10.0)]
    with pytest.raises(ValueError, match="no epoch trained yet"):
        run.swd_summary()
    assert swd.parse_summary("loss_D 1.0") is None


def test_finite_losses_pass():
    training.check_finite_losses(3, 0.7, 1.2)


@pytest.mark.parametrize("loss_D, loss_G, network", [
    (math.nan, 1.0, "discriminator"), (0.5, math.inf, "generator"),
    (-math.inf, 0.3, "discriminator")])
def test_non_finite_loss_names_epoch_and_network(loss_D, loss_G, network):
    with pytest.raises(training.DivergedError, match=rf"the {network} loss became .* in epoch 7"):
        training.check_finite_losses(7, loss_D, loss_G)
