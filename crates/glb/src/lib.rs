//! The global buffer: banks of `bank_entries x bank_width_bits`, the shared ones given wholly
//! to ifmaps or psums per layer, plus filter banks.
//!
//! # Port model
//! Each bank serves `ports_per_bank` accesses (of one entry, `bank_width_bits` wide) per core
//! cycle, reads and writes alike ([`GlbPorts::Shared`]), or `ports_per_bank` reads and as many
//! writes ([`GlbPorts::Split`], a two-port SRAM). Requesters reach the GLB through request
//! links; each cycle the GLB takes the head request of each requester in round-robin order,
//! starting one past the last requester served first, and serves it if its bank still has a
//! port of its kind free this cycle and the requester's response link has room; otherwise the
//! request waits (a bank conflict, counted). A read returns the entry one cycle later; a write
//! is acknowledged the same way.
//!
//! # Counters
//! Reads and writes in 16-bit words per data type (an access carries up to `bank_width_bits /
//! 16` words and says how many are meant), accesses per bank, conflict cycles.

use std::fmt;

use rowsim_config::{GlbPorts, HwConfig};
use rowsim_kernel::{
    Activity, Component, Fault, LinkRx, LinkTx, SignalId, SignalRegistry, StepCtx, TraceError,
    TraceFrame, Wake,
};

pub mod desc;
pub mod sequencer;

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
        let bank = addr / per_bank;
        if bank >= banks as u64 {
            return Err(GlbError(format!(
                "glb: {dtype} word {addr} is outside the {dtype} region ({banks} banks of {per_bank} words)"
            )));
        }
        let within = addr % per_bank;
        Ok((
            first + bank as u32,
            (within / lanes) as u32,
            (within % lanes) as u32,
        ))
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

/// One requester's pair of links.
pub struct GlbPort {
    pub req: LinkRx<GlbReq>,
    pub resp: LinkTx<GlbResp>,
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

/// The global buffer.
pub struct Glb {
    name: String,
    layout: GlbLayout,
    ports_per_bank: u32,
    port_kind: GlbPorts,
    banks: Vec<Vec<u64>>,
    ports: Vec<GlbPort>,
    first: usize,
    /// Ports of each bank taken this cycle: by any access (shared), by reads (split).
    used: Vec<u32>,
    /// Write ports of each bank taken this cycle (split).
    used_wr: Vec<u32>,
    /// The banks whose ports the last step took (the counts to clear at the next).
    touched: Vec<usize>,
    /// The last step had a request it could not serve.
    conflicted: bool,
    /// After the last step, a request had arrived and was not served (a bank port taken, or
    /// no room for its response): the next edge may serve it without anything new arriving.
    waiting: bool,
    counters: GlbCounters,
    probe: Vec<BankProbe>,
    /// Per bank: rd_en, wr_en, wr_data, rd_data, then addr (shared) or rd_addr and wr_addr
    /// (split).
    sig: Vec<Vec<SignalId>>,
    addr_bits: u32,
}

impl Glb {
    pub fn new(name: &str, layout: GlbLayout, ports_per_bank: u32, ports: Vec<GlbPort>) -> Self {
        let n = layout.banks() as usize;
        Glb {
            name: name.into(),
            layout,
            ports_per_bank: ports_per_bank.max(1),
            port_kind: GlbPorts::Shared,
            banks: vec![vec![0; layout.bank_entries as usize]; n],
            ports,
            first: 0,
            used: vec![0; n],
            used_wr: vec![0; n],
            conflicted: false,
            waiting: false,
            counters: GlbCounters::default(),
            probe: vec![BankProbe::default(); n],
            touched: Vec::new(),
            sig: Vec::new(),
            addr_bits: (32 - layout.bank_entries.max(2).saturating_sub(1).leading_zeros()).max(1),
        }
    }

    /// The banks' ports as `kind` says (shared unless set).
    pub fn with_port_kind(mut self, kind: GlbPorts) -> Self {
        self.port_kind = kind;
        self
    }

    pub fn counters(&self) -> &GlbCounters {
        &self.counters
    }

    pub fn layout(&self) -> &GlbLayout {
        &self.layout
    }

    /// An entry's contents (for loading and checking; no port, no count).
    pub fn peek(&self, bank: u32, entry: u32) -> Option<u64> {
        self.banks.get(bank as usize)?.get(entry as usize).copied()
    }

    fn check(&self, r: &GlbReq) -> Result<(), GlbError> {
        if r.bank >= self.layout.banks() {
            return Err(GlbError(format!(
                "{}: bank {} does not exist (the GLB has {})",
                self.name,
                r.bank,
                self.layout.banks()
            )));
        }
        if r.entry >= self.layout.bank_entries {
            return Err(GlbError(format!(
                "{}: address {} outside bank {} ({} entries)",
                self.name, r.entry, r.bank, self.layout.bank_entries
            )));
        }
        if self.layout.bank_type(r.bank) != Some(r.dtype) {
            return Err(GlbError(format!(
                "{}: a {} access to bank {}, which this layer gives to {}",
                self.name,
                r.dtype,
                r.bank,
                self.layout
                    .bank_type(r.bank)
                    .map_or("nothing".to_string(), |t| t.to_string())
            )));
        }
        Ok(())
    }
}

impl Component for Glb {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        for &b in &self.touched {
            self.used[b] = 0;
            self.used_wr[b] = 0;
        }
        self.touched.clear();
        // What a trace shows of each bank (kept only when one is taken).
        let traced = !self.sig.is_empty();
        if traced {
            for p in self.probe.iter_mut() {
                p.rd = false;
                p.wr = false;
            }
        }
        let n = self.ports.len();
        let mut moved = false;
        let mut conflict = false;
        // Requests left at the ports' heads after this step: one refused, or the next behind
        // one served. (Looking at a head also asks for a step at the arrival of one still on
        // its way; a port found empty is not looked at again: nothing reaches it within the
        // step.)
        self.waiting = false;
        for k in 0..n {
            let i = (self.first + k) % n;
            let Some(&req) = self.ports[i].req.peek(cx) else {
                continue;
            };
            self.check(&req).map_err(Box::new)?;
            let b = req.bank as usize;
            let used = match (self.port_kind, req.write) {
                (GlbPorts::Split, Some(_)) => &mut self.used_wr[b],
                _ => &mut self.used[b],
            };
            if *used >= self.ports_per_bank || !self.ports[i].resp.can_send(cx) {
                conflict = true;
                self.waiting = true;
                continue;
            }
            *used += 1;
            self.touched.push(b);
            self.ports[i].req.try_recv(cx);
            let words =
                (req.lane_mask & ((1u16 << self.layout.lanes) - 1) as u8).count_ones() as u64;
            let entry = &mut self.banks[b][req.entry as usize];
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
            if traced {
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
            if self.ports[i].resp.try_send(cx, resp).is_err() {
                return Err("GLB response refused although it had credit".into());
            }
            moved = true;
            if self.ports[i].req.peek(cx).is_some() {
                self.waiting = true;
            }
        }
        if conflict {
            self.counters.conflict_cycles += 1;
        }
        self.conflicted = conflict;
        if n > 0 {
            self.first = (self.first + 1) % n;
        }
        Ok(Activity::from_moved(moved))
    }

    fn holds_work(&self) -> bool {
        self.ports.iter().any(|p| p.req.in_flight() > 0)
    }

    /// The next edge when a request is waiting at a port's head; else idle until a request or
    /// a credit arrives (the round-robin pointer still turns at every edge: [`Glb::settle`]).
    /// A step that served every request it saw needs no step after it: the next requests
    /// wake the GLB as they arrive.
    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        if self.waiting {
            Wake::after(did)
        } else {
            Wake::Idle
        }
    }

    fn settle(&mut self, _last: &StepCtx, edges: u64) {
        let n = self.ports.len() as u64;
        if n > 0 {
            self.first = ((self.first as u64 + edges % n) % n) as usize;
        }
        if self.conflicted {
            self.counters.conflict_cycles += edges;
        }
        if !self.sig.is_empty() {
            for p in self.probe.iter_mut() {
                p.rd = false;
                p.wr = false;
            }
        }
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        let w = (16 * self.layout.lanes).clamp(1, 64);
        self.sig = (0..self.layout.banks())
            .map(|b| {
                let scope = format!("{}.bank_{b:02}", self.name);
                let mut sig = vec![s.signal(&scope, "rd_en", 1)?, s.signal(&scope, "wr_en", 1)?];
                // Declared in this order so that a shared-port trace keeps its layout.
                match self.port_kind {
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
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        for (p, s) in self.probe.iter().zip(&self.sig) {
            f.set_bool(s[0], p.rd);
            f.set_bool(s[1], p.wr);
            let data = match self.port_kind {
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
