"""Trace the DCGAN chapter's SWD to held-out emoji after every epoch, per seed.

    envs/pytorch/bin/python -m tools.trace_learning pytorch --seeds 0 1 2 \\
        --epochs 12 --batch-size 32 --lr 0.002 --out build/traces/pytorch.jsonl \\
        --grids build/traces/grids

Runs the chapter's own networks, ``init_weights`` and ``train`` (from the split
notebook, see ``tools.chapter_code``) on the emoji its book profile trains on, and
appends one JSON line per seed: the settings, the SWD of the untrained
generator and after each epoch, the losses and the wall time. This is how the
book profile's length was chosen: its median SWD over the last five epochs must
stay 30% below the untrained one for every traced seed.
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from PIL import Image

import d2l_shim
from d2l_shim import plotting
from d2l_shim.swd import JUDGED_EPOCHS

LATENT_DIM = 100
PROFILE_NAMES = ("data_name", "subfolder", "hold_out_every", "repeats",
                 "batch_size", "num_epochs", "lr")


def book_profile(framework):
    """The settings the chapter's profile cell picks for ``D2L_PROFILE=book``."""
    from d2l_shim.profiles import PROFILE_ENV
    from tools.chapter_code import run_cell
    with mock.patch.dict(os.environ, {PROFILE_ENV: "book"}), \
            contextlib.redirect_stdout(io.StringIO()):  # the cell prints its choice
        namespace = run_cell(framework, "dcgan", PROFILE_NAMES)
    return {name: namespace[name] for name in PROFILE_NAMES}


def book_images(d2l, profile):
    """The profile's training and held-out images as the chapter's data cell
    reads them through the hub (before its repeats)."""
    folder = os.path.join(d2l.download_extract(profile["data_name"]), profile["subfolder"])
    return d2l.hold_out(d2l.read_image_folder(folder, size=64),
                        every=profile["hold_out_every"])


def trace(framework, seed, num_epochs=None, batch_size=None, lr=None, grids=None):
    """One run of the chapter's ``train`` on its book profile's images, with
    the profile's epochs, batch size and learning rate unless given; returns
    its record (a dict). With ``grids`` (a folder), the figure's 3 x 7 samples
    after every epoch are saved there as PNG files."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from framework_adapters import chapter_data_iter, chapter_networks
    d2l = d2l_shim.load(framework)
    profile = book_profile(framework)
    images, held_out = book_images(d2l, profile)
    images = images.repeat(profile["repeats"], axis=0)
    num_epochs = num_epochs or profile["num_epochs"]
    batch_size = batch_size or profile["batch_size"]
    lr = lr or profile["lr"]
    chapter, net_D, net_G = chapter_networks(framework, seed=seed)
    data_iter = chapter_data_iter(framework, images, batch_size)
    started = time.perf_counter()
    if grids is None:
        run = chapter["train"](net_D, net_G, data_iter, held_out, num_epochs, lr, LATENT_DIM,
                               seed=seed)
    else:  # one epoch per call, resumed from the chapter's checkpoint (exact, tested)
        grids.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = os.path.join(folder, f"dcgan-{framework}.npz")
            for epoch in range(1, num_epochs + 1):
                run = chapter["train"](net_D, net_G, data_iter, held_out, epoch, lr,
                                       LATENT_DIM, seed=seed, checkpoint=checkpoint)
                name = f"{framework}-seed{seed}-batch{batch_size}-lr{lr}-epoch{epoch:02d}.png"
                Image.fromarray(run.sample_grid()).save(grids / name)
                plotting.plt.close("all")  # each call draws its own figure
    swd = [row[2] for row in run.history]
    return {"framework": framework, "seed": seed, "batch_size": batch_size, "lr": lr,
            "images": len(images), "held_out": len(held_out), "swd": swd,
            "losses": [row[:2] for row in run.history[1:]],
            "seconds": time.perf_counter() - started,
            "examples_per_sec": run.examples_per_sec}


def describe(record):
    """One line: the change of every epoch's SWD and the judged median."""
    untrained, swd = record["swd"][0], record["swd"][1:]
    changes = " ".join(f"{value / untrained - 1:+.0%}" for value in swd)
    judged = statistics.median(swd[-JUDGED_EPOCHS:]) / untrained - 1
    return (f"{record['framework']} seed {record['seed']} batch {record['batch_size']} "
            f"lr {record['lr']}: {changes}; median of the last {JUDGED_EPOCHS} {judged:+.0%} "
            f"({record['seconds']:.0f} s)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=d2l_shim.FRAMEWORKS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the book profile's")
    parser.add_argument("--batch-size", type=int, help="default: the book profile's")
    parser.add_argument("--lr", type=float, help="default: the book profile's")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    parser.add_argument("--grids", type=Path,
                        help="save the figure's samples after every epoch here (PNG)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        record = trace(args.framework, seed, args.epochs, args.batch_size, args.lr,
                       args.grids)
        with args.out.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
        print(describe(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
