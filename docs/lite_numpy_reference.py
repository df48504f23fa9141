"""Independent NumPy reference of EfficientNet-Lite0..4, for checking the Keras conversion.

Not part of the package and never imported by it. It needs no torch and no TensorFlow: the
forward pass is written from the EfficientNet-Lite definition with plain NumPy (float64), and
the architecture is read from the weights file itself (channels and kernel sizes from the
tensor shapes); only the strides (stage by stage) and the block counts of the stages come from
the published table. It shares the ``.pth`` reader with cvplay (``cvplay.training.torch_pickle``,
checked bit for bit against ``torch.load`` in docs/lite0-conversion.md), and nothing else::

    python docs/lite_numpy_reference.py lite2 WEIGHTS.pth inputs.npy numpy_logits.npy

``inputs.npy`` is a float32 ``(N, S, S, 3)`` batch already prepared as the model card says
(centre crop, resize, ``(pixels - 127) / 128``); the script writes the ``(N, 1000)`` logits.
See docs/lite-family-conversion.md.
"""

import math
import sys
import time

import numpy as np

# Blocks per stage, as published for each variant (tensorflow/tpu efficientnet/lite: the B0 repeats
# 1,2,2,3,3,4,1 scaled by the depth coefficient and rounded up, except the first and last stage).
STAGE_REPEATS = {
    "lite0": [1, 2, 2, 3, 3, 4, 1],
    "lite1": [1, 3, 3, 4, 4, 5, 1],
    "lite2": [1, 3, 3, 4, 4, 5, 1],
    "lite3": [1, 3, 3, 5, 5, 6, 1],
    "lite4": [1, 4, 4, 6, 6, 8, 1],
}
STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]  # of the first block of each stage
EPS = 1e-3


def same_pad(x, kernel, stride):
    """TensorFlow 'SAME' on NHWC: output ceil(in/stride), the odd padding pixel bottom/right."""
    _, h, w, _ = x.shape
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def windows(x, kernel, stride):
    """``(i, j, shifted view)`` for each kernel offset of a SAME-padded, strided convolution."""
    x = same_pad(x, kernel, stride)
    out_h = (x.shape[1] - kernel) // stride + 1
    out_w = (x.shape[2] - kernel) // stride + 1
    for i in range(kernel):
        for j in range(kernel):
            yield i, j, x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :]


def conv_full(x, weight, stride):
    """Dense convolution; weight (out, in, k, k) as PyTorch stores it."""
    return sum(patch @ weight[:, :, i, j].T for i, j, patch in windows(x, weight.shape[-1], stride))


def conv_1x1(x, weight):
    return x @ weight[:, :, 0, 0].T


def conv_depthwise(x, weight, stride):
    """Depthwise convolution; weight (channels, 1, k, k)."""
    return sum(patch * weight[:, 0, i, j] for i, j, patch in windows(x, weight.shape[-1], stride))


def batch_norm(x, sd, name):
    scale = sd[f"{name}.weight"] / np.sqrt(sd[f"{name}.running_var"] + EPS)
    return (x - sd[f"{name}.running_mean"]) * scale + sd[f"{name}.bias"]


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def forward(sd, x, repeats):
    x = relu6(batch_norm(conv_full(x, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    index = 0
    for stage, count in enumerate(repeats):
        for r in range(count):
            p = f"_blocks.{index}"
            stride = STAGE_STRIDES[stage] if r == 0 else 1
            h = x
            if f"{p}._expand_conv.weight" in sd:
                h = relu6(batch_norm(conv_1x1(h, sd[f"{p}._expand_conv.weight"]), sd, f"{p}._bn0"))
            h = relu6(batch_norm(conv_depthwise(h, sd[f"{p}._depthwise_conv.weight"], stride), sd, f"{p}._bn1"))
            h = batch_norm(conv_1x1(h, sd[f"{p}._project_conv.weight"]), sd, f"{p}._bn2")
            x = h + x if (stride == 1 and h.shape[-1] == x.shape[-1]) else h
            index += 1
    assert f"_blocks.{index}._project_conv.weight" not in sd, "the file has more blocks than the table"
    x = relu6(batch_norm(conv_1x1(x, sd["_conv_head.weight"]), sd, "_bn1"))
    x = x.mean(axis=(1, 2))
    return x @ sd["_fc.weight"].T + sd["_fc.bias"]


def main(variant, weights_path, inputs_path, out_path, batch=10):
    from cvplay.training.torch_pickle import load_state_dict

    sd = {k: np.asarray(v, dtype=np.float64) for k, v in load_state_dict(weights_path).items()}
    inputs = np.load(inputs_path).astype(np.float64)
    started = time.perf_counter()
    logits = np.concatenate(
        [forward(sd, inputs[i : i + batch], STAGE_REPEATS[variant]) for i in range(0, len(inputs), batch)]
    )
    np.save(out_path, logits.astype(np.float32))
    print(f"numpy {np.__version__}: {variant} logits {logits.shape} in {time.perf_counter() - started:.0f} s -> {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
