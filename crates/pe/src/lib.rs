//! One processing element of a row-stationary array.
//!
//! # What a PE does
//! A PE runs the 1-D row primitive of the RS dataflow for `p` filters and `q` channels
//! interleaved: it keeps `p x q` filter rows of `S` weights in its filter spad, slides a window of
//! `q x S` ifmap values across an ifmap row of `W = (F-1)*U + S` columns, and for each of the `F`
//! output positions produces `p` psums, added to `p` incoming psums (from the PE below, or the
//! GLB) when the layer says so, and sent out (to the PE above, or the GLB). It repeats this for
//! `rows` ifmap rows with the same filters: the filters are what stays stationary.
//!
//! # Streams (all of 16-bit words, through FIFOs that are [`Link`](rowsim_kernel::Link)s)
//! - filters in: `p*q*S` weights, in filter-spad address order `(s*q + c)*p + f`;
//! - ifmaps in: per row, `W` columns of `q` channel values, `(col, c)` in order;
//! - psums in (if enabled): per row, `F` positions of `p` values, `(x, f)` in order;
//! - psums out: per row, `F x p` values, `(x, f)` in order.
//!
//! # Timing (one operation issued per cycle; the pipeline has 3 stages)
//! 1. **Filter load.** One weight written per cycle as it arrives.
//! 2. **Ifmap load.** A separate spad write port stores one arriving ifmap value per cycle,
//!    whenever the spad has a free entry: the spad is a circular window of
//!    `floor(entries / q)` columns, and a column is free once every window that uses it has
//!    been computed. So the next position's columns load while this one computes.
//! 3. **Compute.** When the filters and a position's whole window are in the spads, the PE
//!    issues `p*q*S` MACs, one per cycle, in the order `s`, `c`, `f` (outer to inner). A MAC goes
//!    through RD (spad reads; the ifmap entry is read once per `(s, c)` and held for the `p`
//!    filters), MUL (the product window) and ADD (read-modify-write of psum `f`).
//! 4. **Drain.** Once the last MAC of the position has left the pipeline (2 bubble cycles), one
//!    psum per cycle is read from the psum spad (and cleared), added to the incoming psum, and
//!    sent, stalling while no incoming psum has arrived or the output FIFO is full.
//!
//! So a position costs `p*q*S + 2 + p` cycles when nothing stalls.
//!
//! # How it is simulated (not what the hardware does)
//! Stepped at every edge, the PE does the above one edge at a time. Event-driven and untraced,
//! it computes the rest of a position's MACs in one go once nothing can reach it (`settle`),
//! and runs a filter load's weights already on their way, and a position's drain short of its
//! last psum, ahead of the scheduler in one step (`Pe::run_ahead`): the same operations at the
//! same edges, with the same credits and arrivals at the other ends of its links.
//!
//! # Zero gating
//! The zero buffer holds one bit per ifmap-spad entry, set when a zero is written. A MAC whose
//! ifmap value is zero skips the filter-spad read, holds the multiplier's inputs (and so its
//! product) still, and skips the psum read-modify-write. It saves energy, not cycles: the slot
//! is still spent. Gated MACs are counted.
//!
//! # Zero skipping (`zero_skipping`, in the manner of Eyeriss v2)
//! A second zero buffer holds one bit per filter-spad entry, set when a zero weight is written.
//! The PE then walks only the MACs whose ifmap value and weight are both nonzero: the first
//! cycle of a position reads the window's index (the zero bits of its `q*S` ifmap entries and
//! of the filter spad: one index read, one cycle, no MAC); then each cycle issues the next
//! nonzero pair in the same `s`, `c`, `f` order. Each `(s, c)` whose ifmap value is nonzero is
//! visited: its value read from the ifmap spad once, its next-nonzero pointer read (an index
//! read), its nonzero weights issued. Zero pairs take no cycle and no spad, multiplier or adder
//! access; they are counted as skipped. So a position costs `1 + (nonzero pairs) + 2 + p`
//! cycles when nothing stalls.
//!
//! # Compressed weights (`compressed`, with zero skipping)
//! The filter stream is the row's zero mask, `ceil(p*q*S / 16)` words, then its nonzero values
//! (`rowsim_datapath::zmask`). The mask words go into the weight zero buffer (an index write
//! each, one cycle each), the values into the filter spad packed from entry 0 (a spad write
//! each): so a row of `nnz` nonzero weights loads in `ceil(p*q*S/16) + nnz` cycles, and the
//! spad needs `nnz` entries, not `p*q*S` (the mask, `mask_bits` long, bounds `p*q*S`). The
//! MAC of weight `i` reads entry `popcount(mask[0..i])`, the rank the index read yields
//! along with the zero bits. A corrupt row is a fault naming the PE and the word.
//!
//! # What counts as an access (the PE's counters)
//! filter spad: a write per weight loaded, a read per MAC not gated. ifmap spad: a write per
//! value stored, a read per `(position, s, c)`. psum spad: a read and a write per MAC not gated,
//! and a read per psum drained.

pub mod testbench;

use std::fmt;

use rowsim_config::HwConfig;
use rowsim_datapath::mac::{self, MacConfig, MacCounters};
use rowsim_kernel::{
    Activity, Component, Fault, LinkRx, LinkTx, Port, SignalId, SignalRegistry, StepCtx,
    TraceError, TraceFrame, Wake,
};

/// The PE's fixed sizes, from the hw-config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeSizes {
    pub filter_entries: u32,
    pub ifmap_entries: u32,
    pub psum_entries: u32,
    /// Bits of the weight zero mask of a PE that holds compressed weights
    /// (`spad.filter.mask_bits`); `None` for a PE that holds them uncompressed.
    pub mask_bits: Option<u32>,
}

impl PeSizes {
    pub fn from_config(hw: &HwConfig) -> Self {
        let f = &hw.spad.filter;
        PeSizes {
            filter_entries: f.entries,
            ifmap_entries: hw.spad.ifmap.entries,
            psum_entries: hw.spad.psum.entries,
            mask_bits: if f.compressed { f.mask_bits } else { None },
        }
    }

    /// Weights a filter row may hold: the mask's bits when compressed, else the entries.
    fn weight_slots(&self) -> u32 {
        self.mask_bits.unwrap_or(0).max(self.filter_entries)
    }
}

/// The per-pass configuration of a PE (what the scan chain loads): the primitive it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Primitive {
    /// Filters interleaved.
    pub p: u32,
    /// Channels interleaved.
    pub q: u32,
    /// Filter width S.
    pub s: u32,
    /// Horizontal stride U.
    pub u: u32,
    /// Output row width F.
    pub f: u32,
    /// Ifmap rows processed with the same filters.
    pub rows: u32,
    /// Whether incoming psums are added before a psum leaves.
    pub psum_in: bool,
    pub mac: MacConfig,
    pub zero_gating: bool,
    /// Zero skipping (see the crate docs): zero ifmap values and zero weights take no cycle.
    pub zero_skipping: bool,
    /// Compressed weights (see the crate docs): the filter stream is a zero mask and the
    /// nonzero values (`rowsim_datapath::zmask`). Needs `zero_skipping`.
    pub compressed: bool,
}

impl Primitive {
    /// Ifmap row width consumed: `(F-1)*U + S`.
    pub fn w(&self) -> u32 {
        (self.f - 1) * self.u + self.s
    }

    /// MAC slots (gated or not) of the whole program.
    pub fn mac_slots(&self) -> u64 {
        self.p as u64 * self.q as u64 * self.s as u64 * self.f as u64 * self.rows as u64
    }
}

/// A primitive the PE cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeError {
    DoesNotFit {
        pe: String,
        spad: &'static str,
        needed: u64,
        entries: u32,
        why: &'static str,
    },
    Zero {
        pe: String,
        field: &'static str,
    },
    Busy {
        pe: String,
    },
    /// A compressed-weight primitive this PE cannot run.
    Compressed {
        pe: String,
        why: String,
    },
}

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeError::DoesNotFit {
                pe,
                spad,
                needed,
                entries,
                why,
            } => write!(
                f,
                "{pe}: the primitive needs {needed} {spad}-spad entries ({why}); the {spad} spad has {entries}"
            ),
            PeError::Zero { pe, field } => write!(f, "{pe}: primitive field {field} must be at least 1"),
            PeError::Busy { pe } => write!(f, "{pe}: configured while still running a primitive"),
            PeError::Compressed { pe, why } => write!(f, "{pe}: compressed weights: {why}"),
        }
    }
}

impl std::error::Error for PeError {}

/// Everything a PE counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeCounters {
    pub macs: u64,
    pub macs_gated: u64,
    pub filter_spad_reads: u64,
    pub filter_spad_writes: u64,
    pub ifmap_spad_reads: u64,
    pub ifmap_spad_writes: u64,
    pub psum_spad_reads: u64,
    pub psum_spad_writes: u64,
    pub psums_in: u64,
    pub psums_out: u64,
    /// Cycles the PE wanted to go on but a filter had not arrived.
    pub stall_filter: u64,
    /// ... the window's ifmap values had not arrived.
    pub stall_ifmap: u64,
    /// ... an incoming psum had not arrived.
    pub stall_psum_in: u64,
    /// ... the output FIFO was full.
    pub stall_psum_out: u64,
    /// Cycles spent waiting for the pipeline to empty before a drain.
    pub pipeline_bubbles: u64,
    /// Cycles from the first edge of a program to its end.
    pub active_cycles: u64,
    /// Zero skipping: MAC slots skipped (a zero ifmap value or weight), cycles spent reading a
    /// position's index, and index reads (one a position, one a visited `(s, c)`).
    pub macs_skipped: u64,
    pub index_cycles: u64,
    pub index_reads: u64,
    /// Compressed weights: mask words written into the weight zero buffer.
    pub index_writes: u64,
    pub overflows: MacCounters,
}

/// The control state, as traced (`state[2:0]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeState {
    Idle = 0,
    LoadFilters = 1,
    Compute = 2,
    Drain = 3,
    Done = 4,
}

#[derive(Clone, Copy, Debug, Default)]
struct RdReg {
    f: u32,
    gated: bool,
    weight: i16,
    ifmap: i16,
}

#[derive(Clone, Copy, Debug, Default)]
struct MulReg {
    f: u32,
    gated: bool,
    product: i16,
}

/// One-cycle enables of the last edge, for the trace: a bit each, cleared by one store.
mod strobe {
    pub const FILTER_WR: u16 = 1 << 0;
    pub const FILTER_RD: u16 = 1 << 1;
    pub const IFMAP_WR: u16 = 1 << 2;
    pub const IFMAP_RD: u16 = 1 << 3;
    pub const PSUM_RD: u16 = 1 << 4;
    pub const PSUM_WR: u16 = 1 << 5;
    pub const ZERO_FLAG: u16 = 1 << 6;
    pub const MAC_VALID: u16 = 1 << 7;
    pub const MAC_GATED: u16 = 1 << 8;
    pub const PSUM_IN: u16 = 1 << 9;
    pub const PSUM_OUT: u16 = 1 << 10;
}

/// The last address and data on each spad port and the PE's data paths: what the registers
/// driving them hold between accesses.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    filter_wr: (u32, i16),
    filter_rd: (u32, i16),
    ifmap_wr: (u32, i16),
    ifmap_rd: (u32, i16),
    psum_rd: (u32, i16),
    psum_wr: (u32, i16),
    sum: i16,
    psum_in: i16,
    psum_out: i16,
    out_credits: u32,
}

#[derive(Default)]
struct Signals {
    state: SignalId,
    row: SignalId,
    x: SignalId,
    filter_fifo_level: SignalId,
    ifmap_fifo_level: SignalId,
    psum_in_fifo_level: SignalId,
    psum_out_credits: SignalId,
    filter_wr_en: SignalId,
    filter_wr_addr: SignalId,
    filter_wr_data: SignalId,
    filter_rd_en: SignalId,
    filter_rd_addr: SignalId,
    filter_rd_data: SignalId,
    ifmap_wr_en: SignalId,
    ifmap_wr_addr: SignalId,
    ifmap_wr_data: SignalId,
    ifmap_rd_en: SignalId,
    ifmap_rd_addr: SignalId,
    ifmap_rd_data: SignalId,
    zero_buffer: SignalId,
    zero_flag: SignalId,
    mac_valid: SignalId,
    mac_gated: SignalId,
    mac_a: SignalId,
    mac_b: SignalId,
    mac_product: SignalId,
    mac_sum: SignalId,
    psum_rd_en: SignalId,
    psum_rd_addr: SignalId,
    psum_rd_data: SignalId,
    psum_wr_en: SignalId,
    psum_wr_addr: SignalId,
    psum_wr_data: SignalId,
    psum_in_en: SignalId,
    psum_in_data: SignalId,
    psum_out_en: SignalId,
    psum_out_data: SignalId,
}

/// The links a PE is wired to.
pub struct PePorts {
    pub filter_in: LinkRx<i16>,
    pub ifmap_in: LinkRx<i16>,
    /// `None` when the PE never takes psums in (the chip wires it per array position).
    pub psum_in: Option<LinkRx<i16>>,
    pub psum_out: LinkTx<i16>,
}

/// A processing element.
pub struct Pe {
    name: String,
    sizes: PeSizes,
    ports: PePorts,
    config_port: Port<Primitive>,
    prim: Option<Primitive>,
    state: PeState,
    filter_spad: Vec<i16>,
    ifmap_spad: Vec<i16>,
    psum_spad: Vec<i16>,
    /// One bit per ifmap-spad entry.
    zero_buffer: u64,
    /// Zero skipping: one bit per weight of the row (a zero weight): per filter-spad entry, or
    /// with compressed weights per mask bit.
    weight_zero: Vec<u64>,
    /// Compressed weights: the filter-spad entry of each nonzero weight, `popcount` of the
    /// mask below it (what the index read's address arithmetic yields), and the mask words
    /// and nonzero values loaded so far and expected.
    weight_rank: Vec<u32>,
    masks_loaded: u32,
    nonzeros: u32,
    /// Zero skipping: whether this position's index has been read, the nonzero pairs it has
    /// still to issue, and the `(s, c)` whose ifmap value is held.
    indexed: bool,
    nz_left: u32,
    held_group: u32,
    // Progress of the program.
    weights_loaded: u32,
    /// Ifmap values stored so far, over all rows (the global column is `stored / q`).
    ifmaps_stored: u64,
    row: u32,
    x: u32,
    /// Next MAC of the position, 0..p*q*S.
    op: u32,
    /// Next psum to drain, 0..p.
    drain_f: u32,
    /// The MAC being issued, as (f, c, s) counters, so no division runs per cycle.
    op_f: u32,
    op_c: u32,
    /// Ifmap-spad column of `window start + s` for the MAC being issued.
    rd_col: u32,
    /// Ifmap-spad column and channel the next arriving value is written to.
    wr_col: u32,
    wr_c: u32,
    /// Derived from the primitive at `configure`: MACs a position, columns the ifmap spad
    /// holds, the row width W, and ifmap values in the whole program.
    ops: u32,
    cols: u32,
    w: u32,
    total_ifmaps: u64,
    /// The ifmap value held for the `p` MACs of an `(s, c)`.
    held_ifmap: i16,
    held_zero: bool,
    // The pipeline.
    rd: Option<RdReg>,
    mul: Option<MulReg>,
    // Multiplier inputs and output registers (held still by gating).
    mac_a: i16,
    mac_b: i16,
    mac_product: i16,
    counters: PeCounters,
    strobes: u16,
    held: Held,
    /// Whether a trace asked for the PE's signals (it then samples its output credits too).
    traced: bool,
    /// In a drain, what the last stalled edge waited for: an incoming psum (true) or room in
    /// the output FIFO (false). A stall repeats until a link wakes the PE, so [`Pe::settle`]
    /// counts the skipped edges against the same cause.
    drain_waits_for_psum_in: bool,
    /// Incoming psums of a drain run (kept to reuse its allocation).
    run_buf: Vec<i16>,
    /// The last edge through which the control FSM has already run ahead (a filter load or a
    /// drain taken as a burst: see [`Pe::run_ahead`]); until then a step only works the ifmap
    /// write port, which the burst left alone.
    ahead_until: Option<u64>,
    /// The edge of the last step, for the FIFO levels a trace shows.
    last_cycle: u64,
    /// While the FSM is ahead: the next edge at which the ifmap write port has a value that
    /// has already arrived to store (its arrival woke the PE once, which a store may not have
    /// used: the port stores one a cycle).
    port_next: Option<u64>,
    /// While the FSM is ahead: the edge at which it next needs a step (the one after the
    /// burst), or `None` when a filter load ran out of weights on their way: it then stalls
    /// until the next arrives, which wakes it.
    fsm_next: Option<u64>,
    /// The first edge at which the ifmap write port may act: the edge after the last one a run
    /// ahead stored a value at (a step at an earlier edge leaves the port alone: it has already
    /// worked that edge).
    port_free: u64,
    sig: Signals,
    addr_bits: (u32, u32, u32),
}

fn bits_for(entries: u32) -> u32 {
    (32 - (entries.max(2) - 1).leading_zeros()).max(1)
}

impl Pe {
    pub fn new(name: &str, sizes: PeSizes, ports: PePorts) -> Self {
        Pe {
            name: name.into(),
            sizes,
            ports,
            config_port: Port::default(),
            prim: None,
            state: PeState::Idle,
            filter_spad: vec![0; sizes.filter_entries as usize],
            ifmap_spad: vec![0; sizes.ifmap_entries as usize],
            psum_spad: vec![0; sizes.psum_entries as usize],
            zero_buffer: 0,
            weight_zero: vec![0; (sizes.weight_slots() as usize).div_ceil(64)],
            weight_rank: if sizes.mask_bits.is_some() {
                vec![0; sizes.weight_slots() as usize]
            } else {
                Vec::new()
            },
            masks_loaded: 0,
            nonzeros: 0,
            indexed: false,
            nz_left: 0,
            held_group: u32::MAX,
            weights_loaded: 0,
            ifmaps_stored: 0,
            row: 0,
            x: 0,
            op: 0,
            drain_f: 0,
            op_f: 0,
            op_c: 0,
            rd_col: 0,
            wr_col: 0,
            wr_c: 0,
            ops: 0,
            cols: 1,
            w: 0,
            total_ifmaps: 0,
            held_ifmap: 0,
            held_zero: false,
            rd: None,
            mul: None,
            mac_a: 0,
            mac_b: 0,
            mac_product: 0,
            counters: PeCounters::default(),
            strobes: 0,
            held: Held::default(),
            traced: false,
            drain_waits_for_psum_in: false,
            run_buf: Vec::new(),
            ahead_until: None,
            last_cycle: 0,
            port_next: None,
            port_free: 0,
            fsm_next: None,
            sig: Signals::default(),
            addr_bits: (
                bits_for(sizes.filter_entries),
                bits_for(sizes.ifmap_entries),
                bits_for(sizes.psum_entries),
            ),
        }
    }

    /// Checks that a primitive fits this PE's spads.
    pub fn check(&self, prim: &Primitive) -> Result<(), PeError> {
        let pe = || self.name.clone();
        for (field, v) in [
            ("p", prim.p),
            ("q", prim.q),
            ("S", prim.s),
            ("U", prim.u),
            ("F", prim.f),
            ("rows", prim.rows),
        ] {
            if v == 0 {
                return Err(PeError::Zero { pe: pe(), field });
            }
        }
        let (p, q, s) = (prim.p as u64, prim.q as u64, prim.s as u64);
        if prim.compressed {
            let why = match self.sizes.mask_bits {
                None => {
                    Some("this PE has no weight zero mask (spad.filter.compressed is off)".into())
                }
                Some(_) if !prim.zero_skipping => {
                    Some("they need zero skipping (the PE walks the mask)".into())
                }
                Some(bits) if p * q * s > bits as u64 => Some(format!(
                    "a row of p*q*S = {} weights needs {} mask bits; the mask has {bits}",
                    p * q * s,
                    p * q * s
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                return Err(PeError::Compressed { pe: pe(), why });
            }
        }
        let fits = [
            (
                "filter",
                // Compressed, the nonzero count is checked as the mask arrives.
                if prim.compressed { 0 } else { p * q * s },
                self.sizes.filter_entries,
                "p*q*S weights",
            ),
            (
                "ifmap",
                q * s,
                self.sizes.ifmap_entries,
                "a window of q*S values",
            ),
            ("psum", p, self.sizes.psum_entries, "p psums"),
        ];
        for (spad, needed, entries, why) in fits {
            if needed > entries as u64 {
                return Err(PeError::DoesNotFit {
                    pe: pe(),
                    spad,
                    needed,
                    entries,
                    why,
                });
            }
        }
        if self.sizes.ifmap_entries > 64 {
            // The zero buffer is one u64 word.
            return Err(PeError::DoesNotFit {
                pe: pe(),
                spad: "ifmap",
                needed: self.sizes.ifmap_entries as u64,
                entries: 64,
                why: "one zero-buffer bit per entry, at most 64",
            });
        }
        Ok(())
    }

    /// Loads a primitive (the scan chain's per-pass configuration); the PE starts as soon as its
    /// operands arrive.
    /// Wires the PE's configuration port: the top-level controller sends each pass's primitive
    /// over it (the per-pass part of what the scan chain carries), and the PE takes it once it
    /// is idle or has finished its last primitive. A PE with this port never sleeps.
    pub fn with_config_port(mut self, rx: LinkRx<Primitive>) -> Self {
        self.config_port = Port::wired(rx);
        self
    }

    pub fn configure(&mut self, prim: Primitive) -> Result<(), PeError> {
        if matches!(
            self.state,
            PeState::LoadFilters | PeState::Compute | PeState::Drain
        ) {
            return Err(PeError::Busy {
                pe: self.name.clone(),
            });
        }
        self.check(&prim)?;
        if prim.psum_in && self.ports.psum_in.is_none() {
            return Err(PeError::Zero {
                pe: self.name.clone(),
                field: "psum_in (no psum input is wired to this PE)",
            });
        }
        self.prim = Some(prim);
        self.state = PeState::LoadFilters;
        self.weights_loaded = 0;
        self.ifmaps_stored = 0;
        self.row = 0;
        self.x = 0;
        self.op = 0;
        self.drain_f = 0;
        self.op_f = 0;
        self.op_c = 0;
        self.rd_col = 0;
        self.wr_col = 0;
        self.wr_c = 0;
        self.ops = prim.p * prim.q * prim.s;
        self.cols = self.sizes.ifmap_entries / prim.q;
        self.w = prim.w();
        self.total_ifmaps = prim.rows as u64 * self.w as u64 * prim.q as u64;
        self.psum_spad.iter_mut().for_each(|v| *v = 0);
        self.indexed = false;
        self.nz_left = 0;
        self.held_group = u32::MAX;
        self.masks_loaded = 0;
        self.nonzeros = 0;
        Ok(())
    }

    pub fn counters(&self) -> &PeCounters {
        &self.counters
    }

    pub fn state(&self) -> PeState {
        self.state
    }

    /// The psum spad's current contents.
    pub fn psum_spad(&self) -> &[i16] {
        &self.psum_spad
    }

    pub fn filter_spad(&self) -> &[i16] {
        &self.filter_spad
    }

    pub fn ifmap_spad(&self) -> &[i16] {
        &self.ifmap_spad
    }

    /// First global column of the current position's window.
    #[inline]
    fn window_start(&self, prim: &Primitive) -> u64 {
        self.row as u64 * self.w as u64 + (self.x * prim.u) as u64
    }

    fn issue_filter_load(&mut self, cx: &StepCtx, prim: &Primitive) -> Result<bool, Fault> {
        if prim.compressed {
            return self.issue_compressed_load(cx);
        }
        Ok(self.load_weight(cx, cx.cycle, prim))
    }

    /// The filter load's operation at edge `at` (`cx`'s edge, or a later one when running
    /// ahead): the next weight into the filter spad if it has arrived, else a stall.
    #[inline]
    fn load_weight(&mut self, cx: &StepCtx, at: u64, prim: &Primitive) -> bool {
        let total = prim.p * prim.q * prim.s;
        match self.ports.filter_in.try_recv_at(cx, at) {
            Some(w) => {
                let a = self.weights_loaded;
                self.filter_spad[a as usize] = w;
                if prim.zero_skipping {
                    // The weight zero buffer, which only skipping reads.
                    let (word, bit) = (a as usize / 64, a % 64);
                    if w == 0 {
                        self.weight_zero[word] |= 1 << bit;
                    } else {
                        self.weight_zero[word] &= !(1 << bit);
                    }
                }
                self.counters.filter_spad_writes += 1;
                self.strobes |= strobe::FILTER_WR;
                self.held.filter_wr = (a, w);
                self.weights_loaded += 1;
                if self.weights_loaded == total {
                    self.state = PeState::Compute;
                }
                true
            }
            None => {
                self.counters.stall_filter += 1;
                false
            }
        }
    }

    /// A compressed row: its `ceil(p*q*S/16)` mask words into the weight zero buffer (an index
    /// write each), then its nonzero values packed from entry 0 (a spad write each), one word
    /// a cycle. A corrupt row (mask bits past the row, more nonzeros than entries, a zero
    /// value) is a fault naming the PE and the word.
    fn issue_compressed_load(&mut self, cx: &StepCtx) -> Result<bool, Fault> {
        let Some(w) = self.ports.filter_in.try_recv(cx) else {
            self.counters.stall_filter += 1;
            return Ok(false);
        };
        let masks = self.ops.div_ceil(16);
        let fault = |e: rowsim_datapath::zmask::DecodeError| format!("{}: {e}", self.name);
        if self.masks_loaded < masks {
            let k = self.masks_loaded;
            rowsim_datapath::zmask::check_mask_word(k as usize, w as u16, self.ops as usize)
                .map_err(fault)?;
            // The buffer holds zero bits: the mask's complement, within the row.
            let valid = (self.ops - 16 * k).min(16);
            let zeros = !(w as u16) as u64 & ((1u64 << valid) - 1);
            let (word, shift) = ((16 * k / 64) as usize, 16 * k % 64);
            self.weight_zero[word] =
                (self.weight_zero[word] & !(0xFFFFu64 << shift)) | (zeros << shift);
            for b in 0..valid {
                let i = (16 * k + b) as usize;
                self.weight_rank[i] = self.nonzeros;
                self.nonzeros += ((w as u16) >> b) as u32 & 1;
            }
            if self.nonzeros > self.sizes.filter_entries {
                return Err(fault(rowsim_datapath::zmask::DecodeError::TooManyNonzeros {
                    word: k as usize,
                    nnz: self.nonzeros as u64,
                    entries: self.sizes.filter_entries as u64,
                })
                .into());
            }
            self.masks_loaded += 1;
            self.counters.index_writes += 1;
            if self.masks_loaded == masks && self.nonzeros == 0 {
                self.state = PeState::Compute;
            }
            return Ok(true);
        }
        let a = self.weights_loaded;
        if w == 0 {
            return Err(fault(rowsim_datapath::zmask::DecodeError::ZeroValue {
                word: (masks + a) as usize,
            })
            .into());
        }
        self.filter_spad[a as usize] = w;
        self.counters.filter_spad_writes += 1;
        self.strobes |= strobe::FILTER_WR;
        self.held.filter_wr = (a, w);
        self.weights_loaded += 1;
        if self.weights_loaded == self.nonzeros {
            self.state = PeState::Compute;
        }
        Ok(true)
    }

    fn issue_mac(&mut self, prim: &Primitive) -> bool {
        if prim.zero_skipping {
            return self.issue_mac_skip(prim);
        }
        let (p, q) = (prim.p, prim.q);
        if self.op == 0 {
            // The whole window must be in the spad before the position starts.
            if !self.window_stored(prim) {
                self.counters.stall_ifmap += 1;
                return false;
            }
            // Once a position: the spad column of the window's first column.
            self.rd_col = (self.window_start(prim) % self.cols as u64) as u32;
        }
        let (f, c) = (self.op_f, self.op_c);
        if f == 0 {
            let a = self.rd_col * q + c;
            self.held_ifmap = self.ifmap_spad[a as usize];
            self.held_zero = (self.zero_buffer >> a) & 1 == 1;
            self.counters.ifmap_spad_reads += 1;
            self.strobes |= strobe::IFMAP_RD;
            self.held.ifmap_rd = (a, self.held_ifmap);
        }
        let gated = prim.zero_gating && self.held_zero;
        if self.held_zero {
            self.strobes |= strobe::ZERO_FLAG;
        }
        let mut weight = 0;
        if !gated {
            // Filter-spad order (s*q + c)*p + f is the issue order.
            let a = self.op;
            weight = self.filter_spad[a as usize];
            self.counters.filter_spad_reads += 1;
            self.strobes |= strobe::FILTER_RD;
            self.held.filter_rd = (a, weight);
        }
        self.rd = Some(RdReg {
            f,
            gated,
            weight,
            ifmap: self.held_ifmap,
        });
        self.op += 1;
        self.op_f += 1;
        if self.op_f == p {
            self.op_f = 0;
            self.next_channel(prim);
        }
        self.end_position_after_last_op();
        true
    }

    /// The ifmap-spad address of MAC `op`'s `(s, c)` in the current position's window.
    #[inline]
    fn skip_ifmap_addr(&self, prim: &Primitive, op: u32) -> u32 {
        let g = op / prim.p;
        let (s, c) = (g / prim.q, g % prim.q);
        let col = ((self.window_start(prim) + s as u64) % self.cols as u64) as u32;
        col * prim.q + c
    }

    /// Whether MAC `op` of the position has a nonzero ifmap value and a nonzero weight.
    #[inline]
    fn skip_nonzero(&self, prim: &Primitive, op: u32) -> bool {
        let a = self.skip_ifmap_addr(prim, op);
        (self.zero_buffer >> a) & 1 == 0
            && (self.weight_zero[op as usize / 64] >> (op % 64)) & 1 == 0
    }

    /// The first MAC at or after `from` with both operands nonzero (`ops` when none).
    #[inline]
    fn skip_next(&self, prim: &Primitive, from: u32) -> u32 {
        (from..self.ops)
            .find(|&op| self.skip_nonzero(prim, op))
            .unwrap_or(self.ops)
    }

    /// Zero skipping's RD stage: the index cycle of a position, or the next nonzero pair.
    fn issue_mac_skip(&mut self, prim: &Primitive) -> bool {
        if !self.indexed {
            if !self.window_stored(prim) {
                self.counters.stall_ifmap += 1;
                return false;
            }
            // The window's index: its zero bits (and the weights'), one read, one cycle.
            self.indexed = true;
            self.counters.index_cycles += 1;
            self.counters.index_reads += 1;
            let nz = (0..self.ops)
                .filter(|&op| self.skip_nonzero(prim, op))
                .count() as u32;
            self.counters.macs_skipped += (self.ops - nz) as u64;
            // Every (s, c) whose ifmap value is nonzero is visited: its value read once, its
            // next-nonzero pointer read once (whether or not its weights are).
            let visited = (0..prim.q * prim.s)
                .filter(|&g| {
                    let a = self.skip_ifmap_addr(prim, g * prim.p);
                    (self.zero_buffer >> a) & 1 == 0
                })
                .count() as u64;
            self.counters.ifmap_spad_reads += visited;
            self.counters.index_reads += visited;
            self.nz_left = nz;
            self.held_group = u32::MAX;
            self.op = self.skip_next(prim, 0);
            if self.op == self.ops {
                self.end_position_after_last_op();
            }
            return true;
        }
        let op = self.op;
        let g = op / prim.p;
        if g != self.held_group {
            // A newly visited (s, c): its value from the ifmap spad (counted with the index).
            let a = self.skip_ifmap_addr(prim, op);
            self.held_group = g;
            self.held_ifmap = self.ifmap_spad[a as usize];
            self.held_zero = false;
            self.strobes |= strobe::IFMAP_RD;
            self.held.ifmap_rd = (a, self.held_ifmap);
        }
        // Compressed weights are packed: weight `op` is at its rank among the nonzero ones.
        let fa = if prim.compressed {
            self.weight_rank[op as usize]
        } else {
            op
        };
        let weight = self.filter_spad[fa as usize];
        self.counters.filter_spad_reads += 1;
        self.strobes |= strobe::FILTER_RD;
        self.held.filter_rd = (fa, weight);
        self.rd = Some(RdReg {
            f: op % prim.p,
            gated: false,
            weight,
            ifmap: self.held_ifmap,
        });
        self.nz_left -= 1;
        self.op = self.skip_next(prim, op + 1);
        if self.op == self.ops {
            self.end_position_after_last_op();
        }
        true
    }

    /// After the `p` MACs of an `(s, c)`: the next channel, and after the last channel the next
    /// ifmap-spad column.
    #[inline]
    fn next_channel(&mut self, prim: &Primitive) {
        self.op_c += 1;
        if self.op_c == prim.q {
            self.op_c = 0;
            self.rd_col += 1;
            if self.rd_col == self.cols {
                self.rd_col = 0;
            }
        }
    }

    /// Once the position's last MAC is issued: the drain comes next.
    #[inline]
    fn end_position_after_last_op(&mut self) {
        if self.op == self.ops {
            self.op = 0;
            self.state = PeState::Drain;
            self.drain_f = 0;
            self.indexed = false;
        }
    }

    fn issue_drain(
        &mut self,
        cx: &StepCtx,
        prim: &Primitive,
        pipe_busy: bool,
    ) -> Result<bool, Fault> {
        if pipe_busy {
            self.counters.pipeline_bubbles += 1;
            return Ok(false);
        }
        if prim.psum_in {
            let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
            if port.peek(cx).is_none() {
                self.counters.stall_psum_in += 1;
                self.drain_waits_for_psum_in = true;
                return Ok(false);
            }
        }
        if !self.ports.psum_out.can_send(cx) {
            self.counters.stall_psum_out += 1;
            self.drain_waits_for_psum_in = false;
            return Ok(false);
        }
        self.drain_psum(cx, cx.cycle, prim)?;
        Ok(true)
    }

    /// Drains psum `drain_f` at edge `at` (`cx`'s edge, or a later one when running ahead),
    /// given that its incoming psum (if any) has arrived by then and the output has a credit.
    #[inline]
    fn drain_psum(&mut self, cx: &StepCtx, at: u64, prim: &Primitive) -> Result<(), Fault> {
        let mut incoming = 0i16;
        if prim.psum_in {
            let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
            incoming = port
                .try_recv_at(cx, at)
                .ok_or("an incoming psum vanished between its check and its use")?;
            self.counters.psums_in += 1;
            self.strobes |= strobe::PSUM_IN;
            self.held.psum_in = incoming;
        }
        let f = self.drain_f;
        let own = self.psum_spad[f as usize];
        self.counters.psum_spad_reads += 1;
        self.strobes |= strobe::PSUM_RD;
        self.held.psum_rd = (f, own);
        let out = mac::add(own, incoming, prim.mac, &mut self.counters.overflows);
        // The psum register clears as it is read out, ready for the next position.
        self.psum_spad[f as usize] = 0;
        if self.ports.psum_out.try_send_at(cx, at, out).is_err() {
            return Err("psum output refused a word although it had a credit".into());
        }
        self.counters.psums_out += 1;
        self.strobes |= strobe::PSUM_OUT;
        self.held.psum_out = out;
        self.drain_f += 1;
        if self.drain_f == prim.p {
            self.drain_f = 0;
            self.x += 1;
            if self.x == prim.f {
                self.x = 0;
                self.row += 1;
            }
            self.state = if self.row == prim.rows {
                PeState::Done
            } else {
                PeState::Compute
            };
        }
        Ok(())
    }

    /// Drains psums `drain_f ..` at the `n` edges from `first` on, one an edge, as
    /// [`Pe::drain_psum`] at each: the incoming psums (already arrived by their edges) taken and
    /// the outgoing ones sent as one run each way (`n` output credits held, short of the
    /// position's last psum).
    fn drain_run(
        &mut self,
        cx: &StepCtx,
        first: u64,
        n: usize,
        prim: &Primitive,
    ) -> Result<(), Fault> {
        debug_assert!(self.drain_f as usize + n < prim.p as usize);
        let mut incoming = std::mem::take(&mut self.run_buf);
        incoming.clear();
        if prim.psum_in {
            let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
            if port.take_run_at(cx, first, n, &mut incoming) != n {
                return Err("incoming psums vanished between their check and their use".into());
            }
            self.counters.psums_in += n as u64;
            self.strobes |= strobe::PSUM_IN;
            self.held.psum_in = incoming[n - 1];
        } else {
            incoming.resize(n, 0);
        }
        let f0 = self.drain_f as usize;
        let mut out = Vec::with_capacity(n);
        let mut own = 0;
        for (k, &inc) in incoming.iter().enumerate() {
            own = self.psum_spad[f0 + k];
            out.push(mac::add(own, inc, prim.mac, &mut self.counters.overflows));
            // The psum register clears as it is read out, ready for the next position.
            self.psum_spad[f0 + k] = 0;
        }
        self.run_buf = incoming;
        self.counters.psum_spad_reads += n as u64;
        self.strobes |= strobe::PSUM_RD | strobe::PSUM_OUT;
        let f_last = (f0 + n - 1) as u32;
        self.held.psum_rd = (f_last, own);
        self.held.psum_out = out[n - 1];
        if self.ports.psum_out.send_run_at(cx, first, out).is_err() {
            return Err("psum output refused a run although it held the credits".into());
        }
        self.counters.psums_out += n as u64;
        self.drain_f += n as u32;
        Ok(())
    }

    /// While the FSM is ahead (through `a`): when the ifmap port next has an arrived value to
    /// store, and when the FSM next needs a step.
    fn note_next(&mut self, cx: &StepCtx, prim: &Primitive, a: u64) {
        self.port_next = if self.ifmap_port_blocked(prim) {
            None
        } else {
            self.ports
                .ifmap_in
                .head_ready_at()
                .map(|r| r.max(cx.cycle + 1).max(self.port_free))
        };
        self.fsm_next = if self.state == PeState::LoadFilters {
            // The burst took every weight on its way: the next one, if already sent.
            self.ports.filter_in.head_ready_at().map(|r| r.max(a + 1))
        } else {
            Some(a + 1)
        };
    }

    /// After a step at `cx` that moved: the edges after it whose every input is already known,
    /// run now (a burst), exactly as steps at them would.
    /// - A position whose window is stored computes the rest of its MACs and the two pipeline
    ///   bubbles (as [`Pe::burst`]).
    /// - A filter load takes the weights already on their way, each at the first edge at or
    ///   after its arrival, one an edge (the edges between are filter stalls), to the last.
    /// - A drain sends the position's psums one an edge while the incoming psums are already
    ///   on their way and the output credits held now last, short of the last psum (which
    ///   moves the window, and with it what the ifmap write port may do: that one takes a step
    ///   of its own).
    /// - A position waiting for its window stalls while the ifmap values already on their way
    ///   are stored, one an edge, until the window is complete or the next value is not on its
    ///   way yet (which then wakes the PE at its arrival). The port has worked those edges
    ///   (`port_free`): a step at one of them leaves it alone.
    ///
    /// Only the control FSM runs ahead: the ifmap write port is independent of it through all
    /// three (it depends on the window, which none moves), so links still wake the PE for it
    /// at the edges its values arrive, and at each edge a value that arrived waits (see
    /// [`Pe::step`], `port_next`). A filter-load or drain burst needs an empty pipeline, and a
    /// drain burst an ifmap port with nothing to do. Dense filter loads only: a compressed row
    /// can fault part way, which must stop the run at that word's edge.
    fn run_ahead(&mut self, cx: &StepCtx, prim: &Primitive) -> Result<(), Fault> {
        let mut c = cx.cycle;
        let pipe_empty = self.rd.is_none() && self.mul.is_none();
        match self.state {
            // The rest of the position's MACs and the two bubbles: they read only the window,
            // which the ifmap port does not write (it fills free columns).
            PeState::Compute if self.window_stored(prim) && self.burst_edges(prim).is_some() => {
                c += self.burst(prim);
            }
            _ if !pipe_empty => {}
            PeState::LoadFilters if !prim.compressed => {
                while self.state == PeState::LoadFilters {
                    let Some(r) = self.ports.filter_in.head_ready_at() else {
                        break;
                    };
                    let at = r.max(c + 1);
                    // Stalls until it arrives, then the load.
                    self.counters.stall_filter += at - c - 1;
                    self.counters.active_cycles += at - c;
                    c = at;
                    self.load_weight(cx, at, prim);
                }
            }
            // A position waiting for its window: a stall at each edge while the values already
            // on their way are stored, one an edge, up to the one that completes the window
            // (the MAC issues at the edge after it) or the first edge with none arrived.
            PeState::Compute if !self.window_stored(prim) => {
                while !self.window_stored(prim) && !self.ifmap_port_blocked(prim) {
                    let e = c + 1;
                    if self.ports.ifmap_in.head_ready_at().is_none_or(|r| r > e) {
                        break;
                    }
                    let v = self
                        .ports
                        .ifmap_in
                        .try_recv_at(cx, e)
                        .ok_or("an ifmap value vanished between its check and its use")?;
                    self.counters.stall_ifmap += 1;
                    self.counters.active_cycles += 1;
                    self.write_ifmap(v, prim);
                    c = e;
                }
                self.port_free = self.port_free.max(c + 1);
            }
            PeState::Drain if self.ifmap_port_blocked(prim) => {
                let mut n = ((prim.p - 1).saturating_sub(self.drain_f) as usize)
                    .min(self.ports.psum_out.credits_held() as usize);
                if prim.psum_in {
                    let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
                    n = port.arrived_run(c + 1, n);
                }
                if n > 0 {
                    self.drain_run(cx, c + 1, n, prim)?;
                    self.counters.active_cycles += n as u64;
                    c += n as u64;
                }
            }
            _ => {}
        }
        if c > cx.cycle {
            self.ahead_until = Some(c);
        }
        Ok(())
    }

    /// The ADD stage (the MAC that was in MUL updates its psum).
    #[inline]
    fn add_stage(&mut self, m: MulReg, prim: &Primitive) {
        if !m.gated {
            let old = self.psum_spad[m.f as usize];
            let sum = mac::add(old, m.product, prim.mac, &mut self.counters.overflows);
            self.psum_spad[m.f as usize] = sum;
            self.counters.psum_spad_reads += 1;
            self.counters.psum_spad_writes += 1;
            self.strobes |= strobe::PSUM_RD | strobe::PSUM_WR;
            self.held.psum_rd = (m.f, old);
            self.held.psum_wr = (m.f, sum);
            self.held.sum = sum;
        }
    }

    /// The MUL stage (the MAC that was in RD); gating holds the multiplier still.
    #[inline]
    fn mul_stage(&mut self, r: RdReg, prim: &Primitive) -> MulReg {
        if r.gated {
            self.counters.macs_gated += 1;
            self.strobes |= strobe::MAC_GATED;
        } else {
            self.mac_a = r.weight;
            self.mac_b = r.ifmap;
            self.mac_product =
                mac::product(r.weight, r.ifmap, prim.mac, &mut self.counters.overflows);
            self.counters.macs += 1;
            self.strobes |= strobe::MAC_VALID;
        }
        MulReg {
            f: r.f,
            gated: r.gated,
            product: self.mac_product,
        }
    }

    /// ADD then MUL, as at an edge; returns whether the pipeline held anything before it.
    #[inline]
    fn advance_pipeline(&mut self, prim: &Primitive) -> bool {
        let pipe_busy = self.rd.is_some() || self.mul.is_some();
        if let Some(m) = self.mul.take() {
            self.add_stage(m, prim);
        }
        if let Some(r) = self.rd.take() {
            self.mul = Some(self.mul_stage(r, prim));
        }
        pipe_busy
    }

    /// Whether the ifmap spad's write port has nothing to do until the window moves (at the end
    /// of a drain): every value stored, or the spad's free columns filled (a column is free while
    /// it is inside the spad's window from the current position).
    fn ifmap_port_blocked(&self, prim: &Primitive) -> bool {
        let limit = (self.window_start(prim) + self.cols as u64) * prim.q as u64;
        self.ifmaps_stored == self.total_ifmaps || self.ifmaps_stored >= limit
    }

    /// Whether the current position's window is in the ifmap spad.
    fn window_stored(&self, prim: &Primitive) -> bool {
        self.op > 0
            || self.ifmaps_stored >= (self.window_start(prim) + prim.s as u64) * prim.q as u64
    }

    /// Edges from now in which the PE touches no link: the pipeline bubbles before a drain,
    /// while the ifmap write port has nothing to do. (A position's MACs, which a step that finds
    /// the window stored runs ahead, are [`Pe::run_ahead`]'s.)
    fn quiet_edges(&self) -> u64 {
        let Some(prim) = self.prim else {
            return 0;
        };
        if !self.ifmap_port_blocked(&prim) {
            return 0;
        }
        match self.state {
            PeState::Drain if self.rd.is_some() => 2,
            PeState::Drain if self.mul.is_some() => 1,
            _ => 0,
        }
    }

    /// One edge without links (the PE is in a burst, or stalled with nothing arriving).
    fn quiet_edge(&mut self, prim: &Primitive) {
        self.strobes = 0;
        self.counters.active_cycles += 1;
        let pipe_busy = self.advance_pipeline(prim);
        match self.state {
            PeState::LoadFilters => self.counters.stall_filter += 1,
            PeState::Compute => {
                self.issue_mac(prim);
            }
            PeState::Drain if pipe_busy => self.counters.pipeline_bubbles += 1,
            PeState::Drain if self.drain_waits_for_psum_in => self.counters.stall_psum_in += 1,
            PeState::Drain => self.counters.stall_psum_out += 1,
            PeState::Idle | PeState::Done => {}
        }
    }

    /// The rest of a position's MACs and the two bubbles after them, in one go: the same
    /// operations in the same order as edge by edge (what is in the pipeline first, then each
    /// MAC through MUL and ADD), so the same bits and counts. Returns the edges it covered.
    fn burst(&mut self, prim: &Primitive) -> u64 {
        if prim.zero_skipping {
            return self.burst_skip(prim);
        }
        let edges = (self.ops - self.op) as u64 + 2;
        if let Some(m) = self.mul.take() {
            self.add_stage(m, prim);
        }
        if let Some(r) = self.rd.take() {
            let m = self.mul_stage(r, prim);
            self.add_stage(m, prim);
        }
        // A group of MACs started part way (woken in the middle of one): one at a time.
        while self.state == PeState::Compute && self.op_f != 0 {
            self.issue_mac(prim);
            if let Some(r) = self.rd.take() {
                let m = self.mul_stage(r, prim);
                self.add_stage(m, prim);
            }
        }
        // Whole groups: the `p` MACs of one (s, c) share an ifmap value, read once.
        let p = prim.p as usize;
        while self.state == PeState::Compute {
            if self.op == 0 {
                self.rd_col = (self.window_start(prim) % self.cols as u64) as u32;
            }
            let a = (self.rd_col * prim.q + self.op_c) as usize;
            let x = self.ifmap_spad[a];
            let zero = (self.zero_buffer >> a) & 1 == 1;
            self.held_ifmap = x;
            self.held_zero = zero;
            self.counters.ifmap_spad_reads += 1;
            let base = self.op as usize;
            if prim.zero_gating && zero {
                self.counters.macs_gated += p as u64;
            } else {
                let weights = &self.filter_spad[base..base + p];
                let psums = &mut self.psum_spad[..p];
                let ov = &mut self.counters.overflows;
                let mut product = self.mac_product;
                for (acc, &wt) in psums.iter_mut().zip(weights) {
                    product = mac::product(wt, x, prim.mac, ov);
                    *acc = mac::add(*acc, product, prim.mac, ov);
                }
                self.mac_a = weights[p - 1];
                self.mac_b = x;
                self.mac_product = product;
                let c = &mut self.counters;
                c.macs += p as u64;
                c.filter_spad_reads += p as u64;
                c.psum_spad_reads += p as u64;
                c.psum_spad_writes += p as u64;
            }
            self.op += prim.p;
            self.next_channel(prim);
            self.end_position_after_last_op();
        }
        self.counters.active_cycles += edges;
        self.counters.pipeline_bubbles += 2;
        self.strobes = 0;
        edges
    }

    /// Zero skipping's burst (the position indexed): its remaining nonzero pairs and the two
    /// bubbles, each MAC as edge by edge.
    fn burst_skip(&mut self, prim: &Primitive) -> u64 {
        let edges = self.nz_left as u64 + 2;
        if let Some(m) = self.mul.take() {
            self.add_stage(m, prim);
        }
        if let Some(r) = self.rd.take() {
            let m = self.mul_stage(r, prim);
            self.add_stage(m, prim);
        }
        while self.state == PeState::Compute {
            self.issue_mac_skip(prim);
            if let Some(r) = self.rd.take() {
                let m = self.mul_stage(r, prim);
                self.add_stage(m, prim);
            }
        }
        self.counters.active_cycles += edges;
        self.counters.pipeline_bubbles += 2;
        self.strobes = 0;
        edges
    }

    /// The edges a burst from here covers, if one can run (see [`Pe::quiet_edges`]).
    fn burst_edges(&self, prim: &Primitive) -> Option<u64> {
        if self.state != PeState::Compute {
            return None;
        }
        if prim.zero_skipping {
            return self.indexed.then_some(self.nz_left as u64 + 2);
        }
        Some((self.ops - self.op) as u64 + 2)
    }

    /// The ifmap spad's write port at `cx`'s edge: the value at the head of the ifmap FIFO into
    /// the next free entry, if it has arrived and the spad has room.
    fn store_ifmap(&mut self, cx: &StepCtx, prim: &Primitive) -> bool {
        if cx.cycle < self.port_free || self.ifmap_port_blocked(prim) {
            return false;
        }
        let Some(v) = self.ports.ifmap_in.try_recv(cx) else {
            return false;
        };
        self.write_ifmap(v, prim);
        true
    }

    /// Writes an arriving ifmap value into the next free entry of the spad's window.
    #[inline]
    fn write_ifmap(&mut self, v: i16, prim: &Primitive) {
        let a = self.wr_col * prim.q + self.wr_c;
        self.wr_c += 1;
        if self.wr_c == prim.q {
            self.wr_c = 0;
            self.wr_col += 1;
            if self.wr_col == self.cols {
                self.wr_col = 0;
            }
        }
        self.ifmap_spad[a as usize] = v;
        if v == 0 {
            self.zero_buffer |= 1 << a;
        } else {
            self.zero_buffer &= !(1 << a);
        }
        self.ifmaps_stored += 1;
        self.counters.ifmap_spad_writes += 1;
        self.strobes |= strobe::IFMAP_WR;
        self.held.ifmap_wr = (a, v);
    }
}

impl Component for Pe {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        // Strobes (enables) last one cycle, also into an idle or finished PE.
        self.strobes = 0;
        self.last_cycle = cx.cycle;
        if let Some(a) = self.ahead_until {
            if cx.cycle <= a {
                // The control FSM has run through this edge already (a burst); a value has
                // reached the ifmap port, which works on as it would have.
                let Some(prim) = self.prim else {
                    return Ok(Activity::Idle);
                };
                // The edge moved (the burst ran through it), whatever the port does.
                self.store_ifmap(cx, &prim);
                self.note_next(cx, &prim, a);
                return Ok(Activity::Moved);
            }
            self.ahead_until = None;
        }
        if matches!(self.state, PeState::Done | PeState::Idle) {
            let Some(prim) = self.config_port.try_recv(cx) else {
                return Ok(Activity::Idle);
            };
            self.configure(prim).map_err(|e| e.to_string())?;
            return Ok(Activity::Moved);
        }
        let Some(prim) = self.prim else {
            return Ok(Activity::Idle);
        };
        self.counters.active_cycles += 1;
        let pipe_busy = self.advance_pipeline(&prim);
        let mut moved = pipe_busy;
        // RD: issue the next operation, from the state as it was before this edge.
        moved |= match self.state {
            PeState::LoadFilters => self.issue_filter_load(cx, &prim)?,
            PeState::Compute => self.issue_mac(&prim),
            PeState::Drain => self.issue_drain(cx, &prim, pipe_busy)?,
            PeState::Idle | PeState::Done => false,
        };
        // The ifmap spad's write port works alongside.
        moved |= self.store_ifmap(cx, &prim);
        if cx.ahead && moved {
            self.run_ahead(cx, &prim)?;
            if let Some(a) = self.ahead_until {
                self.note_next(cx, &prim, a);
            }
        }
        if self.traced {
            self.held.out_credits = self.ports.psum_out.credits(cx);
        }
        Ok(Activity::from_moved(moved))
    }

    /// An idle step (a stall, or waiting for a primitive) repeats until a link wakes the PE;
    /// through a burst it has run ahead (and the pipeline bubbles before a drain) it looks at
    /// no link but the ifmap port's, and at none while that port has nothing to do.
    fn wake(&self, cx: &StepCtx, did: Activity) -> Wake {
        if let Some(a) = self.ahead_until {
            // Every edge up to `a` moves (a burst), and the FSM needs a step after it. Until
            // then only a value for the ifmap port needs a step, and none does while the port
            // has nothing to do (its window stays where it is through a burst).
            let prim = self.prim.as_ref().expect("a burst runs a primitive");
            let c = cx.cycle;
            if self.ifmap_port_blocked(prim) && self.fsm_next == Some(a + 1) {
                return Wake::IgnoringLinksFor(a - c);
            }
            // A value that arrived already and waits for the port needs a step; so does the
            // FSM after the burst, unless a filter load is left waiting for its next weight.
            let next = match (self.port_next, self.fsm_next) {
                (Some(p), Some(f)) => Some(p.min(f)),
                (p, f) => p.or(f),
            };
            return match next {
                Some(n) if n <= a + 1 => Wake::IdleFor(n - c),
                n => Wake::Ahead {
                    moving: a - c,
                    then: n.map(|n| n - c),
                },
            };
        }
        if !did.moved() {
            return Wake::Idle;
        }
        match self.quiet_edges() {
            0 => Wake::Next,
            n => Wake::IgnoringLinksFor(n),
        }
    }

    fn settle(&mut self, last: &StepCtx, mut edges: u64) {
        if let Some(a) = self.ahead_until {
            // The edges up to `a` are accounted for by the burst.
            if last.cycle <= a {
                return;
            }
            edges = edges.min(last.cycle - a);
            self.ahead_until = None;
        }
        let Some(prim) = self.prim else {
            self.strobes = 0;
            return;
        };
        while edges > 0 {
            let pipe_empty = self.rd.is_none() && self.mul.is_none();
            match self.state {
                PeState::Idle | PeState::Done => {
                    self.strobes = 0;
                    return;
                }
                // A stall: the same cause at every edge.
                PeState::LoadFilters if pipe_empty => {
                    self.counters.stall_filter += edges;
                    break;
                }
                PeState::Compute if pipe_empty && !self.window_stored(&prim) => {
                    self.counters.stall_ifmap += edges;
                    break;
                }
                PeState::Drain if pipe_empty => {
                    if self.drain_waits_for_psum_in {
                        self.counters.stall_psum_in += edges;
                    } else {
                        self.counters.stall_psum_out += edges;
                    }
                    break;
                }
                PeState::Compute if self.burst_edges(&prim).is_some_and(|b| b <= edges) => {
                    edges -= self.burst(&prim);
                    continue;
                }
                _ => {}
            }
            self.quiet_edge(&prim);
            edges -= 1;
        }
        if edges > 0 {
            // The stall branches above: the edges still count as active.
            self.counters.active_cycles += edges;
            self.strobes = 0;
        }
    }

    fn holds_work(&self) -> bool {
        matches!(
            self.state,
            PeState::LoadFilters | PeState::Compute | PeState::Drain
        ) || self.config_port.pending()
    }

    /// Control state, the three spads (signed 16-bit words, 16 to a line), the zero buffer, the
    /// input FIFO levels and the counters.
    fn state(&self) -> Option<String> {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{}: {:?}  row {}  x {}  op {}  drain {}  weights loaded {}  ifmaps stored {}",
            self.name,
            self.state,
            self.row,
            self.x,
            self.op,
            self.drain_f,
            self.weights_loaded,
            self.ifmaps_stored
        );
        match &self.prim {
            Some(p) => {
                let _ = writeln!(o, "  primitive: {p:?}");
            }
            None => o.push_str("  primitive: (not configured)\n"),
        }
        for (name, spad) in [
            ("filter_spad", &self.filter_spad),
            ("ifmap_spad", &self.ifmap_spad),
            ("psum_spad", &self.psum_spad),
        ] {
            let _ = writeln!(o, "  {name} ({} entries):", spad.len());
            for (k, chunk) in spad.chunks(16).enumerate() {
                let words: Vec<String> = chunk.iter().map(|v| format!("{v:6}")).collect();
                let _ = writeln!(o, "    [{:3}] {}", k * 16, words.join(""));
            }
        }
        let _ = writeln!(
            o,
            "  zero_buffer: {:#x}\n  fifo levels: filter_in {}  ifmap_in {}  psum_in {}",
            self.zero_buffer,
            self.ports.filter_in.in_flight(),
            self.ports.ifmap_in.in_flight(),
            self.ports.psum_in.as_ref().map_or(0, |l| l.in_flight()),
        );
        let c = &self.counters;
        let _ = writeln!(
            o,
            "  counters: macs {} (gated {})  psums in {} out {}  stalls filter {} ifmap {} psum_in {} psum_out {}",
            c.macs,
            c.macs_gated,
            c.psums_in,
            c.psums_out,
            c.stall_filter,
            c.stall_ifmap,
            c.stall_psum_in,
            c.stall_psum_out
        );
        Some(o)
    }

    fn declare(&mut self, r: &mut SignalRegistry) -> Result<(), TraceError> {
        let n = self.name.clone();
        let (fa, ia, pa) = self.addr_bits;
        let mut s = |name: &str, w: u32| r.signal(&n, name, w);
        self.sig = Signals {
            state: s("state", 3)?,
            row: s("row", 16)?,
            x: s("x", 16)?,
            filter_fifo_level: s("filter_fifo_level", 8)?,
            ifmap_fifo_level: s("ifmap_fifo_level", 8)?,
            psum_in_fifo_level: s("psum_in_fifo_level", 8)?,
            psum_out_credits: s("psum_out_credits", 8)?,
            filter_wr_en: s("filter_spad_wr_en", 1)?,
            filter_wr_addr: s("filter_spad_wr_addr", fa)?,
            filter_wr_data: s("filter_spad_wr_data", 16)?,
            filter_rd_en: s("filter_spad_rd_en", 1)?,
            filter_rd_addr: s("filter_spad_rd_addr", fa)?,
            filter_rd_data: s("filter_spad_rd_data", 16)?,
            ifmap_wr_en: s("ifmap_spad_wr_en", 1)?,
            ifmap_wr_addr: s("ifmap_spad_wr_addr", ia)?,
            ifmap_wr_data: s("ifmap_spad_wr_data", 16)?,
            ifmap_rd_en: s("ifmap_spad_rd_en", 1)?,
            ifmap_rd_addr: s("ifmap_spad_rd_addr", ia)?,
            ifmap_rd_data: s("ifmap_spad_rd_data", 16)?,
            zero_buffer: s("zero_buffer", self.sizes.ifmap_entries.clamp(1, 64))?,
            zero_flag: s("zero_flag", 1)?,
            mac_valid: s("mac_valid", 1)?,
            mac_gated: s("mac_gated", 1)?,
            mac_a: s("mac_a", 16)?,
            mac_b: s("mac_b", 16)?,
            mac_product: s("mac_product", 16)?,
            mac_sum: s("mac_sum", 16)?,
            psum_rd_en: s("psum_spad_rd_en", 1)?,
            psum_rd_addr: s("psum_spad_rd_addr", pa)?,
            psum_rd_data: s("psum_spad_rd_data", 16)?,
            psum_wr_en: s("psum_spad_wr_en", 1)?,
            psum_wr_addr: s("psum_spad_wr_addr", pa)?,
            psum_wr_data: s("psum_spad_wr_data", 16)?,
            psum_in_en: s("psum_in_en", 1)?,
            psum_in_data: s("psum_in_data", 16)?,
            psum_out_en: s("psum_out_en", 1)?,
            psum_out_data: s("psum_out_data", 16)?,
        };
        self.traced = self.sig.psum_out_credits.is_traced();
        Ok(())
    }

    fn trace(&self, t: &mut TraceFrame) {
        let g = &self.sig;
        let on = |bit: u16| self.strobes & bit != 0;
        let w = |v: i16| v as u16 as u64;
        t.set(g.state, self.state as u64);
        t.set(g.row, self.row as u64 & 0xFFFF);
        t.set(g.x, self.x as u64 & 0xFFFF);
        let lvl = |n: usize| n.min(255) as u64;
        // Levels after this edge, whichever end ran ahead of it.
        let at = self.last_cycle;
        t.set(
            g.filter_fifo_level,
            lvl(self.ports.filter_in.in_flight_at(at)),
        );
        t.set(
            g.ifmap_fifo_level,
            lvl(self.ports.ifmap_in.in_flight_at(at)),
        );
        t.set(
            g.psum_in_fifo_level,
            lvl(self
                .ports
                .psum_in
                .as_ref()
                .map_or(0, |l| l.in_flight_at(at))),
        );
        t.set(g.psum_out_credits, self.held.out_credits.min(255) as u64);
        // Enables pulse; addresses and data hold their last value, as a register would.
        let h = &self.held;
        for (sig, bit, (a, d)) in [
            (
                [g.filter_wr_en, g.filter_wr_addr, g.filter_wr_data],
                strobe::FILTER_WR,
                h.filter_wr,
            ),
            (
                [g.filter_rd_en, g.filter_rd_addr, g.filter_rd_data],
                strobe::FILTER_RD,
                h.filter_rd,
            ),
            (
                [g.ifmap_wr_en, g.ifmap_wr_addr, g.ifmap_wr_data],
                strobe::IFMAP_WR,
                h.ifmap_wr,
            ),
            (
                [g.ifmap_rd_en, g.ifmap_rd_addr, g.ifmap_rd_data],
                strobe::IFMAP_RD,
                h.ifmap_rd,
            ),
            (
                [g.psum_rd_en, g.psum_rd_addr, g.psum_rd_data],
                strobe::PSUM_RD,
                h.psum_rd,
            ),
            (
                [g.psum_wr_en, g.psum_wr_addr, g.psum_wr_data],
                strobe::PSUM_WR,
                h.psum_wr,
            ),
        ] {
            t.set_bool(sig[0], on(bit));
            t.set(sig[1], a as u64);
            t.set(sig[2], w(d));
        }
        let zb_mask = if self.sizes.ifmap_entries >= 64 {
            u64::MAX
        } else {
            (1u64 << self.sizes.ifmap_entries) - 1
        };
        t.set(g.zero_buffer, self.zero_buffer & zb_mask);
        t.set_bool(g.zero_flag, on(strobe::ZERO_FLAG));
        t.set_bool(g.mac_valid, on(strobe::MAC_VALID));
        t.set_bool(g.mac_gated, on(strobe::MAC_GATED));
        t.set(g.mac_a, w(self.mac_a));
        t.set(g.mac_b, w(self.mac_b));
        t.set(g.mac_product, w(self.mac_product));
        t.set(g.mac_sum, w(h.sum));
        t.set_bool(g.psum_in_en, on(strobe::PSUM_IN));
        t.set(g.psum_in_data, w(h.psum_in));
        t.set_bool(g.psum_out_en, on(strobe::PSUM_OUT));
        t.set(g.psum_out_data, w(h.psum_out));
    }
}
