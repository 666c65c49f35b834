//! The component contract and the scheduler that steps components on their clocks' edges.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::clock::{Clock, ClockError, DomainId, Picos};
use crate::trace::{
    SignalInfo, SignalRegistry, SignalTable, TraceConfig, TraceError, TraceFrame, TraceSummary,
    Tracer,
};

/// Where a component is when it is stepped: its clock, the index of this edge in that clock
/// (cycle `n` ends at edge `n`, counting from 0), and the edge's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepCtx {
    pub domain: DomainId,
    pub cycle: u64,
    pub time: Picos,
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

    /// Whether the component has gone to sleep: nothing can change it until it is changed from
    /// outside (through [`Scheduler::component_mut`]), whatever arrives on its links, and its
    /// traced values stay as they are. The scheduler then stops stepping it, which gives the same
    /// results and traces as stepping it, at no cost; `component_mut` wakes it. Asked only after
    /// an idle step.
    fn dormant(&self) -> bool {
        false
    }

    /// The component's internal state as text, for a person at a debugger (`rowsim step`'s
    /// `state`): storage contents, queue levels, control state. `None` when it has none to show.
    fn state(&self) -> Option<String> {
        None
    }
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
}

impl<F: FnMut(&Scheduler) -> bool> StopCondition for F {
    fn reached(&mut self, s: &Scheduler) -> bool {
        self(s)
    }
}

struct Domain {
    clock: Clock,
    /// Index of the next edge.
    next: u64,
    next_time: Picos,
    members: Vec<usize>,
}

struct Slot {
    component: Box<dyn Component>,
    domain: usize,
    /// Stepped at each edge; false once the component is dormant, until `component_mut`.
    awake: bool,
}

/// Steps components on the edges of their clocks, on one picosecond timebase.
///
/// An *instant* is a time at which at least one clock has an edge; every component of every clock
/// with an edge then is stepped, in [`StepOrder`], and then (when tracing) reports its signals.
/// The first clock added is the primary one: cycle numbers in stop conditions, trace windows,
/// the watchdog and error reports count its edges.
pub struct Scheduler {
    domains: Vec<Domain>,
    slots: Vec<Slot>,
    order: StepOrder,
    rng: u64,
    scratch: Vec<usize>,
    due: Vec<usize>,
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
            domains: Vec::new(),
            slots: Vec::new(),
            order: StepOrder::Registration,
            rng: 0,
            scratch: Vec::new(),
            due: Vec::new(),
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
        self.slots.push(Slot {
            component,
            domain: d,
            awake: true,
        });
        self.domains[d].members.push(id);
        ComponentId(id)
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
                let slots = &mut self.slots;
                let table = SignalTable::declare(&cfg.scopes, |reg| {
                    slots.iter_mut().try_for_each(|s| s.component.declare(reg))
                })?;
                let all = (0..table.len()).collect();
                self.table = Some(table);
                all
            }
        };
        let table = self.table.as_ref().expect("declared above");
        self.tracer = Some(Tracer::create(cfg, window, table, &selected)?);
        // A window that is already open starts with the current values.
        self.maybe_open_trace(self.now)?;
        Ok(())
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
        let slots = &mut self.slots;
        let mut table = SignalTable::declare(&[], |reg| {
            slots.iter_mut().try_for_each(|s| s.component.declare(reg))
        })?;
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

    /// The component, to change it between runs; this wakes it if it was dormant.
    pub fn component_mut<C: Component>(&mut self, id: ComponentId) -> Option<&mut C> {
        self.slots.get_mut(id.0).and_then(|s| {
            s.awake = true;
            (*s.component).as_any_mut().downcast_mut()
        })
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

    /// Steps one instant: every component whose clock has an edge at the earliest next edge time.
    /// Returns whether any component moved.
    pub fn step(&mut self) -> Result<bool, SimError> {
        if self.domains.is_empty() {
            return Err(SimError::Setup("no clock has been added".into()));
        }
        let now = self.domains.iter().map(|d| d.next_time).min().unwrap_or(0);
        self.due.clear();
        for (i, d) in self.domains.iter().enumerate() {
            if d.next_time == now {
                self.due.push(i);
            }
        }
        let mut moved = false;
        let mut failed = None;
        match self.order {
            StepOrder::Registration => {
                'outer: for &d in &self.due {
                    let cx = StepCtx {
                        domain: DomainId(d as u16),
                        cycle: self.domains[d].next,
                        time: now,
                    };
                    for &c in &self.domains[d].members {
                        let slot = &mut self.slots[c];
                        if !slot.awake {
                            continue;
                        }
                        match slot.component.step(&cx) {
                            Ok(a) => {
                                moved |= a.moved();
                                if !a.moved() && slot.component.dormant() {
                                    slot.awake = false;
                                }
                            }
                            Err(e) => {
                                failed = Some((c, cx, e));
                                break 'outer;
                            }
                        }
                    }
                }
            }
            StepOrder::Shuffled(_) => {
                let mut order = std::mem::take(&mut self.scratch);
                order.clear();
                for &d in &self.due {
                    order.extend_from_slice(&self.domains[d].members);
                }
                for i in (1..order.len()).rev() {
                    let j = (self.next_random() % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
                for &c in &order {
                    let d = self.slots[c].domain;
                    if !self.slots[c].awake {
                        continue;
                    }
                    let cx = StepCtx {
                        domain: DomainId(d as u16),
                        cycle: self.domains[d].next,
                        time: now,
                    };
                    let slot = &mut self.slots[c];
                    match slot.component.step(&cx) {
                        Ok(a) => {
                            moved |= a.moved();
                            if !a.moved() && slot.component.dormant() {
                                slot.awake = false;
                            }
                        }
                        Err(e) => {
                            failed = Some((c, cx, e));
                            break;
                        }
                    }
                }
                self.scratch = order;
            }
        }
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
        // The instant is complete: advance the clocks that ticked.
        self.now = now;
        self.instants += 1;
        let mut primary_ticked = false;
        for &d in &self.due {
            let dom = &mut self.domains[d];
            dom.next += 1;
            dom.next_time = dom.clock.edge_time(dom.next);
            primary_ticked |= d == 0;
        }
        if self.table.is_some() {
            self.trace_instant(now)?;
        }
        // The watchdog counts primary cycles in which nothing moved.
        self.moved_since_primary |= moved;
        if primary_ticked {
            if self.moved_since_primary {
                self.idle_primary = 0;
            } else {
                self.idle_primary += 1;
            }
            self.moved_since_primary = false;
        }
        // An interrupt is honoured at a primary cycle boundary, so "stopped at cycle N" is exact.
        if primary_ticked && self.interrupt.load(Ordering::Relaxed) {
            let e = SimError::Interrupted {
                cycle: self.cycle(),
                time: now,
            };
            return Err(self.fail(e));
        }
        Ok(moved)
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
            for &d in &self.due {
                for &c in &self.domains[d].members {
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
        self.step()?;
        if self.idle_primary > 0 {
            // Nothing moved in the last primary cycle: finished, or stuck?
            if !self.any_holds_work() {
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
                return Ok(RunOutcome::Reached);
            }
            if self.advance()? == Advance::Quiescent && !stop.met_by_time() {
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

    /// Runs until no component holds work.
    pub fn run(&mut self) -> Result<RunOutcome, SimError> {
        if !self.any_holds_work() {
            return Ok(RunOutcome::Quiescent);
        }
        self.run_until(|_: &Scheduler| false)
    }
}
