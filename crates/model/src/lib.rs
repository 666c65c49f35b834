//! rowsim models: a trained network, imported from ONNX ([`onnx`]), run in fixed point with
//! its CONV and FC layers on the emulated chip and everything else on the host ([`exec`]), with
//! each layer's formats chosen from a calibration batch ([`quant`]).
//!
//! A model is a chain of [`Node`]s over named values. Every value is a batch of images, each
//! `[C][H][W]` (a vector of `K` values is `[K][1][1]`), so one [`Tensor`] layout serves them all.
//! Layers (`Conv`, `Gemm`, `MatMul`) become [`ConvLayer`]s: an FC layer over a flattened
//! `C x H x W` map is mapped the Eyeriss way, a CONV layer whose `H x W` filter covers its input;
//! one over a vector is `C = K`, `1 x 1`.

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
    /// The graph input's name and one image's dims `[C, H, W]`.
    pub input: String,
    pub input_dims: [usize; 3],
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
    /// Softmax over the `K` values of a vector.
    Softmax,
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

/// A function applied to each value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fun {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `max(0, min(1, alpha x + beta))`.
    HardSigmoid { alpha: f32, beta: f32 },
    /// `x * max(0, min(1, x / 6 + 1 / 2))` (MobileNet-v3's).
    HardSwish,
}

impl Fun {
    /// The function in f64 (as the float model and the fixed-point host both compute it).
    pub fn at(self, x: f64) -> f64 {
        match self {
            Fun::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Fun::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            Fun::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        }
    }
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

    /// The node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The value the top-1 prediction is read from: the input of a final Softmax (softmax is
    /// monotonic, and 16-bit probabilities could tie where the logits do not), else the output.
    pub fn logits(&self) -> &str {
        match self.nodes.last() {
            Some(n) if matches!(n.op, Op::Softmax) && n.output == self.output => &n.inputs[0],
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
