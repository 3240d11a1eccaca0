"""Framework-free checks for training loops."""
import math


class DivergedError(FloatingPointError):
    """A loss became NaN or infinite; the message names the epoch and network."""


def check_finite_losses(epoch, loss_D, loss_G):
    """Raise DivergedError if either average loss of ``epoch`` is not finite.

    A GAN that diverges keeps printing ``nan`` for as long as it is allowed to
    run; stopping at the first bad epoch saves those hours and says where.
    """
    for network, value in (("discriminator", loss_D), ("generator", loss_G)):
        if not math.isfinite(value):
            raise DivergedError(
                f"the {network} loss became {value} in epoch {epoch}: training "
                "diverged. Lower the learning rate, or check the data scaling "
                "(images in [-1, 1]) and the loss (BCE on logits).")
