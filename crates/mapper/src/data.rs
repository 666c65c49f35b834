//! What the counts need to know of the data: the coded size of each feature-map row on the DRAM
//! bus, and how many MACs zero gating skips. Exact from tensors, or expected from a zero
//! fraction when ranking mappings before any data exists.

use rowsim_datapath::rlc::{encoded_len, RlcFormat};
use rowsim_workload::{ConvLayer, Tensor};

use crate::mapping::Problem;

/// The data-dependent terms of the access counts.
pub trait DataModel {
    /// DRAM words (16-bit units) of the ifmap row stream of image `n`, channel `c` (counted
    /// across groups), input row `y`.
    fn ifmap_row_words(&self, n: u32, c: u32, y: u32) -> u64;
    /// DRAM words of the ofmap row stream of image `n`, filter `m` (across groups), row `e`.
    fn ofmap_row_words(&self, n: u32, m: u32, e: u32) -> u64;
    /// MACs zero gating skips in the whole layer (ifmap zeros, padding included).
    fn gated_macs(&self) -> u64;
    /// MAC slots whose ifmap value is nonzero but whose weight is zero (what zero skipping
    /// skips beyond the gated ones). 0 when the weights are not known (dense).
    fn weight_zero_macs(&self) -> u64 {
        0
    }
    /// The layer's weights `[M][C/G][R][S]`, when known (coded filter streams are sized from
    /// them).
    fn weights(&self) -> Option<&Tensor> {
        None
    }
    /// Whether every row of a kind has the same words whatever its image, channel and row
    /// (expected terms): the totals are then one row's times the count, without a loop over
    /// the batch.
    fn uniform_rows(&self) -> bool {
        false
    }
}

/// DRAM words of a raw stream of `values`: the bus moves whole 64-bit words of 4 values, so a
/// stream costs `4 * ceil(values / 4)`.
pub fn raw_words(values: u64) -> u64 {
    values.div_ceil(4) * 4
}

/// Words of the bus per coded word.
fn words_per_coded(fmt: &RlcFormat) -> u64 {
    (fmt.word_bits as u64).div_ceil(16)
}

/// Uses of each padded input row (or column): how many (output, tap) pairs read it.
pub(crate) fn uses(out: u32, taps: u32, stride: u32, padded: u32) -> Vec<u64> {
    let mut v = vec![0u64; padded as usize];
    for o in 0..out {
        for k in 0..taps {
            v[(o * stride + k) as usize] += 1;
        }
    }
    v
}

/// Exact terms from the tensors of a run.
pub struct ExactData<'a> {
    pub layer: &'a ConvLayer,
    /// `[N][C][H][W]`, unpadded.
    pub ifmap: &'a Tensor,
    /// `[N][M][E][F]`, as written to DRAM (after ReLU).
    pub ofmap: &'a Tensor,
    pub rlc: RlcFormat,
    /// Whether ifmaps cross the bus coded (every layer but a network's first, on Eyeriss).
    pub ifmap_coded: bool,
    /// Whether the ofmap crosses the bus coded (`rlc.code_feature_maps`).
    pub ofmap_coded: bool,
    /// `[M][C/G][R][S]`, when known: zero skipping skips the MACs of zero weights too.
    pub weights: Option<&'a Tensor>,
}

impl DataModel for ExactData<'_> {
    fn ifmap_row_words(&self, n: u32, c: u32, y: u32) -> u64 {
        let row = self.ifmap.row(n as usize, c as usize, y as usize);
        if self.ifmap_coded {
            encoded_len(&self.rlc, row) as u64 * words_per_coded(&self.rlc)
        } else {
            raw_words(row.len() as u64)
        }
    }

    fn ofmap_row_words(&self, n: u32, m: u32, e: u32) -> u64 {
        let row = self.ofmap.row(n as usize, m as usize, e as usize);
        if self.ofmap_coded {
            encoded_len(&self.rlc, row) as u64 * words_per_coded(&self.rlc)
        } else {
            raw_words(row.len() as u64)
        }
    }

    fn gated_macs(&self) -> u64 {
        let pb = Problem::of(self.layer);
        let v = uses(pb.e, pb.r, pb.u, pb.h + 2 * pb.pad);
        let h = uses(pb.f, pb.s, pb.uh, pb.wp());
        let all: u64 = v.iter().sum::<u64>() * h.iter().sum::<u64>();
        let mut gated = 0u64;
        for n in 0..pb.n as usize {
            for c in 0..self.layer.c as usize {
                let mut nonzero = 0u64;
                for y in 0..pb.h as usize {
                    let row = self.ifmap.row(n, c, y);
                    let vy = v[y + pb.pad as usize];
                    for (x, &val) in row.iter().enumerate() {
                        if val != 0 {
                            nonzero += vy * h[x + pb.pad as usize];
                        }
                    }
                }
                gated += (all - nonzero) * pb.m as u64;
            }
        }
        gated
    }

    fn weights(&self) -> Option<&Tensor> {
        self.weights
    }

    fn weight_zero_macs(&self) -> u64 {
        let Some(w) = self.weights else {
            return 0;
        };
        let l = self.layer;
        let (cg, mg) = (l.cg() as usize, l.mg() as usize);
        let (e, f, pad) = (l.e() as usize, l.f() as usize, l.pad as i64);
        let mut total = 0u64;
        for g in 0..l.groups as usize {
            for cc in 0..cg {
                let ch = g * cg + cc;
                for r in 0..l.r as usize {
                    for s in 0..l.s as usize {
                        let zeros = (g * mg..(g + 1) * mg)
                            .filter(|&m| w.get([m, cc, r, s]) == 0)
                            .count() as u64;
                        if zeros == 0 {
                            continue;
                        }
                        // Output positions whose input under this tap is real and nonzero.
                        let mut nonzero = 0u64;
                        for n in 0..l.n as usize {
                            for ey in 0..e {
                                let y = (ey * l.stride_v as usize + r) as i64 - pad;
                                if y < 0 || y >= l.h as i64 {
                                    continue;
                                }
                                let row = self.ifmap.row(n, ch, y as usize);
                                for fx in 0..f {
                                    let x = (fx * l.stride_h as usize + s) as i64 - pad;
                                    if x >= 0 && x < l.w as i64 && row[x as usize] != 0 {
                                        nonzero += 1;
                                    }
                                }
                            }
                        }
                        total += zeros * nonzero;
                    }
                }
            }
        }
        total
    }
}

/// Expected terms from zero fractions, for ranking mappings: a value is zero with probability
/// `ifmap_zero_fraction` (`ofmap_zero_fraction` for outputs), independently.
pub struct ExpectedData<'a> {
    pub layer: &'a ConvLayer,
    pub rlc: RlcFormat,
    pub ifmap_coded: bool,
    pub ofmap_coded: bool,
    pub ifmap_zero_fraction: f64,
    pub ofmap_zero_fraction: f64,
    /// The layer's weights, when known before the run (compressed rows are then sized
    /// exactly, so the search can take mappings only a sparse layer fits).
    pub weights: Option<&'a Tensor>,
}

impl ExpectedData<'_> {
    /// Expected coded words of a row of `len` values with zero fraction `z`: a pair per
    /// nonzero, one more per `max_run + 1` zeros of a run, one for a trailing run.
    fn coded(&self, len: u32, z: f64) -> u64 {
        let span = (self.rlc.max_run() + 1) as f64;
        let pairs = (1.0 - z) * len as f64 + z * len as f64 / span + z;
        let words = (pairs / self.rlc.pairs_per_word as f64).ceil().max(1.0) as u64;
        words * words_per_coded(&self.rlc)
    }
}

impl DataModel for ExpectedData<'_> {
    fn ifmap_row_words(&self, _n: u32, _c: u32, _y: u32) -> u64 {
        if self.ifmap_coded {
            self.coded(self.layer.w, self.ifmap_zero_fraction)
        } else {
            raw_words(self.layer.w as u64)
        }
    }

    fn ofmap_row_words(&self, _n: u32, _m: u32, _e: u32) -> u64 {
        if self.ofmap_coded {
            self.coded(self.layer.f(), self.ofmap_zero_fraction)
        } else {
            raw_words(self.layer.f() as u64)
        }
    }

    fn gated_macs(&self) -> u64 {
        let pb = Problem::of(self.layer);
        let v = uses(pb.e, pb.r, pb.u, pb.h + 2 * pb.pad);
        let h = uses(pb.f, pb.s, pb.uh, pb.wp());
        let all: u64 = v.iter().sum::<u64>() * h.iter().sum::<u64>();
        let real_v: u64 = v[pb.pad as usize..(pb.pad + pb.h) as usize].iter().sum();
        let real_h: u64 = h[pb.pad as usize..(pb.pad + pb.w) as usize].iter().sum();
        let real = real_v * real_h;
        let per_plane = (all - real) as f64 + self.ifmap_zero_fraction * real as f64;
        (per_plane * (pb.groups * pb.n * pb.c * pb.m) as f64).round() as u64
    }

    fn weights(&self) -> Option<&Tensor> {
        self.weights
    }

    fn uniform_rows(&self) -> bool {
        true
    }
}

/// The data terms summed once per layer, so pricing a mapping costs O(rows), not O(tensor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataTotals {
    /// DRAM words of input row `y`, over all images and channels.
    pub ifmap_row: Vec<u64>,
    /// DRAM words of the whole ofmap.
    pub ofmap: u64,
    /// MAC slots not performed: gated ones (ifmap zeros, padding included; 0 without zero
    /// gating) or, with zero skipping, skipped ones (an ifmap or a weight zero).
    pub gated: u64,
    /// MAC slots whose ifmap value is zero (padding included), gated or not.
    pub ifmap_zero: u64,
    /// Whether the machine skips zeros (`datapath.zero_skipping`).
    pub skipping: bool,
    /// Filter streams cross the bus coded (`rlc.code_filters`): the format, and the weights
    /// when known, tap-major (each pass's stream is then sized exactly; else as a dense
    /// stream).
    pub filter_coding: Option<(RlcFormat, Option<crate::nest::TapMajor>)>,
    /// Weights held compressed (`spad.filter.compressed`): the weights when known (each row is
    /// then sized exactly, see [`crate::sparse`]), else `None` (every weight taken as nonzero).
    pub compressed: Option<Option<Tensor>>,
}

/// Bus words of a coded stream of `values`.
pub fn coded_words(fmt: &RlcFormat, values: &[i16]) -> u64 {
    encoded_len(fmt, values) as u64 * words_per_coded(fmt)
}

/// Bus words of a coded stream counted as it came ([`rowsim_datapath::rlc::PairCount`]).
pub fn coded_words_of(fmt: &RlcFormat, count: &rowsim_datapath::rlc::PairCount) -> u64 {
    count.words() as u64 * words_per_coded(fmt)
}

/// Bus words of a coded stream of `len` nonzero values: a pair each.
pub fn coded_dense_words(fmt: &RlcFormat, len: u64) -> u64 {
    len.div_ceil(fmt.pairs_per_word as u64).max(1) * words_per_coded(fmt)
}

impl DataTotals {
    /// The totals on a machine: without zero gating (`datapath.zero_gating = false`) no MAC is
    /// gated.
    pub fn on(pb: &Problem, data: &dyn DataModel, hw: &rowsim_config::HwConfig) -> Self {
        let mut t = Self::of(pb, data);
        if hw.rlc.code_filters {
            let r = &hw.rlc;
            if let Ok(fmt) = RlcFormat::new(r.run_bits, r.level_bits, r.pairs_per_word, r.word_bits)
            {
                t.filter_coding = Some((fmt, data.weights().map(crate::nest::TapMajor::of)));
            }
        }
        if hw.spad.filter.compressed {
            t.compressed = Some(data.weights().cloned());
        }
        if hw.datapath.zero_skipping {
            t.skipping = true;
            t.gated = t.ifmap_zero + data.weight_zero_macs();
        } else if !hw.datapath.zero_gating {
            t.gated = 0;
        }
        t
    }

    pub fn of(pb: &Problem, data: &dyn DataModel) -> Self {
        if data.uniform_rows() {
            // Every row alike: counts times one row's words (wrapping never: a layer's rows
            // and words are bounded by its validated tensor sizes).
            let planes = pb.n as u64 * (pb.groups * pb.real.c) as u64;
            let ifmap_row = vec![planes * data.ifmap_row_words(0, 0, 0); pb.h as usize];
            let ofmap_rows = pb.n as u64 * (pb.groups * pb.m) as u64 * pb.e as u64;
            let ifmap_zero = data.gated_macs();
            return DataTotals {
                ifmap_row,
                ofmap: ofmap_rows * data.ofmap_row_words(0, 0, 0),
                gated: ifmap_zero,
                ifmap_zero,
                skipping: false,
                filter_coding: None,
                compressed: None,
            };
        }
        let mut ifmap_row = vec![0u64; pb.h as usize];
        for (y, total) in ifmap_row.iter_mut().enumerate() {
            for img in 0..pb.n {
                for c in 0..pb.groups * pb.real.c {
                    *total += data.ifmap_row_words(img, c, y as u32);
                }
            }
        }
        let mut ofmap = 0;
        for img in 0..pb.n {
            for m in 0..pb.groups * pb.m {
                for row in 0..pb.e {
                    ofmap += data.ofmap_row_words(img, m, row);
                }
            }
        }
        let ifmap_zero = data.gated_macs();
        DataTotals {
            ifmap_row,
            ofmap,
            gated: ifmap_zero,
            ifmap_zero,
            skipping: false,
            filter_coding: None,
            compressed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected terms, with the loop over every row.
    struct Looped<'a>(ExpectedData<'a>);

    impl DataModel for Looped<'_> {
        fn ifmap_row_words(&self, n: u32, c: u32, y: u32) -> u64 {
            self.0.ifmap_row_words(n, c, y)
        }
        fn ofmap_row_words(&self, n: u32, m: u32, e: u32) -> u64 {
            self.0.ofmap_row_words(n, m, e)
        }
        fn gated_macs(&self) -> u64 {
            self.0.gated_macs()
        }
    }

    /// Uniform rows summed as counts times one row equal the row-by-row sums, coded or raw,
    /// grouped or not, on AlexNet's layers at batch 3.
    #[test]
    fn uniform_totals_equal_the_loop_over_every_row() {
        let rlc = RlcFormat::new(5, 16, 3, 64).unwrap();
        for layer in rowsim_workload::alexnet() {
            let layer = layer.with_batch(3);
            let pb = Problem::of(&layer);
            for coded in [false, true] {
                let data = |z: f64| ExpectedData {
                    layer: &layer,
                    rlc,
                    ifmap_coded: coded,
                    ofmap_coded: coded,
                    ifmap_zero_fraction: z,
                    ofmap_zero_fraction: 0.5,
                    weights: None,
                };
                let fast = DataTotals::of(&pb, &data(0.6));
                let slow = DataTotals::of(&pb, &Looped(data(0.6)));
                assert_eq!(fast, slow, "{} coded {coded}", layer.name);
            }
        }
    }
}
