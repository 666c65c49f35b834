//! A GLB port: a requester's request FIFO into the banks' arbiter and the response FIFO back.
//!
//! A port is either a pair of [`Link`](rowsim_kernel::Link)s to a requester that is a component
//! of its own ([`GlbPort`] at the GLB, [`LinkEnd`] at the requester), or, for the GLB's own
//! sequencers, which the GLB steps itself ([`crate::Glb::add_reader`]), a pair of [`Wire`]s
//! inside the block: the same two FIFOs with the timing a link of latency 1 and the same depth
//! has. A word pushed at edge `c` can be taken from edge `c + 1`; a word taken at edge `c` frees
//! its slot for a push from edge `c + 1`. So the order in which the GLB steps its sequencers
//! and its arbiter within an edge cannot change what any of them sees, as between components.
//!
//! Two things let the block skip edges of a writer's port without changing them: a writer
//! running ahead puts a lone write into its request FIFO for the next edge, where a step would
//! have sent it first thing ([`ReqEnd::send_next`]; the arbiter is stepped at the edge it
//! arrives), and its acknowledgements count as taken at the edges they arrive
//! ([`Wire::taken_on_arrival`]), where a step would have taken them; the writer is stepped at
//! one only when a job may end with it ([`crate::sequencer::GlbWriter`]). A test runs the
//! same traffic through ports of links and compares every cycle.

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
    /// Each word is taken at the edge it becomes visible, whether or not its taker is stepped
    /// there: a writer's acknowledgements, which it takes (all that have arrived) at every edge
    /// it runs, and it runs at every edge one arrives (see [`Wire::taken_on_arrival`]). The
    /// words stay queued until the taker next looks; the slots count as the takes at their
    /// edges would have left them.
    on_arrival: bool,
}

impl<T> Wire<T> {
    pub fn new(depth: u32) -> Self {
        Wire {
            queue: VecDeque::with_capacity(depth as usize),
            depth: depth.max(1) as usize,
            taken_at: u64::MAX,
            taken: 0,
            on_arrival: false,
        }
    }

    /// A FIFO whose words are taken at the edges they become visible (see `on_arrival`).
    pub fn taken_on_arrival(depth: u32) -> Self {
        Wire {
            on_arrival: true,
            ..Wire::new(depth)
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
        if self.on_arrival {
            // A word visible at `cycle` is taken at `cycle`: its slot is free from the next.
            return self.queue.iter().filter(|(at, _)| *at >= cycle).count() < self.depth;
        }
        self.queue.len() + self.freed_late(cycle) < self.depth
    }

    /// Pushes at the later edge `at` from a step at edge `now < at` (visible from `at + 1`),
    /// if a push at `at` is sure to find a free slot: the pusher is the only one, and the words
    /// queued now (some may yet be taken at `now`) leave one free. Gives the word back if not.
    #[inline]
    pub fn push_at(&mut self, now: u64, at: u64, item: T) -> Result<(), T> {
        debug_assert!(at > now && !self.on_arrival);
        if self.queue.len() >= self.depth || self.queue.back().is_some_and(|(v, _)| *v > at + 1) {
            return Err(item);
        }
        self.queue.push_back((at + 1, item));
        Ok(())
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
    /// latest), or a slot freed at edge `cycle` (a waiting pusher may use it then). Words taken
    /// on arrival stir nothing: their taker asks for the edges it needs them at.
    #[inline]
    pub fn stirs(&self, cycle: u64) -> bool {
        !self.on_arrival && (!self.queue.is_empty() || self.taken_at == cycle)
    }

    /// The first edge after `cycle` that may find something new here, as [`Wire::stirs`] says
    /// of the next one: the head's, when it was pushed ahead ([`Wire::push_at`]); a slot freed
    /// at `cycle` only if the pusher has a word waiting for one (`pusher_waits`).
    #[inline]
    pub fn next_stir(&self, cycle: u64, pusher_waits: bool) -> Option<u64> {
        if self.on_arrival {
            None
        } else if pusher_waits && self.taken_at == cycle {
            Some(cycle + 1)
        } else {
            self.queue.front().map(|(at, _)| (*at).max(cycle + 1))
        }
    }

    /// The edge at which the newest word becomes visible (for words taken on arrival: the
    /// edge of the last take still to come, or made while nobody looked).
    pub fn newest_at(&self) -> Option<u64> {
        self.queue.back().map(|(at, _)| *at)
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
    /// From a step running ahead, sends a request at the next edge, where a step would send
    /// it, if the request FIFO is sure to take it then; an end that cannot tell refuses.
    fn send_next(&mut self, _cx: &StepCtx, _req: GlbReq) -> bool {
        false
    }
    /// For an end whose responses are taken on arrival ([`Wire::taken_on_arrival`]): the edge
    /// at which the newest one not yet looked at arrives.
    fn newest_resp_at(&self) -> Option<u64> {
        None
    }
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
    /// A writer's end: its acknowledgements are taken at the edges they arrive (see
    /// [`Wire::taken_on_arrival`]).
    pub(crate) fn for_writer() -> Self {
        InnerEnd {
            req: Wire::new(PORT_FIFO_DEPTH),
            resp: Wire::taken_on_arrival(PORT_FIFO_DEPTH),
        }
    }

    /// Whether the next edge may find something new in either FIFO (see [`Wire::stirs`]).
    pub(crate) fn stirs(&self, cycle: u64) -> bool {
        self.req.stirs(cycle) || self.resp.stirs(cycle)
    }

    /// The first edge after `cycle` that may find something new in either FIFO (see
    /// [`Wire::next_stir`]); `req_waits`: the requester has a request it could not send.
    pub(crate) fn next_stir(&self, cycle: u64, req_waits: bool) -> Option<u64> {
        match (
            self.req.next_stir(cycle, req_waits),
            self.resp.next_stir(cycle, true),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
    #[inline]
    fn send_next(&mut self, cx: &StepCtx, req: GlbReq) -> bool {
        cx.ahead && self.req.push_at(cx.cycle, cx.cycle + 1, req).is_ok()
    }
    fn newest_resp_at(&self) -> Option<u64> {
        if self.resp.on_arrival {
            self.resp.newest_at()
        } else {
            None
        }
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
