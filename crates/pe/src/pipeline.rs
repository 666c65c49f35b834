//! The PE's three-stage MAC pipeline: RD (spad reads, issued by the control FSM), MUL (the
//! product window) and ADD (read-modify-write of the psum), with the multiplier's registers.

use rowsim_datapath::mac;

use crate::signals::strobe;
use crate::{Datapath, Primitive};

/// What RD read: the psum it adds to (filter `f`), the operands, and whether gating holds the
/// multiplier still.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RdReg {
    pub f: u32,
    pub gated: bool,
    pub weight: i16,
    pub ifmap: i16,
}

/// What MUL produced for ADD.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MulReg {
    pub f: u32,
    pub gated: bool,
    pub product: i16,
}

/// The pipeline registers and the multiplier's inputs and output (held still by gating).
#[derive(Default)]
pub(crate) struct Pipeline {
    pub rd: Option<RdReg>,
    pub mul: Option<MulReg>,
    pub mac_a: i16,
    pub mac_b: i16,
    pub mac_product: i16,
}

impl Pipeline {
    pub fn is_empty(&self) -> bool {
        self.rd.is_none() && self.mul.is_none()
    }
}

impl Datapath {
    /// The ADD stage (the MAC that was in MUL updates its psum).
    #[inline]
    pub(crate) fn add_stage(&mut self, m: MulReg, prim: &Primitive) {
        if !m.gated {
            let old = self.psum[m.f as usize];
            let sum = mac::add(old, m.product, prim.mac, &mut self.counters.overflows);
            self.psum[m.f as usize] = sum;
            self.counters.psum_spad_reads += 1;
            self.counters.psum_spad_writes += 1;
            self.probe.strobes |= strobe::PSUM_RD | strobe::PSUM_WR;
            self.probe.held.psum_rd = (m.f, old);
            self.probe.held.psum_wr = (m.f, sum);
            self.probe.held.sum = sum;
        }
    }

    /// The MUL stage (the MAC that was in RD); gating holds the multiplier still.
    #[inline]
    pub(crate) fn mul_stage(&mut self, r: RdReg, prim: &Primitive) -> MulReg {
        let p = &mut self.pipe;
        if r.gated {
            self.counters.macs_gated += 1;
            self.probe.strobes |= strobe::MAC_GATED;
        } else {
            p.mac_a = r.weight;
            p.mac_b = r.ifmap;
            p.mac_product = mac::product(r.weight, r.ifmap, prim.mac, &mut self.counters.overflows);
            self.counters.macs += 1;
            self.probe.strobes |= strobe::MAC_VALID;
        }
        MulReg {
            f: r.f,
            gated: r.gated,
            product: p.mac_product,
        }
    }

    /// ADD then MUL, as at an edge; returns whether the pipeline held anything before it.
    #[inline]
    pub(crate) fn advance_pipeline(&mut self, prim: &Primitive) -> bool {
        let busy = !self.pipe.is_empty();
        if let Some(m) = self.pipe.mul.take() {
            self.add_stage(m, prim);
        }
        if let Some(r) = self.pipe.rd.take() {
            self.pipe.mul = Some(self.mul_stage(r, prim));
        }
        busy
    }

    /// The MAC just issued into RD through MUL and ADD at once (a burst: the same operations in
    /// the same order as edge by edge).
    #[inline]
    pub(crate) fn complete_rd(&mut self, prim: &Primitive) {
        if let Some(r) = self.pipe.rd.take() {
            let m = self.mul_stage(r, prim);
            self.add_stage(m, prim);
        }
    }

    /// What is in the pipeline, through to ADD (the start of a burst).
    #[inline]
    pub(crate) fn flush_pipeline(&mut self, prim: &Primitive) {
        if let Some(m) = self.pipe.mul.take() {
            self.add_stage(m, prim);
        }
        self.complete_rd(prim);
    }
}
