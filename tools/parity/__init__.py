"""Cross-framework parity: the three tabs of the DCGAN chapter are one model.

* ``weights``: the framework-neutral weight file (layout documented there);
* ``mxnet``, ``pytorch``, ``tensorflow``: importer and exporter of that file
  for the chapter's networks, plus a forward pass and one ``update_D`` /
  ``update_G`` step; each imports its own framework only;
* ``run``: one framework's computation (float32 and float64), run in that
  framework's environment;
* ``compare``, ``driver``: NumPy only, they write the inputs, start the runs
  and compare every pair (``python -m tools.parity.driver``).
"""
