//! rowsim's clocked kernel.
//!
//! - [`Clock`]s on one picosecond timebase; edges computed exactly from their index, so clocks of
//!   any ratio (a 200 MHz core, a 60 MHz link) interleave without drift.
//! - The [`Component`] contract: stepped once per edge of its clock, a component sees only what
//!   was committed before the edge, and what it sends is seen no earlier than the next edge.
//! - [`Link`]: latency (>= 1 cycle), capacity, and credit backpressure that does not depend on
//!   the order components are stepped in; its messages travel through a single-producer,
//!   single-consumer ring between its two ends.
//! - [`Wire`]: a FIFO between two parts of one component (a block stepped once an edge for all
//!   its parts), with the timing of a link of latency one.
//! - [`AsyncFifo`]: the dual-clock FIFO between domains, as a write port and a read port.
//! - The [`Scheduler`]: `step()`, `run_until(cycle | time | predicate)`, `run()`, deterministic;
//!   a watchdog that turns a silent, stuck run into [`SimError::Deadlock`] naming the components
//!   that still hold work; an interrupt flag for Ctrl-C that stops at an instant boundary.
//! - Tracing ([`trace`]): signals declared once, values reported after each edge, changes written
//!   to a VCD (and a `.gtkw` save file), limited to scope globs and a cycle window.

pub mod async_fifo;
pub mod clock;
pub mod component;
pub mod demo;
pub mod link;
pub mod parts;
mod ring;
pub mod scheduler;
mod spin;
pub mod trace;
mod wake;
pub mod wire;

pub use async_fifo::{
    AsyncFifo, AsyncFifoRead, AsyncFifoWrite, FifoReadEnd, FifoReadPart, FifoWriteEnd,
    FifoWritePart, PortIn, PortOut, TraceValue, PORT_LINK_DEPTH,
};
pub use clock::{Clock, ClockError, DomainId, Picos};
pub use component::{Activity, AsAny, Component, Fault, StepCtx, Wake};
pub use link::{Link, LinkError, LinkRx, LinkTx, Port};
pub use parts::{Collector, Feeder, Merge};
pub use scheduler::{
    Advance, At, ComponentId, Cycle, KindActivity, RunOutcome, Scheduler, SimError, StepOrder,
    StopCondition, DEFAULT_WATCHDOG_CYCLES,
};
pub use trace::{
    SignalId, SignalInfo, SignalRegistry, TraceConfig, TraceError, TraceFrame, TraceSummary,
};
pub use wake::{in_part, MAX_PARTS};
pub use wire::Wire;
