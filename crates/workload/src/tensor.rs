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
use std::borrow::Cow;
use std::ops::Range;

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

    /// The generator `n` draws on: what `n` calls of [`SplitMix64::next_u64`] leave (the state
    /// moves by a constant each draw, wrapping, so this is exact for any `n`).
    pub fn skip(&mut self, n: u64) {
        self.0 = self
            .0
            .wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(n));
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
    synthetic_filters(layer, seed, fmt, 0..layer.m)
}

/// The filters `m` (a range of `0..M`, clamped to it) of [`synthetic_weights`], value for value,
/// made without the others: each weight is one draw of the layer's stream, so the block starts
/// that many draws in ([`SplitMix64::skip`]).
pub fn synthetic_filters(layer: &ConvLayer, seed: u64, fmt: Formats, m: Range<u32>) -> Tensor {
    let mut rng = stream(seed, 2);
    let fan_in = (layer.cg() * layer.r * layer.s) as f64;
    let a = (2.0 / fan_in.sqrt()).min(0.999);
    let amax = (a * (1u64 << fmt.weight_frac) as f64).round() as i64;
    let (first, end) = (m.start.min(layer.m), m.end.min(layer.m));
    let per_filter = layer.cg() as usize * layer.r as usize * layer.s as usize;
    let mut t = Tensor::zeros([
        end.saturating_sub(first) as usize,
        layer.cg() as usize,
        layer.r as usize,
        layer.s as usize,
    ]);
    rng.skip(first as u64 * per_filter as u64);
    for v in t.data.iter_mut() {
        *v = rng
            .range(-amax, amax)
            .clamp(i16::MIN as i64, i16::MAX as i64) as i16;
    }
    t
}

/// A layer's weights `[M][C/G][R][S]` as a run takes them: a tensor held whole (read from a
/// file, pruned, or a model's), or synthetic from a seed and made a block of filters at a time,
/// so that a layer run in parts never holds more than the block a part needs.
#[derive(Clone, Debug)]
pub enum Weights<'a> {
    Held(Cow<'a, Tensor>),
    Synthetic {
        layer: ConvLayer,
        seed: u64,
        fmt: Formats,
    },
}

impl<'a> Weights<'a> {
    /// A tensor the caller holds.
    pub fn of(t: &'a Tensor) -> Self {
        Weights::Held(Cow::Borrowed(t))
    }

    /// The filters `m` (a range of `0..M`), all of their channels and taps: the tensor itself
    /// when held and `m` is all of it.
    pub fn filters(&self, m: Range<u32>) -> Cow<'_, Tensor> {
        match self {
            Weights::Held(t) if m.start == 0 && m.end as usize == t.dims[0] => {
                Cow::Borrowed(t.as_ref())
            }
            Weights::Held(t) => {
                let per = t.dims[1] * t.dims[2] * t.dims[3];
                let (a, b) = (
                    (m.start as usize).min(t.dims[0]),
                    (m.end as usize).min(t.dims[0]),
                );
                Cow::Owned(Tensor {
                    dims: [b.saturating_sub(a), t.dims[1], t.dims[2], t.dims[3]],
                    data: t.data[a * per..b.max(a) * per].to_vec(),
                })
            }
            Weights::Synthetic { layer, seed, fmt } => {
                Cow::Owned(synthetic_filters(layer, *seed, *fmt, m))
            }
        }
    }

    /// All of the weights, as one tensor.
    pub fn whole(&self) -> Cow<'_, Tensor> {
        match self {
            Weights::Held(t) => Cow::Borrowed(t.as_ref()),
            Weights::Synthetic { layer, .. } => self.filters(0..layer.m),
        }
    }

    /// The tensor, made whole if it is synthetic.
    pub fn into_tensor(self) -> Tensor {
        match self {
            Weights::Held(t) => t.into_owned(),
            s => s.whole().into_owned(),
        }
    }
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
/// Padding reads as zero. Nothing from any mapping: it equals [`reference_conv_plain`], the
/// plain loops over the layer's definition (a test checks the two against each other), in a
/// loop order that runs an order of magnitude faster (see [`reference_conv_until`]).
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

/// The shapes and arithmetic a reference convolution takes.
fn check_reference(
    layer: &ConvLayer,
    ifmap: &Tensor,
    weights: &Tensor,
    mac_cfg: MacConfig,
) -> Result<(), String> {
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
    Ok(())
}

/// An output's exact sum wrapped to 16 bits, with ReLU if asked; counts a sum that left 16
/// bits. (Here `sum_overflows` counts outputs whose true sum left 16 bits; the hardware
/// counts each addition that overflows, which depends on order.)
#[inline]
fn wrap_output(sum: i64, relu: bool, counters: &mut MacCounters) -> i16 {
    let wrapped = ((sum + 32768).rem_euclid(65536) - 32768) as i16;
    if wrapped as i64 != sum {
        counters.sum_overflows += 1;
    }
    if relu {
        wrapped.max(0)
    } else {
        wrapped
    }
}

/// The definition of [`reference_conv`]: for each output, the sum over its channels and taps,
/// plain loops over the layer's definition. Slow (an index calculation and bounds checks per
/// product); the tests check [`reference_conv`] against it.
pub fn reference_conv_plain(
    layer: &ConvLayer,
    ifmap: &Tensor,
    weights: &Tensor,
    mac_cfg: MacConfig,
    relu: bool,
) -> Result<(Tensor, MacCounters), String> {
    check_reference(layer, ifmap, weights, mac_cfg)?;
    let mut counters = MacCounters::default();
    let mut out = Tensor::zeros(ofmap_dims(layer));
    let (cg, mg) = (layer.cg() as usize, layer.mg() as usize);
    let pad = layer.pad as i64;
    for n in 0..layer.n as usize {
        for m in 0..layer.m as usize {
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
                    let v = wrap_output(sum, relu, &mut counters);
                    out.set([n, m, e, f], v);
                }
            }
        }
    }
    Ok((out, counters))
}

/// Products of one output summed in `i32` before they join its exact `i64` sum: each
/// windowed product is within `[-2^15, 2^15]`, so 65535 of them cannot leave `i32`.
const I32_PRODUCTS: usize = 65535;

/// The patch matrix of a tile is kept to about this many values (512 KiB), at least one
/// output's (a filter's worth).
const TILE_VALUES: usize = 1 << 18;

/// Below this many outputs a tile is summed output by output (dot products along the
/// patch), at or above it tap by tap (along the outputs).
const DOT_BELOW: usize = 16;

// A tile summed tap by tap has at least `DOT_BELOW` outputs in at most `TILE_VALUES` patch
// values: its outputs' sums of at most `TILE_VALUES / DOT_BELOW` products each fit `i32`.
const _: () = assert!(TILE_VALUES / DOT_BELOW <= I32_PRODUCTS);

/// The windowed product `w * a` (wrapped, as [`mac::product`] under [`Overflow::Wrap`]) and
/// whether it left the window. `TRUNCATE` picks the rounding at compile time, so that the
/// chip's (truncating) loops have no branch and vectorize.
#[inline(always)]
fn window<const TRUNCATE: bool>(w: i16, a: i16, cfg: MacConfig) -> (i32, bool) {
    let full = mac::full_product(w, a);
    // |full| <= 2^30, and rounding to nearest moves it by at most 1 after a shift of at least
    // 1: the shifted product fits in i32 either way.
    let v = if TRUNCATE {
        full >> cfg.shift
    } else {
        mac::shifted(full, cfg.shift, cfg.rounding) as i32
    };
    let p = v as i16; // the low 16 bits: the window, wrapped
    (p as i32, p as i32 != v)
}

/// `acc[t] += window(w * col[t])`; the caller keeps each output's products within
/// [`I32_PRODUCTS`], so the additions cannot overflow. Returns how many products left the
/// window.
#[inline(always)]
fn tap_into<const TRUNCATE: bool>(acc: &mut [i32], col: &[i16], w: i16, cfg: MacConfig) -> u64 {
    let mut overflows = 0u64;
    // Counted in `u32` lanes (which vectorize) over runs short enough not to wrap.
    for (acc, col) in acc.chunks_mut(1 << 31).zip(col.chunks(1 << 31)) {
        let mut run = 0u32;
        for (d, &a) in acc.iter_mut().zip(col) {
            let (p, out) = window::<TRUNCATE>(w, a, cfg);
            run += out as u32;
            *d += p;
        }
        overflows += run as u64;
    }
    overflows
}

/// The exact sum of `window(w[k] * x[k])`, in `i32` runs of [`I32_PRODUCTS`] added in `i64`,
/// and how many products left the window.
#[inline(always)]
fn dot<const TRUNCATE: bool>(w: &[i16], x: &[i16], cfg: MacConfig) -> (i64, u64) {
    let (mut sum, mut overflows) = (0i64, 0u64);
    for (w, x) in w.chunks(I32_PRODUCTS).zip(x.chunks(I32_PRODUCTS)) {
        let (mut part, mut run) = (0i32, 0u32);
        for (&w, &a) in w.iter().zip(x) {
            let (p, out) = window::<TRUNCATE>(w, a, cfg);
            run += out as u32;
            part += p;
        }
        sum += part as i64;
        overflows += run as u64;
    }
    (sum, overflows)
}

/// [`reference_conv`], given up (an error saying so) once `stop` is raised: checked at each
/// output channel of each image and tile, so a run stopped meanwhile need not wait for the
/// rest.
///
/// Equal to [`reference_conv_plain`] (the same products, each windowed alone, summed exactly),
/// as a matrix product: for each image and group, tiles of output rows; for each tile, its
/// patch matrix (for each channel and tap, the ifmap value every output of the tile meets
/// there, zero in the padding, which adds nothing and cannot overflow), made once for the
/// group's filters; for each filter, the weights times the patches, along the tile's outputs
/// (or, for a tile of a few outputs such as a fully connected layer's one, along each
/// output's patch): contiguous loops that vectorize, summed in `i32` (along a patch, in runs
/// added in `i64`) where the sum cannot overflow. A zero weight's products are zero and never
/// overflow: skipped.
pub fn reference_conv_until(
    layer: &ConvLayer,
    ifmap: &Tensor,
    weights: &Tensor,
    mac_cfg: MacConfig,
    relu: bool,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(Tensor, MacCounters), String> {
    check_reference(layer, ifmap, weights, mac_cfg)?;
    let args = (layer, ifmap, weights, mac_cfg, relu, stop);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe {
            if mac_cfg.rounding == Rounding::Truncate {
                patches_avx2::<true>(args)
            } else {
                patches_avx2::<false>(args)
            }
        };
    }
    if mac_cfg.rounding == Rounding::Truncate {
        patches::<true>(args)
    } else {
        patches::<false>(args)
    }
}

/// A reference convolution's arguments.
type ConvArgs<'a> = (
    &'a ConvLayer,
    &'a Tensor,
    &'a Tensor,
    MacConfig,
    bool,
    Option<&'a std::sync::atomic::AtomicBool>,
);

/// [`patches`] compiled for AVX2 (eight 32-bit lanes and a 32-bit multiply, where the
/// baseline x86-64 the workspace builds for has four and none): the same arithmetic,
/// several times faster.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn patches_avx2<const TRUNCATE: bool>(args: ConvArgs) -> Result<(Tensor, MacCounters), String> {
    patches::<TRUNCATE>(args)
}

#[inline(always)]
fn patches<const TRUNCATE: bool>(
    (layer, ifmap, weights, cfg, relu, stop): ConvArgs,
) -> Result<(Tensor, MacCounters), String> {
    let mut counters = MacCounters::default();
    let mut out = Tensor::zeros(ofmap_dims(layer));
    let (cg, mg) = (layer.cg() as usize, layer.mg() as usize);
    let (h, w_in) = (layer.h as usize, layer.w as usize);
    let (r_n, s_n) = (layer.r as usize, layer.s as usize);
    let (e_n, f_n) = (layer.e() as usize, layer.f() as usize);
    let (sv, sh) = (
        layer.stride_v.max(1) as usize,
        layer.stride_h.max(1) as usize,
    );
    let pad = layer.pad as usize;
    // One patch: a filter's weights, `[C/G][R][S]`.
    let k_n = cg * r_n * s_n;
    if k_n == 0 || e_n * f_n == 0 {
        return Ok((out, counters));
    }
    // Tiles of whole output rows while a row's patches fit the tile, else of part of a row
    // (at least one output: its patch is as long as a filter). So the outputs of a tile lie
    // together in the ofmap either way.
    let (tile_rows, tile_cols) = match (k_n.checked_mul(f_n), TILE_VALUES / k_n) {
        (Some(row), _) if row <= TILE_VALUES => ((TILE_VALUES / row).clamp(1, e_n), f_n),
        (_, cols) => (1, cols.clamp(1, f_n)),
    };
    let mut col: Vec<i16> = Vec::new();
    let mut acc: Vec<i32> = Vec::new();
    let tiles = (0..e_n)
        .step_by(tile_rows)
        .flat_map(|e0| (0..f_n).step_by(tile_cols).map(move |f0| (e0, f0)));
    for n in 0..layer.n as usize {
        for g in 0..layer.groups as usize {
            for (e0, f0) in tiles.clone() {
                let (e1, f1) = ((e0 + tile_rows).min(e_n), (f0 + tile_cols).min(f_n));
                let cols = f1 - f0;
                let t_n = (e1 - e0) * cols;
                let by_tap = t_n >= DOT_BELOW;
                // The tile's patches: `[K][T]` when summed tap by tap, `[T][K]` output by
                // output.
                col.clear();
                col.resize(k_n * t_n, 0);
                for c in 0..cg {
                    let base = ifmap.index([n, g * cg + c, 0, 0]);
                    let chan = &ifmap.data[base..base + h * w_in];
                    for r in 0..r_n {
                        for s in 0..s_n {
                            let k = (c * r_n + r) * s_n + s;
                            for e in e0..e1 {
                                let Some(y) = (e * sv + r).checked_sub(pad).filter(|&y| y < h)
                                else {
                                    continue;
                                };
                                for f in f0..f1 {
                                    let Some(x) =
                                        (f * sh + s).checked_sub(pad).filter(|&x| x < w_in)
                                    else {
                                        continue;
                                    };
                                    let t = (e - e0) * cols + (f - f0);
                                    let at = if by_tap { k * t_n + t } else { t * k_n + k };
                                    col[at] = chan[y * w_in + x];
                                }
                            }
                        }
                    }
                }
                for m in g * mg..(g + 1) * mg {
                    if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                        return Err("the reference convolution was stopped".into());
                    }
                    let wm = &weights.data[m * k_n..(m + 1) * k_n];
                    let at = out.index([n, m, e0, f0]);
                    let dst = &mut out.data[at..at + t_n];
                    if by_tap {
                        // At most `k_n <= TILE_VALUES / DOT_BELOW` products an output: `i32`
                        // holds their sum.
                        acc.clear();
                        acc.resize(t_n, 0);
                        for (k, &wt) in wm.iter().enumerate() {
                            if wt != 0 {
                                counters.product_overflows += tap_into::<TRUNCATE>(
                                    &mut acc,
                                    &col[k * t_n..(k + 1) * t_n],
                                    wt,
                                    cfg,
                                );
                            }
                        }
                        for (o, a) in dst.iter_mut().zip(&acc) {
                            *o = wrap_output(*a as i64, relu, &mut counters);
                        }
                    } else {
                        for (t, o) in dst.iter_mut().enumerate() {
                            let (sum, overflows) =
                                dot::<TRUNCATE>(wm, &col[t * k_n..(t + 1) * k_n], cfg);
                            counters.product_overflows += overflows;
                            *o = wrap_output(sum, relu, &mut counters);
                        }
                    }
                }
            }
        }
    }
    Ok((out, counters))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loops as the baseline x86-64 (or any other target) runs them, without the AVX2
    /// build that [`reference_conv`] picks where it can: equal to the plain loops, on layers
    /// with padding, strides and groups, tiles summed both ways, and products and sums that
    /// overflow. (The integration tests check the picked build.)
    #[test]
    fn the_baseline_build_equals_the_plain_loops() {
        let mut rng = SplitMix64::new(7);
        let shapes = [
            // (n, g, c/g, h, w, m/g, r, s, stride, pad)
            (1, 1, 3, 11, 11, 4, 3, 3, 1, 1),
            (2, 2, 2, 9, 13, 3, 3, 5, 2, 2),
            (1, 1, 2, 12, 12, 2, 5, 5, 4, 0),
            (1, 1, 5, 4, 4, 3, 4, 4, 1, 0),
            (1, 3, 1, 7, 6, 1, 1, 1, 1, 0),
        ];
        for (n, g, cpg, h, w, mpg, r, s, u, pad) in shapes {
            let l = ConvLayer {
                name: "t".into(),
                n,
                c: g * cpg,
                h,
                w,
                m: g * mpg,
                r,
                s,
                stride_v: u,
                stride_h: u,
                pad,
                groups: g,
                ifmap_zero_fraction: 0.0,
                first: false,
            };
            l.validate().unwrap();
            let mut wild = |dims: [usize; 4]| {
                let mut t = Tensor::zeros(dims);
                for v in t.data.iter_mut() {
                    *v = match rng.next_u64() % 6 {
                        0 => 0,
                        1 => i16::MIN,
                        _ => rng.next_u64() as i16,
                    };
                }
                t
            };
            let x = wild([n as usize, l.c as usize, h as usize, w as usize]);
            let wt = wild([l.m as usize, cpg as usize, r as usize, s as usize]);
            for (shift, rounding) in [(15, Rounding::Truncate), (3, Rounding::NearestEven)] {
                let cfg = MacConfig {
                    shift,
                    rounding,
                    overflow: Overflow::Wrap,
                };
                let plain = reference_conv_plain(&l, &x, &wt, cfg, true).unwrap();
                let args = (&l, &x, &wt, cfg, true, None);
                let got = if rounding == Rounding::Truncate {
                    patches::<true>(args)
                } else {
                    patches::<false>(args)
                }
                .unwrap();
                assert_eq!(got, plain, "{}", l.name);
                assert!(plain.1.product_overflows > 0);
            }
        }
    }
}
