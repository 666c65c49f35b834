//! The component contract: what a clocked block is to the scheduler.
//!
//! A [`Component`] is stepped once per edge of its clock ([`StepCtx`]); in a step it sees only
//! what was committed before the edge and stages what it sends, and says what it did
//! ([`Activity`]). In an event-driven run it also says when it next needs a step ([`Wake`]),
//! brings itself through edges that passed without one ([`Component::settle`]), and may run ahead
//! through edges whose every input it knows ([`StepCtx::ahead`]).

use std::any::Any;

use crate::clock::{DomainId, Picos};
use crate::trace::{SignalRegistry, TraceError, TraceFrame};

/// Where a component is when it is stepped: its clock, the index of this edge in that clock
/// (cycle `n` ends at edge `n`, counting from 0), and the edge's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepCtx {
    pub domain: DomainId,
    pub cycle: u64,
    pub time: Picos,
    /// Whether the component may run ahead of this edge: take and send on its links at later
    /// edges whose inputs it already knows (see [`crate::LinkRx::try_recv_at`]), and say so
    /// with its [`Component::wake`]. False when every component is stepped at every edge (the
    /// reference) and for a traced component, which are stepped edge by edge. (A component
    /// that starts being traced in the middle of a run finishes a burst it had begun: its
    /// signals show that burst's last edges as quiet.)
    pub ahead: bool,
    /// Bit `p`: a link end of part `p` of the component ([`crate::in_part`]) asked for a step
    /// at or before this edge since the component's last step (a message arrived, or a
    /// credit came back, for that part). Always 0 for a component without parts; a step that
    /// does not look at it steps every part, as a component stepped at every edge must.
    pub parts: u8,
}

/// What a step did, for the watchdog: `Moved` when any state changed (a message sent or taken,
/// a register written, a counter advanced), `Idle` when the component only waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Moved,
    Idle,
}

impl Activity {
    pub fn moved(self) -> bool {
        self == Activity::Moved
    }

    pub fn from_moved(moved: bool) -> Self {
        if moved {
            Activity::Moved
        } else {
            Activity::Idle
        }
    }
}

impl std::ops::BitOr for Activity {
    type Output = Activity;
    fn bitor(self, rhs: Activity) -> Activity {
        Activity::from_moved(self.moved() || rhs.moved())
    }
}

impl std::ops::BitOrAssign for Activity {
    fn bitor_assign(&mut self, rhs: Activity) {
        *self = *self | rhs;
    }
}

/// What a component needs after a step, in an event-driven run. Every answer is a promise about
/// the component's own steps; waking it early is always harmless (it is stepped as it would
/// have been), waking it late never happens, because every message and credit that reaches one
/// of its links wakes it at the edge at which it becomes visible (unless it is
/// [`Wake::IgnoringLinksFor`], or [`Wake::IgnoringLinksThenIdle`], which puts that step off to
/// the edge after the edges it ignores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A step at the next edge.
    Next,
    /// Nothing to do until a message or a credit reaches one of its links: until then, each step
    /// would repeat the one just taken (what that step accrued at each edge, such as a stall
    /// counter, [`Component::settle`] adds in bulk).
    Idle,
    /// As `Idle`, and in any case a step `n` edges from now (`n >= 1`): a wait with a known end,
    /// such as a memory access latency.
    IdleFor(u64),
    /// The next `n` edges need no step: in them the component looks at no link, whatever reaches
    /// it (so nothing that does wakes it), and works only on its own state, which it has already
    /// run through or [`Component::settle`] brings through them (an untraced PE through a burst
    /// with its ifmap port idle). Then a step at the edge after them. (Named `Busy` before.)
    IgnoringLinksFor(u64),
    /// As `IgnoringLinksFor(n)` through the next `n` edges, but then no step unless a message
    /// or a credit reaches one of its links in them (which asks for a step at the edge after
    /// them) or later (which wakes it as for `Idle`): a run ahead that leaves it waiting on a
    /// link (a PE whose drain waits for the psum from below). Only for a component with
    /// nothing already arrived or on its way that it would act on after the `n` edges (a
    /// message on its way asked for its step already, which the `n` edges drop). `0` is
    /// `Idle`.
    IgnoringLinksThenIdle(u64),
    /// It has run through the next `moving` edges itself (each moved: see
    /// [`StepCtx::ahead`]); what reaches its links wakes it as for `Idle`, and it needs a step
    /// `then` edges from now if that is `Some` (`then > moving`), else none until something
    /// reaches a link: after a burst whose end leaves it waiting on its links. A link may still
    /// wake it at one of those edges: that step reports [`Activity::Moved`] (the edge moved, in
    /// the burst), else the scheduler counts the edge as idle (a run would end, or the watchdog
    /// count, a cycle early).
    Ahead { moving: u64, then: Option<u64> },
}

impl Wake {
    /// `Next` after a step that moved, `Idle` after one that did not: the answer of a component
    /// whose idle steps change nothing and wait only on its links.
    pub fn after(did: Activity) -> Wake {
        if did.moved() {
            Wake::Next
        } else {
            Wake::Idle
        }
    }
}

/// An error a component raises at an edge (bad input, a broken protocol); the scheduler stops
/// the run at that edge and names the component.
pub type Fault = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Lets the scheduler hand out components by their concrete type.
pub trait AsAny: Any {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A clocked block.
///
/// The contract: [`Component::step`] is called once per edge of the component's clock. In it the
/// component sees only what was committed before the edge (its own registered state and the
/// messages that have arrived on its links) and stages what it sends; what it sends is visible to
/// others no earlier than their next edge. Components talk only through [`crate::Link`]s. So the
/// order in which the scheduler steps the components of one instant cannot change any result,
/// and a test checks it by shuffling that order.
pub trait Component: AsAny + Send {
    /// The component's scope path, e.g. `top.chip.pe_array.pe_r3_c7`.
    fn name(&self) -> &str;

    /// One edge of the component's clock.
    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault>;

    /// Whether the component still has work: data to send or process, a request outstanding, a
    /// message in flight towards it. A run ends when no component holds work; the watchdog names
    /// the components that do when nothing has moved for too long.
    fn holds_work(&self) -> bool;

    /// Declares the component's signals, once, when tracing starts.
    fn declare(&mut self, _signals: &mut SignalRegistry) -> Result<(), TraceError> {
        Ok(())
    }

    /// Reports the component's signal values after an edge (only while tracing).
    fn trace(&self, _frame: &mut TraceFrame) {}

    /// In an event-driven run, after a step that `did` what it did: when the component next
    /// needs a step (see [`Wake`]). The default, [`Wake::Next`], steps it at every edge. Not
    /// asked while the component's signals are traced (a traced component is stepped at every
    /// edge), nor when the scheduler steps every component at every edge.
    fn wake(&self, _cx: &StepCtx, _did: Activity) -> Wake {
        Wake::Next
    }

    /// Brings the component's state through `edges` edges that passed without a step, the last of
    /// them `last`, exactly as stepping it at each would have, given that nothing reached its
    /// links meanwhile (the scheduler guarantees that: any message or credit that became visible
    /// would have woken it). Called before the next step, and when a run stops (so counters are
    /// current). Only a component whose [`Component::wake`] ever says other than `Next` is asked.
    fn settle(&mut self, _last: &StepCtx, _edges: u64) {}

    /// The component's internal state as text, for a person at a debugger (`rowsim step`'s
    /// `state`): storage contents, queue levels, control state. `None` when it has none to show.
    fn state(&self) -> Option<String> {
        None
    }

    /// What kind of block this is, for the account of a run's steps
    /// ([`crate::Scheduler::activity`]): by default the name of its Rust type (`Pe`, `Gin`, ...).
    fn kind(&self) -> &'static str {
        let t = std::any::type_name::<Self>();
        let t = t.split('<').next().unwrap_or(t);
        t.rsplit("::").next().unwrap_or(t)
    }
}
