//! The dual-clock FIFO between two clock domains, as a pair of components.
//!
//! A write port on the source clock takes messages from an input [`Link`] and writes them into
//! the FIFO storage; a read port on the destination clock reads them out onto an output link.
//! Between the two, each pointer crosses through `stages` synchronizer flip-flops of the other
//! clock (a [`Link::crossing`]): a write at time `t` becomes readable at the read clock's
//! `stages`-th edge after `t`, and the slot it frees after a read becomes writable at the write
//! clock's `stages`-th edge after the read. So the FIFO looks full to the writer for a while
//! after the reader has made room, exactly the conservative view a Gray-coded pointer
//! synchronizer gives, and a FIFO that is too shallow for the clock ratio throttles the writer.
//!
//! Each port is also a *part* ([`FifoWritePart`], [`FifoReadPart`]) that the component beside
//! it on its clock can step itself, over a [`Wire`] in place of the link between them (the
//! DRAM controller steps the ports on its side of its three FIFOs, the RLC decoder the
//! read-data FIFO's read port: `rowsim-dram`): the wire has that link's
//! timing (latency one, the same depth), so every message crosses at the same edges, and the
//! port costs no step and no link operations of its own. A test runs the same traffic both
//! ways and compares every edge.

use crate::clock::Clock;
use crate::component::{Activity, Component, Fault, StepCtx, Wake};
use crate::link::{Link, LinkError, LinkRx, LinkTx};
use crate::trace::{SignalId, SignalRegistry, TraceError, TraceFrame};
use crate::wire::Wire;

/// A message that can be shown in a trace: its width and its bits.
pub trait TraceValue {
    const WIDTH: u32;
    fn trace_bits(&self) -> u64;
}

macro_rules! trace_value_uint {
    ($($t:ty),*) => {$(
        impl TraceValue for $t {
            const WIDTH: u32 = <$t>::BITS;
            fn trace_bits(&self) -> u64 {
                *self as u64
            }
        }
    )*};
}
trace_value_uint!(u8, u16, u32, u64);

impl TraceValue for bool {
    const WIDTH: u32 = 1;
    fn trace_bits(&self) -> u64 {
        *self as u64
    }
}

/// Builds the two ports of a dual-clock FIFO.
pub struct AsyncFifo;

impl AsyncFifo {
    /// A FIFO of `depth` entries from `input` (a link on clock `from`) to `output` (a link on
    /// clock `to`), with `stages` synchronizer flip-flops on each pointer. `scope` names the FIFO
    /// in traces; the ports are `scope.wr` and `scope.rd`.
    pub fn build<T: TraceValue + Send + 'static>(
        scope: &str,
        input: LinkRx<T>,
        output: LinkTx<T>,
        from: Clock,
        to: Clock,
        depth: u32,
        stages: u32,
    ) -> Result<(AsyncFifoWrite<T>, AsyncFifoRead<T>), LinkError> {
        let (wr, rd) = AsyncFifo::parts(scope, from, to, depth, stages)?;
        Ok((
            AsyncFifoWrite { part: wr, input },
            AsyncFifoRead { part: rd, output },
        ))
    }

    /// The two ports of a dual-clock FIFO as parts, for the components beside them to step
    /// (see the module docs): the write port on clock `from`, the read port on clock `to`.
    pub fn parts<T: TraceValue>(
        scope: &str,
        from: Clock,
        to: Clock,
        depth: u32,
        stages: u32,
    ) -> Result<(FifoWritePart<T>, FifoReadPart<T>), LinkError> {
        let Link { tx, rx } = Link::crossing(scope, from, to, stages, depth)?;
        let ptr_bits = 32 - depth.leading_zeros() + 1;
        Ok((
            FifoWritePart {
                name: format!("{scope}.wr"),
                storage: tx,
                ptr_bits,
                state: PortState::default(),
                sig: PortSignals::default(),
            },
            FifoReadPart {
                name: format!("{scope}.rd"),
                storage: rx,
                ptr_bits,
                state: PortState::default(),
                sig: PortSignals::default(),
            },
        ))
    }
}

impl AsyncFifo {
    /// Inserts a FIFO from clock `from` to clock `to` into `sched`, with a latency-1 link of
    /// [`PORT_LINK_DEPTH`] credits on each side: returns the sending end (on `from`) and the
    /// receiving end (on `to`). The ports are `scope.wr` and `scope.rd`; the links `scope.in`
    /// and `scope.out`.
    pub fn insert<T: TraceValue + Send + 'static>(
        sched: &mut crate::Scheduler,
        scope: &str,
        from: Clock,
        to: Clock,
        depth: u32,
        stages: u32,
    ) -> Result<(LinkTx<T>, LinkRx<T>), LinkError> {
        let input = Link::<T>::new(&format!("{scope}.in"), from, 1, PORT_LINK_DEPTH)?;
        let output = Link::<T>::new(&format!("{scope}.out"), to, 1, PORT_LINK_DEPTH)?;
        let (w, r) = AsyncFifo::build(scope, input.rx, output.tx, from, to, depth, stages)?;
        sched.add(from, w);
        sched.add(to, r);
        Ok((input.tx, output.rx))
    }

    /// As [`AsyncFifo::insert`], but the read port is left as a part for the component that
    /// takes the messages on clock `to` to step (see the module docs): returns the sending end
    /// (on `from`) and the read port.
    pub fn insert_write_port<T: TraceValue + Send + 'static>(
        sched: &mut crate::Scheduler,
        scope: &str,
        from: Clock,
        to: Clock,
        depth: u32,
        stages: u32,
    ) -> Result<(LinkTx<T>, FifoReadPart<T>), LinkError> {
        let input = Link::<T>::new(&format!("{scope}.in"), from, 1, PORT_LINK_DEPTH)?;
        let (wr, rd) = AsyncFifo::parts(scope, from, to, depth, stages)?;
        sched.add(from, AsyncFifoWrite::new(wr, input.rx));
        Ok((input.tx, rd))
    }
}

/// The depth of the link between a FIFO port and the component beside it
/// ([`AsyncFifo::insert`]), and so of the [`Wire`] that stands for it when the component steps
/// the port itself.
pub const PORT_LINK_DEPTH: u32 = 2;

/// Where a FIFO port takes its messages from: the link from the component before it, or a
/// [`Wire`] inside that component.
pub trait PortIn<T> {
    /// The message at the head, if it has arrived by this edge.
    fn head(&mut self, cx: &StepCtx) -> Option<&T>;
    /// Takes the message at the head, if it has arrived.
    fn take(&mut self, cx: &StepCtx) -> Option<T>;
}

/// Where a FIFO port puts its messages: the link to the component after it, or a [`Wire`]
/// inside that component.
pub trait PortOut<T> {
    /// Whether a message sent now finds room.
    fn room(&mut self, cx: &StepCtx) -> bool;
    /// Sends a message (with room, as [`PortOut::room`] said).
    fn put(&mut self, cx: &StepCtx, item: T) -> bool;
}

impl<T> PortIn<T> for LinkRx<T> {
    #[inline]
    fn head(&mut self, cx: &StepCtx) -> Option<&T> {
        self.peek(cx)
    }
    #[inline]
    fn take(&mut self, cx: &StepCtx) -> Option<T> {
        self.try_recv(cx)
    }
}

impl<T> PortOut<T> for LinkTx<T> {
    #[inline]
    fn room(&mut self, cx: &StepCtx) -> bool {
        self.can_send(cx)
    }
    #[inline]
    fn put(&mut self, cx: &StepCtx, item: T) -> bool {
        self.try_send(cx, item).is_ok()
    }
}

impl<T: Copy> PortIn<T> for Wire<T> {
    #[inline]
    fn head(&mut self, cx: &StepCtx) -> Option<&T> {
        self.peek(cx.cycle)
    }
    #[inline]
    fn take(&mut self, cx: &StepCtx) -> Option<T> {
        self.pop(cx.cycle)
    }
}

impl<T: Copy> PortOut<T> for Wire<T> {
    #[inline]
    fn room(&mut self, cx: &StepCtx) -> bool {
        self.can_push(cx.cycle)
    }
    #[inline]
    fn put(&mut self, cx: &StepCtx, item: T) -> bool {
        self.push(cx.cycle, item).is_ok()
    }
}

fn wrap(count: u64, bits: u32) -> u64 {
    count & ((1u64 << bits) - 1)
}

#[derive(Default)]
struct PortSignals {
    en: SignalId,
    data: SignalId,
    ptr: SignalId,
    /// `full` on the write port, `empty` on the read port, as seen at the last edge.
    flag: SignalId,
}

impl PortSignals {
    fn declare<T: TraceValue>(
        s: &mut SignalRegistry,
        scope: &str,
        dir: &str,
        flag: &str,
        ptr_bits: u32,
    ) -> Result<Self, TraceError> {
        Ok(PortSignals {
            en: s.signal(scope, &format!("{dir}_en"), 1)?,
            data: s.signal(scope, &format!("{dir}_data"), T::WIDTH)?,
            ptr: s.signal(scope, &format!("{dir}_ptr"), ptr_bits)?,
            flag: s.signal(scope, flag, 1)?,
        })
    }
}

/// What a port did at its last edge, kept for the trace.
#[derive(Default, Clone, Copy)]
struct PortState {
    count: u64,
    en: bool,
    data: u64,
    flag: bool,
    /// After a move, another message had already arrived: the next edge may move it.
    more: bool,
}

impl PortState {
    /// What a port needs after a step: the next edge after a move with another message
    /// there; else nothing until a message or a credit arrives (a message still on its way
    /// wakes the port at its arrival).
    fn wake(&self, did: Activity) -> Wake {
        if did.moved() && self.more {
            Wake::Next
        } else {
            Wake::Idle
        }
    }
}

impl PortState {
    fn trace(&self, sig: &PortSignals, ptr_bits: u32, f: &mut TraceFrame) {
        f.set_bool(sig.en, self.en);
        f.set(sig.data, self.data);
        f.set(sig.ptr, wrap(self.count, ptr_bits));
        f.set_bool(sig.flag, self.flag);
    }
}

/// Moves one message from `from` to `to` if one is there and `to` has room; `blocked` is the
/// port's flag (FIFO full for the writer, empty for the reader).
#[inline]
fn transfer<T: TraceValue>(
    cx: &StepCtx,
    from: &mut impl PortIn<T>,
    to: &mut impl PortOut<T>,
    st: &mut PortState,
    writer: bool,
) -> Result<Activity, Fault> {
    let room = to.room(cx);
    let head = from.head(cx).map(|v| v.trace_bits());
    st.en = false;
    st.flag = if writer { !room } else { head.is_none() };
    let (Some(bits), true) = (head, room) else {
        return Ok(Activity::Idle);
    };
    match from.take(cx).map(|item| to.put(cx, item)) {
        Some(true) => {
            st.count += 1;
            st.en = true;
            st.data = bits;
            // (Looking at the next head also asks for a step at its arrival if it is on its
            // way as part of a run.)
            st.more = from.head(cx).is_some();
            Ok(Activity::Moved)
        }
        _ => Err("FIFO port lost a message between peek and send".into()),
    }
}

/// The write port of an [`AsyncFifo`] as a part of the component that sends into it (see the
/// module docs): it moves a message a cycle from that component's [`Wire`] into the FIFO.
pub struct FifoWritePart<T> {
    name: String,
    storage: LinkTx<T>,
    ptr_bits: u32,
    state: PortState,
    sig: PortSignals,
}

impl<T: TraceValue> FifoWritePart<T> {
    /// The port's edge: the message at the head of `input` into the FIFO, if it has room.
    #[inline]
    pub fn step_from(
        &mut self,
        cx: &StepCtx,
        input: &mut impl PortIn<T>,
    ) -> Result<Activity, Fault> {
        transfer(cx, input, &mut self.storage, &mut self.state, true)
    }

    /// Whether the port needs the next edge after a step that `did` what it did, as its own
    /// component would ([`Component::wake`]): it moved a message and another had arrived.
    /// Else a message reaching `input` or room coming back needs it: room wakes the component
    /// that steps the port (the FIFO's credits are its link's), a message pushed into a wire
    /// that component knows of.
    pub fn wants_next(&self, did: Activity) -> bool {
        matches!(self.state.wake(did), Wake::Next)
    }

    pub fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.sig = PortSignals::declare::<T>(s, &self.name, "wr", "full", self.ptr_bits)?;
        Ok(())
    }

    pub fn trace(&self, f: &mut TraceFrame) {
        self.state.trace(&self.sig, self.ptr_bits, f);
    }
}

/// The read port of an [`AsyncFifo`] as a part of the component that takes from it (see the
/// module docs): it moves a message a cycle from the FIFO into that component's [`Wire`].
pub struct FifoReadPart<T> {
    name: String,
    storage: LinkRx<T>,
    ptr_bits: u32,
    state: PortState,
    sig: PortSignals,
}

impl<T: TraceValue> FifoReadPart<T> {
    /// The port's edge: the message at the FIFO's head into `output`, if it has room.
    #[inline]
    pub fn step_into(
        &mut self,
        cx: &StepCtx,
        output: &mut impl PortOut<T>,
    ) -> Result<Activity, Fault> {
        transfer(cx, &mut self.storage, output, &mut self.state, false)
    }

    /// As [`FifoWritePart::wants_next`]: a message arriving in the FIFO wakes the component
    /// that steps the port (the FIFO's messages are its link's), room in a wire that
    /// component knows of.
    pub fn wants_next(&self, did: Activity) -> bool {
        matches!(self.state.wake(did), Wake::Next)
    }

    /// Whether a message has arrived at the FIFO's head (looking also asks for a step at the
    /// arrival of one on its way, as the port's own look does).
    pub fn waiting(&mut self, cx: &StepCtx) -> bool {
        self.storage.peek(cx).is_some()
    }

    /// Messages in the FIFO, arrived or on their way (see [`LinkRx::in_flight`]).
    pub fn in_flight(&self) -> usize {
        self.storage.in_flight()
    }

    pub fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.sig = PortSignals::declare::<T>(s, &self.name, "rd", "empty", self.ptr_bits)?;
        Ok(())
    }

    pub fn trace(&self, f: &mut TraceFrame) {
        self.state.trace(&self.sig, self.ptr_bits, f);
    }
}

/// A FIFO's read port as a part, and the wire from it into the component that steps it (the
/// link it stands for), with that component's wake-ups for the port.
pub struct FifoReadEnd<T> {
    pub port: FifoReadPart<T>,
    pub wire: Wire<T>,
}

impl<T: Copy + TraceValue> FifoReadEnd<T> {
    pub fn new(port: FifoReadPart<T>) -> Self {
        FifoReadEnd {
            port,
            wire: Wire::new(PORT_LINK_DEPTH),
        }
    }

    /// The port's edge; whether it needs the next: it moved a message and another has
    /// arrived.
    #[inline]
    pub fn step(&mut self, cx: &StepCtx) -> Result<(Activity, bool), Fault> {
        let did = self.port.step_into(cx, &mut self.wire)?;
        Ok((did, self.port.wants_next(did)))
    }

    /// After the component's part of the edge: a message for it to take at the next edge (it
    /// says whether it would), or one waiting in the FIFO for a slot it freed at this edge
    /// (what the link's credit would have woken). Messages reaching the FIFO wake the
    /// component as its link would (it owns the FIFO's receiving end).
    #[inline]
    pub fn next(&mut self, cx: &StepCtx, takes: bool) -> bool {
        (takes && !self.wire.is_empty())
            || (self.wire.can_push(cx.cycle + 1)
                && !self.wire.can_push(cx.cycle)
                && self.port.waiting(cx))
    }

    /// A message in the wire or in the FIFO.
    pub fn holds_work(&self) -> bool {
        !self.wire.is_empty() || self.port.in_flight() > 0
    }
}

/// A FIFO's write port as a part, and the wire into it from the component that steps it, with
/// that component's wake-ups for the port.
pub struct FifoWriteEnd<T> {
    pub wire: Wire<T>,
    pub port: FifoWritePart<T>,
}

impl<T: Copy + TraceValue> FifoWriteEnd<T> {
    pub fn new(port: FifoWritePart<T>) -> Self {
        FifoWriteEnd {
            wire: Wire::new(PORT_LINK_DEPTH),
            port,
        }
    }

    /// The port's edge, after the component's pushes of this edge; whether it needs the next:
    /// it moved a message and another has arrived, or a message was pushed at this edge. (A
    /// full wire keeps one message when the port moves the other, so the component's room
    /// needs no wake of its own; room in the FIFO wakes the component, which owns its sending
    /// end.)
    #[inline]
    pub fn step(&mut self, cx: &StepCtx) -> Result<(Activity, bool), Fault> {
        let did = self.port.step_from(cx, &mut self.wire)?;
        Ok((
            did,
            self.port.wants_next(did) || self.wire.pushed_at(cx.cycle),
        ))
    }

    /// A message in the wire.
    pub fn holds_work(&self) -> bool {
        !self.wire.is_empty()
    }
}

impl<T> FifoWritePart<T> {
    /// Messages written so far.
    pub fn writes(&self) -> u64 {
        self.state.count
    }

    /// The port's scope, `<fifo>.wr`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T> FifoReadPart<T> {
    /// Messages read so far.
    pub fn reads(&self) -> u64 {
        self.state.count
    }

    /// The port's scope, `<fifo>.rd`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The write port of an [`AsyncFifo`], on the source clock.
pub struct AsyncFifoWrite<T> {
    part: FifoWritePart<T>,
    input: LinkRx<T>,
}

impl<T: TraceValue + Send + 'static> Component for AsyncFifoWrite<T> {
    fn name(&self) -> &str {
        &self.part.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.part.step_from(cx, &mut self.input)
    }

    fn holds_work(&self) -> bool {
        self.input.in_flight() > 0
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        self.part.state.wake(did)
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.part.declare(s)
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.part.trace(f);
    }
}

/// The read port of an [`AsyncFifo`], on the destination clock.
pub struct AsyncFifoRead<T> {
    part: FifoReadPart<T>,
    output: LinkTx<T>,
}

impl<T> AsyncFifoRead<T> {
    /// The read port `part` as a component of its own, sending on `output`.
    pub fn new(part: FifoReadPart<T>, output: LinkTx<T>) -> Self {
        AsyncFifoRead { part, output }
    }

    /// Messages read out so far.
    pub fn reads(&self) -> u64 {
        self.part.reads()
    }
}

impl<T> AsyncFifoWrite<T> {
    /// The write port `part` as a component of its own, taking from `input`.
    pub fn new(part: FifoWritePart<T>, input: LinkRx<T>) -> Self {
        AsyncFifoWrite { part, input }
    }

    /// Messages written so far.
    pub fn writes(&self) -> u64 {
        self.part.writes()
    }
}

impl<T: TraceValue + Send + 'static> Component for AsyncFifoRead<T> {
    fn name(&self) -> &str {
        &self.part.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.part.step_into(cx, &mut self.output)
    }

    fn holds_work(&self) -> bool {
        self.part.storage.in_flight() > 0
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        self.part.state.wake(did)
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.part.declare(s)
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.part.trace(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scheduler;

    /// Where the source's words go: a link to the FIFO's write port, or a wire to the port as
    /// its own part.
    enum Out {
        Link(LinkTx<u16>),
        Part(FifoWriteEnd<u16>),
    }

    /// Sends words `0..count`, one a cycle while there is room, and records the edge of each.
    struct Source {
        out: Out,
        count: u64,
        sent: Vec<u64>,
        next: bool,
    }

    impl Component for Source {
        fn name(&self) -> &str {
            "source"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            let n = self.sent.len() as u64;
            let mut moved = false;
            if n < self.count {
                moved = match &mut self.out {
                    Out::Link(tx) => tx.try_send(cx, n as u16).is_ok(),
                    Out::Part(end) => end.wire.push(cx.cycle, n as u16).is_ok(),
                };
                if moved {
                    self.sent.push(cx.cycle);
                }
            }
            self.next = moved && (self.sent.len() as u64) < self.count;
            if let Out::Part(end) = &mut self.out {
                let (did, next) = end.step(cx)?;
                self.next |= next;
                moved |= did.moved();
            }
            Ok(Activity::from_moved(moved))
        }

        fn holds_work(&self) -> bool {
            (self.sent.len() as u64) < self.count
                || matches!(&self.out, Out::Part(end) if end.holds_work())
        }

        fn wake(&self, _cx: &StepCtx, _did: Activity) -> Wake {
            if self.next {
                Wake::Next
            } else {
                Wake::Idle
            }
        }
    }

    /// Where the sink's words come from: a link from the FIFO's read port, or the port as its
    /// own part and a wire from it.
    enum In {
        Link(LinkRx<u16>),
        Part(FifoReadEnd<u16>),
    }

    /// Takes a word at the edges that are multiples of `every` (a slow consumer that fills the
    /// FIFO), and records the edge of each.
    struct Sink {
        input: In,
        every: u64,
        got: Vec<(u64, u16)>,
        wake: Wake,
    }

    impl Component for Sink {
        fn name(&self) -> &str {
            "sink"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            let c = cx.cycle;
            let (mut moved, mut port_next) = (false, false);
            if let In::Part(end) = &mut self.input {
                let (did, next) = end.step(cx)?;
                moved = did.moved();
                port_next = next;
            }
            if c.is_multiple_of(self.every) {
                let w = match &mut self.input {
                    In::Link(rx) => rx.try_recv(cx),
                    In::Part(end) => end.wire.pop(c),
                };
                if let Some(w) = w {
                    self.got.push((c, w));
                    moved = true;
                }
            }
            // A word held (visible by the next edge at the latest) is taken at the next edge
            // that takes one; a word arriving wakes the sink as a link does.
            let held = match &mut self.input {
                In::Link(rx) => rx.peek(cx).is_some(),
                In::Part(end) => {
                    // (The sink's takes wait for their edges: a word held asks for the next
                    // one below.)
                    port_next |= end.next(cx, false);
                    !end.wire.is_empty()
                }
            };
            let to_take = (c / self.every + 1) * self.every - c;
            self.wake = if port_next {
                Wake::Next
            } else if held {
                Wake::IdleFor(to_take)
            } else {
                Wake::Idle
            };
            Ok(Activity::from_moved(moved))
        }

        fn holds_work(&self) -> bool {
            match &self.input {
                In::Link(rx) => rx.in_flight() > 0,
                In::Part(end) => end.holds_work(),
            }
        }

        fn wake(&self, _cx: &StepCtx, _did: Activity) -> Wake {
            self.wake
        }
    }

    /// Runs `count` words through a FIFO from a `from_hz` clock to a `to_hz` one, its ports
    /// components of their own (`parts` false) or parts of the source and the sink; returns
    /// the source's send edges and the sink's (edge, word) takes.
    #[allow(clippy::too_many_arguments)]
    fn run(
        parts: bool,
        every_edge: bool,
        from_hz: u64,
        to_hz: u64,
        depth: u32,
        stages: u32,
        every: u64,
        count: u64,
    ) -> (Vec<u64>, Vec<(u64, u16)>) {
        let mut s = Scheduler::new();
        let from = s.add_clock("from", from_hz).unwrap();
        let to = s.add_clock("to", to_hz).unwrap();
        s.set_every_edge(every_edge);
        let (out, input) = if parts {
            let (wr, rd) = AsyncFifo::parts::<u16>("fifo", from, to, depth, stages).unwrap();
            (
                Out::Part(FifoWriteEnd::new(wr)),
                In::Part(FifoReadEnd::new(rd)),
            )
        } else {
            let (tx, rx) =
                AsyncFifo::insert::<u16>(&mut s, "fifo", from, to, depth, stages).unwrap();
            (Out::Link(tx), In::Link(rx))
        };
        let src = s.add(
            from,
            Source {
                out,
                count,
                sent: Vec::new(),
                next: false,
            },
        );
        let sink = s.add(
            to,
            Sink {
                input,
                every,
                got: Vec::new(),
                wake: Wake::Next,
            },
        );
        s.run().unwrap();
        let sent = s.component::<Source>(src).unwrap().sent.clone();
        let got = s.component::<Sink>(sink).unwrap().got.clone();
        (sent, got)
    }

    /// A FIFO's ports stepped as parts of the components beside them move every word at the
    /// edges their own components move it, whatever the clocks, the depth, the synchronizer
    /// and the consumer's pace (which fills the FIFO and stalls the source), stepped every
    /// edge or event-driven.
    #[test]
    fn ports_as_parts_move_every_word_at_the_edges_the_port_components_do() {
        let clocks = [
            (200_000_000, 60_000_000),
            (60_000_000, 200_000_000),
            (100_000_000, 100_000_000),
        ];
        for &(from_hz, to_hz) in &clocks {
            for depth in [2, 4] {
                for stages in [2, 3] {
                    for every in [1, 3] {
                        let want = run(false, true, from_hz, to_hz, depth, stages, every, 40);
                        assert_eq!(want.1.len(), 40);
                        assert_eq!(
                            want.1.iter().map(|g| g.1).collect::<Vec<_>>(),
                            (0..40).collect::<Vec<u16>>()
                        );
                        for (parts, every_edge) in [(false, false), (true, true), (true, false)] {
                            let got =
                                run(parts, every_edge, from_hz, to_hz, depth, stages, every, 40);
                            assert_eq!(
                                got, want,
                                "{from_hz} -> {to_hz} Hz, depth {depth}, {stages} stages, a word every {every}: parts {parts}, every edge {every_edge}"
                            );
                        }
                    }
                }
            }
        }
    }
}
