"""The framework modules expose the same names with the same signatures."""
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
    with pytest.raises(ValueError, match=r"'theano'.*mxnet, pytorch, jax, tensorflow"):
        d2l_shim.load("theano")


def test_module_exports_exactly_the_public_names(framework, d2l):
    own = api.FRAMEWORK_ONLY.get(framework, ())
    assert sorted(d2l.__all__) == sorted(api.PUBLIC_NAMES + own)
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


def test_load_array_yields_tuples_of_batches_covering_every_item(d2l):
    import numpy as np
    features = np.arange(10, dtype=np.float32).reshape(10, 1) * np.ones((1, 3), np.float32)
    labels = np.arange(10, dtype=np.float32)
    for arrays in ((features,), (features, labels)):
        batches = [tuple(d2l.numpy(part) for part in batch)
                   for batch in d2l.load_array(arrays, 4)]
        assert [len(batch) for batch in batches] == [len(arrays)] * 3
        assert [len(batch[0]) for batch in batches] == [4, 4, 2]
        seen = np.concatenate([batch[0][:, 0] for batch in batches])
        assert sorted(seen) == list(range(10))
        if len(arrays) == 2:  # rows stay paired with their labels
            assert all((batch[0][:, 0] == batch[1]).all() for batch in batches)
    in_order = [d2l.numpy(X)[:, 0] for (X,) in d2l.load_array((features,), 4, is_train=False)]
    assert np.concatenate(in_order).tolist() == list(range(10))
