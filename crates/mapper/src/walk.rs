//! The second derivation of a mapping's counts: walk its loop nest ([`crate::loop_nest`], the
//! same steps the chip's controller walks) pass by pass, PE by PE (and,
//! given the ifmap, MAC slot by MAC slot), adding up what each moves. Slow; for checking
//! [`crate::predict`] on small layers.

use rowsim_workload::Tensor;

use crate::counts::{Counts, PerType};
use crate::data::DataModel;
use crate::mapping::{Mapping, Problem};
use crate::nest::{loop_nest, Phase};

/// Counts by walking the loop nest. With `ifmap`, gated MACs are found slot by slot; without,
/// they come from `data`.
pub fn walk(
    pb: &Problem,
    mapping: &Mapping,
    pes_used: u32,
    data: &dyn DataModel,
    ifmap: Option<&Tensor>,
) -> Counts {
    let Mapping {
        dataflow: _,
        m,
        n,
        e,
        p,
        q,
        r,
        t,
    } = *mapping;
    let mut c = Counts {
        mapping: *mapping,
        pes_used,
        passes: 0,
        macs: 0,
        macs_gated: 0,
        dram_reads: PerType::default(),
        dram_writes: PerType::default(),
        glb_reads: PerType::default(),
        glb_writes: PerType::default(),
        noc: PerType::default(),
        spad_reads: PerType::default(),
        spad_writes: PerType::default(),
        // The walk derives a gating machine's counts (zero skipping is checked against the
        // closed form and the chip).
        index_reads: 0,
        index_writes: 0,
    };
    let (s_, f_, wp) = (pb.s as u64, pb.f as u64, pb.w_used() as u64);
    let cb_count = pb.c / (q * r);
    let fw = (p * t * q * r * pb.r * pb.s) as u64;
    // What each pass of the current band reads: every real value of every virtual channel's
    // band.
    let mut pass_reads = 0u64;
    for ph in loop_nest(pb, mapping) {
        match ph {
            Phase::Strip { .. } => {}
            Phase::Band { g, nb, eb, cb } => {
                // The real channels of the block's virtual channels come to the GLB (a whole
                // band each, even when the block uses a piece of it).
                let (lo, hi) = pb.band(e, eb);
                let (first, chans) = pb.block_channels(q * r, cb);
                for img in nb * n..(nb + 1) * n {
                    for ch in first..first + chans {
                        for y in lo..hi {
                            c.dram_reads.ifmap += data.ifmap_row_words(img, g * pb.real.c + ch, y);
                            c.glb_writes.ifmap += pb.w as u64;
                        }
                    }
                }
                let band_v = (pb.strip_rows(e, eb) - 1) * pb.u + pb.r;
                pass_reads = 0;
                for _img in 0..n {
                    for cv in cb * q * r..(cb + 1) * q * r {
                        for y in 0..band_v {
                            for x in 0..pb.w_used() {
                                let (_, yr, xr) = pb.real_of(cv, eb * e * pb.u + y, x);
                                if pb.is_real(yr, xr) {
                                    pass_reads += 1;
                                }
                            }
                        }
                    }
                }
            }
            Phase::Filters { .. } => {
                c.dram_reads.filter += crate::data::raw_words(fw);
                c.glb_writes.filter += fw;
            }
            Phase::Pass {
                g,
                nb,
                eb,
                cb,
                e_cur,
                ..
            } => {
                c.passes += 1;
                c.glb_reads.filter += fw;
                c.glb_reads.ifmap += pass_reads;
                for _tt in 0..t {
                    for rr in 0..r {
                        for i in 0..pb.r {
                            for j in 0..e_cur {
                                // PE (i, j) of set (rr, tt).
                                c.noc.filter += (p * q) as u64 * s_;
                                c.spad_writes.filter += (p * q) as u64 * s_;
                                c.noc.ifmap += (n * q) as u64 * wp;
                                c.spad_writes.ifmap += (n * q) as u64 * wp;
                                c.spad_reads.ifmap += (n * q) as u64 * f_ * s_;
                                let psums = n as u64 * f_ * p as u64;
                                c.spad_reads.psum += psums; // drains
                                c.noc.psum += psums; // sent up or out
                                let bottom = rr == 0 && i == pb.r - 1;
                                let top = rr == r - 1 && i == 0;
                                if bottom && cb > 0 {
                                    c.noc.psum += psums;
                                    c.glb_reads.psum += psums;
                                }
                                if top {
                                    c.glb_writes.psum += psums;
                                    if cb == cb_count - 1 {
                                        c.glb_reads.psum += psums;
                                    }
                                }
                                // MAC slots of this PE.
                                c.macs += n as u64 * f_ * (p * q) as u64 * s_;
                                if let Some(x) = ifmap {
                                    c.macs_gated += gated_slots(
                                        pb,
                                        mapping,
                                        x,
                                        crate::BandKey { g, nb, eb, cb },
                                        (rr, i, j),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            Phase::Readout {
                g,
                nb,
                mb,
                eb,
                fb,
                e_cur,
            } => {
                // The filter block's finished ofmap rows go to DRAM.
                for img in nb * n..(nb + 1) * n {
                    for mf in mb * m + fb * p * t..mb * m + (fb + 1) * p * t {
                        for row in eb * e..eb * e + e_cur {
                            c.dram_writes.psum += data.ofmap_row_words(img, g * pb.m + mf, row);
                        }
                    }
                }
            }
        }
    }
    if ifmap.is_none() {
        c.macs_gated = data.gated_macs();
    }
    let active = c.macs - c.macs_gated;
    c.spad_reads.filter = active;
    c.spad_reads.psum += active;
    c.spad_writes.psum = active;
    c
}

/// The gated MAC slots of PE `(i, j)` of channel set `rr` in a pass: every slot whose ifmap
/// value is zero (padding included), for each of the `p` filters.
fn gated_slots(
    pb: &Problem,
    mapping: &Mapping,
    x: &Tensor,
    crate::BandKey { g, nb, eb, cb }: crate::BandKey,
    (rr, i, j): (u32, u32, u32),
) -> u64 {
    let Mapping { n, e, p, q, r, .. } = *mapping;
    let y_v = (eb * e + j) * pb.u + i; // virtual, padded
    let mut gated = 0;
    for img in nb * n..(nb + 1) * n {
        for ch in 0..q {
            let cv = cb * q * r + rr * q + ch;
            for xo in 0..pb.f {
                for si in 0..pb.s {
                    let (rc, y_p, x_p) = pb.real_of(cv, y_v, xo * pb.uh + si);
                    let zero = !pb.is_real(y_p, x_p)
                        || x.get([
                            img as usize,
                            (g * pb.real.c + rc) as usize,
                            (y_p - pb.pad) as usize,
                            (x_p - pb.pad) as usize,
                        ]) == 0;
                    if zero {
                        gated += p as u64;
                    }
                }
            }
        }
    }
    gated
}
