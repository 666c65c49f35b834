//! `Link<T>`: a point-to-point wire bundle with a latency, a capacity and credit backpressure,
//! built on a crossbeam channel.
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
//! depends only on what was committed before it. The crossbeam channel carries the messages
//! between threads if components are ever stepped in parallel; the receiver moves them into a
//! small local queue to look at the head, since a channel cannot be peeked.
//!
//! # Capacity
//! The sender starts with `capacity` credits; a send spends one, a pop at the receiver gives one
//! back a cycle later. `capacity` therefore bounds the messages in flight plus those waiting at
//! the receiver: the receive FIFO of the hardware. A link sustains one message per cycle only
//! when `capacity >= latency + 1` (the credit loop); fewer credits throttle it, which is exactly
//! the backpressure a shallow FIFO causes on a chip.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::clock::Clock;
use crate::scheduler::StepCtx;
use crate::DomainId;

struct Envelope<T> {
    ready_at: u64,
    item: T,
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
        let (data_tx, data_rx) = bounded(cap);
        let (credit_tx, credit_rx) = bounded(cap);
        Ok(Link {
            tx: LinkTx {
                name: name.clone(),
                domain: tx_domain,
                data: data_tx,
                credits_back: credit_rx,
                returning: VecDeque::with_capacity(cap),
                credits: capacity,
                capacity,
                delay: forward,
                sent: 0,
            },
            rx: LinkRx {
                name,
                domain: rx_domain,
                data: data_rx,
                queue: VecDeque::with_capacity(cap),
                credits_to: credit_tx,
                delay: backward,
                received: 0,
            },
        })
    }
}

/// The sending end of a link.
pub struct LinkTx<T> {
    name: Arc<str>,
    domain: DomainId,
    data: Sender<Envelope<T>>,
    credits_back: Receiver<u64>,
    /// Credits the receiver has returned that are not usable yet, by the cycle they become usable.
    returning: VecDeque<u64>,
    credits: u32,
    capacity: u32,
    delay: Delay,
    sent: u64,
}

impl<T> LinkTx<T> {
    #[inline]
    fn absorb_credits(&mut self, cx: &StepCtx) {
        debug_assert_eq!(
            cx.domain, self.domain,
            "link `{}` sent from the wrong clock",
            self.name
        );
        while let Ok(at) = self.credits_back.try_recv() {
            self.returning.push_back(at);
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
        self.absorb_credits(cx);
        self.credits
    }

    /// Whether a message may be sent at this edge (the receiver has room for it).
    #[inline]
    pub fn can_send(&mut self, cx: &StepCtx) -> bool {
        self.credits(cx) > 0
    }

    /// Sends `item` if a credit is available, or hands it back (the sender holds it and retries).
    #[inline]
    pub fn try_send(&mut self, cx: &StepCtx, item: T) -> Result<(), T> {
        self.absorb_credits(cx);
        if self.credits == 0 {
            return Err(item);
        }
        self.credits -= 1;
        self.sent += 1;
        let env = Envelope {
            ready_at: self.delay.visible_at(cx),
            item,
        };
        // The credit count bounds the messages in the channel by its capacity, and the receiver
        // lives as long as the simulation; a failure here is a broken kernel invariant.
        if self.data.try_send(env).is_err() {
            panic!(
                "link `{}`: channel refused a message although a credit was held",
                self.name
            );
        }
        Ok(())
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
    data: Receiver<Envelope<T>>,
    queue: VecDeque<Envelope<T>>,
    credits_to: Sender<u64>,
    delay: Delay,
    received: u64,
}

impl<T> LinkRx<T> {
    #[inline]
    fn drain(&mut self) {
        while let Ok(env) = self.data.try_recv() {
            self.queue.push_back(env);
        }
    }

    /// The message at the head of the link, if it has arrived by this edge.
    #[inline]
    pub fn peek(&mut self, cx: &StepCtx) -> Option<&T> {
        debug_assert_eq!(
            cx.domain, self.domain,
            "link `{}` read from the wrong clock",
            self.name
        );
        if self.queue.is_empty() {
            self.drain();
        }
        match self.queue.front() {
            Some(env) if env.ready_at <= cx.cycle => Some(&env.item),
            _ => None,
        }
    }

    /// Takes the message at the head of the link, if it has arrived, and returns its credit.
    #[inline]
    pub fn try_recv(&mut self, cx: &StepCtx) -> Option<T> {
        self.peek(cx)?;
        let env = self.queue.pop_front()?;
        self.received += 1;
        // The sender lives as long as the simulation and the credit channel holds `capacity`.
        if self.credits_to.try_send(self.delay.visible_at(cx)).is_err() {
            panic!("link `{}`: credit channel refused a credit", self.name);
        }
        Some(env.item)
    }

    /// Messages that have arrived by this edge and wait to be taken.
    pub fn ready(&mut self, cx: &StepCtx) -> usize {
        self.drain();
        self.queue
            .iter()
            .take_while(|e| e.ready_at <= cx.cycle)
            .count()
    }

    /// Messages sent and not yet taken, whether they have arrived or not. Between edges (in a
    /// trace or a deadlock report) this does not depend on the step order; inside a step, use
    /// [`LinkRx::ready`].
    pub fn in_flight(&self) -> usize {
        self.queue.len() + self.data.len()
    }

    /// Messages taken so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}
