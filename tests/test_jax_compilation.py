"""JAX compiles the chapter's training step once per batch shape, and keeps it
for the next process.

* The optimizers' step counters are created without a device; left so, they
  come back from the first step pinned to one, and the second step compiles
  the whole program again. The chapter's ``train`` moves them to the device
  first; this test counts the compilations of the step in a real run.
* Importing the shim turns on JAX's persistent compilation cache, for small
  programs too (a rerun of a notebook, or the next test process, loads its
  programs from disk) unless ``JAX_COMPILATION_CACHE_DIR`` decides otherwise.
"""
import logging
import os
import subprocess
import sys

import pytest
from framework_adapters import chapter_data_iter, chapter_networks

# conftest's framework fixture, for JAX alone (deselected in the other environments)
pytestmark = pytest.mark.parametrize("framework", ["jax"], indirect=True)

LATENT_DIM, LR = 100, 0.005


def test_the_chapter_step_compiles_once_per_batch_shape(d2l, tmp_path, monkeypatch, caplog):
    """Three batches of 32 and a last one of 8: two compilations, not three."""
    import jax
    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path / "data"))
    images = d2l.read_image_folder(d2l.download_extract("noto_emoji_64"), size=64)[:104]
    chapter, net_D, net_G = chapter_networks("jax", seed=0)
    d2l.set_seed(0)
    data_iter = chapter_data_iter("jax", images, batch_size=32)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        chapter["train"](net_D, net_G, data_iter, images[:16], 1, LR, LATENT_DIM)
    compiled = [record.getMessage() for record in caplog.records
                if record.getMessage().startswith("Compiling jit(_update_D_then_G)")]
    batch_sizes = sorted(int(message.split("float32[", 1)[1].split(",", 1)[0])
                         for message in compiled)
    assert batch_sizes == [8, 32]


PROGRAM = """
import jax, jax.numpy as jnp
from d2l_shim import jax as d2l
events = []
jax.monitoring.register_event_listener(lambda event, **_: events.append(event))
jax.jit(lambda x: jnp.sin(x) * 3)(jnp.ones(5)).block_until_ready()
print(jax.config.jax_compilation_cache_dir, "/jax/compilation_cache/cache_hits" in events, sep="|")
"""


def run_program(home, **env):
    environment = {key: value for key, value in os.environ.items()
                   if key != "JAX_COMPILATION_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                          env={**environment, "HOME": str(home), **env}, check=True)
    assert "compilation cache" not in done.stderr  # JAX warns when it cannot use the folder
    folder, hit = done.stdout.strip().split("|")
    return folder, hit == "True"


def cached(folder):
    """The cache's entries for PROGRAM's own function (importing the shim compiles some too)."""
    return [name for name in os.listdir(folder) if name.startswith("jit__lambda") and name.endswith("-cache")]


def test_a_second_process_loads_the_program_from_the_shims_cache(d2l, tmp_path):
    folder = str(tmp_path / ".cache" / "d2l_shim" / "jax-compilation")
    assert run_program(tmp_path) == (folder, False)
    assert len(cached(folder)) == 1
    assert run_program(tmp_path) == (folder, True)
    assert len(cached(folder)) == 1


def test_the_users_cache_setting_wins(d2l, tmp_path):
    own = tmp_path / "own"  # with the user's own threshold: JAX's default skips small programs
    assert run_program(tmp_path, JAX_COMPILATION_CACHE_DIR=str(own),
                       JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0") == (str(own), False)
    assert len(cached(own)) == 1
    assert run_program(tmp_path, JAX_COMPILATION_CACHE_DIR="") == ("", False)  # no cache
    assert not (tmp_path / ".cache" / "d2l_shim" / "jax-compilation").exists()


def test_an_unwritable_home_means_no_cache_and_no_warnings(d2l):
    assert run_program("/dev/null") == ("None", False)  # ~/.cache cannot be made there
