"""The three framework modules expose the same names with the same signatures."""
import importlib
import inspect

import pytest

import d2l_shim
from d2l_shim import api


def test_public_names_cover_shared_and_per_framework():
    shared = {name for names in api.SHARED.values() for name in names}
    assert shared.isdisjoint(api.PER_FRAMEWORK)
    assert set(api.PUBLIC_NAMES) == shared | set(api.PER_FRAMEWORK)


def test_unknown_framework_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'jax'.*mxnet, pytorch, tensorflow"):
        d2l_shim.load("jax")


def test_module_exports_exactly_the_public_names(d2l):
    assert sorted(d2l.__all__) == sorted(api.PUBLIC_NAMES)
    missing = [name for name in api.PUBLIC_NAMES if not hasattr(d2l, name)]
    assert missing == []


def test_shared_names_are_the_framework_free_objects(d2l):
    for module_name, names in api.SHARED.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert getattr(d2l, name) is getattr(module, name), (
                f"{d2l.__name__}.{name} must be re-exported from {module_name}, "
                "not written again")


@pytest.mark.parametrize("name", sorted(api.PER_FRAMEWORK))
def test_per_framework_signature(d2l, name):
    function = getattr(d2l, name)
    assert function.__module__ == d2l.__name__
    assert str(inspect.signature(function)) == api.PER_FRAMEWORK[name]
    assert inspect.getdoc(function), f"{d2l.__name__}.{name} needs a docstring"
