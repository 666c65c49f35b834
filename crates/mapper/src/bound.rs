//! A closed-form lower bound on a mapping's core cycles, and the resource that sets it.
//!
//! # The model
//! A processing pass occupies several resources at once, and lasts at least as long as the
//! busiest of them:
//! - **pe**: one PE's work, `n * F * (p*q*S + 2 + p)` cycles (a position's MAC slots, the two
//!   pipeline bubbles and `p` drain cycles; see `rowsim_pe`); with zero skipping
//!   `n * F * (1 + 2 + p)` (the index cycle: every MAC may be skipped);
//! - **filter_gin**: `t*r*R * ceil(p*q*S / words a beat)` beats, one a cycle (compressed
//!   weights: `ceil(p*q*S/16)` mask words a row, the least a row can be);
//! - **ifmap_gin**: for every image, used column, channel group, channel and band row, one beat
//!   when X-bus row IDs and PE column IDs can encode the diagonal (see `rowsim_chip::plan`),
//!   else one beat per PE that needs the value;
//! - **psum_gin** (passes that continue an accumulation) and **gon**: `t * e_cur * n * F *
//!   ceil(p / words a beat)` beats: every chain's psums of every position, in and out.
//!
//! The GLB sequencers issue one access a cycle per port, and each GIN beat needs at most one, so
//! the GLB ports bind no harder than the GINs they feed. Passes run one after another, and the
//! DRAM bus (one bus word a link cycle, both ways) moves the layer's traffic at the same time:
//! the layer lasts at least `config + max(sum over passes of the busiest resource, DRAM bus
//! cycles in core cycles)`, where `config` is the scan chain's shift, which nothing overlaps.
//!
//! What this leaves out, and a run shows: each pass's fill and drain, the first loads before the
//! first pass and the last readout after the last, and DRAM transfers a buffer was too small to
//! overlap. [`CycleBound::fill_drain`] estimates the first two per pass (not a bound):
//! - **fill**: a PE issues no MAC before all its weights are in, and the filter sequencer sends
//!   the logical rows round robin, so the last row's weights come with the filter GIN's last
//!   beat; nor before its first window is in: `S` columns of every band row it shares the ifmap
//!   GIN with, `n=1`'s share of the ifmap beats. The fill is the longer of the two;
//! - **drain**: the last position's psums climb the chain, a cycle a PE (`R*r`), and the top
//!   drains its `p`.

use rowsim_config::HwConfig;
use serde::Serialize;

use crate::counts::Counts;
use crate::mapping::{Mapping, Problem};

/// A resource that can bound a pass (or, for `Dram`, the layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Pe,
    FilterGin,
    IfmapGin,
    PsumGin,
    Gon,
    Dram,
}

impl Resource {
    pub const ALL: [Resource; 6] = [
        Resource::Pe,
        Resource::FilterGin,
        Resource::IfmapGin,
        Resource::PsumGin,
        Resource::Gon,
        Resource::Dram,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Pe => "pe",
            Resource::FilterGin => "filter_gin",
            Resource::IfmapGin => "ifmap_gin",
            Resource::PsumGin => "psum_gin",
            Resource::Gon => "gon",
            Resource::Dram => "dram",
        }
    }
}

/// The bound and what sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CycleBound {
    /// Core cycles: `config + max(passes, dram)`.
    pub total: u64,
    /// The scan chain's shift.
    pub config: u64,
    /// Sum over passes of the busiest resource of each.
    pub passes: u64,
    /// The layer's DRAM traffic on the bus, in core cycles.
    pub dram: u64,
    /// Each resource's cycles summed over the passes (`dram`: the layer's bus cycles).
    pub by_resource: [u64; 6],
    /// The resource that bounds most passes, or `Dram` when the bus outlasts the passes.
    pub bottleneck: Resource,
    /// Each pass's fill and drain (see the module docs), summed over the passes: an estimate
    /// of what a run spends in passes beyond `passes`.
    pub fill_drain: u64,
}

/// Whether X-bus row IDs and PE column IDs can encode every ifmap diagonal of `mapping`, so
/// that one beat reaches every PE that needs an ifmap value (row ID `rr * min(U, R) + i mod U`,
/// column ID `j + i div U`; see `rowsim_chip::plan`): `r * min(U, R)` row IDs and
/// `e - 1 + (R - 1) div U` column IDs must fit their fields.
pub fn ifmap_diagonal_ids_fit(pb: &Problem, mapping: &Mapping, hw: &HwConfig) -> bool {
    let n = &hw.noc;
    let max_col_id = (mapping.e - 1) + (pb.r - 1) / pb.u;
    let row_ids = mapping.r as u64 * pb.u.min(pb.r) as u64;
    (max_col_id as u64) < (1u64 << n.ifmap_gin.col_id_bits.min(63))
        && row_ids <= 1u64 << n.row_id_bits.min(63)
}

fn words_a_beat(bits: u32) -> u64 {
    (bits / 16).clamp(1, 4) as u64
}

/// The lower bound of `mapping` (assumed legal) on `hw`, given its counts (for the DRAM
/// traffic).
pub fn cycle_bound(pb: &Problem, mapping: &Mapping, hw: &HwConfig, counts: &Counts) -> CycleBound {
    let Mapping {
        m,
        n,
        e,
        p,
        q,
        r,
        t,
        ..
    } = *mapping;
    let w = |x: u32| x as u64;
    let n_ = &hw.noc;
    let per_strip = w(pb.groups) * w(pb.n / n) * w(pb.m / m) * w(pb.c / (q * r)) * w(m / (p * t));
    let continuing_per_strip = w(pb.groups)
        * w(pb.n / n)
        * w(pb.m / m)
        * w((pb.c / (q * r)).saturating_sub(1))
        * w(m / (p * t));
    // With zero skipping a position's MACs may all be skipped: its index cycle, the bubbles
    // and the drain are all it surely costs.
    let macs_a_position = if hw.datapath.zero_skipping {
        1
    } else {
        w(p * q * pb.s)
    };
    let pe = w(n) * w(pb.f) * (macs_a_position + 2 + w(p));
    // Compressed rows are at least their mask: a row of zeros.
    let row_words = if hw.spad.filter.compressed {
        rowsim_datapath::zmask::mask_words(w(p * q * pb.s))
    } else {
        w(p * q * pb.s)
    };
    let filter_gin = w(t * r * pb.r) * row_words.div_ceil(words_a_beat(n_.filter_gin.width_bits));
    let diagonal = ifmap_diagonal_ids_fit(pb, mapping, hw);
    let (pw, gw) = (
        words_a_beat(n_.psum_gin.width_bits),
        words_a_beat(n_.gon.width_bits),
    );
    let mut sums = [0u64; 6];
    let mut wins = [0u64; 6];
    let mut passes = 0u64;
    let mut fill_drain = 0u64;
    // Every strip is `e` rows but the last (`E mod e` when that is not 0): two kinds, each
    // counted once with its multiplicity.
    let strips = pb.e.div_ceil(e);
    let last = pb.strip_rows(e, strips - 1);
    let kinds = if last == e {
        vec![(e, w(strips))]
    } else {
        vec![(e, w(strips - 1)), (last, 1)]
    };
    for (e_cur, times) in kinds {
        let band = (e_cur - 1) * pb.u + pb.r;
        let beats_per_column: u64 = (0..band)
            .map(|y| {
                if diagonal {
                    1
                } else {
                    (0..pb.r)
                        .filter(|&i| y >= i && (y - i) % pb.u == 0 && (y - i) / pb.u < e_cur)
                        .count() as u64
                }
            })
            .sum();
        let ifmap_gin = w(n) * w(pb.w_used()) * w(r) * w(q) * beats_per_column;
        let ifmap_fill = w(pb.s) * w(r) * w(q) * beats_per_column;
        let fill_drain_pass = filter_gin.max(ifmap_fill) + w(r * pb.r) + w(p);
        let chains = w(t) * w(e_cur) * w(n) * w(pb.f);
        let gon = chains * w(p).div_ceil(gw);
        let psum_gin = chains * w(p).div_ceil(pw);
        for (cont, count) in [
            (false, (per_strip - continuing_per_strip) * times),
            (true, continuing_per_strip * times),
        ] {
            if count == 0 {
                continue;
            }
            let r5 = [
                pe,
                filter_gin,
                ifmap_gin,
                if cont { psum_gin } else { 0 },
                gon,
            ];
            let (k, &most) = r5
                .iter()
                .enumerate()
                .max_by_key(|&(k, v)| (*v, std::cmp::Reverse(k)))
                .unwrap_or((0, &0));
            for (s, v) in sums.iter_mut().zip(r5) {
                *s += v * count;
            }
            wins[k] += count;
            passes += most * count;
            fill_drain += fill_drain_pass * count;
        }
    }
    let sc = &hw.scan_chain;
    let config =
        (w(sc.bits) as u128 * hw.clocks.core_hz as u128).div_ceil(sc.shift_hz as u128) as u64;
    let bus_words = (counts.dram_reads.total() + counts.dram_writes.total())
        .div_ceil(words_a_beat(hw.dram.bus_width_bits));
    let dram =
        (bus_words as u128 * hw.clocks.core_hz as u128).div_ceil(hw.clocks.link_hz as u128) as u64;
    sums[5] = dram;
    let bottleneck = if dram > passes {
        Resource::Dram
    } else {
        let k = (0..5)
            .max_by_key(|&k| (wins[k], std::cmp::Reverse(k)))
            .unwrap_or(0);
        Resource::ALL[k]
    };
    CycleBound {
        total: config + passes.max(dram),
        config,
        passes,
        dram,
        by_resource: sums,
        bottleneck,
        fill_drain,
    }
}
