//! The GLB block: the global buffer with the GINs it feeds and the GON that feeds it inside it.
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
//!
//! The GON's bus ([`GonBus`]) is a part of the block the same way, at the other end: it sends
//! into the psum writer's beat FIFO ([`WriteIn::GonWire`](rowsim_glb::sequencer::WriteIn::GonWire))
//! with the timing of the link a separate [`Gon`](rowsim_noc::Gon) sends on. Its inputs (the
//! chain tops' psum outputs) are links of a part of its own ([`in_part`]): a psum on its way
//! asks for a step of the block at its arrival, and the step is told so
//! ([`StepCtx::parts`]), so the block looks at the GON's inputs only at the edges a GON of
//! its own would have been stepped at (a psum arrived, the edge after a beat, or after a slot
//! freed while it waited), and at every edge when every edge is stepped. The every-edge runs
//! (the reference) and the event-driven ones are compared by the chip's tests; a trace lists
//! the GON's signals where it did as a component.

use rowsim_glb::Glb;
use rowsim_kernel::{
    in_part, Activity, Component, Fault, SignalRegistry, StepCtx, TraceError, TraceFrame, Wake,
    Wire,
};
use rowsim_noc::{Beat, GinBuses, GonBeat, GonBus, NetCounters};

/// The GLB, the GIN buses its readers feed and the GON bus that feeds its psum writer (see the
/// module docs).
pub struct GlbBlock {
    glb: Glb,
    /// Per GIN: the index of the reader that feeds it (see [`Glb::add_reader`]) and its buses.
    gins: Vec<(usize, GinBuses)>,
    /// The GON, if it is a part: the index of the writer it feeds (see [`Glb::add_writer`])
    /// and its bus.
    gon: Option<(usize, GonBus)>,
    /// After the last step, a GIN or GON part needs the next edge: it sent a beat, a beat was
    /// pushed for it at this edge, or (the GON) a slot it waits for was freed.
    next: bool,
    /// The edge from which the GON is looked at without its inputs asking (see
    /// [`GonBus::step_into`]): the next after a beat sent, or after a slot freed while it
    /// waits for room; else never.
    gon_due: u64,
}

/// The part ([`rowsim_kernel::in_part`]) that the GON's inputs belong to: a psum sent to it
/// asks for a step of the block that steps the GON.
const GON_PART: u8 = 1;

/// The beat FIFO of the GLB's reader `k`.
fn wire(glb: &mut Glb, k: usize) -> Result<&mut Wire<Beat>, Fault> {
    glb.beat_wire(k)
        .ok_or_else(|| format!("GLB reader {k} sends no beats into the block").into())
}

/// The GON beat FIFO of the GLB's writer `k`.
fn gon_wire(glb: &mut Glb, k: usize) -> Result<&mut Wire<GonBeat>, Fault> {
    glb.gon_wire(k)
        .ok_or_else(|| format!("GLB writer {k} takes no GON beats from the block").into())
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
            gon: None,
            next: false,
            gon_due: 0,
        })
    }

    /// The block with the GON's bus as a part, feeding the GLB's writer of the given index,
    /// which must take its beats from a FIFO ([`rowsim_glb::sequencer::WriteIn::GonWire`]).
    pub fn with_gon(mut self, k: usize, gon: GonBus) -> Result<Self, String> {
        if self.glb.gon_wire(k).is_none() {
            return Err(format!(
                "{}: GLB writer {k} takes no GON beats from the block",
                gon.name()
            ));
        }
        self.gon = Some((k, gon));
        Ok(self)
    }

    /// The GON's counters, if it is a part.
    pub fn gon_counters(&self) -> Option<&NetCounters> {
        self.gon.as_ref().map(|(_, g)| g.counters())
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
        if let Some((k, g)) = &mut self.gon {
            // Stepped where it would be as a component of its own: its inputs asked (a psum
            // arrives), the edge after a beat, or after a slot freed while it waits (see
            // `gon_due`); at the block's other edges a look finds nothing new. At every edge
            // when every edge is stepped.
            if !cx.ahead || cx.parts & 1 << GON_PART != 0 || cx.cycle >= self.gon_due {
                // After the writer's step: a beat it took at this edge frees its slot from
                // the next, as a link's credit does.
                let w = gon_wire(&mut self.glb, *k)?;
                let sent = in_part(GON_PART, || g.step_into(cx, w))?;
                did |= sent;
                // The writer takes a beat pushed now at the next edge, where other PEs' psums
                // may wait their turn; a bus that found no room tries again once a slot is
                // freed.
                self.gon_due = if sent.moved() || (g.waited() && w.freed_at(cx.cycle)) {
                    cx.cycle + 1
                } else {
                    u64::MAX
                };
                next |= self.gon_due == cx.cycle + 1;
            } else {
                g.skip();
                if g.waited() && gon_wire(&mut self.glb, *k)?.freed_at(cx.cycle) {
                    self.gon_due = cx.cycle + 1;
                    next = true;
                }
            }
        }
        self.next = next;
        Ok(did)
    }

    fn holds_work(&self) -> bool {
        self.glb.holds_work()
            || self.gins.iter().any(|(_, g)| g.config_pending())
            || self.gon.as_ref().is_some_and(|(_, g)| g.holds_work())
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
        if let Some((_, g)) = &mut self.gon {
            g.settle(edges);
        }
    }

    fn state(&self) -> Option<String> {
        self.glb.state()
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        // The GON first: a trace lists its signals where it did as a component of its own,
        // added before the block.
        if let Some((_, g)) = &mut self.gon {
            g.declare(s)?;
        }
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
        if let Some((_, g)) = &self.gon {
            g.trace(f);
        }
    }

    fn kind(&self) -> &'static str {
        "Glb"
    }
}
