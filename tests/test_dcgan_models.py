"""The DCGAN chapter's networks and the shim's update steps, in every framework.

Shapes are written channels-first; the adapters translate for TensorFlow.
"""
import numpy as np
import pytest
from framework_adapters import adapter, chapter_networks

from tools.chapter_code import NETWORK_NAMES, chapter_namespace

LATENT_DIM = 100
G_PARAMETERS = 3_576_704
D_PARAMETERS = 2_765_696


@pytest.fixture
def chapter(framework):
    """Fresh networks from the chapter's own cells (each test gets new weights)."""
    return chapter_namespace(framework, "dcgan", NETWORK_NAMES)


@pytest.fixture
def fw(framework):
    return adapter(framework)


def built(fw, net, input_shape, seed):
    """Initialize, build with one forward pass, and draw N(0, 0.02) weights."""
    fw.prepare(net, seed)
    fw.run(net, np.zeros(input_shape))
    fw.prepare(net, seed)
    return net


def test_generator_block_doubles_height_and_width(chapter, fw):
    block = chapter["G_block"](20, **fw.block_options)
    fw.prepare(block, 0)
    assert fw.run(block, np.zeros((2, 3, 16, 16))).shape == (2, 20, 32, 32)


def test_first_generator_block_turns_1x1_into_4x4(chapter, fw):
    block = chapter["G_block"](20, strides=1, padding=fw.first_block_padding,
                                **fw.block_options)
    fw.prepare(block, 0)
    assert fw.run(block, np.zeros((2, 3, 1, 1))).shape == (2, 20, 4, 4)


def test_discriminator_block_halves_height_and_width(chapter, fw):
    block = chapter["D_block"](20, **fw.block_options)
    fw.prepare(block, 0)
    assert fw.run(block, np.zeros((2, 3, 16, 16))).shape == (2, 20, 8, 8)


def test_generator_maps_latents_to_rgb_64x64_in_tanh_range(chapter, fw, d2l):
    net_G = built(fw, chapter["net_G"], (2, LATENT_DIM, 1, 1), seed=0)
    Z = np.random.default_rng(0).normal(size=(2, LATENT_DIM, 1, 1))
    images = fw.run(net_G, Z)
    assert images.shape == (2, 3, 64, 64)
    assert np.all(np.abs(images) < 1) and images.std() > 0
    assert d2l.count_parameters(net_G) == G_PARAMETERS


def test_discriminator_maps_an_image_to_one_logit(chapter, fw, d2l):
    net_D = built(fw, chapter["net_D"], (1, 3, 64, 64), seed=1)
    assert fw.run(net_D, np.zeros((1, 3, 64, 64))).shape == (1, 1, 1, 1)
    assert d2l.count_parameters(net_D) == D_PARAMETERS
    assert chapter["n_G"] == chapter["n_D"] == 64


def trainable_snapshot(fw, net):
    weights = fw.weights(net)
    return {name: weights[name] for name in fw.trainable_names(net)}


def changed(before, after):
    return sorted(name for name in before if not np.array_equal(before[name], after[name]))


@pytest.fixture
def game(framework, fw):
    """G and D as the chapter trains them (its ``init_weights``: MXNet's nets are
    hybridized, PyTorch's channels-last) plus one fixed batch:
    X (4, 3, 64, 64), Z (4, 100, 1, 1)."""
    _, net_D, net_G = chapter_networks(framework, seed=3)
    X, Z = game_batch()
    return net_G, net_D, fw.tensor(X), fw.tensor(Z)


def game_batch():
    """The game's batch as NumPy arrays: X (4, 3, 64, 64) in [-1, 1), Z (4, 100, 1, 1)."""
    rng = np.random.default_rng(2)
    return rng.uniform(-1, 1, size=(4, 3, 64, 64)), rng.normal(size=(4, LATENT_DIM, 1, 1))


def summed_bce_with_logits(logits, label):
    """Binary cross-entropy of ``logits`` against one label, summed over the batch."""
    logits = np.asarray(logits, dtype=np.float64)
    return float(np.sum(np.logaddexp(0, -logits) if label == 1 else np.logaddexp(0, logits)))


def expected_losses(fw, net_G, net_D):
    """(loss_D, loss_G) of a first step on the game's batch, from the logits."""
    X, Z = game_batch()
    real_logits, fake_logits = fw.run(net_D, X), fw.run(net_D, fw.run(net_G, Z))
    loss_D = (summed_bce_with_logits(real_logits, 1) + summed_bce_with_logits(fake_logits, 0)) / 2
    return loss_D, summed_bce_with_logits(fake_logits, 1)


def test_update_D_steps_only_the_discriminator(game, fw, d2l):
    net_G, net_D, X, Z = game
    expected, _ = expected_losses(fw, net_G, net_D)
    G_everything = fw.weights(net_G)
    D_before = trainable_snapshot(fw, net_D)
    loss_D = d2l.update_D(X, Z, net_D, net_G, fw.loss(), fw.trainer(net_D, 1e-3))
    assert type(loss_D) is float
    # The loss of the step's starting point, summed over the batch (not a mean).
    assert loss_D == pytest.approx(expected, rel=1e-4)
    # G's weights and its BN statistics are bitwise untouched by D's step.
    assert changed(G_everything, fw.weights(net_G)) == []
    assert len(changed(D_before, trainable_snapshot(fw, net_D))) == len(D_before)


def test_update_D_lowers_the_discriminator_loss_on_its_batch(game, fw, d2l):
    net_G, net_D, X, Z = game
    trainer_D, loss = fw.trainer(net_D, 1e-4), fw.loss()
    first = d2l.update_D(X, Z, net_D, net_G, loss, trainer_D)
    second = d2l.update_D(X, Z, net_D, net_G, loss, trainer_D)
    assert second < first


def test_update_G_steps_only_the_generator(game, fw, d2l):
    net_G, net_D, X, Z = game
    _, expected = expected_losses(fw, net_G, net_D)
    G_before, D_everything = trainable_snapshot(fw, net_G), fw.weights(net_D)
    trainer_G, loss = fw.trainer(net_G, 1e-4), fw.loss()
    first = d2l.update_G(Z, net_D, net_G, loss, trainer_G)
    assert type(first) is float
    assert first == pytest.approx(expected, rel=1e-4)  # summed, not a mean
    assert changed(D_everything, fw.weights(net_D)) == []
    assert len(changed(G_before, trainable_snapshot(fw, net_G))) == len(G_before)
    assert d2l.update_G(Z, net_D, net_G, loss, trainer_G) < first


def test_each_step_moves_its_own_batch_norm_statistics(game, fw, d2l):
    net_G, net_D, X, Z = game
    statistics = lambda net: {k: v for k, v in fw.weights(net).items()  # noqa: E731
                              if k not in fw.trainable_names(net)}
    D_stats, G_stats = statistics(net_D), statistics(net_G)
    assert D_stats and G_stats
    d2l.update_D(X, Z, net_D, net_G, fw.loss(), fw.trainer(net_D, 1e-4))
    assert changed(D_stats, statistics(net_D))
    d2l.update_G(Z, net_D, net_G, fw.loss(), fw.trainer(net_G, 1e-4))
    assert changed(G_stats, statistics(net_G))


def test_update_D_then_G_makes_the_same_updates_as_the_two_calls(framework, fw, d2l):
    """The chapter's combined step reuses G's forward pass; the losses, the
    weights and the BN statistics after three steps equal those of update_D
    followed by update_G."""
    rng = np.random.default_rng(6)
    batches = [(rng.uniform(-1, 1, size=(4, 3, 64, 64)), rng.normal(size=(4, LATENT_DIM, 1, 1)))
               for _ in range(3)]
    runs = []
    for combined in (False, True):
        _, net_D, net_G = chapter_networks(framework, seed=0)
        loss, trainer_D, trainer_G = fw.loss(), fw.trainer(net_D, 1e-3), fw.trainer(net_G, 1e-3)
        losses = []
        for X, Z in batches:
            X, Z = fw.tensor(X), fw.tensor(Z)
            if combined:
                losses.append(d2l.update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G))
            else:
                loss_D = d2l.update_D(X, Z, net_D, net_G, loss, trainer_D)
                losses.append((loss_D, d2l.update_G(Z, net_D, net_G, loss, trainer_G)))
        weights = [list(fw.weights(net).values()) for net in (net_D, net_G)]
        runs.append((losses, weights))
    (losses, weights), (losses_combined, weights_combined) = runs
    assert all(type(value) is float for pair in losses_combined for value in pair)
    np.testing.assert_allclose(losses_combined, losses, rtol=1e-6)
    for before, after in zip(weights, weights_combined):
        assert len(before) == len(after)
        for a, b in zip(before, after):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_set_seed_repeats_every_random_draw(framework, d2l):
    from framework_adapters import framework_draws
    d2l.set_seed(11)
    first = framework_draws(framework)
    d2l.set_seed(11)
    assert framework_draws(framework) == first
    d2l.set_seed(12)
    assert framework_draws(framework) != first


def test_sample_images_are_uint8_rgb_and_leave_G_untouched(chapter, fw, d2l):
    net_G = built(fw, chapter["net_G"], (2, LATENT_DIM, 1, 1), seed=5)
    before = fw.weights(net_G)
    samples = d2l.sample_images(net_G, 5, LATENT_DIM)
    assert samples.shape == (5, 64, 64, 3) and samples.dtype == np.uint8
    assert samples.std() > 0
    assert changed(before, fw.weights(net_G)) == []


def test_a_seeded_training_run_repeats_its_losses(framework, d2l, capsys):
    """Two runs of the chapter's ``train`` after the same ``set_seed`` print the
    same losses (CPU; the examples/sec at the end of the line may differ)."""
    from framework_adapters import chapter_data_iter
    chapter = chapter_namespace(framework, "dcgan", NETWORK_NAMES)
    net_D, net_G = chapter["net_D"], chapter["net_G"]
    fw = adapter(framework)
    built(fw, net_D, (1, 3, 64, 64), seed=0)
    built(fw, net_G, (1, LATENT_DIM, 1, 1), seed=0)
    images = np.random.default_rng(0).integers(0, 256, size=(48, 64, 64, 3), dtype=np.uint8)
    printed = []
    for _ in range(2):
        d2l.set_seed(0)
        chapter["init_weights"](net_D, net_G)
        chapter["train"](net_D, net_G, chapter_data_iter(framework, images, 16), images[:8],
                         2, 0.005, LATENT_DIM)
        line = capsys.readouterr().out.strip().splitlines()[-1]
        printed.append(line.split(" examples/sec")[0].rsplit(",", 1)[0])
    assert printed[0].startswith("loss_D ")
    assert printed[0] == printed[1]


def test_book_profile_reads_enough_images_through_the_hub(framework, d2l):
    """The book profile's data, as its cells pick it, fills the held-out grid
    (20 images) and many batches per epoch."""
    from tools.trace_learning import book_images, book_profile
    profile = book_profile(framework)
    images, held_out = book_images(d2l, profile)
    assert len(held_out) >= 20
    assert len(images) * profile["repeats"] >= 30 * profile["batch_size"]
