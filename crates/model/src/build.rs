//! ONNX models written from code (the tests' models; the ONNX messages of `onnx-protobuf`).

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{EnumOrUnknown, MessageField};

/// An attribute: a list of ints.
pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::INTS),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// An attribute: one int.
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::INT),
        i: v,
        ..Default::default()
    }
}

/// An attribute: one float.
pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::FLOAT),
        f: v,
        ..Default::default()
    }
}

/// A node.
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// A float initializer.
pub fn floats(name: &str, dims: &[i64], v: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::FLOAT as i32,
        float_data: v,
        ..Default::default()
    }
}

/// A float initializer whose data is in a file beside the model (`location`), as large models
/// keep their weights.
pub fn external(name: &str, dims: &[i64], location: &str) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::FLOAT as i32,
        data_location: EnumOrUnknown::new(onnx_protobuf::tensor_proto::DataLocation::EXTERNAL),
        external_data: vec![onnx_protobuf::StringStringEntryProto {
            key: "location".into(),
            value: location.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// An int64 initializer (a shape).
pub fn int64s(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: DataType::INT64 as i32,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// A float tensor value with dims; `None` is a symbolic dimension (`N`).
pub fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::FLOAT as i32,
                shape: MessageField::some(TensorShapeProto {
                    dim,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model of one graph (opset 13), serialized.
pub fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    input: ValueInfoProto,
    output: ValueInfoProto,
) -> Vec<u8> {
    model_at(13, nodes, inits, input, output)
}

/// A model of one graph at `opset`, serialized.
pub fn model_at(
    opset: i64,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    input: ValueInfoProto,
    output: ValueInfoProto,
) -> Vec<u8> {
    let m = ModelProto {
        ir_version: 8,
        producer_name: "rowsim tests".into(),
        opset_import: vec![OperatorSetIdProto {
            version: opset,
            ..Default::default()
        }],
        graph: MessageField::some(GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: inits,
            input: vec![input],
            output: vec![output],
            ..Default::default()
        }),
        ..Default::default()
    };
    // Writing to a Vec cannot fail.
    m.write_to_bytes().unwrap_or_default()
}

/// Deterministic weights in `[-a, a]` from a seed.
pub fn weights(n: usize, a: f32, seed: u64) -> Vec<f32> {
    let mut r = rowsim_workload::SplitMix64::new(seed);
    (0..n)
        .map(|_| ((r.next_f64() * 2.0 - 1.0) as f32) * a)
        .collect()
}

/// A small ResNet-style block over `[N, 4, 6, 6]`: CONV 3x3 (no bias, ReLU fused on the
/// chip), CONV 3x3 with bias, a residual Add of the block's input, ReLU, AveragePool 2x2 stride
/// 2, Flatten, an FC layer to 5 classes over the pooled 4 x 3 x 3 map, Softmax.
pub fn resnet_block() -> Vec<u8> {
    let c = 4i64;
    let nodes = vec![
        node(
            "Conv",
            "conv_a",
            &["x", "wa"],
            "a",
            vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
        ),
        node("Relu", "relu_a", &["a"], "ra", vec![]),
        node(
            "Conv",
            "conv_b",
            &["ra", "wb", "bb"],
            "b",
            vec![ints("pads", &[1, 1, 1, 1])],
        ),
        node("Add", "residual", &["b", "x"], "s", vec![]),
        node("Relu", "relu_s", &["s"], "rs", vec![]),
        node(
            "AveragePool",
            "pool",
            &["rs"],
            "p",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        node("Flatten", "flatten", &["p"], "f", vec![int("axis", 1)]),
        node(
            "Gemm",
            "fc",
            &["f", "wf", "bf"],
            "logits",
            vec![int("transB", 1)],
        ),
        node(
            "Softmax",
            "softmax",
            &["logits"],
            "prob",
            vec![int("axis", 1)],
        ),
    ];
    let k = (c * 9) as usize;
    let inits = vec![
        floats("wa", &[c, c, 3, 3], weights(k * c as usize, 0.4, 1)),
        floats("wb", &[c, c, 3, 3], weights(k * c as usize, 0.4, 2)),
        floats("bb", &[c], weights(c as usize, 0.2, 3)),
        floats("wf", &[5, c * 9], weights(5 * k, 0.5, 4)),
        floats("bf", &[5], weights(5, 0.1, 5)),
    ];
    model(
        nodes,
        inits,
        value("x", &[None, Some(c), Some(6), Some(6)]),
        value("prob", &[None, Some(5)]),
    )
}

/// A BatchNormalization node whose parameters are the initializers `{p}_g`, `{p}_b`, `{p}_m`
/// and `{p}_v` (see [`batchnorm_params`]), epsilon 1e-5.
fn batchnorm(name: &str, x: &str, y: &str, p: &str) -> NodeProto {
    node(
        "BatchNormalization",
        name,
        &[
            x,
            &format!("{p}_g"),
            &format!("{p}_b"),
            &format!("{p}_m"),
            &format!("{p}_v"),
        ],
        y,
        vec![float("epsilon", 1e-5)],
    )
}

/// The parameters of [`batchnorm`] `p` over `c` channels, as a trained network has them:
/// scales around 1, small shifts and means, variances in 0.5..1.5.
fn batchnorm_params(p: &str, c: i64, seed: u64) -> Vec<TensorProto> {
    let n = c as usize;
    let around_1 = |v: Vec<f32>| v.into_iter().map(|x| x + 1.0).collect::<Vec<_>>();
    vec![
        floats(&format!("{p}_g"), &[c], around_1(weights(n, 0.3, seed))),
        floats(&format!("{p}_b"), &[c], weights(n, 0.2, seed + 1)),
        floats(&format!("{p}_m"), &[c], weights(n, 0.3, seed + 2)),
        floats(&format!("{p}_v"), &[c], around_1(weights(n, 0.5, seed + 3))),
    ]
}

/// A torchvision-style block over `[N, 4, 6, 6]` with BatchNormalization three ways: on the
/// input (no layer before it: on the host), after a CONV 3x3 without bias (folded into it;
/// ReLU after), after a CONV 3x3 with bias (folded into it), then a residual Add of the block's
/// input, ReLU, AveragePool 2x2, Flatten and an FC layer to 5 classes. Running means and
/// variances are those of a trained network (variances in 0.5..1.5), epsilon 1e-5.
pub fn batchnorm_block() -> Vec<u8> {
    let c = 4i64;
    let nodes = vec![
        batchnorm("bn_in", "x", "xn", "n0"),
        node(
            "Conv",
            "conv_a",
            &["xn", "wa"],
            "a",
            vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
        ),
        batchnorm("bn_a", "a", "an", "n1"),
        node("Relu", "relu_a", &["an"], "ra", vec![]),
        node(
            "Conv",
            "conv_b",
            &["ra", "wb", "bb"],
            "b",
            vec![ints("pads", &[1, 1, 1, 1])],
        ),
        batchnorm("bn_b", "b", "bn", "n2"),
        node("Add", "residual", &["bn", "x"], "s", vec![]),
        node("Relu", "relu_s", &["s"], "rs", vec![]),
        node(
            "AveragePool",
            "pool",
            &["rs"],
            "p",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        node("Flatten", "flatten", &["p"], "f", vec![int("axis", 1)]),
        node(
            "Gemm",
            "fc",
            &["f", "wf", "bf"],
            "logits",
            vec![int("transB", 1)],
        ),
    ];
    let k = (c * 9) as usize;
    let mut inits = vec![
        floats("wa", &[c, c, 3, 3], weights(k * c as usize, 0.4, 1)),
        floats("wb", &[c, c, 3, 3], weights(k * c as usize, 0.4, 2)),
        floats("bb", &[c], weights(c as usize, 0.2, 3)),
        floats("wf", &[5, c * 9], weights(5 * k, 0.5, 4)),
        floats("bf", &[5], weights(5, 0.1, 5)),
    ];
    for (k, p) in ["n0", "n1", "n2"].iter().enumerate() {
        inits.extend(batchnorm_params(p, c, 10 + 4 * k as u64));
    }
    model(
        nodes,
        inits,
        value("x", &[None, Some(c), Some(6), Some(6)]),
        value("logits", &[None, Some(5)]),
    )
}

/// A MobileNet-v2 inverted-residual block over `[N, 8, 8, 8]`, as torchvision builds it: a 1x1
/// expansion CONV to 16 channels, BatchNormalization, ReLU6 (`Clip` 0..6, bounds as inputs);
/// a depthwise 3x3 CONV of stride 2 (`group` = 16), BatchNormalization, ReLU6; a 1x1
/// projection CONV to 8 channels, BatchNormalization; then GlobalAveragePool, Flatten and an
/// FC layer to 5 classes. No CONV has a bias (BatchNormalization follows each).
pub fn mobilenet_block() -> Vec<u8> {
    let (c, e) = (8i64, 16i64);
    let nodes = vec![
        node(
            "Conv",
            "expand",
            &["x", "we"],
            "a",
            vec![ints("kernel_shape", &[1, 1])],
        ),
        batchnorm("bn_expand", "a", "an", "n0"),
        node("Clip", "relu6_a", &["an", "zero", "six"], "ra", vec![]),
        node(
            "Conv",
            "depthwise",
            &["ra", "wd"],
            "d",
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                int("group", e),
            ],
        ),
        batchnorm("bn_depthwise", "d", "dn", "n1"),
        node("Clip", "relu6_d", &["dn", "zero", "six"], "rd", vec![]),
        node(
            "Conv",
            "project",
            &["rd", "wp"],
            "p",
            vec![ints("kernel_shape", &[1, 1])],
        ),
        batchnorm("bn_project", "p", "pn", "n2"),
        node("GlobalAveragePool", "gap", &["pn"], "g", vec![]),
        node("Flatten", "flatten", &["g"], "f", vec![int("axis", 1)]),
        node(
            "Gemm",
            "fc",
            &["f", "wf", "bf"],
            "logits",
            vec![int("transB", 1)],
        ),
    ];
    let mut inits = vec![
        floats("we", &[e, c, 1, 1], weights((e * c) as usize, 0.5, 21)),
        floats("wd", &[e, 1, 3, 3], weights((e * 9) as usize, 0.5, 22)),
        floats("wp", &[c, e, 1, 1], weights((c * e) as usize, 0.4, 23)),
        floats("wf", &[5, c], weights(5 * c as usize, 0.5, 24)),
        floats("bf", &[5], weights(5, 0.1, 25)),
        floats("zero", &[], vec![0.0]),
        floats("six", &[], vec![6.0]),
    ];
    for (k, (p, ch)) in [("n0", e), ("n1", e), ("n2", c)].iter().enumerate() {
        inits.extend(batchnorm_params(p, *ch, 30 + 4 * k as u64));
    }
    model(
        nodes,
        inits,
        value("x", &[None, Some(c), Some(8), Some(8)]),
        value("logits", &[None, Some(5)]),
    )
}

/// Pooling with `ceil_mode` over `[N, 2, 8, 8]`: MaxPool 3x3 stride 2 (a last window past the
/// map), then AveragePool 3x3 stride 2 with padding 1 that counts padding (a last window past
/// the padded map, whose divisor is the part inside it). The output is the pooled map.
pub fn ceil_pools() -> Vec<u8> {
    let nodes = vec![
        node(
            "MaxPool",
            "max",
            &["x"],
            "m",
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
            ],
        ),
        node(
            "AveragePool",
            "avg",
            &["m"],
            "y",
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                int("ceil_mode", 1),
                int("count_include_pad", 1),
            ],
        ),
    ];
    model(
        nodes,
        vec![],
        value("x", &[None, Some(2), Some(8), Some(8)]),
        value("y", &[None, Some(2), Some(3), Some(3)]),
    )
}

/// The host's elementwise operators over `[N, 4, 6, 6]` (opset 14): a per-channel `Mul`, a
/// scalar `Sub` and `Div`; `Sigmoid` and `HardSwish` of the result side by side (`Concat` on
/// the channel axis); constant `Pad` of 1 with 0.25 (pads and value as inputs); `HardSigmoid`;
/// a CONV 3x3 to 4 channels followed by an `Add` of one constant (folded into the CONV as its
/// bias); Flatten and an FC layer to 5 classes.
pub fn elementwise_block() -> Vec<u8> {
    let nodes = vec![
        node("Mul", "scale", &["x", "k_mul"], "m", vec![]),
        node("Sub", "center", &["m", "k_sub"], "s", vec![]),
        node("Div", "spread", &["s", "k_div"], "dv", vec![]),
        node("Sigmoid", "sigmoid", &["dv"], "sg", vec![]),
        node("HardSwish", "hardswish", &["dv"], "hs", vec![]),
        node("Concat", "cat", &["sg", "hs"], "c", vec![int("axis", 1)]),
        node("Pad", "pad", &["c", "pads", "pv"], "p", vec![]),
        node(
            "HardSigmoid",
            "hsig",
            &["p"],
            "q",
            vec![float("alpha", 0.3), float("beta", 0.4)],
        ),
        node(
            "Conv",
            "conv",
            &["q", "wc"],
            "y",
            vec![ints("kernel_shape", &[3, 3])],
        ),
        node("Add", "offset", &["y", "k_add"], "ya", vec![]),
        node("Flatten", "flatten", &["ya"], "f", vec![int("axis", 1)]),
        node(
            "Gemm",
            "fc",
            &["f", "wf", "bf"],
            "logits",
            vec![int("transB", 1)],
        ),
    ];
    let inits = vec![
        floats("k_mul", &[1, 4, 1, 1], vec![1.5, -0.75, 2.0, 0.5]),
        floats("k_sub", &[], vec![0.25]),
        floats("k_div", &[], vec![1.25]),
        int64s("pads", &[0, 0, 1, 1, 0, 0, 1, 1]),
        floats("pv", &[], vec![0.25]),
        floats("wc", &[4, 8, 3, 3], weights(4 * 8 * 9, 0.4, 41)),
        floats("k_add", &[], vec![0.125]),
        floats("wf", &[5, 4 * 36], weights(5 * 144, 0.3, 42)),
        floats("bf", &[5], weights(5, 0.1, 43)),
    ];
    model_at(
        14,
        nodes,
        inits,
        value("x", &[None, Some(4), Some(6), Some(6)]),
        value("logits", &[None, Some(5)]),
    )
}

/// A string attribute.
pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::STRING),
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// One Transformer encoder layer over `[N, 8, 16]` tokens, as PyTorch exports a post-norm
/// `nn.TransformerEncoderLayer` with one head (opset 17): Q, K and V projections (MatMul and
/// bias Add), `Q K^T` (K transposed), scaled by `1 / sqrt(16)` (Div), Softmax over the keys,
/// attention x V, the output projection, a residual Add and LayerNormalization; then the MLP,
/// 16 -> 32 -> 16 with GELU written out as PyTorch exports it (`x * 0.5 * (1 + erf(x /
/// sqrt 2))`: Div, Erf, Add, Mul of two activations, Mul), a residual Add and a second
/// LayerNormalization.
pub fn encoder_layer() -> Vec<u8> {
    let (l, d, f) = (8i64, 16i64, 32i64);
    let mut g = Graph::default();
    g.linear("q", "x", "q", d, d, 51);
    g.linear("k", "x", "k", d, d, 52);
    g.linear("v", "x", "v", d, d, 53);
    g.nodes.extend([
        node(
            "Transpose",
            "k_t",
            &["k"],
            "kt",
            vec![ints("perm", &[0, 2, 1])],
        ),
        node("MatMul", "scores", &["q", "kt"], "s", vec![]),
        node("Div", "scale", &["s", "sqrt_d"], "ss", vec![]),
        node("Softmax", "attention", &["ss"], "a", vec![int("axis", -1)]),
        node("MatMul", "context", &["a", "v"], "ctx", vec![]),
    ]);
    g.inits.push(floats("sqrt_d", &[], vec![(d as f32).sqrt()]));
    g.linear("out", "ctx", "o", d, d, 54);
    g.nodes
        .push(node("Add", "residual1", &["x", "o"], "r1", vec![]));
    g.layer_norm("norm1", "r1", "n1", ["g1", "b1"], d, 61);
    g.linear("ff1", "n1", "h", d, f, 55);
    g.nodes.extend([
        node("Div", "gelu_div", &["h", "sqrt_2"], "h_s", vec![]),
        node("Erf", "gelu_erf", &["h_s"], "h_e", vec![]),
        node("Add", "gelu_add", &["h_e", "one"], "h_a", vec![]),
        node("Mul", "gelu_mul", &["h", "h_a"], "h_m", vec![]),
        node("Mul", "gelu_half", &["h_m", "half"], "g", vec![]),
    ]);
    g.inits.extend([
        floats("sqrt_2", &[], vec![std::f32::consts::SQRT_2]),
        floats("one", &[], vec![1.0]),
        floats("half", &[], vec![0.5]),
    ]);
    g.linear("ff2", "g", "y", f, d, 56);
    g.nodes
        .push(node("Add", "residual2", &["n1", "y"], "r2", vec![]));
    g.layer_norm("norm2", "r2", "out", ["g2", "b2"], d, 63);
    model_at(
        17,
        g.nodes,
        g.inits,
        value("x", &[None, Some(l), Some(d)]),
        value("out", &[None, Some(l), Some(d)]),
    )
}

/// The nodes and initializers of a graph being written.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

impl Graph {
    /// A projection `out = input x w + b` of `k` -> `m` features (a MatMul, then the bias
    /// Add), its weights uniform in `1 / sqrt(k)` from `seed`, its bias from `seed + 100`.
    fn linear(&mut self, name: &str, input: &str, out: &str, k: i64, m: i64, seed: u64) {
        let (w, b) = (format!("{name}_w"), format!("{name}_b"));
        let mm = format!("{name}_mm");
        self.nodes
            .push(node("MatMul", name, &[input, &w], &mm, vec![]));
        self.nodes.push(node(
            "Add",
            &format!("{name}_bias"),
            &[&mm, &b],
            out,
            vec![],
        ));
        let a = 1.0 / (k as f32).sqrt();
        self.inits
            .push(floats(&w, &[k, m], weights((k * m) as usize, a, seed)));
        self.inits
            .push(floats(&b, &[m], weights(m as usize, 0.1, seed + 100)));
    }

    /// LayerNormalization of `input` over its last axis of `d` (epsilon 1e-5); `params` names
    /// its scale (near 1, from `seed`) and its shift (from `seed + 1`).
    fn layer_norm(
        &mut self,
        name: &str,
        input: &str,
        out: &str,
        params: [&str; 2],
        d: i64,
        seed: u64,
    ) {
        let [g, b] = params;
        self.nodes.push(node(
            "LayerNormalization",
            name,
            &[input, g, b],
            out,
            vec![int("axis", -1), float("epsilon", 1e-5)],
        ));
        let n = d as usize;
        self.inits.push(floats(
            g,
            &[d],
            weights(n, 0.2, seed).iter().map(|w| 1.0 + w).collect(),
        ));
        self.inits.push(floats(b, &[d], weights(n, 0.1, seed + 1)));
    }
}

/// A serialized model with the opset of its default domain set to `opset` (its nodes as they
/// are): the same graph read under another opset.
pub fn at_opset(bytes: &[u8], opset: i64) -> Vec<u8> {
    let mut m = ModelProto::parse_from_bytes(bytes).unwrap_or_default();
    for o in &mut m.opset_import {
        if o.domain.is_empty() || o.domain == "ai.onnx" {
            o.version = opset;
        }
    }
    m.write_to_bytes().unwrap_or_default()
}

/// One `Gelu` node (opset 20 on) over `[N, 4, 6]` tokens, `approximate` as given.
pub fn gelu(approximate: &str) -> Vec<u8> {
    model_at(
        20,
        vec![node(
            "Gelu",
            "gelu",
            &["x"],
            "y",
            vec![string("approximate", approximate)],
        )],
        vec![],
        value("x", &[None, Some(4), Some(6)]),
        value("y", &[None, Some(4), Some(6)]),
    )
}

/// The encoder layer of [`encoder_layer`] with `heads` attention heads, as PyTorch exports
/// multi-head attention: Q, K and V each reshaped to `[N, 8, heads, 16 / heads]` and
/// transposed to `[N, heads, 8, 16 / heads]` (K to `[N, heads, 16 / heads, 8]`), the scores
/// and the context one product per head, the context transposed back and reshaped to
/// `[N, 8, 16]` before the output projection (opset 17).
pub fn multihead_encoder_layer(heads: i64) -> Vec<u8> {
    let (l, d, f) = (8i64, 16i64, 32i64);
    let dh = d / heads;
    let mut g = Graph::default();
    g.linear("q", "x", "q", d, d, 71);
    g.linear("k", "x", "k", d, d, 72);
    g.linear("v", "x", "v", d, d, 73);
    g.inits.push(int64s("heads_shape", &[0, l, heads, dh]));
    g.inits.push(int64s("merged_shape", &[0, l, d]));
    for (v, perm) in [
        ("q", [0, 2, 1, 3]),
        ("k", [0, 2, 3, 1]),
        ("v", [0, 2, 1, 3]),
    ] {
        let split = format!("{v}_split");
        g.nodes
            .push(node("Reshape", &split, &[v, "heads_shape"], &split, vec![]));
        g.nodes.push(node(
            "Transpose",
            &format!("{v}_heads"),
            &[&split],
            &format!("{v}h"),
            vec![ints("perm", &perm)],
        ));
    }
    g.nodes.extend([
        node("MatMul", "scores", &["qh", "kh"], "s", vec![]),
        node("Div", "scale", &["s", "sqrt_dh"], "ss", vec![]),
        node("Softmax", "attention", &["ss"], "a", vec![int("axis", -1)]),
        node("MatMul", "context", &["a", "vh"], "ch", vec![]),
        node(
            "Transpose",
            "context_tokens",
            &["ch"],
            "ct",
            vec![ints("perm", &[0, 2, 1, 3])],
        ),
        node(
            "Reshape",
            "context_merge",
            &["ct", "merged_shape"],
            "ctx",
            vec![],
        ),
    ]);
    g.inits
        .push(floats("sqrt_dh", &[], vec![(dh as f32).sqrt()]));
    g.linear("out", "ctx", "o", d, d, 74);
    g.nodes
        .push(node("Add", "residual1", &["x", "o"], "r1", vec![]));
    g.layer_norm("norm1", "r1", "n1", ["g1", "b1"], d, 81);
    g.linear("ff1", "n1", "h", d, f, 75);
    g.nodes.push(node(
        "Gelu",
        "gelu",
        &["h"],
        "g",
        vec![string("approximate", "none")],
    ));
    g.linear("ff2", "g", "y", f, d, 76);
    g.nodes
        .push(node("Add", "residual2", &["n1", "y"], "r2", vec![]));
    g.layer_norm("norm2", "r2", "out", ["g2", "b2"], d, 83);
    model_at(
        20,
        g.nodes,
        g.inits,
        value("x", &[None, Some(l), Some(d)]),
        value("out", &[None, Some(l), Some(d)]),
    )
}

/// One `Softmax` over `[N, 3, 4, 5]` images at `opset`, over `axis` (the op's default when
/// `None`).
pub fn softmax(opset: i64, axis: Option<i64>) -> Vec<u8> {
    let attrs = axis.map(|a| vec![int("axis", a)]).unwrap_or_default();
    model_at(
        opset,
        vec![node("Softmax", "softmax", &["x"], "y", attrs)],
        vec![],
        value("x", &[None, Some(3), Some(4), Some(5)]),
        value("y", &[None, Some(3), Some(4), Some(5)]),
    )
}
