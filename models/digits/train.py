#!/usr/bin/env python3
"""Trains the digits CNN that rowsim's accuracy run uses, and exports it to ONNX.

Data: scikit-learn's digits (1797 8 x 8 images of 0-9, 0..16 grey levels; it ships inside the
scikit-learn package, nothing is downloaded), scaled to 0..1, split 80/20 with a fixed seed.
Model (numpy, written out by hand, deterministic for the seed):
  Conv 1->8 3x3 pad 1, ReLU, MaxPool 2 -> Conv 8->16 3x3 pad 1, ReLU, MaxPool 2 ->
  Flatten (64) -> Gemm 64->32, ReLU -> Gemm 32->10 -> Softmax
trained with Adam on the cross-entropy, 40 epochs of batches of 32.
Writes, beside this file: digits.onnx (opset 13, batch dimension symbolic), test_x.npy
(float32 [360, 1, 8, 8]), test_y.npy (int64 [360]), calib_x.npy (float32 [64, 1, 8, 8]: the
first 64 training images, for choosing the fixed-point formats).

Needs numpy, scikit-learn and onnx (pip install numpy scikit-learn onnx); onnxruntime, if
installed, checks the exported model against the numpy one.
"""
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0


def im2col(x, k, pad):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, h, w), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + h, j:j + w]
    return cols.reshape(n, c * k * k, h * w)


def col2im(cols, shape, k, pad):
    n, c, h, w = shape
    cols = cols.reshape(n, c, k, k, h, w)
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            xp[:, :, i:i + h, j:j + w] += cols[:, :, i, j]
    return xp[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(x, w, b):
    cols = im2col(x, 3, 1)
    n, _, h, wd = x.shape
    out = np.einsum("mk,nkp->nmp", w.reshape(w.shape[0], -1), cols) + b[None, :, None]
    return out.reshape(n, w.shape[0], h, wd), cols


def conv_bwd(dout, x_shape, cols, w):
    n, m, h, wd = dout.shape
    d = dout.reshape(n, m, h * wd)
    dw = np.einsum("nmp,nkp->mk", d, cols).reshape(w.shape)
    db = d.sum(axis=(0, 2))
    dcols = np.einsum("mk,nmp->nkp", w.reshape(m, -1), d)
    return col2im(dcols, x_shape, 3, 1), dw, db


def pool_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = r.max(axis=(3, 5))
    mask = r == out[:, :, :, None, :, None]
    return out, mask


def pool_bwd(dout, mask):
    d = mask * dout[:, :, :, None, :, None]
    n, c, h2, _, w2, _ = d.shape
    return d.reshape(n, c, h2 * 2, w2 * 2)


def forward(p, x):
    c1, k1 = conv_fwd(x, p["w1"], p["b1"])
    r1 = np.maximum(c1, 0)
    p1, m1 = pool_fwd(r1)
    c2, k2 = conv_fwd(p1, p["w2"], p["b2"])
    r2 = np.maximum(c2, 0)
    p2, m2 = pool_fwd(r2)
    f = p2.reshape(len(x), -1)
    h = f @ p["w3"].T + p["b3"]
    rh = np.maximum(h, 0)
    logits = rh @ p["w4"].T + p["b4"]
    cache = (x, c1, k1, p1, m1, c2, k2, p2, m2, f, h, rh)
    return logits, cache


def backward(p, dlogits, cache):
    x, c1, k1, p1, m1, c2, k2, p2, m2, f, h, rh = cache
    g = {}
    g["w4"] = dlogits.T @ rh
    g["b4"] = dlogits.sum(0)
    dh = (dlogits @ p["w4"]) * (h > 0)
    g["w3"] = dh.T @ f
    g["b3"] = dh.sum(0)
    dp2 = (dh @ p["w3"]).reshape(p2.shape)
    dr2 = pool_bwd(dp2, m2) * (c2 > 0)
    dp1, g["w2"], g["b2"] = conv_bwd(dr2, p1.shape, k2, p["w2"])
    dr1 = pool_bwd(dp1, m1) * (c1 > 0)
    _, g["w1"], g["b1"] = conv_bwd(dr1, x.shape, k1, p["w1"])
    return g


def main():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    rng = np.random.default_rng(SEED)

    def he(*shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float64)

    p = {
        "w1": he(8, 1, 3, 3, fan_in=9), "b1": np.zeros(8),
        "w2": he(16, 8, 3, 3, fan_in=72), "b2": np.zeros(16),
        "w3": he(32, 64, fan_in=64), "b3": np.zeros(32),
        "w4": he(10, 32, fan_in=32), "b4": np.zeros(10),
    }
    mom = {k: np.zeros_like(v) for k, v in p.items()}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    lr, b1, b2, eps, t = 3e-3, 0.9, 0.999, 1e-8, 0
    xtr64 = xtr.astype(np.float64)
    for epoch in range(40):
        order = rng.permutation(len(xtr))
        for s in range(0, len(order), 32):
            idx = order[s:s + 32]
            logits, cache = forward(p, xtr64[idx])
            z = logits - logits.max(1, keepdims=True)
            prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            d = prob.copy()
            d[np.arange(len(idx)), ytr[idx]] -= 1
            g = backward(p, d / len(idx), cache)
            t += 1
            for k in p:
                mom[k] = b1 * mom[k] + (1 - b1) * g[k]
                vel[k] = b2 * vel[k] + (1 - b2) * g[k] ** 2
                mh = mom[k] / (1 - b1 ** t)
                vh = vel[k] / (1 - b2 ** t)
                p[k] -= lr * mh / (np.sqrt(vh) + eps)
        if epoch % 10 == 9:
            acc = (forward(p, xte.astype(np.float64))[0].argmax(1) == yte).mean()
            print(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
    acc = (forward(p, xte.astype(np.float64))[0].argmax(1) == yte).mean()
    print(f"float test accuracy (numpy): {acc:.4f} on {len(yte)} images")

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(v.astype(np.float32), name=k) for k, v in p.items()]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["conv1"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool1", "w2", "b2"], ["conv2"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu3"], name="relu3"),
        helper.make_node("Gemm", ["relu3", "w4", "b4"], ["logits"], name="fc2", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, producer_name="rowsim models/digits/train.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, "digits.onnx"))
    np.save(os.path.join(HERE, "test_x.npy"), xte.astype(np.float32))
    np.save(os.path.join(HERE, "test_y.npy"), yte.astype(np.int64))
    np.save(os.path.join(HERE, "calib_x.npy"), xtr[:64].astype(np.float32))
    try:
        import onnxruntime as ort
        s = ort.InferenceSession(os.path.join(HERE, "digits.onnx"))
        out = s.run(None, {"input": xte.astype(np.float32)})[0]
        print(f"float test accuracy (onnxruntime): {(out.argmax(1) == yte).mean():.4f}")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
