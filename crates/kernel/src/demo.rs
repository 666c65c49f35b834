//! A small two-clock pipeline that shows the kernel's contract end to end, used by the kernel's
//! tests and by `rowsim demo`: a producer on the core clock sends a counted stream of 16-bit
//! words over a link with backpressure into an async FIFO, whose read port on the link clock
//! feeds a consumer that takes a word only every `accept_every` link cycles.
//!
//! ```text
//! core (200 MHz)                               |  link (60 MHz)
//! producer --Link(lat 2, cap 2)--> fifo.wr ==[depth 4, 2 sync]==> fifo.rd --Link(1, 2)--> consumer
//! ```

use crate::async_fifo::AsyncFifo;
use crate::component::{Activity, Component, Fault, StepCtx};
use crate::link::{Link, LinkError, LinkRx, LinkTx};
use crate::scheduler::{ComponentId, Scheduler};
use crate::trace::{SignalId, SignalRegistry, TraceError, TraceFrame};

/// Sends `count` words, `word(i) = i * 0x9E37 mod 2^16` (a sequence with every bit toggling),
/// one per cycle while the link has credit.
pub struct Producer {
    name: String,
    out: LinkTx<u16>,
    count: u64,
    sent: u64,
    stalls: u64,
    valid: bool,
    last: u16,
    sig: [SignalId; 3],
}

/// The `i`-th word the producer sends.
pub fn word(i: u64) -> u16 {
    (i.wrapping_mul(0x9E37) & 0xFFFF) as u16
}

impl Producer {
    pub fn new(name: &str, out: LinkTx<u16>, count: u64) -> Self {
        Producer {
            name: name.into(),
            out,
            count,
            sent: 0,
            stalls: 0,
            valid: false,
            last: 0,
            sig: [SignalId::OFF; 3],
        }
    }

    /// Cycles the producer had a word but no credit.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }
}

impl Component for Producer {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.valid = false;
        if self.sent == self.count {
            return Ok(Activity::Idle);
        }
        let w = word(self.sent);
        match self.out.try_send(cx, w) {
            Ok(()) => {
                self.sent += 1;
                self.valid = true;
                self.last = w;
            }
            Err(_) => self.stalls += 1,
        }
        // A stall advances the stall counter: the producer is waiting, not stuck.
        Ok(Activity::from_moved(self.valid))
    }

    fn holds_work(&self) -> bool {
        self.sent < self.count
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.sig = [
            s.signal(&self.name, "valid", 1)?,
            s.signal(&self.name, "data", 16)?,
            s.signal(&self.name, "stall_count", 16)?,
        ];
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        f.set_bool(self.sig[0], self.valid);
        f.set(self.sig[1], self.last as u64);
        f.set(self.sig[2], self.stalls & 0xFFFF);
    }
}

/// Words a [`Consumer`] records with their arrival cycles; later ones are only counted and
/// checked, so a long run does not grow without bound.
pub const RECORD_LIMIT: usize = 1 << 16;

/// Takes one word every `accept_every` cycles of its clock, checks it against [`word`], and
/// records the first [`RECORD_LIMIT`] words with their arrival cycles.
pub struct Consumer {
    name: String,
    input: LinkRx<u16>,
    accept_every: u64,
    /// (cycle of the consumer's clock, word), in arrival order, up to [`RECORD_LIMIT`].
    pub received: Vec<(u64, u16)>,
    /// Words taken.
    pub count: u64,
    /// Words that were not the next word of the sequence.
    pub out_of_order: u64,
    last: u16,
    took: bool,
    sig: [SignalId; 3],
}

impl Consumer {
    pub fn new(name: &str, input: LinkRx<u16>, accept_every: u64) -> Self {
        Consumer {
            name: name.into(),
            input,
            accept_every: accept_every.max(1),
            received: Vec::new(),
            count: 0,
            out_of_order: 0,
            last: 0,
            took: false,
            sig: [SignalId::OFF; 3],
        }
    }
}

impl Component for Consumer {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.took = false;
        if !cx.cycle.is_multiple_of(self.accept_every) {
            return Ok(Activity::Idle);
        }
        match self.input.try_recv(cx) {
            Some(w) => {
                if self.received.len() < RECORD_LIMIT {
                    self.received.push((cx.cycle, w));
                }
                self.out_of_order += (w != word(self.count)) as u64;
                self.count += 1;
                self.last = w;
                self.took = true;
                Ok(Activity::Moved)
            }
            None => Ok(Activity::Idle),
        }
    }

    fn holds_work(&self) -> bool {
        self.input.in_flight() > 0
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.sig = [
            s.signal(&self.name, "take", 1)?,
            s.signal(&self.name, "data", 16)?,
            s.signal(&self.name, "count", 16)?,
        ];
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        f.set_bool(self.sig[0], self.took);
        f.set(self.sig[1], self.last as u64);
        f.set(self.sig[2], self.count & 0xFFFF);
    }
}

/// Parameters of the clock-crossing pipeline.
#[derive(Clone, Copy, Debug)]
pub struct PipelineSpec {
    pub core_hz: u64,
    pub link_hz: u64,
    pub words: u64,
    pub fifo_depth: u32,
    pub sync_stages: u32,
    pub accept_every: u64,
}

impl Default for PipelineSpec {
    fn default() -> Self {
        PipelineSpec {
            core_hz: 200_000_000,
            link_hz: 60_000_000,
            words: 24,
            fifo_depth: 4,
            sync_stages: 2,
            accept_every: 2,
        }
    }
}

/// The pipeline, built into a scheduler: ids of the producer and the consumer.
pub struct Pipeline {
    pub sched: Scheduler,
    pub producer: ComponentId,
    pub consumer: ComponentId,
}

/// Builds the pipeline of the module docs.
pub fn clock_crossing_pipeline(spec: PipelineSpec) -> Result<Pipeline, LinkError> {
    let mut sched = Scheduler::new();
    let bad_clock = |e: crate::ClockError| LinkError {
        link: "clock".into(),
        what: e.to_string(),
    };
    let core = sched.add_clock("core", spec.core_hz).map_err(bad_clock)?;
    let link = sched.add_clock("link", spec.link_hz).map_err(bad_clock)?;
    let to_fifo = Link::new("top.core.to_fifo", core, 2, 2)?;
    let from_fifo = Link::new("top.link.from_fifo", link, 1, 2)?;
    let (wr, rd) = AsyncFifo::build(
        "top.cdc_fifo",
        to_fifo.rx,
        from_fifo.tx,
        core,
        link,
        spec.fifo_depth,
        spec.sync_stages,
    )?;
    let producer = sched.add(
        core,
        Producer::new("top.core.producer", to_fifo.tx, spec.words),
    );
    sched.add(core, wr);
    sched.add(link, rd);
    let consumer = sched.add(
        link,
        Consumer::new("top.link.consumer", from_fifo.rx, spec.accept_every),
    );
    Ok(Pipeline {
        sched,
        producer,
        consumer,
    })
}
