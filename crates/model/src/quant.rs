//! Fixed-point formats from a calibration batch.
//!
//! # The rule
//! The model runs in floating point on the calibration images; for every value the largest
//! magnitude `max` seen gives its fraction bits
//! `frac = clamp(14 - ceil(log2(max)), 0, 15)`: the 16-bit range `[-2^(15-frac), 2^(15-frac))`
//! holds twice the largest value seen (one bit of headroom for images the calibration did not
//! see); a value that was always zero gets 15. Then, layer by layer, in the order they run:
//! - the ifmap format is the layer input's;
//! - weights get the most fraction bits (at most 15) with which the largest weight still
//!   rounds into 16 bits;
//! - the psum (output) format is the output value's; the product shift is then
//!   `ifmap + weight - psum`. Above the MAC's limit of 16, weight fraction bits are given up
//!   (and then psum bits added) until it fits; below 0, the output gets `ifmap + weight`
//!   fraction bits (no more precision than the products have);
//! - weights and bias are rounded to nearest (ties away from zero), saturating; the bias in the
//!   output's format.
//!
//! A `MatMul` of two activations is a layer whose weights are its second operand: its words
//! have that value's fraction bits, given up (the words rescaled) as a layer's weights would
//! be when the product shift needs it.
//!
//! ReLU, pooling, Flatten/Reshape, Transpose and ReduceMean keep their input's format; a
//! residual Add, the value-by-value operators, LayerNormalization and the functions take the
//! format of their calibrated output; Softmax's output is Q1.15 (15 fraction bits).

use std::collections::BTreeMap;

use rowsim_datapath::mac::MAX_SHIFT;
use rowsim_workload::Tensor;
use serde::Serialize;

use crate::exec::{forward_float, quantize, FTensor};
use crate::{Model, ModelError, Op};

/// One layer's formats and its quantized parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerFormats {
    pub ifmap_frac: u32,
    pub weight_frac: u32,
    pub psum_frac: u32,
    /// The MAC's product shift, `ifmap_frac + weight_frac - psum_frac`.
    pub shift: u32,
    /// The largest weight magnitude and bias magnitude (floats).
    pub max_weight: f32,
    /// `[M][C/G][R][S]` in Q(15 - weight_frac).weight_frac.
    #[serde(skip)]
    pub weights: Tensor,
    /// In the output's format.
    #[serde(skip)]
    pub bias: Option<Vec<i16>>,
}

impl LayerFormats {
    /// The formats `[ifmap, weight, psum]` (fraction bits; the shift follows) and the
    /// quantized parameters.
    fn new(fracs: [u32; 3], max_weight: f32, weights: Tensor, bias: Option<Vec<i16>>) -> Self {
        let [ifmap_frac, weight_frac, psum_frac] = fracs;
        LayerFormats {
            ifmap_frac,
            weight_frac,
            psum_frac,
            shift: ifmap_frac + weight_frac - psum_frac,
            max_weight,
            weights,
            bias,
        }
    }
}

/// The formats of a model, chosen on a calibration batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Fraction bits of every value.
    pub fracs: BTreeMap<String, u32>,
    /// The largest magnitude of every value over the calibration batch.
    pub max: BTreeMap<String, f32>,
    pub layers: BTreeMap<String, LayerFormats>,
    /// How many images it was chosen on.
    pub images: usize,
}

impl Calibration {
    /// A value's fraction bits (15 for one never seen).
    pub fn frac(&self, value: &str) -> u32 {
        self.fracs.get(value).copied().unwrap_or(15)
    }

    pub fn layer(&self, node: &str) -> Option<&LayerFormats> {
        self.layers.get(node)
    }
}

/// Fraction bits for a value whose largest magnitude is `max` (see the module docs).
pub fn frac_for(max: f64) -> u32 {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return 15;
    }
    (14 - max.log2().ceil() as i64).clamp(0, 15) as u32
}

/// The most fraction bits (<= 15) with which `max` rounds into 16 bits.
pub fn weight_frac_for(max: f64) -> u32 {
    (0..=15u32)
        .rev()
        .find(|&d| (max * (1u64 << d) as f64).round() <= i16::MAX as f64)
        .unwrap_or(0)
}

/// The weight and output fraction bits of a product of inputs with `fin` and `d` fraction bits
/// whose output wants `f`: within the MAC's product shift (see the module docs).
fn product_formats(fin: u32, mut d: u32, mut f: u32) -> (u32, u32) {
    if fin + d > f + MAX_SHIFT {
        d = (f + MAX_SHIFT).saturating_sub(fin).min(d);
        if fin + d > f + MAX_SHIFT {
            f = fin + d - MAX_SHIFT;
        }
    }
    if fin + d < f {
        f = fin + d;
    }
    (d, f)
}

/// Chooses every format on the calibration images `calib` (see the module docs).
pub fn calibrate(model: &Model, calib: &FTensor) -> Result<Calibration, ModelError> {
    let vals = forward_float(model, calib)?;
    let mut max = BTreeMap::new();
    for (k, v) in &vals {
        let m = v.data.iter().fold(0f32, |a, &x| a.max(x.abs()));
        max.insert(k.clone(), m);
    }
    let mut fracs = BTreeMap::new();
    fracs.insert(model.input.clone(), frac_for(max[&model.input] as f64));
    let mut layers = BTreeMap::new();
    for node in &model.nodes {
        let fin = fracs.get(&node.inputs[0]).copied().unwrap_or(15);
        let fout = match &node.op {
            Op::MatMul(_) => {
                let second = &node.inputs[1];
                let d = fracs.get(second).copied().unwrap_or(15);
                let (d, f) = product_formats(fin, d, frac_for(max[&node.output] as f64));
                let no_weights = Tensor::zeros([0, 0, 0, 0]);
                let lf = LayerFormats::new([fin, d, f], max[second], no_weights, None);
                layers.insert(node.name.clone(), lf);
                f
            }
            Op::Layer(l) => {
                let maxw = l.weights.iter().fold(0f32, |a, &x| a.max(x.abs()));
                let d = weight_frac_for(maxw as f64);
                let (d, f) = product_formats(fin, d, frac_for(max[&node.output] as f64));
                let lay = &l.layer;
                let dims = [
                    lay.m as usize,
                    lay.cg() as usize,
                    lay.r as usize,
                    lay.s as usize,
                ];
                let weights = Tensor {
                    dims,
                    data: l.weights.iter().map(|&w| quantize(w as f64, d)).collect(),
                };
                let bias = l
                    .bias
                    .as_ref()
                    .map(|b| b.iter().map(|&v| quantize(v as f64, f)).collect());
                let lf = LayerFormats::new([fin, d, f], maxw, weights, bias);
                layers.insert(node.name.clone(), lf);
                f
            }
            Op::Add | Op::Binary(_) | Op::LayerNorm(_) => frac_for(max[&node.output] as f64),
            Op::Transpose(_) | Op::ReduceMean => fin,
            Op::Softmax(_) => 15,
            Op::Affine(bn) if bn.folded_into.is_some() => fin,
            Op::Affine(_) | Op::Concat => frac_for(max[&node.output] as f64),
            // Sigmoid and HardSigmoid lie in [0, 1]: Q1.15 (1.0 saturates to 32767).
            Op::Map(crate::Fun::Sigmoid | crate::Fun::HardSigmoid { .. }) => 15,
            Op::Map(_) => frac_for(max[&node.output] as f64),
            Op::Pad { .. } => fin,
            Op::Relu { .. } | Op::Clip { .. } | Op::MaxPool(_) | Op::AvgPool(_) | Op::Reshape => {
                fin
            }
        };
        fracs.insert(node.output.clone(), fout);
    }
    Ok(Calibration {
        fracs,
        max,
        layers,
        images: calib.dims[0],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_bits_leave_one_bit_of_headroom() {
        // 1.0 needs 1 integer bit; with headroom 2: Q2.14 holds [-2, 2).
        assert_eq!(frac_for(1.0), 14);
        assert_eq!(frac_for(0.9), 14);
        assert_eq!(frac_for(0.5), 15);
        assert_eq!(frac_for(3.0), 12);
        assert_eq!(frac_for(100.0), 7);
        assert_eq!(frac_for(0.0), 15);
        assert_eq!(frac_for(1e9), 0);
        assert_eq!(weight_frac_for(0.99), 15);
        assert_eq!(weight_frac_for(1.0), 14);
        assert_eq!(weight_frac_for(1.5), 14);
        assert_eq!(weight_frac_for(2.5), 13);
    }
}
