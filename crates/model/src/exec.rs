//! A model run on a batch of images: in floating point (the calibration and the float model's
//! accuracy), and in fixed point, the layers through a callback (the chip, or the reference
//! convolution) and the rest on the host.
//!
//! # Host operations in fixed point
//! Every value is 16-bit two's complement with the fraction bits [`crate::quant`] chose for it.
//! - bias: quantized to the layer's output format (round to nearest, saturating) and added,
//!   saturating;
//! - ReLU: `max(x, 0)`; max pooling: the largest value of the window, padding excluded;
//! - average pooling: the window's exact sum over its count (real values, or the whole window
//!   when `count_include_pad`), rounded to nearest with ties up (`floor((2*sum + n) / 2n)`);
//! - residual Add: each input brought to the output's format (a left shift saturating, or a
//!   right shift rounding to nearest, ties up), added exactly, saturated to 16 bits;
//! - Softmax (over the last axis): computed in `f64` from the input's values and rounded to
//!   Q1.15 (15 fraction bits; 1.0 saturates to 32767): the probabilities are reported, the
//!   prediction is taken on the logits ([`crate::Model::logits`]);
//! - LayerNormalization (over the last axis): computed in `f64` from the input's values (mean,
//!   population variance, `1 / sqrt(var + epsilon)`, scale and shift), rounded to the output's
//!   format, saturating;
//! - ReduceMean (over the last axis): the exact sum over the count, rounded to nearest with
//!   ties up, in the input's format;
//! - value-by-value Add and Sub of two activations: each rescaled to the output's format (as
//!   the residual Add), then added or subtracted, saturated; Mul: the exact product
//!   (`fa + fb` fraction bits) rescaled to the output's format (rounding half up), saturated;
//!   Div: the quotient of the two values in `f64` (exact values, one correctly rounded
//!   division), rounded to the output's format, saturating (a division by 0 saturates to the
//!   dividend's sign, 0 / 0 is 0);
//! - Erf, Gelu, Tanh, Sqrt, Pow and the other functions: in `f64` from the input's value,
//!   rounded to the output's format, saturating (a NaN, the square root of a negative value,
//!   is 0);
//! - Flatten, Reshape, Identity: the same words; Transpose: the same words, moved.
//!
//! A `MatMul` of two activations runs on the chip (through the callback) image by image: the
//! first operand's `[P, K]` words are the layer's ifmap (`P` images of `K` channels), the
//! second's `[K, M]` words, transposed, its `M` filters of `K` weights, in the second
//! operand's format (rescaled to fewer fraction bits, rounding half up and saturating, when
//! the MAC's product shift needs it, as trained weights are; see [`crate::quant`]).

use std::collections::BTreeMap;

use rowsim_datapath::mac::MacConfig;
use rowsim_workload::{ConvLayer, Formats, Tensor};

use crate::quant::Calibration;
use crate::{Bin, Model, ModelError, Node, Op, Pool};

/// A batch of float images or activations, `[N][C][H][W]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct FTensor {
    pub dims: [usize; 4],
    pub data: Vec<f32>,
}

impl FTensor {
    /// Images `lo..hi` of the batch.
    pub fn slice(&self, lo: usize, hi: usize) -> FTensor {
        let per = self.dims[1] * self.dims[2] * self.dims[3];
        FTensor {
            dims: [hi - lo, self.dims[1], self.dims[2], self.dims[3]],
            data: self.data[lo * per..hi * per].to_vec(),
        }
    }
}

/// One layer for the callback of [`forward_fixed`]: run `layer` (batch set) on `ifmap` with
/// `weights` and `mac`, ReLU at the readout if `relu`.
pub struct ConvCall<'a> {
    pub node: &'a Node,
    pub layer: &'a ConvLayer,
    pub ifmap: &'a Tensor,
    pub weights: &'a Tensor,
    pub mac: MacConfig,
    pub relu: bool,
}

fn at(model: &Model, node: &Node, why: String) -> ModelError {
    ModelError {
        file: model.file.clone(),
        node: Some(node.name.clone()),
        op: Some(node.op_type.clone()),
        why,
    }
}

/// The input images' dims checked against the model's.
fn check_input(model: &Model, dims: [usize; 4]) -> Result<(), ModelError> {
    let want = model.input_dims;
    if dims[1..] != want || model.batch.is_some_and(|b| b != dims[0]) {
        return Err(ModelError {
            file: model.file.clone(),
            node: Some(model.input.clone()),
            op: None,
            why: format!(
                "the input is {dims:?}; the model takes [{}, {}]",
                model
                    .batch
                    .map_or_else(|| "N".to_string(), |b| b.to_string()),
                want[..model.input_rank.clamp(2, 4) - 1]
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        });
    }
    Ok(())
}

/// Every value of the model on `x`, in floating point (`f64` sums, stored as `f32`).
pub fn forward_float(model: &Model, x: &FTensor) -> Result<BTreeMap<String, FTensor>, ModelError> {
    check_input(model, x.dims)?;
    let n = x.dims[0];
    let mut vals: BTreeMap<String, FTensor> = BTreeMap::new();
    vals.insert(model.input.clone(), x.clone());
    for node in &model.nodes {
        let a = &vals[&node.inputs[0]];
        let [c, h, w] = node.dims;
        let mut out = FTensor {
            dims: [n, c, h, w],
            data: vec![0.0; n * c * h * w],
        };
        match &node.op {
            Op::Layer(l) => {
                let y = if l.tokens > 1 || node.rank == 3 {
                    // Each token a vector of the layer's C values.
                    let x = FTensor {
                        dims: [n * l.tokens, l.layer.c as usize, 1, 1],
                        data: a.data.clone(),
                    };
                    conv_f32(&l.layer, &x, &l.weights)
                } else {
                    conv_f32(&l.layer, a, &l.weights)
                };
                for (k, v) in y.into_iter().enumerate() {
                    let m = filter_of(node, k);
                    let b = l.bias.as_ref().map_or(0.0, |b| b[m] as f64);
                    let v = v + b;
                    out.data[k] = if l.relu { v.max(0.0) } else { v } as f32;
                }
            }
            Op::MatMul(l) => {
                let b = &vals[&node.inputs[1]];
                let (g, p, m) = node.matmul_shape();
                let kk = l.c as usize;
                for i in 0..n * g {
                    let (ai, bi) = (&a.data[i * p * kk..], &b.data[i * kk * m..]);
                    for r in 0..p {
                        for j in 0..m {
                            let sum: f64 = (0..kk)
                                .map(|q| ai[r * kk + q] as f64 * bi[q * m + j] as f64)
                                .sum();
                            out.data[(i * p + r) * m + j] = sum as f32;
                        }
                    }
                }
            }
            Op::Binary(op) => {
                let b = &vals[&node.inputs[1]];
                for (k, o) in out.data.iter_mut().enumerate() {
                    let (x, y) = (
                        a.data[broadcast_at(k, node.dims, a.dims)] as f64,
                        b.data[broadcast_at(k, node.dims, b.dims)] as f64,
                    );
                    *o = match op {
                        Bin::Add => x + y,
                        Bin::Sub => x - y,
                        Bin::Mul => x * y,
                        Bin::Div => x / y,
                    } as f32;
                }
            }
            Op::LayerNorm(ln) => {
                let d = node.last_axis();
                for (row, o) in a.data.chunks(d).zip(out.data.chunks_mut(d)) {
                    let x: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                    ln.row(&x, |k, v| o[k] = v as f32);
                }
            }
            Op::ReduceMean => {
                let d = crate::last_axis([a.dims[1], a.dims[2], a.dims[3]], node.rank);
                for (row, o) in a.data.chunks(d).zip(out.data.iter_mut()) {
                    *o = (row.iter().map(|&v| v as f64).sum::<f64>() / d as f64) as f32;
                }
            }
            Op::Transpose(perm) => permute(
                &a.data,
                n,
                [a.dims[1], a.dims[2], a.dims[3]],
                *perm,
                &mut out.data,
            ),
            Op::Relu { .. } => {
                for (o, &v) in out.data.iter_mut().zip(&a.data) {
                    *o = v.max(0.0);
                }
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                let avg = matches!(node.op, Op::AvgPool(_));
                pool(p, a.dims, node.dims, |i, win, padded| {
                    let vals: Vec<f64> = win.iter().map(|&k| a.data[k] as f64).collect();
                    out.data[i] = if avg {
                        let count = if p.count_include_pad {
                            padded
                        } else {
                            vals.len()
                        };
                        (vals.iter().sum::<f64>() / count.max(1) as f64) as f32
                    } else {
                        vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max) as f32
                    };
                });
            }
            Op::Reshape => out.data.clone_from(&a.data),
            Op::Add => {
                let b = &vals[&node.inputs[1]];
                for (k, o) in out.data.iter_mut().enumerate() {
                    *o = a.data[k] + b.data[k];
                }
            }
            Op::Softmax(axes) => axes.groups(n, node.dims, |idx| {
                for (&k, p) in idx
                    .iter()
                    .zip(softmax(idx.iter().map(|&k| a.data[k] as f64)))
                {
                    out.data[k] = p as f32;
                }
            }),
            Op::Clip { min, max } => {
                for (o, &v) in out.data.iter_mut().zip(&a.data) {
                    *o = v.clamp(*min, *max);
                }
            }
            Op::Map(f) => {
                for (o, &v) in out.data.iter_mut().zip(&a.data) {
                    *o = f.at(v as f64) as f32;
                }
            }
            Op::Concat => {
                let mut at = 0;
                for v in &node.inputs {
                    let t = &vals[v];
                    let ci = t.dims[1];
                    for i in 0..n {
                        let src = &t.data[i * ci * h * w..(i + 1) * ci * h * w];
                        let dst = ((i * c) + at) * h * w;
                        out.data[dst..dst + ci * h * w].copy_from_slice(src);
                    }
                    at += ci;
                }
            }
            Op::Pad { pads, value } => pad_map(a, pads, node.dims, &mut out.data, *value),
            // Folded: the layer before it already applied it.
            Op::Affine(bn) if bn.folded_into.is_some() => out.data.clone_from(&a.data),
            Op::Affine(bn) => {
                for (k, o) in out.data.iter_mut().enumerate() {
                    let ch = bn.index(k, node.dims);
                    *o = (a.data[k] as f64 * bn.scale[ch] as f64 + bn.shift[ch] as f64) as f32;
                }
            }
        }
        vals.insert(node.output.clone(), out);
    }
    Ok(vals)
}

/// The filter (output channel) of output value `k` of a layer node: per channel of an image,
/// per position of the last axis of tokens.
fn filter_of(node: &Node, k: usize) -> usize {
    crate::feature_index(k, node.dims, node.rank == 3)
}

/// The index, in a value of one image's dims `d` broadcast to `out` (each dim equal, or 1),
/// of value `k` (batch included) of the output.
fn broadcast_at(k: usize, out: [usize; 3], d: [usize; 4]) -> usize {
    let [c, h, w] = out;
    let (i, r) = (k / (c * h * w), k % (c * h * w));
    let (ch, y, x) = (r / (h * w), (r / w) % h, r % w);
    let [_, dc, dh, dw] = d;
    let pick = |v: usize, len: usize| if len == 1 { 0 } else { v };
    ((i * dc + pick(ch, dc)) * dh + pick(y, dh)) * dw + pick(x, dw)
}

/// Each of `n` images' `[rows][cols]` as `[cols][rows]`.
fn transpose<T: Copy>(a: &[T], n: usize, rows: usize, cols: usize, out: &mut [T]) {
    permute(a, n, [rows, cols, 1], [1, 0, 2], out);
}

/// Each of `n` images of dims `d` with its axes moved: output axis `k` is input axis
/// `perm[k]`.
fn permute<T: Copy>(a: &[T], n: usize, d: [usize; 3], perm: [usize; 3], out: &mut [T]) {
    let per = d[0] * d[1] * d[2];
    let od = [d[perm[0]], d[perm[1]], d[perm[2]]];
    let stride = [d[1] * d[2], d[2], 1];
    for i in 0..n {
        let (src, dst) = (&a[i * per..(i + 1) * per], &mut out[i * per..(i + 1) * per]);
        let mut k = 0;
        for x in 0..od[0] {
            for y in 0..od[1] {
                for z in 0..od[2] {
                    let mut idx = [0; 3];
                    idx[perm[0]] = x;
                    idx[perm[1]] = y;
                    idx[perm[2]] = z;
                    dst[k] = src[idx[0] * stride[0] + idx[1] * stride[1] + idx[2] * stride[2]];
                    k += 1;
                }
            }
        }
    }
}

fn softmax(v: impl Iterator<Item = f64> + Clone) -> impl Iterator<Item = f64> {
    let max = v.clone().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = v.clone().map(|x| (x - max).exp()).sum();
    v.map(move |x| (x - max).exp() / sum)
}

/// The float convolution of a layer (batch from `x`), without bias.
pub(crate) fn conv_f32(l: &ConvLayer, x: &FTensor, w: &[f32]) -> Vec<f64> {
    let [n, _, h, wd] = x.dims;
    let (cg, mg) = (l.cg() as usize, l.mg() as usize);
    let (r, s, e, f) = (l.r as usize, l.s as usize, l.e() as usize, l.f() as usize);
    let (m, c) = (l.m as usize, l.c as usize);
    let pad = l.pad as i64;
    let mut out = vec![0f64; n * m * e * f];
    for i in 0..n {
        for mm in 0..m {
            let g = mm / mg;
            for y in 0..e {
                for xx in 0..f {
                    let mut sum = 0f64;
                    for cc in 0..cg {
                        let ch = g * cg + cc;
                        for rr in 0..r {
                            let iy = (y * l.stride_v as usize + rr) as i64 - pad;
                            if iy < 0 || iy >= h as i64 {
                                continue;
                            }
                            for ss in 0..s {
                                let ix = (xx * l.stride_h as usize + ss) as i64 - pad;
                                if ix < 0 || ix >= wd as i64 {
                                    continue;
                                }
                                let a = x.data[((i * c + ch) * h + iy as usize) * wd + ix as usize];
                                let wv = w[((mm * cg + cc) * r + rr) * s + ss];
                                sum += a as f64 * wv as f64;
                            }
                        }
                    }
                    out[((i * m + mm) * e + y) * f + xx] = sum;
                }
            }
        }
    }
    out
}

/// Calls `each(output index, input indices of the window, padding excluded)` for every output
/// of a pooling window over `[N][C][H][W]`.
/// Each output of a pooling: its index, the input indices its window covers, and how many of
/// the window's positions lie in the padded map (the divisor of an average that counts
/// padding: the whole window, except a last one that `ceil_mode` lets run past the padding).
fn pool(p: &Pool, inp: [usize; 4], out: [usize; 3], mut each: impl FnMut(usize, &[usize], usize)) {
    let [n, c, h, w] = inp;
    let [_, eh, ew] = out;
    let mut win = Vec::with_capacity(p.kernel[0] * p.kernel[1]);
    let span = |o: usize, s: usize, k: usize, padded: usize| (o * s + k).min(padded) - o * s;
    for i in 0..n {
        for ch in 0..c {
            for y in 0..eh {
                for x in 0..ew {
                    let padded = span(y, p.stride[0], p.kernel[0], h + p.pads[0] + p.pads[2])
                        * span(x, p.stride[1], p.kernel[1], w + p.pads[1] + p.pads[3]);
                    win.clear();
                    for ky in 0..p.kernel[0] {
                        let iy = (y * p.stride[0] + ky) as i64 - p.pads[0] as i64;
                        if iy < 0 || iy >= h as i64 {
                            continue;
                        }
                        for kx in 0..p.kernel[1] {
                            let ix = (x * p.stride[1] + kx) as i64 - p.pads[1] as i64;
                            if ix < 0 || ix >= w as i64 {
                                continue;
                            }
                            win.push(((i * c + ch) * h + iy as usize) * w + ix as usize);
                        }
                    }
                    each(((i * c + ch) * eh + y) * ew + x, &win, padded);
                }
            }
        }
    }
}

/// `a` (`[N, C, H, W]`) padded to `out` (`[C, H', W']`) by `pads` (top, left, bottom,
/// right), the new border `value`.
fn pad_map<T: Copy>(
    a: &impl Tensor4<T>,
    pads: &[usize; 4],
    out: [usize; 3],
    data: &mut [T],
    value: T,
) {
    let [n, c, h, w] = a.dims4();
    let [_, oh, ow] = out;
    data.fill(value);
    for i in 0..n {
        for ch in 0..c {
            for y in 0..h {
                let src = ((i * c + ch) * h + y) * w;
                let dst = ((i * c + ch) * oh + y + pads[0]) * ow + pads[1];
                data[dst..dst + w].copy_from_slice(&a.values()[src..src + w]);
            }
        }
    }
}

/// The two tensors the host works on, float and fixed point, as `pad_map` reads them.
trait Tensor4<T> {
    fn dims4(&self) -> [usize; 4];
    fn values(&self) -> &[T];
}

impl Tensor4<f32> for FTensor {
    fn dims4(&self) -> [usize; 4] {
        self.dims
    }
    fn values(&self) -> &[f32] {
        &self.data
    }
}

impl Tensor4<i16> for Tensor {
    fn dims4(&self) -> [usize; 4] {
        self.dims
    }
    fn values(&self) -> &[i16] {
        &self.data
    }
}

/// A host affine map's words: the scales' fraction bits, the scales and the shifts
/// (in the output's format `fo`).
pub fn affine_words(bn: &crate::Affine, fo: u32) -> (u32, Vec<i16>, Vec<i16>) {
    let max = bn.scale.iter().fold(0f32, |m, &v| m.max(v.abs()));
    let fs = crate::quant::weight_frac_for(max as f64);
    let scale = bn.scale.iter().map(|&v| quantize(v as f64, fs)).collect();
    let shift = bn.shift.iter().map(|&v| quantize(v as f64, fo)).collect();
    (fs, scale, shift)
}

/// `v` with `from` fraction bits in `to` fraction bits: a left shift (exact) or a right shift
/// rounding to nearest, ties up; not yet narrowed.
pub fn rescale(v: i64, from: u32, to: u32) -> i64 {
    if to >= from {
        v << (to - from)
    } else {
        let d = from - to;
        (v + (1i64 << (d - 1))) >> d
    }
}

/// Narrowed to 16 bits, saturating.
pub fn saturate(v: i64) -> i16 {
    v.clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

/// A float quantized with `frac` fraction bits: rounded to nearest (ties away from zero),
/// saturating.
pub fn quantize(v: f64, frac: u32) -> i16 {
    let q = (v * (1u64 << frac) as f64).round();
    if q.is_nan() {
        0
    } else {
        q.clamp(i16::MIN as f64, i16::MAX as f64) as i16
    }
}

/// Every value of the model on `x` in fixed point (each with the fraction bits `cal` gives it),
/// the layers through `conv` (which returns `[N][M][E][F]`).
pub fn forward_fixed(
    model: &Model,
    cal: &Calibration,
    x: &FTensor,
    conv: &mut dyn FnMut(&ConvCall) -> Result<Tensor, String>,
) -> Result<BTreeMap<String, Tensor>, ModelError> {
    check_input(model, x.dims)?;
    let n = x.dims[0];
    let mut vals: BTreeMap<String, Tensor> = BTreeMap::new();
    let fi = cal.frac(&model.input);
    vals.insert(
        model.input.clone(),
        Tensor {
            dims: x.dims,
            data: x.data.iter().map(|&v| quantize(v as f64, fi)).collect(),
        },
    );
    for node in &model.nodes {
        let a = &vals[&node.inputs[0]];
        let [c, h, w] = node.dims;
        let mut out = Tensor::zeros([n, c, h, w]);
        match &node.op {
            Op::Layer(l) => {
                let lf = cal.layer(&node.name).ok_or_else(|| {
                    at(
                        model,
                        node,
                        "no formats for this layer (not calibrated)".into(),
                    )
                })?;
                // Over tokens, each token is an image of the layer's batch.
                let batch = n * l.tokens;
                let layer = l.layer.clone().with_batch(batch as u32);
                let mac = Formats {
                    ifmap_frac: lf.ifmap_frac,
                    weight_frac: lf.weight_frac,
                    psum_frac: lf.psum_frac,
                }
                .mac();
                // The layer's input as the layer sees it (an FC layer over a flattened map
                // reads the map).
                let ifmap = Tensor {
                    dims: [
                        batch,
                        l.layer.c as usize,
                        l.layer.h as usize,
                        l.layer.w as usize,
                    ],
                    data: a.data.clone(),
                };
                let y = conv(&ConvCall {
                    node,
                    layer: &layer,
                    ifmap: &ifmap,
                    weights: &lf.weights,
                    mac,
                    relu: l.relu,
                })
                .map_err(|e| at(model, node, e))?;
                let want = [
                    batch,
                    l.layer.m as usize,
                    layer.e() as usize,
                    layer.f() as usize,
                ];
                if y.dims != want || y.data.len() != out.data.len() {
                    return Err(at(
                        model,
                        node,
                        format!("the layer made {:?}; expected {want:?}", y.dims),
                    ));
                }
                out.data = y.data;
                if let Some(b) = &lf.bias {
                    for (k, v) in out.data.iter_mut().enumerate() {
                        let m = filter_of(node, k);
                        *v = saturate(*v as i64 + b[m] as i64);
                    }
                }
            }
            Op::MatMul(l) => {
                let lf = cal.layer(&node.name).ok_or_else(|| {
                    at(
                        model,
                        node,
                        "no formats for this product (not calibrated)".into(),
                    )
                })?;
                let b = &vals[&node.inputs[1]];
                let fb = cal.frac(&node.inputs[1]);
                let (g, p, m) = node.matmul_shape();
                let kk = l.c as usize;
                let layer = l.as_ref().clone().with_batch(p as u32);
                let mac = Formats {
                    ifmap_frac: lf.ifmap_frac,
                    weight_frac: lf.weight_frac,
                    psum_frac: lf.psum_frac,
                }
                .mac();
                // Image by image, head by head.
                for i in 0..n * g {
                    let ifmap = Tensor {
                        dims: [p, kk, 1, 1],
                        data: a.data[i * p * kk..(i + 1) * p * kk].to_vec(),
                    };
                    // The second operand's columns are the filters, in the weights' format.
                    let mut weights = Tensor::zeros([m, kk, 1, 1]);
                    transpose(
                        &b.data[i * kk * m..(i + 1) * kk * m],
                        1,
                        kk,
                        m,
                        &mut weights.data,
                    );
                    for v in weights.data.iter_mut() {
                        *v = saturate(rescale(*v as i64, fb, lf.weight_frac));
                    }
                    let y = conv(&ConvCall {
                        node,
                        layer: &layer,
                        ifmap: &ifmap,
                        weights: &weights,
                        mac,
                        relu: false,
                    })
                    .map_err(|e| at(model, node, e))?;
                    if y.dims != [p, m, 1, 1] {
                        return Err(at(
                            model,
                            node,
                            format!(
                                "image {}, head {}: the layer made {:?}; expected [{p}, {m}, 1, 1]",
                                i / g,
                                i % g,
                                y.dims
                            ),
                        ));
                    }
                    out.data[i * p * m..(i + 1) * p * m].copy_from_slice(&y.data);
                }
            }
            Op::Binary(op) => {
                let b = &vals[&node.inputs[1]];
                let (fa, fb, fo) = (
                    cal.frac(&node.inputs[0]),
                    cal.frac(&node.inputs[1]),
                    cal.frac(&node.output),
                );
                for (k, o) in out.data.iter_mut().enumerate() {
                    let x = a.data[broadcast_at(k, node.dims, a.dims)] as i64;
                    let y = b.data[broadcast_at(k, node.dims, b.dims)] as i64;
                    *o = match op {
                        Bin::Add => saturate(rescale(x, fa, fo) + rescale(y, fb, fo)),
                        Bin::Sub => saturate(rescale(x, fa, fo) - rescale(y, fb, fo)),
                        Bin::Mul => saturate(rescale(x * y, fa + fb, fo)),
                        Bin::Div => match (x, y) {
                            (0, 0) => 0,
                            (x, 0) if x > 0 => i16::MAX,
                            (_, 0) => i16::MIN,
                            _ => quantize(
                                (x as f64 / y as f64) * 2f64.powi(fb as i32 - fa as i32),
                                fo,
                            ),
                        },
                    };
                }
            }
            Op::LayerNorm(ln) => {
                let (fa, fo) = (cal.frac(&node.inputs[0]), cal.frac(&node.output));
                let scale = (1u64 << fa) as f64;
                let d = node.last_axis();
                for (row, o) in a.data.chunks(d).zip(out.data.chunks_mut(d)) {
                    let x: Vec<f64> = row.iter().map(|&v| v as f64 / scale).collect();
                    ln.row(&x, |k, v| o[k] = quantize(v, fo));
                }
            }
            Op::ReduceMean => {
                let d = crate::last_axis([a.dims[1], a.dims[2], a.dims[3]], node.rank);
                for (row, o) in a.data.chunks(d).zip(out.data.iter_mut()) {
                    let sum: i64 = row.iter().map(|&v| v as i64).sum();
                    let count = d.max(1) as i64;
                    *o = saturate((2 * sum + count).div_euclid(2 * count));
                }
            }
            Op::Transpose(perm) => permute(
                &a.data,
                n,
                [a.dims[1], a.dims[2], a.dims[3]],
                *perm,
                &mut out.data,
            ),
            Op::Relu { .. } => {
                for (o, &v) in out.data.iter_mut().zip(&a.data) {
                    *o = v.max(0);
                }
            }
            Op::MaxPool(p) => pool(p, a.dims, node.dims, |i, win, _| {
                out.data[i] = win.iter().map(|&k| a.data[k]).max().unwrap_or(0);
            }),
            Op::AvgPool(p) => pool(p, a.dims, node.dims, |i, win, padded| {
                let sum: i64 = win.iter().map(|&k| a.data[k] as i64).sum();
                let count = if p.count_include_pad {
                    padded
                } else {
                    win.len()
                }
                .max(1) as i64;
                out.data[i] = saturate((2 * sum + count).div_euclid(2 * count));
            }),
            Op::Reshape => out.data.clone_from(&a.data),
            Op::Add => {
                let b = &vals[&node.inputs[1]];
                let (fa, fb, fo) = (
                    cal.frac(&node.inputs[0]),
                    cal.frac(&node.inputs[1]),
                    cal.frac(&node.output),
                );
                for (k, o) in out.data.iter_mut().enumerate() {
                    let s = rescale(a.data[k] as i64, fa, fo) + rescale(b.data[k] as i64, fb, fo);
                    *o = saturate(s);
                }
            }
            Op::Softmax(axes) => {
                let f = cal.frac(&node.inputs[0]);
                let scale = (1u64 << f) as f64;
                axes.groups(n, node.dims, |idx| {
                    let row = idx.iter().map(|&k| a.data[k] as f64 / scale);
                    for (&k, p) in idx.iter().zip(softmax(row)) {
                        out.data[k] = quantize(p, 15);
                    }
                });
            }
            Op::Clip { min, max } => {
                // The bounds in the input's format (which the output keeps), rounded to
                // nearest and saturating: 6.0 in Q4.12 is 24576; in Q1.15 it saturates to
                // 32767, so a clip at 6 of such a value changes nothing, as in float.
                let f = cal.frac(&node.inputs[0]);
                let (lo, hi) = (quantize(*min as f64, f), quantize(*max as f64, f));
                for (o, &v) in out.data.iter_mut().zip(&a.data) {
                    *o = v.clamp(lo, hi);
                }
            }
            Op::Map(f) => {
                // Each word as its value (input format), the function in f64, rounded to the
                // output's format, saturating.
                let (fa, fo) = (cal.frac(&node.inputs[0]), cal.frac(&node.output));
                let scale = (1u64 << fa) as f64;
                for (o, &v) in out.data.iter_mut().zip(&a.data) {
                    *o = quantize(f.at(v as f64 / scale), fo);
                }
            }
            Op::Concat => {
                // Each input rescaled to the output's format (rounded, saturating), side by
                // side on the channel axis.
                let fo = cal.frac(&node.output);
                let mut at = 0;
                for v in &node.inputs {
                    let (t, fi) = (&vals[v], cal.frac(v));
                    let ci = t.dims[1];
                    for i in 0..n {
                        let src = &t.data[i * ci * h * w..(i + 1) * ci * h * w];
                        let dst = ((i * c) + at) * h * w;
                        for (o, &x) in out.data[dst..dst + ci * h * w].iter_mut().zip(src) {
                            *o = saturate(rescale(x as i64, fi, fo));
                        }
                    }
                    at += ci;
                }
            }
            Op::Pad { pads, value } => {
                // The padding value in the input's format (which the output keeps).
                let f = cal.frac(&node.inputs[0]);
                pad_map(
                    a,
                    pads,
                    node.dims,
                    &mut out.data,
                    quantize(*value as f64, f),
                );
            }
            Op::Affine(bn) if bn.folded_into.is_some() => out.data.clone_from(&a.data),
            Op::Affine(bn) => {
                // On the host: each scale a 16-bit word with the most fraction bits it fits
                // (`fs`), each shift in the output's format; the product (Q.fa+fs, exact in 64
                // bits) rescaled to the output's format rounding half up, the shift added,
                // saturating to 16 bits.
                let (fa, fo) = (cal.frac(&node.inputs[0]), cal.frac(&node.output));
                let (fs, scale, shift) = affine_words(bn, fo);
                for (k, o) in out.data.iter_mut().enumerate() {
                    let ch = bn.index(k, node.dims);
                    let p = a.data[k] as i64 * scale[ch] as i64;
                    *o = saturate(rescale(p, fa + fs, fo) + shift[ch] as i64);
                }
            }
        }
        vals.insert(node.output.clone(), out);
    }
    Ok(vals)
}

/// Each image's top-1 class: the index of its largest value (the first of equals).
pub fn top1<T: PartialOrd + Copy>(dims: [usize; 4], data: &[T]) -> Vec<usize> {
    let per = dims[1] * dims[2] * dims[3];
    data.chunks(per.max(1))
        .map(|row| {
            let mut best = 0;
            for (k, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = k;
                }
            }
            best
        })
        .collect()
}
