"""Independent PyTorch reference of EfficientNet-Lite0, for checking the Keras conversion.

Not part of the package and never imported by it: run it in a throwaway venv that has torch
(see docs/lite0-conversion.md)::

    python3 -m venv /tmp/torchref && /tmp/torchref/bin/pip install torch==2.13.0 numpy pillow
    /tmp/torchref/bin/python docs/lite0_torch_reference.py WEIGHTS.pth inputs.npy torch_logits.npy

``inputs.npy`` is a float32 ``(N, 224, 224, 3)`` batch already normalized as the card says,
``(pixels - 127) / 128``; the script writes the ``(N, 1000)`` logits. The weights are loaded
with ``torch.load(..., weights_only=True)`` and used through plain ``torch.nn.functional`` calls
written from the EfficientNet-Lite definition (TF "same" padding, BN eps 1e-3, ReLU6, no SE),
not from the Keras code.
"""

import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

BLOCKS = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]


def same_pad(x, kernel, stride):
    """TensorFlow 'SAME': output ceil(in/stride), the odd pixel of padding goes bottom/right."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


def conv(x, sd, name, stride=1, groups=1):
    weight = sd[f"{name}.weight"]
    return F.conv2d(same_pad(x, weight.shape[-1], stride), weight, sd.get(f"{name}.bias"), stride, 0, 1, groups)


def bn(x, sd, name):
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                        sd[f"{name}.weight"], sd[f"{name}.bias"], False, 0.0, 1e-3)


def forward(sd, x):
    x = F.relu6(bn(conv(x, sd, "_conv_stem", stride=2), sd, "_bn0"))
    index, in_ch = 0, 32
    for repeats, kernel, stride, expand, out_ch in BLOCKS:
        for r in range(repeats):
            s = stride if r == 0 else 1
            p = f"_blocks.{index}"
            h = x
            if expand != 1:
                h = F.relu6(bn(conv(h, sd, f"{p}._expand_conv"), sd, f"{p}._bn0"))
            assert sd[f"{p}._depthwise_conv.weight"].shape[-1] == kernel, p  # the table matches the file
            h = F.relu6(bn(conv(h, sd, f"{p}._depthwise_conv", stride=s, groups=h.shape[1]), sd, f"{p}._bn1"))
            h = bn(conv(h, sd, f"{p}._project_conv"), sd, f"{p}._bn2")
            x = h + x if (s == 1 and in_ch == out_ch) else h
            in_ch = out_ch
            index += 1
    x = F.relu6(bn(conv(x, sd, "_conv_head"), sd, "_bn1"))
    x = x.mean(dim=(2, 3))
    return F.linear(x, sd["_fc.weight"], sd["_fc.bias"])


def main(weights_path, inputs_path, out_path):
    sd = torch.load(weights_path, map_location="cpu", weights_only=True)
    sd = {k: v.float() for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    inputs = torch.from_numpy(np.load(inputs_path).astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        logits = torch.cat([forward(sd, inputs[i : i + 25]) for i in range(0, len(inputs), 25)])
    np.save(out_path, logits.numpy().astype(np.float32))
    print(f"torch {torch.__version__}: wrote logits {tuple(logits.shape)} to {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
