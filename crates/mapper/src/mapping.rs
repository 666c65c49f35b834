//! Mappings, their placement on the array, and the rules that make one legal.

use std::fmt;

use rowsim_config::HwConfig;
use rowsim_workload::ConvLayer;
use serde::{Deserialize, Serialize};

use crate::dataflow::Dataflow;

/// A layer as the mapper sees it: one group's shape, and how many groups, lowered for a
/// dataflow (see [`crate::dataflow`]): `c`, `r`, `s`, `u` and `uh` are the lowered layer's
/// (virtual channels, filter rows and taps per virtual channel, strides); `h`, `w` and `pad`
/// are the real input's, and `real` holds the real filter shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem {
    pub dataflow: Dataflow,
    pub real: RealShape,
    pub groups: u32,
    pub n: u32,
    /// Channels (virtual) and filters per group.
    pub c: u32,
    pub m: u32,
    pub h: u32,
    pub w: u32,
    pub pad: u32,
    pub r: u32,
    pub s: u32,
    pub u: u32,
    pub uh: u32,
    pub e: u32,
    pub f: u32,
}

/// The real channels per group, filter shape and strides of a lowered problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealShape {
    pub c: u32,
    pub r: u32,
    pub s: u32,
    pub u: u32,
    pub uh: u32,
}

impl Problem {
    /// The layer as row stationary sees it (nothing lowered).
    pub fn of(layer: &ConvLayer) -> Self {
        Self::lowered(layer, Dataflow::Rs)
    }

    /// The layer lowered for `dataflow`.
    pub fn lowered(layer: &ConvLayer, dataflow: Dataflow) -> Self {
        let (fr, ft) = (dataflow.folds_rows(), dataflow.folds_taps());
        let kr = if fr { layer.r } else { 1 };
        let ks = if ft { layer.s } else { 1 };
        Problem {
            dataflow,
            real: RealShape {
                c: layer.cg(),
                r: layer.r,
                s: layer.s,
                u: layer.stride_v,
                uh: layer.stride_h,
            },
            groups: layer.groups,
            n: layer.n,
            c: layer.cg() * kr * ks,
            m: layer.mg(),
            h: layer.h,
            w: layer.w,
            pad: layer.pad,
            r: layer.r / kr,
            s: layer.s / ks,
            u: if fr { 1 } else { layer.stride_v },
            uh: if ft { 1 } else { layer.stride_h },
            e: layer.e(),
            f: layer.f(),
        }
    }

    /// Virtual channels per real channel (`KR * KS`).
    pub fn pieces(&self) -> u32 {
        self.c / self.real.c
    }

    /// Real channel, filter row offset and tap offset of virtual channel `cv` (per group).
    pub fn piece(&self, cv: u32) -> (u32, u32, u32) {
        let ks = if self.dataflow.folds_taps() {
            self.real.s
        } else {
            1
        };
        let kr = if self.dataflow.folds_rows() {
            self.real.r
        } else {
            1
        };
        (cv / (kr * ks), (cv / ks) % kr, cv % ks)
    }

    /// Real (channel, padded row, padded column) of virtual channel `cv` at virtual padded row
    /// `y` and column `x`.
    pub fn real_of(&self, cv: u32, y: u32, x: u32) -> (u32, u32, u32) {
        let (c, ir, js) = self.piece(cv);
        let y = if self.dataflow.folds_rows() {
            y * self.real.u + ir
        } else {
            y
        };
        let x = if self.dataflow.folds_taps() {
            x * self.real.uh + js
        } else {
            x
        };
        (c, y, x)
    }

    /// Real (channel, filter row, filter column) of weight `(i, s)` of virtual channel `cv`.
    pub fn real_weight(&self, cv: u32, i: u32, s: u32) -> (u32, u32, u32) {
        let (c, ir, js) = self.piece(cv);
        (c, ir + i, js + s)
    }

    /// Whether a padded (real) position holds data rather than padding.
    pub fn is_real(&self, y: u32, x: u32) -> bool {
        y >= self.pad && y - self.pad < self.h && x >= self.pad && x - self.pad < self.w
    }

    /// The real channels block `cb` of `qr` virtual channels loads (the first and how many);
    /// `qr` must divide or be a multiple of [`Problem::pieces`].
    pub fn block_channels(&self, qr: u32, cb: u32) -> (u32, u32) {
        let k = self.pieces();
        ((cb * qr) / k, (qr / k).max(1))
    }

    /// How many times each real channel's band is loaded per strip: once, unless a block covers
    /// only part of a channel.
    pub fn reloads(&self, qr: u32) -> u32 {
        (self.pieces() / qr).max(1)
    }

    /// Padded row width.
    pub fn wp(&self) -> u32 {
        self.w + 2 * self.pad
    }

    /// Columns of a padded row that some output uses, `(F-1)*U + S`: what each PE receives per
    /// row (a stride that does not divide the row leaves trailing columns no one reads).
    pub fn w_used(&self) -> u32 {
        (self.f - 1) * self.uh + self.s
    }

    /// MAC slots of the whole layer.
    pub fn macs(&self) -> u64 {
        [
            self.groups,
            self.n,
            self.m,
            self.c,
            self.e,
            self.f,
            self.r,
            self.s,
        ]
        .iter()
        .map(|&x| x as u64)
        .product()
    }

    /// Output rows of strip `eb` for strips of `e`.
    pub fn strip_rows(&self, e: u32, eb: u32) -> u32 {
        e.min(self.e - eb * e)
    }

    /// Real (unpadded) input rows `[lo, hi)` of the band strip `eb` needs.
    pub fn band(&self, e: u32, eb: u32) -> (u32, u32) {
        let first = eb * e * self.real.u; // padded
        let last = first + (self.strip_rows(e, eb) - 1) * self.real.u + self.real.r; // exclusive, padded
        let lo = first.saturating_sub(self.pad).min(self.h);
        let hi = last.saturating_sub(self.pad).min(self.h);
        (lo, hi)
    }
}

/// A mapping: the RS letters (see the crate docs) and the dataflow they keep to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mapping {
    /// The dataflow whose restrictions the letters keep to (row stationary unless said).
    #[serde(default, skip_serializing_if = "Dataflow::is_rs")]
    pub dataflow: Dataflow,
    pub m: u32,
    pub n: u32,
    pub e: u32,
    pub p: u32,
    pub q: u32,
    pub r: u32,
    pub t: u32,
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.dataflow.is_rs() {
            write!(f, "{} ", self.dataflow)?;
        }
        write!(
            f,
            "m={} n={} e={} p={} q={} r={} t={}",
            self.m, self.n, self.e, self.p, self.q, self.r, self.t
        )
    }
}

impl std::str::FromStr for Mapping {
    type Err = String;
    /// `m=96,n=1,e=7,p=16,q=1,r=1,t=2` (all seven, any order), and optionally `df=ws` (the
    /// dataflow; row stationary if not given).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut v = [None; 7];
        let names = ["m", "n", "e", "p", "q", "r", "t"];
        let mut dataflow = Dataflow::Rs;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, x) = part
                .split_once('=')
                .ok_or_else(|| format!("mapping `{s}`: `{part}` is not NAME=VALUE"))?;
            if k.trim() == "df" {
                dataflow = x.parse().map_err(|e| format!("mapping `{s}`: {e}"))?;
                continue;
            }
            let i = names.iter().position(|n| *n == k.trim()).ok_or_else(|| {
                format!("mapping `{s}`: unknown `{k}`; the letters are m n e p q r t (and df)")
            })?;
            v[i] = Some(
                x.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("mapping `{s}`: {k}={x} is not a whole number"))?,
            );
        }
        let get = |i: usize| v[i].ok_or_else(|| format!("mapping `{s}`: {} is missing", names[i]));
        Ok(Mapping {
            dataflow,
            m: get(0)?,
            n: get(1)?,
            e: get(2)?,
            p: get(3)?,
            q: get(4)?,
            r: get(5)?,
            t: get(6)?,
        })
    }
}

/// Where a mapping's sets sit in the array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Segments a set is split into (`ceil(e / cols)`).
    pub segments: u32,
    /// Columns of a block (`min(e, cols)`).
    pub block_cols: u32,
    /// Rows of a block: a chain of `r` sets (`R * r`).
    pub block_rows: u32,
    /// Blocks that fit across and down.
    pub across: u32,
    pub down: u32,
    pub pes_used: u32,
}

/// Why a layer or a mapping does not fit a machine; every variant names the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error(
        "layer `{layer}`: {what} is {value}; the machine supports {limit} (hw-config `{field}`)"
    )]
    Layer {
        layer: String,
        what: &'static str,
        value: u32,
        limit: String,
        field: &'static str,
    },
    #[error("mapping {mapping}: {why}")]
    Mapping { mapping: Mapping, why: String },
    #[error("layer `{layer}`: no legal {} mapping on {machine}: {why}", dataflow.name().to_uppercase())]
    NoMapping {
        dataflow: Dataflow,
        layer: String,
        machine: String,
        why: String,
    },
    #[error("{why}")]
    Shape { layer: String, why: String },
}

/// Whether the machine supports a layer's shape natively (SPEC.md's limits), by name.
pub fn check_layer(layer: &ConvLayer, hw: &HwConfig) -> Result<(), MapError> {
    layer.validate().map_err(|e| MapError::Shape {
        layer: layer.name.clone(),
        why: e.to_string(),
    })?;
    let l = &hw.limits;
    let over = |what, value: u32, max: u32, field| {
        (value > max).then(|| MapError::Layer {
            layer: layer.name.clone(),
            what,
            value,
            limit: format!("at most {max}"),
            field,
        })
    };
    let checks = [
        over(
            "filter height R",
            layer.r,
            l.max_filter_height,
            "limits.max_filter_height",
        ),
        over("filter height R", layer.r, hw.array.rows, "array.rows"),
        over(
            "filter width S",
            layer.s,
            l.max_filter_width,
            "limits.max_filter_width",
        ),
        over("filters M", layer.m, l.max_filters, "limits.max_filters"),
        over("channels C", layer.c, l.max_channels, "limits.max_channels"),
        over(
            "horizontal stride",
            layer.stride_h,
            l.max_horizontal_stride,
            "limits.max_horizontal_stride",
        ),
    ];
    if let Some(e) = checks.into_iter().flatten().next() {
        return Err(e);
    }
    if !l.vertical_strides.contains(&layer.stride_v) {
        return Err(MapError::Layer {
            layer: layer.name.clone(),
            what: "vertical stride",
            value: layer.stride_v,
            limit: format!("one of {:?}", l.vertical_strides),
            field: "limits.vertical_strides",
        });
    }
    Ok(())
}

/// 16-bit words in one GLB bank.
pub fn bank_words(hw: &HwConfig) -> u64 {
    hw.glb.bank_entries as u64 * (hw.glb.bank_width_bits / hw.datapath.word_bits) as u64
}

impl Mapping {
    /// Where the sets go, if they fit the array.
    pub fn placement(&self, pb: &Problem, hw: &HwConfig) -> Option<Placement> {
        let (rows, cols) = (hw.array.rows, hw.array.cols);
        let segments = self.e.div_ceil(cols);
        let block_cols = self.e.min(cols);
        let block_rows = pb.r * self.r;
        if block_rows > rows || block_cols == 0 {
            return None;
        }
        let (across, down) = (cols / block_cols, rows / block_rows);
        if (across * down) < self.t * segments {
            return None;
        }
        Some(Placement {
            segments,
            block_cols,
            block_rows,
            across,
            down,
            pes_used: pb.r * self.r * self.t * self.e,
        })
    }

    /// GLB shared banks (ifmap, psum) this mapping needs.
    pub fn glb_banks(&self, pb: &Problem, hw: &HwConfig) -> (u64, u64) {
        let bw = bank_words(hw);
        let band_rows = (0..pb.e.div_ceil(self.e))
            .map(|eb| {
                let (lo, hi) = pb.band(self.e, eb);
                hi - lo
            })
            .max()
            .unwrap_or(0) as u64;
        let (_, chans) = pb.block_channels(self.q * self.r, 0);
        let ifmap = self.n as u64 * chans as u64 * band_rows * pb.w as u64;
        let psum = self.n as u64 * self.m as u64 * self.e.min(pb.e) as u64 * pb.f as u64;
        (ifmap.div_ceil(bw), psum.div_ceil(bw))
    }

    /// Checks every rule; the error says which one broke and the numbers. On a machine with
    /// compressed weights (`spad.filter.compressed`) every weight is taken as nonzero (the
    /// worst case; [`Mapping::check_rows`] checks against the layer's weights).
    pub fn check(&self, pb: &Problem, hw: &HwConfig) -> Result<Placement, MapError> {
        self.check_rows(pb, hw, None)
    }

    /// [`Mapping::check`] with the compressed sizes of the layer's filter rows for this
    /// mapping's `(p, q)` (see [`crate::sparse`]), on a machine with compressed weights: a row's
    /// `p*q*S` weights must fit the mask (`spad.filter.mask_bits`), its nonzero weights the
    /// filter spad, and a pass's `t*r*R` rows (each as long as the longest, aligned to a bank
    /// entry) the GLB's filter banks. `None`, or a machine without compression: dense.
    pub fn check_rows(
        &self,
        pb: &Problem,
        hw: &HwConfig,
        rows: Option<&crate::sparse::FilterRows>,
    ) -> Result<Placement, MapError> {
        let fail = |why: String| {
            Err(MapError::Mapping {
                mapping: *self,
                why,
            })
        };
        let Mapping {
            dataflow,
            m,
            n,
            e,
            p,
            q,
            r,
            t,
        } = *self;
        if [m, n, e, p, q, r, t].contains(&0) {
            return fail("every letter must be at least 1".into());
        }
        if dataflow != pb.dataflow {
            return fail(format!(
                "the layer was lowered for {}, not {dataflow}",
                pb.dataflow
            ));
        }
        if let Err(why) = dataflow.allows(self) {
            return fail(why);
        }
        let k = pb.pieces();
        if !(q * r).is_multiple_of(k) && !k.is_multiple_of(q * r) {
            return fail(format!(
                "q*r={} virtual channels must be a multiple or a divisor of the {k} pieces of a channel",
                q * r
            ));
        }
        if !pb.n.is_multiple_of(n) {
            return fail(format!("n={n} must divide the batch N={}", pb.n));
        }
        if !pb.m.is_multiple_of(m) {
            return fail(format!(
                "m={m} must divide the filters per group M={}",
                pb.m
            ));
        }
        if m % (p * t) != 0 {
            return fail(format!("p*t={} must divide m={m}", p * t));
        }
        if !pb.c.is_multiple_of(q * r) {
            return fail(format!(
                "q*r={} must divide the channels per group C={}",
                q * r,
                pb.c
            ));
        }
        if e > pb.e {
            return fail(format!("e={e} is more than the output rows E={}", pb.e));
        }
        let sp = &hw.spad;
        let dense_rows;
        let compressed = match (sp.filter.compressed, rows) {
            (false, _) => None,
            (true, Some(r)) if (r.p, r.q) == (p, q) => Some(r),
            (true, Some(r)) => {
                return fail(format!(
                    "the filter rows were sized for p={} q={}, not p={p} q={q}",
                    r.p, r.q
                ))
            }
            (true, None) => {
                dense_rows = crate::sparse::FilterRows::of(pb, p, q, None);
                Some(&dense_rows)
            }
        };
        if let Some(rows) = compressed {
            let bits = sp.filter.mask_bits.unwrap_or(0);
            if p * q * pb.s > bits {
                return fail(format!(
                    "p*q*S={} weights do not fit the weight zero mask (spad.filter.mask_bits = {bits})",
                    p * q * pb.s
                ));
            }
            if rows.max_nnz > sp.filter.entries as u64 {
                return fail(format!(
                    "a filter row of p*q*S={} weights has {} nonzero; the filter spad holds {} (spad.filter.entries)",
                    p * q * pb.s,
                    rows.max_nnz,
                    sp.filter.entries
                ));
            }
        } else if p * q * pb.s > sp.filter.entries {
            return fail(format!(
                "p*q*S={} weights do not fit the filter spad ({} entries)",
                p * q * pb.s,
                sp.filter.entries
            ));
        }
        if q * pb.s > sp.ifmap.entries {
            return fail(format!(
                "q*S={} ifmap values do not fit the ifmap spad ({} entries)",
                q * pb.s,
                sp.ifmap.entries
            ));
        }
        if p > sp.psum.entries {
            return fail(format!(
                "p={p} psums do not fit the psum spad ({} entries)",
                sp.psum.entries
            ));
        }
        let Some(placement) = self.placement(pb, hw) else {
            return fail(format!(
                "{t} filter group(s) x {} segment(s) of {} x {} PEs do not fit the {} x {} array",
                e.div_ceil(hw.array.cols),
                pb.r * r,
                e.min(hw.array.cols),
                hw.array.rows,
                hw.array.cols
            ));
        };
        let n = &hw.noc;
        if (pb.r * r - 1) as u64 >= 1u64 << n.row_id_bits
            || (t - 1) as u64 >= 1u64 << n.filter_gin.col_id_bits
        {
            return fail(format!(
                "filter tags name {} rows of a block and {t} filter groups; the NoC has {} row and {} filter column ID bits",
                pb.r * r,
                n.row_id_bits,
                n.filter_gin.col_id_bits
            ));
        }
        let bw = bank_words(hw);
        let filter_cap = hw.glb.filter_banks as u64 * bw;
        if let Some(rows) = compressed {
            let lanes = (hw.glb.bank_width_bits / hw.datapath.word_bits) as u64;
            let words = crate::sparse::pass_filter_words(pb, self, rows, lanes);
            if words > filter_cap {
                return fail(format!(
                    "a pass's {} compressed filter rows of up to {} words each ({words} words, rows aligned to bank entries) do not fit the GLB's {} filter banks ({filter_cap} words)",
                    t * r * pb.r,
                    rows.max_words(),
                    hw.glb.filter_banks
                ));
            }
        } else {
            let filter_words = (p * t * q * r * pb.r * pb.s) as u64;
            if filter_words > filter_cap {
                return fail(format!(
                    "a pass's {filter_words} weights do not fit the GLB's {} filter banks ({filter_cap} words)",
                    hw.glb.filter_banks
                ));
            }
        }
        let (ib, pbk) = self.glb_banks(pb, hw);
        if ib + pbk > hw.glb.shared_banks as u64 {
            return fail(format!(
                "the ifmap band needs {ib} and the psums {pbk} GLB banks; the GLB has {} shared banks",
                hw.glb.shared_banks
            ));
        }
        Ok(placement)
    }

    /// PEs at work averaged over the layer's passes: a strip of `e'` output rows keeps
    /// `R*r*t*e'` PEs busy, and every strip runs the same passes, so the mean is
    /// `R*r*t*E / ceil(E/e)`. Below [`Placement::pes_used`] when `e` does not divide `E` (the
    /// last strip is short): what the chip's "active PEs" are for a whole layer.
    pub fn active_pes(&self, pb: &Problem) -> f64 {
        let strips = pb.e.div_ceil(self.e.max(1)).max(1);
        (pb.r as u64 * self.r as u64 * self.t as u64 * pb.e as u64) as f64 / strips as f64
    }

    /// Processing passes of the whole layer.
    pub fn passes(&self, pb: &Problem) -> u64 {
        pb.groups as u64
            * (pb.n / self.n) as u64
            * (pb.m / self.m) as u64
            * pb.e.div_ceil(self.e) as u64
            * (pb.c / (self.q * self.r)) as u64
            * (self.m / (self.p * self.t)) as u64
    }
}
