"""Compare two frameworks' parity results (the files ``run.py`` writes).

Pure NumPy. In float32 the tolerances are the issue's: forward outputs within
1e-4 absolute (values of order 1), losses within 1e-4 relative, each gradient
tensor within 1e-3 relative (norm of the difference over the larger norm).

Why float64 as well: a (leaky) ReLU is not differentiable at 0, and at batch 4
the networks push about 1.5 million numbers through one. For about every
second draw of weights and inputs (seeds 1, 3 and 4 of 0-5), one of them lies
within float32 rounding of 0 (1e-7 of its layer's RMS or closer), two
frameworks round it to opposite sides, and that single element's slope (1 or
0.2, or 1 or 0) moves the gradient of every tensor upstream of it by 2e-3 to
5e-3 of its norm: the same model at a tie, not a different model. In float64
the frameworks differ by only ~1e-9 relative (MXNet and Keras keep the leaky
ReLU's slope as a float32 attribute, 0.2f = 0.20000000298, PyTorch as a
double; MXNet's D carries ~1e-9 more), so a tie needs an input within ~1e-9
of its layer's RMS: about one draw in a hundred (seed 1 is one, at 5e-10)
instead of one in two, and the float64 comparison can be a thousand times
sharper than the float32 one.
"""
from dataclasses import dataclass

import numpy as np

OUTPUT_NAMES = ("G_of_Z", "D_of_X", "D_of_G_of_Z")
LOSS_NAMES = ("loss_D", "loss_G")
GRADIENT_PREFIX = "grad."


@dataclass(frozen=True)
class Tolerances:
    output_abs: float   # max |a - b| of G(Z), D(X), D(G(Z))
    loss_rel: float     # |a - b| / max(|a|, |b|) of loss_D, loss_G
    gradient_rel: float  # ||a - b|| / max(||a||, ||b||) per gradient tensor


#: By the precision the networks ran in.
TOLERANCES = {"float32": Tolerances(output_abs=1e-4, loss_rel=1e-4, gradient_rel=1e-3),
              "float64": Tolerances(output_abs=1e-7, loss_rel=1e-7, gradient_rel=1e-6)}


@dataclass(frozen=True)
class Check:
    """One compared quantity: ``kind`` is 'output', 'loss' or 'gradient'."""
    kind: str
    name: str
    error: float
    tolerance: float

    @property
    def passed(self):
        return self.error <= self.tolerance

    def __str__(self):
        verdict = "ok" if self.passed else "FAILS"
        return (f"{self.kind} {self.name}: {self.error:.2e} "
                f"(tolerance {self.tolerance:.0e}) {verdict}")


def max_abs_error(a, b):
    """max |a - b|; infinite if the shapes differ (never broadcast)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def relative_norm_error(a, b):
    """||a - b|| / max(||a||, ||b||), symmetric in a and b; 0 if both are 0,
    infinite if the shapes differ. For scalars this is the relative error."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def gradient_names(results):
    """The tensor keys that carry a gradient, e.g. 'G.0.conv.weight'."""
    return sorted(key[len(GRADIENT_PREFIX):] for key in results
                  if key.startswith(GRADIENT_PREFIX))


def compare_results(a, b, tolerances=TOLERANCES["float32"]):
    """Every check between two results dicts, outputs first, then losses, then
    one per gradient tensor. A quantity missing on either side fails with an
    infinite error, so a framework that drops a tensor cannot pass."""
    checks = []

    def check(kind, name, key, error_function, tolerance):
        error = (error_function(a[key], b[key]) if key in a and key in b
                 else float("inf"))
        checks.append(Check(kind, name, error, tolerance))

    for name in OUTPUT_NAMES:
        check("output", name, name, max_abs_error, tolerances.output_abs)
    for name in LOSS_NAMES:
        check("loss", name, name, relative_norm_error, tolerances.loss_rel)
    for name in sorted(set(gradient_names(a)) | set(gradient_names(b))):
        check("gradient", name, GRADIENT_PREFIX + name, relative_norm_error,
              tolerances.gradient_rel)
    return checks


def failures(checks):
    """The checks over their tolerance."""
    return [check for check in checks if not check.passed]


def worst(checks, kind):
    """The check of ``kind`` with the largest error (None if there is none)."""
    of_kind = [check for check in checks if check.kind == kind]
    return max(of_kind, key=lambda check: check.error, default=None)


def summary(label, checks):
    """One line: the worst output, loss and gradient error and where."""
    parts = []
    for kind in ("output", "loss", "gradient"):
        check = worst(checks, kind)
        if check is not None:
            parts.append(f"{kind} {check.error:.1e} ({check.name})")
    return f"{label}: " + ", ".join(parts)
