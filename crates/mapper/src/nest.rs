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
