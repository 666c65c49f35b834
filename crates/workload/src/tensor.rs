//! Tensors, synthetic data from a seed, and the reference convolution.
//!
//! # Fixed-point formats
//! Ifmaps and psums are Q8.8 (8 fraction bits), weights Q1.15 (15 fraction bits); the product
//! of the two has 23 fraction bits, and the MAC's product shift of 15 brings it back to Q8.8.
//! These are [`Formats::DEFAULT`]; the shift is what the chip's configuration carries.
//!
//! # Synthetic data (reproducible for a seed, on any machine: splitmix64, not a library PRNG)
//! - ifmaps: each value is zero with the layer's zero fraction, else uniform in (0, 4) (a
//!   post-ReLU activation), or in (-4, 4) for a network's first layer (a normalized image);
//! - weights: uniform in `[-a, a]` with `a = 2 / sqrt(C/G * R * S)` (so a psum stays within a
//!   few units), quantized to Q1.15.

use rowsim_datapath::mac::{self, MacConfig, MacCounters, Overflow, Rounding};

use crate::layer::ConvLayer;

/// A dense 4-D tensor of 16-bit words, row-major over `dims`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    pub dims: [usize; 4],
    pub data: Vec<i16>,
}

impl Tensor {
    pub fn zeros(dims: [usize; 4]) -> Self {
        Tensor {
            dims,
            data: vec![0; dims.iter().product()],
        }
    }

    #[inline]
    pub fn index(&self, i: [usize; 4]) -> usize {
        ((i[0] * self.dims[1] + i[1]) * self.dims[2] + i[2]) * self.dims[3] + i[3]
    }

    #[inline]
    pub fn get(&self, i: [usize; 4]) -> i16 {
        self.data[self.index(i)]
    }

    #[inline]
    pub fn set(&mut self, i: [usize; 4], v: i16) {
        let k = self.index(i);
        self.data[k] = v;
    }

    /// Fraction of zero values.
    pub fn zero_fraction(&self) -> f64 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().filter(|&&v| v == 0).count() as f64 / self.data.len() as f64
    }

    /// One row (the last dimension) at `[a, b, c]`.
    pub fn row(&self, a: usize, b: usize, c: usize) -> &[i16] {
        let k = self.index([a, b, c, 0]);
        &self.data[k..k + self.dims[3]]
    }
}

/// Fraction bits of each data type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    pub ifmap_frac: u32,
    pub weight_frac: u32,
    pub psum_frac: u32,
}

impl Formats {
    pub const DEFAULT: Formats = Formats {
        ifmap_frac: 8,
        weight_frac: 15,
        psum_frac: 8,
    };

    /// The MAC's product shift that turns ifmap x weight into a psum.
    pub fn product_shift(&self) -> u32 {
        self.ifmap_frac + self.weight_frac - self.psum_frac
    }

    /// The MAC configuration for these formats (truncation, wrapping, as on the chip).
    pub fn mac(&self) -> MacConfig {
        MacConfig {
            shift: self.product_shift(),
            rounding: Rounding::Truncate,
            overflow: Overflow::Wrap,
        }
    }
}

/// splitmix64: a tiny PRNG whose sequence is fixed forever, so a seed names the same data on
/// every machine and every version.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `[lo, hi]`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1) as u64;
        lo + (self.next_u64() % span) as i64
    }
}

/// Streams of one seed for the different tensors, so changing one does not shift another.
fn stream(seed: u64, what: u64) -> SplitMix64 {
    let mut s = SplitMix64::new(seed ^ what.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    s.next_u64();
    s
}

/// The synthetic ifmap of a layer: `[N][C][H][W]`, unpadded.
pub fn synthetic_ifmap(layer: &ConvLayer, seed: u64, fmt: Formats) -> Tensor {
    let mut rng = stream(seed, 1);
    let mut t = Tensor::zeros([
        layer.n as usize,
        layer.c as usize,
        layer.h as usize,
        layer.w as usize,
    ]);
    let one = 1i64 << fmt.ifmap_frac;
    let max = (4 * one - 1).min(i16::MAX as i64);
    let lo = if layer.first { -max } else { 1 };
    for v in t.data.iter_mut() {
        if rng.next_f64() < layer.ifmap_zero_fraction {
            *v = 0;
        } else {
            let mut x = 0;
            while x == 0 {
                x = rng.range(lo, max);
            }
            *v = x as i16;
        }
    }
    t
}

/// The synthetic weights of a layer: `[M][C/G][R][S]`.
pub fn synthetic_weights(layer: &ConvLayer, seed: u64, fmt: Formats) -> Tensor {
    let mut rng = stream(seed, 2);
    let fan_in = (layer.cg() * layer.r * layer.s) as f64;
    let a = (2.0 / fan_in.sqrt()).min(0.999);
    let amax = (a * (1u64 << fmt.weight_frac) as f64).round() as i64;
    let mut t = Tensor::zeros([
        layer.m as usize,
        layer.cg() as usize,
        layer.r as usize,
        layer.s as usize,
    ]);
    for v in t.data.iter_mut() {
        *v = rng
            .range(-amax, amax)
            .clamp(i16::MIN as i64, i16::MAX as i64) as i16;
    }
    t
}

/// How many of `n` values a density (0 to 1) keeps, rounded to nearest.
pub fn kept(n: usize, density: f64) -> usize {
    ((n as f64 * density.clamp(0.0, 1.0)).round() as usize).min(n)
}

/// Magnitude pruning: zeroes all but the `keep` values of largest `magnitude` (of equals, the
/// earlier are kept).
pub fn keep_largest<T: Copy + Default>(v: &mut [T], keep: usize, magnitude: impl Fn(T) -> f64) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| magnitude(v[b]).total_cmp(&magnitude(v[a])).then(a.cmp(&b)));
    for &k in &order[keep.min(v.len())..] {
        v[k] = T::default();
    }
}

/// The output shape `[N][M][E][F]` of a layer.
pub fn ofmap_dims(layer: &ConvLayer) -> [usize; 4] {
    [
        layer.n as usize,
        layer.m as usize,
        layer.e() as usize,
        layer.f() as usize,
    ]
}

/// The reference convolution, in the datapath's arithmetic: each product windowed as the MAC
/// does ([`mac::product`]), summed exactly and wrapped to 16 bits once (wrapping addition is
/// associative, so this equals any accumulation order of the hardware), then ReLU if asked.
/// Padding reads as zero. Plain loops over the layer's definition; nothing from any mapping.
///
/// Saturating arithmetic depends on the accumulation order, which is the mapping's; this
/// reference refuses it.
pub fn reference_conv(
    layer: &ConvLayer,
    ifmap: &Tensor,
    weights: &Tensor,
    mac_cfg: MacConfig,
    relu: bool,
) -> Result<(Tensor, MacCounters), String> {
    reference_conv_until(layer, ifmap, weights, mac_cfg, relu, None)
}

/// [`reference_conv`], given up (an error saying so) once `stop` is raised: checked at each
/// output channel of each image, so a run stopped meanwhile need not wait for the rest.
pub fn reference_conv_until(
    layer: &ConvLayer,
    ifmap: &Tensor,
    weights: &Tensor,
    mac_cfg: MacConfig,
    relu: bool,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(Tensor, MacCounters), String> {
    if mac_cfg.overflow != Overflow::Wrap {
        return Err(
            "the reference convolution sums in any order, so it needs wrapping arithmetic".into(),
        );
    }
    let want_in = [
        layer.n as usize,
        layer.c as usize,
        layer.h as usize,
        layer.w as usize,
    ];
    let want_w = [
        layer.m as usize,
        layer.cg() as usize,
        layer.r as usize,
        layer.s as usize,
    ];
    if ifmap.dims != want_in {
        return Err(format!(
            "ifmap is {:?}; layer {} needs [N, C, H, W] = {want_in:?}",
            ifmap.dims, layer.name
        ));
    }
    if weights.dims != want_w {
        return Err(format!(
            "weights are {:?}; layer {} needs [M, C/G, R, S] = {want_w:?}",
            weights.dims, layer.name
        ));
    }
    let mut counters = MacCounters::default();
    let mut out = Tensor::zeros(ofmap_dims(layer));
    let (cg, mg) = (layer.cg() as usize, layer.mg() as usize);
    let pad = layer.pad as i64;
    for n in 0..layer.n as usize {
        for m in 0..layer.m as usize {
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                return Err("the reference convolution was stopped".into());
            }
            let g = m / mg;
            for e in 0..layer.e() as usize {
                for f in 0..layer.f() as usize {
                    let mut sum = 0i64;
                    for c in 0..cg {
                        for r in 0..layer.r as usize {
                            let y = (e * layer.stride_v as usize + r) as i64 - pad;
                            if y < 0 || y >= layer.h as i64 {
                                continue;
                            }
                            for s in 0..layer.s as usize {
                                let x = (f * layer.stride_h as usize + s) as i64 - pad;
                                if x < 0 || x >= layer.w as i64 {
                                    continue;
                                }
                                let a = ifmap.get([n, g * cg + c, y as usize, x as usize]);
                                let w = weights.get([m, c, r, s]);
                                sum += mac::product(w, a, mac_cfg, &mut counters) as i64;
                            }
                        }
                    }
                    let wrapped = ((sum + 32768).rem_euclid(65536) - 32768) as i16;
                    // Here `sum_overflows` counts outputs whose true sum left 16 bits (the
                    // hardware counts each addition that overflows, which depends on order).
                    if wrapped as i64 != sum {
                        counters.sum_overflows += 1;
                    }
                    out.set([n, m, e, f], if relu { wrapped.max(0) } else { wrapped });
                }
            }
        }
    }
    Ok((out, counters))
}
