//! `Link<T>`: a point-to-point wire bundle with a latency, a capacity and credit backpressure.
//!
//! # Why the step order does not matter
//! Every message carries the cycle (of the receiver's clock) from which it may be seen, and every
//! credit carries the cycle (of the sender's clock) from which it may be spent. Both are strictly
//! later than the edge at which they were made:
//! - a message sent at cycle `c` of a same-clock link is ready at `c + latency`, `latency >= 1`;
//! - a credit returned when the receiver pops at cycle `c` is usable from `c + 1`;
//! - across clocks (the [`AsyncFifo`](crate::AsyncFifo)), a message written at time `t` is ready
//!   at the receiver's `stages`-th edge strictly after `t`, and a credit likewise in the sender's
//!   clock: the pointer synchronizers of a dual-clock FIFO.
//!
//! So whether the receiver is stepped before or after the sender in the same instant, the sender
//! sees the same credits and the receiver the same messages: what a component does at an edge
//! depends only on what was committed before it.
//!
//! # Where the messages wait
//! A link has one sending end and one receiving end, and its credits bound the messages on
//! their way by its capacity: they travel through a bounded single-producer, single-consumer
//! ring (`crate::ring`), safe between threads if components are ever stepped in parallel, which
//! is also the receiver's queue: it looks at the messages in place and pops them when it takes
//! them. A clock crossing's credits travel as messages of their own, through a crossbeam
//! channel.
//!
//! # Runs
//! A component running ahead may send several messages at consecutive edges as one *run*
//! ([`LinkTx::send_run_at`]) and take several as one ([`LinkRx::take_run_at`]): one link
//! interaction and one wake-up instead of one per message, with every message visible, and every
//! credit usable, at the edge it would have been had each gone alone. The wake-ups a run does
//! not make at once are asked for when they can matter: the receiver asks for a step at the
//! arrival of a message of a run once it is at the head of its queue and not yet there, and a
//! sender with credits returned by a run of pops, not yet usable, asks for a step at the next.
//! A run counts as one link interaction in the host statistics.
//!
//! # Taking messages for the receiver
//! A receiver that knows it will take each of the next `n` messages at the first edge it has
//! arrived by, one an edge (a PE loading a filter row), can leave that to the link
//! ([`LinkRx::auto_take`]): each send then records the pops the receiver would have made, so
//! the sender sees its credits come back at the same edges, and the receiver is not stepped at
//! each arrival but once, at the edge of the last pop, and collects the messages
//! ([`LinkRx::take_auto`]). Messages so taken wait outside the FIFO's capacity (their credits
//! are back) until collected.
//!
//! # Capacity
//! The sender starts with `capacity` credits; a send spends one, a pop at the receiver gives one
//! back a cycle later. `capacity` therefore bounds the messages in flight plus those waiting at
//! the receiver: the receive FIFO of the hardware. A link sustains one message per cycle only
//! when `capacity >= latency + 1` (the credit loop); fewer credits throttle it, which is exactly
//! the backpressure a shallow FIFO causes on a chip.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::clock::Clock;
use crate::component::StepCtx;
use crate::ring::Ring;
use crate::spin::{SpinGuard, SpinLock};
use crate::wake;
use crate::DomainId;

/// A message and when it may be seen, in one word beside it (a message's slot in the ring is
/// as small as the message allows): the cycle in bits 0..63, and in bit 63 whether nobody has
/// asked for a step of the receiver at its arrival yet.
///
/// Runs: the messages of a run sent at consecutive edges (one a cycle) go into the ring at
/// once, each visible a cycle after the one before, with the visibility and the credits each
/// would have had if sent alone, and one wake-up for the run: the wake-up at the arrival of a
/// run's later message is asked for by the receiver once the message is at the head of its
/// queue (see [`LinkRx::post_head`]).
struct Envelope<T> {
    stamp: u64,
    item: T,
}

const UNPOSTED: u64 = 1 << 63;
const CYCLE_MASK: u64 = UNPOSTED - 1;

impl<T> Envelope<T> {
    #[inline(always)]
    fn new(ready_at: u64, item: T, posted: bool) -> Self {
        debug_assert!(ready_at <= CYCLE_MASK);
        let unposted = if posted { 0 } else { UNPOSTED };
        Envelope {
            stamp: ready_at | unposted,
            item,
        }
    }

    #[inline(always)]
    fn ready_at(&self) -> u64 {
        self.stamp & CYCLE_MASK
    }

    #[inline(always)]
    fn posted(&self) -> bool {
        self.stamp & UNPOSTED == 0
    }

    #[inline(always)]
    fn set_posted(&mut self) {
        self.stamp &= !UNPOSTED;
    }
}

/// Events (sends, or pops) of one end of a same-clock link, by the cycle they happen at, as the
/// other end needs them: how many happened before a given cycle. Events come in non-decreasing
/// cycles, as *runs*: several at one cycle, or one a cycle over consecutive cycles (a burst,
/// which may reach past the edge at which it is recorded: a component running ahead). The
/// latest run and the count before it are enough, because a new run starts only at or after
/// the edge at which it is recorded, once the run before it is over (checked in debug builds):
/// nobody asks about a cycle before that edge any more.
struct Ramp {
    /// First cycle of the latest run, and in bit 63 whether the run's events are all at that
    /// cycle (else one a cycle from it): one word, so a ramp and its count fit three.
    start: AtomicU64,
    /// Events before the run's first cycle.
    base: AtomicU64,
    /// Events so far.
    total: AtomicU64,
}

/// Bit 63 of [`Ramp::start`]: the run's events are all at its first cycle.
const AT_ONE_CYCLE: u64 = 1 << 63;

impl Default for Ramp {
    fn default() -> Self {
        Ramp {
            start: AtomicU64::new(0),
            base: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

/// A [`Ramp`]'s events so far and its latest run ([`Ramp::latest`]): a copy that
/// [`Ramp::record_from`] keeps current, for a writer that records several events in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Latest {
    total: u64,
    base: u64,
    start: u64,
    at_one: bool,
    end: Option<u64>,
}

impl Latest {
    /// Whether `n` events at `cycle`, recorded at the edge `now <= cycle`, may join the ramp
    /// in this state: the first as [`Latest::admits`] says; the rest then join it unless the
    /// first continued a run one a cycle, which the ramp can follow with more events at its
    /// last cycle only at the current edge.
    #[inline]
    fn admits_all(&self, cycle: u64, now: u64, n: u64) -> bool {
        n == 0
            || (self.admits(cycle, now)
                && (n == 1
                    || cycle == now
                    || !matches!(self.end, Some(e) if !self.at_one && cycle == e + 1)))
    }

    /// Whether an event at `cycle`, recorded at the edge `now <= cycle`, may join the ramp
    /// in this state (see [`Ramp::admits`]).
    #[inline]
    fn admits(&self, cycle: u64, now: u64) -> bool {
        let Some(e) = self.end else {
            return true;
        };
        (cycle == e && (self.at_one || self.total - self.base == 1 || e == now))
            || (!self.at_one && cycle == e + 1)
            || (e < now && cycle > e)
    }
}

impl Ramp {
    #[inline]
    fn total(&self) -> u64 {
        self.total.load(Ordering::Acquire)
    }

    /// The run's first cycle, and whether its events are all at it.
    #[inline]
    fn run(&self) -> (u64, bool) {
        let s = self.start.load(Ordering::Acquire);
        (s & !AT_ONE_CYCLE, s & AT_ONE_CYCLE != 0)
    }

    /// Events at cycles before `cycle`.
    #[inline]
    fn before(&self, cycle: u64) -> u64 {
        let total = self.total.load(Ordering::Acquire);
        let (start, at_one) = self.run();
        let base = self.base.load(Ordering::Acquire);
        if cycle <= start {
            base
        } else if at_one {
            total
        } else {
            total.min(base + (cycle - start))
        }
    }

    /// The cycle of event `k` (counting from 0, one made) of the latest run, or `start` for an
    /// older one.
    fn cycle_of(&self, k: u64) -> u64 {
        debug_assert!(k < self.total(), "event {k} is not made");
        self.cycle_in_run(k).unwrap_or_else(|| self.run().0)
    }

    /// The cycle of event `k` if it is one of the latest run's (made, and not older).
    #[inline]
    fn cycle_in_run(&self, k: u64) -> Option<u64> {
        let total = self.total.load(Ordering::Acquire);
        let (start, at_one) = self.run();
        let base = self.base.load(Ordering::Acquire);
        if k < base || k >= total {
            None
        } else if at_one {
            Some(start)
        } else {
            Some(start + (k - base))
        }
    }

    #[inline]
    fn set_run(&self, base: u64, start: u64, at_one: bool) {
        self.base.store(base, Ordering::Relaxed);
        let flag = if at_one { AT_ONE_CYCLE } else { 0 };
        self.start.store(start | flag, Ordering::Release);
    }

    /// Whether an event at `cycle`, recorded at the edge `now <= cycle`, may join the ramp:
    /// it continues the latest run (at its last cycle, or the cycle after a run one a cycle),
    /// or starts a new one once the latest is over. What [`Ramp::record`] accepts.
    #[inline]
    fn admits(&self, cycle: u64, now: u64) -> bool {
        self.latest().admits(cycle, now)
    }

    /// The events so far and the latest run: where it starts, whether its events share one
    /// cycle, and the cycle of its last event (`None` before any).
    #[inline]
    fn latest(&self) -> Latest {
        let total = self.total.load(Ordering::Relaxed);
        let (start, at_one) = self.run();
        let base = self.base.load(Ordering::Relaxed);
        let n = total - base;
        let end = if n == 0 {
            None
        } else if at_one {
            Some(start)
        } else {
            Some(start + n - 1)
        };
        Latest {
            total,
            base,
            start,
            at_one,
            end,
        }
    }

    /// Records an event at `cycle`, made at the edge `now <= cycle`; returns the new total.
    #[inline]
    fn record(&self, cycle: u64, now: u64) -> u64 {
        let mut l = self.latest();
        self.record_from(&mut l, cycle, now);
        l.total
    }

    /// [`Ramp::record`] for a writer holding the ramp's state `l` (from [`Ramp::latest`], and
    /// kept current by this: nothing else records meanwhile), which it updates: no reload.
    #[inline]
    fn record_from(&self, l: &mut Latest, cycle: u64, now: u64) {
        let n = l.total - l.base;
        match l.end {
            Some(e) if cycle == e && (l.at_one || n == 1) => {
                if !l.at_one {
                    l.at_one = true;
                    self.set_run(l.base, l.start, true);
                }
            }
            Some(e) if cycle == e => {
                // A second event at the last cycle of a ramp, which is this edge: the ramp's
                // earlier events are in the past, so a run of events at this cycle starts with
                // the ramp's last one.
                debug_assert!(
                    e == now,
                    "two link events at the later edge {e} of a run (edge {now})"
                );
                (l.base, l.start, l.at_one) = (l.total - 1, cycle, true);
                self.set_run(l.base, cycle, true);
            }
            Some(e) if !l.at_one && cycle == e + 1 => {}
            end => {
                debug_assert!(
                    end.is_none_or(|e| e < now && cycle > e),
                    "a run of link events started at cycle {cycle} (edge {now}) before the last one (ending {end:?}) was over"
                );
                (l.base, l.start, l.at_one) = (l.total, cycle, false);
                self.set_run(l.total, cycle, false);
            }
        }
        l.end = Some(cycle);
        l.total += 1;
        self.total.store(l.total, Ordering::Release);
    }

    /// Records `n` events made at the edge `now`, all at cycle `first` or (`one_a_cycle`) one
    /// a cycle from it: what `n` calls of [`Ramp::record`] in turn leave, in two of them and a
    /// store. After the second, the latest run is one that each further event continues (the
    /// events share its cycle, or it is one a cycle and ends at the cycle before), so they
    /// change only the count.
    #[inline]
    fn record_run(&self, first: u64, n: u64, one_a_cycle: bool, now: u64) {
        let mut l = self.latest();
        self.record_run_from(&mut l, first, n, one_a_cycle, now);
    }

    /// [`Ramp::record_run`] from the ramp's state `l`, which it keeps current (see
    /// [`Ramp::record_from`]).
    #[inline]
    fn record_run_from(&self, l: &mut Latest, first: u64, n: u64, one_a_cycle: bool, now: u64) {
        if n == 0 {
            return;
        }
        self.record_from(l, first, now);
        if n == 1 {
            return;
        }
        self.record_from(l, first + one_a_cycle as u64, now);
        if n > 2 {
            l.total += n - 2;
            if one_a_cycle {
                l.end = Some(first + n - 1);
            }
            self.total.store(l.total, Ordering::Release);
        }
    }
}

/// What each end has done so far. Each count has one writer (the end that sends, or the one
/// that pops), which publishes it after its ring operation; the other end reads it to skip the
/// ring entirely when nothing new is there: an empty poll costs one load.
/// (Polling empty FIFOs is most of what a PE's inputs do.)
///
/// It also holds who owns each end (see [`crate::wake`]), so that a send can wake the receiver
/// and a pop the sender. Its 64 bytes are one cache line, which both ends touch at every
/// interaction.
#[repr(align(64))]
struct Published {
    /// Messages sent, by the sender's cycle (for a same-clock link: what a receiver's FIFO
    /// level counts at a cycle, when the sender runs ahead).
    sends: Ramp,
    /// Messages taken, by the receiver's cycle. On a same-clock link a credit is a count, not
    /// a channel message: the sender at cycle `c` may use every pop of a cycle before `c`.
    pops: Ramp,
    rx_owner: AtomicU64,
    tx_owner: AtomicU64,
    /// Messages the receiver has asked to be taken on its behalf as they are sent (see
    /// [`LinkRx::auto_take`]), and the first edge at which it may take them. On the next cache
    /// line: a send reads it, only an armed link writes it.
    auto_left: AtomicU64,
    auto_from: AtomicU64,
    /// Pops made for the receiver that the `pops` ramp cannot hold yet ([`AutoTake::deferred`]).
    auto_deferred: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Published>() == 128);

impl Default for Published {
    fn default() -> Self {
        Published {
            sends: Ramp::default(),
            pops: Ramp::default(),
            rx_owner: AtomicU64::new(wake::NOBODY),
            tx_owner: AtomicU64::new(wake::NOBODY),
            auto_left: AtomicU64::new(0),
            auto_from: AtomicU64::new(0),
            auto_deferred: AtomicU64::new(0),
        }
    }
}

/// What both ends of a link share, in one allocation: the counts and
/// owners ([`Published`], two cache lines) and right after them the messages taken on the
/// receiver's behalf ([`LinkRx::auto_take`]), whose credits are back before the receiver
/// collects them, so they wait beyond the FIFO's capacity (a send puts all of its own at once,
/// and the receiver takes all it collects at once). A send into an armed link touches both;
/// adjacent, the second is fetched with the first.
struct Shared<T> {
    published: Published,
    auto: SpinLock<AutoTake<T>>,
    /// The messages on their way, sent alone or heading a run (see [`Envelope`]): the credits
    /// bound them by the capacity.
    ring: Ring<Envelope<T>>,
}

/// Messages taken on a receiver's behalf (see [`LinkRx::auto_take`]) and what the receiver
/// asked for.
struct AutoTake<T> {
    /// Taken, not yet collected.
    items: VecDeque<T>,
    /// For each message still to be taken, the first edge it may be taken at (none if empty).
    not_before: VecDeque<u64>,
    /// The last edge a message may be taken at for the receiver: one that would be taken later
    /// ends the arrangement, and it and the messages after it wait for the receiver.
    until: u64,
    /// Whether the receiver is asked for a step at (`Some(0)`), or some edges after, the edge
    /// of the last it asked for.
    wake_after_last: Option<u64>,
    /// The edges of pops made for the receiver that start a run of pops while the ramp's
    /// latest is not over (the ramp holds one run ahead of the edge it is told at), and of
    /// those after them: each goes into the ramp once the run before it is over at an edge
    /// someone looks at the pops ([`Published::settle_deferred`]). Until then, nobody asks
    /// about the edges after it.
    deferred: VecDeque<u64>,
}

impl<T> AutoTake<T> {
    /// The edge of the last pop made for the receiver (in the ramp `l`, or deferred).
    #[inline]
    fn last_pop(&self, l: &Latest) -> Option<u64> {
        self.deferred.back().copied().or(l.end)
    }

    /// Records the pop of the next message taken for the receiver at edge `at` (seen from edge
    /// `now`): into the ramp `l` of `p` if it may join it, else deferred, with a step of the
    /// sender asked for at its credit; the message's own earliest edge is used up.
    #[inline(always)]
    fn pop_at(&mut self, p: &Published, l: &mut Latest, at: u64, now: u64) {
        if self.deferred.is_empty() && l.admits(at, now) {
            p.pops.record_from(l, at, now);
        } else {
            // A second run of pops ahead of the edge: the ramp takes it later.
            self.deferred.push_back(at);
            wake::post(p.sender_to_wake(), at + 1);
        }
        self.not_before.pop_front();
    }
}

/// Bit of [`Published::tx_owner`]: the sender had the credits it needs at its last look (a
/// same-clock link), so a pop need not wake it: it has nothing to wait for. A sender that
/// looks and finds too few clears it (and asks for the step at the credit it waits for, if
/// that pop is made already), so a later pop wakes it as before.
const SATISFIED: u64 = 1 << 62;

impl Published {
    /// Whom a pop wakes: the sender, unless it has the credits it needs.
    #[inline]
    fn sender_to_wake(&self) -> wake::Owner {
        let o = self.tx_owner.load(Ordering::Relaxed);
        if o & SATISFIED != 0 {
            wake::NOBODY
        } else {
            o
        }
    }

    /// Puts into the `pops` ramp the deferred pops ([`AutoTake::deferred`]) it can hold as
    /// seen from edge `now`: those whose run may start now that the run before is over.
    #[inline]
    fn settle_deferred<T>(&self, auto: &SpinLock<AutoTake<T>>, now: u64) {
        if self.auto_deferred.load(Ordering::Relaxed) != 0 {
            self.settle_deferred_slow(auto, now);
        }
    }

    #[cold]
    #[inline(never)]
    fn settle_deferred_slow<T>(&self, auto: &SpinLock<AutoTake<T>>, now: u64) {
        let mut auto = auto.lock();
        while let Some(&x) = auto.deferred.front() {
            if !self.pops.admits(x, now) {
                break;
            }
            self.pops.record(x, now);
            auto.deferred.pop_front();
        }
        self.auto_deferred
            .store(auto.deferred.len() as u64, Ordering::Relaxed);
    }
}

/// When a message or credit made at an edge becomes visible at the other end.
#[derive(Clone, Copy, Debug)]
enum Delay {
    /// Same clock: `cycles` later.
    Cycles(u64),
    /// To another clock: the `stages`-th edge of `to` strictly after the time of the edge.
    Synchronized { to: Clock, stages: u64 },
}

impl Delay {
    #[inline]
    fn visible_at(self, cx: &StepCtx) -> u64 {
        match self {
            Delay::Cycles(n) => cx.cycle + n,
            Delay::Synchronized { to, stages } => to.first_edge_after(cx.time) + stages - 1,
        }
    }
}

/// A link that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError {
    pub link: String,
    pub what: String,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link `{}`: {}", self.link, self.what)
    }
}

impl std::error::Error for LinkError {}

/// Both ends of a link; take them apart with `let Link { tx, rx } = ...`.
pub struct Link<T> {
    pub tx: LinkTx<T>,
    pub rx: LinkRx<T>,
}

impl<T> Link<T> {
    /// A link inside one clock domain: `latency >= 1` cycles, `capacity >= 1` messages.
    pub fn new(name: &str, clock: Clock, latency: u32, capacity: u32) -> Result<Self, LinkError> {
        if latency == 0 {
            return Err(LinkError {
                link: name.into(),
                what: "latency must be at least 1 cycle (a link is a register stage)".into(),
            });
        }
        Self::build(
            name,
            capacity,
            (clock.id, Delay::Cycles(latency as u64)),
            (clock.id, Delay::Cycles(1)),
        )
    }

    /// A link from clock `from` to clock `to` through `stages` synchronizer flip-flops each way,
    /// holding at most `depth` messages: the storage and pointer synchronizers of a dual-clock
    /// FIFO. Used by [`crate::AsyncFifo`]; a component rarely needs it directly.
    pub fn crossing(
        name: &str,
        from: Clock,
        to: Clock,
        stages: u32,
        depth: u32,
    ) -> Result<Self, LinkError> {
        if stages == 0 {
            return Err(LinkError {
                link: name.into(),
                what: "a clock crossing needs at least 1 synchronizer stage".into(),
            });
        }
        let s = stages as u64;
        Self::build(
            name,
            depth,
            (from.id, Delay::Synchronized { to, stages: s }),
            (
                to.id,
                Delay::Synchronized {
                    to: from,
                    stages: s,
                },
            ),
        )
    }

    fn build(
        name: &str,
        capacity: u32,
        (tx_domain, forward): (DomainId, Delay),
        (rx_domain, backward): (DomainId, Delay),
    ) -> Result<Self, LinkError> {
        if capacity == 0 {
            return Err(LinkError {
                link: name.into(),
                what: "capacity must be at least 1 message".into(),
            });
        }
        let name: Arc<str> = Arc::from(name);
        let cap = capacity as usize;
        let (credit_tx, credit_rx) = bounded(cap);
        let shared = Arc::new(Shared {
            published: Published::default(),
            ring: Ring::new(cap),
            auto: SpinLock::new(AutoTake {
                items: VecDeque::new(),
                not_before: VecDeque::new(),
                until: u64::MAX,
                wake_after_last: None,
                deferred: VecDeque::new(),
            }),
        });
        Ok(Link {
            tx: LinkTx {
                name: name.clone(),
                domain: tx_domain,
                credits_back: credit_rx,
                returning: VecDeque::with_capacity(cap),
                credits: capacity,
                capacity,
                delay: forward,
                sent: 0,
                credits_absorbed: 0,
                bound: false,
                need: 1,
                satisfied: false,
                sends: shared.published.sends.latest(),
                shared: shared.clone(),
            },
            rx: LinkRx {
                name,
                domain: rx_domain,
                credits_to: credit_tx,
                delay: backward,
                received: 0,
                bound: false,
                shared,
            },
        })
    }
}

/// The sending end of a link.
pub struct LinkTx<T> {
    name: Arc<str>,
    domain: DomainId,
    credits_back: Receiver<u64>,
    /// Credits the receiver has returned that are not usable yet, by the cycle they become usable.
    returning: VecDeque<u64>,
    credits: u32,
    capacity: u32,
    delay: Delay,
    sent: u64,
    /// Credits taken out of the credit channel so far.
    credits_absorbed: u64,
    /// Whether the component owning this end is known (see [`crate::wake`]).
    bound: bool,
    /// The credits it needed at its last look (1 for single messages), and whether it had
    /// them then or after its sends since: published as [`SATISFIED`].
    need: u32,
    satisfied: bool,
    /// The `sends` ramp as it stands: this end is its only writer, so it records from this copy
    /// (see [`Ramp::record_from`]) and never reloads it.
    sends: Latest,
    shared: Arc<Shared<T>>,
}

impl<T> LinkTx<T> {
    /// Publishes whether the credits it holds cover what it needs ([`SATISFIED`]): a same-clock
    /// link only (a crossing link's credits wake the sender only through their pops).
    #[inline(always)]
    fn note_credits(&mut self, now: u64) {
        if !self.bound || !self.counted_credits() {
            return;
        }
        let s = self.credits >= self.need;
        if s != self.satisfied {
            self.flip_satisfied(s, now);
        }
    }

    /// [`LinkTx::note_credits`] when the answer changes.
    #[inline(never)]
    fn flip_satisfied(&mut self, s: bool, now: u64) {
        self.satisfied = s;
        let me = self.shared.published.tx_owner.load(Ordering::Relaxed) & !SATISFIED;
        self.shared
            .published
            .tx_owner
            .store(if s { me | SATISFIED } else { me }, Ordering::Relaxed);
        if !s {
            // Pops made while it was satisfied did not wake it: a step at the credit it now
            // waits for, if that pop is made already (at the next edge at the earliest, where
            // it takes one usable but not taken yet).
            self.post_credit(self.need, now);
        }
    }

    /// Whether credits come back as a count (same clock) rather than through the channel.
    #[inline]
    fn counted_credits(&self) -> bool {
        matches!(self.delay, Delay::Cycles(_))
    }

    /// Records the component being stepped as this end's owner, and asks for it to be stepped
    /// when each credit already on its way becomes usable.
    #[cold]
    fn bind(&mut self) {
        let me = wake::current();
        if me == wake::NOBODY {
            return;
        }
        self.bound = true;
        self.shared.published.tx_owner.store(me, Ordering::Release);
        if self.counted_credits() {
            let pops = &self.shared.published.pops;
            for k in self.credits_absorbed..pops.total() {
                wake::post(me, pops.cycle_of(k) + 1);
            }
            return;
        }
        while let Ok(at) = self.credits_back.try_recv() {
            self.returning.push_back(at);
            self.credits_absorbed += 1;
        }
        for &at in &self.returning {
            wake::post(me, at);
        }
    }

    /// Takes the credits usable at this edge; with credits still on their way (pops made at
    /// later edges) and fewer than `need` usable, asks for a step when the `need`-th is.
    #[inline(always)]
    fn absorb_credits(&mut self, cx: &StepCtx, need: u32) {
        debug_assert_eq!(
            cx.domain, self.domain,
            "link `{}` sent from the wrong clock",
            self.name
        );
        if !self.bound {
            self.bind();
        }
        self.need = need;
        self.shared
            .published
            .settle_deferred(&self.shared.auto, cx.cycle);
        let popped = self.shared.published.pops.total();
        if self.counted_credits() {
            if popped == self.credits_absorbed {
                self.note_credits(cx.cycle);
                return;
            }
            // Pops of this very cycle (the receiver was stepped first), or of later ones (it ran
            // ahead), are not usable yet.
            let usable = self.shared.published.pops.before(cx.cycle);
            if usable > self.credits_absorbed {
                self.credits += (usable - self.credits_absorbed) as u32;
                self.credits_absorbed = usable;
            }
            self.note_credits(cx.cycle);
            if popped > usable {
                self.post_credit(need, cx.cycle);
            }
            return;
        }
        if popped != self.credits_absorbed {
            while let Ok(at) = self.credits_back.try_recv() {
                self.returning.push_back(at);
                self.credits_absorbed += 1;
            }
        }
        while let Some(&at) = self.returning.front() {
            if at > cx.cycle {
                break;
            }
            self.returning.pop_front();
            self.credits += 1;
        }
    }

    /// Credits usable at this edge: how many messages may still be sent now.
    #[inline]
    pub fn credits(&mut self, cx: &StepCtx) -> u32 {
        self.absorb_credits(cx, 1);
        self.credits
    }

    /// Credits usable at this edge, as [`LinkTx::credits`], for a sender that needs `need` of
    /// them at once (a beat of several words): while it has fewer, the credits on their way
    /// wake it when the `need`-th becomes usable, not at each (its steps in between would
    /// only wait).
    #[inline]
    pub fn credits_for(&mut self, cx: &StepCtx, need: u32) -> u32 {
        self.absorb_credits(cx, need.max(1));
        self.credits
    }

    /// After a look that found fewer than `need` credits usable ([`LinkTx::credits_for`] at
    /// this edge): the first edge at which `need` can be, when the pops that return the ones
    /// it lacks are made already (a pop's edge never changes once made, and the pops made
    /// later come at or after it), so that until then every look would find too few; `None`
    /// when one of them is not made yet (it may come at any edge), or on a clock crossing.
    pub fn short_until(&self, need: u32) -> Option<u64> {
        if !self.counted_credits() || self.credits >= need {
            return None;
        }
        let k = self.pop_for(need);
        self.shared.published.pops.cycle_in_run(k).map(|c| c + 1)
    }

    /// With fewer than `need` credits held: the pop (its number among the receiver's pops)
    /// whose credit brings them to `need`.
    #[inline]
    fn pop_for(&self, need: u32) -> u64 {
        debug_assert!(self.credits < need);
        self.credits_absorbed + u64::from(need - self.credits) - 1
    }

    /// Whether [`LinkTx::can_send`] at this edge could say yes, looking without taking any
    /// credit in (no effect on the link): false only when no credit is held and none has
    /// become usable by this edge. For a sender that skips its steps while it waits for a
    /// credit; `true` where it cannot tell cheaply (a clock crossing, pops made for the
    /// receiver not yet in the ramp).
    #[inline]
    pub fn may_send(&self, cx: &StepCtx) -> bool {
        if self.credits > 0 || !self.counted_credits() {
            return true;
        }
        let p = &self.shared.published;
        p.auto_deferred.load(Ordering::Relaxed) != 0
            || p.pops.before(cx.cycle) > self.credits_absorbed
    }

    /// Whether a message may be sent at this edge (the receiver has room for it).
    #[inline]
    pub fn can_send(&mut self, cx: &StepCtx) -> bool {
        self.credits(cx) > 0
    }

    /// Sends `item` if a credit is available, or hands it back (the sender holds it and retries).
    #[inline]
    pub fn try_send(&mut self, cx: &StepCtx, item: T) -> Result<(), T> {
        self.absorb_credits(cx, 1);
        self.send_with_credit(cx, cx.cycle, item)
    }

    /// Sends `item` as if at the later edge `cycle` of the sender's clock (a same-clock link),
    /// spending one of the credits usable now (see [`LinkTx::credits`]): what a component that
    /// runs ahead of the scheduler through edges whose every input it knows sends at them. The
    /// receiver sees it exactly when a send at that edge would have shown it, and its FIFO
    /// level counts it from that edge on. Sends on a link come in non-decreasing cycles, and a
    /// run of them at consecutive cycles starts at or after the current edge.
    #[inline]
    pub fn try_send_at(&mut self, cx: &StepCtx, cycle: u64, item: T) -> Result<(), T> {
        debug_assert!(
            cycle >= cx.cycle && self.counted_credits(),
            "link `{}`: a send ahead must be at a later edge of a same-clock link",
            self.name
        );
        self.send_with_credit(cx, cycle, item)
    }

    /// Sends every one of `items` at this edge, in order, if as many credits are usable now, or
    /// none (and says so): a bus beat of several words into a FIFO of words (a GIN's), each
    /// word a message of its own as if sent alone, the receiver asked once to look at them.
    /// One link interaction.
    #[inline]
    pub fn try_send_all(&mut self, cx: &StepCtx, items: &[T]) -> bool
    where
        T: Copy,
    {
        self.absorb_credits(cx, items.len() as u32);
        if (self.credits as usize) < items.len() {
            return false;
        }
        if !items.is_empty() {
            self.send_held(cx, items);
        }
        true
    }

    /// Sends as many of `items` at this edge, in order, as the credits usable now allow (all,
    /// or as many as there are credits): what [`LinkTx::try_send`] of each in turn does, as
    /// one link interaction. Returns how many it sent.
    #[inline]
    pub fn try_send_many(&mut self, cx: &StepCtx, items: &[T]) -> usize
    where
        T: Copy,
    {
        self.absorb_credits(cx, 1);
        let k = items.len().min(self.credits as usize);
        if k > 0 {
            self.send_held(cx, &items[..k]);
        }
        k
    }

    /// Sends every one of `items` as if at the later edge `cycle` (a same-clock link), all at
    /// that edge, if as many credits are held now (see [`LinkTx::credits_held`]) and the
    /// link can show them as sent at that edge after what it has sent so far (the other end
    /// sees one run of events ahead: see [`LinkTx::can_send_ahead_at`]), or none (and says
    /// so): what [`LinkTx::try_send_all`] at that edge sends, for a component running ahead of
    /// the scheduler through edges whose every input it knows (see [`LinkTx::try_send_at`]).
    /// One link interaction.
    #[inline]
    pub fn try_send_all_at(&mut self, cx: &StepCtx, cycle: u64, items: &[T]) -> bool
    where
        T: Copy,
    {
        debug_assert!(
            cycle >= cx.cycle && self.counted_credits(),
            "link `{}`: a send ahead must be at a later edge of a same-clock link",
            self.name
        );
        if (self.credits as usize) < items.len()
            || !self.sends.admits_all(cycle, cx.cycle, items.len() as u64)
        {
            return false;
        }
        if !items.is_empty() {
            self.send_held_at(cx, cycle, items);
        }
        true
    }

    /// Sends `items` (not empty) at this edge with credits held now, each a message of its own
    /// as if sent alone, the receiver asked once to look at them.
    #[inline]
    fn send_held(&mut self, cx: &StepCtx, items: &[T])
    where
        T: Copy,
    {
        self.send_held_at(cx, cx.cycle, items);
    }

    /// [`LinkTx::send_held`] as if at edge `cycle` (this edge, or a later one of a same-clock
    /// link).
    #[inline]
    fn send_held_at(&mut self, cx: &StepCtx, cycle: u64, items: &[T])
    where
        T: Copy,
    {
        self.credits -= items.len() as u32;
        self.sent += items.len() as u64;
        self.note_credits(cx.cycle);
        let ready_at = match self.delay {
            Delay::Cycles(n) => cycle + n,
            d => d.visible_at(cx),
        };
        let n = items.len() as u64;
        let k = {
            let (k, auto) = self.auto_take_of(cx.cycle, ready_at, n, false);
            if let Some(mut a) = auto {
                match &items[..k as usize] {
                    // A one-word beat (the ifmap GIN's): no copy of a slice.
                    &[one] => a.items.push_back(one),
                    taken => a.items.extend(taken),
                }
            }
            k
        };
        for &item in &items[k as usize..] {
            self.put(Envelope::new(ready_at, item, true));
        }
        self.shared
            .published
            .sends
            .record_run_from(&mut self.sends, cycle, n, false, cx.cycle);
        self.tell_receiver(ready_at, n, k, false);
    }

    /// Of `n` messages about to be sent, the first visible at `first_ready` and the rest with
    /// it (or one a cycle after it, `one_a_cycle`): how many the receiver asked to be taken for
    /// it ([`LinkRx::auto_take`]), taken now ([`LinkTx::auto_pop`]), and where to put them.
    #[inline(always)]
    fn auto_take_of(
        &self,
        now: u64,
        first_ready: u64,
        n: u64,
        one_a_cycle: bool,
    ) -> (u64, Option<SpinGuard<'_, AutoTake<T>>>) {
        if self.shared.published.auto_left.load(Ordering::Relaxed) == 0 {
            return (0, None);
        }
        self.auto_pop(now, first_ready, n, one_a_cycle)
    }

    /// After a send of `n` messages, the first visible at `first_ready` and the rest with it
    /// (or one a cycle after it, `one_a_cycle`), of which the first `k` were taken for the
    /// receiver ([`LinkTx::auto_take_of`]): asks for a step of the receiver at the arrival of
    /// the first of the others. One link interaction.
    #[inline(always)]
    fn tell_receiver(&self, first_ready: u64, n: u64, k: u64, one_a_cycle: bool) {
        if k == n {
            wake::interact(wake::NOBODY, 0);
            return;
        }
        let first_left = if one_a_cycle {
            first_ready + k
        } else {
            first_ready
        };
        wake::interact(
            self.shared.published.rx_owner.load(Ordering::Acquire),
            first_left,
        );
    }

    /// Takes the first of `n` messages being sent on the receiver's behalf, as many as it
    /// asked for: each at the first edge at or after its arrival, after the pop before it, and
    /// at or after the edges the receiver named (the first, and the message's own), one an
    /// edge, exactly as the receiver would have taken it. A message that would be taken after
    /// the receiver's last edge ends the arrangement: it and those after it are the
    /// receiver's to take. The credits return as the pops would return them; the sender is
    /// asked to step at the first, as a run of pops asks, and the receiver (if it asked) at
    /// the last it asked for. Returns how many it took, and the queue to put them in.
    #[cold]
    #[inline(never)]
    fn auto_pop(
        &self,
        now: u64,
        first_ready: u64,
        n: u64,
        one_a_cycle: bool,
    ) -> (u64, Option<SpinGuard<'_, AutoTake<T>>>) {
        let p = &self.shared.published;
        let mut auto = self.shared.auto.lock();
        let left = p.auto_left.load(Ordering::Relaxed);
        let from = p.auto_from.load(Ordering::Relaxed);
        // The pops ramp as it stands, kept current as pops go in (only this end records
        // while it holds the lock).
        let mut l = p.pops.latest();
        let mut next = auto.last_pop(&l).map_or(from, |e| from.max(e + 1));
        let (mut k, mut first_pop) = (0, None);
        while k < n.min(left) {
            if k > 0 && auto.not_before.is_empty() && auto.deferred.is_empty() {
                // The pop before went into the ramp continuing (or starting) a run one a
                // cycle: each of the rest comes at the edge after the one before (none has
                // an edge of its own, and each has arrived by then), continuing that run, up
                // to the receiver's last edge. Recorded at once, as one by one.
                let m = (n.min(left) - k).min(auto.until.saturating_add(1).saturating_sub(next));
                if m > 0 && !l.at_one && l.end == Some(next - 1) {
                    p.pops.record_run_from(&mut l, next, m, true, now);
                    next += m;
                    k += m;
                    continue;
                }
            }
            let ready = if one_a_cycle {
                first_ready + k
            } else {
                first_ready
            };
            let at = next
                .max(ready)
                .max(auto.not_before.front().copied().unwrap_or(0));
            if at > auto.until {
                break;
            }
            auto.pop_at(p, &mut l, at, now);
            first_pop.get_or_insert(at);
            next = at + 1;
            k += 1;
        }
        let ended = k < n.min(left);
        if ended {
            auto.not_before.clear();
        }
        p.auto_left
            .store(if ended { 0 } else { left - k }, Ordering::Relaxed);
        p.auto_deferred
            .store(auto.deferred.len() as u64, Ordering::Relaxed);
        if let Some(first) = first_pop {
            wake::post(p.sender_to_wake(), first + 1);
        }
        if let Some(after) = auto.wake_after_last.filter(|_| k == left || ended) {
            // The last pop made for the receiver, which it asked to be stepped after.
            if let Some(last) = auto.last_pop(&l).filter(|_| k > 0 || ended) {
                wake::post(p.rx_owner.load(Ordering::Relaxed), last + after);
            }
        }
        (k, Some(auto))
    }

    /// Whether a component running ahead may send at the later edge `cycle` from a step at
    /// `cx` (see [`LinkTx::send_run_at`]): the send continues the run of sends it made last, or
    /// that run is over. A component that ran ahead through one run cannot start a second one
    /// in the same step: the other end looks only at the latest.
    #[inline]
    pub fn can_send_ahead_at(&self, cx: &StepCtx, cycle: u64) -> bool {
        matches!(self.delay, Delay::Cycles(_)) && self.sends.admits(cycle, cx.cycle)
    }

    /// Credits already usable now, without looking for new ones: what a component running ahead
    /// may spend on later edges.
    #[inline]
    pub fn credits_held(&self) -> u32 {
        self.credits
    }

    #[inline]
    fn send_with_credit(&mut self, cx: &StepCtx, cycle: u64, item: T) -> Result<(), T> {
        if self.credits == 0 {
            return Err(item);
        }
        self.credits -= 1;
        self.sent += 1;
        self.note_credits(cx.cycle);
        let ready_at = match self.delay {
            Delay::Cycles(n) => cycle + n,
            d => d.visible_at(cx),
        };
        let k = {
            let (k, auto) = self.auto_take_of(cx.cycle, ready_at, 1, false);
            match auto {
                Some(mut a) if k == 1 => a.items.push_back(item),
                auto => {
                    drop(auto);
                    self.put(Envelope::new(ready_at, item, true));
                }
            }
            k
        };
        self.shared
            .published
            .sends
            .record_from(&mut self.sends, cycle, cx.cycle);
        self.tell_receiver(ready_at, 1, k, false);
        Ok(())
    }

    #[inline]
    fn put(&self, env: Envelope<T>) {
        // The credit count bounds the messages in the ring by its capacity; a failure here is a
        // broken kernel invariant.
        // SAFETY: this end is the link's only producer, and `put` is reached only from its
        // methods that take `&mut self`: no other push is in progress.
        if unsafe { self.shared.ring.push(env) }.is_err() {
            panic!(
                "link `{}`: the ring refused a message although a credit was held",
                self.name
            );
        }
    }

    /// Sends `items` as a run at consecutive edges from the edge `first` on (one a cycle; a
    /// same-clock link, `first` at or after the current edge), spending one credit held now
    /// for each (see [`LinkTx::credits_held`]); returns whether it did (none is sent, and the
    /// items are dropped, if too few are held). The receiver sees each one exactly when a send
    /// at its edge would have shown it, and the FIFO level counts each from its edge on; the
    /// run is one link interaction and one wake-up (see [`Envelope`]).
    pub fn send_run_at<I>(&mut self, cx: &StepCtx, first: u64, items: I) -> bool
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let mut items = items.into_iter();
        let n = items.len();
        let Delay::Cycles(latency) = self.delay else {
            panic!("link `{}`: a run needs a same-clock link", self.name);
        };
        debug_assert!(first >= cx.cycle, "link `{}`: a run in the past", self.name);
        if n == 0 {
            return true;
        }
        if (self.credits as usize) < n {
            return false;
        }
        self.credits -= n as u32;
        self.sent += n as u64;
        self.note_credits(cx.cycle);
        let first_ready = first + latency;
        let k = {
            let (k, auto) = self.auto_take_of(cx.cycle, first_ready, n as u64, true);
            if let Some(mut a) = auto {
                a.items.extend(items.by_ref().take(k as usize));
            }
            k
        };
        // The others into the ring, one a cycle from the first of them: the receiver is asked
        // for a step at that one's arrival (here), and at each later one's once it is at the
        // head of its queue (see `LinkRx::post_head`).
        for (j, item) in items.enumerate() {
            self.put(Envelope::new(first_ready + k + j as u64, item, j == 0));
        }
        self.shared.published.sends.record_run_from(
            &mut self.sends,
            first,
            n as u64,
            true,
            cx.cycle,
        );
        self.tell_receiver(first_ready, n as u64, k, true);
        true
    }

    /// With credits returned that are not usable yet (pops the receiver made ahead): asks for a
    /// step when the credits usable reach `need` (the next one for a sender of single words),
    /// if pops already made get them there. A run of pops wakes the sender only at its first
    /// credit; this asks again at each look, so that the sender is stepped at every credit it
    /// waits for, as it would be if each pop had woken it, short of those at which it would
    /// still have too few to send (its steps there would only wait).
    #[inline(always)]
    fn post_credit(&self, need: u32, now: u64) {
        // A crossing's credits wake it through their pops; with what it needs, no step to ask
        // for.
        if self.counted_credits() && self.credits < need {
            self.post_short_credit(need, now);
        }
    }

    /// [`LinkTx::post_credit`] for a same-clock sender short of credits.
    #[inline(never)]
    fn post_short_credit(&self, need: u32, now: u64) {
        let pops = &self.shared.published.pops;
        let k = self.pop_for(need);
        let me = self.shared.published.tx_owner.load(Ordering::Relaxed);
        if pops.total() > k && me != wake::NOBODY {
            wake::post(me & !SATISFIED, (pops.cycle_of(k) + 1).max(now + 1));
        }
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The most messages the receiver can hold.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The receiving end of a link.
pub struct LinkRx<T> {
    name: Arc<str>,
    domain: DomainId,
    credits_to: Sender<u64>,
    delay: Delay,
    /// Messages taken so far (out of the ring, or taken for it: see [`LinkRx::auto_take`]).
    received: u64,
    /// Whether the component owning this end is known (see [`crate::wake`]).
    bound: bool,
    shared: Arc<Shared<T>>,
}

impl<T> LinkRx<T> {
    // The messages on their way are the ring's, in order: this end reads them in place (the
    // ring's one consumer, reached through `&self` for a look and `&mut self` for a change or a
    // pop, so that no reference to a message outlives its pop).

    /// The `k`-th message in the ring (the head is 0).
    #[inline(always)]
    fn nth(&self, k: usize) -> Option<&Envelope<T>> {
        // SAFETY: the only consumer; the reference borrows `self`, so it is gone by a pop.
        unsafe { self.shared.ring.get(k) }
    }

    #[inline(always)]
    fn nth_mut(&mut self, k: usize) -> Option<&mut Envelope<T>> {
        // SAFETY: the only consumer, through `&mut self`: no other reference to it is alive.
        unsafe { self.shared.ring.get_mut(k) }
    }

    /// Takes the message at the head of the ring.
    #[inline(always)]
    fn pop_head(&mut self) -> Option<Envelope<T>> {
        // SAFETY: the only consumer, through `&mut self`.
        unsafe { self.shared.ring.pop() }
    }

    /// Records the component being stepped as this end's owner, and asks for it to be stepped
    /// when each message already on its way arrives.
    #[cold]
    fn bind(&mut self) {
        let me = wake::current();
        if me == wake::NOBODY {
            return;
        }
        self.bound = true;
        self.shared.published.rx_owner.store(me, Ordering::Release);
        let mut k = 0;
        while let Some(env) = self.nth_mut(k) {
            wake::post(me, env.ready_at());
            env.set_posted();
            k += 1;
        }
    }

    /// After the receiver looked at the head in a step at edge `now`: if nobody asked for a
    /// step at its arrival (a message of a run after the first) and that is after `now`, asks
    /// for one, as its own send would have (the scheduler drops it if the receiver has run
    /// ahead past it).
    #[inline(always)]
    fn post_head(&mut self, now: u64) {
        // Almost always posted already (a message sent alone): one load and a branch.
        if self.nth(0).is_some_and(|env| !env.posted()) {
            self.post_head_slow(now);
        }
    }

    #[cold]
    #[inline(never)]
    fn post_head_slow(&mut self, now: u64) {
        let owner = self.shared.published.rx_owner.load(Ordering::Relaxed);
        if let Some(env) = self.nth_mut(0) {
            if env.ready_at() > now {
                env.set_posted();
                wake::post(owner, env.ready_at());
            }
        }
    }

    /// The message at the head of the link, if it has arrived by this edge.
    #[inline]
    pub fn peek(&mut self, cx: &StepCtx) -> Option<&T> {
        self.arrived_by(cx, cx.cycle).map(|env| &env.item)
    }

    /// The head of the link, if it has arrived by edge `cycle` (seen from a step at `cx`).
    #[inline(always)]
    fn arrived_by(&mut self, cx: &StepCtx, cycle: u64) -> Option<&Envelope<T>> {
        debug_assert_eq!(
            cx.domain, self.domain,
            "link `{}` read from the wrong clock",
            self.name
        );
        if !self.bound {
            self.bind();
        }
        // An empty link (most polls) is one look at the ring.
        let head = self.nth(0)?;
        if !head.posted() {
            self.post_head_slow(cx.cycle);
        }
        self.nth(0).filter(|env| env.ready_at() <= cycle)
    }

    /// Takes the message at the head of the link, if it has arrived, and returns its credit.
    #[inline]
    pub fn try_recv(&mut self, cx: &StepCtx) -> Option<T> {
        self.try_recv_at(cx, cx.cycle)
    }

    /// Takes the message at the head of the link as if at the later edge `cycle` (a same-clock
    /// link), if it has arrived by then: what a component running ahead through edges whose
    /// every input it knows takes at them. Its credit reaches the sender when a pop at that
    /// edge would have returned it. Pops come in non-decreasing cycles, and a run of them at
    /// consecutive cycles starts at or after the current edge. The message must already be on
    /// its way (a message not yet sent is not known to arrive by `cycle`).
    #[inline]
    pub fn try_recv_at(&mut self, cx: &StepCtx, cycle: u64) -> Option<T> {
        debug_assert!(
            cycle == cx.cycle || (cycle > cx.cycle && matches!(self.delay, Delay::Cycles(_))),
            "link `{}`: a pop ahead must be at a later edge of a same-clock link",
            self.name
        );
        self.arrived_by(cx, cycle)?;
        let env = self.pop_head()?;
        self.received += 1;
        self.post_head(cx.cycle);
        let usable = match self.delay {
            // One cycle later, counted (see `Published`).
            Delay::Cycles(_) => cycle + 1,
            d => {
                let usable = d.visible_at(cx);
                if self.credits_to.try_send(usable).is_err() {
                    // The sender lives as long as the simulation; the channel holds `capacity`.
                    panic!("link `{}`: credit channel refused a credit", self.name);
                }
                usable
            }
        };
        self.shared.published.pops.record(cycle, cx.cycle);
        wake::interact(self.shared.published.sender_to_wake(), usable);
        Some(env.item)
    }

    /// Takes the messages that have arrived by this edge, in order, into `out`, as many as fit:
    /// what [`LinkRx::try_recv`] in turn until one finds nothing (or `out` is full) takes, as
    /// one link interaction. Returns how many.
    #[inline]
    pub fn try_recv_many(&mut self, cx: &StepCtx, out: &mut [T]) -> usize {
        if out.is_empty() {
            return 0;
        }
        if !matches!(self.delay, Delay::Cycles(_)) {
            // Across clocks each pop returns its own credit: one at a time.
            let mut n = 0;
            while n < out.len() {
                match self.try_recv(cx) {
                    Some(v) => out[n] = v,
                    None => break,
                }
                n += 1;
            }
            return n;
        }
        if !self.bound {
            self.bind();
        }
        let now = cx.cycle;
        // SAFETY: this end is the ring's only consumer, through `&mut self`.
        let n = unsafe {
            self.shared
                .ring
                .count_while(out.len(), |_, e| e.ready_at() <= now)
        };
        if n > 0 {
            let mut k = 0;
            // SAFETY: as above.
            unsafe {
                self.shared.ring.pop_into(n, |e| {
                    out[k] = e.item;
                    k += 1;
                })
            };
            self.received += n as u64;
            self.shared
                .published
                .pops
                .record_run(now, n as u64, false, now);
            wake::interact(self.shared.published.sender_to_wake(), now + 1);
        }
        // The first one not taken: a step at its arrival, as a look at it asks.
        self.post_head(now);
        n
    }

    /// Whether a component running ahead may take a message at the later edge `cycle` from a
    /// step at `cx` (see [`LinkRx::try_recv_at`]), as [`LinkTx::can_send_ahead_at`] for sends.
    #[inline]
    pub fn can_pop_ahead_at(&self, cx: &StepCtx, cycle: u64) -> bool {
        matches!(self.delay, Delay::Cycles(_)) && self.shared.published.pops.admits(cycle, cx.cycle)
    }

    /// The cycle at which the message at the head of the link arrives, if one is on its way:
    /// a component running ahead may take it at that edge or later.
    #[inline]
    pub fn head_ready_at(&mut self) -> Option<u64> {
        self.nth(0).map(|e| e.ready_at())
    }

    /// The `k`-th message on its way (the head is 0), arrived or not, without taking it: what
    /// a component running ahead looks at before it takes a run (see [`LinkRx::arrived_run`]).
    #[inline]
    pub fn peek_nth(&self, k: usize) -> Option<&T> {
        self.nth(k).map(|env| &env.item)
    }

    /// Messages that have arrived by this edge and wait to be taken.
    pub fn ready(&mut self, cx: &StepCtx) -> usize {
        if !self.bound {
            self.bind();
        }
        let mut n = 0;
        while self.nth(n).is_some_and(|e| e.ready_at() <= cx.cycle) {
            n += 1;
        }
        // The first one not arrived yet: a step at its arrival, as its own send would ask.
        let owner = self.shared.published.rx_owner.load(Ordering::Relaxed);
        if let Some(env) = self.nth_mut(n) {
            if !env.posted() {
                env.set_posted();
                wake::post(owner, env.ready_at());
            }
        }
        n
    }

    /// How many of the messages on their way could be taken as a run from the edge `first` on,
    /// one an edge (each arrived by its edge), at most `max`: what [`LinkRx::take_run_at`]
    /// would take.
    pub fn arrived_run(&mut self, first: u64, max: usize) -> usize {
        // SAFETY: this end is the ring's only consumer.
        unsafe {
            self.shared
                .ring
                .count_while(max, |k, e| e.ready_at() <= first + k as u64)
        }
    }

    /// Takes up to `max` messages as a run at consecutive edges from `first` on (a same-clock
    /// link, `first` at or after the current edge), each at its edge if it has arrived by then,
    /// appending them to `out`; returns how many. Each credit reaches the sender when a pop at
    /// its edge would have returned it; the run is one link interaction and wakes the sender
    /// once, at its first credit (the sender asks for the rest as it needs them).
    pub fn take_run_at(&mut self, cx: &StepCtx, first: u64, max: usize, out: &mut Vec<T>) -> usize {
        debug_assert!(
            first >= cx.cycle && matches!(self.delay, Delay::Cycles(_)),
            "link `{}`: a run of pops must be at or after the current edge of a same-clock link",
            self.name
        );
        if !self.bound {
            self.bind();
        }
        // SAFETY: this end is the ring's only consumer, through `&mut self`.
        let n = unsafe {
            self.shared.ring.pop_while(
                max,
                |k, e| e.ready_at() <= first + k as u64,
                |e| out.push(e.item),
            )
        };
        self.took_run(cx, first, n)
    }

    /// [`LinkRx::take_run_at`] of the `n` messages that [`LinkRx::arrived_run`] from `first`
    /// just counted (the caller's count, not counted again): each has arrived by its edge.
    pub fn take_counted_run_at(
        &mut self,
        cx: &StepCtx,
        first: u64,
        n: usize,
        out: &mut Vec<T>,
    ) -> usize {
        debug_assert!(
            first >= cx.cycle && matches!(self.delay, Delay::Cycles(_)),
            "link `{}`: a run of pops must be at or after the current edge of a same-clock link",
            self.name
        );
        debug_assert_eq!(
            self.arrived_run(first, n),
            n,
            "link `{}`: a counted run of messages not all arrived",
            self.name
        );
        if !self.bound {
            self.bind();
        }
        out.reserve(n);
        // SAFETY: this end is the ring's only consumer, through `&mut self`.
        unsafe { self.shared.ring.pop_into(n, |e| out.push(e.item)) };
        self.took_run(cx, first, n)
    }

    /// After a run of `n` pops from edge `first`: the pops recorded, the next message posted,
    /// the sender told. Returns `n`.
    #[inline]
    fn took_run(&mut self, cx: &StepCtx, first: u64, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.received += n as u64;
        self.shared
            .published
            .pops
            .record_run(first, n as u64, true, cx.cycle);
        self.post_head(cx.cycle);
        wake::interact(self.shared.published.sender_to_wake(), first + 1);
        n
    }

    /// Asks for the next `count` messages to be taken on the receiver's behalf as they are
    /// sent: each at the first edge at or after its arrival, at or after `from` and after the
    /// pop before it, one an edge (a same-clock link). What a receiver that takes a message at
    /// every edge one has arrived would do, for one that knows it will do so for `count`
    /// messages (a PE loading a filter row): the sender returns the credits as those pops
    /// would, the receiver is not stepped at each arrival but asked for a step `wake_after`
    /// edges after the edge of the last pop (at it with 0), and it collects the messages with
    /// [`LinkRx::take_auto`] at any edge, as of that edge. Messages already on their way are
    /// the first taken, as those sent later are; returns whether the link is armed. A receiver
    /// stepped at every edge needs none of this.
    pub fn auto_take(&mut self, cx: &StepCtx, from: u64, count: u64, wake_after: u64) -> bool {
        self.arm_auto(cx, from, count, (u64::MAX, Some(wake_after)), &[])
    }

    /// As [`LinkRx::auto_take`], for a receiver that knows its behaviour only through edge
    /// `until` (a PE running ahead through a burst) and takes each message no earlier than an
    /// edge of its own (an ifmap spad entry's release): the next `not_before.len()` messages,
    /// message `k` at or after edge `not_before[k]`. The link stops early at one it would
    /// take after `until`: that message and those after it are the receiver's (each asks for
    /// a step at its arrival as usual), and the receiver would take each after `until`. No
    /// step is asked for otherwise; the receiver collects them ([`LinkRx::take_auto`]) at any
    /// edge, and ends the arrangement with [`LinkRx::auto_cancel`] once past `until`. Pops
    /// that jump ahead of the sender's edge while an earlier run of them is not over go into
    /// the ramp when that run is (see [`AutoTake::deferred`]).
    pub fn auto_take_within(
        &mut self,
        cx: &StepCtx,
        from: u64,
        until: u64,
        not_before: &[u64],
    ) -> bool {
        self.arm_auto(cx, from, not_before.len() as u64, (until, None), not_before)
    }

    /// As [`LinkRx::auto_take_within`] with no last edge: the next `not_before.len()` messages
    /// are taken for the receiver whenever they are sent (message `k` at or after edge
    /// `not_before[k]`), for a receiver whose takes those edges decide whatever it does
    /// meanwhile (a PE's ifmap write port storing into entries that stay free), and no step is
    /// asked for after the last until the receiver asks ([`LinkRx::auto_wake_after_last`]).
    pub fn auto_take_each(&mut self, cx: &StepCtx, from: u64, not_before: &[u64]) -> bool {
        self.arm_auto(
            cx,
            from,
            not_before.len() as u64,
            (u64::MAX, None),
            not_before,
        )
    }

    /// Asks for a step of the receiver `after` edges after the edge of the last message taken
    /// for it ([`LinkRx::auto_take_each`]): when that message is taken, or now if it has been
    /// (unless that step would be at or before this edge).
    pub fn auto_wake_after_last(&mut self, cx: &StepCtx, after: u64) {
        let p = &self.shared.published;
        let mut auto = self.shared.auto.lock();
        if p.auto_left.load(Ordering::Relaxed) != 0 {
            auto.wake_after_last = Some(after);
            return;
        }
        let last = auto.deferred.back().copied().or(p.pops.latest().end);
        drop(auto);
        if let Some(at) = last.map(|l| l + after).filter(|&at| at > cx.cycle) {
            wake::post(p.rx_owner.load(Ordering::Relaxed), at);
        }
    }

    /// Whether messages the receiver asked to be taken for it are still to be sent: until
    /// then, every message sent is taken for it.
    #[inline]
    pub fn auto_armed(&self) -> bool {
        self.shared.published.auto_left.load(Ordering::Relaxed) != 0
    }

    /// Ends an [`LinkRx::auto_take_within`]: messages sent from now on are the receiver's.
    pub fn auto_cancel(&mut self) {
        debug_assert_eq!(
            self.shared.published.auto_deferred.load(Ordering::Relaxed),
            0,
            "link `{}`: an arrangement ended with pops not yet in the ramp",
            self.name
        );
        if self.shared.published.auto_left.load(Ordering::Relaxed) != 0 {
            self.shared.auto.lock().not_before.clear();
            self.shared.published.auto_left.store(0, Ordering::Relaxed);
        }
    }

    fn arm_auto(
        &mut self,
        cx: &StepCtx,
        from: u64,
        count: u64,
        (until, wake_after_last): (u64, Option<u64>),
        not_before: &[u64],
    ) -> bool {
        debug_assert!(
            from > cx.cycle && matches!(self.delay, Delay::Cycles(_)),
            "link `{}`: pops taken for the receiver start after the current edge of a same-clock link",
            self.name
        );
        if !self.bound {
            self.bind();
        }
        let p = &self.shared.published;
        if count == 0 || p.auto_left.load(Ordering::Relaxed) != 0 {
            return false;
        }
        debug_assert_eq!(p.pops.total(), self.received);
        let shared = &self.shared;
        let mut auto = shared.auto.lock();
        auto.until = until;
        auto.wake_after_last = wake_after_last;
        auto.not_before.clear();
        auto.not_before.extend(not_before);
        // The messages already on their way are taken now, as `LinkTx::auto_pop` takes those
        // sent later: each at the first edge at or after its arrival, after the pop before it
        // and at or after its own edge, up to `until`.
        let mut left = count;
        let (mut first_pop, mut ended) = (None, false);
        let mut l = p.pops.latest();
        let mut next = auto.last_pop(&l).map_or(from, |e| from.max(e + 1));
        while left > 0 {
            // SAFETY: this end is the ring's only consumer, through `&mut self`; the message
            // looked at is gone from the ring only by the pop below.
            let Some(ready) = (unsafe { shared.ring.get(0) }).map(|env| env.ready_at()) else {
                break;
            };
            let at = next
                .max(ready)
                .max(auto.not_before.front().copied().unwrap_or(0));
            if at > until {
                ended = true;
                break;
            }
            // SAFETY: as above.
            let env =
                unsafe { shared.ring.pop() }.expect("the message at the head, just looked at");
            auto.pop_at(p, &mut l, at, cx.cycle);
            auto.items.push_back(env.item);
            first_pop.get_or_insert(at);
            next = at + 1;
            left -= 1;
        }
        if ended && first_pop.is_none() {
            // Nothing can be taken by `until`: no arrangement.
            auto.not_before.clear();
            return false;
        }
        if ended {
            auto.not_before.clear();
            left = 0;
        }
        p.auto_deferred
            .store(auto.deferred.len() as u64, Ordering::Relaxed);
        if let Some(first) = first_pop {
            wake::post(p.sender_to_wake(), first + 1);
            if let Some(after) = wake_after_last.filter(|_| left == 0) {
                let last = auto.last_pop(&l).unwrap_or(first);
                wake::post(p.rx_owner.load(Ordering::Relaxed), last + after);
            }
        }
        drop(auto);
        if first_pop.is_some() {
            self.post_head(cx.cycle);
        }
        let p = &self.shared.published;
        p.auto_from.store(from, Ordering::Relaxed);
        p.auto_left.store(left, Ordering::Relaxed);
        true
    }

    /// Whether messages asked for with [`LinkRx::auto_take`] are still to be sent, or have
    /// been taken and not yet collected.
    #[inline]
    pub fn auto_pending(&self) -> bool {
        let p = &self.shared.published;
        p.auto_left.load(Ordering::Relaxed) != 0
            || p.pops.total() > self.received
            || p.auto_deferred.load(Ordering::Relaxed) != 0
    }

    /// Collects the messages taken on the receiver's behalf ([`LinkRx::auto_take`]) at edges
    /// up to `upto` (all taken so far with `None`), appending them to `out`; returns how many
    /// and, when they are all the link's pops so far, the edge of the last. Each was
    /// taken at its own edge, one an edge: a receiver accounts each edge up to `upto` as one
    /// that took a message or one that found none.
    pub fn take_auto(
        &mut self,
        cx: &StepCtx,
        upto: Option<u64>,
        out: &mut Vec<T>,
    ) -> (usize, Option<u64>)
    where
        T: Copy,
    {
        let p = &self.shared.published;
        if p.auto_deferred.load(Ordering::Relaxed) == 0 && p.pops.total() == self.received {
            // Nothing taken for the receiver since it last collected: no lock.
            return (0, None);
        }
        p.settle_deferred(&self.shared.auto, cx.cycle);
        let mut auto = self.shared.auto.lock();
        let all = p.pops.total() + auto.deferred.len() as u64;
        let taken = match upto {
            Some(u) => {
                // Pops the ramp cannot hold yet are after the edge it is told at.
                debug_assert!(u <= cx.cycle && auto.deferred.front().is_none_or(|&x| x > u));
                p.pops.before(u + 1)
            }
            None => all,
        };
        let n = (taken - self.received) as usize;
        if n == 0 {
            return (0, None);
        }
        let last = if taken == all {
            auto.deferred.back().copied().or(p.pops.latest().end)
        } else {
            None
        };
        debug_assert!(
            auto.items.len() >= n,
            "link `{}`: pops without messages",
            self.name
        );
        // Copied out as the queue's (at most two) slices, then dropped from its front.
        let (a, b) = auto.items.as_slices();
        let k = n.min(a.len());
        out.extend_from_slice(&a[..k]);
        out.extend_from_slice(&b[..n - k]);
        auto.items.drain(..n);
        drop(auto);
        self.received += n as u64;
        (n, last)
    }

    /// Messages sent and not yet taken, whether they have arrived or not. Between edges (in a
    /// trace or a deadlock report) this does not depend on the step order; inside a step, use
    /// [`LinkRx::ready`].
    pub fn in_flight(&self) -> usize {
        let p = &self.shared.published;
        let taken_for_it =
            (p.pops.total() - self.received + p.auto_deferred.load(Ordering::Relaxed)) as usize;
        (p.sends.total() - self.received) as usize - taken_for_it
    }

    /// Messages sent at or before edge `cycle` and not taken at or before it: the FIFO's level
    /// after that edge, whichever end has run ahead of it (same-clock links; across clocks, as
    /// [`LinkRx::in_flight`]). For traces.
    pub fn in_flight_at(&self, cycle: u64) -> usize {
        match self.delay {
            Delay::Cycles(_) => {
                let p = &self.shared.published;
                let mut pops = p.pops.before(cycle + 1);
                if p.auto_deferred.load(Ordering::Relaxed) != 0 {
                    let auto = self.shared.auto.lock();
                    pops += auto.deferred.iter().take_while(|&&x| x <= cycle).count() as u64;
                }
                let sends = p.sends.before(cycle + 1);
                (sends - pops.min(sends)) as usize
            }
            _ => self.in_flight(),
        }
    }

    /// Messages taken so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The receiving end of a link that a component may be built without: a job or configuration
/// port that the chip wires and a test bench may leave unwired. An unwired port never receives
/// and holds nothing.
pub struct Port<T>(Option<LinkRx<T>>);

impl<T> Default for Port<T> {
    fn default() -> Self {
        Port(None)
    }
}

impl<T> Port<T> {
    pub fn wired(rx: LinkRx<T>) -> Self {
        Port(Some(rx))
    }

    pub fn is_wired(&self) -> bool {
        self.0.is_some()
    }

    /// The next message, if one is visible at this edge.
    #[inline]
    pub fn try_recv(&mut self, cx: &StepCtx) -> Option<T> {
        self.0.as_mut().and_then(|rx| rx.try_recv(cx))
    }

    /// Whether a message has arrived by this edge (looking at it, as [`LinkRx::peek`] does).
    #[inline]
    pub fn ready(&mut self, cx: &StepCtx) -> bool {
        self.0.as_mut().is_some_and(|rx| rx.peek(cx).is_some())
    }

    /// Whether a message is on its way (see [`LinkRx::in_flight`]).
    pub fn pending(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| rx.in_flight() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock::new(DomainId(0), "core", 100_000_000).unwrap()
    }

    fn cx(cycle: u64) -> StepCtx {
        StepCtx {
            domain: DomainId(0),
            cycle,
            time: clock().edge_time(cycle),
            ahead: false,
            parts: 0,
        }
    }

    /// Sender sends whenever it has a credit, receiver pops whatever has arrived, each cycle;
    /// returns the cycles at which messages were received.
    fn stream(latency: u32, capacity: u32, n: u64, receiver_first: bool) -> Vec<u64> {
        let Link { mut tx, mut rx } = Link::<u64>::new("l", clock(), latency, capacity).unwrap();
        let (mut next, mut got) = (0u64, Vec::new());
        for c in 0..10 * n + 20 {
            let step_tx = |tx: &mut LinkTx<u64>, next: &mut u64| {
                if *next < n && tx.try_send(&cx(c), *next).is_ok() {
                    *next += 1;
                }
            };
            if !receiver_first {
                step_tx(&mut tx, &mut next);
            }
            if let Some(v) = rx.try_recv(&cx(c)) {
                assert_eq!(v, got.len() as u64, "in order");
                got.push(c);
            }
            if receiver_first {
                step_tx(&mut tx, &mut next);
            }
        }
        assert_eq!(got.len() as u64, n);
        got
    }

    #[test]
    fn latency_is_exact_and_full_rate_needs_latency_plus_one_credits() {
        // Latency 3 with 4 credits: one message per cycle, the first at cycle 3.
        assert_eq!(stream(3, 4, 6, false), vec![3, 4, 5, 6, 7, 8]);
        // With fewer credits than the loop needs, the credit round trip (3 + 1 cycles) paces it.
        assert_eq!(stream(3, 2, 6, false), vec![3, 4, 7, 8, 11, 12]);
        assert_eq!(stream(1, 1, 4, false), vec![1, 3, 5, 7]);
    }

    #[test]
    fn results_do_not_depend_on_which_end_steps_first() {
        for (lat, cap) in [(1, 1), (1, 2), (2, 1), (3, 2), (3, 4), (5, 3)] {
            assert_eq!(
                stream(lat, cap, 12, false),
                stream(lat, cap, 12, true),
                "{lat} {cap}"
            );
        }
    }

    #[test]
    fn a_message_is_never_seen_at_the_edge_it_was_sent() {
        let Link { mut tx, mut rx } = Link::<u8>::new("l", clock(), 1, 4).unwrap();
        tx.try_send(&cx(5), 9).unwrap();
        assert_eq!(rx.peek(&cx(5)), None);
        assert_eq!(rx.in_flight(), 1);
        assert_eq!(rx.ready(&cx(6)), 1);
        assert_eq!(rx.try_recv(&cx(6)), Some(9));
        // The credit comes back one cycle after the pop.
        assert_eq!(tx.credits(&cx(6)), 3);
        assert_eq!(tx.credits(&cx(7)), 4);
    }

    /// `try_send_many` sends what `try_send` of each in turn would, seen the same by the
    /// receiver (arrivals, FIFO level) and the sender (credits), whatever the credits allow.
    #[test]
    fn sending_many_at_an_edge_is_sending_each_in_turn() {
        let Link {
            tx: mut one,
            rx: mut one_rx,
        } = Link::<u8>::new("a", clock(), 1, 5).unwrap();
        let Link {
            tx: mut many,
            rx: mut many_rx,
        } = Link::<u8>::new("b", clock(), 1, 5).unwrap();
        let mut next = 0u8;
        for edge in 0..12u64 {
            let want: Vec<u8> = (next..next + (edge % 4) as u8 + 1).collect();
            let k = want
                .iter()
                .take_while(|&&v| one.try_send(&cx(edge), v).is_ok())
                .count();
            assert_eq!(many.try_send_many(&cx(edge), &want), k, "edge {edge}");
            next += k as u8;
            assert_eq!(one.credits(&cx(edge)), many.credits(&cx(edge)));
            assert_eq!(one_rx.in_flight_at(edge), many_rx.in_flight_at(edge));
            if edge % 3 != 0 {
                // The receiver takes everything that has arrived.
                loop {
                    let got = one_rx.try_recv(&cx(edge));
                    assert_eq!(got, many_rx.try_recv(&cx(edge)), "edge {edge}");
                    if got.is_none() {
                        break;
                    }
                }
            }
        }
        assert!(next > 20, "the test sent little: {next}");
    }

    /// `try_recv_many` takes what `try_recv` in turn would, seen the same by the sender
    /// (credits) and the FIFO level, with messages sent alone and as runs.
    #[test]
    fn taking_many_at_an_edge_is_taking_each_in_turn() {
        let (mut a, mut b) = (
            Link::<u8>::new("a", clock(), 1, 6).unwrap(),
            Link::<u8>::new("b", clock(), 1, 6).unwrap(),
        );
        let mut next = 0u8;
        let mut taken = 0;
        for edge in 0..16u64 {
            if edge % 5 == 1 {
                // A run of three, one a cycle from the next edge.
                let run: Vec<u8> = (next..next + 3).collect();
                if a.tx.credits(&cx(edge)) >= 3 && b.tx.credits(&cx(edge)) >= 3 {
                    assert!(a.tx.send_run_at(&cx(edge), edge, run.clone()));
                    assert!(b.tx.send_run_at(&cx(edge), edge, run));
                    next += 3;
                }
            } else if edge % 5 == 0 || edge % 5 == 4 {
                // (Not while the run's later edges are still to come.)
                for _ in 0..2 {
                    if a.tx.try_send(&cx(edge), next).is_ok() {
                        b.tx.try_send(&cx(edge), next).unwrap();
                        next += 1;
                    }
                }
            }
            if edge % 2 == 0 {
                let mut one = vec![];
                while one.len() < 4 {
                    match a.rx.try_recv(&cx(edge)) {
                        Some(v) => one.push(v),
                        None => break,
                    }
                }
                let mut many = [0u8; 4];
                let n = b.rx.try_recv_many(&cx(edge), &mut many);
                assert_eq!(&many[..n], &one[..], "edge {edge}");
                taken += n;
            }
            assert_eq!(
                a.tx.credits(&cx(edge)),
                b.tx.credits(&cx(edge)),
                "edge {edge}"
            );
            assert_eq!(
                a.rx.in_flight_at(edge),
                b.rx.in_flight_at(edge),
                "edge {edge}"
            );
        }
        assert!(taken > 12, "the test took little: {taken}");
    }

    /// `may_send` says no exactly while `can_send` would (no credit held, none usable yet),
    /// and takes no credit in.
    #[test]
    fn may_send_looks_at_the_credits_as_can_send_would() {
        let Link { mut tx, mut rx } = Link::<u8>::new("l", clock(), 1, 1).unwrap();
        assert!(tx.may_send(&cx(0)));
        tx.try_send(&cx(0), 7).unwrap();
        assert!(!tx.may_send(&cx(0)) && !tx.may_send(&cx(1)));
        assert_eq!(rx.try_recv(&cx(1)), Some(7));
        // The pop at edge 1 gives a credit usable from edge 2.
        assert!(!tx.may_send(&cx(1)));
        assert!(
            tx.may_send(&cx(2)) && tx.may_send(&cx(2)),
            "a look takes nothing in"
        );
        assert_eq!(tx.credits(&cx(1)), 0);
        assert!(tx.can_send(&cx(2)));
    }

    #[test]
    fn an_end_running_ahead_is_seen_as_if_stepped_at_each_edge() {
        // Four messages sent at cycle 0; taken one an edge from cycle 1, either at each edge or
        // all at edge 1 (ahead): the sender's credits and the FIFO level are the same at every
        // edge.
        let run = |ahead: bool| {
            let Link { mut tx, mut rx } = Link::<u8>::new("l", clock(), 1, 4).unwrap();
            for v in 0..4 {
                tx.try_send(&cx(0), v).unwrap();
            }
            let mut seen = Vec::new();
            for c in 1..7 {
                if ahead && c == 1 {
                    for at in 1..5 {
                        assert_eq!(rx.try_recv_at(&cx(1), at), Some(at as u8 - 1));
                    }
                    assert_eq!(rx.try_recv_at(&cx(1), 5), None, "nothing more on its way");
                } else if !ahead {
                    rx.try_recv(&cx(c));
                }
                seen.push((tx.credits(&cx(c)), rx.in_flight_at(c)));
            }
            seen
        };
        let stepped = run(false);
        assert_eq!(
            stepped,
            vec![(0, 3), (1, 2), (2, 1), (3, 0), (4, 0), (4, 0)],
            "credits usable a cycle after each pop"
        );
        assert_eq!(run(true), stepped);
        // A sender running ahead: sends at edges 0, 1, 2 made at edge 0 arrive a cycle after
        // each, and count in the FIFO from their edge on.
        let Link { mut tx, mut rx } = Link::<u8>::new("l", clock(), 1, 4).unwrap();
        tx.credits(&cx(0));
        for at in 0..3 {
            tx.try_send_at(&cx(0), at, at as u8).unwrap();
        }
        assert_eq!(tx.credits_held(), 1);
        assert_eq!(
            (0..4).map(|c| rx.in_flight_at(c)).collect::<Vec<_>>(),
            vec![1, 2, 3, 3]
        );
        assert_eq!(rx.ready(&cx(1)), 1);
        assert_eq!(rx.ready(&cx(3)), 3);
        assert_eq!(rx.head_ready_at(), Some(1));
        // Two pops at one edge after a ramp ending there: the count before that edge stays.
        assert_eq!(rx.try_recv(&cx(3)), Some(0));
        assert_eq!(rx.try_recv(&cx(3)), Some(1));
        assert_eq!(tx.credits(&cx(3)), 1);
        assert_eq!(tx.credits(&cx(4)), 3);
    }

    /// A beat sent ahead (`try_send_all_at` at edge `c` for edge `c + 1`) is seen by the
    /// receiver, and counted in its FIFO, exactly as `try_send_all` at `c + 1` would be, and the
    /// credits come back at the same edges; it refuses a beat the credits held do not cover.
    #[test]
    fn a_beat_sent_ahead_is_seen_as_if_sent_at_its_edge() {
        let run = |ahead: bool| {
            let Link { mut tx, mut rx } = Link::<u8>::new("l", clock(), 1, 6).unwrap();
            let mut seen = Vec::new();
            for c in 0..16u64 {
                // A beat of three at edges 1, 5, 9, 13 (from edge 0, 4, 8, 12 when ahead).
                let beat = [c as u8, c as u8 + 1, c as u8 + 2];
                if ahead && c % 4 == 0 {
                    let at = c + 1;
                    assert!(tx.credits(&cx(c)) >= 3);
                    assert!(tx.can_send_ahead_at(&cx(c), at));
                    let beat = [at as u8, at as u8 + 1, at as u8 + 2];
                    assert!(tx.try_send_all_at(&cx(c), at, &beat));
                } else if !ahead && c % 4 == 1 {
                    assert!(tx.try_send_all(&cx(c), &beat));
                }
                // The receiver takes one a cycle. (The sender's own count at an edge it sent
                // ahead from holds the credits it spent for the next.)
                let got = rx.try_recv(&cx(c));
                let credits = (c % 4 != 0).then(|| tx.credits(&cx(c)));
                seen.push((got, rx.in_flight_at(c), credits));
            }
            seen
        };
        let stepped = run(false);
        assert_eq!(
            stepped[2],
            (Some(1), 2, Some(3)),
            "seen from the edge after its send"
        );
        assert_eq!(run(true), stepped);
        let Link { mut tx, .. } = Link::<u8>::new("l", clock(), 1, 2).unwrap();
        tx.credits(&cx(0));
        assert!(
            !tx.try_send_all_at(&cx(0), 1, &[1, 2, 3]),
            "two credits, three words"
        );
        assert_eq!(tx.credits_held(), 2, "nothing sent");
        // After a send at this edge, a beat of two at the next would follow a run one a cycle
        // with two events at its last, later cycle, which the other end cannot be shown: it is
        // refused (the component sends it at that edge); one word is not, nor the beat from
        // a later edge, once the run before is over.
        let Link { mut tx, .. } = Link::<u8>::new("l", clock(), 1, 8).unwrap();
        tx.try_send(&cx(0), 0).unwrap();
        assert!(!tx.try_send_all_at(&cx(0), 1, &[1, 2]));
        assert!(tx.try_send_all_at(&cx(0), 1, &[1]));
        assert!(
            !tx.try_send_all_at(&cx(0), 2, &[2, 3]),
            "that run ends at edge 1"
        );
        assert!(tx.try_send_all_at(&cx(2), 3, &[3, 4]), "a run of its own");
    }

    #[test]
    fn an_end_running_ahead_makes_one_run_of_events_at_a_time() {
        let Link { mut tx, mut rx } = Link::<u8>::new("l", clock(), 1, 8).unwrap();
        tx.credits(&cx(0));
        assert!(tx.can_send_ahead_at(&cx(0), 3), "nothing sent yet");
        for at in 2..5 {
            tx.try_send_at(&cx(0), at, at as u8).unwrap();
        }
        // The run of sends ends at edge 4: it may go on at 5; a second run may not start
        // until it is over (the receiver is told only of the latest).
        assert!(tx.can_send_ahead_at(&cx(0), 5));
        assert!(!tx.can_send_ahead_at(&cx(0), 7));
        assert!(!tx.can_send_ahead_at(&cx(4), 7));
        assert!(tx.can_send_ahead_at(&cx(5), 7));
        // Pops: a run ahead from edge 3, then the same rule.
        assert!(rx.can_pop_ahead_at(&cx(3), 3));
        assert_eq!(rx.try_recv_at(&cx(3), 3), Some(2));
        assert_eq!(rx.try_recv_at(&cx(3), 4), Some(3));
        assert!(rx.can_pop_ahead_at(&cx(3), 5));
        assert!(!rx.can_pop_ahead_at(&cx(3), 6));
        assert!(rx.can_pop_ahead_at(&cx(5), 6));
        assert_eq!(rx.try_recv_at(&cx(5), 6), Some(4));
        // Two events at the current edge are one run; a later one a cycle on continues it.
        assert!(tx.can_send_ahead_at(&cx(7), 7));
        tx.try_send_at(&cx(7), 7, 7).unwrap();
        assert!(tx.can_send_ahead_at(&cx(7), 7) && tx.can_send_ahead_at(&cx(7), 8));
    }
    #[test]
    fn messages_taken_for_the_receiver_are_taken_as_it_would_take_them() {
        // A sender of beats of up to three words (whenever it holds the credits, but not at
        // edges 4-6 or 13), a receiver that takes one at every edge one has arrived. Stepped
        // at every edge, or armed at edge 0 for the first 20 and not stepped until the link
        // asks (then it takes the rest itself): the same credits, FIFO levels and messages at
        // every edge, and the receiver is asked for a step at the edge of the 20th.
        let run = |auto: bool| {
            let Link { mut tx, mut rx } = Link::<u16>::new("l", clock(), 1, 5).unwrap();
            let who = wake::owner(u32::MAX, 0);
            let (mut next, mut got, mut seen) = (0u16, Vec::new(), Vec::new());
            let mut asked = None;
            {
                let _me = wake::Stepping::new(who);
                assert_eq!(rx.try_recv(&cx(0)), None);
                if auto {
                    assert!(rx.auto_take(&cx(0), 1, 20, 0));
                    assert!(rx.auto_pending());
                }
            }
            for c in 0..40u64 {
                let beat: Vec<u16> = (next..(next + 3).min(26)).collect();
                let quiet = (4..=6).contains(&c) || c == 13;
                if !beat.is_empty() && !quiet && tx.try_send_all(&cx(c), &beat) {
                    next += beat.len() as u16;
                }
                // The posts for the receiver made by the sender's step.
                wake::collect(u32::MAX, |_, _, at| asked = asked.or(Some(at)));
                let stepped = !auto || asked.is_some_and(|a| c >= a);
                if stepped {
                    let _me = wake::Stepping::new(who);
                    if auto && rx.auto_pending() {
                        let mut out = Vec::new();
                        let (n, last) = rx.take_auto(&cx(c), None, &mut out);
                        assert_eq!((n, last), (20, Some(c)), "all 20, the last at this edge");
                        got.extend(out.into_iter().map(|v| (v, c)));
                    } else if let Some(v) = rx.try_recv(&cx(c)) {
                        got.push((v, c));
                    }
                }
                seen.push((tx.credits(&cx(c)), rx.in_flight_at(c)));
            }
            (
                got.into_iter().map(|(v, _)| v).collect::<Vec<_>>(),
                seen,
                asked,
            )
        };
        let (stepped, seen, _) = run(false);
        let (auto, auto_seen, asked) = run(true);
        assert_eq!(stepped, (0..26).collect::<Vec<u16>>());
        assert_eq!(auto, stepped);
        assert_eq!(auto_seen, seen);
        assert!(asked.is_some());

        // Collected part way: the messages taken by an edge, and none twice.
        let Link { mut tx, mut rx } = Link::<u16>::new("l", clock(), 1, 8).unwrap();
        assert!(rx.auto_take(&cx(0), 3, 6, 0));
        assert!(!rx.auto_take(&cx(0), 3, 6, 0), "armed once");
        assert!(tx.try_send_all(&cx(0), &[1, 2, 3, 4]));
        let mut out = Vec::new();
        assert_eq!(
            rx.take_auto(&cx(2), Some(2), &mut out),
            (0, None),
            "from edge 3 on"
        );
        assert_eq!(rx.take_auto(&cx(4), Some(4), &mut out), (2, None));
        assert_eq!(out, vec![1, 2]);
        // A run of sends beyond the count: the last two are the receiver's to take.
        tx.credits(&cx(1));
        assert!(tx.send_run_at(&cx(1), 1, vec![5, 6, 7, 8]));
        assert_eq!(rx.take_auto(&cx(4), None, &mut out), (4, Some(8)));
        assert_eq!(out, vec![1, 2, 3, 4, 5, 6]);
        assert!(!rx.auto_pending());
        assert_eq!(rx.in_flight(), 2);
        assert_eq!(rx.try_recv_at(&cx(9), 9), Some(7));
        assert_eq!(
            tx.credits(&cx(9)),
            6,
            "the pops at 3..=8 usable a cycle later"
        );
        assert_eq!(tx.credits(&cx(10)), 7, "and the receiver's own at 9");
    }

    /// Runs `run` with the receiver stepped (`false`) and with the link taking for it
    /// (`true`): messages 0-8 in order both ways, and the same credits and FIFO levels at
    /// every edge.
    fn same_as_stepped(run: impl Fn(bool) -> (Vec<u16>, Vec<(u32, usize)>)) {
        let (stepped, seen) = run(false);
        assert_eq!(stepped, (0..9).collect::<Vec<u16>>());
        let (auto, auto_seen) = run(true);
        assert_eq!(auto, stepped);
        assert_eq!(auto_seen, seen);
    }

    /// The receiver of the two tests below at edge `c`: collects what the link took for it
    /// (`expect`: how many, and the edge of the last) and ends the arrangement, then takes
    /// message `k` if it has arrived and `c` is at or after `nb[k]`.
    fn receive_at(
        rx: &mut LinkRx<u16>,
        c: u64,
        nb: &[u64],
        expect: (usize, Option<u64>),
        got: &mut Vec<u16>,
    ) {
        if rx.auto_pending() {
            let mut out = Vec::new();
            assert_eq!(rx.take_auto(&cx(c), None, &mut out), expect);
            rx.auto_cancel();
            got.extend(out);
        }
        if c >= nb.get(got.len()).copied().unwrap_or(0) {
            if let Some(v) = rx.try_recv(&cx(c)) {
                got.push(v);
            }
        }
    }

    #[test]
    fn messages_taken_for_a_receiver_through_an_edge_keep_their_own_earliest_edges() {
        // A receiver that takes message k at the first edge it has arrived by, after the one
        // before, and at or after `nb[k]`; one a cycle sent while credits last. Stepped at
        // every edge, or asking the link to take the first six for it through edge 25 and
        // stepped only from 26 on: the same pops, credits and FIFO levels at every edge. The
        // earliest edges make pops jump ahead of the sender's edge (runs the ramp takes
        // later), and message 5 (earliest 30) is the receiver's own.
        let nb = [3u64, 3, 10, 11, 20, 30];
        let run = |auto: bool| {
            let Link { mut tx, mut rx } = Link::<u16>::new("l", clock(), 1, 3).unwrap();
            let (mut next, mut got, mut seen) = (0u16, Vec::new(), Vec::new());
            if auto {
                assert!(rx.auto_take_within(&cx(0), 1, 25, &nb));
            }
            for c in 0..60u64 {
                if next < 9 && tx.try_send(&cx(c), next).is_ok() {
                    next += 1;
                }
                if auto && c == 2 {
                    let deferred = tx.shared.published.auto_deferred.load(Ordering::Relaxed);
                    assert_eq!(
                        deferred, 1,
                        "the pop at 10, while the run at 3-4 is not over"
                    );
                }
                if !auto || c > 25 {
                    receive_at(&mut rx, c, &nb, (5, Some(20)), &mut got);
                }
                seen.push((tx.credits(&cx(c)), rx.in_flight_at(c)));
            }
            (got, seen)
        };
        same_as_stepped(run);
    }

    #[test]
    fn messages_on_their_way_when_the_link_is_armed_are_taken_as_the_receiver_would() {
        // A receiver that takes nothing until edge 6, then message k at the first edge it has
        // arrived by, after the one before, and at or after `nb[k]`; one a cycle sent while
        // the three credits last, so three wait in the FIFO when the link is armed at edge 5
        // (through edge 30). Stepped from edge 6, or from 31 on: the same pops, credits and
        // FIFO levels at every edge; message 5 (earliest 40) is the receiver's own.
        let nb = [8u64, 8, 9, 15, 16, 40];
        let run = |auto: bool| {
            let Link { mut tx, mut rx } = Link::<u16>::new("l", clock(), 1, 3).unwrap();
            let (mut next, mut got, mut seen) = (0u16, Vec::new(), Vec::new());
            for c in 0..60u64 {
                if next < 9 && tx.try_send(&cx(c), next).is_ok() {
                    next += 1;
                }
                if auto && c == 5 {
                    assert_eq!(rx.in_flight(), 3, "three on their way when armed");
                    assert!(rx.auto_take_within(&cx(5), 6, 30, &nb));
                    assert_eq!(rx.in_flight(), 0, "taken for the receiver");
                }
                if c >= 6 && (!auto || c > 30) {
                    receive_at(&mut rx, c, &nb, (5, Some(16)), &mut got);
                }
                seen.push((tx.credits(&cx(c)), rx.in_flight_at(c)));
            }
            (got, seen)
        };
        same_as_stepped(run);
    }

    #[test]
    fn bad_links_are_errors_not_panics() {
        let e = Link::<u8>::new("top.x", clock(), 0, 1).err().unwrap();
        assert!(e.to_string().contains("top.x") && e.to_string().contains("latency"));
        assert!(Link::<u8>::new("top.x", clock(), 1, 0).is_err());
        assert!(Link::<u8>::crossing("top.x", clock(), clock(), 0, 4).is_err());
    }

    #[test]
    fn a_crossing_waits_for_the_synchronizer_stages() {
        let core = Clock::new(DomainId(0), "core", 200_000_000).unwrap();
        let link = Clock::new(DomainId(1), "link", 60_000_000).unwrap();
        let Link { mut tx, mut rx } = Link::<u8>::crossing("cdc", core, link, 2, 2).unwrap();
        // Written at core edge 2 (15 ns): the link edges after it are 16.67 ns (cycle 0) and
        // 33.33 ns (cycle 1); two synchronizer stages make it readable at link cycle 1.
        let wcx = StepCtx {
            domain: core.id,
            cycle: 2,
            time: core.edge_time(2),
            ahead: false,
            parts: 0,
        };
        tx.try_send(&wcx, 1).unwrap();
        let rcx = |c: u64| StepCtx {
            domain: link.id,
            cycle: c,
            time: link.edge_time(c),
            ahead: false,
            parts: 0,
        };
        assert_eq!(rx.peek(&rcx(0)), None);
        assert_eq!(rx.try_recv(&rcx(1)), Some(1));
        // Read at 33.33 ns: core edges after it end cycles 6 (35 ns) and 7 (40 ns): the freed
        // slot is writable at core cycle 7.
        let c = |n: u64| StepCtx {
            domain: core.id,
            cycle: n,
            time: core.edge_time(n),
            ahead: false,
            parts: 0,
        };
        assert_eq!(tx.credits(&c(6)), 1);
        assert_eq!(tx.credits(&c(7)), 2);
    }

    #[test]
    fn an_unwired_port_never_receives_and_a_wired_one_is_a_link() {
        let mut unwired: Port<u8> = Port::default();
        assert!(!unwired.is_wired() && !unwired.pending());
        assert_eq!(unwired.try_recv(&cx(5)), None);
        let mut l = Link::<u8>::new("t", clock(), 1, 2).unwrap();
        l.tx.try_send(&cx(0), 7).unwrap();
        let mut port = Port::wired(l.rx);
        assert!(port.is_wired() && port.pending());
        assert_eq!(
            port.try_recv(&cx(0)),
            None,
            "latency 1: not before the next edge"
        );
        assert_eq!(port.try_recv(&cx(1)), Some(7));
        assert!(!port.pending());
    }

    fn ramp_state(r: &Ramp) -> (u64, u64, u64) {
        (
            r.start.load(Ordering::Relaxed),
            r.base.load(Ordering::Relaxed),
            r.total.load(Ordering::Relaxed),
        )
    }

    /// One event at a time, as `record_run` stands for: `None` (nothing recorded) unless the
    /// ramp admits every one of them.
    fn record_one_by_one(r: &Ramp, (first, n, one_a_cycle, now): (u64, u64, bool, u64)) -> bool {
        for k in 0..n {
            let c = first + if one_a_cycle { k } else { 0 };
            if !r.admits(c, now) {
                return false;
            }
            r.record(c, now);
        }
        true
    }

    proptest::proptest! {
        /// A run of events recorded at once leaves the ramp as recording them one by one does,
        /// from any history of runs the ramp admits (the edge moving on, events at it and
        /// ahead of it, several at a cycle or one a cycle); recorded from a copy of the ramp's
        /// state held through the whole history (as a sender records its sends), the copy
        /// stays the ramp's state.
        #[test]
        fn a_run_recorded_at_once_leaves_the_ramp_as_one_by_one(
            ops in proptest::collection::vec((0u64..3, 0u64..4, 1u64..7, proptest::bool::ANY), 1..24)
        ) {
            let (whole, single, held) = (Ramp::default(), Ramp::default(), Ramp::default());
            let mut copy = held.latest();
            let mut history: Vec<(u64, u64, bool, u64)> = Vec::new();
            let mut now = 0;
            for (advance, ahead, n, one_a_cycle) in ops {
                now += advance;
                let op = (now + ahead, n, one_a_cycle, now);
                // Only runs the one-by-one recording admits: replayed on a probe first.
                let probe = Ramp::default();
                for &h in &history {
                    assert!(record_one_by_one(&probe, h));
                }
                if !record_one_by_one(&probe, op) {
                    continue;
                }
                history.push(op);
                assert!(record_one_by_one(&single, op));
                whole.record_run(op.0, op.1, op.2, op.3);
                held.record_run_from(&mut copy, op.0, op.1, op.2, op.3);
                proptest::prop_assert_eq!(ramp_state(&whole), ramp_state(&single), "after {:?}", op);
                proptest::prop_assert_eq!(ramp_state(&held), ramp_state(&single), "after {:?}", op);
                proptest::prop_assert_eq!(copy, held.latest(), "after {:?}", op);
            }
        }
    }
}
