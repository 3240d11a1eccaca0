"""Run profiles: one switch between the CPU-sized run and the section's real one.

``D2L_PROFILE=quick`` (the default) trains on the embedded emoji set for a
couple of epochs, which is what ``make test`` and ``make notebooks`` run.
``D2L_PROFILE=full`` uses the Pokemon archive and the section's
hyperparameters, for a machine with a GPU and network access.
"""
import os

PROFILE_ENV = "D2L_PROFILE"
PROFILES = ("quick", "full")


def profile_name():
    """The active profile, read from ``$D2L_PROFILE`` (default ``'quick'``)."""
    name = os.environ.get(PROFILE_ENV, "quick").strip().lower() or "quick"
    if name not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={name!r} is not a profile: set it to one of "
            f"{', '.join(PROFILES)} (quick is the default)")
    return name
