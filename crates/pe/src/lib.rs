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
//!    `floor(entries / q)` columns, in which a column is free once every window that uses it
//!    has been computed, and so is each entry of the window's leading `min(U, S)` columns (the
//!    ones the next position drops) as soon as its last MAC of the position has issued (the
//!    sliding window: an `(s, c)` group reads its value once and holds it for its `p` filters,
//!    so its entry can take the next window's value, in the same cycle as its last MAC). So
//!    the next position's columns load while this one computes, even when its window fills
//!    the spad (`q*S = entries`).
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
//! and runs ahead of the scheduler in one step whatever its inputs already on their way decide
//! (`Pe::run_ahead`): a filter load's weights; a drain's psums, and with its last psum the
//! next window's ifmap values and that position's MACs; the same operations at the same edges,
//! with the same credits and arrivals at the other ends of its links. A step is needed only
//! where a link can still change what the PE does.
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
//! # Where the code is
//! - `spads.rs`: the filter, ifmap and psum spads, and the ifmap spad's window and write port;
//! - `pipeline.rs`: the RD, MUL and ADD stages and the multiplier's registers;
//! - `engine.rs`: one engine per datapath mode (dense with zero gating; zero skipping, with
//!   weights dense or compressed) behind a trait: how a filter word is written, how a
//!   position's operations issue and how the rest of a position runs at once;
//! - `control.rs`: the control FSM (filter load, compute, drain, stalls), the ifmap write port,
//!   the run-ahead, and the PE as a clocked component;
//! - `signals.rs`: the traced signals and the state text.
//!
//! # What counts as an access (the PE's counters)
//! filter spad: a write per weight loaded, a read per MAC not gated. ifmap spad: a write per
//! value stored, a read per `(position, s, c)`. psum spad: a read and a write per MAC not gated,
//! and a read per psum drained.

mod control;
mod engine;
mod pipeline;
mod signals;
mod spads;
pub mod testbench;

use std::fmt;

use rowsim_config::HwConfig;
use rowsim_datapath::mac::{MacConfig, MacCounters};
use rowsim_kernel::{LinkRx, LinkTx, Port};

use engine::Mode;
use pipeline::Pipeline;
use signals::{strobe, Probe, Signals};
use spads::{FilterSpad, IfmapSpad};

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
    pub(crate) fn weight_slots(&self) -> u32 {
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

/// The links a PE is wired to.
pub struct PePorts {
    pub filter_in: LinkRx<i16>,
    pub ifmap_in: LinkRx<i16>,
    /// `None` when the PE never takes psums in (the chip wires it per array position).
    pub psum_in: Option<LinkRx<i16>>,
    pub psum_out: LinkTx<i16>,
}

/// What the control FSM and the engines work on: the spads, the pipeline, the position in the
/// program, the counters and what a trace samples.
pub(crate) struct Datapath {
    state: PeState,
    filter: FilterSpad,
    ifmap: IfmapSpad,
    psum: Vec<i16>,
    pipe: Pipeline,
    /// The position: ifmap row, output column, next operation (0..p*q*S), next psum to drain
    /// (0..p).
    row: u32,
    x: u32,
    op: u32,
    drain_f: u32,
    /// From the primitive: operations a position (`p*q*S`) and the row width `W`.
    ops: u32,
    w: u32,
    counters: PeCounters,
    probe: Probe,
}

impl Datapath {
    fn new(sizes: &PeSizes) -> Self {
        Datapath {
            state: PeState::Idle,
            filter: FilterSpad::new(sizes.filter_entries),
            ifmap: IfmapSpad::new(sizes.ifmap_entries),
            psum: vec![0; sizes.psum_entries as usize],
            pipe: Pipeline::default(),
            row: 0,
            x: 0,
            op: 0,
            drain_f: 0,
            ops: 0,
            w: 0,
            counters: PeCounters::default(),
            probe: Probe::default(),
        }
    }

    /// First global column of the current position's window.
    #[inline]
    fn window_start(&self, prim: &Primitive) -> u64 {
        self.row as u64 * self.w as u64 + (self.x * prim.u) as u64
    }

    /// Whether the current position's window is in the ifmap spad.
    #[inline]
    fn window_stored(&self, prim: &Primitive) -> bool {
        self.op > 0 || self.ifmap.holds_window(self.window_start(prim), prim)
    }

    /// Entries of the window's leading columns that the next position does not use (the first
    /// `min(U, S)`), in write order, whose last MAC of this position has issued: the write port
    /// may already put the next window's values there. A group of MACs `(s, c)` reads its ifmap
    /// value once, at its first MAC, and holds it for its `p` filters; its entry is free once
    /// the group's last MAC has issued (`op`, the next operation, has passed the group).
    #[inline]
    fn released(&self, prim: &Primitive) -> u64 {
        let leading = (prim.u.min(prim.s) * prim.q) as u64;
        match self.state {
            PeState::Compute => leading.min((self.op / prim.p) as u64),
            PeState::Drain => leading,
            _ => 0,
        }
    }

    /// Whether the ifmap spad's write port has no free entry now.
    #[inline]
    fn ifmap_port_blocked(&self, prim: &Primitive) -> bool {
        self.ifmap_port_blocked_with(prim, self.released(prim))
    }

    /// Whether the write port has no free entry with `released` entries released.
    #[inline]
    fn ifmap_port_blocked_with(&self, prim: &Primitive, released: u64) -> bool {
        self.ifmap
            .port_blocked(self.window_start(prim), prim.q, released)
    }

    /// Writes weight `w` into the next filter-spad entry.
    #[inline]
    fn store_weight(&mut self, w: i16) {
        let a = self.filter.loaded;
        self.filter.entries[a as usize] = w;
        self.counters.filter_spad_writes += 1;
        self.probe.strobes |= strobe::FILTER_WR;
        self.probe.held.filter_wr = (a, w);
        self.filter.loaded += 1;
    }

    /// A weight of an uncompressed row; the position starts after the row's last.
    #[inline]
    fn write_weight(&mut self, w: i16, prim: &Primitive) {
        self.store_weight(w);
        if self.filter.loaded == prim.p * prim.q * prim.s {
            self.state = PeState::Compute;
        }
    }

    /// Once the position's last operation is issued: the drain comes next. Returns whether it
    /// was.
    #[inline]
    fn end_position_after_last_op(&mut self) -> bool {
        if self.op != self.ops {
            return false;
        }
        self.op = 0;
        self.state = PeState::Drain;
        self.drain_f = 0;
        true
    }
}

/// The edges at which a burst releases the window's leading entries: `from` were released
/// before it, and entry `from + k` at `edges[k]` (`k < n`). Valid while the burst is the run's
/// last (its window is the PE's).
#[derive(Clone, Copy, Debug)]
struct Releases {
    valid: bool,
    from: u64,
    n: usize,
    edges: [u64; 64],
}

impl Default for Releases {
    fn default() -> Self {
        Releases {
            valid: false,
            from: 0,
            n: 0,
            edges: [0; 64],
        }
    }
}

impl Releases {
    /// Entries released by edge `e`.
    fn at(&self, e: u64) -> u64 {
        self.from + self.edges[..self.n].iter().take_while(|&&r| r <= e).count() as u64
    }

    /// The first edge after `e` at which another entry is released, if any.
    fn next_after(&self, e: u64) -> Option<u64> {
        self.edges[..self.n].iter().copied().find(|&r| r > e)
    }
}

/// What the ifmap link takes for the PE's write port (see `control.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IfmapAuto {
    /// The values the port can store by edge `a`, through which the FSM has run ahead
    /// (`arm_ifmap`).
    Ahead(u64),
    /// The values that complete the window the FSM waits for (`arm_window`).
    Window,
}

/// A processing element.
pub struct Pe {
    name: String,
    sizes: PeSizes,
    ports: PePorts,
    config_port: Port<Primitive>,
    prim: Option<Primitive>,
    dp: Datapath,
    mode: Mode,
    /// Whether a trace asked for the PE's signals (it then samples its output credits too).
    traced: bool,
    /// In a drain, what the last stalled edge waited for: an incoming psum (true) or room in
    /// the output FIFO (false). A stall repeats until a link wakes the PE, so the settling of
    /// skipped edges counts them against the same cause.
    drain_waits_for_psum_in: bool,
    /// Incoming psums of a drain run (kept to reuse its allocation).
    run_buf: Vec<i16>,
    /// The last edge through which the control FSM has already run ahead (see
    /// `control.rs`, `run_ahead`); until then a step only works the ifmap write port, which the
    /// burst left alone.
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
    /// While the FSM is ahead: at `fsm_next` its drain would only stall for the psum from the
    /// PE below, of which none is on its way yet (its arrival wakes the PE; see `wake`).
    fsm_waits_below: bool,
    /// The first edge at which the ifmap write port may act: the edge after the last one a run
    /// ahead stored a value at (a step at an earlier edge leaves the port alone: it has already
    /// worked that edge).
    port_free: u64,
    /// While the FSM is ahead through a position's MACs: when they release the window's
    /// leading entries to the write port (see `Datapath::released`), so that the port works
    /// each edge with the entries free at it.
    releases: Releases,
    /// Whether the ifmap link takes values for the write port, and which (see `control.rs`).
    ifmap_auto: Option<IfmapAuto>,
    /// The edges `arm_ifmap` hands the ifmap link (kept to reuse its allocation).
    not_before: Vec<u64>,
    /// A fault found while settling skipped edges (which cannot fail), reported at the next
    /// step.
    deferred: Option<String>,
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
            dp: Datapath::new(&sizes),
            mode: Mode::Dense(Default::default()),
            traced: false,
            drain_waits_for_psum_in: false,
            run_buf: Vec::new(),
            ahead_until: None,
            last_cycle: 0,
            port_next: None,
            fsm_next: None,
            fsm_waits_below: false,
            port_free: 0,
            releases: Releases::default(),
            ifmap_auto: None,
            not_before: Vec::new(),
            deferred: None,
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

    /// Wires the PE's configuration port: the top-level controller sends each pass's primitive
    /// over it (the per-pass part of what the scan chain carries), and the PE takes it once it
    /// is idle or has finished its last primitive. A PE with this port never sleeps.
    pub fn with_config_port(mut self, rx: LinkRx<Primitive>) -> Self {
        self.config_port = Port::wired(rx);
        self
    }

    /// Loads a primitive (the scan chain's per-pass configuration); the PE starts as soon as its
    /// operands arrive.
    pub fn configure(&mut self, prim: Primitive) -> Result<(), PeError> {
        if matches!(
            self.dp.state,
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
        let dp = &mut self.dp;
        dp.state = PeState::LoadFilters;
        dp.filter.loaded = 0;
        dp.ifmap.configure(&prim);
        dp.row = 0;
        dp.x = 0;
        dp.op = 0;
        dp.drain_f = 0;
        dp.ops = prim.p * prim.q * prim.s;
        dp.w = prim.w();
        dp.psum.iter_mut().for_each(|v| *v = 0);
        self.mode.configure(&prim, &self.sizes);
        Ok(())
    }

    pub fn counters(&self) -> &PeCounters {
        &self.dp.counters
    }

    pub fn state(&self) -> PeState {
        self.dp.state
    }

    /// The psum spad's current contents.
    pub fn psum_spad(&self) -> &[i16] {
        &self.dp.psum
    }

    pub fn filter_spad(&self) -> &[i16] {
        &self.dp.filter.entries
    }

    pub fn ifmap_spad(&self) -> &[i16] {
        &self.dp.ifmap.entries
    }
}
