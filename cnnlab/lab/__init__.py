"""The convolution lab: classic kernels on real photos, learning a kernel, invariance.

- ``cnnlab.lab.apply``: apply kernels with the engine's ``conv2d`` (grayscale, RGB,
  one input to many outputs, many inputs to one output, output-size tables).
- ``cnnlab.lab.figures``: the gallery, the four-panel figure and friends (matplotlib, Agg).
- ``cnnlab.lab.fit_kernel``: recover a hidden kernel by gradient descent.
- ``cnnlab.lab.invariance``: accuracy of a trained model under shift, rotation and scaling.
- ``cnnlab.lab.commands``: the ``cnnlab kernels``, ``fit-kernel`` and ``invariance`` commands
  (run folders through ``cnnlab.runs``, pictures through ``cnnlab.data.images``),
  with ``cnnlab.lab.cli_conventions`` (errors, number flags and old flag names, as in the CLI).
"""
