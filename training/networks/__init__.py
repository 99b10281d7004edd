"""PSF decoder networks, selected by ``network.type``: one file per network, its config keys in args.py.

A network maps (z [N, L] and condition features [N, F], concatenated) to PSF logits [N, k*k]; the
model turns logits into a non-negative unit-sum PSF with a softmax over pixels. It is built as
``Network(n_in, kernel_size, args)`` with ``args`` its own schema from args.py, already checked.
"""
