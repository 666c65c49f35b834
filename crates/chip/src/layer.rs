//! A whole CONV layer through the chip: DRAM, the GLB, the NoC and the PE array, executing the
//! mapper's loop nest (see `rowsim_mapper`'s docs) as the hardware would.
//!
//! # What the driver does and what the components do
//! The driver (this module) plays the chip's top-level controller: it lays the layer's tensors
//! out in DRAM before the run (ifmap rows as RLC streams, raw for a first layer; each pass's
//! filters as one raw stream in the order the array takes them), allocates the GLB, and then
//! walks the loop nest phase by phase, each phase a run of the scheduler until every component
//! is idle:
//! 1. **band load** (per image block, filter group, strip, channel block): DRAM read commands for
//!    each row of the band; the words cross the async FIFO; `Inbound` decodes them; the loader
//!    writes the values into the GLB's ifmap banks;
//! 2. **filter load** (per pass): one raw read; the loader writes the weights into the filter
//!    banks, each logical filter row starting on an entry boundary;
//! 3. **pass**: the PEs of the strip are configured (what the scan chain carries); GLB readers
//!    send filters, ifmaps (padding made on the way) and, when the pass continues an
//!    accumulation, psums over the three GINs; chain tops' psums come back over the GON and are
//!    written into the GLB's psum banks;
//! 4. **readout** (after a strip's last channel block): a GLB reader sends each output row
//!    through ReLU to the `Outbound`, which codes it and writes it to DRAM.
//!
//! Nothing is computed by the driver: the output is what the PEs produced and DRAM holds, read
//! back and decoded after the run. Phases do not overlap (the chip's preloading of the next
//! pass's filters is not modelled), so cycle counts are an upper bound of the chip's.

use std::collections::BTreeMap;

use rowsim_config::HwConfig;
use rowsim_datapath::mac::MacConfig;
use rowsim_datapath::rlc::{decode, encode, RlcFormat};
use rowsim_dram::{pack_raw, DramCmd, DramController, Inbound, Kind, Outbound};
use rowsim_glb::{DataType, Glb, GlbLayout, GlbPort, GlbReq, GlbResp};
use rowsim_kernel::{
    Advance, Clock, ComponentId, Feeder, Link, LinkRx, LinkTx, Merge, Scheduler, SimError,
    TraceConfig,
};
use rowsim_mapper::{Counts, Mapping, PerType, Problem};
use rowsim_noc::Gin;
use rowsim_pe::Pe;
use rowsim_workload::{ConvLayer, Tensor};

use crate::array::{gate_strip, pass_primitive, wire_array};
use crate::plan::{ArrayPlan, LogicalPe};
use crate::stream::{GlbAddr, GlbReader, GlbWriter, ReadItem, ReadOut, Src, WriteIn};

/// Why a layer could not run.
#[derive(Debug, thiserror::Error)]
pub enum ChipError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Sim(#[from] SimError),
}

impl ChipError {
    fn setup(e: impl std::fmt::Display) -> Self {
        ChipError::Setup(e.to_string())
    }
}

/// How to run a layer.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub mac: MacConfig,
    pub trace: Option<TraceConfig>,
    /// Primary cycles of silence before the watchdog stops the run (0: the kernel's default,
    /// [`rowsim_kernel::DEFAULT_WATCHDOG_CYCLES`]).
    pub watchdog: u64,
    /// Raised (by Ctrl-C) to stop the run at a cycle boundary, trace flushed.
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Called after each phase of the loop nest (a progress bar).
    pub progress: Option<ProgressHook>,
}

/// A function told where a run is after each phase.
#[derive(Clone)]
pub struct ProgressHook(pub std::sync::Arc<dyn Fn(&Progress) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// What a layer run produced and counted.
#[derive(Clone, Debug)]
pub struct LayerRun {
    /// `[N][M][E][F]`, read back from DRAM and decoded.
    pub ofmap: Tensor,
    /// Accesses counted by the components, in the mapper's terms.
    pub counts: Counts,
    pub core_cycles: u64,
    /// Core cycles spent in processing passes (not in loads or readouts).
    pub processing_cycles: u64,
    pub link_cycles: u64,
    /// Simulated time in picoseconds.
    pub time_ps: u64,
}

/// GLB ports of the controller's datapaths.
const PORTS: usize = 6;

/// (group, filter block, channel block, pass).
type PassKey = (u32, u32, u32, u32);

/// (DRAM address, bus words, values) of a stream.
type Stream = (u64, u32, u32);

struct Layout {
    /// (addr, words) of each ifmap row stream, by (image, channel, row).
    ifmap: BTreeMap<(u32, u32, u32), (u64, u32)>,
    /// Each pass's filter stream, by (group, filter block, channel block, pass).
    filters: BTreeMap<PassKey, Stream>,
    /// Reserved address of each ofmap row stream, by (image, filter, row).
    ofmap: BTreeMap<(u32, u32, u32), u64>,
    memory: Vec<u64>,
}

fn layout_dram(
    layer: &ConvLayer,
    pb: &Problem,
    m: &Mapping,
    ifmap: &Tensor,
    weights: &Tensor,
    fmt: &RlcFormat,
    coded: bool,
) -> Layout {
    let mut memory = Vec::new();
    let mut l = Layout {
        ifmap: BTreeMap::new(),
        filters: BTreeMap::new(),
        ofmap: BTreeMap::new(),
        memory: Vec::new(),
    };
    for img in 0..pb.n {
        for ch in 0..layer.c {
            for y in 0..pb.h {
                let row = ifmap.row(img as usize, ch as usize, y as usize);
                let words = if coded {
                    encode(fmt, row)
                } else {
                    pack_raw(row, 4)
                };
                l.ifmap
                    .insert((img, ch, y), (memory.len() as u64, words.len() as u32));
                memory.extend(words);
            }
        }
    }
    let (p, q, r, t) = (m.p, m.q, m.r, m.t);
    for g in 0..pb.groups {
        for mb in 0..pb.m / m.m {
            for cb in 0..pb.c / (q * r) {
                for fb in 0..m.m / (p * t) {
                    let mut v = Vec::new();
                    for tt in 0..t {
                        for rr in 0..r {
                            for i in 0..pb.r {
                                for s in 0..pb.s {
                                    for c in 0..q {
                                        for f in 0..p {
                                            let filt =
                                                g * pb.m + mb * m.m + fb * p * t + tt * p + f;
                                            // Virtual channel, and its real weight.
                                            let cv = cb * q * r + rr * q + c;
                                            let (ch, ir, js) = pb.real_weight(cv, i, s);
                                            v.push(weights.get([
                                                filt as usize,
                                                ch as usize,
                                                ir as usize,
                                                js as usize,
                                            ]));
                                        }
                                    }
                                }
                            }
                        }
                    }
                    let words = pack_raw(&v, 4);
                    l.filters.insert(
                        (g, mb, cb, fb),
                        (memory.len() as u64, words.len() as u32, v.len() as u32),
                    );
                    memory.extend(words);
                }
            }
        }
    }
    let worst = (pb.f as usize).div_ceil(fmt.pairs_per_word as usize).max(1);
    for img in 0..pb.n {
        for mf in 0..layer.m {
            for e in 0..pb.e {
                l.ofmap.insert((img, mf, e), memory.len() as u64);
                memory.extend(std::iter::repeat_n(0, worst));
            }
        }
    }
    l.memory = memory;
    l
}

struct Ids {
    glb: ComponentId,
    dram: ComponentId,
    cmds: ComponentId,
    inbound: ComponentId,
    loader: ComponentId,
    filter_rd: ComponentId,
    ifmap_rd: ComponentId,
    psum_rd: ComponentId,
    gon_wr: ComponentId,
    readout: ComponentId,
    ofmap_wr: ComponentId,
    pes: BTreeMap<LogicalPe, ComponentId>,
    gins: [ComponentId; 3],
}

impl LayerSim {
    /// Builds the chip for a layer, lays the tensors out in DRAM, and starts the trace if asked.
    /// Nothing is stepped yet. `mapping` must be legal for `layer` on `hw`.
    pub fn new(
        hw: &HwConfig,
        layer: &ConvLayer,
        mapping: &Mapping,
        ifmap: &Tensor,
        weights: &Tensor,
        opts: &RunOptions,
    ) -> Result<LayerSim, ChipError> {
        let pb = Problem::lowered(layer, mapping.dataflow);
        let m = *mapping;
        let plan = ArrayPlan::new(&pb, &m, hw).map_err(ChipError::setup)?;
        let r = &hw.rlc;
        let fmt = RlcFormat::new(r.run_bits, r.level_bits, r.pairs_per_word, r.word_bits)
            .map_err(ChipError::Setup)?;
        let coded = !layer.first || r.code_first_layer_input;
        let lanes = (hw.glb.bank_width_bits / hw.datapath.word_bits) as u64;
        let dl = layout_dram(layer, &pb, &m, ifmap, weights, &fmt, coded);

        // The GLB: the largest band, the psums of a strip, the filters of a pass (rows aligned).
        let band_rows = (0..pb.e.div_ceil(m.e))
            .map(|eb| {
                let (lo, hi) = pb.band(m.e, eb);
                hi - lo
            })
            .max()
            .unwrap_or(0) as u64;
        let (_, block_chans) = pb.block_channels(m.q * m.r, 0);
        let band_words = m.n as u64 * block_chans as u64 * band_rows * pb.w as u64;
        let psum_words = m.n as u64 * m.m as u64 * m.e as u64 * pb.f as u64;
        let row_len = (m.p * m.q * pb.s) as u64;
        let row_stride = row_len.div_ceil(lanes) * lanes;
        let filter_rows = (m.t * m.r * pb.r) as u64;
        let layout = GlbLayout::allocate(
            &layer.name,
            band_words,
            psum_words,
            filter_rows * row_stride,
            hw,
        )
        .map_err(ChipError::setup)?;

        let mut sched = Scheduler::new();
        let core = sched
            .add_clock("core", hw.clocks.core_hz)
            .map_err(ChipError::setup)?;
        let link = sched
            .add_clock("link", hw.clocks.link_hz)
            .map_err(ChipError::setup)?;
        let (dports, dram) =
            rowsim_dram::build(&mut sched, core, link, hw, dl.memory.clone(), "top.dram")
                .map_err(ChipError::setup)?;
        let lk = |name: &str, clk: Clock| {
            Link::<DramCmd>::new(name, clk, 1, 2).map_err(ChipError::setup)
        };
        let reads = lk("top.chip.ctrl.dram_reads", core)?;
        let writes = lk("top.chip.ctrl.dram_writes", core)?;
        let cmds = sched.add(
            core,
            Feeder::new("top.chip.ctrl.dram_reader", reads.tx, Vec::new(), 1),
        );
        sched.add(
            core,
            Merge::new(
                "top.chip.ctrl.dram_cmds",
                vec![reads.rx, writes.rx],
                dports.cmd,
            ),
        );
        let values =
            Link::<i16>::new("top.chip.rlc_in.values", core, 1, 8).map_err(ChipError::setup)?;
        let inbound = sched.add(
            core,
            Inbound::new(
                "top.chip.rlc_in",
                fmt,
                dports.rdata,
                values.tx,
                lanes as usize,
            ),
        );
        // GLB ports.
        let mut ports = Vec::new();
        let mut ends: Vec<Option<(LinkTx<GlbReq>, LinkRx<GlbResp>)>> = Vec::new();
        for i in 0..PORTS {
            let q = Link::<GlbReq>::new(&format!("top.chip.glb.port{i}.req"), core, 1, 2)
                .map_err(ChipError::setup)?;
            let a = Link::<GlbResp>::new(&format!("top.chip.glb.port{i}.resp"), core, 1, 2)
                .map_err(ChipError::setup)?;
            ports.push(GlbPort {
                req: q.rx,
                resp: a.tx,
            });
            ends.push(Some((q.tx, a.rx)));
        }
        let glb = sched.add(
            core,
            Glb::new("top.chip.glb", layout, hw.glb.ports_per_bank, ports),
        );
        let mut port = |i: usize| {
            ends[i]
                .take()
                .ok_or_else(|| ChipError::Setup("GLB port taken twice".into()))
        };
        let (q0, a0) = port(0)?;
        let loader = sched.add(
            core,
            GlbWriter::new("top.chip.glb.loader", q0, a0, WriteIn::Values(values.rx)),
        );
        let w = wire_array(&mut sched, core, &plan, hw).map_err(ChipError::setup)?;
        let (q1, a1) = port(1)?;
        let filter_rd = sched.add(
            core,
            GlbReader::new(
                "top.chip.glb.filter_seq",
                q1,
                a1,
                ReadOut::Beats(w.filter_in),
            ),
        );
        let (q2, a2) = port(2)?;
        let ifmap_rd = sched.add(
            core,
            GlbReader::new("top.chip.glb.ifmap_seq", q2, a2, ReadOut::Beats(w.ifmap_in)),
        );
        let (q3, a3) = port(3)?;
        let psum_rd = sched.add(
            core,
            GlbReader::new("top.chip.glb.psum_seq", q3, a3, ReadOut::Beats(w.psum_in)),
        );
        let (q4, a4) = port(4)?;
        let gon_wr = sched.add(
            core,
            GlbWriter::new("top.chip.glb.psum_writer", q4, a4, WriteIn::Gon(w.gon_out)),
        );
        let (q5, a5) = port(5)?;
        let relu_out =
            Link::<i16>::new("top.chip.relu.out", core, 1, 2).map_err(ChipError::setup)?;
        let readout = sched.add(
            core,
            GlbReader::new(
                "top.chip.glb.readout",
                q5,
                a5,
                ReadOut::Values {
                    tx: relu_out.tx,
                    relu: hw.datapath.relu,
                },
            ),
        );
        let ofmap_wr = sched.add(
            core,
            Outbound::new(
                "top.chip.rlc_out",
                fmt,
                relu_out.rx,
                writes.tx,
                dports.wdata,
            ),
        );
        let ids = Ids {
            glb,
            dram,
            cmds,
            inbound,
            loader,
            filter_rd,
            ifmap_rd,
            psum_rd,
            gon_wr,
            readout,
            ofmap_wr,
            pes: w.pes.clone(),
            gins: [w.filter_gin, w.ifmap_gin, w.psum_gin],
        };
        if opts.watchdog > 0 {
            sched.set_watchdog(opts.watchdog);
        } else {
            sched.set_watchdog(rowsim_kernel::DEFAULT_WATCHDOG_CYCLES);
        }
        if let Some(flag) = &opts.interrupt {
            sched.set_interrupt_flag(flag.clone());
        }
        if let Some(t) = &opts.trace {
            sched.trace_to(t)?;
        }

        let driver = Driver {
            sched,
            ids,
            plan,
            pb,
            m,
            layout,
            lanes,
            row_stride,
            coded,
            dl,
            processing: 0,
            passes: 0,
            next_id: 0,
            link,
            mac: opts.mac,
            zero_gating: hw.datapath.zero_gating,
        };
        Ok(LayerSim {
            phases: phases(&pb, &m),
            driver,
            next: 0,
            active: None,
            layer: layer.clone(),
            fmt,
        })
    }
}

/// Runs one layer. `mapping` must be legal for `layer` on `hw` (see `rowsim_mapper`).
pub fn run_layer(
    hw: &HwConfig,
    layer: &ConvLayer,
    mapping: &Mapping,
    ifmap: &Tensor,
    weights: &Tensor,
    opts: &RunOptions,
) -> Result<LayerRun, ChipError> {
    let mut sim = LayerSim::new(hw, layer, mapping, ifmap, weights, opts)?;
    let result = (|| {
        while sim.run_phase()? {
            if let Some(hook) = &opts.progress {
                (hook.0)(&sim.progress());
            }
        }
        Ok::<(), ChipError>(())
    })();
    let finish = sim.driver.sched.finish_trace();
    result?;
    finish?;
    sim.finish()
}

/// One step of the controller's loop nest; each runs until every component is idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A new strip of `e_cur` rows: the PE columns past it are gated (no simulated time).
    Strip { e_cur: u32 },
    /// The ifmap band of (group, image block, strip, channel block) from DRAM into the GLB.
    Band { g: u32, nb: u32, eb: u32, cb: u32 },
    /// A pass's filters from DRAM into the GLB.
    Filters { g: u32, mb: u32, cb: u32, fb: u32 },
    /// A processing pass of the PE array.
    Pass {
        eb: u32,
        cb: u32,
        fb: u32,
        e_cur: u32,
    },
    /// A finished strip's psums through ReLU and the RLC coder to DRAM.
    Readout {
        g: u32,
        nb: u32,
        mb: u32,
        eb: u32,
        e_cur: u32,
    },
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Phase::Strip { e_cur } => write!(f, "strip of {e_cur} rows"),
            Phase::Band { g, nb, eb, cb } => {
                write!(
                    f,
                    "band load (group {g}, images {nb}, strip {eb}, channels {cb})"
                )
            }
            Phase::Filters { g, mb, cb, fb } => {
                write!(
                    f,
                    "filter load (group {g}, filters {mb}.{fb}, channels {cb})"
                )
            }
            Phase::Pass { eb, cb, fb, .. } => {
                write!(f, "pass (strip {eb}, channels {cb}, filters {fb})")
            }
            Phase::Readout { g, nb, mb, eb, .. } => {
                write!(
                    f,
                    "readout (group {g}, images {nb}, filters {mb}, strip {eb})"
                )
            }
        }
    }
}

/// The controller's loop nest, in order.
pub fn phases(pb: &Problem, m: &Mapping) -> Vec<Phase> {
    let mut out = Vec::new();
    for g in 0..pb.groups {
        for nb in 0..pb.n / m.n {
            for mb in 0..pb.m / m.m {
                for eb in 0..pb.e.div_ceil(m.e) {
                    let e_cur = pb.strip_rows(m.e, eb);
                    out.push(Phase::Strip { e_cur });
                    for cb in 0..pb.c / (m.q * m.r) {
                        out.push(Phase::Band { g, nb, eb, cb });
                        for fb in 0..m.m / (m.p * m.t) {
                            out.push(Phase::Filters { g, mb, cb, fb });
                            out.push(Phase::Pass { eb, cb, fb, e_cur });
                        }
                    }
                    out.push(Phase::Readout {
                        g,
                        nb,
                        mb,
                        eb,
                        e_cur,
                    });
                }
            }
        }
    }
    out
}

/// Where a layer run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub core_cycles: u64,
    /// Phases started (the current one included) and in all.
    pub phase: usize,
    pub phases: usize,
    pub passes_done: u64,
    pub passes: u64,
}

/// A layer on the chip that can be stepped: the controller's loop nest as a sequence of
/// [`Phase`]s, each started when the previous one has gone quiet, exactly as [`run_layer`] runs
/// them (it is a loop of [`LayerSim::run_phase`]).
pub struct LayerSim {
    driver: Driver,
    phases: Vec<Phase>,
    next: usize,
    /// The phase under way and the core cycle it started at.
    active: Option<(Phase, u64)>,
    layer: ConvLayer,
    fmt: RlcFormat,
}

impl LayerSim {
    pub fn scheduler(&self) -> &Scheduler {
        &self.driver.sched
    }

    /// The scheduler, to probe, trace or inspect; stepping it directly bypasses the controller.
    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.driver.sched
    }

    /// The mapping's loop nest.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The phase under way, if any.
    pub fn current_phase(&self) -> Option<Phase> {
        self.active.map(|a| a.0)
    }

    /// Whether every phase has run.
    pub fn done(&self) -> bool {
        self.active.is_none() && self.next == self.phases.len()
    }

    pub fn progress(&self) -> Progress {
        let passes = self
            .phases
            .iter()
            .filter(|p| matches!(p, Phase::Pass { .. }))
            .count() as u64;
        Progress {
            core_cycles: self.driver.sched.cycle(),
            phase: self.next,
            phases: self.phases.len(),
            passes_done: self.driver.passes,
            passes,
        }
    }

    /// Starts the next phase if none is under way. Returns false when none is left.
    fn ensure_started(&mut self) -> Result<bool, ChipError> {
        while self.active.is_none() {
            let Some(&ph) = self.phases.get(self.next) else {
                return Ok(false);
            };
            self.next += 1;
            self.driver.start(ph)?;
            self.active = Some((ph, self.driver.sched.cycle()));
            if !self.driver.sched.busy() {
                // Nothing to simulate (a strip's gating): it ends where it starts.
                self.end_phase();
            }
        }
        Ok(true)
    }

    fn end_phase(&mut self) {
        if let Some((Phase::Pass { .. }, start)) = self.active.take() {
            self.driver.processing += self.driver.sched.cycle() - start;
            self.driver.passes += 1;
        }
    }

    /// Steps one instant (an edge of one clock or both), starting the next phase when the last
    /// one has gone quiet. Returns false, without stepping, once the layer is done.
    pub fn step(&mut self) -> Result<bool, ChipError> {
        if !self.ensure_started()? {
            return Ok(false);
        }
        if self.driver.sched.advance()? == Advance::Quiescent {
            self.end_phase();
        }
        Ok(true)
    }

    /// Steps until one more core cycle has completed (or the layer is done: false).
    pub fn step_cycle(&mut self) -> Result<bool, ChipError> {
        let c = self.driver.sched.cycle();
        while self.driver.sched.cycle() == c {
            if !self.step()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Runs the phase under way, or the next one, to its end. Returns false when none was left.
    pub fn run_phase(&mut self) -> Result<bool, ChipError> {
        if !self.ensure_started()? {
            return Ok(false);
        }
        self.driver.sched.run()?;
        self.end_phase();
        Ok(true)
    }

    /// Ends the trace (if any) at the last instant and flushes it.
    pub fn finish_trace(&mut self) -> Result<Option<rowsim_kernel::TraceSummary>, ChipError> {
        Ok(self.driver.sched.finish_trace()?)
    }

    /// After the last phase: reads the ofmap back from DRAM and gathers every counter.
    pub fn finish(&mut self) -> Result<LayerRun, ChipError> {
        if !self.done() {
            return Err(ChipError::Setup(format!(
                "the layer is not finished: phase {} of {} at core cycle {}",
                self.next,
                self.phases.len(),
                self.driver.sched.cycle()
            )));
        }
        self.driver.sched.finish_trace()?;
        self.driver.collect(&self.layer, &self.fmt)
    }
}

struct Driver {
    sched: Scheduler,
    ids: Ids,
    plan: ArrayPlan,
    pb: Problem,
    m: Mapping,
    layout: GlbLayout,
    lanes: u64,
    row_stride: u64,
    coded: bool,
    dl: Layout,
    processing: u64,
    passes: u64,
    next_id: u32,
    link: Clock,
    mac: MacConfig,
    zero_gating: bool,
}

fn comp<T: rowsim_kernel::Component>(
    s: &mut Scheduler,
    id: ComponentId,
) -> Result<&mut T, ChipError> {
    s.component_mut::<T>(id)
        .ok_or_else(|| ChipError::Setup("component missing".into()))
}

impl Driver {
    fn glb_addr(&self, dtype: DataType, a: u64) -> Result<GlbAddr, ChipError> {
        GlbAddr::of(&self.layout, dtype, a).map_err(ChipError::setup)
    }

    /// Index of a band value: (image in block, real channel in block, row in band, column).
    fn band_index(&self, img: u32, ch: u32, row: u32, col: u32, rows: u32) -> u64 {
        let (_, chans) = self.pb.block_channels(self.m.q * self.m.r, 0);
        ((img as u64 * chans as u64 + ch as u64) * rows as u64 + row as u64) * self.pb.w as u64
            + col as u64
    }

    /// Index of psum `k` of chain `(tt, j)` of pass `fb` in the GLB's psum region.
    fn psum_index(&self, fb: u32, tt: u32, j: u32, k: u64) -> u64 {
        let per_chain = (self.m.n * self.pb.f * self.m.p) as u64;
        (((fb * self.m.t + tt) * self.m.e + j) as u64) * per_chain + k
    }

    /// Gives the components a phase's work (what the controller sends them).
    fn start(&mut self, ph: Phase) -> Result<(), ChipError> {
        match ph {
            Phase::Strip { e_cur } => {
                gate_strip(&mut self.sched, self.ids.gins, &self.plan, e_cur);
                Ok(())
            }
            Phase::Band { g, nb, eb, cb } => self.load_band(g, nb, eb, cb),
            Phase::Filters { g, mb, cb, fb } => self.load_filters(g, mb, cb, fb),
            Phase::Pass { eb, cb, fb, e_cur } => self.pass(eb, cb, fb, e_cur),
            Phase::Readout {
                g,
                nb,
                mb,
                eb,
                e_cur,
            } => self.readout(g, nb, mb, eb, e_cur),
        }
    }

    fn read_cmd(&mut self, addr: u64, len: u32, kind: Kind, coded: bool) -> DramCmd {
        self.next_id += 1;
        DramCmd {
            id: self.next_id,
            write: false,
            addr,
            len,
            kind,
            coded,
        }
    }

    fn load_band(&mut self, g: u32, nb: u32, eb: u32, cb: u32) -> Result<(), ChipError> {
        let (pb, m) = (self.pb, self.m);
        let (lo, hi) = pb.band(m.e, eb);
        let mut cmds = Vec::new();
        let mut expect = Vec::new();
        let mut addrs = Vec::new();
        let (first, chans) = pb.block_channels(m.q * m.r, cb);
        for img in 0..m.n {
            for ch in 0..chans {
                let gch = g * pb.real.c + first + ch;
                for y in lo..hi {
                    let (addr, len) = *self
                        .dl
                        .ifmap
                        .get(&(nb * m.n + img, gch, y))
                        .ok_or_else(|| ChipError::Setup("ifmap row missing".into()))?;
                    let c = self.read_cmd(addr, len, Kind::Ifmap, self.coded);
                    cmds.push(c);
                    expect.push((pb.w as usize, self.coded));
                    for x in 0..pb.w {
                        addrs.push(self.glb_addr(
                            DataType::Ifmap,
                            self.band_index(img, ch, y - lo, x, hi - lo),
                        )?);
                    }
                }
            }
        }
        comp::<Feeder<DramCmd>>(&mut self.sched, self.ids.cmds)?.push(cmds);
        let ib = comp::<Inbound>(&mut self.sched, self.ids.inbound)?;
        for (n, c) in expect {
            ib.expect(n, c);
        }
        comp::<GlbWriter>(&mut self.sched, self.ids.loader)?.expect(addrs);
        Ok(())
    }

    fn load_filters(&mut self, g: u32, mb: u32, cb: u32, fb: u32) -> Result<(), ChipError> {
        let (addr, len, values) = *self
            .dl
            .filters
            .get(&(g, mb, cb, fb))
            .ok_or_else(|| ChipError::Setup("filter stream missing".into()))?;
        let c = self.read_cmd(addr, len, Kind::Filter, false);
        let row_len = (self.m.p * self.m.q * self.pb.s) as u64;
        let mut addrs = Vec::with_capacity(values as usize);
        for k in 0..values as u64 {
            addrs.push(self.glb_addr(
                DataType::Filter,
                (k / row_len) * self.row_stride + k % row_len,
            )?);
        }
        comp::<Feeder<DramCmd>>(&mut self.sched, self.ids.cmds)?.push([c]);
        comp::<Inbound>(&mut self.sched, self.ids.inbound)?.expect(values as usize, false);
        comp::<GlbWriter>(&mut self.sched, self.ids.loader)?.expect(addrs);
        Ok(())
    }

    fn pass(&mut self, eb: u32, cb: u32, fb: u32, e_cur: u32) -> Result<(), ChipError> {
        let (pb, m) = (self.pb, self.m);
        let continuing = cb > 0;
        let zero_gating = self.zero_gating;
        let pes: Vec<(LogicalPe, ComponentId)> = self
            .ids
            .pes
            .iter()
            .filter(|(l, _)| l.j < e_cur)
            .map(|(l, id)| (*l, *id))
            .collect();
        for (l, id) in &pes {
            let prim = pass_primitive(&self.plan, &pb, *l, continuing, self.mac, zero_gating);
            comp::<Pe>(&mut self.sched, *id)?
                .configure(prim)
                .map_err(ChipError::setup)?;
        }
        // Filters: each logical row's weights, 4 (a bus width) at a time, rows round robin.
        let row_len = (m.p * m.q * pb.s) as u64;
        let mut filter_items = Vec::new();
        let beats = row_len.div_ceil(self.lanes);
        for b in 0..beats {
            for tt in 0..m.t {
                for rr in 0..m.r {
                    for i in 0..pb.r {
                        let row = ((tt * m.r + rr) * pb.r + i) as u64;
                        let start = b * self.lanes;
                        let len = (row_len - start).min(self.lanes) as u8;
                        let a = self.glb_addr(DataType::Filter, row * self.row_stride + start)?;
                        filter_items.push(ReadItem {
                            src: Src::Glb {
                                bank: a.bank,
                                entry: a.entry,
                                lane: a.lane,
                                len,
                                dtype: DataType::Filter,
                            },
                            tags: vec![self.plan.filter_tag(tt, rr, i)],
                        });
                    }
                }
            }
        }
        // Ifmaps: image by image, column by column, every row of the band.
        let (lo, hi) = pb.band(m.e, eb);
        let band = (e_cur - 1) * pb.u + pb.r;
        let tags: Vec<Vec<Vec<(u16, u16)>>> = (0..m.r)
            .map(|rr| {
                (0..band)
                    .map(|y| self.plan.ifmap_tags(rr, y, e_cur))
                    .collect()
            })
            .collect();
        let mut ifmap_items = Vec::new();
        let (first, _) = pb.block_channels(m.q * m.r, cb);
        for img in 0..m.n {
            for col in 0..pb.w_used() {
                for rr in 0..m.r {
                    for y in 0..band {
                        for c in 0..m.q {
                            // Virtual channel and position, and where they are in the input.
                            let cv = cb * m.q * m.r + rr * m.q + c;
                            let (ch, yp, xp) = pb.real_of(cv, eb * m.e * pb.u + y, col);
                            let src = if pb.is_real(yp, xp) {
                                let a = self.glb_addr(
                                    DataType::Ifmap,
                                    self.band_index(
                                        img,
                                        ch - first,
                                        yp - pb.pad - lo,
                                        xp - pb.pad,
                                        hi - lo,
                                    ),
                                )?;
                                Src::Glb {
                                    bank: a.bank,
                                    entry: a.entry,
                                    lane: a.lane,
                                    len: 1,
                                    dtype: DataType::Ifmap,
                                }
                            } else {
                                Src::Zeros(1)
                            };
                            ifmap_items.push(ReadItem {
                                src,
                                tags: tags[rr as usize][y as usize].clone(),
                            });
                        }
                    }
                }
            }
        }
        // Psums in, when continuing: per image and column, each bottom's p psums.
        let mut psum_items = Vec::new();
        let mut gon_streams = Vec::new();
        for tt in 0..m.t {
            for j in 0..e_cur {
                let top = self
                    .plan
                    .at(LogicalPe { tt, rr: 0, i: 0, j })
                    .ok_or_else(|| ChipError::Setup("chain top missing".into()))?;
                let n_words = (m.n * pb.f * m.p) as u64;
                let addrs: Result<Vec<GlbAddr>, ChipError> = (0..n_words)
                    .map(|k| self.glb_addr(DataType::Psum, self.psum_index(fb, tt, j, k)))
                    .collect();
                gon_streams.push(((top.row as u16, top.col as u16), addrs?));
            }
        }
        if continuing {
            for pos in 0..(m.n * pb.f) as u64 {
                for tt in 0..m.t {
                    for j in 0..e_cur {
                        let bottom = self
                            .plan
                            .at(LogicalPe {
                                tt,
                                rr: m.r - 1,
                                i: pb.r - 1,
                                j,
                            })
                            .ok_or_else(|| ChipError::Setup("chain bottom missing".into()))?;
                        let tag = self.plan.psum_tag(bottom);
                        let mut k = pos * m.p as u64;
                        let end = k + m.p as u64;
                        while k < end {
                            let a = self.glb_addr(DataType::Psum, self.psum_index(fb, tt, j, k))?;
                            let len = (end - k).min(self.lanes - a.lane as u64) as u8;
                            psum_items.push(ReadItem {
                                src: Src::Glb {
                                    bank: a.bank,
                                    entry: a.entry,
                                    lane: a.lane,
                                    len,
                                    dtype: DataType::Psum,
                                },
                                tags: vec![tag],
                            });
                            k += len as u64;
                        }
                    }
                }
            }
        }
        comp::<GlbReader>(&mut self.sched, self.ids.filter_rd)?.push(filter_items);
        comp::<GlbReader>(&mut self.sched, self.ids.ifmap_rd)?.push(ifmap_items);
        comp::<GlbReader>(&mut self.sched, self.ids.psum_rd)?.push(psum_items);
        let gw = comp::<GlbWriter>(&mut self.sched, self.ids.gon_wr)?;
        for (pe, addrs) in gon_streams {
            gw.expect_from(pe, addrs);
        }
        Ok(())
    }

    fn readout(&mut self, g: u32, nb: u32, mb: u32, eb: u32, e_cur: u32) -> Result<(), ChipError> {
        let (pb, m) = (self.pb, self.m);
        let mut items = Vec::new();
        let mut streams = Vec::new();
        for img in 0..m.n {
            for mf in 0..m.m {
                let (fb, tt, f) = (mf / (m.p * m.t), (mf % (m.p * m.t)) / m.p, mf % m.p);
                for j in 0..e_cur {
                    for x in 0..pb.f {
                        let k = ((img * pb.f + x) * m.p + f) as u64;
                        let a = self.glb_addr(DataType::Psum, self.psum_index(fb, tt, j, k))?;
                        items.push(ReadItem {
                            src: Src::Glb {
                                bank: a.bank,
                                entry: a.entry,
                                lane: a.lane,
                                len: 1,
                                dtype: DataType::Psum,
                            },
                            tags: vec![],
                        });
                    }
                    let filter = g * pb.m + mb * m.m + mf;
                    let addr = *self
                        .dl
                        .ofmap
                        .get(&(nb * m.n + img, filter, eb * m.e + j))
                        .ok_or_else(|| ChipError::Setup("ofmap row missing".into()))?;
                    streams.push((pb.f as usize, addr));
                }
            }
        }
        comp::<GlbReader>(&mut self.sched, self.ids.readout)?.push(items);
        let ow = comp::<Outbound>(&mut self.sched, self.ids.ofmap_wr)?;
        for (n, a) in streams {
            ow.expect(n, a);
        }
        Ok(())
    }

    /// Reads the ofmap back from DRAM and gathers every counter.
    fn collect(&mut self, layer: &ConvLayer, fmt: &RlcFormat) -> Result<LayerRun, ChipError> {
        let pb = self.pb;
        let written: BTreeMap<u64, u32> = comp::<Outbound>(&mut self.sched, self.ids.ofmap_wr)?
            .written
            .iter()
            .copied()
            .collect();
        let dram = comp::<DramController>(&mut self.sched, self.ids.dram)?;
        let memory = dram.memory().to_vec();
        let dc = *dram.counters();
        let mut ofmap = Tensor::zeros(rowsim_workload::ofmap_dims(layer));
        for (&(img, mf, e), &addr) in &self.dl.ofmap {
            let len = *written.get(&addr).ok_or_else(|| {
                ChipError::Setup(format!("ofmap row ({img}, {mf}, {e}) was never written"))
            })? as u64;
            let row = decode(
                fmt,
                &memory[addr as usize..(addr + len) as usize],
                pb.f as usize,
            )
            .map_err(ChipError::setup)?;
            for (x, v) in row.into_iter().enumerate() {
                ofmap.set([img as usize, mf as usize, e as usize, x], v);
            }
        }
        let gc = *comp::<Glb>(&mut self.sched, self.ids.glb)?.counters();
        let gin = |s: &mut Scheduler, id| {
            s.component::<Gin>(id)
                .map(|g| g.counters().pe_words)
                .unwrap_or(0)
        };
        let (nf, ni, np) = (
            gin(&mut self.sched, self.ids.gins[0]),
            gin(&mut self.sched, self.ids.gins[1]),
            gin(&mut self.sched, self.ids.gins[2]),
        );
        let mut c = Counts {
            mapping: self.m,
            pes_used: self.plan.pes.len() as u32,
            passes: self.passes,
            macs: 0,
            macs_gated: 0,
            dram_reads: PerType {
                filter: dc.read_bytes[Kind::Filter as usize] / 2,
                ifmap: dc.read_bytes[Kind::Ifmap as usize] / 2,
                psum: dc.read_bytes[Kind::Psum as usize] / 2,
            },
            dram_writes: PerType {
                filter: dc.write_bytes[Kind::Filter as usize] / 2,
                ifmap: dc.write_bytes[Kind::Ifmap as usize] / 2,
                psum: dc.write_bytes[Kind::Psum as usize] / 2,
            },
            glb_reads: PerType {
                filter: gc.reads[DataType::Filter as usize],
                ifmap: gc.reads[DataType::Ifmap as usize],
                psum: gc.reads[DataType::Psum as usize],
            },
            glb_writes: PerType {
                filter: gc.writes[DataType::Filter as usize],
                ifmap: gc.writes[DataType::Ifmap as usize],
                psum: gc.writes[DataType::Psum as usize],
            },
            noc: PerType {
                filter: nf,
                ifmap: ni,
                psum: np,
            },
            spad_reads: PerType::default(),
            spad_writes: PerType::default(),
        };
        for id in self.ids.pes.values() {
            let pc = *comp::<Pe>(&mut self.sched, *id)?.counters();
            c.macs += pc.macs + pc.macs_gated;
            c.macs_gated += pc.macs_gated;
            c.noc.psum += pc.psums_out;
            c.spad_reads.filter += pc.filter_spad_reads;
            c.spad_writes.filter += pc.filter_spad_writes;
            c.spad_reads.ifmap += pc.ifmap_spad_reads;
            c.spad_writes.ifmap += pc.ifmap_spad_writes;
            c.spad_reads.psum += pc.psum_spad_reads;
            c.spad_writes.psum += pc.psum_spad_writes;
        }
        let link_cycles = self.sched.cycles_of(self.link);
        Ok(LayerRun {
            ofmap,
            counts: c,
            core_cycles: self.sched.cycle(),
            processing_cycles: self.processing,
            link_cycles,
            time_ps: self.sched.time(),
        })
    }
}

/// A layer run checked against the reference convolution.
#[derive(Clone, Debug)]
pub struct CheckedRun {
    pub run: LayerRun,
    /// The reference convolution's output (ReLU as the config says).
    pub reference: Tensor,
    /// Whether the chip's ofmap equals it bit for bit.
    pub verified: bool,
}

impl CheckedRun {
    /// The first element `[n, m, e, f]` where the ofmap differs, with (got, want).
    pub fn first_difference(&self) -> Option<([usize; 4], i16, i16)> {
        let k = self
            .run
            .ofmap
            .data
            .iter()
            .zip(&self.reference.data)
            .position(|(g, w)| g != w)?;
        let d = self.reference.dims;
        let idx = [
            k / (d[1] * d[2] * d[3]),
            k / (d[2] * d[3]) % d[1],
            k / d[3] % d[2],
            k % d[3],
        ];
        Some((idx, self.run.ofmap.data[k], self.reference.data[k]))
    }
}

/// Runs a layer and checks its ofmap against the reference convolution.
pub fn run_checked(
    hw: &HwConfig,
    layer: &ConvLayer,
    mapping: &Mapping,
    ifmap: &Tensor,
    weights: &Tensor,
    opts: &RunOptions,
) -> Result<CheckedRun, ChipError> {
    let run = run_layer(hw, layer, mapping, ifmap, weights, opts)?;
    let (reference, _) =
        rowsim_workload::reference_conv(layer, ifmap, weights, opts.mac, hw.datapath.relu)
            .map_err(ChipError::Setup)?;
    let verified = run.ofmap == reference;
    Ok(CheckedRun {
        run,
        reference,
        verified,
    })
}
