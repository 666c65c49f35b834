//! The global buffer: banks of `bank_entries x bank_width_bits`, the shared ones given wholly
//! to ifmaps or psums per layer, plus filter banks.
//!
//! # Port model
//! Each bank serves `ports_per_bank` accesses (of one entry, `bank_width_bits` wide) per core
//! cycle, reads and writes alike ([`GlbPorts::Shared`]), or `ports_per_bank` reads and as many
//! writes ([`GlbPorts::Split`], a two-port SRAM). Requesters reach the GLB through ports, each
//! a request FIFO and a response FIFO ([`port`]); each cycle the GLB takes the head request of
//! each requester in round-robin order, starting one past the last requester served first, and
//! serves it if its bank still has a port of its kind free this cycle and the requester's
//! response FIFO has room; otherwise the request waits (a bank conflict, counted). A read
//! returns the entry one cycle later; a write is acknowledged the same way.
//!
//! # Sequencers inside the block
//! The GLB's controller has its own datapaths, the sequencers ([`sequencer`]), which stream a
//! job's entries to the NoC, the readout path or into the banks. On the chip they are part of
//! the GLB block, on wires inside it; here they are parts of the [`Glb`] component
//! ([`Glb::add_reader`], [`Glb::add_writer`]), which steps them at its own edges, on ports whose
//! FIFOs ([`port::Wire`]) have the timing of the links a separate requester uses (one cycle
//! each way, [`PORT_FIFO_DEPTH`] deep). Their cycles are those they would have as components of
//! their own (a test wires both ways and compares); the block is stepped once an edge for all
//! of them rather than once for each, and their ports cost no link operations. Requesters that
//! are components of their own ([`GlbPort`]) are served as well: they come first in the
//! round-robin order, the sequencers after them in the order they were added.
//!
//! # Counters
//! Reads and writes in 16-bit words per data type (an access carries up to `bank_width_bits /
//! 16` words and says how many are meant), accesses per bank, conflict cycles.

use std::fmt;

use rowsim_config::{GlbPorts, HwConfig};
use rowsim_kernel::{
    Activity, Component, Fault, SignalId, SignalRegistry, StepCtx, TraceError, TraceFrame, Wake,
};

pub mod desc;
pub mod port;
pub mod sequencer;

use port::ServeEnd;
pub use port::{GlbPort, InnerEnd, LinkEnd, ReqEnd, PORT_FIFO_DEPTH};
use sequencer::{GlbReader, GlbWriter};

pub use rowsim_types::DataType;

/// A layer's assignment of banks. Shared banks `0..ifmap_banks` hold ifmaps, the next
/// `psum_banks` psums; filter banks follow the shared ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlbLayout {
    pub shared_banks: u32,
    pub ifmap_banks: u32,
    pub psum_banks: u32,
    pub filter_banks: u32,
    pub bank_entries: u32,
    /// 16-bit words per entry.
    pub lanes: u32,
}

/// An allocation or access that does not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlbError(pub String);

impl fmt::Display for GlbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GlbError {}

impl GlbLayout {
    /// Banks for `ifmap_words` and `psum_words` (whole banks each) and `filter_words`.
    pub fn allocate(
        layer: &str,
        ifmap_words: u64,
        psum_words: u64,
        filter_words: u64,
        hw: &HwConfig,
    ) -> Result<Self, GlbError> {
        let g = &hw.glb;
        if g.bank_width_bits > 64 {
            return Err(GlbError(format!(
                "glb.bank_width_bits is {}: this GLB model holds entries of at most 64 bits",
                g.bank_width_bits
            )));
        }
        let lanes = g.bank_width_bits / hw.datapath.word_bits;
        let bank_words = g.bank_entries as u64 * lanes as u64;
        let ib = ifmap_words.div_ceil(bank_words);
        let pb = psum_words.div_ceil(bank_words);
        if ib + pb > g.shared_banks as u64 {
            return Err(GlbError(format!(
                "layer `{layer}`: ifmaps need {ib} banks ({ifmap_words} words) and psums {pb} banks ({psum_words} words); the GLB has {} shared banks of {bank_words} words",
                g.shared_banks
            )));
        }
        let fb = filter_words.div_ceil(bank_words);
        if fb > g.filter_banks as u64 {
            return Err(GlbError(format!(
                "layer `{layer}`: filters need {fb} banks ({filter_words} words); the GLB has {} filter banks of {bank_words} words",
                g.filter_banks
            )));
        }
        Ok(GlbLayout {
            shared_banks: g.shared_banks,
            ifmap_banks: ib as u32,
            psum_banks: pb as u32,
            filter_banks: g.filter_banks,
            bank_entries: g.bank_entries,
            lanes,
        })
    }

    fn region(&self, dtype: DataType) -> (u32, u32) {
        match dtype {
            DataType::Ifmap => (0, self.ifmap_banks),
            DataType::Psum => (self.ifmap_banks, self.psum_banks),
            DataType::Filter => (self.shared_banks, self.filter_banks),
        }
    }

    /// The (bank, entry, lane) of word `addr` of a data type's region: consecutive words fill an
    /// entry's lanes, then the next entry, then the next bank.
    pub fn locate(&self, dtype: DataType, addr: u64) -> Result<(u32, u32, u32), GlbError> {
        let (first, banks) = self.region(dtype);
        let lanes = self.lanes as u64;
        let per_bank = self.bank_entries as u64 * lanes;
        // Shifts and masks where the sizes are powers of two (as on eyeriss-v1), a division
        // otherwise: the same quotients and remainders.
        let split = |v: u64, d: u64| {
            if d.is_power_of_two() {
                (v >> d.trailing_zeros(), v & (d - 1))
            } else {
                (v / d, v % d)
            }
        };
        let (bank, within) = split(addr, per_bank);
        if bank >= banks as u64 {
            return Err(GlbError(format!(
                "glb: {dtype} word {addr} is outside the {dtype} region ({banks} banks of {per_bank} words)"
            )));
        }
        let (entry, lane) = split(within, lanes);
        Ok((first + bank as u32, entry as u32, lane as u32))
    }

    /// Banks in all: shared then filter.
    pub fn banks(&self) -> u32 {
        self.shared_banks + self.filter_banks
    }

    /// The data type a bank holds in this layout, if any.
    pub fn bank_type(&self, bank: u32) -> Option<DataType> {
        if bank < self.ifmap_banks {
            Some(DataType::Ifmap)
        } else if bank < self.ifmap_banks + self.psum_banks {
            Some(DataType::Psum)
        } else if bank >= self.shared_banks && bank < self.banks() {
            Some(DataType::Filter)
        } else {
            None
        }
    }
}

/// An access to one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlbReq {
    pub bank: u32,
    pub entry: u32,
    pub dtype: DataType,
    /// `Some(data)` writes the entry (the lanes in `lane_mask`); `None` reads it.
    pub write: Option<u64>,
    /// Lanes meant (bit per 16-bit lane); their count is what the counters add.
    pub lane_mask: u8,
    /// The requester's own tag, returned with the response.
    pub tag: u32,
}

/// The answer to a request: the entry read (or written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlbResp {
    pub data: u64,
    pub tag: u32,
}

/// Words read and written per data type, and conflicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlbCounters {
    /// Indexed by [`DataType`] as usize.
    pub reads: [u64; 3],
    pub writes: [u64; 3],
    pub conflict_cycles: u64,
}

#[derive(Clone, Copy, Default)]
struct BankProbe {
    rd: bool,
    wr: bool,
    /// The last access's entry (shared ports), the last read's and write's (split).
    addr: u32,
    rd_addr: u32,
    wr_addr: u32,
    wr_data: u64,
    rd_data: u64,
}

/// A sequencer the GLB steps itself.
enum Sequencer {
    Reader(GlbReader<InnerEnd>),
    Writer(GlbWriter<InnerEnd>),
}

impl Sequencer {
    fn name(&self) -> &str {
        match self {
            Sequencer::Reader(r) => r.name(),
            Sequencer::Writer(w) => w.name(),
        }
    }

    fn port(&mut self) -> &mut InnerEnd {
        match self {
            Sequencer::Reader(r) => r.port(),
            Sequencer::Writer(w) => w.port(),
        }
    }

    fn port_ref(&self) -> &InnerEnd {
        match self {
            Sequencer::Reader(r) => r.port_ref(),
            Sequencer::Writer(w) => w.port_ref(),
        }
    }

    /// One edge; whether it needs the next (see [`Component::wake`]).
    fn run(&mut self, cx: &StepCtx) -> Result<(Activity, bool), Fault> {
        let (did, wake) = match self {
            Sequencer::Reader(r) => {
                let did = r.run(cx)?;
                (did, r.wake(did))
            }
            Sequencer::Writer(w) => {
                let did = w.run(cx)?;
                (did, w.wake(did))
            }
        };
        Ok((did, matches!(wake, Wake::Next)))
    }

    /// See [`GlbReader::quiet`].
    fn quiet(&mut self, cx: &StepCtx) -> bool {
        match self {
            Sequencer::Reader(r) => r.quiet(cx),
            Sequencer::Writer(w) => w.quiet(cx),
        }
    }

    fn holds_work(&self) -> bool {
        let port = self.port_ref();
        !port.req.is_empty()
            || !port.resp.is_empty()
            || match self {
                Sequencer::Reader(r) => r.holds_work(),
                Sequencer::Writer(w) => w.holds_work(),
            }
    }
}

/// The most ports a GLB serves, its own sequencers' and those of links together: one bit
/// each of a step's masks.
pub const MAX_PORTS: usize = 64;

/// Visits the set bits of `mask` (ports) in round-robin order from port `first` (< 64): those
/// from `first` up, then those below it.
#[inline]
fn round_robin(
    mask: u64,
    first: usize,
    mut visit: impl FnMut(usize) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let from_first = u64::MAX << first;
    for mut sweep in [mask & from_first, mask & !from_first] {
        while sweep != 0 {
            visit(sweep.trailing_zeros() as usize)?;
            sweep &= sweep - 1;
        }
    }
    Ok(())
}

/// What the arbiter did with a port's head at an edge.
enum Served {
    /// No request had arrived.
    Nothing,
    /// A request waits: its bank's port is taken, or its response FIFO full.
    Refused,
    /// Served; whether another request waits behind it.
    Done { more: bool },
}

/// The banks and their ports' use this cycle.
struct Banks {
    name: String,
    layout: GlbLayout,
    ports_per_bank: u32,
    port_kind: GlbPorts,
    data: Vec<Vec<u64>>,
    /// Ports of each bank taken this cycle: by any access (shared), by reads (split).
    used: Vec<u32>,
    /// Write ports of each bank taken this cycle (split).
    used_wr: Vec<u32>,
    /// The banks whose ports the last step took (the counts to clear at the next).
    touched: Vec<usize>,
    counters: GlbCounters,
    /// What a trace shows of each bank (kept only when one is taken).
    probe: Vec<BankProbe>,
    traced: bool,
}

impl Banks {
    /// Whether the request addresses an entry of a bank of its data type (else the error
    /// that says how it does not: [`Banks::refuse`]).
    #[inline]
    fn check(&self, r: &GlbReq) -> Result<(), GlbError> {
        if r.bank < self.layout.banks()
            && r.entry < self.layout.bank_entries
            && self.layout.bank_type(r.bank) == Some(r.dtype)
        {
            Ok(())
        } else {
            Err(self.refuse(r))
        }
    }

    /// What is wrong with a request [`Banks::check`] refuses: the first of its bank, its
    /// entry, its bank's data type.
    #[cold]
    #[inline(never)]
    fn refuse(&self, r: &GlbReq) -> GlbError {
        if r.bank >= self.layout.banks() {
            return GlbError(format!(
                "{}: bank {} does not exist (the GLB has {})",
                self.name,
                r.bank,
                self.layout.banks()
            ));
        }
        if r.entry >= self.layout.bank_entries {
            return GlbError(format!(
                "{}: address {} outside bank {} ({} entries)",
                self.name, r.entry, r.bank, self.layout.bank_entries
            ));
        }
        GlbError(format!(
            "{}: a {} access to bank {}, which this layer gives to {}",
            self.name,
            r.dtype,
            r.bank,
            self.layout
                .bank_type(r.bank)
                .map_or("nothing".to_string(), |t| t.to_string())
        ))
    }

    /// Frees every bank's ports for a new cycle.
    fn new_cycle(&mut self) {
        for &b in &self.touched {
            self.used[b] = 0;
            self.used_wr[b] = 0;
        }
        self.touched.clear();
        if self.traced {
            for p in self.probe.iter_mut() {
                p.rd = false;
                p.wr = false;
            }
        }
    }

    /// Serves the request at a port's head if its bank has a port of its kind free and its
    /// response FIFO room.
    #[inline]
    fn serve<P: ServeEnd>(&mut self, port: &mut P, cx: &StepCtx) -> Result<Served, Fault> {
        let Some(req) = port.head(cx) else {
            return Ok(Served::Nothing);
        };
        self.check(&req).map_err(Box::new)?;
        let b = req.bank as usize;
        let used = match (self.port_kind, req.write) {
            (GlbPorts::Split, Some(_)) => &mut self.used_wr[b],
            _ => &mut self.used[b],
        };
        if *used >= self.ports_per_bank || !port.can_respond(cx) {
            return Ok(Served::Refused);
        }
        *used += 1;
        self.touched.push(b);
        port.take(cx);
        let words = (req.lane_mask & ((1u16 << self.layout.lanes) - 1) as u8).count_ones() as u64;
        let entry = &mut self.data[b][req.entry as usize];
        if let Some(data) = req.write {
            let mut mask = 0u64;
            for lane in 0..self.layout.lanes {
                if req.lane_mask >> lane & 1 == 1 {
                    mask |= 0xFFFF << (16 * lane);
                }
            }
            *entry = (*entry & !mask) | (data & mask);
            self.counters.writes[req.dtype as usize] += words;
        } else {
            self.counters.reads[req.dtype as usize] += words;
        }
        if self.traced {
            let probe = &mut self.probe[b];
            probe.addr = req.entry;
            if req.write.is_some() {
                probe.wr = true;
                probe.wr_addr = req.entry;
                probe.wr_data = *entry;
            } else {
                probe.rd = true;
                probe.rd_addr = req.entry;
                probe.rd_data = *entry;
            }
        }
        let resp = GlbResp {
            data: *entry,
            tag: req.tag,
        };
        if !port.respond(cx, resp) {
            return Err("GLB response refused although it had credit".into());
        }
        Ok(Served::Done {
            more: port.head(cx).is_some(),
        })
    }
}

/// The global buffer: its banks, the arbiter of their ports, and the sequencers of its
/// controller (see the module docs).
pub struct Glb {
    banks: Banks,
    /// Requesters that are components of their own.
    ports: Vec<GlbPort>,
    /// The GLB's own sequencers, after `ports` in the round-robin order.
    seqs: Vec<Sequencer>,
    /// Bit `i`: sequencer `i`'s last step's wake was `Idle` (it waits for a link or its port).
    asleep: u64,
    first: usize,
    /// The last step had a request it could not serve.
    conflicted: bool,
    /// After the last step, a part has work at the next edge without anything new reaching
    /// the block's links: a request waiting at a port's head (its bank port taken, or no room
    /// for its response) after a step that served one, a sequencer's own work, or a word or a
    /// freed slot in an inner port's FIFOs.
    next: bool,
    /// Per bank: rd_en, wr_en, wr_data, rd_data, then addr (shared) or rd_addr and wr_addr
    /// (split).
    sig: Vec<Vec<SignalId>>,
    addr_bits: u32,
}

impl Glb {
    pub fn new(name: &str, layout: GlbLayout, ports_per_bank: u32, ports: Vec<GlbPort>) -> Self {
        assert!(
            ports.len() <= MAX_PORTS,
            "a GLB serves at most {MAX_PORTS} ports"
        );
        let n = layout.banks() as usize;
        Glb {
            banks: Banks {
                name: name.into(),
                layout,
                ports_per_bank: ports_per_bank.max(1),
                port_kind: GlbPorts::Shared,
                data: vec![vec![0; layout.bank_entries as usize]; n],
                used: vec![0; n],
                used_wr: vec![0; n],
                touched: Vec::new(),
                counters: GlbCounters::default(),
                probe: vec![BankProbe::default(); n],
                traced: false,
            },
            ports,
            seqs: Vec::new(),
            asleep: 0,
            first: 0,
            conflicted: false,
            next: false,
            sig: Vec::new(),
            addr_bits: (32 - layout.bank_entries.max(2).saturating_sub(1).leading_zeros()).max(1),
        }
    }

    /// The banks' ports as `kind` says (shared unless set).
    pub fn with_port_kind(mut self, kind: GlbPorts) -> Self {
        self.banks.port_kind = kind;
        self
    }

    /// A reader of the GLB's own, on the next port (see the module docs); returns its index
    /// (for [`Glb::beat_wire`]).
    pub fn add_reader(&mut self, r: GlbReader<InnerEnd>) -> usize {
        self.add_sequencer(Sequencer::Reader(r))
    }

    /// The next port's sequencer; returns its index.
    fn add_sequencer(&mut self, s: Sequencer) -> usize {
        assert!(
            self.ports.len() + self.seqs.len() < MAX_PORTS,
            "a GLB serves at most {MAX_PORTS} ports"
        );
        self.seqs.push(s);
        self.seqs.len() - 1
    }

    /// The beat FIFO of reader `k` (as [`Glb::add_reader`] numbered it), if it sends its beats
    /// into one ([`sequencer::ReadOut::Wire`]): for the block that holds the GLB to feed the
    /// GIN at its other end, in the same step.
    pub fn beat_wire(&mut self, k: usize) -> Option<&mut rowsim_kernel::Wire<rowsim_types::Beat>> {
        match self.seqs.get_mut(k)? {
            Sequencer::Reader(r) => r.beat_wire(),
            Sequencer::Writer(_) => None,
        }
    }

    /// A writer of the GLB's own, on the next port (see the module docs); returns its index
    /// (for [`Glb::gon_wire`]).
    pub fn add_writer(&mut self, w: GlbWriter<InnerEnd>) -> usize {
        self.add_sequencer(Sequencer::Writer(w))
    }

    /// The GON beat FIFO of writer `k` (as [`Glb::add_writer`] numbered it), if it takes its
    /// beats from one ([`sequencer::WriteIn::GonWire`]): for the block that holds the GLB to
    /// step the GON at its other end, in the same step.
    pub fn gon_wire(
        &mut self,
        k: usize,
    ) -> Option<&mut rowsim_kernel::Wire<rowsim_types::GonBeat>> {
        match self.seqs.get_mut(k)? {
            Sequencer::Writer(w) => w.gon_wire(),
            Sequencer::Reader(_) => None,
        }
    }

    pub fn counters(&self) -> &GlbCounters {
        &self.banks.counters
    }

    pub fn layout(&self) -> &GlbLayout {
        &self.banks.layout
    }

    /// An entry's contents (for loading and checking; no port, no count).
    pub fn peek(&self, bank: u32, entry: u32) -> Option<u64> {
        self.banks
            .data
            .get(bank as usize)?
            .get(entry as usize)
            .copied()
    }
}

impl Component for Glb {
    fn name(&self) -> &str {
        &self.banks.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut moved = false;
        let mut next = false;
        let before = cx.cycle.checked_sub(1);
        // Bit `i`: sequencer `i` was stepped at this edge (`ran`), its request FIFO holds a
        // request after its step (`requests`). A sequencer not stepped has neither: its port's
        // FIFOs were empty (it did not stir), and nothing but its own step fills them.
        let (mut ran, mut requests) = (0u64, 0u64);
        for (i, s) in self.seqs.iter_mut().enumerate() {
            // (`add_reader` and `add_writer` keep the ports within a mask's 64 bits.)
            let bit = 1u64 << i;
            // A sequencer that waits for its links or its port is not stepped while neither
            // has anything new for it (a step would repeat its last; see `quiet`): its port
            // was left as it was at the edge before, no job or input has arrived, and it has
            // nothing to send.
            if self.asleep & bit != 0
                && !before.is_some_and(|b| s.port_ref().stirs(b))
                && s.quiet(cx)
            {
                continue;
            }
            let (did, again) = s.run(cx).map_err(|e| -> Fault {
                let name = s.name();
                let e = e.to_string();
                if e.starts_with(name) {
                    e.into()
                } else {
                    format!("{name}: {e}").into()
                }
            })?;
            moved |= did.moved();
            next |= again;
            if again {
                self.asleep &= !bit;
            } else {
                self.asleep |= bit;
            }
            ran |= bit;
            if !s.port_ref().req.is_empty() {
                requests |= bit;
            }
        }
        self.banks.new_cycle();
        let ext = self.ports.len();
        let n = ext + self.seqs.len();
        let mut served = false;
        let mut conflict = false;
        // Requests left at the ports' heads after this step: one refused, or the next behind
        // one served. (Looking at a link's head also asks for a step at the arrival of one
        // still on its way; a port found empty is not looked at again: nothing reaches it
        // within the step.)
        let mut waiting = false;
        // The ports in round-robin order from `first`: every external port (a link's look
        // also asks for a step at a request on its way), and of its own sequencers' ports those
        // with a request (an empty request FIFO has nothing to serve).
        let (banks, ports, seqs) = (&mut self.banks, &mut self.ports, &mut self.seqs);
        let external = match ext {
            0 => 0,
            k => u64::MAX >> (64 - k),
        };
        let ports_asking = external | requests.checked_shl(ext as u32).unwrap_or(0);
        round_robin(ports_asking, self.first, |i| {
            let r = if i < ext {
                banks.serve(&mut ports[i], cx)?
            } else {
                banks.serve(seqs[i - ext].port(), cx)?
            };
            match r {
                Served::Nothing => {}
                Served::Refused => {
                    conflict = true;
                    waiting = true;
                }
                Served::Done { more } => {
                    served = true;
                    waiting |= more;
                }
            }
            Ok(())
        })?;
        if conflict {
            self.banks.counters.conflict_cycles += 1;
        }
        self.conflicted = conflict;
        if n > 0 {
            self.first = if self.first + 1 == n {
                0
            } else {
                self.first + 1
            };
        }
        moved |= served;
        // The arbiter alone: the next edge while a request waits, after a step that served one
        // (else idle until a request or a credit arrives). An inner port's FIFOs wake the block
        // as a link would: a word pushed, or a slot freed at this edge.
        next |= waiting && served;
        // (Only a stepped sequencer's port can stir: the arbiter serves none of the others.)
        let mut stepped = ran;
        while stepped != 0 && !next {
            let i = stepped.trailing_zeros() as usize;
            stepped &= stepped - 1;
            next |= self.seqs[i].port_ref().stirs(cx.cycle);
        }
        self.next = next;
        Ok(Activity::from_moved(moved))
    }

    fn holds_work(&self) -> bool {
        self.ports.iter().any(|p| p.pending()) || self.seqs.iter().any(|s| s.holds_work())
    }

    /// The next edge when a part needs it (see `next`); else idle until a request, a job, data
    /// or a credit reaches a link (the round-robin pointer still turns at every edge:
    /// [`Glb::settle`]).
    fn wake(&self, _cx: &StepCtx, _did: Activity) -> Wake {
        if self.next {
            Wake::Next
        } else {
            Wake::Idle
        }
    }

    fn settle(&mut self, _last: &StepCtx, edges: u64) {
        let n = (self.ports.len() + self.seqs.len()) as u64;
        if n > 0 {
            self.first = ((self.first as u64 + edges % n) % n) as usize;
        }
        if self.conflicted {
            self.banks.counters.conflict_cycles += edges;
        }
        if self.banks.traced {
            for p in self.banks.probe.iter_mut() {
                p.rd = false;
                p.wr = false;
            }
        }
    }

    /// Each sequencer's work in hand.
    fn state(&self) -> Option<String> {
        let lines: Vec<String> = self
            .seqs
            .iter()
            .map(|s| {
                let p = s.port_ref();
                format!(
                    "{}: {}; port {} requests, {} responses in its FIFOs",
                    s.name(),
                    if s.holds_work() { "busy" } else { "idle" },
                    p.req.len(),
                    p.resp.len()
                )
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        let w = (16 * self.banks.layout.lanes).clamp(1, 64);
        self.sig = (0..self.banks.layout.banks())
            .map(|b| {
                let scope = format!("{}.bank_{b:02}", self.banks.name);
                let mut sig = vec![s.signal(&scope, "rd_en", 1)?, s.signal(&scope, "wr_en", 1)?];
                // Declared in this order so that a shared-port trace keeps its layout.
                match self.banks.port_kind {
                    GlbPorts::Shared => sig.push(s.signal(&scope, "addr", self.addr_bits)?),
                    GlbPorts::Split => {
                        sig.push(s.signal(&scope, "rd_addr", self.addr_bits)?);
                        sig.push(s.signal(&scope, "wr_addr", self.addr_bits)?);
                    }
                }
                sig.push(s.signal(&scope, "wr_data", w)?);
                sig.push(s.signal(&scope, "rd_data", w)?);
                Ok(sig)
            })
            .collect::<Result<_, TraceError>>()?;
        self.banks.traced = true;
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        for (p, s) in self.banks.probe.iter().zip(&self.sig) {
            f.set_bool(s[0], p.rd);
            f.set_bool(s[1], p.wr);
            let data = match self.banks.port_kind {
                GlbPorts::Shared => {
                    f.set(s[2], p.addr as u64);
                    3
                }
                GlbPorts::Split => {
                    f.set(s[2], p.rd_addr as u64);
                    f.set(s[3], p.wr_addr as u64);
                    4
                }
            };
            f.set(s[data], p.wr_data);
            f.set(s[data + 1], p.rd_data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arbiter's order: the ports asking, from `first` up, then from port 0, as visiting
    /// every port from `first` and skipping those not asking.
    #[test]
    fn round_robin_visits_the_ports_asking_from_first_then_wraps() {
        for n in [1usize, 2, 6, 7, 64] {
            for first in 0..n {
                for mask in [0u64, 1, 0b1011_0110, 0x8000_0000_0000_0001, u64::MAX] {
                    let mask = if n == 64 { mask } else { mask & ((1 << n) - 1) };
                    let mut got = Vec::new();
                    round_robin(mask, first, |i| {
                        got.push(i);
                        Ok(())
                    })
                    .unwrap();
                    let want: Vec<usize> = (0..n)
                        .map(|k| (first + k) % n)
                        .filter(|&i| mask >> i & 1 == 1)
                        .collect();
                    assert_eq!(got, want, "n {n} first {first} mask {mask:#x}");
                }
            }
        }
    }

    /// A word's bank, entry and lane: consecutive words fill an entry's lanes, then the next
    /// entry, then the next bank of the region, with sizes that are powers of two (shifts and
    /// masks) and sizes that are not (divisions) alike; past the region is an error.
    #[test]
    fn words_fill_lanes_then_entries_then_banks() {
        for (bank_entries, lanes) in [(512, 4), (5, 3), (8, 3), (6, 4), (1, 1)] {
            let l = GlbLayout {
                shared_banks: 6,
                ifmap_banks: 2,
                psum_banks: 3,
                filter_banks: 2,
                bank_entries,
                lanes,
            };
            let per_bank = (bank_entries * lanes) as u64;
            for (dtype, first, banks) in [
                (DataType::Ifmap, 0, 2),
                (DataType::Psum, 2, 3),
                (DataType::Filter, 6, 2),
            ] {
                let (mut bank, mut entry, mut lane) = (first, 0, 0);
                for addr in 0..per_bank * banks as u64 {
                    assert_eq!(
                        l.locate(dtype, addr).unwrap(),
                        (bank, entry, lane),
                        "{dtype} word {addr}, {bank_entries} entries of {lanes} lanes"
                    );
                    lane += 1;
                    if lane == lanes {
                        (lane, entry) = (0, entry + 1);
                    }
                    if entry == bank_entries {
                        (entry, bank) = (0, bank + 1);
                    }
                }
                assert!(l.locate(dtype, per_bank * banks as u64).is_err());
            }
        }
    }
}
