"""Training checkpoints as one ``.npz`` file: the framework-free half.

Each framework module turns its networks and optimizers into a flat dict of
NumPy arrays with stable names (``net_D/...``, ``net_G/...``, ``trainer_D/...``,
``trainer_G/...``) and back; this module writes and reads such a dict, adds the
metadata (``meta/...``) and checks a checkpoint against the networks it is about
to be loaded into, with errors that say what is wrong and what to do.

Writing is atomic (``d2l_shim.files``): a run killed at any moment leaves the
previous checkpoint or the new one, never a half-written file.
"""
import os
import zipfile

import numpy as np

from .files import write_atomically

#: The layout version written into every checkpoint (``meta/format``).
FORMAT_VERSION = 1

# How many mismatching names an error message lists before "...".
_LISTED = 5


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded here; the message says why and what to do."""


def write_arrays_atomically(path, arrays):
    """Write ``arrays`` (name -> NumPy array) to ``path`` as one ``.npz`` file,
    replacing an old checkpoint only once the new one is complete."""
    write_atomically(path, lambda file: np.savez(file, **arrays))


def read_arrays(path):
    """The arrays of the ``.npz`` file at ``path``, as a dict name -> array.

    A file that is not a readable ``.npz`` (cut short, corrupted, something
    else) raises CheckpointError naming the path and the fix. Pickled objects
    are refused: a checkpoint holds plain arrays only.
    """
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with data:
            return {name: data[name] for name in data.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); "
            "it may have been cut short or corrupted. Delete it to start training "
            "afresh, or pass the path of another checkpoint.") from err


def epoch_seed(seed, epoch):
    """One seed in [0, 2**31) mixed from ``seed`` and ``epoch`` (non-negative ints).

    Different epochs (and different seeds) get unrelated seeds; the same pair
    always gives the same one, in every process and on every platform.
    """
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)
    return int(state[0]) & 0x7FFFFFFF


def metadata(framework, history, seed):
    """The ``meta/...`` arrays of a checkpoint: format version, framework name,
    history as a float64 array with one row per epoch, seed."""
    rows = np.asarray(history, dtype=np.float64)
    rows = rows.reshape(len(history), -1) if len(history) else rows.reshape(0, 0)
    return {"meta/format": np.array(FORMAT_VERSION, dtype=np.int64),
            "meta/framework": np.array(framework),
            "meta/history": rows,
            "meta/seed": np.array(int(seed), dtype=np.int64)}


def check_metadata(arrays, path, framework, seed):
    """Check a checkpoint's metadata; return its history as a list of
    tuples, one per epoch.

    Raises CheckpointError if the file was not written by ``save_checkpoint``,
    was written by another framework's tab, or for another seed.
    """
    if "meta/format" not in arrays or "meta/framework" not in arrays:
        raise CheckpointError(
            f"{path} is an .npz file but not a training checkpoint of d2l_shim "
            "(no meta/format entry). Pass the path of a checkpoint written by "
            "save_checkpoint, or another path to start afresh.")
    version = int(arrays["meta/format"])
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, this d2l_shim reads format "
            f"{FORMAT_VERSION}. Pass another path to start afresh.")
    written_by = str(arrays["meta/framework"])
    if written_by != framework:
        raise CheckpointError(
            f"{path} was written by the {written_by} tab, not by {framework}: "
            "weights and optimizer state are stored in each framework's own "
            "layout and cannot move between frameworks. Pass a checkpoint path "
            f"of its own to each framework (e.g. 'dcgan-{framework}.npz').")
    saved_seed = int(arrays["meta/seed"])
    if saved_seed != int(seed):
        raise CheckpointError(
            f"{path} belongs to a run with seed {saved_seed}, but this run has "
            f"seed {seed}: resuming would mix two runs. Pass seed={saved_seed} "
            "to continue that run, or another checkpoint path to start a new one.")
    return [tuple(float(value) for value in row) for row in arrays["meta/history"]]


def with_prefix(prefix, arrays):
    """``arrays`` with every name put under ``prefix/``."""
    return {f"{prefix}/{name}": value for name, value in arrays.items()}


def under_prefix(prefix, arrays):
    """The entries of ``arrays`` under ``prefix/``, with the prefix removed."""
    start = f"{prefix}/"
    return {name[len(start):]: value for name, value in arrays.items()
            if name.startswith(start)}


def read_checked(path, framework, seed, expected):
    """Read the checkpoint at ``path`` and check it before anything is loaded.

    ``expected`` maps each part ('net_D', 'trainer_G', ...) to its names and
    shapes as ``check_shapes`` takes them, or to a function of the part's
    stored arrays that returns them. Returns (history, parts): the history as
    ``check_metadata`` gives it and, per part, its arrays without the prefix.
    """
    arrays = read_arrays(path)
    history = check_metadata(arrays, path, framework, seed)
    parts = {}
    for name, shapes in expected.items():
        parts[name] = under_prefix(name, arrays)
        shapes = shapes(parts[name]) if callable(shapes) else shapes
        check_shapes(shapes, parts[name], path, name)
    return history, parts


def check_shapes(expected, found, path, what):
    """Check that ``found`` (name -> array) has exactly the names and shapes of
    ``expected`` (name -> shape tuple, or None for any shape); ``what`` names
    the part, e.g. 'net_G'.

    Raises CheckpointError listing the first missing, unexpected and reshaped
    entries: the checkpoint belongs to a different model.
    """
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    reshaped = [f"{name} {tuple(found[name].shape)} instead of {tuple(shape)}"
                for name, shape in expected.items() if name in found
                and shape is not None and tuple(found[name].shape) != tuple(shape)]
    if not (missing or extra or reshaped):
        return
    problems = []
    for label, names in (("missing", missing), ("unexpected", extra),
                         ("different shape", reshaped)):
        if names:
            listed = ", ".join(names[:_LISTED]) + (", ..." if len(names) > _LISTED else "")
            problems.append(f"{label} ({len(names)}): {listed}")
    raise CheckpointError(
        f"{path} holds a checkpoint of a different model: its {what} does not "
        f"match the network given here ({'; '.join(problems)}). Load it into the "
        "model it was written for, or pass another path to start afresh.")
