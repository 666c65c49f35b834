//! A whole CONV layer through the chip: DRAM, the GLB, the NoC and the PE array, executing the
//! mapper's loop nest (see `rowsim_mapper`'s docs) as the hardware would.
//!
//! # What this module does and what the components do
//! [`LayerSim::new`] lays the layer's tensors out in DRAM before the run (ifmap rows as RLC
//! streams, raw for a first layer; each pass's filters as one raw stream in the order the array
//! takes them, in the loop nest's order), allocates the GLB (each buffer twice where it fits: see
//! [`crate::controller`]), and wires the components, the top-level controller among them. From
//! then on the clock runs the layer; the controller walks the loop nest:
//! 1. **band load** (per image block, filter group, strip, channel block): DRAM read commands for
//!    each row of the band; the words cross the async FIFO; `Inbound` decodes them; the loader
//!    writes the values into the GLB's ifmap banks;
//! 2. **filter load** (per pass): one raw read; the loader writes the weights into the filter
//!    banks, each logical filter row starting on an entry boundary;
//! 3. **pass**: the PEs of the strip take their primitive over their configuration links; GLB
//!    sequencers send filters, ifmaps (padding made on the way) and, when the pass continues an
//!    accumulation, psums over the three GINs; chain tops' psums come back over the GON and are
//!    written into the GLB's psum banks;
//! 4. **readout** (after a filter block's pass of a strip's last channel block): a GLB sequencer
//!    sends each output row through ReLU to the `Outbound`, which codes it and writes it to DRAM.
//!
//! These overlap as the buffers allow (see [`crate::controller`]). Nothing is computed outside
//! the components: the output is what the PEs produced and DRAM holds, read back and decoded
//! after the run, with every counter and the cycle accounts.

use std::collections::BTreeMap;
use std::sync::Arc;

use rowsim_config::HwConfig;
use rowsim_datapath::mac::MacConfig;
use rowsim_datapath::rlc::{decode, encode, RlcFormat};
use rowsim_dram::{pack_raw, unpack_raw, DramCmd, DramController, Inbound, Outbound};
use rowsim_glb::{DataType, Glb, GlbLayout};
use rowsim_kernel::{
    Advance, Clock, ComponentId, Link, Merge, Scheduler, SimError, TraceConfig, Wire,
};
use rowsim_mapper::{Counts, FilterKey, Mapping, PerType, Phase, Problem};

/// The mapping's loop nest ([`rowsim_mapper::loop_nest`]), as the controller walks it.
pub fn phases(pb: &Problem, m: &Mapping) -> Vec<Phase> {
    rowsim_mapper::loop_nest(pb, m)
}
use rowsim_noc::NetCounters;
use rowsim_pe::Pe;
use rowsim_workload::{ConvLayer, Tensor};

use crate::array::{wire_array, GIN_IN_DEPTH, GON_OUT_DEPTH};
use crate::block::GlbBlock;
use crate::controller::{
    ControllerPorts, ControllerStatus, DramMap, Geometry, Slots, TopController,
};
use crate::plan::{ArrayPlan, LogicalPe};
use crate::stats::{PeCycles, PeUtilization};
use rowsim_glb::sequencer::{GlbReader, GlbWriter, ReadJob, ReadOut, WriteIn, WriteJob};

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
    /// Step every component at every edge instead of only when it needs a step (the reference
    /// the event-driven kernel is tested against; same results, slower).
    pub every_edge: bool,
    /// ReLU at the readout for this layer: `None` as the config's `datapath.relu` says. A layer
    /// whose output is not final (a part of a split layer whose psums are still to be added; a
    /// layer whose bias is added after it) reads out without.
    pub relu: Option<bool>,
}

impl RunOptions {
    /// Whether the readout applies ReLU on `hw`.
    pub fn relu_on(&self, hw: &HwConfig) -> bool {
        self.relu.unwrap_or(hw.datapath.relu)
    }
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
    /// The top-level controller's account of the run.
    pub controller: ControllerStatus,
    /// Every core cycle of every PE the mapping uses, by what the PE did.
    pub pe_cycles: PeCycles,
    /// MAC slots (gated or not) of each PE used.
    pub pe_utilization: Vec<PeUtilization>,
    /// Steps and link interactions by kind of component: the host's work, not the chip's.
    pub activity: Vec<rowsim_kernel::KindActivity>,
    /// The networks' beats and waits, and the GLB's refusals.
    pub interconnect: crate::stats::Interconnect,
}

/// The layer's DRAM image as the run starts: where each stream lies (shared by the controller,
/// which reads from it, and the run, which reads the ofmap back), and the words, which move
/// into the DRAM model (held once).
struct DramImage {
    map: DramMap,
    memory: Vec<u64>,
}

/// The host memory a run of `layer` holds at its peak, in bytes, from its shape alone (known
/// before any tensor is built, so that a run that cannot fit is refused before it starts):
/// - the tensors as 16-bit values: the ifmap, the weights, and the ofmap twice (the chip's
///   and the reference convolution's);
/// - the DRAM image once (the DRAM model's), each value at most 8/3 bytes (RLC at its worst,
///   three 21-bit pairs to a 64-bit word; raw data packs 4 to a word);
/// - the image's row map once (one entry per ifmap and ofmap row, about 48 bytes an entry in a
///   B-tree; filters are mapped a pass's stream at a time, with a 4-byte length per filter row
///   when rows are compressed).
///
/// What is not counted (the chip's components, buffers and statistics) does not grow with the
/// batch. A test compares it with the peak resident memory of real runs. Saturates at
/// `u64::MAX` for shapes past any machine.
pub fn host_bytes(layer: &ConvLayer) -> u64 {
    let (n, c, h, w) = (
        layer.n as u128,
        layer.c as u128,
        layer.h as u128,
        layer.w as u128,
    );
    let (m, cg, r, s) = (
        layer.m as u128,
        layer.cg() as u128,
        layer.r as u128,
        layer.s as u128,
    );
    let (e, f) = (layer.e() as u128, layer.f() as u128);
    // Each factor is below 2^32, so a product of three fits; the rest saturates.
    let mul = |a: u128, b: u128| a.saturating_mul(b);
    let (ifmap, weights, ofmap) = (mul(n * c * h, w), mul(m * cg * r, s), mul(n * m * e, f));
    let rows = (n * c * h).saturating_add(n * m * e);
    let values = ifmap.saturating_add(weights).saturating_add(ofmap);
    let tensors = mul(2, values.saturating_add(ofmap));
    let image = mul(values, 8).div_ceil(3);
    let maps = mul(rows, 48).saturating_add(mul(m * cg * r, 4));
    u64::try_from(tensors.saturating_add(image).saturating_add(maps)).unwrap_or(u64::MAX)
}

#[allow(clippy::too_many_arguments)] // the layer, its tensors, the loop nest and the format
fn layout_dram(
    layer: &ConvLayer,
    pb: &Problem,
    m: &Mapping,
    phases: &[Phase],
    ifmap: &Tensor,
    weights: &Tensor,
    fmt: &RlcFormat,
    coded: bool,
    code_filters: bool,
    compressed: bool,
    ofmap_coded: bool,
) -> DramImage {
    let mut memory = Vec::new();
    let mut l = DramMap {
        ifmap: BTreeMap::new(),
        filters: BTreeMap::new(),
        filter_rows: BTreeMap::new(),
        ofmap: BTreeMap::new(),
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
    // Each pass's filters, as one raw stream in the order the array takes them, laid out in
    // the loop nest's order (a filter block's stream serves every image block and strip).
    for ph in phases {
        let Phase::Filters { g, mb, cb, fb } = *ph else {
            continue;
        };
        let key = FilterKey { g, mb, cb, fb };
        if l.filters.contains_key(&key) {
            continue;
        }
        let mut v = rowsim_mapper::filter_stream(pb, m, key, weights);
        if compressed {
            // Each PE's row as its zero mask and nonzero values (`spad.filter.compressed`),
            // the stream raw on the bus.
            let row_len = (m.p * m.q * pb.s) as usize;
            let mut packed = Vec::new();
            let rows = v
                .chunks(row_len)
                .map(|row| rowsim_datapath::zmask::encode_row(row, &mut packed) as u32)
                .collect();
            l.filter_rows.insert(key, rows);
            v = packed;
        }
        // Coded like feature maps when the config says so (`rlc.code_filters`), else raw.
        let words = if code_filters {
            encode(fmt, &v)
        } else {
            pack_raw(&v, 4)
        };
        l.filters.insert(
            key,
            (memory.len() as u64, words.len() as u32, v.len() as u32),
        );
        memory.extend(words);
    }
    // Room for a row's longest stream: a pair per value coded, four values a word raw.
    let worst = if ofmap_coded {
        (pb.f as usize).div_ceil(fmt.pairs_per_word as usize).max(1)
    } else {
        (pb.f as usize).div_ceil(4)
    };
    for img in 0..pb.n {
        for mf in 0..layer.m {
            for e in 0..pb.e {
                l.ofmap.insert((img, mf, e), memory.len() as u64);
                memory.extend(std::iter::repeat_n(0, worst));
            }
        }
    }
    DramImage { map: l, memory }
}

/// The chip's components that statistics are read from after a run.
struct Ids {
    glb: ComponentId,
    dram: ComponentId,
    ofmap_wr: ComponentId,
    controller: ComponentId,
    pes: BTreeMap<LogicalPe, ComponentId>,
}

/// A job link and its done link, on the core clock.
fn job_links<J: Send + 'static>(
    name: &str,
    core: Clock,
) -> Result<(Link<J>, Link<u32>), ChipError> {
    Ok((
        Link::<J>::new(&format!("{name}.jobs"), core, 1, 2).map_err(ChipError::setup)?,
        Link::<u32>::new(&format!("{name}.done"), core, 1, 2).map_err(ChipError::setup)?,
    ))
}

/// How many of each buffer fit the GLB, preferring two filter slots, then two ifmap slots (a
/// band prefetches), then two psum slots (readouts overlap the next strip), and one of each
/// where a second would never be used.
fn allocate(
    layer: &ConvLayer,
    hw: &HwConfig,
    words: (u64, u64, u64),
    used: (bool, bool, bool),
) -> Result<(GlbLayout, Slots), ChipError> {
    let (filter_words, band_words, psum_words) = words;
    let two = |u: bool| if u { [2, 1] } else { [1, 1] };
    let mut tries = Vec::new();
    for f in two(used.0) {
        for i in two(used.1) {
            for p in two(used.2) {
                if !tries.contains(&(f, i, p)) {
                    tries.push((f, i, p));
                }
            }
        }
    }
    let mut last = None;
    for (f, i, p) in tries {
        match GlbLayout::allocate(
            &layer.name,
            band_words * i as u64,
            psum_words * p as u64,
            filter_words * f as u64,
            hw,
        ) {
            Ok(layout) => {
                return Ok((
                    layout,
                    Slots {
                        filter: f,
                        ifmap: i,
                        psum: p,
                        filter_words,
                        band_words,
                        psum_words,
                    },
                ))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ChipError::setup(last.map_or_else(
        || "no GLB allocation was tried".to_string(),
        |e| e.to_string(),
    )))
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
        // Compressed weights: the rows sized from this layer's weights (a sparse layer may run
        // a mapping a dense one cannot).
        let rows = hw
            .spad
            .filter
            .compressed
            .then(|| rowsim_mapper::FilterRows::of(&pb, m.p, m.q, Some(weights)));
        let plan = ArrayPlan::with_rows(&pb, &m, hw, rows.as_ref()).map_err(ChipError::setup)?;
        let r = &hw.rlc;
        let fmt = RlcFormat::new(r.run_bits, r.level_bits, r.pairs_per_word, r.word_bits)
            .map_err(ChipError::Setup)?;
        let coded = r.codes_ifmap(layer.first);
        let lanes = (hw.glb.bank_width_bits / hw.datapath.word_bits) as u64;
        let phases = phases(&pb, &m);
        let mut image = layout_dram(
            layer,
            &pb,
            &m,
            &phases,
            ifmap,
            weights,
            &fmt,
            coded,
            r.code_filters,
            hw.spad.filter.compressed,
            r.codes_ofmap(),
        );

        // The GLB: the largest band, the psums of a strip, the filters of a pass (rows aligned
        // to entries), each as many times as fits and is useful (see `controller`).
        let band_rows = (0..pb.e.div_ceil(m.e))
            .map(|eb| {
                let (lo, hi) = pb.band(m.e, eb);
                hi - lo
            })
            .max()
            .unwrap_or(0) as u64;
        let (_, block_chans) = pb.block_channels(m.q * m.r, 0);
        let align = |w: u64| w.div_ceil(lanes) * lanes;
        let band_words = align(m.n as u64 * block_chans as u64 * band_rows * pb.w as u64);
        let psum_words = align(m.n as u64 * m.m as u64 * m.e as u64 * pb.f as u64);
        // A row is `p*q*S` weights, or compressed its mask and nonzeros: the longest row.
        let row_len = match &rows {
            Some(r) => r.max_words(),
            None => (m.p * m.q * pb.s) as u64,
        };
        let row_stride = align(row_len);
        let filter_words = (m.t * m.r * pb.r) as u64 * row_stride;
        let count = |f: fn(&Phase) -> bool| phases.iter().filter(|p| f(p)).count();
        let used = (
            count(|p| matches!(p, Phase::Pass { .. })) > 1,
            count(|p| matches!(p, Phase::Band { .. })) > 1,
            count(|p| matches!(p, Phase::Readout { .. })) > 1,
        );
        let (layout, slots) = allocate(layer, hw, (filter_words, band_words, psum_words), used)?;

        let mut sched = Scheduler::new();
        let core = sched
            .add_clock("core", hw.clocks.core_hz)
            .map_err(ChipError::setup)?;
        let link = sched
            .add_clock("link", hw.clocks.link_hz)
            .map_err(ChipError::setup)?;
        let (dports, dram) = rowsim_dram::build(
            &mut sched,
            core,
            link,
            hw,
            std::mem::take(&mut image.memory),
            "top.dram",
        )
        .map_err(ChipError::setup)?;
        let lk = |name: &str, clk: Clock| {
            Link::<DramCmd>::new(name, clk, 1, 2).map_err(ChipError::setup)
        };
        let reads = lk("top.chip.ctrl.dram_reads", core)?;
        let writes = lk("top.chip.ctrl.dram_writes", core)?;
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
        let inbound_jobs = Link::<Vec<(usize, bool)>>::new("top.chip.rlc_in.jobs", core, 1, 2)
            .map_err(ChipError::setup)?;
        sched.add(
            core,
            Inbound::new(
                "top.chip.rlc_in",
                fmt,
                dports.rdata,
                values.tx,
                lanes as usize,
            )
            .with_job_port(inbound_jobs.rx),
        );
        // The GLB and its sequencers, on its ports in this order: the loader, the filter,
        // ifmap and psum readers, the psum writer, the readout.
        let mut glb = Glb::new("top.chip.glb", layout, hw.glb.ports_per_bank, Vec::new())
            .with_port_kind(hw.glb.port_kind);
        let (loader_jobs, loader_done) = job_links::<WriteJob>("top.chip.glb.loader", core)?;
        glb.add_writer(
            GlbWriter::inner("top.chip.glb.loader", WriteIn::Values(values.rx))
                .with_job_ports(loader_jobs.rx, loader_done.tx),
        );
        let w = wire_array(&mut sched, core, &plan, hw).map_err(ChipError::setup)?;
        let mut reader = |name: &str, out: ReadOut| {
            let (jobs, done) = job_links::<ReadJob>(name, core)?;
            let k = glb.add_reader(GlbReader::inner(name, out).with_job_ports(jobs.rx, done.tx));
            Ok::<_, ChipError>((jobs.tx, done.rx, k))
        };
        // Each GIN fed by its reader over a FIFO inside the GLB block (see `block`).
        let into_gin = || ReadOut::Wire(Wire::new(GIN_IN_DEPTH));
        let (filter_jobs, filter_done, filter_k) = reader("top.chip.glb.filter_seq", into_gin())?;
        let (ifmap_jobs, ifmap_done, ifmap_k) = reader("top.chip.glb.ifmap_seq", into_gin())?;
        let (psum_jobs, psum_done, psum_k) = reader("top.chip.glb.psum_seq", into_gin())?;
        let (gon_jobs, gon_done) = job_links::<WriteJob>("top.chip.glb.psum_writer", core)?;
        // The GON steps inside the GLB block too, into the writer's FIFO.
        let gon_k = glb.add_writer(
            GlbWriter::inner(
                "top.chip.glb.psum_writer",
                WriteIn::GonWire(Wire::new(GON_OUT_DEPTH)),
            )
            .with_job_ports(gon_jobs.rx, gon_done.tx),
        );
        let relu_out =
            Link::<i16>::new("top.chip.relu.out", core, 1, 2).map_err(ChipError::setup)?;
        let (readout_jobs, readout_done) = {
            let (jobs, done) = job_links::<ReadJob>("top.chip.glb.readout", core)?;
            glb.add_reader(
                GlbReader::inner(
                    "top.chip.glb.readout",
                    ReadOut::Values {
                        tx: relu_out.tx,
                        relu: opts.relu_on(hw),
                    },
                )
                .with_job_ports(jobs.rx, done.tx),
            );
            (jobs.tx, done.rx)
        };
        let [filter_gin, ifmap_gin, psum_gin] = w.gins;
        let block = GlbBlock::new(
            glb,
            vec![
                (filter_k, filter_gin),
                (ifmap_k, ifmap_gin),
                (psum_k, psum_gin),
            ],
        )
        .and_then(|b| b.with_gon(gon_k, w.gon))
        .map_err(ChipError::setup)?;
        let glb = sched.add(core, block);
        let outbound_jobs = Link::<Vec<(usize, u64)>>::new("top.chip.rlc_out.jobs", core, 1, 2)
            .map_err(ChipError::setup)?;
        let outbound = Outbound::new(
            "top.chip.rlc_out",
            fmt,
            relu_out.rx,
            writes.tx,
            dports.wdata,
        )
        .with_buffers(hw.dram.write_buffers as usize)
        .with_job_port(outbound_jobs.rx);
        let ofmap_wr = sched.add(
            core,
            if r.codes_ofmap() {
                outbound
            } else {
                outbound.raw()
            },
        );
        let dram_map = Arc::new(image.map);
        let geo = Geometry {
            pb,
            m,
            plan: plan.clone(),
            layout,
            slots,
            lanes,
            row_stride,
            coded,
            dram: dram_map.clone(),
            mac: opts.mac,
            zeros: crate::array::ZeroMode::of(hw),
            coded_filters: hw.rlc.code_filters,
        };
        // The scan chain shifts the layer's configuration in, one bit an edge of its clock.
        let sc = &hw.scan_chain;
        let config_cycles =
            (sc.bits as u128 * hw.clocks.core_hz as u128).div_ceil(sc.shift_hz as u128) as u64;
        let controller = sched.add(
            core,
            TopController::new(
                "top.chip.ctrl",
                geo,
                &phases,
                config_cycles,
                ControllerPorts {
                    dram_cmd: reads.tx,
                    inbound: inbound_jobs.tx,
                    loader: loader_jobs.tx,
                    filter_rd: filter_jobs,
                    ifmap_rd: ifmap_jobs,
                    psum_rd: psum_jobs,
                    gon_wr: gon_jobs.tx,
                    readout: readout_jobs,
                    outbound: outbound_jobs.tx,
                    pes: w.pe_config,
                    gins: w.gin_config,
                    loader_done: loader_done.rx,
                    filter_done,
                    pass_done: gon_done.rx,
                    readout_done,
                    other_done: vec![ifmap_done, psum_done],
                },
            ),
        );
        let ids = Ids {
            glb,
            dram,
            ofmap_wr,
            controller,
            pes: w.pes.clone(),
        };
        if opts.watchdog > 0 {
            sched.set_watchdog(opts.watchdog);
        } else {
            sched.set_watchdog(rowsim_kernel::DEFAULT_WATCHDOG_CYCLES);
        }
        if let Some(flag) = &opts.interrupt {
            sched.set_interrupt_flag(flag.clone());
        }
        sched.set_every_edge(opts.every_edge);
        if let Some(t) = &opts.trace {
            sched.trace_to(t)?;
        }
        Ok(LayerSim {
            sched,
            ids,
            plan,
            m,
            pb,
            dram_map,
            link,
            phases,
            layer: layer.clone(),
            fmt,
            ofmap_coded: r.codes_ofmap(),
            ended: false,
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
        // In slices of core cycles, telling the progress hook where the run is after each.
        const SLICE: u64 = 1 << 16;
        while sim.run_for(SLICE)? {
            if let Some(hook) = &opts.progress {
                (hook.0)(&sim.progress());
            }
        }
        Ok::<(), ChipError>(())
    })();
    let finish = sim.sched.finish_trace();
    result?;
    finish?;
    sim.finish()
}

/// Where a layer run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub core_cycles: u64,
    pub passes_done: u64,
    pub passes: u64,
}

/// A layer on the chip that can be stepped, instant by instant or cycle by cycle: the
/// top-level controller ([`TopController`]) is one of its components and walks the loop nest
/// ([`LayerSim::phases`]) in the clock, like every other block.
pub struct LayerSim {
    sched: Scheduler,
    ids: Ids,
    plan: ArrayPlan,
    m: Mapping,
    pb: Problem,
    /// Where the layer's streams lie in DRAM (the controller's too).
    dram_map: Arc<DramMap>,
    link: Clock,
    phases: Vec<Phase>,
    layer: ConvLayer,
    fmt: RlcFormat,
    /// Whether the ofmap is written RLC coded (else raw).
    ofmap_coded: bool,
    /// Whether the chip has gone quiet for good.
    ended: bool,
}

impl LayerSim {
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// The scheduler, to probe, trace or inspect.
    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.sched
    }

    /// The mapping's loop nest, as the controller walks it.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Where each pass's filter stream sits in DRAM: `(key, address, bus words)`.
    pub fn filter_streams(&self) -> Vec<(FilterKey, u64, u32)> {
        self.dram_map
            .filters
            .iter()
            .map(|(k, &(addr, words, _))| (*k, addr, words))
            .collect()
    }

    /// The DRAM's memory, to change before the run (a test corrupting a stream).
    pub fn dram_memory_mut(&mut self) -> Option<&mut [u64]> {
        self.sched
            .component_mut::<DramController>(self.ids.dram)
            .map(|d| d.memory_mut())
    }

    /// The controller's view of the run.
    pub fn status(&self) -> ControllerStatus {
        self.sched
            .component::<TopController>(self.ids.controller)
            .map(|c| c.status())
            .unwrap_or_default()
    }

    /// Whether the layer has finished: every job done and the chip quiet.
    pub fn done(&self) -> bool {
        self.ended
    }

    pub fn progress(&self) -> Progress {
        let s = self.status();
        Progress {
            core_cycles: self.sched.cycle(),
            passes_done: s.passes_done,
            passes: s.passes,
        }
    }

    /// Steps one instant (an edge of one clock or both). Returns false, without stepping, once
    /// the layer is done.
    pub fn step(&mut self) -> Result<bool, ChipError> {
        self.step_within(u64::MAX)
    }

    /// One instant, not passing core cycle `limit`.
    fn step_within(&mut self, limit: u64) -> Result<bool, ChipError> {
        if self.ended {
            return Ok(false);
        }
        if self.sched.advance_within(limit)? == Advance::Quiescent {
            self.ended = true;
        }
        Ok(true)
    }

    /// Steps until one more core cycle has completed (or the layer is done: false).
    pub fn step_cycle(&mut self) -> Result<bool, ChipError> {
        let c = self.sched.cycle();
        while self.sched.cycle() == c {
            if !self.step_within(c + 1)? {
                return Ok(false);
            }
        }
        self.sched.settle();
        Ok(true)
    }

    /// Runs up to `cycles` more core cycles (exactly, unless the layer ends first). Returns
    /// false once the layer is done. The components are then up to date (settled).
    pub fn run_for(&mut self, cycles: u64) -> Result<bool, ChipError> {
        let end = self.sched.cycle().saturating_add(cycles);
        while self.sched.cycle() < end {
            if !self.step_within(end)? {
                break;
            }
        }
        self.sched.settle();
        Ok(!self.ended)
    }

    /// Ends the trace (if any) at the last instant and flushes it.
    pub fn finish_trace(&mut self) -> Result<Option<rowsim_kernel::TraceSummary>, ChipError> {
        Ok(self.sched.finish_trace()?)
    }

    /// After the run: reads the ofmap back from DRAM and gathers every counter.
    pub fn finish(&mut self) -> Result<LayerRun, ChipError> {
        let s = self.status();
        if !self.ended || s.passes_done < s.passes || s.readouts_done < s.readouts {
            return Err(ChipError::Setup(format!(
                "the layer is not finished: {} of {} passes and {} of {} readouts done at core cycle {}",
                s.passes_done,
                s.passes,
                s.readouts_done,
                s.readouts,
                self.sched.cycle()
            )));
        }
        self.sched.finish_trace()?;
        let (layer, fmt) = (self.layer.clone(), self.fmt);
        self.collect(&layer, &fmt)
    }

    fn collect(&mut self, layer: &ConvLayer, fmt: &RlcFormat) -> Result<LayerRun, ChipError> {
        let status = self.status();
        let pb = self.pb;
        let written: BTreeMap<u64, u32> = comp::<Outbound>(&self.sched, self.ids.ofmap_wr)?
            .written
            .iter()
            .copied()
            .collect();
        let dram = comp::<DramController>(&self.sched, self.ids.dram)?;
        let memory = dram.memory();
        let dc = *dram.counters();
        let mut ofmap = Tensor::zeros(rowsim_workload::ofmap_dims(layer));
        for (&(img, mf, e), &addr) in &self.dram_map.ofmap {
            let len = *written.get(&addr).ok_or_else(|| {
                ChipError::Setup(format!("ofmap row ({img}, {mf}, {e}) was never written"))
            })? as u64;
            let words = &memory[addr as usize..(addr + len) as usize];
            let row = if self.ofmap_coded {
                decode(fmt, words, pb.f as usize).map_err(ChipError::setup)?
            } else {
                unpack_raw(words, 4, pb.f as usize)
            };
            for (x, v) in row.into_iter().enumerate() {
                ofmap.set([img as usize, mf as usize, e as usize, x], v);
            }
        }
        let block = comp::<GlbBlock>(&self.sched, self.ids.glb)?;
        let gc = *block.glb().counters();
        let gin = |i| -> Result<NetCounters, ChipError> {
            block
                .gin_counters(i)
                .copied()
                .ok_or_else(|| ChipError::setup(format!("GIN {i} missing from the GLB block")))
        };
        let gins = [gin(0)?, gin(1)?, gin(2)?];
        let gon = *block
            .gon_counters()
            .ok_or_else(|| ChipError::setup("the GON missing from the GLB block"))?;
        let net = |c: &NetCounters| crate::stats::NetWaits {
            beats: c.beats,
            wait_cycles: c.wait_cycles,
        };
        let interconnect = crate::stats::Interconnect {
            filter_gin: net(&gins[0]),
            ifmap_gin: net(&gins[1]),
            psum_gin: net(&gins[2]),
            gon: net(&gon),
            glb_refused_cycles: gc.conflict_cycles,
        };
        let (nf, ni, np) = (gins[0].pe_words, gins[1].pe_words, gins[2].pe_words);
        let mut c = Counts {
            mapping: self.m,
            pes_used: self.plan.pes.len() as u32,
            passes: status.passes_done,
            macs: 0,
            macs_gated: 0,
            dram_reads: PerType {
                filter: dc.read_bytes[DataType::Filter as usize] / 2,
                ifmap: dc.read_bytes[DataType::Ifmap as usize] / 2,
                psum: dc.read_bytes[DataType::Psum as usize] / 2,
            },
            dram_writes: PerType {
                filter: dc.write_bytes[DataType::Filter as usize] / 2,
                ifmap: dc.write_bytes[DataType::Ifmap as usize] / 2,
                psum: dc.write_bytes[DataType::Psum as usize] / 2,
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
            index_reads: 0,
            index_writes: 0,
        };
        let core_total = self.sched.cycle();
        let mut pe_cycles = PeCycles::default();
        let mut pe_utilization = Vec::new();
        for (l, id) in &self.ids.pes {
            let pe = comp::<Pe>(&self.sched, *id)?;
            let pc = *pe.counters();
            // Every cycle of a PE's programs is one of the account's causes; the PE counts
            // each. (A compressed row's mask words take a cycle each, like its values.)
            let mut account = PeCycles {
                mac: pc.macs,
                gated: pc.macs_gated,
                stall_filter: pc.stall_filter,
                stall_ifmap: pc.stall_ifmap,
                stall_psum_in: pc.stall_psum_in,
                stall_psum_out: pc.stall_psum_out,
                pipeline: pc.filter_spad_writes
                    + pc.index_writes
                    + pc.pipeline_bubbles
                    + pc.psums_out,
                config: 0,
                idle: 0,
                index: pc.index_cycles,
            };
            let busy = account.total();
            if busy != pc.active_cycles {
                return Err(ChipError::Setup(format!(
                    "{}: the cycle account does not add up: {busy} cycles by cause, {} active",
                    rowsim_kernel::Component::name(pe),
                    pc.active_cycles
                )));
            }
            account.config = status.idle_config;
            account.idle = core_total
                .checked_sub(pc.active_cycles + status.idle_config)
                .ok_or_else(|| {
                    ChipError::Setup(format!(
                        "{}: more active cycles than the run's",
                        rowsim_kernel::Component::name(pe)
                    ))
                })?;
            pe_cycles.add(&account);
            if let Some(p) = self.plan.at(*l) {
                pe_utilization.push(PeUtilization {
                    row: p.row,
                    col: p.col,
                    mac_slots: pc.macs + pc.macs_gated + pc.macs_skipped,
                });
            }
            // Slots not performed: gated, or skipped.
            c.macs += pc.macs + pc.macs_gated + pc.macs_skipped;
            c.macs_gated += pc.macs_gated + pc.macs_skipped;
            c.index_reads += pc.index_reads;
            c.index_writes += pc.index_writes;
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
            processing_cycles: status.processing_cycles,
            controller: status,
            pe_cycles,
            pe_utilization,
            link_cycles,
            time_ps: self.sched.time(),
            activity: self.sched.activity(),
            interconnect,
        })
    }
}

/// A component of the run, read after it (statistics), never to drive it.
fn comp<T: rowsim_kernel::Component>(s: &Scheduler, id: ComponentId) -> Result<&T, ChipError> {
    s.component::<T>(id)
        .ok_or_else(|| ChipError::Setup("component missing".into()))
}

/// A layer run checked against the reference convolution.
#[derive(Clone, Debug)]
pub struct CheckedRun {
    pub run: LayerRun,
    /// The reference convolution's output (ReLU as the config says).
    pub reference: Tensor,
    /// Whether the chip's ofmap equals it bit for bit.
    pub verified: bool,
    /// The wall-clock times of the emulation and of the reference.
    pub host: crate::stats::Host,
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

/// Runs a layer and checks its ofmap against the reference convolution, which runs on a
/// thread of its own meanwhile (each timed on its own; a run that stops gives it up).
pub fn run_checked(
    hw: &HwConfig,
    layer: &ConvLayer,
    mapping: &Mapping,
    ifmap: &Tensor,
    weights: &Tensor,
    opts: &RunOptions,
) -> Result<CheckedRun, ChipError> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let relu = opts.relu_on(hw);
    let (run, emulation_s, reference) = std::thread::scope(|s| {
        let reference = s.spawn(|| {
            let t = std::time::Instant::now();
            let r = rowsim_workload::reference_conv_until(
                layer,
                ifmap,
                weights,
                opts.mac,
                relu,
                Some(&stop),
            );
            (r, t.elapsed().as_secs_f64())
        });
        let t = std::time::Instant::now();
        let run = run_layer(hw, layer, mapping, ifmap, weights, opts);
        let emulation_s = t.elapsed().as_secs_f64();
        if run.is_err() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        (run, emulation_s, reference.join())
    });
    let run = run?;
    let (reference, reference_s) =
        reference.map_err(|_| ChipError::Setup("the reference convolution panicked".into()))?;
    let (reference, _) = reference.map_err(ChipError::Setup)?;
    let verified = run.ofmap == reference;
    let host = crate::stats::Host::new(emulation_s, reference_s, run.core_cycles, &run.activity);
    Ok(CheckedRun {
        run,
        reference,
        verified,
        host,
    })
}
