"""Training: ray-traced PSFs of a lens -> a conditional VAE -> ONNX graphs published to the store."""

import os

# OpenMP threads that busy-wait at every barrier are ruinous when the cores are shared: on the 2-core
# machine, with one other busy process, two spinning torch threads traced DeepLens PSFs 35x slower
# (4 vs 150 PSFs/s) and trained an 80 px step 25x slower (1.19 vs 0.046 s) than with passive waiting,
# which costs little when the machine is quiet. libgomp reads this when torch is first imported; a
# value the user set wins. (README, Time to accuracy.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
