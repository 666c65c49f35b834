#!/usr/bin/env python3
"""The networks users bring, built with onnx.helper as PyTorch exports them, for the tests in
tests/onnx_helper.rs. Writes into the folder given as the argument, for each model NAME:
NAME.onnx (checked by onnx.checker, full check), NAME_x.npy (float32 inputs, uniform in -1..1)
and NAME_y.npy (ONNX Runtime's outputs on them). Deterministic for the seed.

- resnet18_stem: ResNet-18's stem and first basic block at 64 x 64 (Conv 7x7/2 3->64 without
  bias, BatchNormalization, ReLU, MaxPool 3x3/2 pad 1; two Conv 3x3 64->64 each with
  BatchNormalization, the residual Add, ReLU), then GlobalAveragePool, Flatten and a Gemm to 10
  classes (opset 13).
- mobilenet_v2_block: an inverted-residual block with a strided depthwise convolution (1x1
  16->64, BatchNormalization, ReLU6 as Clip; depthwise 3x3/2 pad 1 group 64, BatchNormalization,
  ReLU6; 1x1 64->24, BatchNormalization), GlobalAveragePool, Flatten, Gemm to 10 (opset 13).
- encoder_layer: one post-norm Transformer encoder layer over [N, 8, 16] tokens with two
  attention heads as PyTorch exports them (Q/K/V MatMul + bias, each reshaped to [N, 8, 2, 8]
  and transposed to heads, Q K^T per head, Div by sqrt 8, Softmax, attention x V, the context
  transposed back and reshaped to [N, 8, 16], output projection, residual Add,
  LayerNormalization, MLP 16->32->16 with GELU written out with Erf, residual Add,
  LayerNormalization) (opset 17).

Needs numpy, onnx and onnxruntime (pip install numpy onnx onnxruntime).
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1]
rng = np.random.default_rng(7)


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def uniform(shape, scale):
    return rng.uniform(-scale, scale, size=shape).astype(np.float32)


class Graph:
    def __init__(self):
        self.nodes, self.inits = [], []

    def node(self, op, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, name, a):
        self.inits.append(const(name, a))
        return name

    def const_ints(self, name, v):
        self.inits.append(numpy_helper.from_array(np.asarray(v, dtype=np.int64), name))
        return name

    def conv(self, x, name, c, m, k, stride=1, pad=0, group=1):
        w = self.const(name + "_w", uniform((m, c // group, k, k), 1 / np.sqrt(c // group * k * k)))
        return self.node("Conv", [x, w], name, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, group=group)

    def bn(self, x, name, c):
        g = self.const(name + "_g", 1 + 0.1 * rng.standard_normal(c))
        b = self.const(name + "_b", 0.1 * rng.standard_normal(c))
        mean = self.const(name + "_m", 0.1 * rng.standard_normal(c))
        var = self.const(name + "_v", rng.uniform(0.5, 1.5, c))
        return self.node("BatchNormalization", [x, g, b, mean, var], name, epsilon=1e-5)

    def relu6(self, x, name):
        lo, hi = self.const(name + "_lo", 0.0), self.const(name + "_hi", 6.0)
        return self.node("Clip", [x, lo, hi], name)

    def head(self, x, c, classes):
        p = self.node("GlobalAveragePool", [x], "pool")
        f = self.node("Flatten", [p], "flatten", axis=1)
        w = self.const("fc_w", uniform((classes, c), 1 / np.sqrt(c)))
        b = self.const("fc_b", uniform((classes,), 0.1))
        return self.node("Gemm", [f, w, b], "y", transB=1)

    def linear(self, x, name, k, m):
        w = self.const(name + "_w", uniform((k, m), 1 / np.sqrt(k)))
        b = self.const(name + "_b", uniform((m,), 0.1))
        mm = self.node("MatMul", [x, w], name)
        return self.node("Add", [mm, b], name + "_bias")

    def save(self, name, in_shape, out_shape, opset, images):
        g = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
            [helper.make_tensor_value_info(self.nodes[-1].output[0], TensorProto.FLOAT,
                                           ["N", *out_shape])],
            self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, f"{OUT}/{name}.onnx")
        x = rng.uniform(-1, 1, size=(images, *in_shape)).astype(np.float32)
        np.save(f"{OUT}/{name}_x.npy", x)
        s = ort.InferenceSession(f"{OUT}/{name}.onnx", providers=["CPUExecutionProvider"])
        np.save(f"{OUT}/{name}_y.npy", s.run(None, {"x": x})[0].astype(np.float32))


def resnet18_stem():
    g = Graph()
    x = g.conv("x", "conv1", 3, 64, 7, stride=2, pad=3)
    x = g.node("Relu", [g.bn(x, "bn1", 64)], "relu1")
    x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    y = g.conv(x, "layer1_conv1", 64, 64, 3, pad=1)
    y = g.node("Relu", [g.bn(y, "layer1_bn1", 64)], "layer1_relu1")
    y = g.conv(y, "layer1_conv2", 64, 64, 3, pad=1)
    y = g.bn(y, "layer1_bn2", 64)
    y = g.node("Add", [y, x], "layer1_add")
    y = g.node("Relu", [y], "layer1_relu2")
    g.head(y, 64, 10)
    g.save("resnet18_stem", [3, 64, 64], [10], 13, 4)


def mobilenet_v2_block():
    g = Graph()
    x = g.conv("x", "expand", 16, 64, 1)
    x = g.relu6(g.bn(x, "expand_bn", 64), "expand_relu6")
    x = g.conv(x, "depthwise", 64, 64, 3, stride=2, pad=1, group=64)
    x = g.relu6(g.bn(x, "depthwise_bn", 64), "depthwise_relu6")
    x = g.conv(x, "project", 64, 24, 1)
    x = g.bn(x, "project_bn", 24)
    g.head(x, 24, 10)
    g.save("mobilenet_v2_block", [16, 16, 16], [10], 13, 8)


def encoder_layer():
    g = Graph()
    d, f, heads = 16, 32, 2
    dh = d // heads
    q, k, v = (g.linear("x", n, d, d) for n in ("q", "k", "v"))
    split = g.const_ints("heads_shape", [0, 8, heads, dh])
    merged = g.const_ints("merged_shape", [0, 8, d])
    qh, kh, vh = (
        g.node("Transpose", [g.node("Reshape", [t, split], n + "_split")], n + "_heads", perm=p)
        for t, n, p in ((q, "q", [0, 2, 1, 3]), (k, "k", [0, 2, 3, 1]), (v, "v", [0, 2, 1, 3])))
    s = g.node("MatMul", [qh, kh], "scores")
    s = g.node("Div", [s, g.const("sqrt_dh", np.sqrt(dh))], "scale")
    a = g.node("Softmax", [s], "attention", axis=-1)
    ctx = g.node("MatMul", [a, vh], "context")
    ctx = g.node("Transpose", [ctx], "context_tokens", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, merged], "context_merge")
    o = g.linear(ctx, "out", d, d)
    r = g.node("Add", ["x", o], "residual1")
    gamma, beta = g.const("g1", 1 + uniform((d,), 0.2)), g.const("b1", uniform((d,), 0.1))
    n1 = g.node("LayerNormalization", [r, gamma, beta], "norm1", axis=-1, epsilon=1e-5)
    h = g.linear(n1, "ff1", d, f)
    e = g.node("Erf", [g.node("Div", [h, g.const("sqrt_2", np.sqrt(2))], "gelu_div")], "gelu_erf")
    e = g.node("Add", [e, g.const("one", 1.0)], "gelu_add")
    e = g.node("Mul", [h, e], "gelu_mul")
    e = g.node("Mul", [e, g.const("half", 0.5)], "gelu_half")
    y = g.linear(e, "ff2", f, d)
    r = g.node("Add", [n1, y], "residual2")
    gamma, beta = g.const("g2", 1 + uniform((d,), 0.2)), g.const("b2", uniform((d,), 0.1))
    g.node("LayerNormalization", [r, gamma, beta], "norm2", axis=-1, epsilon=1e-5)
    g.save("encoder_layer", [8, d], [8, d], 17, 8)


resnet18_stem()
mobilenet_v2_block()
encoder_layer()
