//! ONNX import, through the `onnx-protobuf` crate (the ONNX protobuf messages, on the
//! `protobuf` crate).
//!
//! Supported: `Conv` (strides, symmetric pads, groups; no dilation), `Gemm` (`alpha = beta = 1`,
//! `transA = 0`, `transB` 0 or 1) and `MatMul` with an initializer as the weights (an `Add` of a
//! constant right after it becomes its bias), `BatchNormalization` (inference; folded into the
//! layer before it when it is that layer's only reader), `Relu`, `Clip`, `MaxPool` and
//! `AveragePool` (`ceil_mode` too, no dilation), `GlobalAveragePool`, `Flatten` (`axis = 1`), `Reshape` to
//! `[N, K]` (the shape an initializer), `Identity` and `Dropout` (inference: the same values),
//! `Add` of two values (residual), `Softmax` over a vector. One input, float, `[N, C, H, W]` or
//! `[N, K]`, its batch dimension fixed or symbolic, every other dimension fixed; one output.
//! Anything else is refused naming the node, the op and what was expected.

use std::collections::BTreeMap;
use std::path::Path;

use onnx_protobuf::{tensor_proto::DataType, Message, ModelProto, NodeProto, TensorProto};
use rowsim_workload::ConvLayer;

use crate::{LayerOp, Model, ModelError, Node, Op, Pool};

/// The largest model file read: 1 GiB.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The most values one initializer may hold (2^28 floats, 1 GiB).
pub const MAX_INITIALIZER_VALUES: u64 = 1 << 28;

/// Reads and imports an ONNX file.
pub fn load(path: &Path) -> Result<Model, ModelError> {
    let file = path.display().to_string();
    let err = |why: String| ModelError {
        file: file.clone(),
        node: None,
        op: None,
        why,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| err(format!("cannot read: {e}")))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(err(format!(
            "{len} bytes is above the limit of {MAX_FILE_BYTES} bytes for a model"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    parse(&bytes, &file)
}

/// A constant's values for each of the `d[0]` channels of a value of dims `d`: one value for
/// all, or one a channel (`[C, 1, 1]`, `[1, C, 1, 1]`; `[K]`, `[1, K]` for a vector).
fn per_channel(t: &Init, d: [usize; 3]) -> Option<Vec<f32>> {
    let c = d[0];
    if t.floats.len() == 1 {
        return Some(vec![t.floats[0]; c]);
    }
    let vector = d[1] == 1 && d[2] == 1;
    let ok = match t.dims[..] {
        [k, 1, 1] | [1, k, 1, 1] => k == c,
        [k] | [1, k] => vector && k == c,
        _ => false,
    };
    (ok && t.floats.len() == c).then(|| t.floats.clone())
}

/// A constant's values for each position of the last axis of tokens of dims `d` (`[L, D, 1]`):
/// one value for all, or `D` (`[D]`, `[1, D]`, `[1, 1, D]`).
fn per_last_axis(t: &Init, d: [usize; 3]) -> Option<Vec<f32>> {
    let len = d[1];
    if t.floats.len() == 1 {
        return Some(vec![t.floats[0]; len]);
    }
    let ok = matches!(t.dims[..], [k] | [1, k] | [1, 1, k] if k == len);
    (ok && t.floats.len() == len).then(|| t.floats.clone())
}

fn last_axis_error(t: &Init, d: [usize; 3]) -> String {
    format!(
        "a constant of dims {:?} with tokens [L, D] = [{}, {}]; expected one value, or one per position of the last axis ([D], [1, 1, D])",
        t.dims, d[0], d[1]
    )
}

fn broadcast_error(t: &Init, d: [usize; 3]) -> String {
    format!(
        "a constant of dims {:?} with a value of {d:?}; expected one value, or one a channel ([C, 1, 1] or [1, C, 1, 1])",
        t.dims
    )
}

/// The dims of value `v`, if known.
fn d_of(dims: &BTreeMap<String, [usize; 3]>, v: Option<&String>) -> Option<[usize; 3]> {
    dims.get(v?).copied()
}

/// A float tensor's `n` values (raw little-endian bytes or the typed field).
pub(crate) fn floats_of(t: &TensorProto, n: usize) -> Result<Vec<f32>, String> {
    values(&t.raw_data, &t.float_data, n, "floats", f32::from_le_bytes)
}

/// An initializer's `n` values: from its raw little-endian bytes when it has them, else from
/// its typed field; the error says what did not add up.
fn values<T: Clone, const B: usize>(
    raw: &[u8],
    typed: &[T],
    n: usize,
    what: &str,
    from_le: fn([u8; B]) -> T,
) -> Result<Vec<T>, String> {
    let v: Vec<T> = if raw.is_empty() {
        typed.to_vec()
    } else {
        if raw.len() as u64 != n as u64 * B as u64 {
            return Err(format!("{} bytes of raw data for {n} {what}", raw.len()));
        }
        raw.chunks_exact(B)
            .map(|b| {
                let mut a = [0u8; B];
                a.copy_from_slice(b);
                from_le(a)
            })
            .collect()
    };
    if v.len() != n {
        return Err(format!("{} values", v.len()));
    }
    Ok(v)
}

/// An initializer's values.
#[derive(Clone, Debug)]
struct Init {
    dims: Vec<usize>,
    floats: Vec<f32>,
    ints: Vec<i64>,
}

/// Imports a model from its bytes; `file` names it in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Model, ModelError> {
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| ModelError {
        file: file.into(),
        node: None,
        op: None,
        why: format!("not an ONNX model, or a truncated one: {e}"),
    })?;
    Importer::new(file).import(&model)
}

struct Importer {
    file: String,
    inits: BTreeMap<String, Init>,
    /// One image's dims of each value so far.
    dims: BTreeMap<String, [usize; 3]>,
    /// For the output of a Flatten/Reshape: the value it flattened.
    flattened: BTreeMap<String, String>,
    /// The ONNX rank of each value so far (see [`Model::input_rank`]).
    ranks: BTreeMap<String, usize>,
    /// The default domain's opset the model imports (0: none said).
    opset: i64,
    nodes: Vec<Node>,
}

fn ints<'a>(n: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.as_slice())
}

fn int(n: &NodeProto, name: &str, default: i64) -> i64 {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or(default, |a| a.i)
}

fn float(n: &NodeProto, name: &str, default: f32) -> f32 {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or(default, |a| a.f)
}

impl Importer {
    fn new(file: &str) -> Self {
        Importer {
            file: file.into(),
            inits: BTreeMap::new(),
            dims: BTreeMap::new(),
            flattened: BTreeMap::new(),
            ranks: BTreeMap::new(),
            opset: 0,
            nodes: Vec::new(),
        }
    }

    fn err(&self, why: impl Into<String>) -> ModelError {
        ModelError {
            file: self.file.clone(),
            node: None,
            op: None,
            why: why.into(),
        }
    }

    fn node_err(&self, name: &str, op: &str, why: impl Into<String>) -> ModelError {
        ModelError {
            file: self.file.clone(),
            node: Some(name.into()),
            op: Some(op.into()),
            why: why.into(),
        }
    }

    fn initializer(&self, t: &TensorProto) -> Result<Init, ModelError> {
        let name = &t.name;
        let what = |why: String| self.err(format!("initializer `{name}`: {why}"));
        if !t.external_data.is_empty() {
            return Err(what(
                "its data is in an external file, which is not supported".into(),
            ));
        }
        let mut count = 1u64;
        let mut dims = Vec::new();
        for &d in &t.dims {
            if d < 0 {
                return Err(what(format!("dimension {d} is negative")));
            }
            count = count.saturating_mul(d as u64);
            dims.push(d as usize);
        }
        if count > MAX_INITIALIZER_VALUES {
            return Err(what(format!(
                "{count} values is above the limit {MAX_INITIALIZER_VALUES}"
            )));
        }
        let n = count as usize;
        let raw = &t.raw_data;
        let ty = t.data_type;
        let mut init = Init {
            dims,
            floats: Vec::new(),
            ints: Vec::new(),
        };
        if ty == DataType::FLOAT as i32 {
            init.floats = values(raw, &t.float_data, n, "floats", f32::from_le_bytes)
                .map_err(|why| what(format!("{why} for dims {:?}", init.dims)))?;
            // A NaN or an infinity has no fixed-point value (it would become 0 or saturate
            // without a word): refused, as a weight no trained model holds.
            if let Some((k, v)) = init.floats.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(what(format!(
                    "value {k} is {v}: weights and constants must be finite numbers"
                )));
            }
        } else if ty == DataType::INT64 as i32 {
            init.ints = values(raw, &t.int64_data, n, "int64 values", i64::from_le_bytes)
                .map_err(|why| what(format!("{why} for dims {:?}", init.dims)))?;
        } else {
            return Err(what(format!(
                "data type {ty} is not supported (float for weights, int64 for shapes)"
            )));
        }
        Ok(init)
    }

    fn import(mut self, m: &ModelProto) -> Result<Model, ModelError> {
        let g = m
            .graph
            .as_ref()
            .ok_or_else(|| self.err("the model has no graph"))?;
        for t in &g.initializer {
            let init = self.initializer(t)?;
            self.inits.insert(t.name.clone(), init);
        }
        // The one input that is not an initializer.
        let inputs: Vec<_> = g
            .input
            .iter()
            .filter(|i| !self.inits.contains_key(&i.name))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(self.err(format!(
                "{} graph inputs besides the initializers; rowsim runs models with one (the images)",
                inputs.len()
            )));
        };
        let at = |why: String| self.err(format!("input `{}`: {why}", input.name));
        let tt = input
            .type_
            .as_ref()
            .filter(|t| t.has_tensor_type())
            .map(|t| t.tensor_type())
            .ok_or_else(|| at("not a tensor".into()))?;
        if tt.elem_type != DataType::FLOAT as i32 {
            return Err(at(format!(
                "element type {} is not float (1)",
                tt.elem_type
            )));
        }
        let shape = tt
            .shape
            .as_ref()
            .ok_or_else(|| at("no shape (a dynamic shape is not supported)".into()))?;
        let mut dims = Vec::new();
        let mut batch = None;
        for (k, d) in shape.dim.iter().enumerate() {
            if d.has_dim_value() && d.dim_value() > 0 {
                if k == 0 {
                    batch = Some(d.dim_value() as usize);
                } else {
                    dims.push(d.dim_value() as usize);
                }
            } else if k == 0 {
                // A symbolic batch: any batch.
            } else {
                return Err(at(format!(
                    "dimension {k} is dynamic (`{}`); only the batch dimension may be",
                    d.dim_param()
                )));
            }
        }
        let (input_dims, input_rank) = match dims.as_slice() {
            [c, h, w] => ([*c, *h, *w], 4),
            [l, d] => ([*l, *d, 1], 3),
            [k] => ([*k, 1, 1], 2),
            _ => {
                return Err(at(format!(
                    "rank {}: expected [N, C, H, W], [N, L, D] or [N, K]",
                    shape.dim.len()
                )))
            }
        };
        let cap = rowsim_workload::MAX_DIM as usize;
        if input_dims.iter().any(|&d| d > cap) || batch.is_some_and(|b| b > cap) {
            return Err(at(format!("a dimension is above the limit {cap}")));
        }
        self.dims.insert(input.name.clone(), input_dims);
        self.ranks.insert(input.name.clone(), input_rank);
        self.opset = m
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version);
        for (k, n) in g.node.iter().enumerate() {
            self.node(n, k, &input.name)?;
        }
        let [output] = g.output.as_slice() else {
            return Err(self.err(format!(
                "{} graph outputs; rowsim runs models with one",
                g.output.len()
            )));
        };
        if !self.dims.contains_key(&output.name) {
            return Err(self.err(format!(
                "the output `{}` is not made by any node",
                output.name
            )));
        }
        self.fold_affines(&output.name);
        self.fuse_relus(&output.name);
        Ok(Model {
            file: self.file,
            input: input.name.clone(),
            input_dims,
            input_rank,
            batch,
            nodes: self.nodes,
            output: output.name.clone(),
            pruning: m
                .metadata_props
                .iter()
                .find(|p| p.key == crate::prune::PRUNING_KEY)
                .map(|p| p.value.clone()),
        })
    }

    /// A BatchNormalization that is the only reader of a layer's output (and the layer applies
    /// no ReLU of its own) is folded into the layer: each filter's weights times its `scale`,
    /// its bias `bias * scale + shift` (in f64). The chip then runs the folded layer, and the
    /// node passes its input on. Any other BatchNormalization runs on the host.
    fn fold_affines(&mut self, output: &str) {
        for k in 0..self.nodes.len() {
            let Op::Affine(bn) = &self.nodes[k].op else {
                continue;
            };
            let (scale, shift) = (bn.scale.clone(), bn.shift.clone());
            let v = self.nodes[k].inputs[0].clone();
            let readers = self.nodes.iter().filter(|n| n.inputs.contains(&v)).count();
            if readers != 1 || v == output {
                continue;
            }
            let Some(j) = self.nodes.iter().position(|n| n.output == v) else {
                continue;
            };
            let layer_name = self.nodes[j].name.clone();
            let Op::Layer(l) = &mut self.nodes[j].op else {
                continue;
            };
            let m = l.layer.m as usize;
            if l.relu || scale.len() != m || l.folded.is_some() {
                continue;
            }
            let per = l.weights.len() / m.max(1);
            for (f, ws) in l.weights.chunks_mut(per.max(1)).enumerate() {
                for w in ws {
                    *w = (*w as f64 * scale[f] as f64) as f32;
                }
            }
            let bias: Vec<f32> = (0..m)
                .map(|f| {
                    let b = l.bias.as_ref().map_or(0.0, |b| b[f] as f64);
                    (b * scale[f] as f64 + shift[f] as f64) as f32
                })
                .collect();
            l.bias = Some(bias);
            l.folded = Some(scale);
            if let Op::Affine(bn) = &mut self.nodes[k].op {
                bn.folded_into = Some(layer_name);
            }
        }
    }

    /// A Relu that is the only reader of a layer without bias becomes the layer's readout ReLU.
    fn fuse_relus(&mut self, output: &str) {
        for k in 1..self.nodes.len() {
            let v = self.nodes[k - 1].output.clone();
            let readers = self.nodes.iter().filter(|n| n.inputs.contains(&v)).count();
            if readers != 1 || v == output || !matches!(self.nodes[k].op, Op::Relu { .. }) {
                continue;
            }
            if self.nodes[k].inputs[0] != v {
                continue;
            }
            if let Op::Layer(l) = &mut self.nodes[k - 1].op {
                if l.bias.is_none() {
                    l.relu = true;
                    self.nodes[k].op = Op::Relu { fused: true };
                }
            }
        }
    }

    fn node(&mut self, n: &NodeProto, k: usize, graph_input: &str) -> Result<(), ModelError> {
        let op = n.op_type.as_str();
        // Printed and part of file names: a control character in the model's name shown escaped.
        let name = if n.name.is_empty() {
            format!("{}_{k}", rowsim_workload::printable(op))
        } else {
            rowsim_workload::printable(&n.name).into_owned()
        };
        let fail = |why: String| self.node_err(&name, op, why);
        if !n.domain.is_empty() && n.domain != "ai.onnx" {
            return Err(fail(format!("domain `{}` is not supported", n.domain)));
        }
        let [out] = n.output.as_slice() else {
            return Err(fail(format!("{} outputs; expected 1", n.output.len())));
        };
        // Each value has one maker (ONNX's single assignment; ONNX Runtime refuses a second).
        if self.dims.contains_key(out) || self.inits.contains_key(out) {
            return Err(fail(format!(
                "its output `{out}` is made by an earlier node too (or is the graph input or an initializer); each value has one maker"
            )));
        }
        // The activation inputs (values made before), and the rest (initializers).
        let act = |i: usize| -> Result<(String, [usize; 3]), ModelError> {
            let v = n
                .input
                .get(i)
                .ok_or_else(|| fail(format!("input {i} is missing")))?;
            let d = self.dims.get(v).ok_or_else(|| {
                fail(format!(
                    "input `{v}` is neither made by an earlier node nor the graph input (a dynamic or unsorted graph)"
                ))
            })?;
            Ok((v.clone(), *d))
        };
        let init = |i: usize| -> Result<&Init, ModelError> {
            let v = n
                .input
                .get(i)
                .ok_or_else(|| fail(format!("input {i} is missing")))?;
            self.inits.get(v).ok_or_else(|| {
                fail(format!(
                    "input `{v}` must be an initializer (constant weights)"
                ))
            })
        };
        // The output's rank: the first input's, unless the op changes it.
        let in_rank = n
            .input
            .first()
            .and_then(|v| self.ranks.get(v))
            .copied()
            .unwrap_or(4);
        let mut rank = in_rank;
        let image_op = matches!(
            op,
            "Conv"
                | "MaxPool"
                | "AveragePool"
                | "GlobalAveragePool"
                | "BatchNormalization"
                | "Pad"
                | "Concat"
        );
        if image_op && in_rank == 3 {
            return Err(fail(
                "its input is a sequence of tokens [N, L, D]; this op takes images [N, C, H, W] (or vectors)"
                    .into(),
            ));
        }
        // A constant's values per channel (images, vectors) or per position of the last axis
        // (tokens), as an affine map's parameters.
        let per = |t: &Init, d: [usize; 3]| -> Result<(Vec<f32>, bool), ModelError> {
            if in_rank == 3 {
                per_last_axis(t, d)
                    .map(|v| (v, true))
                    .ok_or_else(|| fail(last_axis_error(t, d)))
            } else {
                per_channel(t, d)
                    .map(|v| (v, false))
                    .ok_or_else(|| fail(broadcast_error(t, d)))
            }
        };
        let (op_node, inputs, dims) = match op {
            "Conv" => {
                let (x, [c, h, w]) = act(0)?;
                let wt = init(1)?;
                let [m, cg, r, s] = wt.dims[..] else {
                    return Err(fail(format!(
                        "weights of dims {:?}; expected [M, C/G, kH, kW]",
                        wt.dims
                    )));
                };
                if let Some(d) = ints(n, "dilations").filter(|d| d.iter().any(|&v| v != 1)) {
                    return Err(fail(format!("dilations {d:?}: only 1 is supported")));
                }
                let auto = n.attribute.iter().find(|a| a.name == "auto_pad");
                if auto.is_some_and(|a| !a.s.is_empty() && a.s != b"NOTSET") {
                    return Err(fail("auto_pad: only explicit pads are supported".into()));
                }
                let strides = ints(n, "strides").unwrap_or(&[1, 1]);
                let pads = ints(n, "pads").unwrap_or(&[0, 0, 0, 0]);
                if strides.len() != 2 || strides.iter().any(|&v| v < 1) {
                    return Err(fail(format!("strides {strides:?}: expected two, at least 1")));
                }
                if pads.len() != 4 || pads.iter().any(|&p| p != pads[0]) || pads[0] < 0 {
                    return Err(fail(format!(
                        "pads {pads:?}: the chip pads every side alike; expected four equal pads"
                    )));
                }
                let groups = int(n, "group", 1);
                if groups < 1 {
                    return Err(fail(format!("group {groups} is below 1")));
                }
                if let Some(ks) = ints(n, "kernel_shape") {
                    if ks != [r as i64, s as i64] {
                        return Err(fail(format!(
                            "kernel_shape {ks:?} disagrees with the weights' {r} x {s}"
                        )));
                    }
                }
                let cap = rowsim_workload::MAX_DIM as i64;
                if strides.iter().chain(pads).any(|&v| v > cap) || groups > cap {
                    return Err(fail(format!("an attribute is above the limit {cap}")));
                }
                if cg * groups as usize != c {
                    return Err(fail(format!(
                        "the weights take {cg} channels x {groups} groups; the input has {c}"
                    )));
                }
                let layer = ConvLayer {
                    name: name.clone(),
                    n: 1,
                    c: c as u32,
                    h: h as u32,
                    w: w as u32,
                    m: m as u32,
                    r: r as u32,
                    s: s as u32,
                    stride_v: strides[0] as u32,
                    stride_h: strides[1] as u32,
                    pad: pads[0] as u32,
                    groups: groups as u32,
                    ifmap_zero_fraction: 0.5,
                    first: x == graph_input,
                };
                layer.validate().map_err(|e| fail(e.to_string()))?;
                let bias = match n.input.get(2).filter(|b| !b.is_empty()) {
                    Some(_) => Some(self.bias(init(2)?, m).map_err(fail)?),
                    None => None,
                };
                let dims = [m, layer.e() as usize, layer.f() as usize];
                let op = LayerOp {
                    layer,
                    weights: wt.floats.clone(),
                    bias,
                    relu: false,
                    fc: false,
                    weight_init: n.input[1].clone(),
                    transposed: false,
                    folded: None,
                    tokens: 1,
                };
                (Op::Layer(Box::new(op)), vec![x], dims)
            }
            "MatMul" if n.input.get(1).is_some_and(|v| !self.inits.contains_key(v)) => {
                // Two activations: each image's [P, K] x [K, M] on the chip (of rank 4, each
                // head's [G, P, K] x [G, K, M]).
                let (x, xd) = act(0)?;
                let (y, yd) = act(1)?;
                let yr = self.ranks.get(&y).copied().unwrap_or(4);
                if in_rank != yr || !(in_rank == 3 || in_rank == 4) {
                    return Err(fail(format!(
                        "a product of two activations of ranks {in_rank} and {yr}; expected two sequences [N, P, K] and [N, K, M], or two of heads [N, G, P, K] and [N, G, K, M]"
                    )));
                }
                let ((g, p, k), (g2, k2, m)) = if in_rank == 4 {
                    ((xd[0], xd[1], xd[2]), (yd[0], yd[1], yd[2]))
                } else {
                    ((1, xd[0], xd[1]), (1, yd[0], yd[1]))
                };
                if k != k2 || g != g2 {
                    return Err(fail(format!(
                        "[{g}, {p}, {k}] x [{g2}, {k2}, {m}]: the heads or the inner dimensions differ"
                    )));
                }
                let layer = ConvLayer {
                    name: name.clone(),
                    n: 1,
                    c: k as u32,
                    h: 1,
                    w: 1,
                    m: m as u32,
                    r: 1,
                    s: 1,
                    stride_v: 1,
                    stride_h: 1,
                    pad: 0,
                    groups: 1,
                    ifmap_zero_fraction: 0.5,
                    first: false,
                };
                layer.validate().map_err(|e| fail(e.to_string()))?;
                let dims = if in_rank == 4 { [g, p, m] } else { [p, m, 1] };
                (Op::MatMul(Box::new(layer)), vec![x, y], dims)
            }
            "Gemm" | "MatMul" => {
                let (x, xd) = act(0)?;
                let wt = init(1)?;
                let (alpha, beta) = (float(n, "alpha", 1.0), float(n, "beta", 1.0));
                if op == "Gemm" && (alpha != 1.0 || beta != 1.0 || int(n, "transA", 0) != 0) {
                    return Err(fail(format!(
                        "alpha {alpha}, beta {beta}, transA {}: only alpha = beta = 1, transA = 0 are supported",
                        int(n, "transA", 0)
                    )));
                }
                let trans_b = op == "Gemm" && int(n, "transB", 0) != 0;
                let [a, b] = wt.dims[..] else {
                    return Err(fail(format!(
                        "weights of dims {:?}; expected a matrix",
                        wt.dims
                    )));
                };
                let (k, m) = if trans_b { (b, a) } else { (a, b) };
                // Over tokens: each token's D values (the layer's batch is N x L).
                let tokens = if in_rank == 3 && op == "MatMul" {
                    if xd[1] != k {
                        return Err(fail(format!(
                            "input `{x}` has tokens of {} values; the weights take {k}",
                            xd[1]
                        )));
                    }
                    xd[0]
                } else {
                    1
                };
                if in_rank == 3 && op == "Gemm" {
                    return Err(fail(
                        "Gemm of a sequence [N, L, D]: Gemm takes a matrix [N, K]; a MatMul runs over tokens"
                            .into(),
                    ));
                }
                let xd = if tokens > 1 || in_rank == 3 { [k, 1, 1] } else { xd };
                if xd[1] != 1 || xd[2] != 1 {
                    return Err(fail(format!(
                        "input `{x}` is a {}x{}x{} map; expected a vector (Flatten it first)",
                        xd[0], xd[1], xd[2]
                    )));
                }
                if xd[0] != k {
                    return Err(fail(format!(
                        "input `{x}` has {} values; the weights take {k}",
                        xd[0]
                    )));
                }
                // Over a flattened C x H x W map: the filter covers the map (R = H, S = W).
                let (src, [c, h, w]) = match self.flattened.get(&x) {
                    Some(f) if in_rank != 3 => (f.clone(), self.dims[f]),
                    _ => (x.clone(), xd),
                };
                let mut weights = vec![0f32; m * k];
                for j in 0..m {
                    for i in 0..k {
                        weights[j * k + i] = if trans_b {
                            wt.floats[j * k + i]
                        } else {
                            wt.floats[i * m + j]
                        };
                    }
                }
                let bias = match n.input.get(2).filter(|b| !b.is_empty()) {
                    Some(_) => Some(self.bias(init(2)?, m).map_err(fail)?),
                    None => None,
                };
                let layer = ConvLayer {
                    name: name.clone(),
                    n: 1,
                    c: c as u32,
                    h: h as u32,
                    w: w as u32,
                    m: m as u32,
                    r: h as u32,
                    s: w as u32,
                    stride_v: 1,
                    stride_h: 1,
                    pad: 0,
                    groups: 1,
                    ifmap_zero_fraction: 0.5,
                    first: src == graph_input,
                };
                layer.validate().map_err(|e| fail(e.to_string()))?;
                let op = LayerOp {
                    layer,
                    weights,
                    bias,
                    relu: false,
                    fc: true,
                    weight_init: n.input[1].clone(),
                    transposed: !trans_b,
                    folded: None,
                    tokens,
                };
                if in_rank == 3 {
                    (Op::Layer(Box::new(op)), vec![src], [tokens, m, 1])
                } else {
                    (Op::Layer(Box::new(op)), vec![src], [m, 1, 1])
                }
            }
            "Relu" => {
                let (x, d) = act(0)?;
                (Op::Relu { fused: false }, vec![x], d)
            }
            "Clip" => {
                let (x, d) = act(0)?;
                // Bounds: inputs 1 and 2 (opset 11 on; an empty name is no bound), or the
                // attributes of older opsets.
                let bound = |i: usize, attr: &str, none: f32| -> Result<f32, ModelError> {
                    match n.input.get(i).filter(|v| !v.is_empty()) {
                        Some(v) => {
                            let t = self.inits.get(v).ok_or_else(|| {
                                fail(format!(
                                    "bound `{v}` is not an initializer (a computed bound is not supported)"
                                ))
                            })?;
                            match t.floats[..] {
                                [b] => Ok(b),
                                _ => Err(fail(format!("bound `{v}` is not one float"))),
                            }
                        }
                        None => Ok(float(n, attr, none)),
                    }
                };
                let (lo, hi) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
                if !(lo.is_finite() && hi.is_finite()) || lo > hi {
                    return Err(fail(format!(
                        "bounds {lo}..{hi}: expected finite numbers, min at most max"
                    )));
                }
                (Op::Clip { min: lo, max: hi }, vec![x], d)
            }
            "BatchNormalization" => {
                let (x, d) = act(0)?;
                if int(n, "training_mode", 0) != 0 {
                    return Err(fail(
                        "training_mode 1: only inference (the running mean and variance) is supported"
                            .into(),
                    ));
                }
                let eps32 = float(n, "epsilon", 1e-5);
                let eps = eps32 as f64;
                if !eps.is_finite() || eps < 0.0 {
                    return Err(fail(format!(
                        "epsilon {eps32}: expected a finite number at least 0"
                    )));
                }
                let c = d[0];
                let param = |i: usize, what: &str| -> Result<Vec<f32>, ModelError> {
                    let t = init(i)
                        .map_err(|_| fail(format!("its {what} is not an initializer")))?;
                    if t.floats.len() != c {
                        return Err(fail(format!(
                            "its {what} has {} values; expected {c}, one a channel",
                            t.floats.len()
                        )));
                    }
                    Ok(t.floats.clone())
                };
                let (gamma, beta) = (param(1, "scale")?, param(2, "B")?);
                let (mean, var) = (param(3, "input_mean")?, param(4, "input_var")?);
                if let Some(k) = (0..c).find(|&k| var[k] as f64 + eps <= 0.0) {
                    return Err(fail(format!(
                        "channel {k}: variance {} plus epsilon {eps32} is not positive",
                        var[k]
                    )));
                }
                let scale: Vec<f32> = (0..c)
                    .map(|k| (gamma[k] as f64 / (var[k] as f64 + eps).sqrt()) as f32)
                    .collect();
                let shift = (0..c)
                    .map(|k| (beta[k] as f64 - mean[k] as f64 * scale[k] as f64) as f32)
                    .collect();
                let bn = crate::Affine {
                    scale,
                    shift,
                    folded_into: None,
                    last_axis: false,
                };
                (Op::Affine(Box::new(bn)), vec![x], d)
            }
            "Identity" | "Dropout" => {
                let (x, d) = act(0)?;
                if n.output.len() > 1 {
                    return Err(fail("a Dropout mask output is not supported".into()));
                }
                (Op::Reshape, vec![x], d)
            }
            "Flatten" | "Reshape" => {
                let (x, [c, h, w]) = act(0)?;
                let k = c * h * w;
                if op == "Flatten" {
                    let axis = int(n, "axis", 1);
                    if axis != 1 {
                        return Err(fail(format!(
                            "axis {axis}: only 1 (keep the batch, flatten the rest) is supported"
                        )));
                    }
                } else {
                    let shape = init(1).map_err(|_| {
                        fail("the shape is not an initializer (a dynamic shape is not supported)".into())
                    })?;
                    // A value of 0 keeps the input's dimension there (ONNX's default), -1 is
                    // what the rest leaves.
                    let held = [c as i64, h as i64, w as i64];
                    let want: Vec<i64> = shape
                        .ints
                        .iter()
                        .skip(1)
                        .enumerate()
                        .map(|(i, &v)| if v == 0 && i < 3 { held[i] } else { v })
                        .collect();
                    let fill = |v: &[i64]| -> Vec<i64> {
                        let known: i64 = v.iter().filter(|&&x| x > 0).product();
                        let all = (c * h * w) as i64;
                        v.iter()
                            .map(|&x| if x == -1 && known > 0 { all / known } else { x })
                            .collect()
                    };
                    let want = fill(&want);
                    // Tokens split into heads ([N, L, D] -> [N, L, G, D/G]) or heads merged
                    // back ([N, L, G, D/G] -> [N, L, D]): the same words.
                    let split = in_rank == 3
                        && matches!(want[..], [ll, gg, dd] if ll == c as i64 && gg > 0 && dd > 0 && gg * dd == h as i64);
                    let merge = in_rank == 4
                        && matches!(want[..], [ll, dd] if ll == c as i64 && dd == (h * w) as i64);
                    if split || merge {
                        let (dims, r) = if split {
                            ([c, want[1] as usize, want[2] as usize], 4)
                        } else {
                            ([c, h * w, 1], 3)
                        };
                        self.push(name, op, Op::Reshape, vec![x], out, dims, r);
                        return Ok(());
                    }
                    let same = match shape.ints[..] {
                        [_, cc, hh, ww] => in_rank == 4 && [cc, hh, ww] == [c as i64, h as i64, w as i64],
                        [_, ll, dd] => in_rank == 3 && [ll, dd] == [c as i64, h as i64],
                        _ => false,
                    };
                    let ok = same || matches!(shape.ints[..], [_, kk] if kk == -1 || kk as usize == k);
                    if !ok {
                        let same_shape = if in_rank == 3 {
                            format!("[N, {c}, {h}]")
                        } else {
                            format!("[N, {c}, {h}, {w}]")
                        };
                        return Err(fail(format!(
                            "shape {:?}: only [N, {k}] (flatten) or the same {same_shape} is supported",
                            shape.ints
                        )));
                    }
                    if same {
                        self.dims.insert(out.clone(), [c, h, w]);
                        self.ranks.insert(out.clone(), in_rank);
                        self.nodes.push(Node {
                            name,
                            op_type: op.into(),
                            op: Op::Reshape,
                            inputs: vec![x],
                            output: out.clone(),
                            dims: [c, h, w],
                            rank: in_rank,
                        });
                        return Ok(());
                    }
                }
                if h * w > 1 {
                    self.flattened.insert(out.clone(), x.clone());
                } else if let Some(f) = self.flattened.get(&x).cloned() {
                    self.flattened.insert(out.clone(), f);
                }
                rank = 2;
                (Op::Reshape, vec![x], [k, 1, 1])
            }
            "MaxPool" | "AveragePool" | "GlobalAveragePool" => {
                let (x, [c, h, w]) = act(0)?;
                let pool = if op == "GlobalAveragePool" {
                    Pool {
                        kernel: [h, w],
                        stride: [1, 1],
                        pads: [0; 4],
                        count_include_pad: false,
                        ceil: false,
                    }
                } else {
                    let ks = ints(n, "kernel_shape")
                        .filter(|k| k.len() == 2 && k.iter().all(|&v| v >= 1))
                        .ok_or_else(|| fail("kernel_shape: expected two sizes of at least 1".into()))?;
                    let st = ints(n, "strides").unwrap_or(&[1, 1]);
                    let pd = ints(n, "pads").unwrap_or(&[0, 0, 0, 0]);
                    if st.len() != 2 || st.iter().any(|&v| v < 1) {
                        return Err(fail(format!("strides {st:?}: expected two, at least 1")));
                    }
                    if pd.len() != 4 || pd.iter().any(|&v| v < 0) {
                        return Err(fail(format!("pads {pd:?}: expected four, at least 0")));
                    }
                    // ONNX: padding smaller than the window, so no window is all padding.
                    if pd[0] >= ks[0] || pd[2] >= ks[0] || pd[1] >= ks[1] || pd[3] >= ks[1] {
                        return Err(fail(format!(
                            "pads {pd:?} must be smaller than the kernel {ks:?}"
                        )));
                    }
                    if ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                        return Err(fail("dilations: only 1 is supported".into()));
                    }
                    let auto = n.attribute.iter().find(|a| a.name == "auto_pad");
                    if auto.is_some_and(|a| !a.s.is_empty() && a.s != b"NOTSET") {
                        return Err(fail("auto_pad: only explicit pads are supported".into()));
                    }
                    if n.output.len() > 1 {
                        return Err(fail("MaxPool's indices output is not supported".into()));
                    }
                    let cap = 1i64 << 20;
                    if ks.iter().chain(st).chain(pd).any(|&v| v > cap) {
                        return Err(fail(format!("an attribute is above the limit {cap}")));
                    }
                    Pool {
                        kernel: [ks[0] as usize, ks[1] as usize],
                        stride: [st[0] as usize, st[1] as usize],
                        pads: [pd[0] as usize, pd[1] as usize, pd[2] as usize, pd[3] as usize],
                        count_include_pad: int(n, "count_include_pad", 0) != 0,
                        ceil: int(n, "ceil_mode", 0) != 0,
                    }
                };
                let (hp, wp) = (h + pool.pads[0] + pool.pads[2], w + pool.pads[1] + pool.pads[3]);
                if pool.kernel[0] > hp || pool.kernel[1] > wp {
                    return Err(fail(format!(
                        "a {}x{} window over a {hp}x{wp} (padded) map",
                        pool.kernel[0], pool.kernel[1]
                    )));
                }
                // With ceil_mode, a last window that runs past the padded map counts, unless
                // it would start past the input and its leading padding (PyTorch's and ONNX
                // Runtime's rule): only the input and padding it covers take part.
                let out = |len: usize, pad0: usize, pad1: usize, k: usize, s: usize| {
                    let padded = len + pad0 + pad1;
                    if !pool.ceil {
                        return (padded - k) / s + 1;
                    }
                    let o = (padded - k).div_ceil(s) + 1;
                    if (o - 1) * s >= len + pad0 {
                        o - 1
                    } else {
                        o
                    }
                };
                let dims = [
                    c,
                    out(h, pool.pads[0], pool.pads[2], pool.kernel[0], pool.stride[0]),
                    out(w, pool.pads[1], pool.pads[3], pool.kernel[1], pool.stride[1]),
                ];
                let p = if op == "MaxPool" {
                    Op::MaxPool(pool)
                } else {
                    Op::AvgPool(pool)
                };
                (p, vec![x], dims)
            }
            "Add" => {
                // A constant after a layer without bias: its bias. Else two values.
                let (x, d) = act(0)?;
                if let Some(c) = n.input.get(1).and_then(|v| self.inits.get(v)).cloned() {
                    let layer = self.nodes.last().filter(|l| l.output == x).and_then(|l| match &l.op {
                        Op::Layer(l) => Some((l.bias.is_some(), l.layer.m as usize)),
                        _ => None,
                    });
                    // Anywhere else (or a layer that has a bias): a per-channel shift (per
                    // position of the last axis for tokens).
                    let as_bias = layer.filter(|&(has_bias, m)| !has_bias && c.floats.len() == m);
                    if as_bias.is_none() {
                        let (k, last_axis) = per(&c, d)?;
                        let a = crate::Affine {
                            scale: vec![1.0; k.len()],
                            shift: k,
                            folded_into: None,
                            last_axis,
                        };
                        self.dims.insert(out.clone(), d);
                        self.ranks.insert(out.clone(), in_rank);
                        self.nodes.push(Node {
                            name,
                            op_type: op.into(),
                            op: Op::Affine(Box::new(a)),
                            inputs: vec![x],
                            output: out.clone(),
                            dims: d,
                            rank: in_rank,
                        });
                        return Ok(());
                    }
                    let out = out.clone();
                    if let Some(last) = self.nodes.last_mut() {
                        if let Op::Layer(l) = &mut last.op {
                            l.bias = Some(c.floats.clone());
                        }
                        // The layer now writes this node's output.
                        let old = std::mem::replace(&mut last.output, out.clone());
                        let dims = self.dims.remove(&old).unwrap_or(d);
                        self.dims.insert(out.clone(), dims);
                        let r = self.ranks.remove(&old).unwrap_or(in_rank);
                        self.ranks.insert(out, r);
                    }
                    return Ok(());
                }
                let (y, e) = act(1)?;
                if d == e {
                    (Op::Add, vec![x, y], d)
                } else {
                    let dims = self.broadcast(&x, &y).map_err(fail)?;
                    (Op::Binary(crate::Bin::Add), vec![x, y], dims)
                }
            }
            "Mul" | "Div" | "Sub" => {
                // An activation and a constant (per channel or one value): an affine map.
                let konst = |i: usize| n.input.get(i).and_then(|v| self.inits.get(v));
                let (xi, ki) = match (konst(0), konst(1)) {
                    (None, Some(_)) => (0, 1),
                    (Some(_), None) if op != "Div" => (1, 0),
                    (None, None) => {
                        // Two activations, value by value (one may be broadcast).
                        let (x, _) = act(0)?;
                        let (y, _) = act(1)?;
                        let dims = self.broadcast(&x, &y).map_err(fail)?;
                        let b = match op {
                            "Mul" => crate::Bin::Mul,
                            "Div" => crate::Bin::Div,
                            _ => crate::Bin::Sub,
                        };
                        self.push(name, op, Op::Binary(b), vec![x, y], out, dims, in_rank);
                        return Ok(());
                    }
                    _ => {
                        return Err(fail(
                            "expected an activation and a constant (an initializer), or two activations; a constant divided by an activation is not supported"
                                .into(),
                        ))
                    }
                };
                let (x, d) = act(xi)?;
                let c = konst(ki).expect("a constant");
                let (k, last_axis) = per(c, d)?;
                let len = k.len();
                let (scale, shift) = match (op, ki) {
                    ("Mul", _) => (k, vec![0.0; len]),
                    ("Div", _) => {
                        if let Some(z) = k.iter().position(|&v| v == 0.0) {
                            return Err(fail(format!("divides channel {z} by 0")));
                        }
                        (k.iter().map(|&v| (1.0 / v as f64) as f32).collect(), vec![0.0; len])
                    }
                    // x - k, or k - x.
                    (_, 1) => (vec![1.0; len], k.iter().map(|&v| -v).collect()),
                    _ => (vec![-1.0; len], k),
                };
                let a = crate::Affine {
                    scale,
                    shift,
                    folded_into: None,
                    last_axis,
                };
                (Op::Affine(Box::new(a)), vec![x], d)
            }
            "Sigmoid" | "HardSigmoid" | "HardSwish" | "Erf" | "Gelu" | "Tanh" | "Sqrt" | "Pow" => {
                let (x, d) = act(0)?;
                let f = match op {
                    "Sigmoid" => crate::Fun::Sigmoid,
                    "HardSigmoid" => crate::Fun::HardSigmoid {
                        alpha: float(n, "alpha", 0.2),
                        beta: float(n, "beta", 0.5),
                    },
                    "Erf" => crate::Fun::Erf,
                    "Tanh" => crate::Fun::Tanh,
                    "Sqrt" => crate::Fun::Sqrt,
                    "Gelu" => {
                        let a = n.attribute.iter().find(|a| a.name == "approximate");
                        match a.map(|a| a.s.as_slice()) {
                            None | Some(b"none") => crate::Fun::Gelu { tanh: false },
                            Some(b"tanh") => crate::Fun::Gelu { tanh: true },
                            Some(other) => {
                                return Err(fail(format!(
                                    "approximate `{}`: expected none or tanh",
                                    String::from_utf8_lossy(other)
                                )))
                            }
                        }
                    }
                    "Pow" => {
                        let e = n.input.get(1).and_then(|v| self.inits.get(v));
                        match e.map(|t| &t.floats[..]) {
                            Some([p]) if p.is_finite() => crate::Fun::Pow(*p),
                            _ => {
                                return Err(fail(
                                    "the exponent must be one finite float constant (an initializer)"
                                        .into(),
                                ))
                            }
                        }
                    }
                    _ => crate::Fun::HardSwish,
                };
                if let crate::Fun::HardSigmoid { alpha, beta } = f {
                    if !(alpha.is_finite() && beta.is_finite()) {
                        return Err(fail(format!("alpha {alpha}, beta {beta}: expected finite numbers")));
                    }
                }
                (Op::Map(f), vec![x], d)
            }
            "Concat" => {
                let axis = int(n, "axis", 1);
                let rank = if d_of(&self.dims, n.input.first())
                    .is_some_and(|d: [usize; 3]| d[1] == 1 && d[2] == 1)
                {
                    2
                } else {
                    4
                };
                if axis != 1 && axis != 1 - rank {
                    return Err(fail(format!(
                        "axis {axis}: only the channel axis (1) is supported"
                    )));
                }
                if n.input.is_empty() {
                    return Err(fail("no inputs".into()));
                }
                let mut ins = Vec::new();
                let mut c = 0;
                let mut hw = None;
                for i in 0..n.input.len() {
                    let (v, dv) = act(i)?;
                    if hw.is_some_and(|s| s != (dv[1], dv[2])) {
                        return Err(fail(format!(
                            "input `{v}` is {}x{}; every input must have the first's height and width",
                            dv[1], dv[2]
                        )));
                    }
                    hw = Some((dv[1], dv[2]));
                    c += dv[0];
                    ins.push(v);
                }
                let (h, w) = hw.expect("an input");
                (Op::Concat, ins, [c, h, w])
            }
            "Pad" => {
                let (x, [c, h, w]) = act(0)?;
                let mode = n.attribute.iter().find(|a| a.name == "mode").map(|a| a.s.clone());
                if mode.as_deref().is_some_and(|m| !m.is_empty() && m != b"constant") {
                    return Err(fail("mode: only constant padding is supported".into()));
                }
                // Pads from input 1 (opset 11 on) or the attribute; the value from input 2 or
                // the attribute (default 0).
                let pads: Vec<i64> = match n.input.get(1).filter(|v| !v.is_empty()) {
                    Some(v) => self
                        .inits
                        .get(v)
                        .map(|t| t.ints.clone())
                        .ok_or_else(|| fail(format!("pads `{v}` is not an initializer")))?,
                    None => ints(n, "pads").unwrap_or(&[]).to_vec(),
                };
                if n.input.get(3).is_some_and(|v| !v.is_empty()) {
                    return Err(fail("axes: not supported (pads for every axis)".into()));
                }
                let value = match n.input.get(2).filter(|v| !v.is_empty()) {
                    Some(v) => match self.inits.get(v).map(|t| &t.floats[..]) {
                        Some([x]) => *x,
                        _ => return Err(fail(format!("value `{v}` is not one float initializer"))),
                    },
                    None => float(n, "value", 0.0),
                };
                // [N, C, H, W] begins then ends: only H and W padded, not below 0.
                let [_, c0, t, l, _, c1, b, r] = pads[..] else {
                    return Err(fail(format!(
                        "pads {pads:?}: expected 8 (begin and end of N, C, H, W)"
                    )));
                };
                if pads[0] != 0 || pads[4] != 0 || c0 != 0 || c1 != 0 {
                    return Err(fail(format!("pads {pads:?}: only H and W may be padded")));
                }
                let cap = rowsim_workload::MAX_DIM as i64;
                if [t, l, b, r].iter().any(|&p| !(0..=cap).contains(&p)) || !value.is_finite() {
                    return Err(fail(format!(
                        "pads {pads:?} or value {value}: expected pads from 0 to {cap}, a finite value"
                    )));
                }
                let pads = [t as usize, l as usize, b as usize, r as usize];
                let dims = [c, h + pads[0] + pads[2], w + pads[1] + pads[3]];
                if dims[1] > cap as usize || dims[2] > cap as usize {
                    return Err(fail(format!("the padded map is above the limit {cap}")));
                }
                (Op::Pad { pads, value }, vec![x], dims)
            }
            "Softmax" => {
                let (x, d) = act(0)?;
                // From opset 13: over one axis (default the last). Before: the axes from
                // `axis` (default 1) to the last, flattened into one.
                let old = self.opset > 0 && self.opset < 13;
                let r = in_rank as i64;
                let axis = int(n, "axis", if old { 1 } else { -1 });
                let a = if axis < 0 { axis + r } else { axis };
                if !(1..r).contains(&a) {
                    return Err(fail(format!(
                        "axis {axis}: expected an axis after the batch (1 to {}, or -{} to -1)",
                        r - 1,
                        r - 1
                    )));
                }
                // The held axes ([C, H, W]; tokens [L, D, 1]; a vector [K, 1, 1]).
                let held_last = if in_rank == 4 { 2 } else { in_rank - 2 };
                let first = a as usize - 1;
                let axes = crate::Axes {
                    first,
                    last: if old { held_last } else { first },
                };
                (Op::Softmax(axes), vec![x], d)
            }
            "LayerNormalization" => {
                let (x, d) = act(0)?;
                if in_rank == 4 {
                    return Err(fail(
                        "over a map; expected tokens [N, L, D] or a vector [N, K] (normalized over the last axis)"
                            .into(),
                    ));
                }
                let last = in_rank as i64 - 1;
                let axis = int(n, "axis", -1);
                if axis != last && axis != -1 {
                    return Err(fail(format!(
                        "axis {axis}: only the last axis ({last}, or -1) is supported"
                    )));
                }
                let eps = float(n, "epsilon", 1e-5);
                if !eps.is_finite() || eps < 0.0 {
                    return Err(fail(format!("epsilon {eps}: expected a finite number at least 0")));
                }
                let len = crate::last_axis(d, in_rank);
                let param = |i: usize, what: &str, default: f32| -> Result<Vec<f32>, ModelError> {
                    match n.input.get(i).filter(|v| !v.is_empty()) {
                        None => Ok(vec![default; len]),
                        Some(v) => {
                            let t = self.inits.get(v).ok_or_else(|| {
                                fail(format!("its {what} `{v}` is not an initializer"))
                            })?;
                            if t.floats.len() != len {
                                return Err(fail(format!(
                                    "its {what} has {} values; expected {len}, one per position of the last axis",
                                    t.floats.len()
                                )));
                            }
                            Ok(t.floats.clone())
                        }
                    }
                };
                if n.input.get(1).is_none_or(|v| v.is_empty()) {
                    return Err(fail("its Scale (input 1) is missing".into()));
                }
                let ln = crate::LayerNorm {
                    scale: param(1, "Scale", 1.0)?,
                    shift: param(2, "B", 0.0)?,
                    epsilon: eps,
                };
                if n.output.len() > 1 {
                    return Err(fail("the Mean and InvStdDev outputs are not supported".into()));
                }
                (Op::LayerNorm(Box::new(ln)), vec![x], d)
            }
            "ReduceMean" => {
                let (x, d) = act(0)?;
                if in_rank == 4 {
                    return Err(fail("over a map; only the last axis of tokens or a vector".into()));
                }
                // Axes from the attribute (before opset 18) or input 1.
                let axes: Vec<i64> = match n.input.get(1).filter(|v| !v.is_empty()) {
                    Some(v) => self
                        .inits
                        .get(v)
                        .map(|t| t.ints.clone())
                        .ok_or_else(|| fail(format!("axes `{v}` is not an initializer")))?,
                    None => ints(n, "axes").unwrap_or(&[]).to_vec(),
                };
                let last = in_rank as i64 - 1;
                if !matches!(axes[..], [a] if a == last || a == -1) || int(n, "keepdims", 1) != 1 {
                    return Err(fail(format!(
                        "axes {axes:?}, keepdims {}: only the last axis ([{last}] or [-1]), kept (keepdims 1)",
                        int(n, "keepdims", 1)
                    )));
                }
                let dims = if in_rank == 3 { [d[0], 1, 1] } else { [1, 1, 1] };
                (Op::ReduceMean, vec![x], dims)
            }
            "Transpose" => {
                let (x, d) = act(0)?;
                // The default reverses the axes (the batch's too: refused below unless rank 2).
                let perm: Vec<i64> = match ints(n, "perm") {
                    Some(p) => p.to_vec(),
                    None => (0..in_rank as i64).rev().collect(),
                };
                let valid = perm.len() == in_rank
                    && perm.first() == Some(&0)
                    && (0..in_rank as i64).all(|a| perm.contains(&a));
                if valid && in_rank == 2 {
                    // A vector's only order: the same words.
                    self.push(name, op, Op::Reshape, vec![x], out, d, in_rank);
                    return Ok(());
                }
                if !valid {
                    return Err(fail(format!(
                        "perm {perm:?} of a rank-{in_rank} value: the batch must stay first (tokens [N, L, D] or heads [N, A, B, C])"
                    )));
                }
                // The held axes: tokens [L, D, 1] move L and D only.
                let mut q = [0, 1, 2];
                for (k, &a) in perm[1..].iter().enumerate() {
                    q[k] = a as usize - 1;
                }
                let dims = [d[q[0]], d[q[1]], d[q[2]]];
                if q == [0, 1, 2] {
                    (Op::Reshape, vec![x], dims)
                } else {
                    (Op::Transpose(q), vec![x], dims)
                }
            }
            other => {
                return Err(fail(format!(
                    "op `{other}` is not supported; supported: Conv, Gemm, MatMul, BatchNormalization, LayerNormalization, Relu, Clip, Sigmoid, HardSigmoid, HardSwish, Erf, Gelu, Tanh, Sqrt, Pow, Mul, Div, Sub, Add, MaxPool, AveragePool, GlobalAveragePool, ReduceMean, Flatten, Reshape, Transpose, Identity, Dropout, Concat, Pad, Softmax"
                )))
            }
        };
        self.push(name, op, op_node, inputs, out, dims, rank);
        Ok(())
    }

    /// Adds a node, its output's dims and rank.
    #[allow(clippy::too_many_arguments)] // a node's parts
    fn push(
        &mut self,
        name: String,
        op_type: &str,
        op: Op,
        inputs: Vec<String>,
        out: &str,
        dims: [usize; 3],
        rank: usize,
    ) {
        self.dims.insert(out.to_string(), dims);
        self.ranks.insert(out.to_string(), rank);
        self.nodes.push(Node {
            name,
            op_type: op_type.into(),
            op,
            inputs,
            output: out.to_string(),
            dims,
            rank,
        });
    }

    /// The dims of `x` and `y` combined value by value: the same rank, each dim equal or 1
    /// in one of them (numpy's broadcasting, between values of one rank).
    fn broadcast(&self, x: &str, y: &str) -> Result<[usize; 3], String> {
        let (dx, dy) = (self.dims[x], self.dims[y]);
        let (rx, ry) = (self.ranks[x], self.ranks[y]);
        let mut out = [0; 3];
        for k in 0..3 {
            out[k] = match (dx[k], dy[k]) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => 0,
            };
        }
        if rx != ry || out.contains(&0) {
            return Err(format!(
                "`{x}` ({dx:?}, rank {rx}) and `{y}` ({dy:?}, rank {ry}): expected values of one rank whose dims are equal or 1"
            ));
        }
        Ok(out)
    }

    /// A layer's bias: `m` values (`[M]`, `[1, M]`).
    fn bias(&self, b: &Init, m: usize) -> Result<Vec<f32>, String> {
        if b.floats.len() != m {
            return Err(format!(
                "bias of dims {:?}; expected {m} values, one a filter",
                b.dims
            ));
        }
        Ok(b.floats.clone())
    }
}

#[cfg(test)]
mod batchnorm_tests {
    use crate::{exec, Op};

    /// The folded model computes what the unfolded one does: each folded layer's weights
    /// divided back by its factor and the BatchNormalization applied after it on the host give
    /// the same float outputs (to float rounding) on random images.
    #[test]
    fn folding_computes_what_the_unfolded_network_does() {
        let bytes = crate::build::batchnorm_block();
        let folded = super::parse(&bytes, "bn.onnx").unwrap();
        let mut unfolded = folded.clone();
        let mut n_folded = 0;
        let names: Vec<String> = unfolded.nodes.iter().map(|n| n.name.clone()).collect();
        for k in 0..unfolded.nodes.len() {
            let Op::Affine(bn) = &unfolded.nodes[k].op else {
                continue;
            };
            let Some(layer) = bn.folded_into.clone() else {
                continue;
            };
            n_folded += 1;
            let (scale, shift) = (bn.scale.clone(), bn.shift.clone());
            let j = names.iter().position(|n| *n == layer).unwrap();
            let Op::Layer(l) = &mut unfolded.nodes[j].op else {
                panic!("folded into a node that is not a layer");
            };
            let m = l.layer.m as usize;
            let per = l.weights.len() / m;
            for (f, ws) in l.weights.chunks_mut(per).enumerate() {
                for w in ws {
                    *w = (*w as f64 / scale[f] as f64) as f32;
                }
            }
            let b = l.bias.take().unwrap();
            let orig: Vec<f32> = (0..m)
                .map(|f| ((b[f] as f64 - shift[f] as f64) / scale[f] as f64) as f32)
                .collect();
            l.bias = orig.iter().any(|&v| v.abs() > 1e-6).then_some(orig);
            l.folded = None;
            if let Op::Affine(bn) = &mut unfolded.nodes[k].op {
                bn.folded_into = None;
            }
        }
        assert_eq!(
            n_folded, 2,
            "bn_a and bn_b fold; bn_in has no layer before it"
        );
        let mut r = rowsim_workload::SplitMix64::new(9);
        let x = crate::FTensor {
            dims: [5, 4, 6, 6],
            data: (0..5 * 144)
                .map(|_| (r.next_f64() * 2.0 - 1.0) as f32)
                .collect(),
        };
        let a = exec::forward_float(&folded, &x).unwrap();
        let b = exec::forward_float(&unfolded, &x).unwrap();
        let (ya, yb) = (&a[&folded.output], &b[&unfolded.output]);
        for (p, q) in ya.data.iter().zip(&yb.data) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }
}

#[cfg(test)]
mod pool_tests {
    use crate::build::{int, ints, model, node, value};
    use crate::Op;

    /// Output sizes with `ceil_mode`, by hand (PyTorch's rule, which ONNX Runtime follows):
    /// 8 wide, window 3, stride 2: floor (8-3)/2+1 = 3, ceil 4. 5 wide, window 2, stride 2,
    /// padding 1 each side: ceil (7-2)/2+1 = 4, but the 4th window would start at 6 = 5 + 1,
    /// past the input and its leading padding: 3.
    #[test]
    fn ceil_mode_rounds_the_output_up_unless_a_window_starts_past_the_input() {
        let dims = |h: i64, k: i64, s: i64, p: i64, ceil: i64| {
            let bytes = model(
                vec![node(
                    "MaxPool",
                    "mp",
                    &["x"],
                    "y",
                    vec![
                        ints("kernel_shape", &[k, k]),
                        ints("strides", &[s, s]),
                        ints("pads", &[p, p, p, p]),
                        int("ceil_mode", ceil),
                    ],
                )],
                vec![],
                value("x", &[None, Some(1), Some(h), Some(h)]),
                value("y", &[None, Some(1), None, None]),
            );
            let m = super::parse(&bytes, "pool.onnx").unwrap();
            assert!(matches!(m.nodes[0].op, Op::MaxPool(_)));
            m.nodes[0].dims
        };
        assert_eq!(dims(8, 3, 2, 0, 0), [1, 3, 3]);
        assert_eq!(dims(8, 3, 2, 0, 1), [1, 4, 4]);
        assert_eq!(dims(5, 2, 2, 1, 0), [1, 3, 3]);
        assert_eq!(dims(5, 2, 2, 1, 1), [1, 3, 3]);
        assert_eq!(dims(6, 2, 2, 1, 1), [1, 4, 4]);
    }
}
