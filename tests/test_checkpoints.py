"""Checkpoints of the DCGAN chapter's training: atomic files, clear errors for
files that cannot be resumed from, bitwise round trips, and a resumed run of the
chapter's own ``train`` that ends like an uninterrupted one (bitwise in MXNet
and PyTorch, to rounding in TensorFlow)."""
import os
import pickle
import shutil

import numpy as np
import pytest
from framework_adapters import adapter, chapter_data_iter, chapter_networks

from d2l_shim import checkpoints
from d2l_shim.checkpoints import CheckpointError

LATENT_DIM, LR = 100, 0.005


# --- framework-free: the file, the metadata, the seeds -----------------------

class _FailsWhenPickled:
    """An object array element whose pickling raises ``error``: np.savez stops
    after it has already written the arrays before it."""
    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        raise self.error


def test_write_then_read_gives_the_arrays_back(tmp_path):
    path = tmp_path / "run.npz"
    arrays = {"net/w": np.arange(6, dtype=np.float32).reshape(2, 3),
              "meta/name": np.array("pytorch"), "meta/n": np.array(3, dtype=np.int64)}
    checkpoints.write_arrays_atomically(path, arrays)
    read = checkpoints.read_arrays(path)
    assert sorted(read) == sorted(arrays)
    for name, value in arrays.items():
        assert read[name].dtype == value.dtype and np.array_equal(read[name], value)
    assert os.listdir(tmp_path) == ["run.npz"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, error):
    path = tmp_path / "run.npz"
    checkpoints.write_arrays_atomically(path, {"w": np.ones(3)})
    before = path.read_bytes()
    half_written = {"a": np.zeros(1000),
                    "b": np.array([_FailsWhenPickled(error)], dtype=object)}
    with pytest.raises(type(error)):
        checkpoints.write_arrays_atomically(path, half_written)
    assert os.listdir(tmp_path) == ["run.npz"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["truncated", "empty", "text", "npy", "pickle"])
def test_an_unreadable_file_names_the_path_and_the_fix(tmp_path, damage):
    path = tmp_path / "run.npz"
    checkpoints.write_arrays_atomically(path, {"w": np.ones(1000)})
    if damage == "truncated":  # a copy cut short, e.g. by a full disk
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_text("not a checkpoint\n")
    elif damage == "npy":
        with open(path, "wb") as f:
            np.save(f, np.ones(3))
    else:
        path.write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(CheckpointError, match="is not a readable checkpoint") as info:
        checkpoints.read_arrays(path)
    message = str(info.value)
    assert str(path) in message and "Delete it" in message and "another checkpoint" in message


def test_epoch_seed_is_stable_distinct_and_in_range():
    # The same on every platform and NumPy version (SeedSequence is specified).
    assert checkpoints.epoch_seed(0, 1) == 1817441348
    assert checkpoints.epoch_seed(123, 7) == 1738871637
    seeds = {checkpoints.epoch_seed(seed, epoch)
             for seed in range(10) for epoch in range(1, 101)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**31 for s in seeds)
    assert checkpoints.epoch_seed(0, 1) != checkpoints.epoch_seed(1, 0)


def test_metadata_round_trip():
    history = [(0.5, 1.25), (0.25, 2.0)]
    arrays = checkpoints.metadata("mxnet", history, 3)
    assert arrays["meta/history"].dtype == np.float64 and arrays["meta/history"].shape == (2, 2)
    assert checkpoints.check_metadata(arrays, "x.npz", "mxnet", 3) == history
    empty = checkpoints.metadata("mxnet", [], 3)
    assert checkpoints.check_metadata(empty, "x.npz", "mxnet", 3) == []


def test_metadata_errors_name_the_problem_and_the_fix():
    arrays = checkpoints.metadata("mxnet", [(0.5, 1.0)], 3)
    with pytest.raises(CheckpointError, match=r"written by the mxnet tab, not by pytorch"
                       r".*'dcgan-pytorch.npz'"):
        checkpoints.check_metadata(arrays, "x.npz", "pytorch", 3)
    with pytest.raises(CheckpointError, match=r"seed 3, but this run has seed 4.*seed=3"):
        checkpoints.check_metadata(arrays, "x.npz", "mxnet", 4)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        checkpoints.check_metadata({"w": np.ones(2)}, "x.npz", "mxnet", 3)
    newer = dict(arrays, **{"meta/format": np.array(99)})
    with pytest.raises(CheckpointError, match="format 99"):
        checkpoints.check_metadata(newer, "x.npz", "mxnet", 3)


def test_shape_check_lists_the_mismatches():
    expected = {"a": (2, 3), "b": (4,), "c": ()}
    checkpoints.check_shapes(expected, {"a": np.ones((2, 3)), "b": np.ones(4),
                                        "c": np.array(1.0)}, "x.npz", "net_G")
    found = {"a": np.ones((3, 2)), "c": np.array(1.0), "d": np.ones(1)}
    with pytest.raises(CheckpointError) as info:
        checkpoints.check_shapes(expected, found, "x.npz", "net_G")
    message = str(info.value)
    assert "different model" in message and "net_G" in message
    assert "missing (1): b" in message and "unexpected (1): d" in message
    assert "a (3, 2) instead of (2, 3)" in message


# --- per framework: networks and optimizers -----------------------------------

def weights(framework, net):
    """Every weight and BatchNorm statistic, in the network's order (MXNet's and
    Keras' names carry counters that differ between two instances)."""
    return list(adapter(framework).weights(net).values())


def same(first, second):
    return len(first) == len(second) and all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, second))


class Game:
    """Networks, trainers and a loss, stepped on fixed batches."""
    def __init__(self, framework, d2l, seed):
        self.framework, self.d2l, fw = framework, d2l, adapter(framework)
        _, self.net_D, self.net_G = chapter_networks(framework, seed)
        self.trainer_D, self.trainer_G = fw.trainer(self.net_D, LR), fw.trainer(self.net_G, LR)
        self.loss = fw.loss()
        rng = np.random.default_rng(5)
        self.batches = [(fw.tensor(rng.uniform(-1, 1, size=(4, 3, 64, 64))),
                         fw.tensor(rng.normal(size=(4, LATENT_DIM, 1, 1))))
                        for _ in range(3)]

    def step(self, i):
        X, Z = self.batches[i]
        self.d2l.update_D(X, Z, self.net_D, self.net_G, self.loss, self.trainer_D)
        self.d2l.update_G(Z, self.net_D, self.net_G, self.loss, self.trainer_G)

    def parts(self):
        return self.net_D, self.net_G, self.trainer_D, self.trainer_G

    def weights(self):
        return weights(self.framework, self.net_D) + weights(self.framework, self.net_G)


@pytest.fixture
def trained(framework, d2l, tmp_path):
    """A game after two steps, saved to tmp_path/run.npz with seed 7."""
    game = Game(framework, d2l, seed=1)
    game.step(0)
    game.step(1)
    path = tmp_path / "run.npz"
    d2l.save_checkpoint(path, *game.parts(), [(0.5, 1.5), (0.25, 2.5)], 7)
    return game, path


def test_round_trip_restores_weights_statistics_and_optimizers_bitwise(
        framework, d2l, trained, tmp_path):
    game, path = trained
    restored = Game(framework, d2l, seed=2)
    assert not same(restored.weights(), game.weights())
    history = d2l.load_checkpoint(path, *restored.parts(), [], 7)
    assert history == [(0.5, 1.5), (0.25, 2.5)]
    assert same(restored.weights(), game.weights())  # BN statistics included
    # Saving the restored state gives the same arrays, optimizer state included.
    again = tmp_path / "again.npz"
    d2l.save_checkpoint(again, *restored.parts(), history, 7)
    first, second = checkpoints.read_arrays(path), checkpoints.read_arrays(again)
    assert sorted(first) == sorted(second)
    differ = [name for name in first if not np.array_equal(first[name], second[name])]
    if framework == "mxnet":
        # A Gluon Trainer numbers its parameters in an order that depends on the
        # instance (see _trainer_order), and its pickled state with them; the
        # next step below checks that state instead.
        differ = [name for name in differ if not name.startswith("trainer_")]
    assert differ == []
    # The next step matches too: Adam's moments and step counts came back.
    game.step(2)
    restored.step(2)
    assert same(restored.weights(), game.weights())


@pytest.mark.parametrize("framework", ["mxnet"], indirect=True)
def test_mxnet_trainer_keeps_its_update_counts(framework, d2l, trained):
    """Gluon's Adam corrects its bias with per-parameter update counts, which
    live in the optimizer object that ``save_states`` pickles."""
    game, path = trained
    restored = Game(framework, d2l, seed=2)
    d2l.load_checkpoint(path, *restored.parts(), [], 7)
    for original, loaded in ((game.trainer_D, restored.trainer_D),
                             (game.trainer_G, restored.trainer_G)):
        counts = original._optimizer._index_update_count
        assert counts and set(counts.values()) == {2}
        assert loaded._optimizer._index_update_count == counts
        assert loaded.learning_rate == original.learning_rate


def test_a_missing_checkpoint_means_a_fresh_run(framework, d2l, tmp_path):
    game = Game(framework, d2l, seed=1)
    before = game.weights()
    assert d2l.load_checkpoint(tmp_path / "none.npz", *game.parts(), [], 0) == []
    assert same(game.weights(), before)
    assert os.listdir(tmp_path) == []


def test_checkpoint_of_another_framework_is_refused(framework, d2l, trained):
    game, path = trained
    other = next(name for name in ("mxnet", "pytorch", "tensorflow") if name != framework)
    arrays = checkpoints.read_arrays(path)
    arrays["meta/framework"] = np.array(other)
    checkpoints.write_arrays_atomically(path, arrays)
    with pytest.raises(CheckpointError, match=rf"written by the {other} tab, not by "
                       rf"{framework}.*'dcgan-{framework}.npz'"):
        d2l.load_checkpoint(path, *game.parts(), [], 7)


def test_checkpoint_of_another_model_is_refused_and_changes_nothing(framework, d2l, trained):
    game, path = trained
    victim = Game(framework, d2l, seed=3)
    before = victim.weights()
    # D's weights offered to G and the other way round: every shape is wrong.
    swapped = (victim.net_G, victim.net_D, victim.trainer_G, victim.trainer_D)
    with pytest.raises(CheckpointError, match=r"different model: its net_D does not "
                       r"match.*pass another path") as info:
        d2l.load_checkpoint(path, *swapped, [], 7)
    assert str(path) in str(info.value)
    assert same(victim.weights(), before)


def test_checkpoint_with_another_seed_is_refused(framework, d2l, trained):
    game, path = trained
    with pytest.raises(CheckpointError, match=r"seed 7, but this run has seed 8.*seed=7"):
        d2l.load_checkpoint(path, *game.parts(), [], 8)


def test_corrupt_checkpoint_is_refused_and_changes_nothing(framework, d2l, trained):
    game, path = trained
    path.write_bytes(path.read_bytes()[:100_000])
    before = game.weights()
    with pytest.raises(CheckpointError, match="not a readable checkpoint.*Delete it"):
        d2l.load_checkpoint(path, *game.parts(), [], 7)
    assert same(game.weights(), before)


# --- per framework: the chapter's train, interrupted and resumed --------------

def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(
        framework, d2l, tmp_path, monkeypatch, capsys):
    """A run of three epochs keeps a checkpoint; the copy of it written after
    epoch 2 stands for a run killed during epoch 3. Resumed from that copy with
    new networks (initialized from another seed) and a new data pipeline, as
    after a restart, the run ends with the same losses in every epoch and the
    same weights: bitwise in MXNet and PyTorch, to float32 rounding in
    TensorFlow (see below)."""
    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path / "data"))
    # Two batches of 64 per epoch: a shuffle to repeat, at a few seconds an epoch.
    images = d2l.read_image_folder(d2l.download_extract("noto_emoji_64"), size=64)[:128]

    def run(num_epochs, init_seed, checkpoint):
        chapter, net_D, net_G = chapter_networks(framework, init_seed)
        d2l.set_seed(0)  # as the chapter does before building its pipeline
        data_iter = chapter_data_iter(framework, images, batch_size=64)
        chapter["train"](net_D, net_G, data_iter, images[:16], num_epochs, LR,
                         LATENT_DIM, seed=0, checkpoint=checkpoint)
        last_line = capsys.readouterr().out.strip().splitlines()[-1]
        return last_line, weights(framework, net_D) + weights(framework, net_G)

    straight, interrupted = tmp_path / "straight.npz", tmp_path / "interrupted.npz"
    save_checkpoint = d2l.save_checkpoint

    def save_and_copy_after_epoch_2(path, net_D, net_G, trainer_D, trainer_G, history, seed):
        save_checkpoint(path, net_D, net_G, trainer_D, trainer_G, history, seed)
        if len(history) == 3:  # the untrained row and epochs 1 and 2
            shutil.copyfile(path, interrupted)

    monkeypatch.setattr(d2l, "save_checkpoint", save_and_copy_after_epoch_2)
    line, straight_weights = run(3, init_seed=0, checkpoint=straight)
    monkeypatch.setattr(d2l, "save_checkpoint", save_checkpoint)
    assert checkpoints.read_arrays(interrupted)["meta/history"].shape == (3, 3)
    resumed_line, resumed_weights = run(3, init_seed=1, checkpoint=interrupted)

    losses = lambda text: text.split(" examples/sec")[0].rsplit(",", 1)[0]  # noqa: E731
    assert line.startswith("loss_D ")
    assert losses(resumed_line) == losses(line)
    histories = [checkpoints.read_arrays(p)["meta/history"] for p in (straight, interrupted)]
    assert histories[0].shape == (4, 3)  # (loss_D, loss_G, SWD), untrained row first
    if framework == "tensorflow":
        # oneDNN's kernels round differently the first time a compiled graph runs
        # (measured: bitwise equal with TF_ENABLE_ONEDNN_OPTS=0), and the resumed
        # run's first step is the uninterrupted run's fifth: equal to rounding.
        np.testing.assert_allclose(histories[1][:, :2], histories[0][:, :2], rtol=1e-6)
        # The SWD sees uint8 samples, where a rounding difference can flip a pixel.
        np.testing.assert_allclose(histories[1][:, 2], histories[0][:, 2], rtol=1e-2)
        for a, b in zip(resumed_weights, straight_weights):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    else:
        assert np.array_equal(histories[0], histories[1], equal_nan=True)
        assert same(resumed_weights, straight_weights)
    assert sorted(os.listdir(tmp_path)) == ["data", "interrupted.npz", "straight.npz"]

    # A finished run is not trained again.
    line, _ = run(3, init_seed=1, checkpoint=interrupted)
    assert line.endswith("already holds 3 epochs: nothing to train")
    assert checkpoints.read_arrays(interrupted)["meta/history"].shape == (4, 3)
