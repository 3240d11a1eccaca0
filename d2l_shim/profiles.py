"""Run profiles: one switch between the CPU-sized run and the section's real one.

``D2L_PROFILE=quick`` (the default) trains on the embedded emoji set for a
couple of epochs: a smoke run of every cell (``make notebooks``, nbval).
``D2L_PROFILE=book`` trains on all the embedded emoji until the samples are
clearly learned, on a CPU (``make book``). ``D2L_PROFILE=full`` uses the
Pokemon archive and the section's hyperparameters, for a machine with a GPU.
"""
import os

PROFILE_ENV = "D2L_PROFILE"
PROFILES = ("quick", "book", "full")


def profile_name():
    """The active profile, read from ``$D2L_PROFILE`` (default ``'quick'``)."""
    name = os.environ.get(PROFILE_ENV, "quick").strip().lower() or "quick"
    if name not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={name!r} is not a profile: set it to one of "
            f"{', '.join(PROFILES)} (quick is the default)")
    return name
