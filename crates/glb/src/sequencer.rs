//! The GLB's sequencers (its controller's datapaths), each on its own GLB port so that no
//! stream holds up another. On the chip they are parts of the GLB, which steps them itself
//! ([`crate::Glb::add_reader`]); each is also a component of its own on a port of links (a test
//! bench, or a requester outside the block), with the same cycles:
//! - [`GlbReader`]: reads entries (or makes padding zeros) and sends each chunk as a beat to
//!   each of its tags on a GIN, or as values (through ReLU if asked) to the output path;
//! - [`GlbWriter`]: writes a stream of values at listed addresses (data from DRAM), or GON beats
//!   at the addresses of each PE's psum stream.
//!
//! Jobs come from the top-level controller over a job port (a link), each a few words of
//! descriptor ([`crate::desc`]) that the sequencer expands itself, an item at a time as it
//! issues them, and an id that it sends back on its done port when the job is finished: a
//! reader's when its last chunk has been sent, a writer's when its last word has been written
//! and acknowledged. (Tests may also queue items directly.) A component holds work until its
//! queue is empty.

use std::collections::{BTreeMap, VecDeque};

use std::sync::Arc;

use rowsim_kernel::{Activity, Component, Fault, LinkRx, LinkTx, Port, StepCtx, Wake, Wire};
use rowsim_types::{Beat, GonBeat};

use crate::desc::{ReadDesc, ReadQueue, WordQueue, Words};
use crate::port::{InnerEnd, LinkEnd, ReqEnd};
use crate::{DataType, GlbReq, GlbResp};

/// Where a chunk comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// Lanes `lane..lane+len` of an entry.
    Glb {
        bank: u32,
        entry: u32,
        lane: u8,
        len: u8,
        dtype: DataType,
    },
    /// `n` zeros (padding, made on the way to the array: no GLB access).
    Zeros(u8),
}

/// The (row, column) tags of a chunk's beats: one beat per tag. No allocation per item: a
/// single tag is held inline, several are shared (every item of an ifmap row carries the same
/// list, made once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tags {
    /// Value mode: no beats.
    #[default]
    None,
    One((u16, u16)),
    Shared(Arc<[(u16, u16)]>),
}

impl Tags {
    pub fn as_slice(&self) -> &[(u16, u16)] {
        match self {
            Tags::None => &[],
            Tags::One(t) => std::slice::from_ref(t),
            Tags::Shared(v) => v,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl From<Vec<(u16, u16)>> for Tags {
    fn from(v: Vec<(u16, u16)>) -> Self {
        match v.as_slice() {
            [] => Tags::None,
            [t] => Tags::One(*t),
            _ => Tags::Shared(v.into()),
        }
    }
}

/// One chunk to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadItem {
    pub src: Src,
    /// One beat per tag; none in value mode.
    pub tags: Tags,
}

/// A reader's job: its items, sent in order, as a descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadJob {
    pub id: u32,
    pub items: ReadDesc,
}

/// A writer's job: where the values to come go (value mode), or each PE's words (GON mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteJob {
    pub id: u32,
    pub values: Vec<Words>,
    pub gon: Vec<((u16, u16), Words)>,
}

/// Job completion, for the controller: (ends at item or word count, id) of each job, and the
/// ids finished and not yet sent back.
struct Jobs<J> {
    port: Port<J>,
    done_port: Option<LinkTx<u32>>,
    marks: VecDeque<(u64, u32)>,
    queued: u64,
    finished: u64,
    dones: VecDeque<u32>,
}

impl<J> Default for Jobs<J> {
    fn default() -> Self {
        Jobs {
            port: Port::default(),
            done_port: None,
            marks: VecDeque::new(),
            queued: 0,
            finished: 0,
            dones: VecDeque::new(),
        }
    }
}

impl<J> Jobs<J> {
    fn mark(&mut self, len: u64, id: u32) {
        self.queued += len;
        self.marks.push_back((self.queued, id));
    }

    /// Moves the jobs whose last item is finished (and `idle` holds) to the done queue, and
    /// sends one id back.
    fn retire(&mut self, cx: &StepCtx, idle: bool) -> bool {
        let mut moved = false;
        while let Some(&(end, id)) = self.marks.front() {
            if end > self.finished || !idle {
                break;
            }
            self.marks.pop_front();
            self.dones.push_back(id);
        }
        if let (Some(&id), Some(tx)) = (self.dones.front(), self.done_port.as_mut()) {
            if tx.try_send(cx, id).is_ok() {
                self.dones.pop_front();
                moved = true;
            }
        } else if self.done_port.is_none() {
            self.dones.clear();
        }
        moved
    }

    fn holds_work(&self) -> bool {
        !self.dones.is_empty() || self.port.pending()
    }

    /// Whether the next edge has job work without anything new arriving: an id to send back,
    /// or a job already arrived.
    #[inline]
    fn more(&mut self, cx: &StepCtx) -> bool {
        !self.dones.is_empty() || self.port.ready(cx)
    }
}

/// Where a reader's chunks go.
pub enum ReadOut {
    Beats(LinkTx<Beat>),
    /// Beats into a FIFO inside the block that holds the GLB (its GINs: see
    /// [`crate::Glb::beat_wire`]), with the timing of a link of latency one and the FIFO's
    /// depth. Only for one of the GLB's own readers whose GLB such a block holds: nothing else
    /// takes from the FIFO (a reader left with beats in it holds work, and the watchdog names
    /// it).
    Wire(Wire<Beat>),
    /// Values, one a cycle, through ReLU when `relu`.
    Values {
        tx: LinkTx<i16>,
        relu: bool,
    },
}

struct Chunk {
    words: [i16; 4],
    len: u8,
    tags: Tags,
    next_tag: usize,
    next_word: usize,
}

fn lanes_mask(lane: u8, len: u8) -> u8 {
    (((1u16 << len) - 1) << lane) as u8
}

/// Reads the GLB in item order and sends what it reads: a component of its own on a port of
/// links (`GlbReader<LinkEnd>`, [`GlbReader::new`]), or one of the GLB's own sequencers
/// ([`GlbReader::inner`], [`crate::Glb::add_reader`]).
pub struct GlbReader<E: ReqEnd = LinkEnd> {
    name: String,
    port: E,
    out: ReadOut,
    items: ReadQueue,
    inflight: VecDeque<ReadItem>,
    ready: VecDeque<Chunk>,
    /// Chunks read ahead at most.
    lookahead: usize,
    jobs: Jobs<ReadJob>,
    /// After the last step, the next edge had work without anything new arriving.
    more: bool,
    /// The last step had a chunk to send and no credit to send it with.
    blocked: bool,
}

impl ReadOut {
    /// See [`LinkTx::may_send`].
    fn may_send(&self, cx: &StepCtx) -> bool {
        match self {
            ReadOut::Beats(tx) => tx.may_send(cx),
            ReadOut::Wire(w) => w.can_push(cx.cycle),
            ReadOut::Values { tx, .. } => tx.may_send(cx),
        }
    }
}

impl GlbReader<LinkEnd> {
    pub fn new(name: &str, req: LinkTx<GlbReq>, resp: LinkRx<GlbResp>, out: ReadOut) -> Self {
        Self::on(name, LinkEnd { req, resp }, out)
    }
}

impl GlbReader<InnerEnd> {
    /// A reader for the GLB to step itself, on a port inside it.
    pub fn inner(name: &str, out: ReadOut) -> Self {
        Self::on(name, InnerEnd::default(), out)
    }
}

impl<E: ReqEnd> GlbReader<E> {
    fn on(name: &str, port: E, out: ReadOut) -> Self {
        GlbReader {
            name: name.into(),
            port,
            out,
            items: ReadQueue::default(),
            inflight: VecDeque::new(),
            ready: VecDeque::new(),
            lookahead: 4,
            jobs: Jobs::default(),
            more: false,
            blocked: false,
        }
    }

    pub fn push(&mut self, items: impl IntoIterator<Item = ReadItem>) {
        let items: Vec<ReadItem> = items.into_iter().collect();
        self.jobs.queued += items.len() as u64;
        self.items.push(ReadDesc::List(items));
    }

    /// Wires the job port and the done port (see the module docs).
    pub fn with_job_ports(mut self, jobs: LinkRx<ReadJob>, done: LinkTx<u32>) -> Self {
        self.jobs.port = Port::wired(jobs);
        self.jobs.done_port = Some(done);
        self
    }

    pub(crate) fn port(&mut self) -> &mut E {
        &mut self.port
    }

    pub(crate) fn port_ref(&self) -> &E {
        &self.port
    }

    /// Its beat FIFO inside the block, if it sends into one ([`ReadOut::Wire`]).
    pub fn beat_wire(&mut self) -> Option<&mut Wire<Beat>> {
        match &mut self.out {
            ReadOut::Wire(w) => Some(w),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One edge (see [`Component::step`]).
    pub(crate) fn run(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut moved = false;
        self.blocked = false;
        if let Some(job) = self.jobs.port.try_recv(cx) {
            // Checked whole before any of it runs: its walk's address arithmetic then cannot
            // overflow.
            job.items
                .check()
                .map_err(|e| format!("{}: job {}: {e}", self.name, job.id))?;
            self.jobs.mark(job.items.items(), job.id);
            self.items.push(job.items);
            moved = true;
        }
        // Send: one beat (or one value) a cycle.
        if let Some(c) = self.ready.front_mut() {
            // The chunk's next beat (to a link or the block's FIFO alike).
            let beat = || {
                let (r, col) = c.tags.as_slice()[c.next_tag];
                Beat::new(r, col, &c.words[..c.len as usize])
            };
            let sent = match &mut self.out {
                ReadOut::Beats(tx) => tx.try_send(cx, beat()).is_ok(),
                ReadOut::Wire(w) => w.push(cx.cycle, beat()).is_ok(),
                ReadOut::Values { tx, relu } => {
                    let v = c.words[c.next_word];
                    let v = if *relu { v.max(0) } else { v };
                    tx.try_send(cx, v).is_ok()
                }
            };
            if sent {
                match self.out {
                    ReadOut::Beats(_) | ReadOut::Wire(_) => c.next_tag += 1,
                    ReadOut::Values { .. } => c.next_word += 1,
                }
            }
            moved |= sent;
            self.blocked = !sent;
            let done = match self.out {
                ReadOut::Beats(_) | ReadOut::Wire(_) => c.next_tag == c.tags.len(),
                ReadOut::Values { .. } => c.next_word == c.len as usize,
            };
            if done {
                self.ready.pop_front();
                self.jobs.finished += 1;
            }
        }
        moved |= self.jobs.retire(cx, true);
        // Responses, in order.
        if let Some(r) = self.port.recv(cx) {
            let item = self
                .inflight
                .pop_front()
                .ok_or("GLB answered a read nobody asked for")?;
            let Src::Glb { lane, len, .. } = item.src else {
                return Err("a zero chunk was sent to the GLB".into());
            };
            let mut words = [0i16; 4];
            for (k, w) in words.iter_mut().enumerate().take(len as usize) {
                *w = (r.data >> (16 * (lane as usize + k))) as u16 as i16;
            }
            self.ready.push_back(Chunk {
                words,
                len,
                tags: item.tags,
                next_tag: 0,
                next_word: 0,
            });
            moved = true;
        }
        // Issue the next item.
        if self.inflight.len() + self.ready.len() < self.lookahead {
            let next = self
                .items
                .front()
                .map_err(|e| format!("{}: {e}", self.name))?
                .map(|i| i.src);
            match next {
                Some(Src::Zeros(n)) if self.inflight.is_empty() => {
                    let item = self.items.pop_front().ok_or("item vanished")?;
                    self.ready.push_back(Chunk {
                        words: [0; 4],
                        len: n,
                        tags: item.tags,
                        next_tag: 0,
                        next_word: 0,
                    });
                    moved = true;
                }
                Some(Src::Glb {
                    bank,
                    entry,
                    lane,
                    len,
                    dtype,
                }) => {
                    let req = GlbReq {
                        bank,
                        entry,
                        dtype,
                        write: None,
                        lane_mask: lanes_mask(lane, len),
                        tag: 0,
                    };
                    if self.port.send(cx, req) {
                        let item = self.items.pop_front().ok_or("item vanished")?;
                        self.inflight.push_back(item);
                        moved = true;
                    }
                }
                _ => {}
            }
        }
        // (Looking at the next response also asks for a step at its arrival if it is on its
        // way as part of a run.) A chunk waiting for a credit needs no step until one comes
        // back: the credit wakes the block, and `quiet` sees it.
        self.more = (!self.ready.is_empty() && !self.blocked)
            || self.port.resp_waiting(cx)
            || (!self.items.is_empty() && self.inflight.len() + self.ready.len() < self.lookahead)
            || self.jobs.more(cx);
        Ok(Activity::from_moved(moved))
    }

    /// After a step whose wake was `Idle`, whether a step at this edge would do nothing, with
    /// nothing new on its GLB port since the edge before (the GLB knows that: see
    /// [`crate::port::InnerEnd::stirs`]): no job has arrived, and it has nothing to send or
    /// what it has waits for a credit still (none held, none usable: [`LinkTx::may_send`]).
    /// Everything else a step does follows from those or from its port (see
    /// [`GlbReader::run`]).
    pub(crate) fn quiet(&mut self, cx: &StepCtx) -> bool {
        (self.ready.is_empty() || (self.blocked && !self.out.may_send(cx))) && !self.jobs.more(cx)
    }

    pub(crate) fn holds_work(&self) -> bool {
        !self.items.is_empty()
            || !self.inflight.is_empty()
            || !self.ready.is_empty()
            || self.jobs.holds_work()
            || matches!(&self.out, ReadOut::Wire(w) if !w.is_empty())
    }

    /// The next edge while it has a chunk to send, a response to take, an item it may issue
    /// or a job to take or report; else idle until a job, a response or a credit arrives.
    pub(crate) fn wake(&self, did: Activity) -> Wake {
        if self.more {
            Wake::after(did)
        } else {
            Wake::Idle
        }
    }
}

impl Component for GlbReader<LinkEnd> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.run(cx)
    }

    fn holds_work(&self) -> bool {
        GlbReader::holds_work(self)
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        GlbReader::wake(self, did)
    }
}

/// A GLB word address, as the writer needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlbAddr {
    pub bank: u32,
    pub entry: u32,
    pub lane: u8,
    pub dtype: DataType,
}

impl GlbAddr {
    /// Word `addr` of a data type's region of `layout`.
    pub fn of(
        layout: &crate::GlbLayout,
        dtype: DataType,
        addr: u64,
    ) -> Result<Self, crate::GlbError> {
        let (bank, entry, lane) = layout.locate(dtype, addr)?;
        Ok(GlbAddr {
            bank,
            entry,
            lane: lane as u8,
            dtype,
        })
    }
}

/// Where a writer's data comes from.
pub enum WriteIn {
    /// Values, written at the next address of the job.
    Values(LinkRx<i16>),
    /// GON beats, each PE's words at the next addresses of its stream.
    Gon(LinkRx<GonBeat>),
    /// GON beats from a FIFO inside the GLB block (with the timing of a link of latency one
    /// and the same depth: see [`Wire`]), whose other end the block steps.
    GonWire(Wire<GonBeat>),
}

/// Writes what arrives into the GLB: a component of its own on a port of links
/// ([`GlbWriter::new`]), or one of the GLB's own sequencers ([`GlbWriter::inner`],
/// [`crate::Glb::add_writer`]).
pub struct GlbWriter<E: ReqEnd = LinkEnd> {
    name: String,
    port: E,
    input: WriteIn,
    /// Value mode: where the values to come go, in order (each address located as its value
    /// is written, an entry's at a time).
    words: WordQueue,
    /// GON mode: per source PE, where its words to come go.
    streams: BTreeMap<(u16, u16), WordQueue>,
    /// Writes formed and not yet sent.
    writes: VecDeque<GlbReq>,
    /// Values gathered for the entry being filled (value mode).
    gather: Gather,
    acks: u64,
    sent: u64,
    jobs: Jobs<WriteJob>,
    /// After the last step, the next edge had work without anything new arriving.
    more: bool,
}

impl GlbWriter<LinkEnd> {
    pub fn new(name: &str, req: LinkTx<GlbReq>, resp: LinkRx<GlbResp>, input: WriteIn) -> Self {
        Self::on(name, LinkEnd { req, resp }, input)
    }
}

impl GlbWriter<InnerEnd> {
    /// A writer for the GLB to step itself, on a port inside it.
    pub fn inner(name: &str, input: WriteIn) -> Self {
        Self::on(name, InnerEnd::default(), input)
    }
}

/// The entry being gathered (address, data, lanes), if any.
type Gather = Option<(GlbAddr, u64, u8)>;

/// Writes the entry gathered so far, if any.
fn flush_gather(gather: &mut Gather, writes: &mut VecDeque<GlbReq>) {
    if let Some((a, data, mask)) = gather.take() {
        writes.push_back(GlbReq {
            bank: a.bank,
            entry: a.entry,
            dtype: a.dtype,
            write: Some(data),
            lane_mask: mask,
            tag: 0,
        });
    }
}

/// Gathers `v` into the entry being filled, or writes that entry and starts `a`'s.
fn put(gather: &mut Gather, writes: &mut VecDeque<GlbReq>, a: GlbAddr, v: i16) {
    match gather {
        Some((g, data, mask)) if g.bank == a.bank && g.entry == a.entry && g.dtype == a.dtype => {
            *data |= (v as u16 as u64) << (16 * a.lane);
            *mask |= 1 << a.lane;
        }
        _ => {
            flush_gather(gather, writes);
            *gather = Some((a, (v as u16 as u64) << (16 * a.lane), 1 << a.lane));
        }
    }
}

impl<E: ReqEnd> GlbWriter<E> {
    fn on(name: &str, port: E, input: WriteIn) -> Self {
        GlbWriter {
            name: name.into(),
            port,
            input,
            words: WordQueue::default(),
            streams: BTreeMap::new(),
            writes: VecDeque::new(),
            gather: None,
            acks: 0,
            sent: 0,
            jobs: Jobs::default(),
            more: false,
        }
    }

    /// Value mode: the next values go to these words.
    pub fn expect(&mut self, words: Words) {
        self.jobs.queued += words.count;
        self.words.push_back(words);
    }

    /// GON mode: the words of PE `(bus, pe)` go to these.
    pub fn expect_from(&mut self, pe: (u16, u16), words: Words) {
        self.jobs.queued += words.count;
        self.streams.entry(pe).or_default().push_back(words);
    }

    /// The value mode's next address, located (without taking it); `None` once the job's
    /// words are used up.
    fn peek_addr(&mut self) -> Result<Option<GlbAddr>, String> {
        self.words
            .peek()
            .transpose()
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// Wires the job port and the done port (see the module docs).
    pub fn with_job_ports(mut self, jobs: LinkRx<WriteJob>, done: LinkTx<u32>) -> Self {
        self.jobs.port = Port::wired(jobs);
        self.jobs.done_port = Some(done);
        self
    }

    fn flush_gather(&mut self) {
        flush_gather(&mut self.gather, &mut self.writes);
    }

    fn put(&mut self, a: GlbAddr, v: i16) {
        put(&mut self.gather, &mut self.writes, a, v);
    }

    pub(crate) fn port(&mut self) -> &mut E {
        &mut self.port
    }

    pub(crate) fn port_ref(&self) -> &E {
        &self.port
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its GON beat FIFO inside the block, if it takes beats from one ([`WriteIn::GonWire`]).
    pub(crate) fn gon_wire(&mut self) -> Option<&mut Wire<GonBeat>> {
        match &mut self.input {
            WriteIn::GonWire(w) => Some(w),
            _ => None,
        }
    }

    /// One edge (see [`Component::step`]).
    pub(crate) fn run(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut moved = false;
        if let Some(job) = self.jobs.port.try_recv(cx) {
            for w in job.values.iter().chain(job.gon.iter().map(|(_, w)| w)) {
                w.check()
                    .map_err(|e| format!("{}: job {}: {e}", self.name, job.id))?;
            }
            let words = job.values.iter().map(|w| w.count).sum::<u64>()
                + job.gon.iter().map(|(_, w)| w.count).sum::<u64>();
            self.jobs.mark(words, job.id);
            self.words.extend(job.values);
            for (pe, w) in job.gon {
                self.streams.entry(pe).or_default().push_back(w);
            }
            moved = true;
        }
        while self.port.recv(cx).is_some() {
            self.acks += 1;
            moved = true;
        }
        if let Some(&w) = self.writes.front() {
            if self.port.send(cx, w) {
                self.writes.pop_front();
                self.sent += 1;
                moved = true;
            }
        }
        if self.writes.len() < 2 {
            match &mut self.input {
                WriteIn::Values(rx) => {
                    // Up to an entry's worth of values a cycle: one 64-bit GLB write. Take the
                    // values whose addresses share the next address's entry (of the next 4).
                    let same_entry = match self.words.peek() {
                        Some(Ok(_)) => self.words.same_entry(4),
                        Some(Err(e)) => return Err(format!("{}: {e}", self.name).into()),
                        None => 1, // a value now is an error, reported below
                    };
                    let mut got = [0i16; 4];
                    let n = rx.try_recv_many(cx, &mut got[..same_entry]);
                    for &v in &got[..n] {
                        let a = self
                            .words
                            .next_word()
                            .ok_or_else(|| {
                                format!(
                                    "{}: a value arrived with no address to write it to",
                                    self.name
                                )
                            })?
                            .map_err(|e| format!("{}: {e}", self.name))?;
                        self.put(a, v);
                        self.jobs.finished += 1;
                        moved = true;
                    }
                }
                WriteIn::Gon(_) | WriteIn::GonWire(_) => {
                    let beat = match &mut self.input {
                        WriteIn::Gon(rx) => rx.try_recv(cx),
                        WriteIn::GonWire(w) => w.pop(cx.cycle),
                        WriteIn::Values(_) => None,
                    };
                    if let Some(b) = beat {
                        // Word by word, with no allocation: each word's address from the
                        // PE's stream, then into the gather register.
                        let q = self.streams.get_mut(&(b.bus, b.pe)).ok_or_else(|| {
                            format!(
                                "{}: psums from PE ({}, {}), which has no stream",
                                self.name, b.bus, b.pe
                            )
                        })?;
                        for &v in &b.words[..b.len as usize] {
                            let a = q
                                .next_word()
                                .ok_or_else(|| {
                                    format!(
                                        "{}: PE ({}, {}) sent more psums than expected",
                                        self.name, b.bus, b.pe
                                    )
                                })?
                                .map_err(|e| format!("{}: {e}", self.name))?;
                            put(&mut self.gather, &mut self.writes, a, v);
                        }
                        self.jobs.finished += b.len as u64;
                        self.flush_gather();
                        moved = true;
                    }
                }
            }
            // In value mode an entry is written when the next value goes elsewhere or the job ends.
            if matches!(self.input, WriteIn::Values(_)) && self.gather.is_some() {
                let next = self.peek_addr()?;
                let next_elsewhere = match (&self.gather, next) {
                    (Some((g, _, _)), Some(n)) => g.bank != n.bank || g.entry != n.entry,
                    (Some(_), None) => true,
                    _ => false,
                };
                if next_elsewhere {
                    self.flush_gather();
                }
            }
        }
        let idle = self.gather.is_none() && self.writes.is_empty() && self.acks == self.sent;
        moved |= self.jobs.retire(cx, idle);
        // (Looking at the inputs' heads also asks for a step at the arrival of one on its way
        // as part of a run.)
        let input = match &mut self.input {
            WriteIn::Values(rx) => rx.peek(cx).is_some(),
            WriteIn::Gon(rx) => rx.peek(cx).is_some(),
            WriteIn::GonWire(w) => w.peek(cx.cycle).is_some(),
        };
        self.more =
            !self.writes.is_empty() || input || self.port.resp_waiting(cx) || self.jobs.more(cx);
        Ok(Activity::from_moved(moved))
    }

    /// The next edge while it has a write to send, values or psums to take, an
    /// acknowledgement or a job to take, or an id to report; else idle until a job, values,
    /// an acknowledgement or a credit arrives.
    pub(crate) fn wake(&self, did: Activity) -> Wake {
        if self.more {
            Wake::after(did)
        } else {
            Wake::Idle
        }
    }

    /// As [`GlbReader::quiet`]: no job and no input has arrived, and it has no write to send.
    pub(crate) fn quiet(&mut self, cx: &StepCtx) -> bool {
        let input = match &mut self.input {
            WriteIn::Values(rx) => rx.peek(cx).is_some(),
            WriteIn::Gon(rx) => rx.peek(cx).is_some(),
            WriteIn::GonWire(w) => w.peek(cx.cycle).is_some(),
        };
        self.writes.is_empty() && !input && !self.jobs.more(cx)
    }

    pub(crate) fn holds_work(&self) -> bool {
        let input = match &self.input {
            WriteIn::Values(rx) => rx.in_flight() > 0,
            WriteIn::Gon(rx) => rx.in_flight() > 0,
            WriteIn::GonWire(w) => !w.is_empty(),
        };
        input
            || !self.writes.is_empty()
            || self.gather.is_some()
            || self.acks < self.sent
            || self.jobs.holds_work()
            || !self.jobs.marks.is_empty()
    }
}

impl Component for GlbWriter<LinkEnd> {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.run(cx)
    }

    fn holds_work(&self) -> bool {
        GlbWriter::holds_work(self)
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        GlbWriter::wake(self, did)
    }
}
