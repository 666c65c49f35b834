//! A GLB port: a requester's request FIFO into the banks' arbiter and the response FIFO back.
//!
//! A port is either a pair of [`Link`](rowsim_kernel::Link)s to a requester that is a component
//! of its own ([`GlbPort`] at the GLB, [`LinkEnd`] at the requester), or, for the GLB's own
//! sequencers, which the GLB steps itself ([`crate::Glb::add_reader`]), a pair of [`Wire`]s
//! inside the block: the same two FIFOs with the timing a link of latency 1 and the same depth
//! has. A word pushed at edge `c` can be taken from edge `c + 1`; a word taken at edge `c` frees
//! its slot for a push from edge `c + 1`. So the order in which the GLB steps its sequencers
//! and its arbiter within an edge cannot change what any of them sees, as between components.

pub use rowsim_kernel::Wire;
use rowsim_kernel::{LinkRx, LinkTx, StepCtx};

use crate::{GlbReq, GlbResp};

/// The depth of each of a port's two FIFOs (requests, responses), in entries: two, so that a
/// port sustains one access a cycle over its one-cycle hop (a credit loop of two cycles).
pub const PORT_FIFO_DEPTH: u32 = 2;

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
