//! The loop nest a chip executes for a mapping, as one sequence of steps ([`loop_nest`]): for
//! each group, image block, filter block and strip, the strip's channel blocks, each a band
//! load and, per filter block of the pass, a filter load and a pass; after a filter block's pass
//! of the last channel block, its readout.

use crate::mapping::{Mapping, Problem};

/// One step of the loop nest a chip executes for a mapping (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A new strip of `e_cur` rows: the PE columns past it are gated (no simulated time).
    Strip { e_cur: u32 },
    /// The ifmap band of (group, image block, strip, channel block) from DRAM into the GLB.
    Band { g: u32, nb: u32, eb: u32, cb: u32 },
    /// A pass's filters from DRAM into the GLB.
    Filters { g: u32, mb: u32, cb: u32, fb: u32 },
    /// A processing pass of the PE array.
    Pass {
        g: u32,
        nb: u32,
        mb: u32,
        eb: u32,
        cb: u32,
        fb: u32,
        e_cur: u32,
    },
    /// The finished psums of a strip's filter block `fb` (after its pass of the last channel
    /// block) through ReLU and the RLC coder to DRAM.
    Readout {
        g: u32,
        nb: u32,
        mb: u32,
        eb: u32,
        fb: u32,
        e_cur: u32,
    },
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Phase::Strip { e_cur } => write!(f, "strip of {e_cur} rows"),
            Phase::Band { g, nb, eb, cb } => {
                write!(
                    f,
                    "band load (group {g}, images {nb}, strip {eb}, channels {cb})"
                )
            }
            Phase::Filters { g, mb, cb, fb } => {
                write!(
                    f,
                    "filter load (group {g}, filters {mb}.{fb}, channels {cb})"
                )
            }
            Phase::Pass { eb, cb, fb, .. } => {
                write!(f, "pass (strip {eb}, channels {cb}, filters {fb})")
            }
            Phase::Readout {
                g, nb, mb, eb, fb, ..
            } => {
                write!(
                    f,
                    "readout (group {g}, images {nb}, filters {mb}.{fb}, strip {eb})"
                )
            }
        }
    }
}

/// The loop nest of `m` on `pb`, in order: the one sequence the chip's controller walks, the
/// DRAM layout follows and [`crate::walk::walk`] counts.
pub fn loop_nest(pb: &Problem, m: &Mapping) -> Vec<Phase> {
    let mut out = Vec::new();
    for g in 0..pb.groups {
        for nb in 0..pb.n / m.n {
            for mb in 0..pb.m / m.m {
                for eb in 0..pb.e.div_ceil(m.e) {
                    let e_cur = pb.strip_rows(m.e, eb);
                    out.push(Phase::Strip { e_cur });
                    let cbs = pb.c / (m.q * m.r);
                    for cb in 0..cbs {
                        out.push(Phase::Band { g, nb, eb, cb });
                        for fb in 0..m.m / (m.p * m.t) {
                            out.push(Phase::Filters { g, mb, cb, fb });
                            out.push(Phase::Pass {
                                g,
                                nb,
                                mb,
                                eb,
                                cb,
                                fb,
                                e_cur,
                            });
                            if cb + 1 == cbs {
                                out.push(Phase::Readout {
                                    g,
                                    nb,
                                    mb,
                                    eb,
                                    fb,
                                    e_cur,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Which filters a processing pass holds: group `g`, filter block `mb`, channel block `cb`
/// and filter-set block `fb` (the loop nest's letters, see [`Phase::Filters`]). The chip's
/// DRAM layout and its controller's filter loads are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FilterKey {
    pub g: u32,
    pub mb: u32,
    pub cb: u32,
    pub fb: u32,
}

/// Which ifmap band a band load brings in: group `g`, image block `nb`, strip `eb` and channel
/// block `cb` (see [`Phase::Band`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BandKey {
    pub g: u32,
    pub nb: u32,
    pub eb: u32,
    pub cb: u32,
}

/// The weights of one pass's filter load, `key`, in the order the array takes them
/// and DRAM holds them (the chip lays each pass's filters out as one stream in this order):
/// per filter set `tt`, chain set `rr`, filter row `i`, tap `s`, channel `c`, filter `f`.
/// `weights` is the layer's `[M][C/G][R][S]`.
pub fn filter_stream(
    pb: &Problem,
    m: &Mapping,
    key: FilterKey,
    weights: &rowsim_workload::Tensor,
) -> Vec<i16> {
    let mut v = Vec::with_capacity((m.p * m.q * m.r * m.t * pb.r * pb.s) as usize);
    for_each_filter_group(pb, m, key, |filt, ch, ir, js| {
        for f in 0..m.p {
            v.push(weights.get([(filt + f) as usize, ch as usize, ir as usize, js as usize]));
        }
    });
    v
}

/// The stream of [`filter_stream`] as its groups, in order: for each filter set `tt`, chain
/// set `rr`, filter row `i`, tap `s` and channel `c`, the first of the `p` consecutive
/// filters it takes and the real weight `(channel, row, column)` it takes of each (the one
/// definition of the order).
pub(crate) fn for_each_filter_group(
    pb: &Problem,
    m: &Mapping,
    key: FilterKey,
    mut each: impl FnMut(u32, u32, u32, u32),
) {
    let FilterKey { g, mb, cb, fb } = key;
    let (p, q, r, t) = (m.p, m.q, m.r, m.t);
    for tt in 0..t {
        let filt = g * pb.m + mb * m.m + fb * p * t + tt * p;
        for rr in 0..r {
            for i in 0..pb.r {
                for s in 0..pb.s {
                    for c in 0..q {
                        // Virtual channel, and its real weight.
                        let cv = cb * q * r + rr * q + c;
                        let (ch, ir, js) = pb.real_weight(cv, i, s);
                        each(filt, ch, ir, js);
                    }
                }
            }
        }
    }
}

/// The zero weights of a layer (see [`TapMajor::zeros`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterZeros {
    /// `(group * C + virtual channel, filter within the group)` of each.
    at: Vec<(u32, u32)>,
}

impl FilterZeros {
    /// The largest share of zero weights kept: one in 32 (8 bytes each).
    pub const SPARSE: usize = 32;

    /// How many zeros each pass's stream of a mapping holds, by `(g, cb, fb)` (row-major, `cb`
    /// of `C/(q*r)`, `fb` of `M/(p*t)`): a stream takes the weights of its channel block
    /// and its filter block, each once.
    pub fn per_stream(&self, pb: &Problem, m: &Mapping) -> Vec<u32> {
        let (qr, pt) = (m.q * m.r, m.p * m.t);
        let (cbs, fbs) = ((pb.c / qr) as usize, (pb.m / pt) as usize);
        let mut n = vec![0u32; pb.groups as usize * cbs * fbs];
        for &(gcv, f) in &self.at {
            let (g, cv) = ((gcv / pb.c) as usize, gcv % pb.c);
            // Saturating: a count past a run's length is as good as any.
            let k = &mut n[(g * cbs + (cv / qr) as usize) * fbs + (f / pt) as usize];
            *k = k.saturating_add(1);
        }
        n
    }
}

/// A layer's weights `[M][C/G][R][S]` laid out tap-major, `[C/G][R][S][M]`: the `p`
/// consecutive filters a filter stream takes of one weight position are next to each other,
/// so a stream is read in runs, not a filter's weights apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapMajor {
    /// The weights' `[M][C/G][R][S]`.
    dims: [usize; 4],
    data: Vec<i16>,
}

impl TapMajor {
    pub fn of(w: &rowsim_workload::Tensor) -> Self {
        let [m, c, r, s] = w.dims;
        let per = c * r * s;
        let mut data = vec![0i16; w.data.len()];
        if per > 0 {
            for (filt, weights) in w.data.chunks_exact(per).enumerate() {
                for (k, &v) in weights.iter().enumerate() {
                    data[k * m + filt] = v;
                }
            }
        }
        TapMajor { dims: w.dims, data }
    }

    /// The weight of filter `filt` at real `(channel, row, column)`.
    fn at(&self, filt: u32, ch: u32, ir: u32, js: u32) -> i16 {
        let [filters, _, r, s] = self.dims;
        let tap = (ch as usize * r + ir as usize) * s + js as usize;
        self.data[tap * filters + filt as usize]
    }

    /// Where the weights are zero, by group, virtual channel and filter, when they are few:
    /// at most one in [`FilterZeros::SPARSE`] (else `None`: most streams then hold more zeros
    /// than a run can, and are counted value by value).
    pub fn zeros(&self, pb: &Problem) -> Option<FilterZeros> {
        let cap = self.data.len() / FilterZeros::SPARSE;
        if self.data.iter().filter(|&&v| v == 0).count() > cap {
            return None;
        }
        let mut at = Vec::new();
        for g in 0..pb.groups {
            for cv in 0..pb.c {
                for i in 0..pb.r {
                    for s in 0..pb.s {
                        let (ch, ir, js) = pb.real_weight(cv, i, s);
                        for f in 0..pb.m {
                            if self.at(g * pb.m + f, ch, ir, js) == 0 {
                                at.push((g * pb.c + cv, f));
                            }
                        }
                    }
                }
            }
        }
        Some(FilterZeros { at })
    }

    /// The coded size, in pairs, of the stream of pass key `key` (see [`filter_stream`]) when
    /// it holds at most `zeros <= max_run` zeros (`fmt.max_run()`): no zero run can then
    /// fill a pair of its own, so each nonzero value is a pair, and the zeros at the end one
    /// more (a stream ending in a zero ends in a run still open).
    pub fn few_zeros_pairs(&self, pb: &Problem, m: &Mapping, key: FilterKey, zeros: u64) -> u64 {
        let (p, q, r, t) = (m.p as u64, m.q as u64, m.r as u64, m.t as u64);
        let len = t * r * pb.r as u64 * pb.s as u64 * q * p;
        // The last value: filter set t-1, chain set r-1, filter row R-1, tap S-1, channel q-1,
        // its last filter.
        let FilterKey { g, mb, cb, fb } = key;
        let cv = (cb + 1) * m.q * m.r - 1;
        let (ch, ir, js) = pb.real_weight(cv, pb.r - 1, pb.s - 1);
        let filt = g * pb.m + mb * m.m + fb * m.p * m.t + m.t * m.p - 1;
        len - zeros + u64::from(self.at(filt, ch, ir, js) == 0)
    }

    /// The weights of [`filter_stream`] in its order, as runs of the `p` filters of each
    /// group (a stream never held in memory, such as one whose coded size is all that is
    /// wanted).
    pub fn for_each_run(
        &self,
        pb: &Problem,
        m: &Mapping,
        key: FilterKey,
        mut each: impl FnMut(&[i16]),
    ) {
        let [filters, _, r, s] = self.dims;
        for_each_filter_group(pb, m, key, |filt, ch, ir, js| {
            let tap = (ch as usize * r + ir as usize) * s + js as usize;
            let first = tap * filters + filt as usize;
            each(&self.data[first..first + m.p as usize]);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dataflow;

    /// A filter stream read tap-major is the stream `filter_stream` lays out, word for word,
    /// for every pass key: on a layer in groups (AlexNet CONV2), one lowered for its stride
    /// (CONV1: virtual channels of a real one) and a fully-connected one, under mappings of
    /// several `(m, p, q, r, t)`.
    #[test]
    fn tap_major_streams_are_the_filter_streams() {
        let fmt = rowsim_workload::Formats::DEFAULT;
        let layers = rowsim_workload::alexnet();
        let fc = rowsim_workload::alexnet_fc().remove(2);
        let divisors = |n: u32, upto: u32| -> Vec<u32> {
            (1..=upto.min(n)).filter(|d| n.is_multiple_of(*d)).collect()
        };
        let mut checked = 0;
        for l in [&layers[0], &layers[1], &fc] {
            let l = rowsim_workload::ConvLayer {
                m: l.m.min(96),
                c: l.c.min(256),
                ..l.clone()
            };
            let pb = Problem::lowered(&l, Dataflow::Rs);
            let w = rowsim_workload::synthetic_weights(&l, 5, fmt);
            let tap = TapMajor::of(&w);
            for p in divisors(pb.m, 4) {
                for (q, r) in [(1, 1), (2, 1), (1, 2)] {
                    if !pb.c.is_multiple_of(q * r) {
                        continue;
                    }
                    let t = if pb.m.is_multiple_of(2 * p) { 2 } else { 1 };
                    let m = Mapping {
                        dataflow: Dataflow::Rs,
                        m: pb.m,
                        n: 1,
                        e: 1,
                        p,
                        q,
                        r,
                        t,
                    };
                    for g in 0..pb.groups {
                        for cb in 0..pb.c / (q * r) {
                            for fb in 0..m.m / (p * t) {
                                let key = FilterKey { g, mb: 0, cb, fb };
                                let mut got: Vec<i16> = Vec::new();
                                tap.for_each_run(&pb, &m, key, |v| got.extend(v));
                                assert_eq!(got, filter_stream(&pb, &m, key, &w), "{m} {key:?}");
                                checked += got.len();
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000, "checked {checked} words");
    }
}
