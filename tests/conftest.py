"""Test selection per environment.

Every framework runs in its own environment, so ``make test`` runs pytest once
per environment with ``--framework``:

* ``--framework pytorch`` (or mxnet, tensorflow): the framework-free shim tests
  plus the tests parametrized with that framework. If that framework cannot be
  imported there, its tests FAIL: in ``make test`` a skipped framework is a
  broken environment, not something to pass over quietly.
* ``--framework none``: the build-tool tests, in the tooling environment, except
  the tests of build outputs (executed notebooks, the HTML book), which
  ``make test-learning`` and ``make test-book`` run by name. A tool test
  parametrized by ``framework`` (it drives that framework's Jupyter kernel,
  e.g. test_exercises.py) runs for every framework here, and for one when its
  file is named with ``--framework pytorch``.
* no option (a contributor's ad-hoc run): everything collectable; a framework
  that is not installed is skipped with a reason.
"""
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from d2l_shim import FRAMEWORKS  # noqa: E402  (imports no framework)

#: Test files that need the tooling environment (jupytext, nbformat, pyyaml).
TOOLING_TESTS = frozenset({"test_nbsplit.py", "test_reference.py", "test_environment.py",
                           "test_build_book.py", "test_book_browser.py", "test_parity.py",
                           "test_book_notebooks.py", "test_bench.py",
                           "test_atomic_write.py", "test_placement.py",
                           "test_execute.py", "test_exercises.py", "test_chapter_code.py"})
#: Tooling tests of build outputs (the executed notebooks, the HTML book):
#: `make test-learning` and `make test-book` run them by name once those
#: exist, so the tool tests (--framework none) leave them out.
BUILD_OUTPUT_TESTS = frozenset({"test_book_notebooks.py", "test_book_browser.py"})


def pytest_addoption(parser):
    parser.addoption(
        "--framework", choices=(*FRAMEWORKS, "none"), default=None,
        help="run the tests of one environment (see tests/conftest.py)")
    parser.addoption(
        "--notebooks", default=str(REPO_ROOT / "build" / "book-notebooks" / "book"),
        help="the executed notebooks test_book_notebooks.py checks: <folder>/<framework>/<chapter>.ipynb")


def pytest_ignore_collect(collection_path, config):
    chosen = config.getoption("--framework")
    if chosen is None or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    is_tooling = collection_path.name in TOOLING_TESTS
    if chosen == "none" and collection_path.name in BUILD_OUTPUT_TESTS:
        return True
    return not is_tooling if chosen == "none" else (True if is_tooling else None)


def pytest_collection_modifyitems(config, items):
    chosen = config.getoption("--framework")
    if chosen is None:
        return
    kept, dropped = [], []
    for item in items:
        param = getattr(item, "callspec", None)
        framework = param.params.get("framework") if param else None
        every_kernel = chosen == "none" and item.path.name in TOOLING_TESTS
        wanted = framework in (None, chosen) or every_kernel
        (kept if wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=FRAMEWORKS)
def framework(request):
    """The framework name; its shim module is importable, or the test skips/fails."""
    name = request.param
    try:
        import d2l_shim
        d2l_shim.load(name)
    except ImportError as err:
        message = f"{name} cannot be imported in this environment ({err})"
        if request.config.getoption("--framework") == name:
            pytest.fail(message + ": run `make setup`", pytrace=False)
        pytest.skip(message)
    return name


@pytest.fixture
def d2l(framework):
    """The shim module of the test's framework, as chapters import it."""
    import d2l_shim
    return d2l_shim.load(framework)
