//! Small generic components: a [`Feeder`] that sends a list of messages in order, a
//! [`Collector`] that takes whatever arrives and records when, and a [`Merge`] of several links
//! into one.

use crate::component::{Activity, Component, Fault, StepCtx, Wake};
use crate::link::{LinkRx, LinkTx};

/// Sends `items` in order, up to `per_cycle` a cycle while the link has credit.
pub struct Feeder<T> {
    name: String,
    out: LinkTx<T>,
    items: Vec<T>,
    next: usize,
    per_cycle: u32,
}

impl<T> Feeder<T> {
    pub fn new(name: &str, out: LinkTx<T>, items: Vec<T>, per_cycle: u32) -> Self {
        Feeder {
            name: name.into(),
            out,
            items,
            next: 0,
            per_cycle: per_cycle.max(1),
        }
    }

    /// Items sent so far.
    pub fn sent(&self) -> usize {
        self.next
    }

    /// Queues more items after the ones given so far.
    pub fn push(&mut self, items: impl IntoIterator<Item = T>) {
        self.items.extend(items);
    }
}

impl<T: Copy + Send + 'static> Component for Feeder<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut moved = false;
        for _ in 0..self.per_cycle {
            let Some(&item) = self.items.get(self.next) else {
                break;
            };
            if self.out.try_send(cx, item).is_err() {
                break;
            }
            self.next += 1;
            moved = true;
        }
        Ok(Activity::from_moved(moved))
    }

    fn holds_work(&self) -> bool {
        self.next < self.items.len()
    }

    /// An idle step waits for an arrival or a credit.
    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        Wake::after(did)
    }
}

/// Takes up to `per_cycle` arrivals a cycle and records them with the cycle they were taken.
pub struct Collector<T> {
    name: String,
    input: LinkRx<T>,
    per_cycle: u32,
    pub items: Vec<(u64, T)>,
}

impl<T> Collector<T> {
    pub fn new(name: &str, input: LinkRx<T>, per_cycle: u32) -> Self {
        Collector {
            name: name.into(),
            input,
            per_cycle: per_cycle.max(1),
            items: Vec::new(),
        }
    }

    /// What arrived, without the cycles.
    pub fn values(&self) -> Vec<T>
    where
        T: Copy,
    {
        self.items.iter().map(|i| i.1).collect()
    }
}

impl<T: Send + 'static> Component for Collector<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut moved = false;
        for _ in 0..self.per_cycle {
            match self.input.try_recv(cx) {
                Some(v) => {
                    self.items.push((cx.cycle, v));
                    moved = true;
                }
                None => break,
            }
        }
        Ok(Activity::from_moved(moved))
    }

    fn holds_work(&self) -> bool {
        self.input.in_flight() > 0
    }

    /// An idle step waits for an arrival or a credit.
    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        Wake::after(did)
    }
}

/// Merges several links into one, taking from the inputs round robin, one item a cycle.
pub struct Merge<T> {
    name: String,
    inputs: Vec<LinkRx<T>>,
    output: LinkTx<T>,
    next: usize,
}

impl<T> Merge<T> {
    pub fn new(name: &str, inputs: Vec<LinkRx<T>>, output: LinkTx<T>) -> Self {
        Merge {
            name: name.into(),
            inputs,
            output,
            next: 0,
        }
    }
}

impl<T: Send + 'static> Component for Merge<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        if !self.output.can_send(cx) {
            return Ok(Activity::Idle);
        }
        let n = self.inputs.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Some(v) = self.inputs[i].try_recv(cx) {
                if self.output.try_send(cx, v).is_err() {
                    return Err("merge output refused an item it had credit for".into());
                }
                self.next = (i + 1) % n;
                return Ok(Activity::Moved);
            }
        }
        Ok(Activity::Idle)
    }

    fn holds_work(&self) -> bool {
        self.inputs.iter().any(|i| i.in_flight() > 0)
    }

    /// An idle step waits for an arrival or a credit.
    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        Wake::after(did)
    }
}

/// A scheduler for the tests below, stepping every edge (the reference) or event-driven in a
/// shuffled order, and its one clock.
#[cfg(test)]
fn test_scheduler(every_edge: bool, seed: u64) -> (crate::Scheduler, crate::Clock) {
    let mut s = crate::Scheduler::new();
    s.set_every_edge(every_edge);
    if !every_edge {
        s.set_order(crate::StepOrder::Shuffled(seed));
    }
    let clk = s.add_clock("core", 100_000_000).unwrap();
    (s, clk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Link, Scheduler};

    /// The scheduler's account of steps and link interactions, against a hand count: a feeder
    /// sends 10 words over a link of latency 1 that holds 2, a collector takes them.
    #[test]
    fn activity_counts_every_step_and_link_interaction() {
        for every_edge in [true, false] {
            let mut s = Scheduler::new();
            s.set_every_edge(every_edge);
            let clk = s.add_clock("core", 100_000_000).unwrap();
            let Link { tx, rx } = Link::<u8>::new("top.l", clk, 1, 2).unwrap();
            s.add(clk, Feeder::new("top.feed", tx, (0..10).collect(), 1));
            s.add(clk, Collector::new("top.take", rx, 1));
            s.run().unwrap();
            let a = s.activity();
            let kind = |k: &str| a.iter().find(|x| x.kind == k).unwrap().clone();
            let (feed, take) = (kind("Feeder"), kind("Collector"));
            // 10 sends and 10 pops, one each, whatever the stepping.
            assert_eq!((feed.link_interactions, take.link_interactions), (10, 10));
            assert_eq!((feed.components, take.components), (1, 1));
            let cycles = s.cycle();
            if every_edge {
                // Every component at every edge.
                assert_eq!((feed.steps, take.steps), (cycles, cycles), "{a:?}");
            } else {
                // Event-driven: no more steps than edges, at least one per interaction made.
                assert!(feed.steps <= cycles && feed.steps >= 10, "{a:?}");
                assert!(take.steps <= cycles && take.steps >= 10, "{a:?}");
            }
        }
    }
}

#[cfg(test)]
mod pop_wake_tests {
    use super::*;
    use crate::{Link, LinkRx, Scheduler};

    /// Takes one word every `period` edges (a slow consumer), until it has `want`.
    struct Sipper {
        rx: LinkRx<u8>,
        period: u64,
        want: usize,
        got: Vec<(u64, u8)>,
    }

    impl Component for Sipper {
        fn name(&self) -> &str {
            "top.sip"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            if !cx.cycle.is_multiple_of(self.period) {
                return Ok(Activity::Idle);
            }
            Ok(match self.rx.try_recv(cx) {
                Some(v) => {
                    self.got.push((cx.cycle, v));
                    Activity::Moved
                }
                None => Activity::Idle,
            })
        }

        fn holds_work(&self) -> bool {
            self.got.len() < self.want
        }

        /// Its next turn while it wants more; then nothing.
        fn wake(&self, cx: &StepCtx, _did: Activity) -> Wake {
            if self.got.len() < self.want {
                Wake::IdleFor(self.period - cx.cycle % self.period)
            } else {
                Wake::Idle
            }
        }
    }

    /// A pop wakes the sender only when it waits for credits. A feeder whose link has room for
    /// all ten words sends them at edges 0-9 and is stepped once more (at 10, finding nothing
    /// left), not for the slow consumer's pops that come later; with fewer credits than words
    /// it is stepped for the credits it waits for. Every order gives what stepping every edge
    /// gives.
    #[test]
    fn a_pop_wakes_the_sender_only_when_it_waits_for_credits() {
        let run = |cap: u32, every_edge: bool, seed: u64| {
            let mut s = Scheduler::new();
            s.set_every_edge(every_edge);
            if !every_edge {
                s.set_order(crate::StepOrder::Shuffled(seed));
            }
            let clk = s.add_clock("core", 100_000_000).unwrap();
            let Link { tx, rx } = Link::<u8>::new("top.l", clk, 1, cap).unwrap();
            s.add(clk, Feeder::new("top.feed", tx, (0..10).collect(), 1));
            let sip = Sipper {
                rx,
                period: 3,
                want: 10,
                got: Vec::new(),
            };
            let c = s.add(clk, sip);
            s.run().unwrap();
            let got = s.component::<Sipper>(c).unwrap().got.clone();
            let a = s.activity();
            let feed = a.iter().find(|x| x.kind == "Feeder").unwrap().steps;
            (got, s.cycle(), feed)
        };
        for cap in [1, 4, 16] {
            let (want, cycles, _) = run(cap, true, 0);
            // One word every third edge, from the first turn after the first arrival.
            let edges: Vec<u64> = want.iter().map(|w| w.0).collect();
            assert_eq!(edges, (1..=10).map(|k| 3 * k).collect::<Vec<u64>>());
            for seed in 0..6 {
                let (got, c, feed) = run(cap, false, seed);
                assert_eq!((&got, c), (&want, cycles), "capacity {cap}, order {seed}");
                let expect = match cap {
                    // Sends at 0-9 and the step at 10; the pops at 12-30 wake nobody.
                    16 => 11,
                    // Sends at 0-3; then each pop at 3k (k = 1..6) gives the credit for a
                    // send at 3k + 1, and each send is followed by a step that finds no
                    // credit (4, 5, 7, 8, .., 19, 20). Its last look (at 19) left it short, so
                    // the pops at 21-30 wake it: 22, 25, 28, 31 (it sends no more, and a
                    // feeder with nothing left does not look at its credits again).
                    4 => 4 + 6 + 6 + 4,
                    // One credit: the send at 0 and a step at 1 finding none; each pop at 3k
                    // (k = 1..9) gives the credit for a send at 3k + 1, followed by a step
                    // finding none; the pop at 30 wakes it once more (its last look was short).
                    _ => 2 + 2 * 9 + 1,
                };
                assert_eq!(feed, expect, "capacity {cap}, order {seed}");
            }
        }
    }
}

#[cfg(test)]
mod ahead_tests {
    use super::*;
    use crate::{Link, LinkRx, Scheduler};

    /// Takes a word, then works `len` edges on it (each moved), then takes the next: stepped
    /// edge by edge, or running ahead through the work in the step that takes the word
    /// ([`Wake::Ahead`], as the PE does through a filter load).
    struct Burster {
        rx: LinkRx<u32>,
        len: u64,
        busy_until: Option<u64>,
        next_head: Option<u64>,
        got: Vec<(u64, u32)>,
        moved_edges: u64,
        /// Its busy edges are done when it takes a word (it runs ahead): no work held then.
        ahead: bool,
    }

    impl Component for Burster {
        fn name(&self) -> &str {
            "top.burst"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            if let Some(b) = self.busy_until {
                if cx.cycle <= b {
                    self.next_head = self.rx.head_ready_at();
                    if cx.ahead {
                        return Ok(Activity::Moved); // it ran through this edge, moving
                    }
                    self.moved_edges += 1;
                    if cx.cycle == b {
                        self.busy_until = None;
                    }
                    return Ok(Activity::Moved);
                }
                self.busy_until = None;
            }
            let Some(v) = self.rx.try_recv(cx) else {
                return Ok(Activity::Idle);
            };
            self.got.push((cx.cycle, v));
            self.moved_edges += 1;
            self.busy_until = Some(cx.cycle + self.len);
            if cx.ahead {
                self.moved_edges += self.len;
                self.ahead = true;
            }
            self.next_head = self.rx.head_ready_at();
            Ok(Activity::Moved)
        }

        fn holds_work(&self) -> bool {
            (self.busy_until.is_some() && !self.ahead) || self.rx.in_flight() > 0
        }

        fn wake(&self, cx: &StepCtx, did: Activity) -> Wake {
            match self.busy_until {
                Some(b) if b > cx.cycle => Wake::Ahead {
                    moving: b - cx.cycle,
                    then: self.next_head.map(|r| r.max(b + 1) - cx.cycle),
                },
                _ => Wake::after(did),
            }
        }

        // Ahead, its busy edges were counted when it took the word: nothing to bring through.
        fn settle(&mut self, last: &StepCtx, _edges: u64) {
            if self.busy_until.is_some_and(|b| b <= last.cycle) {
                self.busy_until = None;
            }
        }
    }

    /// A run ahead counts as moving for the watchdog (here shorter than the work of one word,
    /// while the feeder waits for a credit), wakes for what arrives meanwhile, steps after the
    /// burst when a word is waiting and not otherwise: the same words at the same cycles, the
    /// same work and the same end as stepping every edge, in every step order.
    #[test]
    fn running_ahead_is_stepping_every_edge() {
        let run = |every_edge: bool, latency: u32, cap: u32, seed: u64| {
            let mut s = Scheduler::new();
            s.set_every_edge(every_edge);
            s.set_watchdog(3);
            if !every_edge {
                s.set_order(crate::StepOrder::Shuffled(seed));
            }
            let clk = s.add_clock("core", 100_000_000).unwrap();
            let Link { tx, rx } = Link::<u32>::new("top.l", clk, latency, cap).unwrap();
            s.add(clk, Feeder::new("top.feed", tx, (0..12).collect(), 1));
            let b = s.add(
                clk,
                Burster {
                    rx,
                    len: 5,
                    busy_until: None,
                    next_head: None,
                    got: Vec::new(),
                    moved_edges: 0,
                    ahead: false,
                },
            );
            s.run().unwrap();
            let bu: &Burster = s.component(b).unwrap();
            (s.cycle(), bu.got.clone(), bu.moved_edges)
        };
        for (latency, cap) in [(1, 1), (1, 4), (3, 2), (2, 8)] {
            let want = run(true, latency, cap, 0);
            assert_eq!(want.1.len(), 12);
            for seed in 0..4 {
                assert_eq!(
                    run(false, latency, cap, seed),
                    want,
                    "latency {latency}, capacity {cap}"
                );
            }
        }
    }
    /// Takes a word, then works `len` edges on it looking at no link, run through in the step
    /// that takes it; then waits for the next word ([`Wake::IgnoringLinksThenIdle`], as a PE
    /// whose drain waits for the psum from below).
    struct Waiter {
        rx: LinkRx<u32>,
        len: u64,
        busy_until: Option<u64>,
        /// A word was on its way at its last step: it takes it after the work.
        on_its_way: bool,
        got: Vec<(u64, u32)>,
        steps: u64,
    }

    impl Component for Waiter {
        fn name(&self) -> &str {
            "top.wait"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            self.steps += 1;
            if let Some(b) = self.busy_until {
                if cx.cycle <= b {
                    // Stepped at every edge (or traced): the work of this edge.
                    return Ok(Activity::Moved);
                }
                self.busy_until = None;
            }
            let Some(v) = self.rx.try_recv(cx) else {
                return Ok(Activity::Idle);
            };
            self.got.push((cx.cycle, v));
            self.busy_until = Some(cx.cycle + self.len);
            self.on_its_way = self.rx.head_ready_at().is_some();
            Ok(Activity::Moved)
        }

        fn holds_work(&self) -> bool {
            self.rx.in_flight() > 0
        }

        fn wake(&self, cx: &StepCtx, did: Activity) -> Wake {
            match self.busy_until {
                // A word on its way already is its own to take after the work.
                Some(b) if b > cx.cycle && self.on_its_way => Wake::IgnoringLinksFor(b - cx.cycle),
                Some(b) if b > cx.cycle => Wake::IgnoringLinksThenIdle(b - cx.cycle),
                _ => Wake::after(did),
            }
        }

        fn settle(&mut self, last: &StepCtx, _edges: u64) {
            if self.busy_until.is_some_and(|b| b <= last.cycle) {
                self.busy_until = None;
            }
        }
    }

    /// Sends words `0..n`, one at each edge that is a multiple of `period`, while it has credit.
    struct Pacer {
        tx: crate::LinkTx<u32>,
        next: u32,
        n: u32,
        period: u64,
    }

    impl Component for Pacer {
        fn name(&self) -> &str {
            "top.pace"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            if self.next == self.n || !cx.cycle.is_multiple_of(self.period) {
                return Ok(Activity::Idle);
            }
            if self.tx.try_send(cx, self.next).is_err() {
                return Ok(Activity::Idle);
            }
            self.next += 1;
            Ok(Activity::Moved)
        }

        fn holds_work(&self) -> bool {
            self.next < self.n
        }

        fn wake(&self, cx: &StepCtx, _did: Activity) -> Wake {
            if self.next < self.n {
                Wake::IdleFor(self.period - cx.cycle % self.period)
            } else {
                Wake::Idle
            }
        }
    }

    /// A component that ignores its links through its work and then waits on them is stepped
    /// after the work only when a word reached it meanwhile, and otherwise at the next word's
    /// arrival: the same words at the same cycles and the same end as stepping every edge, in
    /// every step order, with one step a word (a step after the last word's work, as
    /// `IgnoringLinksFor` would take, or a word arrived during the work and not seen, fails it).
    #[test]
    fn ignoring_links_then_idle_is_stepping_every_edge() {
        let run = |every_edge: bool, latency: u32, cap: u32, period: u64, seed: u64| {
            let (mut s, clk) = super::test_scheduler(every_edge, seed);
            let Link { tx, rx } = Link::<u32>::new("top.l", clk, latency, cap).unwrap();
            s.add(
                clk,
                Pacer {
                    tx,
                    next: 0,
                    n: 12,
                    period,
                },
            );
            let w = s.add(
                clk,
                Waiter {
                    rx,
                    len: 5,
                    busy_until: None,
                    on_its_way: false,
                    got: Vec::new(),
                    steps: 0,
                },
            );
            s.run().unwrap();
            let wt: &Waiter = s.component(w).unwrap();
            (s.cycle(), wt.got.clone(), wt.steps)
        };
        // Words arriving during the work (one a cycle), and after it (one every 9 cycles).
        for (latency, cap, period) in [(1, 1, 1), (1, 4, 1), (3, 2, 1), (2, 8, 9), (1, 2, 9)] {
            let want = run(true, latency, cap, period, 0);
            assert_eq!(want.1.len(), 12);
            for seed in 0..4 {
                let got = run(false, latency, cap, period, seed);
                assert_eq!(
                    (got.0, &got.1),
                    (want.0, &want.1),
                    "latency {latency}, capacity {cap}, period {period}"
                );
                // The first step finds nothing yet (the feeder's word is on its way).
                assert_eq!(got.2, 12 + 1, "latency {latency}, capacity {cap}");
            }
        }
    }
}

#[cfg(test)]
mod run_tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::Link;

    /// Sends its items one an edge while it has credit; ahead (`runs`), all it has credit for
    /// as one run ([`LinkTx::send_run_at`]) from the edge it is stepped at.
    struct RunSender {
        tx: LinkTx<u32>,
        items: VecDeque<u32>,
        runs: bool,
        through: Option<u64>,
        /// Its last send spent its last credit: it sleeps until the link wakes it.
        spent: bool,
    }

    impl Component for RunSender {
        fn name(&self) -> &str {
            "top.send"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            if self.through.is_some_and(|t| cx.cycle <= t) {
                return Ok(Activity::Moved); // sent when it ran ahead
            }
            self.through = None;
            self.spent = false;
            let k = (self.tx.credits(cx) as usize).min(self.items.len());
            if k == 0 {
                return Ok(Activity::Idle);
            }
            if self.runs && cx.ahead {
                if !self.tx.send_run_at(cx, cx.cycle, self.items.drain(..k)) {
                    return Err("a run refused with its credits held".into());
                }
                self.through = Some(cx.cycle + k as u64 - 1);
            } else {
                let v = self.items.pop_front().ok_or("no item")?;
                if self.tx.try_send(cx, v).is_err() {
                    return Err("a send refused with a credit held".into());
                }
                self.spent = self.tx.credits_held() == 0;
            }
            Ok(Activity::Moved)
        }

        fn holds_work(&self) -> bool {
            !self.items.is_empty()
        }

        fn wake(&self, cx: &StepCtx, did: Activity) -> Wake {
            match self.through {
                Some(t) if t > cx.cycle => Wake::Ahead {
                    moving: t - cx.cycle,
                    then: (!self.items.is_empty()).then_some(t + 1 - cx.cycle),
                },
                _ if self.spent => Wake::Idle,
                _ => Wake::after(did),
            }
        }
    }

    /// Takes what has arrived, one an edge, except at edges `refuse` names (a stall); ahead
    /// (`runs`), as one run up to the next refused edge ([`LinkRx::take_run_at`]).
    struct RunReceiver {
        rx: LinkRx<u32>,
        refuse: u64,
        runs: bool,
        through: Option<u64>,
        refused: bool,
        next_head: Option<u64>,
        /// After a run, it asks for a step for what is on its way; else it trusts the link to
        /// wake it, as a message sent alone would.
        asks: bool,
        got: Vec<(u64, u32)>,
    }

    impl RunReceiver {
        fn refuses(&self, cycle: u64) -> bool {
            cycle % self.refuse == self.refuse - 1
        }
    }

    impl Component for RunReceiver {
        fn name(&self) -> &str {
            "top.take"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            self.refused = false;
            if self.through.is_some_and(|t| cx.cycle <= t) {
                return Ok(Activity::Moved); // taken when it ran ahead
            }
            self.through = None;
            if self.refuses(cx.cycle) {
                self.refused = self.rx.in_flight() > 0;
                return Ok(Activity::Idle);
            }
            if self.runs && cx.ahead {
                let max = (1..).take_while(|k| !self.refuses(cx.cycle + k)).count() + 1;
                let mut buf = Vec::new();
                let n = self.rx.take_run_at(cx, cx.cycle, max, &mut buf);
                for (k, v) in buf.into_iter().enumerate() {
                    self.got.push((cx.cycle + k as u64, v));
                }
                if n == 0 {
                    return Ok(Activity::Idle);
                }
                self.through = Some(cx.cycle + n as u64 - 1);
                self.next_head = self.rx.head_ready_at();
                return Ok(Activity::Moved);
            }
            match self.rx.try_recv(cx) {
                Some(v) => {
                    self.got.push((cx.cycle, v));
                    Ok(Activity::Moved)
                }
                None => Ok(Activity::Idle),
            }
        }

        fn holds_work(&self) -> bool {
            self.rx.in_flight() > 0
        }

        fn wake(&self, cx: &StepCtx, did: Activity) -> Wake {
            match self.through {
                // After the run, a step for what is already on its way.
                Some(t) if t > cx.cycle => Wake::Ahead {
                    moving: t - cx.cycle,
                    then: self
                        .next_head
                        .filter(|_| self.asks)
                        .map(|r| r.max(t + 1) - cx.cycle),
                },
                _ if self.refused => Wake::IdleFor(1),
                _ => Wake::after(did),
            }
        }
    }

    /// Runs on either end (or both) deliver the same words at the same edges, and end at the
    /// same cycle, as one word an edge stepped at every edge: with credit loops short and long,
    /// a receiver that stalls (so the sender waits for credits a run of pops returned), in
    /// shuffled step orders. The sender waiting on such credits is only woken at the first
    /// by the run itself: it must ask for the rest.
    #[test]
    fn runs_are_words_one_an_edge() {
        let run =
            |every_edge: bool, runs: (bool, bool, bool), latency: u32, cap: u32, seed: u64| {
                let asks = runs.2;
                let (mut s, clk) = super::test_scheduler(every_edge, seed);
                let Link { tx, rx } = Link::<u32>::new("top.l", clk, latency, cap).unwrap();
                s.add(
                    clk,
                    RunSender {
                        tx,
                        items: (0..40).collect(),
                        runs: runs.0,
                        through: None,
                        spent: false,
                    },
                );
                let r = s.add(
                    clk,
                    RunReceiver {
                        rx,
                        refuse: 7,
                        runs: runs.1,
                        through: None,
                        refused: false,
                        next_head: None,
                        asks,
                        got: Vec::new(),
                    },
                );
                s.run().unwrap_or_else(|e| {
                    panic!("{e}: latency {latency}, capacity {cap}, runs {runs:?}, order {seed}")
                });
                let got = s.component::<RunReceiver>(r).unwrap().got.clone();
                (s.cycle(), got)
            };
        for (latency, cap) in [(1, 1), (1, 2), (1, 6), (2, 3), (3, 8), (2, 24)] {
            let want = run(true, (false, false, true), latency, cap, 0);
            assert_eq!(want.1.len(), 40);
            assert!(want.1.iter().enumerate().all(|(k, &(_, v))| v == k as u32));
            for runs in [
                (true, false, true),
                (false, true, true),
                (true, true, true),
                (false, true, false),
                (true, true, false),
            ] {
                for seed in 0..4 {
                    assert_eq!(
                        run(false, runs, latency, cap, seed),
                        want,
                        "latency {latency}, capacity {cap}, runs {runs:?}, order {seed}"
                    );
                }
            }
        }
    }

    /// Takes what arrives on two links, each as a part of its own ([`crate::in_part`]), and
    /// notes at each step which parts the scheduler says were asked for.
    struct TwoParts {
        a: LinkRx<u8>,
        b: LinkRx<u8>,
        /// (edge, the step's parts, part of each message taken at it).
        steps: Vec<(u64, u8, Vec<u8>)>,
    }

    impl Component for TwoParts {
        fn name(&self) -> &str {
            "top.parts"
        }

        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            let mut took = Vec::new();
            if crate::in_part(1, || self.a.try_recv(cx)).is_some() {
                took.push(1);
            }
            if crate::in_part(2, || self.b.try_recv(cx)).is_some() {
                took.push(2);
            }
            let moved = !took.is_empty();
            self.steps.push((cx.cycle, cx.parts, took));
            Ok(Activity::from_moved(moved))
        }

        fn holds_work(&self) -> bool {
            self.a.in_flight() + self.b.in_flight() > 0
        }

        /// Idle until a message arrives (each is taken at its arrival).
        fn wake(&self, _cx: &StepCtx, _did: Activity) -> Wake {
            Wake::Idle
        }
    }

    /// A link end first used inside a part belongs to it: a message arriving on it asks for a
    /// step of the component and says which part it was for, at that step and no other. The
    /// feeders send 8 and 4 words, one a cycle on a link of latency 2 that holds 3 (the
    /// first) and one every other cycle on a link of latency 1 that holds 1 (the second, whose
    /// credit loop is 2 cycles);
    /// the receiver takes each at its arrival, event-driven in shuffled orders and at every
    /// edge (where the parts asked for are those of the messages that arrive).
    #[test]
    fn a_component_is_told_which_of_its_parts_links_asked_for_its_step() {
        for (every_edge, seed) in [(false, 1), (false, 2), (true, 0)] {
            let (mut s, clk) = test_scheduler(every_edge, seed);
            let a = Link::<u8>::new("top.a", clk, 2, 3).unwrap();
            let b = Link::<u8>::new("top.b", clk, 1, 1).unwrap();
            s.add(clk, Feeder::new("top.fa", a.tx, (0..8).collect(), 1));
            s.add(clk, Feeder::new("top.fb", b.tx, (0..4).collect(), 1));
            let c = s.add(
                clk,
                TwoParts {
                    a: a.rx,
                    b: b.rx,
                    steps: Vec::new(),
                },
            );
            s.run().unwrap();
            let steps = &s.component::<TwoParts>(c).unwrap().steps;
            let took: Vec<(u64, u8)> = steps
                .iter()
                .flat_map(|(e, _, t)| t.iter().map(move |&p| (*e, p)))
                .collect();
            // By hand: A's words arrive at edges 2..=9, B's at 1, 3, 5 and 7.
            let want: Vec<(u64, u8)> = (2..=9)
                .map(|e| (e, 1))
                .chain((0..4).map(|k| (1 + 2 * k, 2)))
                .collect();
            let mut sorted = took.clone();
            sorted.sort();
            let mut want = want;
            want.sort();
            assert_eq!(sorted, want, "every_edge {every_edge}");
            for (e, parts, t) in steps {
                let asked: Vec<u8> = (1..8).filter(|p| parts & 1 << p != 0).collect();
                assert_eq!(&asked, t, "edge {e}, every_edge {every_edge}");
            }
            if !every_edge {
                // Stepped only where a message arrived (the first step binds the links).
                assert!(steps.iter().skip(1).all(|(_, _, t)| !t.is_empty()));
            }
        }
    }
}
