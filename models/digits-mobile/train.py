#!/usr/bin/env python3
"""Trains the MobileNet-style digits CNN (BatchNormalization, a depthwise-separable block,
ReLU6) that rowsim's accuracy runs use, and exports it to ONNX as PyTorch would.

Data: scikit-learn's digits (1797 8 x 8 images of 0-9, 0..16 grey levels; it ships inside the
scikit-learn package, nothing is downloaded), scaled to 0..1, split 80/20 (stratified, seed 0:
the same split as models/digits).
Model (numpy in float64, written out by hand, deterministic for the seed):
  Conv 1->16 3x3 pad 1 (no bias), BatchNormalization, ReLU6 ->
  depthwise Conv 3x3 stride 2 pad 1 (group 16, no bias), BatchNormalization, ReLU6 ->
  pointwise Conv 16->32 1x1 (no bias), BatchNormalization, ReLU6 ->
  GlobalAveragePool -> Flatten -> Gemm 32->10 -> Softmax
trained with Adam on the cross-entropy, 60 epochs of batches of 32; BatchNormalization uses
the batch's statistics in training and running averages (momentum 0.9) in the exported model.
Writes, beside this file: digits-mobile.onnx (opset 13, batch dimension symbolic, ReLU6 as
Clip with its bounds as inputs), test_x.npy (float32 [360, 1, 8, 8]), test_y.npy (int64 [360]),
calib_x.npy (float32 [64, 1, 8, 8]: the first 64 training images, for the fixed-point formats).

Needs numpy, scikit-learn and onnx (pip install numpy scikit-learn onnx); onnxruntime, if
installed, checks the exported model against the numpy one.
"""
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
EPS = 1e-5


def windows(x, k, stride, pad):
    """[N, C, k, k, OH, OW]: each kernel offset's view of the padded input."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, oh, ow))
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols


def unwindow(dcols, shape, k, stride, pad):
    n, c, h, w = shape
    oh, ow = dcols.shape[4:]
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += dcols[:, :, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(x, w, stride, pad):
    m, c, k, _ = w.shape
    cols = windows(x, k, stride, pad)
    out = np.einsum("mcij,ncijhw->nmhw", w, cols)
    return out, cols


def conv_bwd(dout, x_shape, cols, w, stride, pad):
    dw = np.einsum("nmhw,ncijhw->mcij", dout, cols)
    dcols = np.einsum("mcij,nmhw->ncijhw", w, dout)
    return unwindow(dcols, x_shape, w.shape[2], stride, pad), dw


def dw_fwd(x, w, stride, pad):
    cols = windows(x, w.shape[2], stride, pad)
    return np.einsum("cij,ncijhw->nchw", w[:, 0], cols), cols


def dw_bwd(dout, x_shape, cols, w, stride, pad):
    dw = np.einsum("nchw,ncijhw->cij", dout, cols)[:, None]
    dcols = np.einsum("cij,nchw->ncijhw", w[:, 0], dout)
    return unwindow(dcols, x_shape, w.shape[2], stride, pad), dw


def bn_fwd(x, g, b, stats, train):
    if train:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        stats["mean"] = 0.9 * stats["mean"] + 0.1 * mean
        stats["var"] = 0.9 * stats["var"] + 0.1 * var * x[:, 0].size / max(x[:, 0].size - 1, 1)
    else:
        mean, var = stats["mean"], stats["var"]
    inv = 1.0 / np.sqrt(var + EPS)
    xhat = (x - mean[None, :, None, None]) * inv[None, :, None, None]
    return g[None, :, None, None] * xhat + b[None, :, None, None], (xhat, inv)


def bn_bwd(dy, g, cache):
    xhat, inv = cache
    k = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dg = (dy * xhat).sum(axis=(0, 2, 3))
    db = dy.sum(axis=(0, 2, 3))
    dxhat = dy * g[None, :, None, None]
    dx = (inv[None, :, None, None] / k) * (
        k * dxhat - dxhat.sum(axis=(0, 2, 3))[None, :, None, None]
        - xhat * (dxhat * xhat).sum(axis=(0, 2, 3))[None, :, None, None])
    return dx, dg, db


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def forward(p, s, x, train):
    c1, k1 = conv_fwd(x, p["conv_w"], 1, 1)
    b1, n1 = bn_fwd(c1, p["bn1_g"], p["bn1_b"], s["bn1"], train)
    r1 = relu6(b1)
    c2, k2 = dw_fwd(r1, p["dw_w"], 2, 1)
    b2, n2 = bn_fwd(c2, p["bn2_g"], p["bn2_b"], s["bn2"], train)
    r2 = relu6(b2)
    c3, k3 = conv_fwd(r2, p["pw_w"], 1, 0)
    b3, n3 = bn_fwd(c3, p["bn3_g"], p["bn3_b"], s["bn3"], train)
    r3 = relu6(b3)
    f = r3.mean(axis=(2, 3))
    logits = f @ p["fc_w"].T + p["fc_b"]
    return logits, (x, k1, n1, b1, r1, k2, n2, b2, r2, k3, n3, b3, r3, f)


def backward(p, dlogits, cache):
    x, k1, n1, b1, r1, k2, n2, b2, r2, k3, n3, b3, r3, f = cache
    g = {}
    g["fc_w"] = dlogits.T @ f
    g["fc_b"] = dlogits.sum(0)
    df = dlogits @ p["fc_w"]
    dr3 = np.broadcast_to(df[:, :, None, None] / (r3.shape[2] * r3.shape[3]), r3.shape)
    db3 = dr3 * ((b3 > 0) & (b3 < 6))
    dc3, g["bn3_g"], g["bn3_b"] = bn_bwd(db3, p["bn3_g"], n3)
    dr2, g["pw_w"] = conv_bwd(dc3, r2.shape, k3, p["pw_w"], 1, 0)
    db2 = dr2 * ((b2 > 0) & (b2 < 6))
    dc2, g["bn2_g"], g["bn2_b"] = bn_bwd(db2, p["bn2_g"], n2)
    dr1, g["dw_w"] = dw_bwd(dc2, r1.shape, k2, p["dw_w"], 2, 1)
    db1 = dr1 * ((b1 > 0) & (b1 < 6))
    dc1, g["bn1_g"], g["bn1_b"] = bn_bwd(db1, p["bn1_g"], n1)
    _, g["conv_w"] = conv_bwd(dc1, x.shape, k1, p["conv_w"], 1, 1)
    return g


def main():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    rng = np.random.default_rng(SEED)

    def he(*shape, fan_in):
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    p = {
        "conv_w": he(16, 1, 3, 3, fan_in=9), "bn1_g": np.ones(16), "bn1_b": np.zeros(16),
        "dw_w": he(16, 1, 3, 3, fan_in=9), "bn2_g": np.ones(16), "bn2_b": np.zeros(16),
        "pw_w": he(32, 16, 1, 1, fan_in=16), "bn3_g": np.ones(32), "bn3_b": np.zeros(32),
        "fc_w": he(10, 32, fan_in=32), "fc_b": np.zeros(10),
    }
    s = {k: {"mean": np.zeros(c), "var": np.ones(c)} for k, c in
         (("bn1", 16), ("bn2", 16), ("bn3", 32))}
    mom = {k: np.zeros_like(v) for k, v in p.items()}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    lr, b1, b2, eps, t = 3e-3, 0.9, 0.999, 1e-8, 0
    xtr64, xte64 = xtr.astype(np.float64), xte.astype(np.float64)
    for epoch in range(60):
        order = rng.permutation(len(xtr))
        for st in range(0, len(order), 32):
            idx = order[st:st + 32]
            if len(idx) < 2:
                continue
            logits, cache = forward(p, s, xtr64[idx], True)
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
            acc = (forward(p, s, xte64, False)[0].argmax(1) == yte).mean()
            print(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
    acc = (forward(p, s, xte64, False)[0].argmax(1) == yte).mean()
    print(f"float test accuracy (numpy): {acc:.4f} on {len(yte)} images")

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def f32(name, v):
        return numpy_helper.from_array(np.asarray(v, dtype=np.float32), name=name)

    inits = [f32(k, v) for k, v in p.items()]
    for k in ("bn1", "bn2", "bn3"):
        inits += [f32(k + "_mean", s[k]["mean"]), f32(k + "_var", s[k]["var"])]
    inits += [f32("relu6_min", 0.0), f32("relu6_max", 6.0)]

    def bn(x, k):
        return helper.make_node("BatchNormalization",
                                [x, k + "_g", k + "_b", k + "_mean", k + "_var"], [k], name=k,
                                epsilon=EPS)

    def clip(x, name):
        return helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [name], name=name)

    nodes = [
        helper.make_node("Conv", ["input", "conv_w"], ["conv"], name="conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        bn("conv", "bn1"), clip("bn1", "relu6_1"),
        helper.make_node("Conv", ["relu6_1", "dw_w"], ["depthwise"], name="depthwise",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], group=16),
        bn("depthwise", "bn2"), clip("bn2", "relu6_2"),
        helper.make_node("Conv", ["relu6_2", "pw_w"], ["pointwise"], name="pointwise",
                         kernel_shape=[1, 1]),
        bn("pointwise", "bn3"), clip("bn3", "relu6_3"),
        helper.make_node("GlobalAveragePool", ["relu6_3"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits-mobile",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, producer_name="rowsim models/digits-mobile/train.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(HERE, "digits-mobile.onnx"))
    np.save(os.path.join(HERE, "test_x.npy"), xte.astype(np.float32))
    np.save(os.path.join(HERE, "test_y.npy"), yte.astype(np.int64))
    np.save(os.path.join(HERE, "calib_x.npy"), xtr[:64].astype(np.float32))
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(os.path.join(HERE, "digits-mobile.onnx"))
        out = sess.run(None, {"input": xte.astype(np.float32)})[0]
        print(f"float test accuracy (onnxruntime): {(out.argmax(1) == yte).mean():.4f}")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
