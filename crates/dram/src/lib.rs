//! The off-chip interface: a DRAM controller on the link clock, the async FIFOs into the core
//! clock, and the run-length codec units on the core side.
//!
//! # Controller ([`DramController`], link clock)
//! Commands arrive through an async FIFO from the core. The controller accepts a command when
//! fewer than `request_queue_depth` are outstanding; its data may start `access_latency_cycles`
//! link cycles after acceptance (so the next command's latency overlaps the current burst, as a
//! DRAM with open banks would). The 64-bit bidirectional bus moves one word a link cycle, for
//! the oldest outstanding command: read words go out to the core through an async FIFO, write
//! words come in from one. With enough commands queued the bus is never idle: 8 bytes a link
//! cycle. Memory is real: a word read is the word last written. There is no bus turnaround
//! penalty between reads and writes (the papers give none).
//!
//! The FIFOs' ports on the link clock are parts of the controller, and the read-data FIFO's
//! read port is a part of [`Inbound`]: each is stepped by the component beside it over a wire
//! with the timing of the link it stands for ([`rowsim_kernel::async_fifo`]), so the words
//! cross at the same edges with fewer steps.
//!
//! # Codec units (core clock)
//! Feature maps cross the bus run-length coded ([`rowsim_datapath::rlc`]): [`Inbound`]
//! decodes coded read data into values (and unpacks raw data), [`Outbound`] codes values and
//! writes them. Filters and a network's first input cross raw (4 values a word, word 0 in the
//! low bits).
//!
//! # Counters
//! Bytes on the bus per direction and data type, coded and raw bus words, busy and idle link
//! cycles.

use std::collections::VecDeque;
use std::fmt;

use rowsim_kernel::{
    Activity, Component, Fault, FifoReadEnd, FifoReadPart, FifoWriteEnd, FifoWritePart, LinkRx,
    LinkTx, Port, SignalId, SignalRegistry, StepCtx, TraceError, TraceFrame, Wake,
};

pub use rowsim_types::DataType;

/// A DRAM command: `len` bus words at bus-word address `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DramCmd {
    pub id: u32,
    pub write: bool,
    pub addr: u64,
    pub len: u32,
    pub kind: DataType,
    /// Whether the words are RLC coded (counted apart from raw words).
    pub coded: bool,
}

/// A word of read data on its way to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DramData {
    pub id: u32,
    pub word: u64,
    /// The last word of its command.
    pub last: bool,
}

impl rowsim_kernel::TraceValue for DramData {
    const WIDTH: u32 = 64;
    fn trace_bits(&self) -> u64 {
        self.word
    }
}

impl rowsim_kernel::TraceValue for DramCmd {
    const WIDTH: u32 = 32;
    fn trace_bits(&self) -> u64 {
        self.id as u64
    }
}

/// A bad command; names the controller and the numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DramError(pub String);

impl fmt::Display for DramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DramError {}

/// Bus counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DramCounters {
    /// Bytes read and written, by [`DataType`] as usize.
    pub read_bytes: [u64; 3],
    pub write_bytes: [u64; 3],
    pub coded_words: u64,
    pub raw_words: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub commands: u64,
}

#[derive(Clone, Copy, Debug)]
struct Active {
    cmd: DramCmd,
    ready_at: u64,
    done: u32,
}

#[derive(Clone, Copy, Default)]
struct Probe {
    rd_req: bool,
    wr_req: bool,
    bus_valid: bool,
    bus_write: bool,
    bus_data: u64,
    bus_addr: u64,
}

/// The controller's timing (from the hw-config's `[dram]` table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DramTiming {
    /// Link cycles from accepting a command to its first data word.
    pub latency_cycles: u32,
    /// Commands outstanding at most.
    pub queue_depth: u32,
    pub bus_bits: u32,
}

impl DramTiming {
    pub fn from_config(hw: &rowsim_config::HwConfig) -> Self {
        DramTiming {
            latency_cycles: hw.dram.access_latency_cycles,
            queue_depth: hw.dram.request_queue_depth,
            bus_bits: hw.dram.bus_width_bits,
        }
    }
}

/// The controller's link-clock ends: the ports on its side of the async FIFOs that bring
/// commands and write data in and take read data out, which it steps itself (see
/// [`rowsim_kernel::async_fifo`]).
pub struct ControllerPorts {
    pub cmds: FifoReadPart<DramCmd>,
    pub wdata: FifoReadPart<u64>,
    pub rdata: FifoWritePart<DramData>,
}

/// The DRAM controller, stepped on the link clock, with the ports of its async FIFOs on that
/// clock (see [`ControllerPorts`]).
pub struct DramController {
    name: String,
    memory: Vec<u64>,
    latency: u64,
    queue_depth: usize,
    bus_bytes: u64,
    cmds: FifoReadEnd<DramCmd>,
    wdata: FifoReadEnd<u64>,
    /// The read-data FIFO's write port and the wire of read words into it.
    rdata: FifoWriteEnd<DramData>,
    active: VecDeque<Active>,
    /// The last step moved a word or took a command.
    worked: bool,
    /// The last step left a FIFO port work for the next edge.
    ports_next: bool,
    counters: DramCounters,
    probe: Probe,
    sig: Vec<SignalId>,
}

impl DramController {
    /// A controller over `memory` (bus words).
    pub fn new(name: &str, memory: Vec<u64>, timing: DramTiming, ports: ControllerPorts) -> Self {
        DramController {
            name: name.into(),
            memory,
            latency: timing.latency_cycles as u64,
            queue_depth: timing.queue_depth.max(1) as usize,
            bus_bytes: (timing.bus_bits / 8) as u64,
            cmds: FifoReadEnd::new(ports.cmds),
            wdata: FifoReadEnd::new(ports.wdata),
            rdata: FifoWriteEnd::new(ports.rdata),
            active: VecDeque::new(),
            worked: false,
            ports_next: false,
            counters: DramCounters::default(),
            probe: Probe::default(),
            sig: Vec::new(),
        }
    }

    pub fn counters(&self) -> &DramCounters {
        &self.counters
    }

    /// The memory, for loading before a run and checking after it.
    pub fn memory(&self) -> &[u64] {
        &self.memory
    }

    /// The memory, to change before a run (a test corrupting a stream).
    pub fn memory_mut(&mut self) -> &mut [u64] {
        &mut self.memory
    }
}

impl Component for DramController {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        // The FIFOs' read ports (their wires make the order of the parts within an edge
        // irrelevant, as links between components do).
        let (cmd_did, cmd_next) = self.cmds.step(cx)?;
        let (wdata_did, wdata_next) = self.wdata.step(cx)?;
        let mut moved = false;
        self.probe.rd_req = false;
        self.probe.wr_req = false;
        self.probe.bus_valid = false;
        // The bus: one word for the oldest command whose data may start.
        if let Some(a) = self.active.front_mut() {
            if cx.cycle >= a.ready_at {
                let at = a.cmd.addr + a.done as u64;
                let moved_word = if a.cmd.write {
                    match self.wdata.wire.pop(cx.cycle) {
                        Some(w) => {
                            self.memory[at as usize] = w;
                            Some(w)
                        }
                        None => None,
                    }
                } else {
                    let w = self.memory[at as usize];
                    let last = a.done + 1 == a.cmd.len;
                    self.rdata
                        .wire
                        .push(
                            cx.cycle,
                            DramData {
                                id: a.cmd.id,
                                word: w,
                                last,
                            },
                        )
                        .ok()
                        .map(|_| w)
                };
                if let Some(w) = moved_word {
                    let k = a.cmd.kind as usize;
                    if a.cmd.write {
                        self.counters.write_bytes[k] += self.bus_bytes;
                    } else {
                        self.counters.read_bytes[k] += self.bus_bytes;
                    }
                    if a.cmd.coded {
                        self.counters.coded_words += 1;
                    } else {
                        self.counters.raw_words += 1;
                    }
                    self.probe.bus_valid = true;
                    self.probe.bus_write = a.cmd.write;
                    self.probe.bus_data = w;
                    self.probe.bus_addr = at;
                    a.done += 1;
                    if a.done == a.cmd.len {
                        self.active.pop_front();
                    }
                    moved = true;
                }
            }
        }
        if self.probe.bus_valid {
            self.counters.busy_cycles += 1;
        } else {
            self.counters.idle_cycles += 1;
        }
        // Accept a command into the queue.
        if self.active.len() < self.queue_depth {
            if let Some(cmd) = self.cmds.wire.pop(cx.cycle) {
                if cmd.len == 0 || cmd.addr + cmd.len as u64 > self.memory.len() as u64 {
                    return Err(Box::new(DramError(format!(
                        "{}: command {}: {} of {} words at address {} is outside the {}-word memory",
                        self.name,
                        cmd.id,
                        if cmd.write { "write" } else { "read" },
                        cmd.len,
                        cmd.addr,
                        self.memory.len()
                    ))));
                }
                self.active.push_back(Active {
                    cmd,
                    ready_at: cx.cycle + self.latency,
                    done: 0,
                });
                self.counters.commands += 1;
                self.probe.rd_req = !cmd.write;
                self.probe.wr_req = cmd.write;
                moved = true;
            }
        }
        self.worked = moved;
        // The read-data FIFO's write port.
        let (rdata_did, rdata_next) = self.rdata.step(cx)?;
        // The ports' work at the next edge (see `FifoReadEnd::next`, `FifoWriteEnd::step`),
        // given what the controller takes at the next edge: a command while its queue has
        // room, write data once the oldest command is a write whose data may start.
        let takes_cmd = self.active.len() < self.queue_depth;
        let takes_wdata = self
            .active
            .front()
            .is_some_and(|a| a.cmd.write && a.ready_at <= cx.cycle + 1);
        self.ports_next = cmd_next
            || wdata_next
            || self.cmds.next(cx, takes_cmd)
            || self.wdata.next(cx, takes_wdata)
            || rdata_next;
        moved |= cmd_did.moved() || wdata_did.moved() || rdata_did.moved();
        // Waiting out an access latency is progress too.
        moved |= !self.active.is_empty();
        Ok(Activity::from_moved(moved))
    }

    fn holds_work(&self) -> bool {
        !self.active.is_empty()
            || self.cmds.holds_work()
            || self.wdata.holds_work()
            || self.rdata.holds_work()
    }

    /// Nothing moved: waiting for a command, write data, a credit, or the oldest command's
    /// latency (a step at the edge its data may start); or a FIFO port has work (see `step`).
    fn wake(&self, cx: &StepCtx, _did: Activity) -> Wake {
        if self.worked || self.ports_next {
            return Wake::Next;
        }
        match self.active.front() {
            Some(a) if a.ready_at > cx.cycle => Wake::IdleFor(a.ready_at - cx.cycle),
            _ => Wake::Idle,
        }
    }

    /// The bus idled at every skipped edge.
    fn settle(&mut self, _last: &StepCtx, edges: u64) {
        self.counters.idle_cycles += edges;
        self.probe.rd_req = false;
        self.probe.wr_req = false;
        self.probe.bus_valid = false;
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        let n = self.name.clone();
        self.sig = vec![
            s.signal(&n, "rd_req", 1)?,
            s.signal(&n, "wr_req", 1)?,
            s.signal(&n, "bus_valid", 1)?,
            s.signal(&n, "bus_write", 1)?,
            s.signal(&n, "bus_data", 64)?,
            s.signal(&n, "bus_addr", 32)?,
            s.signal(&n, "queue_level", 8)?,
        ];
        self.cmds.port.declare(s)?;
        self.wdata.port.declare(s)?;
        self.rdata.port.declare(s)
    }

    fn trace(&self, f: &mut TraceFrame) {
        let p = &self.probe;
        f.set_bool(self.sig[0], p.rd_req);
        f.set_bool(self.sig[1], p.wr_req);
        f.set_bool(self.sig[2], p.bus_valid);
        f.set_bool(self.sig[3], p.bus_write);
        f.set(self.sig[4], p.bus_data);
        f.set(self.sig[5], p.bus_addr & 0xFFFF_FFFF);
        f.set(self.sig[6], self.active.len().min(255) as u64);
        self.cmds.port.trace(f);
        self.wdata.port.trace(f);
        self.rdata.port.trace(f);
    }
}

/// Read data into values, on the core clock: each expected stream (in command order) is
/// RLC-decoded (feature maps) or raw-unpacked, `lanes` values a word (filters, a first layer's
/// input).
pub struct Inbound {
    name: String,
    fmt: rowsim_datapath::rlc::RlcFormat,
    /// The read-data FIFO's read port, which it steps itself, and the wire from it.
    input: FifoReadEnd<DramData>,
    output: LinkTx<i16>,
    /// (values, coded) of the streams to come, in command order.
    streams: VecDeque<(usize, bool)>,
    current: Option<(rowsim_datapath::rlc::RlcDecoder, bool, usize)>,
    pending: VecDeque<i16>,
    lanes: usize,
    job_port: Port<Vec<(usize, bool)>>,
    /// After the last step, it had values to send or DRAM data already arrived: the next
    /// edge may move without anything new arriving.
    more: bool,
    /// The last step left the FIFO's read port work for the next edge.
    port_next: bool,
}

impl Inbound {
    pub fn new(
        name: &str,
        fmt: rowsim_datapath::rlc::RlcFormat,
        input: FifoReadPart<DramData>,
        output: LinkTx<i16>,
        lanes: usize,
    ) -> Self {
        Inbound {
            name: name.into(),
            fmt,
            input: FifoReadEnd::new(input),
            output,
            streams: VecDeque::new(),
            current: None,
            pending: VecDeque::new(),
            lanes,
            job_port: Port::default(),
            more: false,
            port_next: false,
        }
    }

    pub fn expect(&mut self, values: usize, coded: bool) {
        self.streams.push_back((values, coded));
    }

    /// Wires the port on which the top-level controller describes the streams it has asked
    /// DRAM for, `(values, coded)` in command order, as it issues the commands.
    pub fn with_job_port(mut self, rx: LinkRx<Vec<(usize, bool)>>) -> Self {
        self.job_port = Port::wired(rx);
        self
    }

    /// After a word was decoded at this edge: its values, if the next edge's step would send
    /// them all (no more than a bus word's worth, and credits for all usable now: that step
    /// finds at least these), are sent now as at that edge (running ahead, see
    /// [`StepCtx::ahead`]), so that edge needs no step for them. What else that step would do
    /// (take a job, a word, or a slot for the FIFO's port) wakes the unit as before.
    fn send_ahead(&mut self, cx: &StepCtx) {
        let n = self.pending.len();
        let next = cx.cycle + 1;
        if cx.ahead
            && n > 0
            && n <= self.lanes
            && self.output.credits(cx) as usize >= n
            && self
                .output
                .try_send_all_at(cx, next, self.pending.make_contiguous())
        {
            self.pending.clear();
        }
    }
}

impl Component for Inbound {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        // The FIFO's read port (its wire makes the order of the parts within an edge
        // irrelevant, as a link between components does).
        let (port_did, port_next) = self.input.step(cx)?;
        let mut moved = port_did.moved();
        if let Some(jobs) = self.job_port.try_recv(cx) {
            self.streams.extend(jobs);
            moved = true;
        }
        // Up to a bus word's worth of values a cycle (`lanes`: the GLB's write width), as many
        // as the loader has room for.
        let n = self.lanes.min(self.pending.len());
        if n > 0 {
            let sent = self
                .output
                .try_send_many(cx, &self.pending.make_contiguous()[..n]);
            self.pending.drain(..sent);
            moved |= sent > 0;
        }
        if self.pending.is_empty() {
            if let Some(d) = self.input.wire.pop(cx.cycle) {
                if self.current.is_none() {
                    let (n, coded) = self.streams.pop_front().ok_or_else(|| {
                        format!("{}: DRAM data with no stream expected", self.name)
                    })?;
                    self.current =
                        Some((rowsim_datapath::rlc::RlcDecoder::new(self.fmt, n), coded, n));
                }
                let (dec, coded, left) = self.current.as_mut().ok_or("stream lost")?;
                if *coded {
                    let pending = &mut self.pending;
                    dec.push(d.word, |v| pending.push_back(v))
                        .map_err(|e| format!("{}: {e}", self.name))?;
                    if d.last {
                        dec.finish().map_err(|e| format!("{}: {e}", self.name))?;
                    }
                } else {
                    let take = (*left).min(self.lanes);
                    for k in 0..take {
                        self.pending.push_back((d.word >> (16 * k)) as u16 as i16);
                    }
                    *left -= take;
                }
                if d.last {
                    self.current = None;
                }
                moved = true;
                self.send_ahead(cx);
            }
        }
        // The port's work at the next edge: a word to move that has arrived, or one waiting
        // in the FIFO for the slot this edge freed. (Its look at the FIFO also asks for a step
        // at the arrival of a word on its way; a word pushed into the wire is DRAM data to
        // take, below.)
        self.port_next = port_next || self.input.next(cx, false);
        self.more =
            !self.pending.is_empty() || !self.input.wire.is_empty() || self.job_port.ready(cx);
        Ok(Activity::from_moved(moved))
    }

    fn holds_work(&self) -> bool {
        !self.pending.is_empty() || self.input.holds_work() || self.job_port.pending()
    }

    /// The next edge while it has values to send or DRAM data to take, or the FIFO's read port
    /// has work; else idle until streams, DRAM data or room at the GLB loader arrive.
    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        if self.port_next {
            Wake::Next
        } else if self.more {
            Wake::after(did)
        } else {
            Wake::Idle
        }
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.input.port.declare(s)
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.input.port.trace(f);
    }
}

/// Codes feature-map rows and writes them to DRAM, on the core clock: for each expected stream
/// (values, DRAM address) it takes one value a cycle; once the stream's values are in, it codes
/// them, and the stream's write command (only now is the coded length known) and its coded
/// words join the queues to DRAM, which take one command and one bus word a cycle (the command
/// and write-data FIFOs are separate). Without coding ([`Outbound::raw`]) it packs the values
/// four to a bus word, as raw streams are read.
///
/// # Write buffers
/// The coder holds `buffers` streams ([`Outbound::with_buffers`], the config's
/// `dram.write_buffers`): it takes the next stream's values while the words of up to
/// `buffers - 1` coded streams are still going out, and a buffer is free once its command and
/// its last word have left. With one, a stream's values wait until the stream before it has
/// left entirely (gathering and sending alternate); with two (ping-pong: eyeriss-v1's choice,
/// the papers being silent on the coder's buffering), the values of a row come in while the
/// row before it crosses the bus, so the readout is held only when the bus is slower than the
/// values (or busy with reads: it serves commands in order), not by the alternation.
pub struct Outbound {
    name: String,
    fmt: rowsim_datapath::rlc::RlcFormat,
    /// Whether rows are RLC coded (else packed raw).
    coded: bool,
    input: LinkRx<i16>,
    cmd: LinkTx<DramCmd>,
    wdata: LinkTx<u64>,
    streams: VecDeque<(usize, u64)>,
    gathering: Vec<i16>,
    /// Streams the coder may hold: the one being gathered and those not yet gone.
    buffers: usize,
    /// Coded streams not yet gone, oldest first: the words each has still to send. Commands
    /// and words go in stream order, so the commands not yet sent (`cmds`) are those of the
    /// last `cmds.len()` of them.
    queued: VecDeque<u32>,
    /// Commands of coded streams not yet sent, in order.
    cmds: VecDeque<DramCmd>,
    words: VecDeque<u64>,
    next_id: u32,
    /// (address, coded words) of every stream written.
    pub written: Vec<(u64, u32)>,
    job_port: Port<Vec<(usize, u64)>>,
}

impl Outbound {
    pub fn new(
        name: &str,
        fmt: rowsim_datapath::rlc::RlcFormat,
        input: LinkRx<i16>,
        cmd: LinkTx<DramCmd>,
        wdata: LinkTx<u64>,
    ) -> Self {
        Outbound {
            name: name.into(),
            fmt,
            coded: true,
            input,
            cmd,
            wdata,
            streams: VecDeque::new(),
            gathering: Vec::new(),
            buffers: 1,
            queued: VecDeque::new(),
            cmds: VecDeque::new(),
            words: VecDeque::new(),
            next_id: 1 << 30,
            written: Vec::new(),
            job_port: Port::default(),
        }
    }

    /// Writes rows raw, four values to a 64-bit bus word (`rlc.code_feature_maps = false`).
    pub fn raw(mut self) -> Self {
        self.coded = false;
        self
    }

    /// Holds up to `buffers` streams (at least one): see the type's docs.
    pub fn with_buffers(mut self, buffers: usize) -> Self {
        self.buffers = buffers.max(1);
        self
    }

    pub fn expect(&mut self, values: usize, addr: u64) {
        self.streams.push_back((values, addr));
    }

    /// Wires the port on which the top-level controller sends the rows to write, `(values,
    /// DRAM address)` in the order their values will arrive.
    pub fn with_job_port(mut self, rx: LinkRx<Vec<(usize, u64)>>) -> Self {
        self.job_port = Port::wired(rx);
        self
    }

    /// Frees the buffers of the oldest streams whose command and words have all gone.
    fn release(&mut self) {
        while self.queued.len() > self.cmds.len() && self.queued.front() == Some(&0) {
            self.queued.pop_front();
        }
    }
}

impl Component for Outbound {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut moved = false;
        if let Some(jobs) = self.job_port.try_recv(cx) {
            self.streams.extend(jobs);
            moved = true;
        }
        if let Some(&c) = self.cmds.front() {
            if self.cmd.try_send(cx, c).is_ok() {
                self.cmds.pop_front();
                moved = true;
            }
        }
        if let Some(&w) = self.words.front() {
            if self.wdata.try_send(cx, w).is_ok() {
                self.words.pop_front();
                let left = self
                    .queued
                    .iter_mut()
                    .find(|left| **left > 0)
                    .ok_or("stream lost")?;
                *left -= 1;
                moved = true;
            }
        }
        self.release();
        if self.queued.len() < self.buffers {
            if let Some(&(n, addr)) = self.streams.front() {
                if self.gathering.len() < n {
                    if let Some(v) = self.input.try_recv(cx) {
                        self.gathering.push(v);
                        moved = true;
                    }
                }
                if self.gathering.len() == n {
                    let coded = if self.coded {
                        rowsim_datapath::rlc::encode(&self.fmt, &self.gathering)
                    } else {
                        pack_raw(&self.gathering, 4)
                    };
                    self.gathering.clear();
                    self.streams.pop_front();
                    let len = u32::try_from(coded.len()).map_err(|_| {
                        format!(
                            "{}: a stream of {n} values codes to over 2^32 words",
                            self.name
                        )
                    })?;
                    self.cmds.push_back(DramCmd {
                        id: self.next_id,
                        write: true,
                        addr,
                        len,
                        kind: DataType::Psum,
                        coded: self.coded,
                    });
                    // Write ids count up from 2^30 (the controller's reads count from 0); they
                    // only tag the command on the wire (its trace) and wrap, as a counter would.
                    self.next_id = self.next_id.wrapping_add(1);
                    self.queued.push_back(len);
                    self.written.push((addr, len));
                    self.words.extend(coded);
                    moved = true;
                }
            } else if self.input.in_flight() > 0 {
                return Err(format!("{}: ofmap values with no stream expected", self.name).into());
            }
        }
        Ok(Activity::from_moved(moved))
    }

    fn holds_work(&self) -> bool {
        !self.streams.is_empty()
            || !self.queued.is_empty()
            || self.input.in_flight() > 0
            || self.job_port.pending()
    }

    /// Idle: waiting for streams, ofmap values or a credit.
    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        Wake::after(did)
    }
}

/// Packs raw values into bus words (4 16-bit values a 64-bit word, value 0 in the low bits).
pub fn pack_raw(values: &[i16], lanes: usize) -> Vec<u64> {
    values
        .chunks(lanes)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u64, |acc, (i, &v)| acc | (v as u16 as u64) << (16 * i))
        })
        .collect()
}

/// Unpacks `n` raw values from bus words.
pub fn unpack_raw(words: &[u64], lanes: usize, n: usize) -> Vec<i16> {
    words
        .iter()
        .flat_map(|&w| (0..lanes).map(move |i| (w >> (16 * i)) as u16 as i16))
        .take(n)
        .collect()
}

/// The core-side ends of a DRAM system: links for commands and write data, and the read-data
/// FIFO's read port for the component that takes the words to step ([`Inbound`]; a component
/// that takes them over a link puts the port before it as a component of its own,
/// [`rowsim_kernel::AsyncFifoRead::new`]).
pub struct DramPorts {
    pub cmd: LinkTx<DramCmd>,
    pub wdata: LinkTx<u64>,
    pub rdata: FifoReadPart<DramData>,
}

/// Adds a DRAM controller on `link` and the async FIFOs that join it to `core` (commands and
/// write data in, read data out; depth and synchronizer stages from the config) under `scope`
/// (e.g. `top.dram`). Returns the core-side ends (see [`DramPorts`]) and the controller's id.
pub fn build(
    sched: &mut rowsim_kernel::Scheduler,
    core: rowsim_kernel::Clock,
    link: rowsim_kernel::Clock,
    hw: &rowsim_config::HwConfig,
    memory: Vec<u64>,
    scope: &str,
) -> Result<(DramPorts, rowsim_kernel::ComponentId), rowsim_kernel::LinkError> {
    use rowsim_kernel::AsyncFifo;
    let (depth, stages) = (hw.dram.async_fifo_depth, hw.dram.sync_stages);
    // The FIFOs' ports on the link clock are the controller's parts: it steps them itself.
    let (cmd, cmds) = AsyncFifo::insert_write_port(
        sched,
        &format!("{scope}.cmd_fifo"),
        core,
        link,
        depth,
        stages,
    )?;
    let (wdata_core, wdata) = AsyncFifo::insert_write_port(
        sched,
        &format!("{scope}.wdata_fifo"),
        core,
        link,
        depth,
        stages,
    )?;
    // The read-data FIFO's read port is the part of whoever takes the words on the core
    // clock (the chip's `Inbound`).
    let (rdata_port, rdata) =
        AsyncFifo::parts(&format!("{scope}.rdata_fifo"), link, core, depth, stages)?;
    let ctrl = DramController::new(
        scope,
        memory,
        DramTiming::from_config(hw),
        ControllerPorts {
            cmds,
            wdata,
            rdata: rdata_port,
        },
    );
    let id = sched.add(link, ctrl);
    Ok((
        DramPorts {
            cmd,
            wdata: wdata_core,
            rdata,
        },
        id,
    ))
}
