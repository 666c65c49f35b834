//! A GLB port: a requester's request FIFO into the banks' arbiter and the response FIFO back.
//!
//! A port is either a pair of [`Link`](rowsim_kernel::Link)s to a requester that is a component
//! of its own ([`GlbPort`] at the GLB, [`LinkEnd`] at the requester), or, for the GLB's own
//! sequencers, which the GLB steps itself ([`crate::Glb::add_reader`]), a pair of [`Wire`]s
//! inside the block: the same two FIFOs with the timing a link of latency 1 and the same depth
//! has. A word pushed at edge `c` can be taken from edge `c + 1`; a word taken at edge `c` frees
//! its slot for a push from edge `c + 1`. So the order in which the GLB steps its sequencers
//! and its arbiter within an edge cannot change what any of them sees, as between components.

use std::collections::VecDeque;

use rowsim_kernel::{LinkRx, LinkTx, StepCtx};

use crate::{GlbReq, GlbResp};

/// The depth of each of a port's two FIFOs (requests, responses), in entries: two, so that a
/// port sustains one access a cycle over its one-cycle hop (a credit loop of two cycles).
pub const PORT_FIFO_DEPTH: u32 = 2;

/// One FIFO of an internal port: latency one edge, `depth` entries counting those taken at the
/// current edge (their slots are free from the next).
pub struct Wire<T> {
    queue: VecDeque<(u64, T)>,
    depth: usize,
    /// The edge of the last take and how many were taken at it.
    taken_at: u64,
    taken: usize,
}

impl<T> Wire<T> {
    pub fn new(depth: u32) -> Self {
        Wire {
            queue: VecDeque::with_capacity(depth as usize),
            depth: depth.max(1) as usize,
            taken_at: u64::MAX,
            taken: 0,
        }
    }

    fn freed_late(&self, cycle: u64) -> usize {
        if self.taken_at == cycle {
            self.taken
        } else {
            0
        }
    }

    /// Whether a push at edge `cycle` finds a free slot.
    #[inline]
    pub fn can_push(&self, cycle: u64) -> bool {
        self.queue.len() + self.freed_late(cycle) < self.depth
    }

    /// Pushes at edge `cycle`, visible from the next; gives the word back if the FIFO is full.
    #[inline]
    pub fn push(&mut self, cycle: u64, item: T) -> Result<(), T> {
        if !self.can_push(cycle) {
            return Err(item);
        }
        self.queue.push_back((cycle + 1, item));
        Ok(())
    }

    /// The word at the head, if it is visible at edge `cycle`.
    #[inline]
    pub fn peek(&self, cycle: u64) -> Option<&T> {
        self.queue
            .front()
            .filter(|(at, _)| *at <= cycle)
            .map(|(_, t)| t)
    }

    /// Takes the word at the head if it is visible at edge `cycle`.
    #[inline]
    pub fn pop(&mut self, cycle: u64) -> Option<T> {
        self.peek(cycle)?;
        let (_, item) = self.queue.pop_front()?;
        if self.taken_at == cycle {
            self.taken += 1;
        } else {
            self.taken_at = cycle;
            self.taken = 1;
        }
        Some(item)
    }

    /// Words pushed and not yet taken.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the next edge may find something new here: a word (visible from then at the
    /// latest), or a slot freed at edge `cycle` (a waiting pusher may use it then).
    #[inline]
    pub fn stirs(&self, cycle: u64) -> bool {
        !self.queue.is_empty() || self.taken_at == cycle
    }
}

/// A requester's end of a GLB port.
pub trait ReqEnd: Send + 'static {
    /// Sends a request at this edge if the request FIFO has room.
    fn send(&mut self, cx: &StepCtx, req: GlbReq) -> bool;
    /// Takes the response at the head, if it has arrived.
    fn recv(&mut self, cx: &StepCtx) -> Option<GlbResp>;
    /// Whether a response has arrived and waits (looking at it: a link end then asks for a step
    /// at the arrival of one on its way).
    fn resp_waiting(&mut self, cx: &StepCtx) -> bool;
}

/// A requester's end of a port made of links (a requester that is a component of its own).
pub struct LinkEnd {
    pub req: LinkTx<GlbReq>,
    pub resp: LinkRx<GlbResp>,
}

impl ReqEnd for LinkEnd {
    #[inline]
    fn send(&mut self, cx: &StepCtx, req: GlbReq) -> bool {
        self.req.try_send(cx, req).is_ok()
    }
    #[inline]
    fn recv(&mut self, cx: &StepCtx) -> Option<GlbResp> {
        self.resp.try_recv(cx)
    }
    #[inline]
    fn resp_waiting(&mut self, cx: &StepCtx) -> bool {
        self.resp.peek(cx).is_some()
    }
}

/// The two FIFOs of a port inside the GLB (one of its own sequencers'), held by the sequencer;
/// the GLB's arbiter serves them as it serves a [`GlbPort`].
pub struct InnerEnd {
    pub(crate) req: Wire<GlbReq>,
    pub(crate) resp: Wire<GlbResp>,
}

impl Default for InnerEnd {
    fn default() -> Self {
        InnerEnd {
            req: Wire::new(PORT_FIFO_DEPTH),
            resp: Wire::new(PORT_FIFO_DEPTH),
        }
    }
}

impl InnerEnd {
    /// Whether the next edge may find something new in either FIFO (see [`Wire::stirs`]).
    pub(crate) fn stirs(&self, cycle: u64) -> bool {
        self.req.stirs(cycle) || self.resp.stirs(cycle)
    }
}

impl ReqEnd for InnerEnd {
    #[inline]
    fn send(&mut self, cx: &StepCtx, req: GlbReq) -> bool {
        self.req.push(cx.cycle, req).is_ok()
    }
    #[inline]
    fn recv(&mut self, cx: &StepCtx) -> Option<GlbResp> {
        self.resp.pop(cx.cycle)
    }
    #[inline]
    fn resp_waiting(&mut self, cx: &StepCtx) -> bool {
        self.resp.peek(cx.cycle).is_some()
    }
}

/// One requester's pair of links, at the GLB.
pub struct GlbPort {
    pub req: LinkRx<GlbReq>,
    pub resp: LinkTx<GlbResp>,
}

/// The GLB's end of a port, as its arbiter serves it.
pub(crate) trait ServeEnd {
    /// The request at the head, if it has arrived (looking at it, as [`LinkRx::peek`] does).
    fn head(&mut self, cx: &StepCtx) -> Option<GlbReq>;
    /// Whether a response sent now finds room.
    fn can_respond(&mut self, cx: &StepCtx) -> bool;
    /// Takes the head request.
    fn take(&mut self, cx: &StepCtx);
    fn respond(&mut self, cx: &StepCtx, resp: GlbResp) -> bool;
    /// A request on its way or waiting (for `holds_work`).
    fn pending(&self) -> bool;
}

impl ServeEnd for GlbPort {
    #[inline]
    fn head(&mut self, cx: &StepCtx) -> Option<GlbReq> {
        self.req.peek(cx).copied()
    }
    #[inline]
    fn can_respond(&mut self, cx: &StepCtx) -> bool {
        self.resp.can_send(cx)
    }
    #[inline]
    fn take(&mut self, cx: &StepCtx) {
        self.req.try_recv(cx);
    }
    #[inline]
    fn respond(&mut self, cx: &StepCtx, resp: GlbResp) -> bool {
        self.resp.try_send(cx, resp).is_ok()
    }
    fn pending(&self) -> bool {
        self.req.in_flight() > 0
    }
}

impl ServeEnd for InnerEnd {
    #[inline]
    fn head(&mut self, cx: &StepCtx) -> Option<GlbReq> {
        self.req.peek(cx.cycle).copied()
    }
    #[inline]
    fn can_respond(&mut self, cx: &StepCtx) -> bool {
        self.resp.can_push(cx.cycle)
    }
    #[inline]
    fn take(&mut self, cx: &StepCtx) {
        self.req.pop(cx.cycle);
    }
    #[inline]
    fn respond(&mut self, cx: &StepCtx, resp: GlbResp) -> bool {
        self.resp.push(cx.cycle, resp).is_ok()
    }
    fn pending(&self) -> bool {
        !self.req.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wire of depth 2 admits two pushes, shows each from the next edge, and frees a slot a
    /// cycle after a take, whichever of the two ends acts first within an edge.
    #[test]
    fn a_wire_has_the_timing_of_a_latency_one_link() {
        let mut w = Wire::<u32>::new(2);
        assert!(w.push(0, 1).is_ok());
        assert_eq!(w.peek(0), None);
        assert!(w.push(0, 2).is_ok());
        assert_eq!(w.push(0, 3), Err(3));
        assert_eq!(w.peek(1), Some(&1));
        // Taken at edge 1: the slot is free for a push at edge 2, not 1.
        assert_eq!(w.pop(1), Some(1));
        assert!(!w.can_push(1));
        assert!(w.stirs(1));
        assert!(w.can_push(2));
        // Word 2 was visible from edge 1 too; a second take at edge 1 frees a second slot late.
        assert_eq!(w.pop(1), Some(2));
        assert!(!w.can_push(1));
        assert!(w.is_empty() && w.stirs(1) && !w.stirs(2));
        assert!(w.push(2, 4).is_ok() && w.push(2, 5).is_ok());
        assert_eq!(w.pop(2), None);
        assert_eq!(w.pop(3), Some(4));
        assert_eq!(w.len(), 1);
    }
}
