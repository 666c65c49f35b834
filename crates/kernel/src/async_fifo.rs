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

use crate::clock::Clock;
use crate::component::{Activity, Component, Fault, StepCtx, Wake};
use crate::link::{Link, LinkError, LinkRx, LinkTx};
use crate::trace::{SignalId, SignalRegistry, TraceError, TraceFrame};

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
        let Link { tx, rx } = Link::crossing(scope, from, to, stages, depth)?;
        let ptr_bits = 32 - depth.leading_zeros() + 1;
        Ok((
            AsyncFifoWrite {
                name: format!("{scope}.wr"),
                input,
                storage: tx,
                ptr_bits,
                state: PortState::default(),
                sig: PortSignals::default(),
            },
            AsyncFifoRead {
                name: format!("{scope}.rd"),
                storage: rx,
                output,
                ptr_bits,
                state: PortState::default(),
                sig: PortSignals::default(),
            },
        ))
    }
}

impl AsyncFifo {
    /// Inserts a FIFO from clock `from` to clock `to` into `sched`, with a latency-1 link of 2
    /// credits on each side: returns the sending end (on `from`) and the receiving end (on `to`).
    /// The ports are `scope.wr` and `scope.rd`; the links `scope.in` and `scope.out`.
    pub fn insert<T: TraceValue + Send + 'static>(
        sched: &mut crate::Scheduler,
        scope: &str,
        from: Clock,
        to: Clock,
        depth: u32,
        stages: u32,
    ) -> Result<(LinkTx<T>, LinkRx<T>), LinkError> {
        let input = Link::<T>::new(&format!("{scope}.in"), from, 1, 2)?;
        let output = Link::<T>::new(&format!("{scope}.out"), to, 1, 2)?;
        let (w, r) = AsyncFifo::build(scope, input.rx, output.tx, from, to, depth, stages)?;
        sched.add(from, w);
        sched.add(to, r);
        Ok((input.tx, output.rx))
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
fn transfer<T: TraceValue>(
    cx: &StepCtx,
    from: &mut LinkRx<T>,
    to: &mut LinkTx<T>,
    st: &mut PortState,
    writer: bool,
) -> Result<Activity, Fault> {
    let room = to.can_send(cx);
    let head = from.peek(cx).map(|v| v.trace_bits());
    st.en = false;
    st.flag = if writer { !room } else { head.is_none() };
    let (Some(bits), true) = (head, room) else {
        return Ok(Activity::Idle);
    };
    match from.try_recv(cx).map(|item| to.try_send(cx, item)) {
        Some(Ok(())) => {
            st.count += 1;
            st.en = true;
            st.data = bits;
            // (Looking at the next head also asks for a step at its arrival if it is on its
            // way as part of a run.)
            st.more = from.peek(cx).is_some();
            Ok(Activity::Moved)
        }
        _ => Err("FIFO port lost a message between peek and send".into()),
    }
}

/// The write port of an [`AsyncFifo`], on the source clock.
pub struct AsyncFifoWrite<T> {
    name: String,
    input: LinkRx<T>,
    storage: LinkTx<T>,
    ptr_bits: u32,
    state: PortState,
    sig: PortSignals,
}

impl<T: TraceValue + Send + 'static> Component for AsyncFifoWrite<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        transfer(
            cx,
            &mut self.input,
            &mut self.storage,
            &mut self.state,
            true,
        )
    }

    fn holds_work(&self) -> bool {
        self.input.in_flight() > 0
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        self.state.wake(did)
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.sig = PortSignals::declare::<T>(s, &self.name, "wr", "full", self.ptr_bits)?;
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.state.trace(&self.sig, self.ptr_bits, f);
    }
}

/// The read port of an [`AsyncFifo`], on the destination clock.
pub struct AsyncFifoRead<T> {
    name: String,
    storage: LinkRx<T>,
    output: LinkTx<T>,
    ptr_bits: u32,
    state: PortState,
    sig: PortSignals,
}

impl<T> AsyncFifoRead<T> {
    /// Messages read out so far.
    pub fn reads(&self) -> u64 {
        self.state.count
    }
}

impl<T> AsyncFifoWrite<T> {
    /// Messages written so far.
    pub fn writes(&self) -> u64 {
        self.state.count
    }
}

impl<T: TraceValue + Send + 'static> Component for AsyncFifoRead<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        transfer(
            cx,
            &mut self.storage,
            &mut self.output,
            &mut self.state,
            false,
        )
    }

    fn holds_work(&self) -> bool {
        self.storage.in_flight() > 0
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        self.state.wake(did)
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.sig = PortSignals::declare::<T>(s, &self.name, "rd", "empty", self.ptr_bits)?;
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.state.trace(&self.sig, self.ptr_bits, f);
    }
}
