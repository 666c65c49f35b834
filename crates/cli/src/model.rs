//! `rowsim run --net model.onnx`: a trained model on the emulated chip, image batch by image
//! batch: its CONV and FC layers on the chip (split where they are beyond its limits), the
//! rest on the host in the same fixed-point formats; top-1 accuracy beside the float model's,
//! energy and latency per inference, and every layer's output checked bit for bit against the
//! fixed-point reference of the whole network.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use rowsim_chip::{run_split, ChipError, LayerStats, RunOptions};
use rowsim_kernel::SimError;
use rowsim_mapper::{Mapping, Split};
use rowsim_model::{
    calibrate, forward_fixed, forward_float, top1, Bin, Calibration, FTensor, Model, Op,
};
use rowsim_workload::{reference_conv, ConvLayer, SplitMix64, Tensor};
use serde::Serialize;

use crate::drive::{ctrl_c_flag, EXIT_INTERRUPTED};
use crate::run::{choose, write_json, RunArgs};

/// Whether `--net` names an ONNX model.
pub fn is_onnx(spec: &str) -> bool {
    Path::new(spec)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Loads a model, naming the file in errors.
pub fn load(path: &Path) -> anyhow::Result<Model> {
    rowsim_model::load(path).map_err(|e| anyhow!("{e}"))
}

/// The model's chip layers as layer shapes for one image (a layer over tokens: the image's
/// tokens its batch; a product of two activations: the first operand's rows): what `map`,
/// `compare` and `sweep` price.
pub fn layers(path: &Path) -> anyhow::Result<Vec<ConvLayer>> {
    Ok(load(path)?.chip_layers().map(|(_, l)| l).collect())
}

/// One of a model's chip layers by node name (`model.onnx:conv1`), for one image.
pub fn layer(path: &Path, node: &str) -> anyhow::Result<ConvLayer> {
    let m = load(path)?;
    let names: Vec<&str> = m.chip_layers().map(|(n, _)| n.name.as_str()).collect();
    let found = m
        .chip_layers()
        .find(|(n, _)| n.name == node)
        .map(|(_, l)| l);
    found.ok_or_else(|| {
        anyhow!(
            "{}: no node `{node}` that runs on the chip; its layers: {}",
            path.display(),
            names.join(", ")
        )
    })
}

/// A `.npy` dtype as its type string (`<f4`, `|u1`).
fn plain(d: &npyz::DType) -> String {
    match d {
        npyz::DType::Plain(t) => t.to_string(),
        other => other.descr(),
    }
}

/// `model.onnx:NODE` split into the file and the node, when the spec names a model's layer.
pub fn node_spec(spec: &str) -> Option<(PathBuf, String)> {
    let (file, node) = spec.rsplit_once(':')?;
    is_onnx(file).then(|| (PathBuf::from(file), node.to_string()))
}

/// A model layer's data for `run --layer model.onnx:NODE`.
pub struct NodeData {
    pub data: crate::run::Data,
    pub mac: rowsim_datapath::mac::MacConfig,
    /// ReLU at the readout (the model's Relu fused into the layer).
    pub relu: bool,
    /// Where the data came from, for the output.
    pub source: String,
}

/// The layer `node` of a model with its own quantized weights, in its calibrated formats, on
/// the activations the model makes of its first `layer.n` calibration images (`calib_x.npy`
/// beside it; else images uniform in 0..1 from seed 1), computed in fixed point through the
/// layers before it (the reference convolution).
pub fn node_data(path: &Path, node: &str, layer: &ConvLayer) -> anyhow::Result<NodeData> {
    let model = load(path)?;
    // The layer's batch in images: a layer over tokens takes an image's tokens at a time; a
    // product of two activations runs one image (its batch is that image's rows).
    let (per_image, one_image) = match model.node(node).map(|n| &n.op) {
        Some(rowsim_model::Op::Layer(l)) => (l.tokens, false),
        Some(rowsim_model::Op::MatMul(_)) => {
            (model.node(node).map_or(1, |n| n.matmul_shape().1), true)
        }
        _ => (1, false),
    };
    let rows = layer.n as usize;
    if !rows.is_multiple_of(per_image) || (one_image && rows != per_image) {
        let (how, want) = if one_image {
            (
                format!("image by image (its batch is an image's {per_image} rows)"),
                format!("is not {per_image}"),
            )
        } else {
            (
                format!("over tokens ({per_image} an image)"),
                format!("is not a multiple of {per_image}"),
            )
        };
        bail!(
            "{}: `{node}` runs {how}: --batch {rows} {want}",
            path.display()
        );
    }
    let n = rows / per_image;
    let (calib, what) = match model_dir_calibration(path) {
        Some(p) => (read_images(&p, &model)?, p.display().to_string()),
        None => (
            synthetic_images(&model, 64.max(n), 1)?,
            "synthetic images (uniform 0..1, seed 1)".to_string(),
        ),
    };
    if calib.dims[0] < n {
        bail!(
            "{}: {what} holds {} images; --batch {n} needs as many",
            path.display(),
            calib.dims[0]
        );
    }
    let cal = calibrate(&model, &calib).map_err(|e| anyhow!("{e}"))?;
    let x = calib.slice(0, n);
    let mut found = None;
    let result = forward_fixed(&model, &cal, &x, &mut |c| {
        if c.node.name == node {
            found = Some((c.ifmap.clone(), c.weights.clone(), c.mac, c.relu));
            // Nothing after it is needed.
            return Err("found".into());
        }
        reference_conv(c.layer, c.ifmap, c.weights, c.mac, c.relu).map(|r| r.0)
    });
    let Some((ifmap, weights, mac, relu)) = found else {
        result.map_err(|e| anyhow!("{e}"))?;
        bail!("{}: no node `{node}` that runs on the chip", path.display());
    };
    let f = cal
        .layer(node)
        .ok_or_else(|| anyhow!("{node}: not calibrated"))?;
    Ok(NodeData {
        data: crate::run::Data {
            layer: layer.clone(),
            ifmap,
            weights: rowsim_workload::Weights::Held(std::borrow::Cow::Owned(weights)),
        },
        mac,
        relu,
        source: format!(
            "{node} of {}: its weights (Q{}.{}) on the activations of the first {n} of {what}, ifmap Q{}.{}, psums Q{}.{}, product shift {}",
            path.display(),
            16 - f.weight_frac,
            f.weight_frac,
            16 - f.ifmap_frac,
            f.ifmap_frac,
            16 - f.psum_frac,
            f.psum_frac,
            f.shift
        ),
    })
}

/// Reads a float `.npy` (float32 or float64) of images `[N, ...]` whose image dims are `want`
/// (`[C, H, W]`, or `[K]` for a vector input of `[K, 1, 1]`).
pub fn read_images(path: &Path, model: &Model) -> anyhow::Result<FTensor> {
    let (want, rank) = (model.input_dims, model.input_rank);
    let file = crate::npy::Npy::read(path)?;
    let npy = file.file();
    let shape: Vec<u64> = npy.shape().to_vec();
    let order = npy.order();
    // One image's shape as ONNX has it: [C, H, W], [L, D] (held as [L, D, 1]) or [K].
    let onnx: Vec<u64> = want[..rank - 1].iter().map(|&d| d as u64).collect();
    if shape.len() != rank || shape[1..] != onnx[..] || shape[0] == 0 {
        let dims: Vec<String> = onnx.iter().map(|d| d.to_string()).collect();
        let what = match rank {
            3 => "sequences of tokens",
            2 => "vectors",
            _ => "images",
        };
        bail!(
            "{}: shape {shape:?}; the model takes {what} of [N, {}] (N at least 1)",
            path.display(),
            dims.join(", ")
        );
    }
    let want64: Vec<u64> = want.iter().map(|&d| d as u64).collect();
    let n = shape[0];
    let total = n.saturating_mul(want64.iter().product::<u64>());
    if total > rowsim_workload::MAX_TENSOR_ELEMENTS {
        bail!(
            "{}: {total} values is above the limit {}",
            path.display(),
            rowsim_workload::MAX_TENSOR_ELEMENTS
        );
    }
    let descr = plain(&npy.dtype());
    // Either byte order, as numpy reads them.
    let data: Vec<f32> = match descr.as_str() {
        "<f4" | ">f4" => npy.into_vec::<f32>()?,
        "<f8" | ">f8" => npy
            .into_vec::<f64>()?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "<f2" | ">f2" => file.halves(total as usize, descr.starts_with('>')),
        other => bail!(
            "{}: dtype {other}; expected float16, float32 or float64 images",
            path.display()
        ),
    };
    let data = crate::npy::row_major(data, &shape, order);
    if data.iter().any(|v| !v.is_finite()) {
        bail!("{}: holds a NaN or an infinity", path.display());
    }
    Ok(FTensor {
        dims: [n as usize, want[0], want[1], want[2]],
        data,
    })
}

/// Reads integer class labels (any integer dtype), one per image.
pub fn read_labels(path: &Path, images: usize) -> anyhow::Result<Vec<i64>> {
    let file = crate::npy::Npy::read(path)?;
    let npy = file.file();
    let shape = npy.shape().to_vec();
    if shape.len() != 1 || shape[0] != images as u64 {
        bail!(
            "{}: shape {shape:?}; expected one label per image: [{images}]",
            path.display()
        );
    }
    let descr = plain(&npy.dtype());
    let labels: Vec<i64> = match &descr[1..] {
        "i8" => npy.into_vec::<i64>()?,
        "i4" => npy.into_vec::<i32>()?.into_iter().map(i64::from).collect(),
        "i2" => npy.into_vec::<i16>()?.into_iter().map(i64::from).collect(),
        "i1" => npy.into_vec::<i8>()?.into_iter().map(i64::from).collect(),
        "u1" => npy.into_vec::<u8>()?.into_iter().map(i64::from).collect(),
        _ => bail!(
            "{}: dtype {descr}; expected integer class labels",
            path.display()
        ),
    };
    Ok(labels)
}

/// Synthetic images, uniform in [0, 1) from the seed (when no `--input` is given).
/// Refused above the tensor limit, before anything is allocated.
fn synthetic_images(model: &Model, n: usize, seed: u64) -> anyhow::Result<FTensor> {
    let [c, h, w] = model.input_dims;
    let total = [n, c, h, w]
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&t| t <= rowsim_workload::MAX_TENSOR_ELEMENTS)
        .ok_or_else(|| {
            anyhow!(
                "{}: {n} synthetic images of [{c}, {h}, {w}] are more than {} values (the tensor limit); use a smaller --batch",
                model.file,
                rowsim_workload::MAX_TENSOR_ELEMENTS
            )
        })?;
    let mut rng = SplitMix64::new(seed);
    Ok(FTensor {
        dims: [n, c, h, w],
        data: (0..total).map(|_| rng.next_f64() as f32).collect(),
    })
}

/// How one node runs, for the output and the statistics.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub op: String,
    /// `chip` or `host`.
    pub on: &'static str,
    /// Fraction bits of its input(s) and output (16-bit words).
    pub in_frac: Vec<u32>,
    pub out_frac: u32,
    /// Layers: the weights' fraction bits and the MAC's product shift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_frac: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<u32>,
    pub note: String,
}

fn node_reports(model: &Model, cal: &Calibration) -> Vec<NodeReport> {
    model
        .nodes
        .iter()
        .map(|n| {
            let in_frac = n.inputs.iter().map(|v| cal.frac(v)).collect();
            let out_frac = cal.frac(&n.output);
            let mut r = NodeReport {
                name: n.name.clone(),
                op: n.op_type.clone(),
                on: "host",
                in_frac,
                out_frac,
                weight_frac: None,
                shift: None,
                note: String::new(),
            };
            r.note = match &n.op {
                Op::Layer(l) => {
                    let f = cal.layer(&n.name);
                    r.on = "chip";
                    r.weight_frac = f.map(|f| f.weight_frac);
                    r.shift = f.map(|f| f.shift);
                    let mut s = format!("{} layer {}", if l.fc { "FC" } else { "CONV" }, l.layer);
                    if l.tokens > 1 {
                        s += &format!(" over {} tokens an image (the layer's batch is N x {})", l.tokens, l.tokens);
                    }
                    if l.bias.is_some() {
                        s += "; bias added on the host (saturating)";
                    }
                    if l.relu {
                        s += "; ReLU at the chip's readout";
                    }
                    if l.folded.is_some() {
                        s += "; the per-channel affine map after it (BatchNormalization, Mul, Div, Sub, Add) folded into its weights and bias (f64)";
                    }
                    s
                }
                Op::Affine(bn) => match &bn.folded_into {
                    Some(layer) => format!(
                        "folded into `{}`: its weights times the scale, its bias times the scale plus the shift (f64); the same words",
                        rowsim_workload::printable(layer)
                    ),
                    None => {
                        let (fs, _, _) = rowsim_model::exec::affine_words(bn, out_frac);
                        format!(
                            "x * scale (Q{}.{fs}) rescaled to the output format (rounded), + shift; saturated",
                            16 - fs
                        )
                    }
                },
                Op::Relu { fused: true } => "fused: the layer before applied it on the chip".into(),
                Op::Relu { fused: false } => "max(x, 0)".into(),
                Op::Map(f) => format!(
                    "{f:?} of each value in f64, rounded to the output's format, saturating"
                ),
                Op::Concat => {
                    "inputs rescaled to the output format (rounded, saturating), side by side on the channel axis".into()
                }
                Op::Pad { pads, value } => format!(
                    "pads {pads:?} (top, left, bottom, right) of {value}, in the input's format"
                ),
                Op::Clip { min, max } => format!(
                    "clamp to [{min}, {max}] in the input's format (bounds rounded, saturating)"
                ),
                Op::MaxPool(p) => format!(
                    "{:?} window, stride {:?}, pads {:?}",
                    p.kernel, p.stride, p.pads
                ),
                Op::AvgPool(p) => format!(
                    "{:?} window, stride {:?}, pads {:?}; sum / count rounded to nearest (ties up)",
                    p.kernel, p.stride, p.pads
                ),
                Op::Reshape => "the same words".into(),
                Op::Add => "inputs rescaled to the output format, added, saturated".into(),
                Op::MatMul(l) => {
                    let f = cal.layer(&n.name);
                    r.on = "chip";
                    r.weight_frac = f.map(|f| f.weight_frac);
                    r.shift = f.map(|f| f.shift);
                    let (g, p, m) = n.matmul_shape();
                    format!(
                        "a product of two activations, image by image{}: FC layer {} with the first operand's {p} rows as its batch, the second's {m} columns as its filters (its words, transposed, rescaled to the weight format)",
                        if g > 1 { format!(" and head by head ({g} heads)") } else { String::new() },
                        l
                    )
                }
                Op::Binary(b) => match b {
                    Bin::Add | Bin::Sub => "inputs rescaled to the output format, added or subtracted, saturated",
                    Bin::Mul => "the exact product rescaled to the output format (rounded), saturated",
                    Bin::Div => "the quotient in f64, rounded to the output format, saturating (x / 0 saturates)",
                }
                .to_string(),
                Op::LayerNorm(ln) => format!(
                    "over the last axis in f64 (epsilon {}), rounded to the output format, saturating",
                    ln.epsilon
                ),
                Op::ReduceMean => "the exact sum over the last axis / its length, rounded to nearest (ties up)".into(),
                Op::Transpose(perm) => format!(
                    "the same words, each image's held axes [C, H, W] moved to {perm:?}"
                ),
                Op::Softmax(_) => {
                    "in f64 from the logits, rounded to Q1.15 (1.0 saturates to 32767)".into()
                }
            };
            r
        })
        .collect()
}

/// Top-1 accuracy and more, as the statistics report them.
#[derive(Clone, Debug, Serialize)]
pub struct Accuracy {
    /// Top-1 accuracy of the chip's outputs (None without labels).
    pub chip: Option<f64>,
    /// The float model's: computed by rowsim from the ONNX model, or given.
    pub float: Option<f64>,
    pub float_source: String,
    /// The share of images on which the chip's top-1 equals the float model's.
    pub agreement_with_float: Option<f64>,
}

/// Network totals and per inference.
#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    pub energy: f64,
    pub unit: String,
    pub core_cycles: u64,
    pub macs: u64,
    pub dram_bytes: u64,
    pub time_ms: f64,
    /// Energy over images.
    pub energy_per_inference: f64,
    /// Core cycles over images (throughput).
    pub core_cycles_per_inference: f64,
    /// An image's latency: its batch's chip time (layer after layer; host ops not timed),
    /// averaged over batches, in core cycles and ms.
    pub latency_cycles: f64,
    pub latency_ms: f64,
}

/// The statistics of a model run.
#[derive(Clone, Debug, Serialize)]
pub struct ModelStats {
    pub model: String,
    pub hw: String,
    /// The fraction of nonzero weights over every layer, and how the model was pruned (by
    /// `rowsim prune`; `dense` when it was not).
    pub weight_density: f64,
    pub pruning: String,
    pub images: usize,
    pub batch: usize,
    pub calibration: String,
    /// Whether every layer's output equals the fixed-point reference network's.
    pub bit_exact: bool,
    pub accuracy: Accuracy,
    pub totals: Totals,
    pub nodes: Vec<NodeReport>,
    /// Each image's top-1 class from the chip's outputs.
    pub predictions: Vec<usize>,
    /// Each image's top-1 class from rowsim's float model (when it computed the float
    /// accuracy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_predictions: Option<Vec<usize>>,
    /// Per layer, summed over the batches.
    pub layers: Vec<LayerStats>,
}

/// A progress bar over images (stderr, a terminal, not `--quiet`).
fn image_bar(n: usize, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::with_draw_target(
        Some(n as u64),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "images [{bar:30}] {pos}/{len} ({elapsed}, ETA {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    Some(b)
}

/// `calib_x.npy` beside the model, if there is one: the calibration images it ships with.
fn model_dir_calibration(model: &Path) -> Option<PathBuf> {
    let p = model.with_file_name("calib_x.npy");
    p.is_file().then_some(p)
}

/// What a model run has done so far, for its statistics (written after each batch, so an
/// interrupted run keeps every finished batch) and its summary.
struct Done<'a> {
    model: &'a Model,
    hw: &'a rowsim_config::HwConfig,
    a: &'a RunArgs,
    batch: usize,
    calib: String,
    nodes: &'a [NodeReport],
    labels: Option<&'a [i64]>,
    float_pred: Option<&'a [usize]>,
    predictions: &'a [usize],
    order: &'a [String],
    per_layer: &'a BTreeMap<String, LayerStats>,
    batches: u64,
    latency_cycles: u64,
    bit_exact: bool,
}

impl Done<'_> {
    fn stats(&self) -> ModelStats {
        let Done {
            model,
            hw,
            a,
            batch,
            labels,
            float_pred,
            predictions,
            batches,
            latency_cycles,
            bit_exact,
            ..
        } = *self;
        let done = predictions.len();
        let share = |k: usize| {
            if done > 0 {
                Some(k as f64 / done as f64)
            } else {
                None
            }
        };
        let chip_acc = labels.and_then(|y| {
            share(
                predictions
                    .iter()
                    .zip(y)
                    .filter(|(p, y)| **p as i64 == **y)
                    .count(),
            )
        });
        let (float_acc, float_source, agreement) = match (float_pred, a.float_accuracy) {
            (_, Some(f)) => (Some(f), "given (--float-accuracy)".to_string(), None),
            (Some(fp), None) => (
                labels.and_then(|y| {
                    share(
                        fp[..done]
                            .iter()
                            .zip(y)
                            .filter(|(p, y)| **p as i64 == **y)
                            .count(),
                    )
                }),
                "computed by rowsim from the ONNX model (f64 sums)".to_string(),
                share(
                    fp[..done]
                        .iter()
                        .zip(predictions)
                        .filter(|(a, b)| a == b)
                        .count(),
                ),
            ),
            (None, None) => (None, String::new(), None),
        };
        let layers: Vec<LayerStats> = self
            .order
            .iter()
            .filter_map(|n| self.per_layer.get(n).cloned())
            .collect();
        let unit = layers
            .first()
            .map(|l| l.energy.unit.clone())
            .unwrap_or_default();
        let energy: f64 = layers.iter().map(|l| l.energy.total).sum();
        let core_cycles: u64 = layers.iter().map(|l| l.cycles.core_total).sum();
        let per = |v: f64| if done > 0 { v / done as f64 } else { 0.0 };
        let lat = if batches > 0 {
            latency_cycles as f64 / batches as f64
        } else {
            0.0
        };
        let ms = |cycles: f64| cycles * 1e3 / hw.clocks.core_hz as f64;
        let totals = Totals {
            energy,
            unit: unit.clone(),
            core_cycles,
            macs: layers.iter().map(|l| l.macs.total).sum(),
            dram_bytes: layers
                .iter()
                .map(|l| l.dram_bytes.read + l.dram_bytes.write)
                .sum(),
            time_ms: ms(core_cycles as f64),
            energy_per_inference: per(energy),
            core_cycles_per_inference: per(core_cycles as f64),
            latency_cycles: lat,
            latency_ms: ms(lat),
        };
        ModelStats {
            model: model.file.clone(),
            hw: hw.machine.name.clone(),
            weight_density: model.weight_density(),
            pruning: model.pruning.clone().unwrap_or_else(|| "dense".into()),
            images: done,
            batch,
            calibration: self.calib.clone(),
            bit_exact,
            accuracy: Accuracy {
                chip: chip_acc,
                float: float_acc,
                float_source,
                agreement_with_float: agreement,
            },
            totals,
            nodes: self.nodes.to_vec(),
            predictions: predictions.to_vec(),
            float_predictions: float_pred.map(|f| f[..done].to_vec()),
            layers,
        }
    }
}

pub fn run(a: &RunArgs, net: &str) -> anyhow::Result<ExitCode> {
    let hw = rowsim_config::load_spec(&a.layer.hw).map_err(|e| anyhow!("{e}"))?;
    let path = Path::new(net);
    let model = load(path)?;
    // The chip's N: --batch, else the batch the model fixes, else 16.
    let batch = a
        .layer
        .batch
        .map(|b| b as usize)
        .or(model.batch)
        .unwrap_or(16);
    if batch == 0 {
        bail!("--batch: at least 1 image");
    }
    let x = match &a.input {
        Some(p) => read_images(p, &model)?,
        None => synthetic_images(&model, batch, a.layer.seed)?,
    };
    let images = x.dims[0];
    if let Some(b) = model.batch {
        if b != batch {
            bail!(
                "{}: the model fixes the batch at {b}; run it with --batch {b}",
                model.file
            );
        }
        if images % b != 0 {
            bail!(
                "{}: the model fixes the batch at {b}; {images} images are not a multiple",
                model.file
            );
        }
    }
    let labels = match &a.labels {
        Some(p) => Some(read_labels(p, images)?),
        None => None,
    };
    let (calib, calib_src) = match &a.calibration {
        Some(p) => (read_images(p, &model)?, format!("{}", p.display())),
        None if model_dir_calibration(path).is_some() => {
            let p = model_dir_calibration(path).unwrap_or_default();
            (
                read_images(&p, &model)?,
                format!("{} (beside the model)", p.display()),
            )
        }
        None => {
            let k = images.min(64);
            (
                x.slice(0, k),
                format!(
                    "the first {k} images of {}",
                    a.input
                        .as_ref()
                        .map_or("the synthetic input".into(), |p| p.display().to_string())
                ),
            )
        }
    };
    if let Some(p) = &a.stats_json {
        crate::run::check_outputs(&[(p.clone(), "statistics (--stats-json)")], &[path.into()])?;
    }
    let cal = calibrate(&model, &calib).map_err(|e| anyhow!("{e}"))?;
    let nodes = node_reports(&model, &cal);
    eprintln!(
        "{}: {} nodes, {} on the chip; formats from {} ({} images):",
        model.file,
        model.nodes.len(),
        model.layers().count(),
        calib_src,
        cal.images
    );
    for r in &nodes {
        eprintln!(
            "  {:<12} {:<18} {:<4} in Q{} out Q{}{}  {}",
            r.name,
            r.op,
            r.on,
            r.in_frac
                .iter()
                .map(|f| format!("{}.{f}", 16 - f))
                .collect::<Vec<_>>()
                .join("+Q"),
            format_args!("{}.{}", 16 - r.out_frac, r.out_frac),
            match (r.weight_frac, r.shift) {
                (Some(w), Some(s)) => format!(" weights Q{}.{w} shift {s}", 16 - w),
                _ => String::new(),
            },
            r.note
        );
    }
    // The float model's predictions (the same images), unless its accuracy is given.
    let float_pred = if a.float_accuracy.is_none() {
        let v = forward_float(&model, &x).map_err(|e| anyhow!("{e}"))?;
        let l = &v[model.logits()];
        Some(top1(l.dims, &l.data))
    } else {
        None
    };
    let interrupt = ctrl_c_flag();
    let bar = image_bar(images, a.quiet);
    let mut mappings: BTreeMap<(String, u32), Mapping> = BTreeMap::new();
    let mut per_layer: BTreeMap<String, LayerStats> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut predictions = Vec::with_capacity(images);
    let mut bit_exact = true;
    let mut latency_cycles = 0u64;
    let mut batches = 0u64;
    let mut stopped: Option<(ExitCode, String)> = None;
    let calib = format!("{calib_src} ({} images)", cal.images);
    macro_rules! done_so_far {
        () => {
            Done {
                model: &model,
                hw: &hw,
                a,
                batch,
                calib: calib.clone(),
                nodes: &nodes,
                labels: labels.as_deref(),
                float_pred: float_pred.as_deref(),
                predictions: &predictions,
                order: &order,
                per_layer: &per_layer,
                batches,
                latency_cycles,
                bit_exact,
            }
        };
    }
    let simulating = crate::drive::Simulating::begin();
    for lo in (0..images).step_by(batch) {
        let hi = (lo + batch).min(images);
        let xb = x.slice(lo, hi);
        let mut batch_cycles = 0u64;
        // This batch's layers, kept only once the whole batch has run.
        let mut this_batch: Vec<(String, LayerStats)> = Vec::new();
        let mut chip = |c: &rowsim_model::ConvCall| -> Result<Tensor, String> {
            let split = Split::of(c.layer, &hw).map_err(|e| e.to_string())?;
            let opts = RunOptions {
                mac: c.mac,
                relu: Some(c.relu),
                interrupt: Some(interrupt.clone()),
                watchdog: a.trace.watchdog,
                every_edge: a.every_edge,
                ..Default::default()
            };
            // The mapping of each layer (and part) chosen once, with its weights (the same in
            // every batch).
            let mut mapping = |l: &ConvLayer, w: &Tensor| -> Result<Mapping, String> {
                let key = (l.name.clone(), l.n);
                if let Some(m) = mappings.get(&key) {
                    return Ok(*m);
                }
                let m = choose(&hw, l, None, a.layer.objective, Some(w))
                    .map_err(|e| format!("{e:#}"))?;
                mappings.insert(key, m);
                Ok(m)
            };
            let r = run_split(
                &hw,
                &split,
                c.ifmap,
                &rowsim_workload::Weights::of(c.weights),
                a.layer.seed,
                &opts,
                &mut mapping,
            )
            .map_err(|e| match e {
                ChipError::Sim(SimError::Interrupted { .. }) => "interrupted".to_string(),
                e => e.to_string(),
            })?;
            let mut s = r.stats;
            s.host = None;
            s.parts.iter_mut().for_each(|p| p.host = None);
            batch_cycles += s.cycles.core_total;
            this_batch.push((c.node.name.clone(), s));
            Ok(r.ofmap)
        };
        let chip_vals = match forward_fixed(&model, &cal, &xb, &mut chip) {
            Ok(v) => v,
            Err(e) => {
                let code = if e.why == "interrupted" {
                    ExitCode::from(EXIT_INTERRUPTED)
                } else {
                    ExitCode::FAILURE
                };
                stopped = Some((code, format!("{e}")));
                break;
            }
        };
        batches += 1;
        latency_cycles += batch_cycles;
        for (name, s) in this_batch {
            match per_layer.get_mut(&name) {
                Some(acc) => {
                    acc.verified &= s.verified;
                    acc.add(&s);
                }
                None => {
                    order.push(name.clone());
                    per_layer.insert(name, s);
                }
            }
        }
        // The fixed-point reference of the whole network on the same images: every value.
        let ref_vals = forward_fixed(&model, &cal, &xb, &mut |c| {
            reference_conv(c.layer, c.ifmap, c.weights, c.mac, c.relu).map(|r| r.0)
        })
        .map_err(|e| anyhow!("{e}"))?;
        for n in &model.nodes {
            if chip_vals[&n.output] != ref_vals[&n.output] {
                if bit_exact {
                    eprintln!(
                        "error: node `{}` ({}): images {lo}..{hi}: the chip's output differs from the fixed-point reference network",
                        n.name, n.op_type
                    );
                }
                bit_exact = false;
            }
        }
        let l = &chip_vals[model.logits()];
        predictions.extend(top1(l.dims, &l.data));
        if let Some(b) = &bar {
            b.set_position(hi as u64);
        }
        // After each batch, so an interrupted run keeps every finished one.
        if let Some(p) = &a.stats_json {
            write_json(p, &done_so_far!().stats())?;
        }
    }
    drop(simulating);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let stats = done_so_far!().stats();
    let ModelStats {
        ref layers,
        ref totals,
        ref accuracy,
        images: done,
        bit_exact,
        ..
    } = stats;
    let verified = layers.iter().all(|l| l.verified);
    let (chip_acc, float_acc, agreement) =
        (accuracy.chip, accuracy.float, accuracy.agreement_with_float);
    let float_source = accuracy.float_source.clone();
    let unit = totals.unit.clone();
    let ms = |cycles: f64| cycles * 1e3 / hw.clocks.core_hz as f64;
    for l in layers {
        print!("{}", l.summary());
    }
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
    println!(
        "{}: {done} of {images} images on {} in batches of {batch}: every layer {} the fixed-point reference network; each layer {}",
        model.file,
        hw.machine.name,
        if bit_exact { "bit-exact against" } else { "DIFFERS from" },
        if verified { "bit-exact against its reference convolution" } else { "NOT VERIFIED" }
    );
    println!(
        "top-1 accuracy: chip {} (16-bit fixed point), float {} ({}){}",
        pct(chip_acc),
        pct(float_acc),
        if float_source.is_empty() {
            "not computed"
        } else {
            &float_source
        },
        agreement.map_or(String::new(), |g| format!(
            "; the chip's top-1 equals the float model's on {:.2}% of the images",
            100.0 * g
        ))
    );
    println!(
        "per inference: energy {:.4e} {unit} units, {:.0} core cycles ({:.4} ms); latency (an image's batch, layer after layer) {:.0} core cycles = {:.4} ms",
        totals.energy_per_inference,
        totals.core_cycles_per_inference,
        ms(totals.core_cycles_per_inference),
        totals.latency_cycles,
        totals.latency_ms
    );
    if let Some(p) = &a.stats_json {
        write_json(p, &stats)?;
    }
    if let Some((code, why)) = stopped {
        eprintln!("error: {why}");
        eprintln!(
            "stopped after {done} of {images} images; the statistics are those of the finished batches"
        );
        return Ok(code);
    }
    Ok(if bit_exact && verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
