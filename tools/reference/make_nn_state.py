#!/usr/bin/env python3
"""Writes the PyTorch-layout state dict that tests/engine/nn/state_dict_test.cpp loads, and
the inputs and outputs it must reproduce, with NumPy and the safetensors package only (no
torch: the keys, dtypes, shapes and the forward are torch.nn's, written out by hand):

    pip install safetensors numpy && python3 tools/reference/make_nn_state.py

The network is what this torch module would be:

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(3, 4)
            self.bn = torch.nn.BatchNorm1d(4)
            self.fc2 = torch.nn.Linear(4, 2)
        def forward(self, x):
            return self.fc2(torch.relu(self.bn(self.fc1(x))))

nn_state.safetensors holds its state dict (float32, num_batches_tracked int64 0-d, as
torch's state_dict() after 7 training batches), as safetensors.torch.save_file would write
it. nn_io.safetensors holds an input x (5, 3), the eval-mode output y_eval, the training-mode
output y_train of one more batch, and the running statistics after it (momentum 0.1, the
unbiased batch variance), all float64 from float32 parameters.
"""
import pathlib

import numpy as np
from safetensors.numpy import save_file

HERE = pathlib.Path(__file__).resolve().parent
EPS = 1e-5
MOMENTUM = 0.1

rng = np.random.default_rng(20240611)


def f32(*shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


state = {
    "fc1.weight": f32(4, 3, scale=0.5),
    "fc1.bias": f32(4, scale=0.1),
    "bn.weight": f32(4, scale=0.2, shift=1.0),
    "bn.bias": f32(4, scale=0.1),
    "bn.running_mean": f32(4, scale=0.3),
    "bn.running_var": (np.abs(f32(4, scale=0.5)) + 0.5).astype(np.float32),
    "bn.num_batches_tracked": np.array(7, dtype=np.int64),
    "fc2.weight": f32(2, 4, scale=0.5),
    "fc2.bias": f32(2, scale=0.1),
}
p = {k: v.astype(np.float64) for k, v in state.items()}
x = rng.standard_normal((5, 3))


def linear(h, name):
    return h @ p[name + ".weight"].T + p[name + ".bias"]


def head(h, mean, var):
    h = (h - mean) / np.sqrt(var + EPS) * p["bn.weight"] + p["bn.bias"]
    return linear(np.maximum(h, 0.0), "fc2")


h = linear(x, "fc1")
y_eval = head(h, p["bn.running_mean"], p["bn.running_var"])
mean, var = h.mean(axis=0), h.var(axis=0)  # the biased variance normalizes
y_train = head(h, mean, var)
n = h.shape[0]
running_mean = (1 - MOMENTUM) * p["bn.running_mean"] + MOMENTUM * mean
running_var = (1 - MOMENTUM) * p["bn.running_var"] + MOMENTUM * var * n / (n - 1)

save_file(state, str(HERE / "nn_state.safetensors"), metadata={"format": "pt"})
save_file(
    {
        "x": x,
        "y_eval": y_eval,
        "y_train": y_train,
        "running_mean_after": running_mean,
        "running_var_after": running_var,
    },
    str(HERE / "nn_io.safetensors"),
)
print("wrote", HERE / "nn_state.safetensors", "and", HERE / "nn_io.safetensors")
