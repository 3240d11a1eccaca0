"""The divergence check of the training loops."""
import math

import pytest

from d2l_shim.training import DivergedError, check_finite_losses


def test_finite_losses_pass():
    check_finite_losses(3, 0.7, 1.2)


@pytest.mark.parametrize("loss_D, loss_G, network", [
    (math.nan, 1.0, "discriminator"), (0.5, math.inf, "generator"),
    (-math.inf, 0.3, "discriminator")])
def test_non_finite_loss_names_epoch_and_network(loss_D, loss_G, network):
    with pytest.raises(DivergedError, match=rf"the {network} loss became .* in epoch 7"):
        check_finite_losses(7, loss_D, loss_G)
