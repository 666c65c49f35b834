//! The GLB block: the global buffer with the GINs it feeds inside it.
//!
//! On the chip the GLB's sequencers drive the GINs' Y-buses over wires inside the buffer's
//! block. Here the [`Glb`] steps its sequencers itself (`rowsim_glb`), and this block steps the
//! GIN buses ([`GinBuses`]) that its readers feed, in the same step, each from the reader's
//! beat FIFO ([`Wire`], [`ReadOut::Wire`](rowsim_glb::sequencer::ReadOut::Wire)): the FIFO has
//! the timing of the link a separate [`Gin`](rowsim_noc::Gin) takes its beats from (latency one,
//! the same depth), so every beat crosses at the edges it would cross a link at, and the order
//! in which the block steps its parts within an edge cannot change what any of them sees. What
//! this saves is the scheduler's step of each GIN and the link operations of each beat on its
//! way in: one step for the block where there were up to four. The GINs' links to the PEs are
//! links as before (their credits wake the block). A test runs the same traffic both ways (the
//! GINs inside the block, or components of their own fed over links, as the array's own bench
//! still builds them) and compares every word's cycle.

use rowsim_glb::Glb;
use rowsim_kernel::{
    Activity, Component, Fault, SignalRegistry, StepCtx, TraceError, TraceFrame, Wake, Wire,
};
use rowsim_noc::{Beat, GinBuses, NetCounters};

/// The GLB and the GIN buses its readers feed (see the module docs).
pub struct GlbBlock {
    glb: Glb,
    /// Per GIN: the index of the reader that feeds it (see [`Glb::add_reader`]) and its buses.
    gins: Vec<(usize, GinBuses)>,
    /// After the last step, a GIN part needs the next edge: it sent a beat, or a beat was
    /// pushed for it at this edge.
    next: bool,
}

/// The beat FIFO of the GLB's reader `k`.
fn wire(glb: &mut Glb, k: usize) -> Result<&mut Wire<Beat>, Fault> {
    glb.beat_wire(k)
        .ok_or_else(|| format!("GLB reader {k} sends no beats into the block").into())
}

impl GlbBlock {
    /// The block of `glb` and `gins`, each fed by the GLB's reader of the given index, which
    /// must send into a beat FIFO ([`rowsim_glb::sequencer::ReadOut::Wire`]).
    pub fn new(mut glb: Glb, gins: Vec<(usize, GinBuses)>) -> Result<Self, String> {
        for (k, g) in &gins {
            if glb.beat_wire(*k).is_none() {
                return Err(format!(
                    "{}: GLB reader {k} sends no beats into the block",
                    g.name()
                ));
            }
        }
        Ok(GlbBlock {
            glb,
            gins,
            next: false,
        })
    }

    pub fn glb(&self) -> &Glb {
        &self.glb
    }

    /// The counters of GIN `i` (in the order given to [`GlbBlock::new`]).
    pub fn gin_counters(&self, i: usize) -> Option<&NetCounters> {
        self.gins.get(i).map(|(_, g)| g.counters())
    }
}

impl Component for GlbBlock {
    fn name(&self) -> &str {
        self.glb.name()
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut did = self.glb.step(cx)?;
        let mut next = false;
        for (k, g) in &mut self.gins {
            let w = wire(&mut self.glb, *k)?;
            let sent = g.step_from(cx, w)?;
            did |= sent;
            next |= matches!(g.wake(sent), Wake::Next) || w.pushed_at(cx.cycle);
        }
        self.next = next;
        Ok(did)
    }

    fn holds_work(&self) -> bool {
        self.glb.holds_work() || self.gins.iter().any(|(_, g)| g.config_pending())
    }

    /// The GLB's own need, or a GIN part's (see `next`); else idle until a request, a job, data,
    /// a mask or a credit reaches a link.
    fn wake(&self, cx: &StepCtx, did: Activity) -> Wake {
        if self.next {
            Wake::Next
        } else {
            self.glb.wake(cx, did)
        }
    }

    fn settle(&mut self, last: &StepCtx, edges: u64) {
        self.glb.settle(last, edges);
        for (_, g) in &mut self.gins {
            g.settle(edges);
        }
    }

    fn state(&self) -> Option<String> {
        self.glb.state()
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.glb.declare(s)?;
        for (_, g) in &mut self.gins {
            g.declare(s)?;
        }
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.glb.trace(f);
        for (_, g) in &self.gins {
            g.trace(f);
        }
    }

    fn kind(&self) -> &'static str {
        "Glb"
    }
}
