//! The component contract and the scheduler that steps components on their clocks' edges.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::clock::{Clock, ClockError, DomainId, Picos};
use crate::component::{Component, Fault, StepCtx, Wake};
use crate::trace::{SignalInfo, SignalTable, TraceConfig, TraceError, TraceSummary, Tracer};
use crate::wake;

/// Steps and link interactions of one kind of component over a run (see
/// [`Scheduler::activity`]): what the host spent its time on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindActivity {
    /// [`Component::kind`].
    pub kind: String,
    /// Components of this kind.
    pub components: u64,
    /// Calls of [`Component::step`].
    pub steps: u64,
    /// Messages sent and taken on links inside those steps.
    pub link_interactions: u64,
}

/// Handle of a component in a scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ComponentId(pub usize);

/// Why a run stopped early.
#[derive(Debug)]
pub enum SimError {
    /// Nothing moved for `idle_cycles` primary cycles while these components still held work.
    Deadlock {
        cycle: u64,
        time: Picos,
        idle_cycles: u64,
        holding: Vec<String>,
    },
    /// The interrupt flag was raised (Ctrl-C); the run stopped at the end of an instant.
    Interrupted { cycle: u64, time: Picos },
    /// A component raised a fault at an edge.
    Component {
        component: String,
        cycle: u64,
        time: Picos,
        source: Fault,
    },
    /// Tracing failed (an I/O error on the VCD, a bad signal declaration).
    Trace(TraceError),
    /// The scheduler was asked something it cannot do (no clock, a component on a missing clock).
    Setup(String),
}

impl SimError {
    /// The primary-clock cycles completed when the run stopped, when it got going at all.
    pub fn cycle(&self) -> Option<u64> {
        match self {
            SimError::Deadlock { cycle, .. }
            | SimError::Interrupted { cycle, .. }
            | SimError::Component { cycle, .. } => Some(*cycle),
            _ => None,
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Deadlock {
                cycle,
                time,
                idle_cycles,
                holding,
            } => write!(
                f,
                "deadlock: nothing moved for {idle_cycles} cycles (stopped at cycle {cycle}, \
                 {time} ps) while these components still hold work: {}",
                holding.join(", ")
            ),
            SimError::Interrupted { cycle, time } => {
                write!(f, "interrupted at cycle {cycle} ({time} ps)")
            }
            SimError::Component {
                component,
                cycle,
                time,
                source,
            } => write!(f, "{component} at cycle {cycle} ({time} ps): {source}"),
            SimError::Trace(e) => write!(f, "trace: {e}"),
            SimError::Setup(s) => write!(f, "scheduler: {s}"),
        }
    }
}

/// Messages include their causes, so none is repeated as a `source`.
impl std::error::Error for SimError {}

impl From<TraceError> for SimError {
    fn from(e: TraceError) -> Self {
        SimError::Trace(e)
    }
}

/// The order in which the components of one instant are stepped. Results never depend on it;
/// `Shuffled` exists to test that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOrder {
    /// The order components were added.
    Registration,
    /// A fresh pseudo-random permutation at every instant, from this seed.
    Shuffled(u64),
}

/// How a run ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The stop condition was met.
    Reached,
    /// No component holds work: nothing more can happen.
    Quiescent,
}

/// What one [`Scheduler::advance`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advance {
    /// Work is under way (or something moved).
    Busy,
    /// A primary cycle passed with nothing moving and no work held.
    Quiescent,
}

/// When [`Scheduler::run_until`] stops.
pub trait StopCondition {
    fn reached(&mut self, sched: &Scheduler) -> bool;

    /// Whether time alone can meet the condition, so an idle system keeps being stepped towards
    /// it (a cycle or a time). Conditions on state give up with [`RunOutcome::Quiescent`] once no
    /// component holds work, since the state can no longer change.
    fn met_by_time(&self) -> bool {
        false
    }

    /// The primary cycle an event-driven run must not jump past before asking again (conditions
    /// on time; conditions on state need none: nothing changes in the edges a run jumps over).
    fn cycle_limit(&self, _sched: &Scheduler) -> u64 {
        u64::MAX
    }
}

/// Stop once the primary clock has completed this many cycles.
#[derive(Clone, Copy, Debug)]
pub struct Cycle(pub u64);

impl StopCondition for Cycle {
    fn reached(&mut self, s: &Scheduler) -> bool {
        s.cycle() >= self.0
    }
    fn met_by_time(&self) -> bool {
        true
    }
    fn cycle_limit(&self, _s: &Scheduler) -> u64 {
        self.0
    }
}

/// Stop once simulated time has reached this many picoseconds.
#[derive(Clone, Copy, Debug)]
pub struct At(pub Picos);

impl StopCondition for At {
    fn reached(&mut self, s: &Scheduler) -> bool {
        s.time() >= self.0
    }
    fn met_by_time(&self) -> bool {
        true
    }
    fn cycle_limit(&self, s: &Scheduler) -> u64 {
        // The primary edge at or after the time: cycle `n` ends at edge `n`.
        s.domains.first().map_or(u64::MAX, |d| {
            d.clock.first_edge_after(self.0.saturating_sub(1)) + 1
        })
    }
}

impl<F: FnMut(&Scheduler) -> bool> StopCondition for F {
    fn reached(&mut self, s: &Scheduler) -> bool {
        self(s)
    }
}

/// How many edges ahead a domain's timing wheel reaches; later wake-ups wait in a heap.
const WHEEL: u64 = 256;

struct Domain {
    clock: Clock,
    /// Index of the next edge.
    next: u64,
    next_time: Picos,
    members: Vec<usize>,
    /// The members whose signals are traced (stepped at every edge).
    traced: Vec<usize>,
    /// Event-driven runs: who is to be stepped at which edge. Bucket `e % WHEEL` holds the
    /// slots asked for at edge `e`, for edges `next <= e < next + WHEEL` (so a bucket holds one
    /// edge's requests, and a request is its slot alone: four bytes, for buckets that stay in
    /// cache as the wheel turns); later ones wait in `far`.
    wheel: Vec<Vec<u32>>,
    /// Debug builds: the edge each bucket's requests are for (checked when it is taken).
    #[cfg(debug_assertions)]
    bucket_edge: Vec<u64>,
    far: BinaryHeap<Reverse<(u64, u32)>>,
    /// Requests in the wheel and in `far`.
    queued: usize,
    /// Members asleep until a definite edge ([`Wake::IdleFor`], [`Wake::IgnoringLinksFor`]): stepped, each
    /// of their edges would have moved.
    timed: usize,
    /// `timed` when the current instant began.
    timed_before: usize,
}

/// Asks for a step of `slot` (number `c`, a member of `dom`) at `edge`.
#[inline]
fn ask(slot: &mut Slot, c: usize, dom: &mut Domain, edge: u64) {
    slot.asked = edge;
    if slot.untime_at == edge {
        slot.untime_at = NO_EDGE;
    }
    dom.request(edge, c);
}

/// Asks for the end of `slot`'s run ahead ([`Wake::Ahead`]) at `edge`: there it stops counting
/// as moving, without a step (unless one is asked for that edge too).
#[inline]
fn untime(slot: &mut Slot, c: usize, dom: &mut Domain, edge: u64) {
    slot.asked = edge;
    slot.untime_at = edge;
    dom.request(edge, c);
}

/// No edge.
const NO_EDGE: u64 = u64::MAX;

/// The parts of a component asked for at or before edge `e` (a bit each, see
/// [`StepCtx::parts`]), now reported: those requests are dropped, and `parted` stays set while
/// a request for a later edge is left.
#[inline]
fn take_parts(pending: &mut Vec<(u8, u64)>, parted: &mut bool, e: u64) -> u8 {
    let mut bits = 0;
    pending.retain(|&(p, d)| {
        if d <= e {
            bits |= 1 << p;
            false
        } else {
            true
        }
    });
    *parted = !pending.is_empty();
    bits
}

impl Domain {
    #[inline]
    fn request(&mut self, edge: u64, slot: usize) {
        let edge = edge.max(self.next);
        if edge - self.next < WHEEL {
            self.push(edge, slot as u32);
        } else {
            self.push_far(edge, slot as u32);
        }
        self.queued += 1;
    }

    /// A request beyond the wheel's reach.
    #[cold]
    #[inline(never)]
    fn push_far(&mut self, edge: u64, slot: u32) {
        self.far.push(Reverse((edge, slot)));
    }

    /// Puts a request for `edge` (within the wheel's reach) into its bucket.
    #[inline]
    fn push(&mut self, edge: u64, slot: u32) {
        let b = (edge % WHEEL) as usize;
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.wheel[b].is_empty() || self.bucket_edge[b] == edge);
            self.bucket_edge[b] = edge;
        }
        self.wheel[b].push(slot);
    }

    /// The first edge at which someone asked for a step.
    fn first_request(&mut self) -> Option<u64> {
        if self.queued == 0 {
            return None;
        }
        while let Some(&Reverse((e, slot))) = self.far.peek() {
            if e - self.next.min(e) >= WHEEL {
                break;
            }
            self.far.pop();
            self.push(e.max(self.next), slot);
        }
        // Bucket `e % WHEEL` holds requests for edge `e` only: every request lies in
        // `next .. next + WHEEL` when it is made, `next` only grows, and a bucket is emptied at
        // its edge (by a run stepped at every edge too).
        for k in 0..WHEEL {
            let e = self.next + k;
            if !self.wheel[(e % WHEEL) as usize].is_empty() {
                return Some(e);
            }
        }
        self.far.peek().map(|r| r.0 .0)
    }

    /// Moves the requests for edge `e` into `due`.
    fn take(&mut self, e: u64, due: &mut Vec<(usize, u64)>) {
        let bucket = &mut self.wheel[(e % WHEEL) as usize];
        #[cfg(debug_assertions)]
        debug_assert!(bucket.is_empty() || self.bucket_edge[(e % WHEEL) as usize] == e);
        self.queued -= bucket.len();
        due.extend(bucket.iter().map(|&slot| (slot as usize, e)));
        bucket.clear();
    }
}

/// One cache line a component: what the hot loop reads at each step.
#[repr(align(64))]
struct Slot {
    component: Box<dyn Component>,
    domain: usize,
    /// Edges of its clock the component has been brought through (stepped or settled).
    done: u64,
    /// Wake-ups for edges before this one are ignored (it is [`Wake::IgnoringLinksFor`]), or
    /// put off to it (`defers`).
    sleep_until: u64,
    /// Wake-ups for edges before `sleep_until` ask for a step there ([`Wake::IgnoringLinksThenIdle`]).
    defers: bool,
    /// It asked for a step at a definite edge ([`Wake::IdleFor`], [`Wake::IgnoringLinksFor`]) and has not
    /// been stepped since: time alone moves it on, which the watchdog counts as progress.
    timed: bool,
    /// Some of its signals are traced: it is stepped at every edge.
    traced: bool,
    /// The last edge a step was requested for (a second request for it is dropped).
    asked: u64,
    /// The edge at which a run ahead ends ([`Wake::Ahead`]): its request there only ends the
    /// `timed` state, unless a step was asked for that edge too. [`NO_EDGE`] when none.
    untime_at: u64,
    /// A link end of one of its parts has asked for a step (see `Scheduler::parts`).
    parted: bool,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// Steps components on the edges of their clocks, on one picosecond timebase.
///
/// An *instant* is a time at which at least one clock has an edge; the components due at that
/// edge are stepped, in [`StepOrder`], and then (when tracing) report their signals. The first
/// clock added is the primary one: cycle numbers in stop conditions, trace windows, the
/// watchdog and error reports count its edges.
///
/// By default the run is *event-driven*: after each step a component says when it next needs one
/// ([`Component::wake`]); links wake their receiver when a message becomes visible and their
/// sender when a credit does; the scheduler keeps sleeping components out of the loop (a timing
/// wheel per clock) and jumps over instants at which nobody is due. Counters a component accrues
/// while asleep it adds when it is next stepped ([`Component::settle`]). Components whose
/// signals are traced are stepped at every edge. [`Scheduler::set_every_edge`] steps every
/// component at every edge instead: the reference that the event-driven run must equal.
pub struct Scheduler {
    id: u32,
    domains: Vec<Domain>,
    slots: Vec<Slot>,
    /// Per slot: the (part, edge) of each step a link end of one of its parts asked for, not
    /// yet reported to a step ([`StepCtx::parts`], [`crate::in_part`]): a few at a time (the
    /// part's messages on their way).
    parts: Vec<Vec<(u8, u64)>>,
    /// Per slot: steps taken, and link interactions inside them (see [`Scheduler::activity`]).
    activity: Vec<[u64; 2]>,
    order: StepOrder,
    rng: u64,
    every_edge: bool,
    due: Vec<(usize, u64)>,
    /// The domains with an edge at the current instant, and that edge.
    ticking: Vec<(usize, u64)>,
    /// Scratch for the wake-ups a run stepped at every edge passes by.
    spent: Vec<(usize, u64)>,
    now: Picos,
    instants: u64,
    watchdog: u64,
    idle_primary: u64,
    moved_since_primary: bool,
    interrupt: Arc<AtomicBool>,
    /// The declared signals and their values, while tracing or probing.
    table: Option<SignalTable>,
    /// The VCD being written, if any.
    tracer: Option<Tracer>,
    /// Every signal sampled at every instant (see [`Scheduler::probe`]).
    probing: bool,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        wake::release();
    }
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

/// Primary cycles without movement before the watchdog calls a deadlock, unless set otherwise.
pub const DEFAULT_WATCHDOG_CYCLES: u64 = 10_000;

impl Scheduler {
    pub fn new() -> Self {
        Scheduler {
            id: wake::new_scheduler_id(),
            domains: Vec::new(),
            slots: Vec::new(),
            parts: Vec::new(),
            activity: Vec::new(),
            order: StepOrder::Registration,
            rng: 0,
            every_edge: false,
            due: Vec::new(),
            ticking: Vec::new(),
            spent: Vec::new(),
            now: 0,
            instants: 0,
            watchdog: DEFAULT_WATCHDOG_CYCLES,
            idle_primary: 0,
            moved_since_primary: false,
            interrupt: Arc::new(AtomicBool::new(false)),
            table: None,
            tracer: None,
            probing: false,
        }
    }

    /// Adds a clock of `hz` hertz; the first one added is the primary clock.
    pub fn add_clock(&mut self, name: &'static str, hz: u64) -> Result<Clock, ClockError> {
        let clock = Clock::new(DomainId(self.domains.len() as u16), name, hz)?;
        self.domains.push(Domain {
            clock,
            next: 0,
            next_time: clock.edge_time(0),
            members: Vec::new(),
            traced: Vec::new(),
            wheel: (0..WHEEL).map(|_| Vec::new()).collect(),
            #[cfg(debug_assertions)]
            bucket_edge: vec![0; WHEEL as usize],
            far: BinaryHeap::new(),
            queued: 0,
            timed: 0,
            timed_before: 0,
        });
        Ok(clock)
    }

    /// Adds a component stepped on the edges of `clock`.
    pub fn add<C: Component>(&mut self, clock: Clock, component: C) -> ComponentId {
        self.add_boxed(clock, Box::new(component))
    }

    pub fn add_boxed(&mut self, clock: Clock, component: Box<dyn Component>) -> ComponentId {
        let d = clock.id.0 as usize;
        assert!(
            d < self.domains.len() && self.domains[d].clock == clock,
            "clock `{}` does not belong to this scheduler",
            clock.name
        );
        let id = self.slots.len();
        assert!(
            id as u64 <= wake::SLOT_MASK,
            "a scheduler holds at most {} components",
            wake::SLOT_MASK + 1
        );
        let dom = &mut self.domains[d];
        self.activity.push([0, 0]);
        self.slots.push(Slot {
            component,
            domain: d,
            done: dom.next,
            sleep_until: dom.next,
            defers: false,
            timed: false,
            traced: false,
            asked: dom.next,
            untime_at: NO_EDGE,
            parted: false,
        });
        self.parts.push(Vec::new());
        dom.members.push(id);
        if !self.every_edge {
            dom.request(dom.next, id);
        }
        ComponentId(id)
    }

    /// Steps every component at every edge of its clock (`true`), or only when it needs a step
    /// (`false`, the default: see [`Scheduler`]). Both give the same cycles, counts, data and
    /// traces; stepping every edge is the reference the event-driven run is tested against.
    pub fn set_every_edge(&mut self, every_edge: bool) {
        if self.every_edge && !every_edge {
            // Everyone is up to date; ask for each at its next edge.
            for (c, slot) in self.slots.iter_mut().enumerate() {
                let dom = &mut self.domains[slot.domain];
                slot.sleep_until = dom.next;
                let next = dom.next;
                ask(slot, c, dom, next);
            }
        } else if every_edge {
            self.settle();
            // Everyone is stepped from the next edge of its clock on, whatever it asked for.
            for slot in &mut self.slots {
                slot.timed = false;
                slot.untime_at = NO_EDGE;
                slot.sleep_until = self.domains[slot.domain].next;
            }
            for d in &mut self.domains {
                d.timed = 0;
            }
        }
        self.every_edge = every_edge;
    }

    /// Whether every component is stepped at every edge.
    pub fn every_edge(&self) -> bool {
        self.every_edge
    }

    pub fn set_order(&mut self, order: StepOrder) {
        self.order = order;
        if let StepOrder::Shuffled(seed) = order {
            self.rng = seed ^ 0x9E37_79B9_7F4A_7C15;
        }
    }

    /// Primary cycles without movement, while work is held, before a run stops with
    /// [`SimError::Deadlock`]. It must exceed the longest legitimate silence (a DRAM access, a
    /// long link).
    pub fn set_watchdog(&mut self, cycles: u64) {
        self.watchdog = cycles.max(1);
    }

    /// Uses `flag` as the interrupt flag (so one Ctrl-C handler can serve several runs).
    pub fn set_interrupt_flag(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = flag;
    }

    /// A flag that, once raised (from a Ctrl-C handler, another thread), stops the run at the end
    /// of the next instant at which the primary clock ticks, with [`SimError::Interrupted`].
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// Starts tracing: every component declares its signals, the VCD header and the `.gtkw` save
    /// file are written, and from the window's start on every instant's changes are written.
    pub fn trace_to(&mut self, cfg: &TraceConfig) -> Result<(), SimError> {
        let primary = self.primary()?;
        let window = match &cfg.window {
            None => 0..Picos::MAX,
            Some(w) => {
                if w.end <= w.start {
                    return Err(TraceError::BadWindow {
                        start: w.start,
                        end: w.end,
                    }
                    .into());
                }
                let start = if w.start == 0 {
                    0
                } else {
                    primary.edge_time(w.start - 1)
                };
                start..primary.edge_time(w.end - 1)
            }
        };
        if let Some(mut old) = self.tracer.take() {
            old.close()?;
        }
        let selected = match &self.table {
            // Probing: every signal is declared; the file takes those the globs select.
            Some(table) if self.probing => table.select(&cfg.scopes)?,
            _ => {
                let table = self.declare_all(&cfg.scopes)?;
                let all = (0..table.len()).collect();
                self.table = Some(table);
                all
            }
        };
        let table = self.table.as_ref().expect("declared above");
        if selected.is_empty() && !cfg.scopes.is_empty() {
            // A trace of nothing is a mistyped glob, said before the run, not found after it.
            let example = (0..table.len())
                .map(|i| table.info(i).path)
                .next()
                .map(|p| format!(" (signals look like `{p}`)"))
                .unwrap_or_default();
            return Err(SimError::Trace(TraceError::BadGlob {
                glob: cfg.scopes.join("`, `"),
                why: format!("matches no signal{example}"),
            }));
        }
        self.tracer = Some(Tracer::create(cfg, window, table, &selected)?);
        // A window that is already open starts with the current values.
        self.maybe_open_trace(self.now)?;
        Ok(())
    }

    /// Every component declares its signals; those that have any selected are traced from now
    /// on, and so stepped at every edge.
    fn declare_all(&mut self, scopes: &[String]) -> Result<SignalTable, SimError> {
        self.settle();
        let slots = &mut self.slots;
        let table = SignalTable::declare(scopes, |reg| {
            slots.iter_mut().try_for_each(|s| {
                let before = reg.declared();
                s.component.declare(reg)?;
                s.traced = reg.declared() > before;
                Ok(())
            })
        })?;
        for d in &mut self.domains {
            d.traced.clear();
        }
        for (c, slot) in self.slots.iter_mut().enumerate() {
            if slot.traced {
                let dom = &mut self.domains[slot.domain];
                dom.traced.push(c);
                slot.sleep_until = dom.next;
                if !self.every_edge {
                    let next = dom.next;
                    ask(slot, c, dom, next);
                }
            }
        }
        Ok(table)
    }

    /// Samples every signal of every component at every instant from now on, so that
    /// [`Scheduler::signal`] and [`Scheduler::signals`] read their current values (as a VCD of
    /// the run would hold them at this time). Must come before [`Scheduler::trace_to`], which
    /// then writes the signals its globs select, from the probe's table.
    pub fn probe(&mut self) -> Result<(), SimError> {
        if self.probing {
            return Ok(());
        }
        if self.tracer.is_some() {
            return Err(SimError::Setup(
                "probing must start before tracing (a trace declares only the signals its globs select)".into(),
            ));
        }
        let mut table = self.declare_all(&[])?;
        let mut frame = table.frame();
        for s in &self.slots {
            s.component.trace(&mut frame);
        }
        table.clear_dirty();
        self.table = Some(table);
        self.probing = true;
        Ok(())
    }

    /// A signal by its VCD path, with its current value (probing only).
    pub fn signal(&self, path: &str) -> Option<SignalInfo> {
        let t = self.table.as_ref().filter(|_| self.probing)?;
        t.lookup(path).map(|i| t.info(i))
    }

    /// A signal's current value by its VCD path (probing only); no allocation, for per-cycle
    /// checks such as breakpoints.
    pub fn signal_value(&self, path: &str) -> Option<u64> {
        let t = self.table.as_ref().filter(|_| self.probing)?;
        t.lookup(path).map(|i| t.values[i])
    }

    /// The signals whose paths `glob` matches (`*` crosses dots), in declaration order, with their
    /// current values (probing only).
    pub fn signals(&self, glob: &str) -> Result<Vec<SignalInfo>, SimError> {
        let Some(t) = self.table.as_ref().filter(|_| self.probing) else {
            return Ok(Vec::new());
        };
        let m = globset::Glob::new(glob)
            .map_err(|e| TraceError::BadGlob {
                glob: glob.into(),
                why: e.kind().to_string(),
            })?
            .compile_matcher();
        Ok((0..t.len())
            .map(|i| t.info(i))
            .filter(|s| m.is_match(&s.path))
            .collect())
    }

    /// Whether a VCD is being written.
    pub fn is_tracing(&self) -> bool {
        self.tracer.as_ref().is_some_and(|t| !t.is_closed())
    }

    /// Flushes and closes the trace (if any), ending it at the last instant it covers.
    pub fn finish_trace(&mut self) -> Result<Option<TraceSummary>, SimError> {
        if !self.probing {
            self.table = None;
        }
        match self.tracer.take() {
            Some(mut t) => Ok(Some(t.close()?)),
            None => Ok(None),
        }
    }

    fn primary(&self) -> Result<Clock, SimError> {
        self.domains
            .first()
            .map(|d| d.clock)
            .ok_or_else(|| SimError::Setup("no clock has been added".into()))
    }

    /// Primary-clock cycles completed.
    pub fn cycle(&self) -> u64 {
        self.domains.first().map_or(0, |d| d.next)
    }

    /// Cycles completed by `clock`.
    pub fn cycles_of(&self, clock: Clock) -> u64 {
        self.domains[clock.id.0 as usize].next
    }

    /// Time of the last instant stepped (0 before the first).
    pub fn time(&self) -> Picos {
        self.now
    }

    /// Instants stepped so far.
    pub fn instants(&self) -> u64 {
        self.instants
    }

    pub fn component<C: Component>(&self, id: ComponentId) -> Option<&C> {
        self.slots
            .get(id.0)
            .and_then(|s| (*s.component).as_any().downcast_ref())
    }

    /// The component, to change it between runs; this wakes it if it was asleep.
    pub fn component_mut<C: Component>(&mut self, id: ComponentId) -> Option<&mut C> {
        if id.0 >= self.slots.len() {
            return None;
        }
        self.settle_slot(id.0);
        let slot = &mut self.slots[id.0];
        let dom = &mut self.domains[slot.domain];
        slot.sleep_until = dom.next;
        if !self.every_edge {
            let next = dom.next;
            ask(slot, id.0, dom, next);
        }
        (*slot.component).as_any_mut().downcast_mut()
    }

    /// Brings a component through the edges of its clock that have passed since it was last
    /// stepped (see [`Component::settle`]).
    fn settle_slot(&mut self, c: usize) {
        let slot = &mut self.slots[c];
        let dom = &self.domains[slot.domain];
        if slot.done < dom.next {
            let last = dom.next - 1;
            let cx = StepCtx {
                domain: dom.clock.id,
                cycle: last,
                time: dom.clock.edge_time(last),
                ahead: false,
                parts: 0,
            };
            let _who = wake::Stepping::new(wake::owner(self.id, c));
            slot.component.settle(&cx, dom.next - slot.done);
            slot.done = dom.next;
        }
    }

    /// Brings every sleeping component through the edges that have passed, so that its
    /// counters and state are those of the last completed edge (a component that ran ahead,
    /// see [`StepCtx::ahead`], has also counted the edges it ran through). Runs do this when
    /// they stop; call it before reading components between [`Scheduler::step`]s of an
    /// event-driven run.
    pub fn settle(&mut self) {
        for c in 0..self.slots.len() {
            self.settle_slot(c);
        }
        self.collect_posts();
    }

    /// Takes the wake-ups links posted for this scheduler's components.
    fn collect_posts(&mut self) {
        let (slots, domains, parts) = (&mut self.slots, &mut self.domains, &mut self.parts);
        wake::collect(self.id, |c, part, edge| {
            let Some(slot) = slots.get_mut(c) else {
                return;
            };
            if part != 0 {
                // Reported at the first step at or after its edge (a step at an edge already
                // passed reports it at the next step).
                let due = (part, edge.max(slot.done));
                let pending = &mut parts[c];
                if !pending.contains(&due) {
                    pending.push(due);
                }
                slot.parted = true;
            }
            // A wake-up while it ignores its links, which it asked to have put off to the
            // edge after them ([`Wake::IgnoringLinksThenIdle`]).
            let edge = if slot.defers && edge >= slot.done {
                edge.max(slot.sleep_until)
            } else {
                edge
            };
            if edge >= slot.done && edge >= slot.sleep_until {
                if edge == slot.untime_at {
                    // The end of a run ahead is already queued for this edge: now a step.
                    slot.untime_at = NO_EDGE;
                } else if edge != slot.asked {
                    let dom = &mut domains[slot.domain];
                    ask(slot, c, dom, edge);
                }
            }
        });
    }

    /// Names of the components that hold work, in the order they were added.
    pub fn holding_work(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| s.component.holds_work())
            .map(|s| s.component.name().to_string())
            .collect()
    }

    fn any_holds_work(&self) -> bool {
        self.slots.iter().any(|s| s.component.holds_work())
    }

    fn maybe_open_trace(&mut self, t: Picos) -> Result<(), SimError> {
        let (Some(tr), Some(table)) = (self.tracer.as_mut(), self.table.as_mut()) else {
            return Ok(());
        };
        if tr.opens_at(t) {
            // A probe's table is current; otherwise sample every component now.
            if !self.probing {
                let mut frame = table.frame();
                for s in &self.slots {
                    s.component.trace(&mut frame);
                }
            }
            table.clear_dirty();
            tr.dump_all(t, table)?;
        }
        Ok(())
    }

    /// On an error: the trace is ended at the last completed instant and flushed.
    fn fail(&mut self, e: SimError) -> SimError {
        self.settle();
        if let Some(t) = self.tracer.as_mut() {
            if let Err(te) = t.close() {
                eprintln!("warning: could not flush the trace: {te}");
            }
        }
        e
    }

    #[inline]
    fn next_random(&mut self) -> u64 {
        // splitmix64: small, fast, and enough to permute step orders.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Steps one instant: the earliest time at which a component is due (every component at the
    /// earliest edge of any clock, when stepping every edge). Returns whether any component
    /// moved. An event-driven instant may jump over edges at which nobody was due.
    pub fn step(&mut self) -> Result<bool, SimError> {
        self.step_within(u64::MAX)
    }

    /// As [`Scheduler::step`], but the primary clock does not pass cycle `limit` (an
    /// event-driven run stops its jump there).
    pub fn step_within(&mut self, limit: u64) -> Result<bool, SimError> {
        if self.domains.is_empty() {
            return Err(SimError::Setup("no clock has been added".into()));
        }
        let now = self.next_instant(limit);
        self.ticking.clear();
        self.due.clear();
        for (i, d) in self.domains.iter_mut().enumerate() {
            d.timed_before = d.timed;
            // `next` is the first edge after the last instant: most instants are its time.
            let e = match d.next_time.cmp(&now) {
                std::cmp::Ordering::Equal => d.next,
                std::cmp::Ordering::Greater => continue,
                std::cmp::Ordering::Less => {
                    let e = d.clock.first_edge_after(now - 1);
                    if d.clock.edge_time(e) != now {
                        continue;
                    }
                    e
                }
            };
            self.ticking.push((i, e));
            if self.every_edge {
                self.due.extend(d.members.iter().map(|&c| (c, e)));
                // Wake-ups still come due (and go): switched back to event-driven stepping,
                // only those for later edges remain, as they would have.
                let mut spent = std::mem::take(&mut self.spent);
                d.take(e, &mut spent);
                spent.clear();
                self.spent = spent;
            } else {
                d.take(e, &mut self.due);
            }
        }
        if let StepOrder::Shuffled(_) = self.order {
            for i in (1..self.due.len()).rev() {
                let j = (self.next_random() % (i as u64 + 1)) as usize;
                self.due.swap(i, j);
            }
        }
        let mut moved = false;
        let mut failed = None;
        let due = std::mem::take(&mut self.due);
        for &(c, e) in &due {
            let slot = &mut self.slots[c];
            if slot.done > e || e < slot.sleep_until {
                continue; // asked twice, or busy until later
            }
            if slot.timed {
                slot.timed = false;
                self.domains[slot.domain].timed -= 1;
            }
            if slot.untime_at == e {
                // A run ahead ends here; nothing asked for a step.
                slot.untime_at = NO_EDGE;
                continue;
            }
            let dom = &self.domains[slot.domain];
            let who = wake::Stepping::new(wake::owner(self.id, c));
            if slot.done < e {
                let cx = StepCtx {
                    domain: dom.clock.id,
                    cycle: e - 1,
                    time: dom.clock.edge_time(e - 1),
                    ahead: false,
                    parts: 0,
                };
                slot.component.settle(&cx, e - slot.done);
            }
            let parts = if slot.parted {
                take_parts(&mut self.parts[c], &mut slot.parted, e)
            } else {
                0
            };
            let cx = StepCtx {
                domain: dom.clock.id,
                cycle: e,
                time: now,
                ahead: !self.every_edge && !slot.traced,
                parts,
            };
            let stepped = slot.component.step(&cx);
            let count = &mut self.activity[c];
            count[0] += 1;
            count[1] += who.finish();
            let did = match stepped {
                Ok(a) => a,
                Err(err) => {
                    slot.done = e + 1;
                    failed = Some((c, cx, err));
                    break;
                }
            };
            slot.done = e + 1;
            moved |= did.moved();
            if self.every_edge {
                continue;
            }
            let wake = if slot.traced {
                Wake::Next
            } else {
                slot.component.wake(&cx, did)
            };
            let dom = &mut self.domains[slot.domain];
            slot.defers = false;
            match wake {
                Wake::Next | Wake::IdleFor(0 | 1) | Wake::IgnoringLinksFor(0) => {
                    slot.sleep_until = e + 1;
                    ask(slot, c, dom, e + 1);
                }
                Wake::Idle | Wake::IgnoringLinksThenIdle(0) => slot.sleep_until = e + 1,
                Wake::IgnoringLinksThenIdle(n) => {
                    // Moving through the `n` edges (as a run ahead), then idle unless a link
                    // was reached meanwhile: the request at the end only ends `timed`, until a
                    // wake-up put off to it makes it a step.
                    slot.sleep_until = e + 1 + n;
                    slot.defers = true;
                    slot.timed = true;
                    dom.timed += 1;
                    untime(slot, c, dom, e + 1 + n);
                }
                Wake::IdleFor(n) => {
                    slot.sleep_until = e + 1;
                    slot.timed = true;
                    dom.timed += 1;
                    ask(slot, c, dom, e + n);
                }
                Wake::IgnoringLinksFor(n) => {
                    slot.sleep_until = e + 1 + n;
                    slot.timed = true;
                    dom.timed += 1;
                    ask(slot, c, dom, e + 1 + n);
                }
                Wake::Ahead { moving, then } => {
                    slot.sleep_until = e + 1;
                    slot.timed = true;
                    dom.timed += 1;
                    let end = e + 1 + moving;
                    match then {
                        Some(k) if e + k <= end => ask(slot, c, dom, e + k.max(1)),
                        Some(k) => {
                            untime(slot, c, dom, end);
                            ask(slot, c, dom, e + k);
                        }
                        None => untime(slot, c, dom, end),
                    }
                }
            }
        }
        self.due = due;
        if let Some((c, cx, source)) = failed {
            let e = SimError::Component {
                component: self.slots[c].component.name().to_string(),
                cycle: if cx.domain.0 == 0 {
                    cx.cycle
                } else {
                    self.cycle()
                },
                time: cx.time,
                source,
            };
            return Err(self.fail(e));
        }
        // The instant is complete: every clock is past it.
        let prev = self.now;
        self.now = now;
        self.instants += 1;
        let before = self.domains[0].next;
        // Most instants are a primary edge at which something moved.
        let primary_moved = moved && self.domains[0].next_time == now;
        for d in &mut self.domains {
            if d.next_time == now {
                // Edges are at least a picosecond apart: the next one is after `now`.
                d.next_time = d.clock.next_edge_time(d.next, d.next_time);
                d.next += 1;
            } else if d.next_time < now {
                d.next = d.clock.first_edge_after(now);
                d.next_time = d.clock.edge_time(d.next);
            }
            debug_assert_eq!(d.next, d.clock.first_edge_after(now));
            debug_assert_eq!(d.next_time, d.clock.edge_time(d.next));
        }
        let crossed = self.domains[0].next - before;
        self.collect_posts();
        if self.table.is_some() {
            self.trace_instant(now)?;
        }
        if primary_moved {
            // What `count_idle_cycles` finds then: the one primary cycle it ends moved, and
            // nothing after its edge is carried into the next.
            self.idle_primary = 0;
            self.moved_since_primary = false;
        } else {
            self.count_idle_cycles(prev, now, before, moved);
        }
        // An interrupt is honoured at a primary cycle boundary, so "stopped at cycle N" is exact.
        if crossed > 0 && self.interrupt.load(Ordering::Relaxed) {
            let e = SimError::Interrupted {
                cycle: self.cycle(),
                time: now,
            };
            return Err(self.fail(e));
        }
        Ok(moved)
    }

    /// The watchdog counts the primary cycles in which nothing moved, exactly as if every
    /// component had been stepped at every edge: a primary cycle moved if a step in it moved, or
    /// if a component asleep until a definite edge had an edge in it (stepped, it would have
    /// moved there). `first` is the first primary edge this instant crossed, `prev` the last
    /// instant.
    fn count_idle_cycles(&mut self, prev: Picos, now: Picos, first: u64, moved: bool) {
        // Whether a timed sleeper of some clock stood for a moving step at an edge in (a, b].
        let asleep_moving = |doms: &[Domain], a: Picos, b: Picos| {
            doms.iter().any(|d| {
                if d.timed_before == 0 {
                    return false;
                }
                let t = d.clock.edge_time(d.clock.first_edge_after(a.max(prev)));
                t <= b && (t < now || d.timed > 0)
            })
        };
        let p = self.domains[0].clock;
        let end = self.domains[0].next; // primary edges first..end crossed
        if end == first {
            self.moved_since_primary |= moved || asleep_moving(&self.domains, prev, now);
            return;
        }
        let any_timed = self.domains.iter().any(|d| d.timed_before > 0);
        let interval_moved = |k: u64, doms: &[Domain], carried: bool| {
            let a = if k == 0 { 0 } else { p.edge_time(k - 1) };
            let b = p.edge_time(k);
            (b == now && moved) || (k == first && carried) || asleep_moving(doms, a, b)
        };
        // Trailing primary cycles in which nothing moved.
        let (mut k, mut idle) = (end - 1, 0u64);
        let all_idle = loop {
            if interval_moved(k, &self.domains, self.moved_since_primary) {
                break false;
            }
            idle += 1;
            if k == first {
                break true;
            }
            k -= 1;
            if !any_timed && k > first {
                // Nothing asleep moving and no step before `now`: idle down to `first`.
                idle += k - first;
                k = first;
            }
        };
        self.idle_primary = if all_idle {
            self.idle_primary + idle
        } else {
            idle
        };
        // What happened after the last primary edge belongs to the next primary cycle.
        let last = p.edge_time(end - 1);
        self.moved_since_primary = last < now && (moved || asleep_moving(&self.domains, last, now));
    }

    /// The time of the next instant: the earliest edge at which a component is due (any edge,
    /// when stepping every edge); when nobody is due, the next primary edge; never past the
    /// primary edge that completes cycle `limit`.
    fn next_instant(&mut self, limit: u64) -> Picos {
        if self.every_edge {
            return self.domains.iter().map(|d| d.next_time).min().unwrap_or(0);
        }
        let mut t = Picos::MAX;
        for d in &mut self.domains {
            if let Some(e) = d.first_request() {
                let at = if e == d.next {
                    d.next_time
                } else {
                    d.clock.edge_time(e)
                };
                t = t.min(at);
            }
        }
        let p = &self.domains[0];
        if t == Picos::MAX {
            t = p.next_time;
        }
        // While a trace is being written, every primary edge is an instant, as when stepping
        // every edge: its window opens, and the file ends, at the same instants.
        if self.tracer.as_ref().is_some_and(|tr| !tr.is_closed()) {
            t = t.min(p.next_time);
        }
        // Stepping every edge, a run ends at the first primary edge at which a cycle has passed
        // with nothing moving while nobody holds work; a jump must not pass it. (Nothing changes
        // in the edges jumped over, so whether anybody holds work is known now.)
        if t > p.next_time && self.domains.iter().all(|d| d.timed == 0) {
            let first_idle = if self.moved_since_primary {
                p.clock.edge_time(p.next + 1)
            } else {
                p.next_time
            };
            if first_idle < t && !self.any_holds_work() {
                t = first_idle;
            }
        }
        let cap = if limit > p.next {
            p.clock.edge_time(limit - 1)
        } else {
            p.next_time
        };
        t.min(cap)
    }

    fn trace_instant(&mut self, now: Picos) -> Result<(), SimError> {
        let Some(table) = self.table.as_mut() else {
            return Ok(());
        };
        let tr = self.tracer.as_mut().filter(|t| !t.is_closed());
        let opens = tr.as_ref().is_some_and(|t| t.opens_at(now));
        let writes = tr.as_ref().is_some_and(|t| t.samples_at(now));
        if opens && !self.probing {
            self.maybe_open_trace(now)?;
        } else if self.probing || writes {
            let mut frame = table.frame();
            for &(d, _) in &self.ticking {
                for &c in &self.domains[d].traced {
                    self.slots[c].component.trace(&mut frame);
                }
            }
            if let Some(tr) = tr {
                if opens {
                    table.clear_dirty();
                    tr.dump_all(now, table)?;
                } else if writes {
                    tr.write_changes(now, table)?;
                }
            }
            table.clear_dirty();
        }
        let next = self
            .domains
            .iter()
            .map(|d| d.next_time)
            .min()
            .unwrap_or(now);
        if let Some(tr) = self.tracer.as_mut() {
            tr.after_instant(next)?;
        }
        Ok(())
    }

    /// Steps one instant under the watchdog: [`Advance::Quiescent`] once a primary cycle passed
    /// in which nothing moved and no component holds work, [`SimError::Deadlock`] once nothing
    /// moved for the watchdog's cycles while work is held. `run_until` is a loop of these.
    pub fn advance(&mut self) -> Result<Advance, SimError> {
        self.advance_within(u64::MAX)
    }

    /// As [`Scheduler::advance`], not passing primary cycle `limit`.
    pub fn advance_within(&mut self, limit: u64) -> Result<Advance, SimError> {
        self.step_within(limit)?;
        if self.idle_primary > 0 {
            // Nothing moved in the last primary cycle: finished, or stuck?
            if !self.any_holds_work() {
                self.settle();
                return Ok(Advance::Quiescent);
            }
            if self.idle_primary >= self.watchdog {
                let e = SimError::Deadlock {
                    cycle: self.cycle(),
                    time: self.now,
                    idle_cycles: self.idle_primary,
                    holding: self.holding_work(),
                };
                return Err(self.fail(e));
            }
        }
        Ok(Advance::Busy)
    }

    /// Whether any component holds work (a run would step).
    pub fn busy(&self) -> bool {
        self.any_holds_work()
    }

    /// Runs until `stop` holds (checked after each instant) or nothing more can happen.
    pub fn run_until(&mut self, mut stop: impl StopCondition) -> Result<RunOutcome, SimError> {
        loop {
            if stop.reached(self) {
                self.settle();
                return Ok(RunOutcome::Reached);
            }
            let limit = stop.cycle_limit(self);
            if self.advance_within(limit)? == Advance::Quiescent && !stop.met_by_time() {
                return Ok(RunOutcome::Quiescent);
            }
        }
    }

    /// The component named `name` (its scope path, e.g. `top.chip.pe_array.pe_r0_c0`).
    pub fn find(&self, name: &str) -> Option<ComponentId> {
        self.slots
            .iter()
            .position(|s| s.component.name() == name)
            .map(ComponentId)
    }

    /// Names of every component, in the order they were added.
    pub fn component_names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.component.name()).collect()
    }

    /// A component's internal state as text (see [`Component::state`]).
    pub fn state_of(&self, id: ComponentId) -> Option<String> {
        self.slots.get(id.0).and_then(|s| s.component.state())
    }

    /// Steps taken and link interactions made so far, by kind of component, most steps first:
    /// where the host's time went (a step costs about the same whatever the component).
    pub fn activity(&self) -> Vec<KindActivity> {
        let mut kinds: Vec<KindActivity> = Vec::new();
        for (s, a) in self.slots.iter().zip(&self.activity) {
            let kind = s.component.kind();
            let k = match kinds.iter().position(|k| k.kind == kind) {
                Some(i) => i,
                None => {
                    kinds.push(KindActivity {
                        kind: kind.to_string(),
                        ..Default::default()
                    });
                    kinds.len() - 1
                }
            };
            let k = &mut kinds[k];
            k.components += 1;
            k.steps += a[0];
            k.link_interactions += a[1];
        }
        kinds.sort_by(|a, b| b.steps.cmp(&a.steps).then(a.kind.cmp(&b.kind)));
        kinds
    }

    /// Runs until no component holds work.
    pub fn run(&mut self) -> Result<RunOutcome, SimError> {
        if !self.any_holds_work() {
            return Ok(RunOutcome::Quiescent);
        }
        self.run_until(|_: &Scheduler| false)
    }
}
