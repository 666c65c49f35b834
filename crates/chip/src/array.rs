//! One processing pass through the array's real components: the PEs of an [`ArrayPlan`], the
//! filter, ifmap and psum GINs with the plan's IDs, the local links up each chain, and the GON.
//!
//! Each GIN has its own sequencer on the GLB side (a [`Feeder`] of tagged beats), so a stream
//! that waits never holds up another:
//! - **filters**: one beat of up to a bus width of weights per logical filter row in turn, the
//!   rows taken round robin, each row's weights in filter-spad order `(s, c, f)`;
//! - **ifmaps**: image by image, column by column of the padded row (the `(F-1)*U + S` columns
//!   some output uses), every row of the band, each
//!   row's `q` channel values: every PE sees its own row in the `(col, c)` order it stores, and no
//!   PE is asked for a column more than a window ahead of the PEs its chain waits on, so the pass
//!   cannot deadlock (a PE's window holds at least `S` columns);
//! - **psums in** (when a pass continues an accumulation): per image and output column, each
//!   chain bottom's `p` psums.
//!
//! The GON takes the chain tops' psums to a collector, tagged with their PE.

use std::collections::BTreeMap;

use rowsim_config::HwConfig;
use rowsim_datapath::mac::MacConfig;
use rowsim_kernel::{Collector, ComponentId, Feeder, Link, LinkError, LinkRx, LinkTx, Scheduler};
use rowsim_mapper::Problem;
use rowsim_noc::{Beat, Gin, GinBuses, GinIds, GinMask, GonBeat, GonBus, NetSpec, NocError};
use rowsim_pe::{Pe, PePorts, PeSizes, Primitive};

use crate::plan::{ArrayPlan, LogicalPe, PhysPe};

/// The data of one pass, in the order the PEs take it.
#[derive(Clone, Debug, Default)]
pub struct PassInput {
    /// Output rows of this strip (`<= e`).
    pub e_cur: u32,
    pub mac: MacConfig,
    pub zero_gating: bool,
    /// Zero skipping of ifmap and weight zeros (`datapath.zero_skipping`).
    pub zero_skipping: bool,
    /// Weights cross the filter GIN and sit in the PEs compressed (`spad.filter.compressed`):
    /// each row below is sent as its zero mask and nonzero values.
    pub compressed: bool,
    /// Per logical filter row `(tt, rr, i)`: `p*q*S` weights in filter-spad order.
    pub filters: BTreeMap<(u32, u32, u32), Vec<i16>>,
    /// `[image][rr][y]`: row `y` of the strip's band (padded rows `0..(e_cur-1)*U + R`) for
    /// channel group `rr`, `(col, c)` interleaved: `Wp * q` values.
    pub ifmaps: Vec<Vec<Vec<Vec<i16>>>>,
    /// Per chain bottom `(tt, j)`: `n*F*p` psums `(image, x, f)`, when the pass continues an
    /// accumulation.
    pub psum_in: Option<BTreeMap<(u32, u32), Vec<i16>>>,
}

/// A pass built into a scheduler.
pub struct ArrayPass {
    pub sched: Scheduler,
    pub pes: BTreeMap<LogicalPe, ComponentId>,
    pub gon_out: ComponentId,
    pub filter_gin: ComponentId,
    pub ifmap_gin: ComponentId,
    pub psum_gin: ComponentId,
    pub gon: ComponentId,
}

/// What can stop a pass from being built.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("{0}")]
    Noc(#[from] NocError),
    #[error("{0}")]
    Pe(#[from] rowsim_pe::PeError),
    #[error("pass input: {0}")]
    Input(String),
}

fn pe_name(p: PhysPe) -> String {
    format!("top.chip.pe_array.pe_r{}_c{}", p.row, p.col)
}

fn net(hw: &HwConfig, name: &str, col_bits: u32, width_bits: u32) -> NetSpec {
    NetSpec {
        name: format!("top.chip.noc.{name}"),
        rows: hw.array.rows,
        cols: hw.array.cols,
        row_id_bits: hw.noc.row_id_bits,
        col_id_bits: col_bits,
        width_bits,
    }
}

type Grid<T> = Vec<Vec<Option<T>>>;

/// A PE's links while the array is wired: filter in, ifmap in, psum in, psum out.
type PeLinks = (
    LinkRx<i16>,
    LinkRx<i16>,
    Option<LinkRx<i16>>,
    Option<LinkTx<i16>>,
);

/// A logical filter row: (filter group, channel group, filter row).
type FilterRow = (u32, u32, u32);

fn grid<T>(hw: &HwConfig) -> Grid<T> {
    (0..hw.array.rows)
        .map(|_| (0..hw.array.cols).map(|_| None).collect())
        .collect()
}

/// The array wired into a scheduler: every PE of the plan (unconfigured), their links, the
/// buses of the three GINs with the plan's IDs, and the GON's. The GINs' inputs and the GON's
/// output are left for the GLB side: the GINs and the GON become components that talk to it
/// over links ([`place_gins`], [`GonBus::sending_on`]), or parts of the GLB block
/// ([`crate::block::GlbBlock`]).
pub struct ArrayWiring {
    pub pes: BTreeMap<LogicalPe, ComponentId>,
    /// The filter, ifmap and psum GINs' buses.
    pub gins: [GinBuses; 3],
    /// The GON's bus, fed by the chain tops' psum outputs.
    pub gon: GonBus,
    /// Each PE's configuration link (see [`Pe::with_config_port`]).
    pub pe_config: Vec<(LogicalPe, LinkTx<Primitive>)>,
    /// Each GIN's configuration link (filter, ifmap, psum).
    pub gin_config: Vec<LinkTx<GinMask>>,
}

/// The depth of a GIN's input FIFO from the GLB side, in beats: two, so that it sustains a
/// beat a cycle over its one-cycle hop.
pub const GIN_IN_DEPTH: u32 = 2;

/// The depth of the GON's output FIFO into the GLB's psum writer, in beats: two, so that it
/// sustains a beat a cycle over its one-cycle hop.
pub const GON_OUT_DEPTH: u32 = 2;

/// The GINs (filter, ifmap, psum) as components of their own in `sched`, each fed by a link
/// from the GLB side of latency one and [`GIN_IN_DEPTH`]: the links' sending ends and the
/// components.
pub fn place_gins(
    sched: &mut Scheduler,
    core: rowsim_kernel::Clock,
    gins: [GinBuses; 3],
) -> Result<([LinkTx<Beat>; 3], [ComponentId; 3]), PassError> {
    let mut ins = Vec::new();
    let mut ids = Vec::new();
    for g in gins {
        let input = Link::<Beat>::new(&format!("{}.in", g.name()), core, 1, GIN_IN_DEPTH)?;
        ins.push(input.tx);
        ids.push(sched.add(core, g.fed_by(input.rx)));
    }
    let three = |what: &str| PassError::Input(format!("three GIN {what}"));
    Ok((
        ins.try_into().map_err(|_| three("inputs"))?,
        ids.try_into().map_err(|_| three("components"))?,
    ))
}

/// Wires the array of `plan` into `sched` on clock `core`.
pub fn wire_array(
    sched: &mut Scheduler,
    core: rowsim_kernel::Clock,
    plan: &ArrayPlan,
    hw: &HwConfig,
) -> Result<ArrayWiring, PassError> {
    let sizes = PeSizes::from_config(hw);
    let all: Vec<(LogicalPe, PhysPe)> = plan.pes.iter().map(|(l, p)| (*l, *p)).collect();
    let mut filter_out: Grid<LinkTx<i16>> = grid(hw);
    let mut ifmap_out: Grid<LinkTx<i16>> = grid(hw);
    let mut psum_gin_out: Grid<LinkTx<i16>> = grid(hw);
    let mut gon_in: Grid<LinkRx<i16>> = grid(hw);
    let mut ports: BTreeMap<LogicalPe, PeLinks> = BTreeMap::new();
    for (l, p) in &all {
        let f = Link::<i16>::new(
            &format!("{}.filter_fifo", pe_name(*p)),
            core,
            1,
            hw.pe.filter_fifo_depth,
        )?;
        let i = Link::<i16>::new(
            &format!("{}.ifmap_fifo", pe_name(*p)),
            core,
            1,
            hw.pe.ifmap_fifo_depth,
        )?;
        filter_out[p.row as usize][p.col as usize] = Some(f.tx);
        ifmap_out[p.row as usize][p.col as usize] = Some(i.tx);
        ports.insert(*l, (f.rx, i.rx, None, None));
    }
    // Psums: up the chains over local links; bottoms from the psum GIN; tops to the GON. A
    // PE's psum output FIFO (`pe.psum_out_fifo_depth`) is what its psums wait in for their
    // consumer: the PE above, which reads it over the local link, or the GON. A chain bottom's
    // psums from the GLB wait in its psum input FIFO (`pe.psum_in_fifo_depth`).
    for (l, p) in &all {
        let out = Link::<i16>::new(
            &format!("{}.psum_out", pe_name(*p)),
            core,
            1,
            hw.pe.psum_out_fifo_depth,
        )?;
        match plan.above(*l) {
            Some(up) => {
                ports
                    .get_mut(&up)
                    .ok_or_else(|| PassError::Input("chain broken".into()))?
                    .2 = Some(out.rx)
            }
            None => gon_in[p.row as usize][p.col as usize] = Some(out.rx),
        }
        ports
            .get_mut(l)
            .ok_or_else(|| PassError::Input("PE missing".into()))?
            .3 = Some(out.tx);
        if plan.is_bottom(*l) {
            let pin = Link::<i16>::new(
                &format!("{}.psum_gin_fifo", pe_name(*p)),
                core,
                1,
                hw.pe.psum_in_fifo_depth,
            )?;
            psum_gin_out[p.row as usize][p.col as usize] = Some(pin.tx);
            ports
                .get_mut(l)
                .ok_or_else(|| PassError::Input("PE missing".into()))?
                .2 = Some(pin.rx);
        }
    }
    let mut pes = BTreeMap::new();
    let mut pe_config = Vec::new();
    for (l, (f, i, pin, pout)) in ports {
        let p = plan
            .at(l)
            .ok_or_else(|| PassError::Input("PE missing".into()))?;
        let cfg = Link::<Primitive>::new(&format!("{}.config", pe_name(p)), core, 1, 2)?;
        pe_config.push((l, cfg.tx));
        let pe = Pe::new(
            &pe_name(p),
            sizes,
            PePorts {
                filter_in: f,
                ifmap_in: i,
                psum_in: pin,
                psum_out: pout.ok_or_else(|| PassError::Input("psum output missing".into()))?,
            },
        )
        .with_config_port(cfg.rx);
        pes.insert(l, sched.add(core, pe));
    }
    let n = &hw.noc;
    let mut gin_config = Vec::new();
    let mut gin = |name: &str,
                   col_bits: u32,
                   width: u32,
                   ids: &GinIds,
                   outs: Grid<LinkTx<i16>>|
     -> Result<GinBuses, PassError> {
        let spec = net(hw, name, col_bits, width);
        let cfg = Link::<GinMask>::new(&format!("{}.config", spec.name), core, 1, 2)?;
        gin_config.push(cfg.tx);
        Ok(GinBuses::new(spec, outs, ids)?.with_config_port(cfg.rx))
    };
    let gins = [
        gin(
            "gin_filter",
            n.filter_gin.col_id_bits,
            n.filter_gin.width_bits,
            &plan.filter_ids,
            filter_out,
        )?,
        gin(
            "gin_ifmap",
            n.ifmap_gin.col_id_bits,
            n.ifmap_gin.width_bits,
            &plan.ifmap_ids,
            ifmap_out,
        )?,
        gin(
            "gin_psum",
            n.psum_gin.col_id_bits,
            n.psum_gin.width_bits,
            &plan.psum_ids,
            psum_gin_out,
        )?,
    ];
    let gon = GonBus::new(net(hw, "gon", 8, n.gon.width_bits), gon_in)?;
    Ok(ArrayWiring {
        pes,
        gins,
        gon,
        pe_config,
        gin_config,
    })
}

/// How the PEs treat zeros: `datapath.zero_gating`, `datapath.zero_skipping` and
/// `spad.filter.compressed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroMode {
    pub gating: bool,
    pub skipping: bool,
    pub compressed: bool,
}

impl ZeroMode {
    pub fn of(hw: &HwConfig) -> Self {
        ZeroMode {
            gating: hw.datapath.zero_gating,
            skipping: hw.datapath.zero_skipping,
            compressed: hw.spad.filter.compressed,
        }
    }
}

/// The primitive every active PE of a pass runs.
pub fn pass_primitive(
    plan: &ArrayPlan,
    pb: &Problem,
    l: LogicalPe,
    continuing: bool,
    mac: MacConfig,
    zeros: ZeroMode,
) -> Primitive {
    let m = plan.mapping;
    Primitive {
        p: m.p,
        q: m.q,
        s: pb.s,
        u: pb.uh,
        f: pb.f,
        rows: m.n,
        psum_in: !plan.is_bottom(l) || continuing,
        mac,
        zero_gating: zeros.gating,
        zero_skipping: zeros.skipping,
        compressed: zeros.compressed,
    }
}

/// Gates the GINs to the PEs of a strip of `e_cur` rows.
pub fn gate_strip(sched: &mut Scheduler, gins: [ComponentId; 3], plan: &ArrayPlan, e_cur: u32) {
    let active: std::collections::BTreeSet<(usize, usize)> = plan
        .pes
        .iter()
        .filter(|(l, _)| l.j < e_cur)
        .map(|(_, p)| (p.row as usize, p.col as usize))
        .collect();
    for id in gins {
        if let Some(g) = sched.component_mut::<Gin>(id) {
            g.set_active(|b, p| active.contains(&(b, p)));
        }
    }
}

/// Builds a pass: `n` images of the strip `e_cur` through the plan's PEs, fed from the pass's
/// data directly (the GLB side is three sequencers).
pub fn build_pass(
    plan: &ArrayPlan,
    pb: &Problem,
    hw: &HwConfig,
    input: &PassInput,
) -> Result<ArrayPass, PassError> {
    let m = plan.mapping;
    let mut sched = Scheduler::new();
    let core = sched
        .add_clock("core", hw.clocks.core_hz)
        .map_err(|e| PassError::Input(e.to_string()))?;
    let e_cur = input.e_cur;
    if e_cur == 0 || e_cur > m.e {
        return Err(PassError::Input(format!(
            "strip of {e_cur} rows for e={}",
            m.e
        )));
    }
    let w = wire_array(&mut sched, core, plan, hw)?;
    let gon_link = Link::<GonBeat>::new("top.chip.noc.gon.out", core, 1, GON_OUT_DEPTH)?;
    let gon = sched.add(core, w.gon.sending_on(gon_link.tx));
    let ([filter_in, ifmap_in, psum_in], gins) = place_gins(&mut sched, core, w.gins)?;
    gate_strip(&mut sched, gins, plan, e_cur);
    let continuing = input.psum_in.is_some();
    for (l, id) in &w.pes {
        if l.j < e_cur {
            if let Some(pe) = sched.component_mut::<Pe>(*id) {
                pe.configure(pass_primitive(
                    plan,
                    pb,
                    *l,
                    continuing,
                    input.mac,
                    ZeroMode {
                        gating: input.zero_gating,
                        skipping: input.zero_skipping,
                        compressed: input.compressed,
                    },
                ))?;
            }
        }
    }
    // The GLB side: three sequencers.
    let words = |bits: u32| (bits / 16).clamp(1, 4) as usize;
    let fw = words(hw.noc.filter_gin.width_bits);
    let mut filter_beats = Vec::new();
    let streams: Vec<(&FilterRow, Vec<i16>)> = input
        .filters
        .iter()
        .map(|(k, row)| {
            if input.compressed {
                let mut v = Vec::new();
                rowsim_datapath::zmask::encode_row(row, &mut v);
                (k, v)
            } else {
                (k, row.clone())
            }
        })
        .collect();
    let rows = (m.t * m.r * pb.r) as usize;
    if streams.len() != rows {
        return Err(PassError::Input(format!(
            "{} filter rows given for a pass of t*r*R = {rows}",
            streams.len()
        )));
    }
    let lens: Vec<u64> = streams.iter().map(|s| s.1.len() as u64).collect();
    for ch in crate::stream::filter_chunks(&m, pb, &lens, fw as u64) {
        let (&(tt, rr, i), ws) = &streams[ch.row];
        if (tt, rr, i) != (ch.tt, ch.rr, ch.i) {
            return Err(PassError::Input(format!(
                "filter row ({tt}, {rr}, {i}) given where row ({}, {}, {}) belongs",
                ch.tt, ch.rr, ch.i
            )));
        }
        let (row, col) = plan.filter_tag(tt, rr, i);
        let (a, b) = (ch.start as usize, (ch.start + ch.len) as usize);
        filter_beats.push(Beat::new(row, col, &ws[a..b]));
    }
    let mut ifmap_beats = Vec::new();
    let q = m.q as usize;
    let band = (e_cur - 1) * pb.u + pb.r;
    let tags: Vec<Vec<Vec<(u16, u16)>>> = (0..m.r)
        .map(|rr| (0..band).map(|y| plan.ifmap_tags(rr, y, e_cur)).collect())
        .collect();
    if input.ifmaps.len() < m.n as usize {
        return Err(PassError::Input(format!(
            "{} images given for a pass of n = {}",
            input.ifmaps.len(),
            m.n
        )));
    }
    for v in crate::stream::ifmap_values(&m, pb, band) {
        let row = input.ifmaps[v.img as usize]
            .get(v.rr as usize)
            .and_then(|rows| rows.get(v.y as usize))
            .ok_or_else(|| {
                PassError::Input(format!("ifmap row {} of block {} missing", v.y, v.rr))
            })?;
        let x = *row.get(v.col as usize * q + v.c as usize).ok_or_else(|| {
            PassError::Input(format!(
                "ifmap row {} is shorter than {} x {q}",
                v.y,
                pb.w_used()
            ))
        })?;
        for &(r_id, c_id) in &tags[v.rr as usize][v.y as usize] {
            ifmap_beats.push(Beat::new(r_id, c_id, &[x]));
        }
    }
    let pw = words(hw.noc.psum_gin.width_bits);
    let mut psum_beats = Vec::new();
    if let Some(pin) = &input.psum_in {
        let per_pos = m.p as usize;
        for (pos, tt, j) in crate::stream::psum_positions(&m, pb, e_cur) {
            let ws = pin
                .get(&(tt, j))
                .ok_or_else(|| PassError::Input(format!("no psums in for chain ({tt}, {j})")))?;
            let l = LogicalPe {
                tt,
                rr: m.r - 1,
                i: pb.r - 1,
                j,
            };
            let p = plan
                .at(l)
                .ok_or_else(|| PassError::Input(format!("no chain bottom for ({tt}, {j})")))?;
            let (row, col) = plan.psum_tag(p);
            let k = pos as usize * per_pos;
            let chunk = ws.get(k..k + per_pos).ok_or_else(|| {
                PassError::Input(format!("too few psums in for chain ({tt}, {j})"))
            })?;
            for c in chunk.chunks(pw) {
                psum_beats.push(Beat::new(row, col, c));
            }
        }
    }
    sched.add(
        core,
        Feeder::new("top.chip.glb.gin_filter_seq", filter_in, filter_beats, 1),
    );
    sched.add(
        core,
        Feeder::new("top.chip.glb.gin_ifmap_seq", ifmap_in, ifmap_beats, 1),
    );
    sched.add(
        core,
        Feeder::new("top.chip.glb.gin_psum_seq", psum_in, psum_beats, 1),
    );
    let gon_out = sched.add(
        core,
        Collector::new("top.chip.glb.psum_writer", gon_link.rx, 1),
    );
    Ok(ArrayPass {
        sched,
        pes: w.pes,
        gon_out,
        filter_gin: gins[0],
        ifmap_gin: gins[1],
        psum_gin: gins[2],
        gon,
    })
}

impl ArrayPass {
    /// Runs the pass and returns each chain top's psums by `(tt, j)`, `(image, x, f)` ordered.
    pub fn run(
        &mut self,
        plan: &ArrayPlan,
    ) -> Result<BTreeMap<(u32, u32), Vec<i16>>, rowsim_kernel::SimError> {
        self.sched.run()?;
        let col = self
            .sched
            .component::<Collector<GonBeat>>(self.gon_out)
            .ok_or_else(|| rowsim_kernel::SimError::Setup("GON collector".into()))?;
        let tops: BTreeMap<PhysPe, LogicalPe> = plan
            .pes
            .iter()
            .filter(|(l, _)| plan.is_top(**l))
            .map(|(l, p)| (*p, *l))
            .collect();
        let mut out: BTreeMap<(u32, u32), Vec<i16>> = BTreeMap::new();
        for (_, b) in &col.items {
            let at = PhysPe {
                row: b.bus as u32,
                col: b.pe as u32,
            };
            let l = tops.get(&at).ok_or_else(|| {
                rowsim_kernel::SimError::Setup(format!(
                    "GON beat from a PE that is not a chain top: {at:?}"
                ))
            })?;
            out.entry((l.tt, l.j))
                .or_default()
                .extend_from_slice(&b.words[..b.len as usize]);
        }
        Ok(out)
    }
}
