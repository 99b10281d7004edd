"""PSF decoder networks, selected by ``network.type``. One file per network, registered by name.

A network maps (z [N, L], condition features [N, F]) to PSF logits [N, k*k]; the model turns
logits into a non-negative unit-sum PSF with a softmax over pixels.
"""

from . import conv_transpose, mlp_basis  # noqa: F401
