//! rowsim models: a trained network, imported from ONNX ([`onnx`]), run in fixed point with
//! its CONV and FC layers on the emulated chip and everything else on the host ([`exec`]), with
//! each layer's formats chosen from a calibration batch ([`quant`]).
//!
//! A model is a chain of [`Node`]s over named values. Every value is a batch of images, each
//! `[C][H][W]` (a vector of `K` values is `[K][1][1]`; a sequence of `L` tokens of `D` values,
//! ONNX's `[N, L, D]`, is `[L][D][1]`: the same words in the same order), so one [`Tensor`]
//! layout serves them all. Layers (`Conv`, `Gemm`, `MatMul`) become [`ConvLayer`]s: an FC layer
//! over a flattened `C x H x W` map is mapped the Eyeriss way, a CONV layer whose `H x W` filter
//! covers its input; one over a vector is `C = K`, `1 x 1`; one over tokens is the same FC layer
//! with the `N x L` tokens as its batch. A `MatMul` of two activations (attention's `Q K^T` and
//! `A V`) runs on the chip too, image by image: an FC layer whose batch is the first operand's
//! rows and whose filters are the second operand's columns.

pub mod build;
pub mod exec;
pub mod onnx;
pub mod prune;
pub mod quant;

use rowsim_workload::ConvLayer;

pub use onnx_protobuf as proto;
pub use protobuf;

pub use exec::{forward_fixed, forward_float, top1, ConvCall, FTensor};
pub use onnx::{load, parse};
pub use quant::{calibrate, Calibration, LayerFormats};

/// A model that was imported.
#[derive(Clone, Debug)]
pub struct Model {
    /// The file it came from (for messages).
    pub file: String,
    /// The graph input's name and one image's dims `[C, H, W]`, and its ONNX rank (4: images,
    /// 3: tokens `[N, L, D]` held as `[L, D, 1]`, 2: vectors `[N, K]` held as `[K, 1, 1]`).
    pub input: String,
    pub input_dims: [usize; 3],
    pub input_rank: usize,
    /// The batch the file fixes (`None`: symbolic, any batch).
    pub batch: Option<usize>,
    pub nodes: Vec<Node>,
    /// The graph output's name.
    pub output: String,
    /// How `rowsim prune` pruned it (its metadata), if it did.
    pub pruning: Option<String>,
}

/// One operation of the model.
#[derive(Clone, Debug)]
pub struct Node {
    /// The node's name in the file (or `OP_k` when it has none).
    pub name: String,
    /// The ONNX op it came from (`Conv`, `Gemm`, `MaxPool`, ...).
    pub op_type: String,
    pub op: Op,
    /// The values it reads (activations only; weights are in the op).
    pub inputs: Vec<String>,
    pub output: String,
    /// One image's output dims `[C, H, W]`.
    pub dims: [usize; 3],
    /// The output's ONNX rank, batch included (4, 3 or 2; see [`Model::input_rank`]): which
    /// axis is the last one.
    pub rank: usize,
}

impl Node {
    /// A product's heads, rows and columns (`G, P, M` of [`Op::MatMul`]) from its output.
    pub fn matmul_shape(&self) -> (usize, usize, usize) {
        let [c, h, w] = self.dims;
        if self.rank == 4 {
            (c, h, w)
        } else {
            (1, c, h)
        }
    }

    /// The length of the output's last ONNX axis (`W` of an image, `D` of tokens, `K` of a
    /// vector); the values along it lie side by side except in an image.
    pub fn last_axis(&self) -> usize {
        last_axis(self.dims, self.rank)
    }
}

/// The feature (channel, or filter) that value `k` of a batch of `dims` belongs to: its channel
/// of an image or vector, or with `last_axis` its position on the last axis of tokens.
pub fn feature_index(k: usize, dims: [usize; 3], last_axis: bool) -> usize {
    let [c, h, w] = dims;
    if last_axis {
        (k / w) % h
    } else {
        (k / (h * w)) % c
    }
}

/// The length of the last ONNX axis of a value of `dims` and `rank`.
pub fn last_axis(dims: [usize; 3], rank: usize) -> usize {
    match rank {
        2 => dims[0],
        3 => dims[1],
        _ => dims[2],
    }
}

/// What a node does.
#[derive(Clone, Debug)]
pub enum Op {
    /// A CONV or FC layer: on the chip.
    Layer(Box<LayerOp>),
    /// `max(x, 0)` (a no-op when the layer before it applied ReLU at its readout).
    Relu {
        fused: bool,
    },
    MaxPool(Pool),
    AvgPool(Pool),
    /// Flatten or Reshape to `[N, K]`, Identity, Dropout: the same values.
    Reshape,
    /// Two values of the same dims added (a residual connection).
    Add,
    /// Two values combined value by value, either broadcast along axes where its size is 1
    /// (`[L, 1, 1]` against `[L, D, 1]`), on the host.
    Binary(Bin),
    /// Softmax over one axis, or (before opset 13) the axes from one to the last as one.
    Softmax(Axes),
    /// LayerNormalization over the last axis of tokens (or a vector): `(x - mean) /
    /// sqrt(var + epsilon) * scale + shift`, on the host.
    LayerNorm(Box<LayerNorm>),
    /// The mean over the last axis, kept as an axis of 1 (`ReduceMean`), on the host.
    ReduceMean,
    /// The axes of each image moved (`Transpose`; the batch stays first): output axis `k` is
    /// input axis `perm[k]` of the held `[C, H, W]` (tokens `[L, D]` as `[D, L]`, attention
    /// heads `[L, H, D/H]` as `[H, L, D/H]`), on the host.
    Transpose([usize; 3]),
    /// A product of two activations, `[P, K] x [K, M]` per image (`MatMul`; of rank 4,
    /// `[G, P, K] x [G, K, M]`: one product per attention head `G`), on the chip as an FC layer
    /// (`C = K`, `M` filters, the `P` rows its batch; the layer here is for one row: a run sets
    /// the batch), image by image and head by head.
    MatMul(Box<ConvLayer>),
    /// `min(max(x, min), max)` (ReLU6 is Clip to 0..6), on the host.
    Clip {
        min: f32,
        max: f32,
    },
    /// A per-channel affine map `x * scale[c] + shift[c]` (BatchNormalization, or `Mul`,
    /// `Div`, `Sub`, `Add` of a constant), or the same values when it is folded into the layer
    /// before it.
    Affine(Box<Affine>),
    /// A function of each value on its own, on the host.
    Map(Fun),
    /// The inputs side by side on the channel axis (`Concat`, axis 1), on the host.
    Concat,
    /// Constant padding of the map: top, left, bottom, right, and the value (`Pad`), on the
    /// host.
    Pad {
        pads: [usize; 4],
        value: f32,
    },
}

/// A run of axes of each image's held `[C, H, W]`, `first` to `last` inclusive (tokens `[L,
/// D]` are held as `[L, D, 1]`, a vector as `[K, 1, 1]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axes {
    pub first: usize,
    pub last: usize,
}

impl Axes {
    /// Whether one group along these axes holds all of an image's values (of `dims`).
    pub fn covers(self, dims: [usize; 3]) -> bool {
        dims.iter()
            .enumerate()
            .all(|(k, &d)| d == 1 || (self.first..=self.last).contains(&k))
    }

    /// Calls `f` with the indices (within all `n` images of `dims`) of each group of values
    /// that lie along these axes, every other index fixed, in order.
    pub fn groups(self, n: usize, dims: [usize; 3], mut f: impl FnMut(&[usize])) {
        let outer: usize = n * dims[..self.first].iter().product::<usize>();
        let mid: usize = dims[self.first..=self.last].iter().product();
        let inner: usize = dims[self.last + 1..].iter().product();
        let mut idx = Vec::with_capacity(mid);
        for o in 0..outer {
            for i in 0..inner {
                idx.clear();
                idx.extend((0..mid).map(|m| (o * mid + m) * inner + i));
                f(&idx);
            }
        }
    }
}

/// How [`Op::Binary`] combines two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bin {
    Add,
    Sub,
    Mul,
    Div,
}

/// LayerNormalization's parameters, one per value of the last axis.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub epsilon: f32,
}

impl LayerNorm {
    /// One row of the last axis normalized (in f64, as both the float model and the
    /// fixed-point host compute it), each value passed to `put`.
    pub fn row(&self, x: &[f64], mut put: impl FnMut(usize, f64)) {
        let d = x.len().max(1) as f64;
        let mean = x.iter().sum::<f64>() / d;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d;
        let inv = 1.0 / (var + self.epsilon as f64).sqrt();
        for (k, v) in x.iter().enumerate() {
            put(
                k,
                (v - mean) * inv * self.scale[k] as f64 + self.shift[k] as f64,
            );
        }
    }
}

/// A function applied to each value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fun {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `max(0, min(1, alpha x + beta))`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * max(0, min(1, x / 6 + 1 / 2))` (MobileNet-v3's).
    HardSwish,
    /// The error function.
    Erf,
    /// `x * Phi(x)` (`Gelu`, `approximate = "none"`), or with `tanh`, `x / 2 * (1 +
    /// tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`.
    Gelu {
        tanh: bool,
    },
    Tanh,
    /// The square root (NaN, stored as 0, for a negative value).
    Sqrt,
    /// `x^p` for a constant exponent.
    Pow(f32),
}

impl Fun {
    /// The function in f64 (as the float model and the fixed-point host both compute it).
    pub fn at(self, x: f64) -> f64 {
        match self {
            Fun::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Fun::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            Fun::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Fun::Erf => erf(x),
            Fun::Gelu { tanh: false } => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Fun::Gelu { tanh: true } => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
            Fun::Tanh => x.tanh(),
            Fun::Sqrt => x.sqrt(),
            Fun::Pow(p) => x.powf(p as f64),
        }
    }
}

/// The error function in f64 (the `libm` crate's port of musl's `erf`, within an ulp).
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// A per-channel affine map. For a BatchNormalization `scale = gamma / sqrt(var + epsilon)`
/// and `shift = beta - mean * scale` (in f64, stored as f32); for `Mul` by `k` the scale `k`,
/// `Div` by `k` the scale `1 / k`, `Sub` or `Add` of `k` the shift `-k` or `k`.
#[derive(Clone, Debug)]
pub struct Affine {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    /// The layer node it was folded into (its weights times `scale`, its bias
    /// `bias * scale + shift`): the node itself then passes its input on.
    pub folded_into: Option<String>,
    /// One value per position of the last axis of tokens (`[D]` added to `[N, L, D]`), not
    /// per channel.
    pub last_axis: bool,
}

impl Affine {
    /// The parameter index of value `k` of an image of `dims`.
    pub fn index(&self, k: usize, dims: [usize; 3]) -> usize {
        feature_index(k, dims, self.last_axis)
    }
}

/// A pooling window (`global`: the whole map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Top, left, bottom, right.
    pub pads: [usize; 4],
    /// AveragePool: whether padding counts in the divisor.
    pub count_include_pad: bool,
    /// `ceil_mode`: the output size rounded up (a last window may run past the padded map).
    pub ceil: bool,
}

/// A CONV or FC layer and its trained parameters.
#[derive(Clone, Debug)]
pub struct LayerOp {
    /// The layer for one image (`n = 1`); a run sets the batch.
    pub layer: ConvLayer,
    /// `[M][C/G][R][S]`, row-major.
    pub weights: Vec<f32>,
    /// One a filter, added after the layer (on the host).
    pub bias: Option<Vec<f32>>,
    /// ReLU at the chip's readout (a Relu right after a layer without bias).
    pub relu: bool,
    /// Whether it is an FC layer (from Gemm or MatMul).
    pub fc: bool,
    /// The initializer the weights came from, and whether it holds them transposed (`[K, M]`:
    /// Gemm with `transB = 0`, MatMul), for writing them back ([`crate::prune`]).
    pub weight_init: String,
    pub transposed: bool,
    /// The per-filter factor of a BatchNormalization folded into the weights (the
    /// initializer holds the weights before it).
    pub folded: Option<Vec<f32>>,
    /// Tokens per image when it runs over a sequence (`[N, L, K] x [K, M]`: the layer's
    /// batch is `N x L`), else 1.
    pub tokens: usize,
}

impl Model {
    /// The fraction of nonzero weights over every layer.
    pub fn weight_density(&self) -> f64 {
        let (mut nz, mut all) = (0usize, 0usize);
        for (_, l) in self.layers() {
            nz += l.weights.iter().filter(|&&v| v != 0.0).count();
            all += l.weights.len();
        }
        if all == 0 {
            1.0
        } else {
            nz as f64 / all as f64
        }
    }

    /// The nodes that run on the chip.
    pub fn layers(&self) -> impl Iterator<Item = (&Node, &LayerOp)> {
        self.nodes.iter().filter_map(|n| match &n.op {
            Op::Layer(l) => Some((n, l.as_ref())),
            _ => None,
        })
    }

    /// Every layer the chip runs for one image, as the chip runs it: a CONV or FC layer (over
    /// tokens, with the image's tokens as its batch), and a product of two activations (its
    /// batch the first operand's rows).
    pub fn chip_layers(&self) -> impl Iterator<Item = (&Node, ConvLayer)> {
        self.nodes.iter().filter_map(|n| match &n.op {
            Op::Layer(l) => Some((n, l.layer.clone().with_batch(l.tokens as u32))),
            Op::MatMul(l) => Some((n, l.as_ref().clone().with_batch(n.matmul_shape().1 as u32))),
            _ => None,
        })
    }

    /// The node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The value the top-1 prediction is read from: the input of a final Softmax over all of
    /// an image's values (softmax is monotonic there, and 16-bit probabilities could tie where
    /// the logits do not), else the output.
    pub fn logits(&self) -> &str {
        match self.nodes.last() {
            Some(n) if n.output == self.output => match n.op {
                Op::Softmax(a) if a.covers(n.dims) => &n.inputs[0],
                _ => &self.output,
            },
            _ => &self.output,
        }
    }
}

/// Why a model could not be imported or run: the file, the node and its op where there is one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{why}", match (node, op) {
    (Some(n), Some(o)) => format!("node `{n}` ({o}): "),
    (Some(n), None) => format!("`{n}`: "),
    _ => String::new(),
})]
pub struct ModelError {
    pub file: String,
    pub node: Option<String>,
    pub op: Option<String>,
    pub why: String,
}
