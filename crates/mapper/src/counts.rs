//! Access counts of a mapping in closed form, and their energy.

use rowsim_config::HwConfig;
use serde::{Deserialize, Serialize};

use crate::data::DataTotals;
use crate::mapping::{Mapping, Problem};

pub use rowsim_types::PerType;

/// Everything a mapping moves and computes, in 16-bit words (see the crate docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub mapping: Mapping,
    pub pes_used: u32,
    pub passes: u64,
    /// MAC slots (performed or not).
    pub macs: u64,
    /// MAC slots not performed: gated (zero ifmap value, padding included), or with zero
    /// skipping skipped (a zero ifmap value or weight).
    pub macs_gated: u64,
    pub dram_reads: PerType,
    pub dram_writes: PerType,
    pub glb_reads: PerType,
    pub glb_writes: PerType,
    /// Words into or out of PE FIFOs.
    pub noc: PerType,
    pub spad_reads: PerType,
    pub spad_writes: PerType,
    /// Zero skipping's index reads (a position's window index, a visited ifmap value's
    /// pointer); 0 without skipping.
    #[serde(skip_serializing_if = "is_zero")]
    pub index_reads: u64,
    /// Compressed weights' index writes: the mask words written into the PEs' weight zero
    /// buffers; 0 without compression.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index_writes: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_f(v: &f64) -> bool {
    *v == 0.0
}

impl Counts {
    pub fn dram(&self) -> PerType {
        self.dram_reads.plus(&self.dram_writes)
    }
    pub fn glb(&self) -> PerType {
        self.glb_reads.plus(&self.glb_writes)
    }
    pub fn spad(&self) -> PerType {
        self.spad_reads.plus(&self.spad_writes)
    }
    /// Bytes read and written on the DRAM bus.
    pub fn dram_bytes(&self) -> (u64, u64) {
        (2 * self.dram_reads.total(), 2 * self.dram_writes.total())
    }

    /// Energy under the config's table (normalized per-word costs).
    pub fn energy(&self, hw: &HwConfig) -> Energy {
        let t = &hw.energy;
        let (dram, glb, noc, spad) = (self.dram(), self.glb(), self.noc, self.spad());
        let of = |k: fn(&PerType) -> u64| {
            t.dram * k(&dram) as f64
                + t.glb * k(&glb) as f64
                + t.noc * k(&noc) as f64
                + t.spad * k(&spad) as f64
        };
        let by_level = EnergyByLevel {
            dram: t.dram * dram.total() as f64,
            glb: t.glb * glb.total() as f64,
            noc: t.noc * noc.total() as f64,
            spad: t.spad * spad.total() as f64,
            mac: t.mac * (self.macs - self.macs_gated) as f64,
            index: t.skip_index.unwrap_or(0.0) * (self.index_reads + self.index_writes) as f64,
        };
        Energy {
            unit: t.unit.clone(),
            total: by_level.dram
                + by_level.glb
                + by_level.noc
                + by_level.spad
                + by_level.mac
                + by_level.index,
            by_level,
            by_type: EnergyByType {
                filter: of(|p| p.filter),
                ifmap: of(|p| p.ifmap),
                psum: of(|p| p.psum),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyByLevel {
    pub dram: f64,
    pub glb: f64,
    pub noc: f64,
    pub spad: f64,
    pub mac: f64,
    /// Zero skipping's index reads and compressed weights' index writes (`energy.skip_index`
    /// each).
    #[serde(default, skip_serializing_if = "is_zero_f")]
    pub index: f64,
}

/// Data movement energy per data type (the MAC's own energy is a level, not a type).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyByType {
    pub filter: f64,
    pub ifmap: f64,
    pub psum: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    pub unit: String,
    pub total: f64,
    pub by_level: EnergyByLevel,
    pub by_type: EnergyByType,
}

/// What the strips of one strip height `e` add up to, for a problem and its data: band values
/// (padded band rows less padding, times W), the band rows' DRAM words, and the real values the
/// passes read (see [`real_reads`]). They depend on `e` only, so a search prices every mapping
/// of one `e` from one sum ([`StripCache`]) instead of walking every strip again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripSums {
    pub band_values: u64,
    pub ifmap_dram: u64,
    pub real_reads: u64,
}

impl StripSums {
    pub fn of(pb: &Problem, e: u32, data: &DataTotals) -> Self {
        let mut s = StripSums {
            band_values: 0,
            ifmap_dram: 0,
            real_reads: 0,
        };
        for eb in 0..pb.e.div_ceil(e) {
            let (lo, hi) = pb.band(e, eb);
            s.band_values += (hi - lo) as u64 * pb.w as u64;
            s.ifmap_dram += data.ifmap_row[lo as usize..hi as usize].iter().sum::<u64>();
            s.real_reads += real_reads(pb, e, eb);
        }
        s
    }
}

/// What a pass's filter stream depends on besides its key: `(p, q, r, t)`, or, for a layer of
/// 1x1 filters (as lowered: one row and one tap), `(p, q*r, 1, t)`. The stream walks chain
/// sets, filter rows, taps and channels in that order ([`crate::nest::for_each_filter_group`]),
/// and with one row and one tap chain set `rr`'s `q` channels follow set `rr - 1`'s: the
/// pass's `q*r` channels in order, however they are split into sets (fully connected layers,
/// whose search tries many such splits).
fn stream_key(pb: &Problem, p: u32, q: u32, r: u32, t: u32) -> (u32, u32, u32, u32) {
    if pb.r == 1 && pb.s == 1 {
        (p, q * r, 1, t)
    } else {
        (p, q, r, t)
    }
}

/// [`StripSums`] by strip height, and compressed filter rows by `(p, q)`, for pricing many
/// mappings of one problem and data.
#[derive(Clone, Debug, Default)]
pub struct StripCache {
    strips: std::collections::BTreeMap<u32, StripSums>,
    rows: std::collections::BTreeMap<(u32, u32), crate::sparse::FilterRows>,
    /// Their totals by `(m, p, q, r, t)`, the letters a pass's stream depends on (`m` as 0
    /// where it does not matter: see [`predict_with`]).
    row_totals: std::collections::BTreeMap<(u32, u32, u32, u32, u32), crate::sparse::RowTotals>,
    /// Coded filter words (`rlc.code_filters`) of every pass's stream, by `(p, q, r, t)` (the
    /// same for every `m`; see [`stream_key`]).
    coded_filters: std::collections::BTreeMap<(u32, u32, u32, u32), u64>,
    /// The weights' zeros, when few (found once; see [`crate::nest::TapMajor::zeros`]).
    filter_zeros: Option<Option<crate::nest::FilterZeros>>,
}

impl StripCache {
    /// The compressed rows of `(p, q)` for the data's weights (computed once).
    pub fn rows(
        &mut self,
        pb: &Problem,
        p: u32,
        q: u32,
        weights: Option<&rowsim_workload::Tensor>,
    ) -> &crate::sparse::FilterRows {
        self.rows
            .entry((p, q))
            .or_insert_with(|| crate::sparse::FilterRows::of(pb, p, q, weights))
    }
}

/// The closed-form counts of `mapping` (assumed legal: see [`Mapping::check`]).
pub fn predict(pb: &Problem, mapping: &Mapping, pes_used: u32, data: &DataTotals) -> Counts {
    predict_with(pb, mapping, pes_used, data, &mut StripCache::default())
}

/// [`predict`] with the strip sums of earlier calls on the same problem and data.
pub fn predict_with(
    pb: &Problem,
    mapping: &Mapping,
    pes_used: u32,
    data: &DataTotals,
    cache: &mut StripCache,
) -> Counts {
    let Mapping {
        m,
        n,
        dataflow: _,
        e,
        p,
        q,
        r,
        t,
    } = *mapping;
    let w = |x: u32| x as u64;
    let (g, nbc, mbc, ebc, cbc, fbc) = (
        w(pb.groups),
        w(pb.n / n),
        w(pb.m / m),
        w(pb.e.div_ceil(e)),
        w(pb.c / (q * r)),
        w(m / (p * t)),
    );
    let passes = g * nbc * mbc * ebc * cbc * fbc;
    // Passes that share one strip index; summing a strip's width over strips gives E.
    let per_strip = g * nbc * mbc * cbc * fbc;
    let big_e = w(pb.e);
    let slots = pb.macs();
    let gated = data.gated;
    let pes_rows = w(pb.r * r * t); // PEs per output row of a strip

    // Filters.
    let fw = w(p * t * q * r * pb.r * pb.s);
    let filter_noc = per_strip * pes_rows * big_e * w(p * q * pb.s);

    // Ifmaps: each strip's band, per image and real channel, loaded `reloads` times when a
    // channel block covers only part of a channel.
    let reloads = w(pb.reloads(q * r));
    let strips = pb.e.div_ceil(e);
    let StripSums {
        band_values,
        ifmap_dram,
        real_reads: strip_reads,
    } = *cache
        .strips
        .entry(e)
        .or_insert_with(|| StripSums::of(pb, e, data));
    let ifmap_glb_w = g * mbc * w(pb.n) * w(pb.real.c) * band_values * reloads;
    // A pass reads, for each virtual channel of its block, the real values of its virtual
    // band (padding is made on the way): summed over blocks, every virtual channel once.
    let ifmap_glb_r: u64 = strip_reads * g * mbc * fbc * w(pb.n) * w(pb.real.c);
    let ifmap_noc = per_strip * pes_rows * big_e * w(n * q * pb.w_used());
    // With zero skipping a PE reads only the nonzero ifmap values of a window (a group of p
    // MAC slots shares one), and an index a position and a visited value.
    let (ifmap_spad_r, index_reads) = if data.skipping {
        let visited = (slots - data.ifmap_zero) / w(p);
        (visited, slots / w(p * q * pb.s) + visited)
    } else {
        (per_strip * pes_rows * big_e * w(n * pb.f * q * pb.s), 0)
    };

    // Filters on the bus: raw, or each pass's stream coded (every key loaded once per image
    // block and strip).
    // Compressed weights: every row (each of the layer's once per image block and strip: the
    // sum over strips of their width is E) as its mask and nonzeros, `t*r*R` rows a pass
    // crossing the bus as one raw stream.
    let compressed = data.compressed.as_ref().map(|wt| {
        // The same for every `m` that tiles the filters in blocks of `p*t` (the pass keys'
        // filter blocks `mb*m + fb*p*t` are then all of the layer's, whatever `m`): priced
        // once for those (key `m = 0`, no mapping's), for any other `m` on its own.
        let tiles = m.is_multiple_of(p * t) && pb.m.is_multiple_of(m);
        let key = (if tiles { 0 } else { m }, p, q, r, t);
        if let Some(hit) = cache.row_totals.get(&key) {
            return *hit;
        }
        let totals = cache.rows(pb, p, q, wt.as_ref()).totals(pb, mapping);
        cache.row_totals.insert(key, totals);
        totals
    });
    let (filter_noc, filter_spad_w, index_writes, filter_glb) = match &compressed {
        None => (filter_noc, filter_noc, 0, passes * fw),
        Some(c) => (
            nbc * big_e * c.total_words,
            nbc * big_e * c.total_nnz,
            nbc * big_e * c.mask_total,
            nbc * w(strips) * c.total_words,
        ),
    };
    let filter_dram = match (&data.filter_coding, &compressed) {
        (_, Some(c)) => nbc * w(strips) * c.pass_raw_words,
        (None, None) => passes * crate::data::raw_words(fw),
        (Some((fmt, None)), None) => passes * crate::data::coded_dense_words(fmt, fw),
        (Some((fmt, Some(weights))), None) => {
            // The same for every e and n, and for every m: the pass keys' filter blocks are the
            // layer's blocks of `p*t` filters (`mb*m + fb*p*t` runs over them all, whatever
            // `m`), each stream set by its block, `(p, q, r, t)` and its channel block. So
            // computed once per (p, q, r, t), over the blocks as the keys of `m = M` take them.
            let words = *cache
                .coded_filters
                .entry(stream_key(pb, p, q, r, t))
                .or_insert_with(|| {
                    let whole = Mapping {
                        m: pb.m,
                        ..*mapping
                    };
                    let mut words = 0u64;
                    // A stream with few zeros is sized from its count of them; the others
                    // are counted value by value.
                    let zeros = cache
                        .filter_zeros
                        .get_or_insert_with(|| weights.zeros(pb))
                        .as_ref()
                        .map(|z| z.per_stream(pb, &whole));
                    let (cbs, fbs) = (pb.c / (q * r), pb.m / (p * t));
                    for g in 0..pb.groups {
                        for cb in 0..cbs {
                            for fb in 0..fbs {
                                let key = crate::FilterKey { g, mb: 0, cb, fb };
                                let k = ((g * cbs + cb) * fbs + fb) as usize;
                                match zeros.as_ref().map(|z| z[k]) {
                                    Some(z) if z <= fmt.max_run() => {
                                        let pairs =
                                            weights.few_zeros_pairs(pb, &whole, key, z.into());
                                        words += crate::data::coded_dense_words(fmt, pairs);
                                    }
                                    _ => {
                                        let mut n = rowsim_datapath::rlc::PairCount::new(fmt);
                                        weights
                                            .for_each_run(pb, &whole, key, |run| n.push_all(run));
                                        words += crate::data::coded_words_of(fmt, &n);
                                    }
                                }
                            }
                        }
                    }
                    words
                });
            words * nbc * w(strips)
        }
    };

    // Psums.
    let drains = per_strip * pes_rows * big_e * w(n * pb.f * p);
    let chain_out = w(t) * big_e * w(n * pb.f * p); // per (g, nb, mb, cb, fb), summed over strips
    let continuing = g * nbc * mbc * (cbc - 1) * fbc; // passes with cb > 0, per strip
    let finishing = g * nbc * mbc * fbc; // passes with the last cb, per strip
    let ofmap_dram = data.ofmap;

    Counts {
        mapping: *mapping,
        pes_used,
        passes,
        macs: slots,
        macs_gated: gated,
        dram_reads: PerType {
            filter: filter_dram,
            ifmap: mbc * ifmap_dram * reloads,
            psum: 0,
        },
        dram_writes: PerType {
            filter: 0,
            ifmap: 0,
            psum: ofmap_dram,
        },
        glb_reads: PerType {
            filter: filter_glb,
            ifmap: ifmap_glb_r,
            psum: (continuing + finishing) * chain_out,
        },
        glb_writes: PerType {
            filter: filter_glb,
            ifmap: ifmap_glb_w,
            psum: per_strip * chain_out,
        },
        noc: PerType {
            filter: filter_noc,
            ifmap: ifmap_noc,
            psum: drains + continuing * chain_out,
        },
        spad_reads: PerType {
            filter: slots - gated,
            ifmap: ifmap_spad_r,
            psum: slots - gated + drains,
        },
        spad_writes: PerType {
            filter: filter_spad_w,
            ifmap: ifmap_noc,
            psum: slots - gated,
        },
        index_reads,
        index_writes,
    }
}

/// Real (not padding) values one real channel's pieces read from the GLB in a pass of strip
/// `eb`: for each piece `(ir, js)`, the virtual band rows that land on real rows times the
/// virtual columns that land on real columns.
pub(crate) fn real_reads(pb: &Problem, e: u32, eb: u32) -> u64 {
    let rows_v = (pb.strip_rows(e, eb) - 1) * pb.u + pb.r;
    let first = eb * e * pb.u;
    (0..pb.pieces())
        .map(|k| {
            let rows = (first..first + rows_v)
                .filter(|&y| {
                    let (_, yr, _) = pb.real_of(k, y, 0);
                    yr >= pb.pad && yr - pb.pad < pb.h
                })
                .count() as u64;
            let cols = (0..pb.w_used())
                .filter(|&x| {
                    let (_, _, xr) = pb.real_of(k, 0, x);
                    xr >= pb.pad && xr - pb.pad < pb.w
                })
                .count() as u64;
            rows * cols
        })
        .sum()
}
