"""Training really improves the samples: the chapter's own ``train`` lowers the
sliced Wasserstein distance to held-out images by at least 30%.

Slow (minutes per framework on two CPU cores), so it carries the ``learning``
marker: ``make test-learning`` runs it; the quick unit-test pass leaves it out.
"""
import pytest

from framework_adapters import chapter_data_iter, chapter_networks

LATENT_DIM, LR, BATCH_SIZE = 100, 0.005, 64
# The SWD of a GAN's samples does not fall smoothly at the section's learning
# rate, 0.005. Traced per epoch (seed 0, the chapter's code, batch-norm scales
# starting at 1, 1,239 training emoji), relative to the untrained generator:
#   PyTorch     +4 -2 -41 -25 -48 -53 -64 -61 -52 -61 %
#   MXNet      +27 +20 +4 -23 -7 -28 -19 -32 -48 -26 %
#   TensorFlow +13 +8 +19 +18 -11 -12 -15 -8 -16 -0 %
# and PyTorch with seed 1 (scales from N(1, 0.02)) stayed within +2..-28% for ten epochs. Lower
# learning rates (0.002, 0.001) swung as well. After 16 epochs this test
# measured PyTorch -65%, MXNet -41%, TensorFlow -38% (seed 0, 4.5-5.5 min per
# framework on two cores), but a margin of 8 points over swings of 20 is a
# budget, not a guarantee: this is why the check is not in `make test` yet.
NUM_EPOCHS = 16
REQUIRED_DROP = 0.30


@pytest.mark.learning
def test_training_lowers_swd_to_held_out_images(framework, d2l, tmp_path, monkeypatch):
    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path))
    images, held_out = d2l.hold_out(
        d2l.read_image_folder(d2l.download_extract("noto_emoji_64"), size=64), every=10)
    chapter, net_D, net_G = chapter_networks(framework, seed=0)

    def swd():
        samples = d2l.sample_images(net_G, len(held_out), LATENT_DIM)
        return d2l.sliced_wasserstein_distance(samples, held_out)["mean"]

    before = swd()
    chapter["train"](net_D, net_G, chapter_data_iter(framework, images, BATCH_SIZE),
                     NUM_EPOCHS, LR, LATENT_DIM)
    after = swd()
    print(f"{framework}: SWD x 1e3 {before:.1f} -> {after:.1f} ({after / before - 1:+.0%})")
    assert after <= (1 - REQUIRED_DROP) * before
