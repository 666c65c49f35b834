//! The network on chip of an Eyeriss-style array.
//!
//! # Global Input Network ([`Gin`])
//! One per data type (filters, ifmaps, psums). A Y-bus carries beats from the GLB side to one
//! X-bus per PE row; each X-bus feeds the PEs of its row. Each X-bus has a row ID and each PE a
//! column ID, set per layer (what the scan chain loads). Every beat carries a (row, col) tag and
//! reaches, in the cycle it is sent, every X-bus whose row ID equals the tag's row and, on it,
//! every PE whose column ID equals the tag's column: one send, any number of destinations
//! (multicast). Its words land in each destination's input FIFO (a [`Link`](rowsim_kernel::Link)
//! of latency 1, so the PE sees them at its next edge). A beat is sent only when every
//! destination has room for all its words; otherwise it waits, and the wait is counted. Buses and
//! PEs that do not match see nothing (their `valid` stays low: clock-gated).
//!
//! The network proper (its buses, IDs, routes and counters) is [`GinBuses`]; a [`Gin`] is those
//! buses fed by a link from the GLB side, a component of its own. The chip builds its GINs' buses
//! inside the GLB block instead, fed from the GLB's sequencers over FIFOs with the same timing
//! (`rowsim-chip`'s `block`).
//!
//! A beat is up to `width_bits / 16` words (4 on the 64-bit filter and psum GINs, 1 on the 16-bit
//! ifmap GIN). Tags wider than their ID fields, IDs wider than theirs, and tags that match no PE
//! are errors naming the network and the value.
//!
//! # Global Output Network ([`Gon`])
//! The reverse: PEs' psum outputs to the GLB, one beat a cycle (up to `width_bits / 16` words of
//! one PE), PEs served round robin, each beat tagged with its source PE.
//!
//! # Local network
//! The 64-bit link from each PE to the PE above is a plain [`Link`](rowsim_kernel::Link) from
//! the lower PE's psum output to the upper PE's psum input; the chip builds it.

use std::fmt;

use rowsim_kernel::{
    Activity, Component, Fault, LinkRx, LinkTx, Port, SignalId, SignalRegistry, StepCtx,
    TraceError, TraceFrame, Wake, Wire,
};

pub use rowsim_types::{Beat, GonBeat, MAX_BEAT_WORDS};

/// The fixed shape of a network (from the hw-config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetSpec {
    /// Scope path, e.g. `top.chip.noc.gin_ifmap`.
    pub name: String,
    pub rows: u32,
    pub cols: u32,
    pub row_id_bits: u32,
    pub col_id_bits: u32,
    pub width_bits: u32,
}

impl NetSpec {
    pub fn width_words(&self) -> usize {
        (self.width_bits / 16).clamp(1, MAX_BEAT_WORDS as u32) as usize
    }
}

/// Row IDs of the X-buses and column IDs of the PEs: a layer's configuration of one GIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GinIds {
    /// Per X-bus.
    pub row_ids: Vec<u16>,
    /// Per X-bus, per PE.
    pub col_ids: Vec<Vec<u16>>,
}

/// A bad configuration or beat; names the network and the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NocError {
    pub net: String,
    pub what: String,
}

impl fmt::Display for NocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.net, self.what)
    }
}

impl std::error::Error for NocError {}

/// Counters of one network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Beats sent.
    pub beats: u64,
    /// Words sent on the Y-bus (each once).
    pub y_words: u64,
    /// Words carried by X-buses (once per matching bus).
    pub x_words: u64,
    /// Words delivered into PE FIFOs (once per destination PE): the NoC accesses of the energy
    /// model.
    pub pe_words: u64,
    /// Cycles a beat waited for a destination to have room.
    pub wait_cycles: u64,
    /// Destinations per beat, summed (fan-out = this / beats).
    pub fanout_total: u64,
    pub fanout_max: u64,
}

struct GinSignals {
    y_valid: SignalId,
    y_row: SignalId,
    y_col: SignalId,
    y_data: SignalId,
    y_wait: SignalId,
    x_valid: Vec<SignalId>,
    x_pe_en: Vec<SignalId>,
}

/// A global input network fed by a link from the GLB side: its buses ([`GinBuses`]) and that
/// link. A component.
pub struct Gin {
    buses: GinBuses,
    input: LinkRx<Beat>,
}

/// A global input network's Y-bus and X-buses with their multicast controllers, without its
/// input: stepped by [`Gin`] from a link, or by a block that feeds it from a [`Wire`] of its
/// own (the GLB block, which the chip builds with its GINs inside: `rowsim-chip`), with the
/// same timing (see [`GinBuses::step_from`]).
pub struct GinBuses {
    spec: NetSpec,
    /// The PEs' input FIFOs on this network, in (X-bus, PE) order: those of the PEs that
    /// have one.
    links: Vec<LinkTx<i16>>,
    /// Per X-bus, per PE: its FIFO's index in `links`, if it has one.
    link_index: Vec<Vec<Option<u16>>>,
    /// PEs taking part (the chip gates the others, e.g. past a narrower last strip).
    active: Vec<Vec<bool>>,
    ids: GinIds,
    /// Destinations of each (row tag, col tag): (bus, pe), indexed `row << col_id_bits | col`.
    routes: Vec<Vec<(u16, u16)>>,
    /// Per route: the X-buses its destinations are on (what a beat on it costs the buses).
    route_buses: Vec<u32>,
    /// Per route: its destinations' FIFOs (indices into `links`), as a span of `route_links`
    /// (what a beat's flow control and sends walk: one flat list, no (bus, PE) lookups).
    route_span: Vec<(u32, u32)>,
    route_links: Vec<u16>,
    counters: NetCounters,
    // What the last edge sent, for the trace.
    sent: Option<Beat>,
    waiting: bool,
    /// The beat at the head waits for credits that no look finds before this edge (a PE's
    /// pops that return them are made, at known edges: [`LinkTx::short_until`]); 0 if none.
    short_until: u64,
    bus_mask: Vec<u64>,
    sig: Option<GinSignals>,
    config_port: Port<GinMask>,
}

/// Where a GIN's beats come from: the link from the GLB side, or a block's own [`Wire`].
pub trait BeatIn {
    /// The beat at the head, if it has arrived by this edge (looking at a link also asks for a
    /// step at the arrival of one on its way).
    fn head(&mut self, cx: &StepCtx) -> Option<Beat>;
    /// Takes the beat at the head (which [`BeatIn::head`] has just shown).
    fn take(&mut self, cx: &StepCtx);
}

impl BeatIn for LinkRx<Beat> {
    #[inline]
    fn head(&mut self, cx: &StepCtx) -> Option<Beat> {
        self.peek(cx).copied()
    }
    #[inline]
    fn take(&mut self, cx: &StepCtx) {
        self.try_recv(cx);
    }
}

impl BeatIn for Wire<Beat> {
    #[inline]
    fn head(&mut self, cx: &StepCtx) -> Option<Beat> {
        self.peek(cx.cycle).copied()
    }
    #[inline]
    fn take(&mut self, cx: &StepCtx) {
        self.pop(cx.cycle);
    }
}

/// Which PEs of a GIN take part, `[bus][pe]` (see [`Gin::with_config_port`]).
pub type GinMask = std::sync::Arc<Vec<Vec<bool>>>;

fn fits(v: u64, bits: u32) -> bool {
    bits >= 64 || v < (1u64 << bits)
}

/// For each route, the indices into a GIN's `links` of its destinations' FIFOs: one flat list
/// and each route's (start, length) in it.
fn links_of(
    routes: &[Vec<(u16, u16)>],
    link_index: &[Vec<Option<u16>>],
) -> (Vec<(u32, u32)>, Vec<u16>) {
    let mut flat = Vec::new();
    let spans = routes
        .iter()
        .map(|r| {
            let start = flat.len() as u32;
            flat.extend(
                r.iter()
                    .filter_map(|&(b, p)| link_index[b as usize][p as usize]),
            );
            (start, flat.len() as u32 - start)
        })
        .collect();
    (spans, flat)
}

/// For each route, the number of X-buses its destinations are on.
fn buses_of(routes: &[Vec<(u16, u16)>], rows: usize) -> Vec<u32> {
    let mut on = vec![false; rows];
    routes
        .iter()
        .map(|r| {
            on.iter_mut().for_each(|b| *b = false);
            r.iter().for_each(|&(b, _)| on[b as usize] = true);
            on.iter().filter(|&&b| b).count() as u32
        })
        .collect()
}

impl Gin {
    /// A GIN of `spec`, fed by `input`, with per-PE outputs, configured with `ids`.
    pub fn new(
        spec: NetSpec,
        input: LinkRx<Beat>,
        outputs: Vec<Vec<Option<LinkTx<i16>>>>,
        ids: &GinIds,
    ) -> Result<Self, NocError> {
        Ok(GinBuses::new(spec, outputs, ids)?.fed_by(input))
    }

    pub fn counters(&self) -> &NetCounters {
        self.buses.counters()
    }

    /// See [`GinBuses::with_config_port`].
    pub fn with_config_port(mut self, rx: LinkRx<GinMask>) -> Self {
        self.buses = self.buses.with_config_port(rx);
        self
    }

    /// See [`GinBuses::set_active`].
    pub fn set_active(&mut self, active: impl Fn(usize, usize) -> bool) {
        self.buses.set_active(active);
    }

    /// See [`GinBuses::destinations`].
    pub fn destinations(&self, row: u16, col: u16) -> Result<&[(u16, u16)], NocError> {
        self.buses.destinations(row, col)
    }
}

impl GinBuses {
    /// The buses of a GIN of `spec`, with per-PE outputs, configured with `ids`.
    pub fn new(
        spec: NetSpec,
        outputs: Vec<Vec<Option<LinkTx<i16>>>>,
        ids: &GinIds,
    ) -> Result<Self, NocError> {
        let err = |what: String| NocError {
            net: spec.name.clone(),
            what,
        };
        if outputs.len() != spec.rows as usize
            || outputs.iter().any(|r| r.len() != spec.cols as usize)
        {
            return Err(err(format!(
                "outputs must be {} x {} (rows x cols)",
                spec.rows, spec.cols
            )));
        }
        if ids.row_ids.len() != spec.rows as usize
            || ids.col_ids.len() != spec.rows as usize
            || ids.col_ids.iter().any(|r| r.len() != spec.cols as usize)
        {
            return Err(err(format!(
                "IDs must cover the {} x {} array: {} row IDs, {} rows of column IDs",
                spec.rows,
                spec.cols,
                ids.row_ids.len(),
                ids.col_ids.len()
            )));
        }
        if outputs.iter().flatten().filter(|o| o.is_some()).count() > 1 << 16 {
            return Err(err(format!(
                "more than {} PE inputs on one network",
                1u32 << 16
            )));
        }
        let mut links = Vec::new();
        let link_index: Vec<Vec<Option<u16>>> = outputs
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|o| {
                        o.map(|tx| {
                            links.push(tx);
                            (links.len() - 1) as u16
                        })
                    })
                    .collect()
            })
            .collect();
        for (bus, &rid) in ids.row_ids.iter().enumerate() {
            if !fits(rid as u64, spec.row_id_bits) {
                return Err(err(format!(
                    "row ID {rid} of X-bus {bus} is wider than {} bits",
                    spec.row_id_bits
                )));
            }
            for (pe, &cid) in ids.col_ids[bus].iter().enumerate() {
                if !fits(cid as u64, spec.col_id_bits) {
                    return Err(err(format!(
                        "column ID {cid} of PE ({bus}, {pe}) is wider than {} bits",
                        spec.col_id_bits
                    )));
                }
            }
        }
        let rows = spec.rows as usize;
        let routes = vec![Vec::new(); 1usize << (spec.row_id_bits + spec.col_id_bits)];
        let mut buses = GinBuses {
            active: vec![vec![true; spec.cols as usize]; rows],
            spec,
            links,
            link_index,
            ids: ids.clone(),
            routes,
            route_buses: Vec::new(),
            route_span: Vec::new(),
            route_links: Vec::new(),
            counters: NetCounters::default(),
            sent: None,
            waiting: false,
            short_until: 0,
            bus_mask: vec![0; rows],
            sig: None,
            config_port: Port::default(),
        };
        // Every PE with an input takes part until a mask says otherwise.
        buses.rebuild_routes();
        Ok(buses)
    }

    /// A GIN component of these buses, fed by `input`.
    pub fn fed_by(self, input: LinkRx<Beat>) -> Gin {
        Gin { buses: self, input }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn counters(&self) -> &NetCounters {
        &self.counters
    }

    /// Wires the GIN's configuration port: masks of active PEs (`[bus][pe]`) that the top-level
    /// controller sends when a strip changes which PEs work; each takes effect at the edge it
    /// arrives, before any beat of that edge is routed.
    pub fn with_config_port(mut self, rx: LinkRx<GinMask>) -> Self {
        self.config_port = Port::wired(rx);
        self
    }

    /// Gates PEs in or out: a gated PE matches no tag (its multicast controller is off).
    pub fn set_active(&mut self, active: impl Fn(usize, usize) -> bool) {
        for (b, row) in self.active.iter_mut().enumerate() {
            for (p, a) in row.iter_mut().enumerate() {
                *a = active(b, p);
            }
        }
        self.rebuild_routes();
    }

    /// The routes (and what is derived from them) of the IDs, the inputs and the mask.
    fn rebuild_routes(&mut self) {
        for r in self.routes.iter_mut() {
            r.clear();
        }
        for (bus, &rid) in self.ids.row_ids.iter().enumerate() {
            for (pe, &cid) in self.ids.col_ids[bus].iter().enumerate() {
                if self.link_index[bus][pe].is_some() && self.active[bus][pe] {
                    self.routes[((rid as usize) << self.spec.col_id_bits) | cid as usize]
                        .push((bus as u16, pe as u16));
                }
            }
        }
        self.route_buses = buses_of(&self.routes, self.spec.rows as usize);
        (self.route_span, self.route_links) = links_of(&self.routes, &self.link_index);
    }

    /// The destinations of a tag, as (X-bus, PE) pairs.
    pub fn destinations(&self, row: u16, col: u16) -> Result<&[(u16, u16)], NocError> {
        Ok(&self.routes[self.route_of(row, col)?])
    }

    /// The route of a tag: its index into the routes.
    #[inline]
    fn route_of(&self, row: u16, col: u16) -> Result<usize, NocError> {
        if !fits(row as u64, self.spec.row_id_bits) || !fits(col as u64, self.spec.col_id_bits) {
            return Err(NocError {
                net: self.spec.name.clone(),
                what: format!(
                    "tag ({row}, {col}) is wider than its fields ({} row bits, {} column bits)",
                    self.spec.row_id_bits, self.spec.col_id_bits
                ),
            });
        }
        Ok(((row as usize) << self.spec.col_id_bits) | col as usize)
    }
}

impl GinBuses {
    /// One edge, the beats from `input` (see [`Component::step`]): a block that feeds the
    /// buses from a [`Wire`] of its own steps them at every edge it is stepped at (at least
    /// the edge after a beat is pushed, after a beat is sent, and at each mask or credit that
    /// reaches them: see [`GinBuses::wake`]), as the scheduler steps a [`Gin`]; a step at an
    /// edge it would have slept through finds nothing new and counts what
    /// [`GinBuses::settle`] would have.
    pub fn step_from<I: BeatIn>(&mut self, cx: &StepCtx, input: &mut I) -> Result<Activity, Fault> {
        self.sent = None;
        self.waiting = false;
        let mut configured = false;
        if let Some(mask) = self.config_port.try_recv(cx) {
            if mask.len() != self.active.len()
                || mask
                    .iter()
                    .zip(&self.active)
                    .any(|(m, a)| m.len() != a.len())
            {
                return Err(format!("{}: a PE mask of the wrong shape", self.spec.name).into());
            }
            self.set_active(|b, p| mask[b][p]);
            self.short_until = 0;
            configured = true;
        }
        let Some(beat) = input.head(cx) else {
            return Ok(Activity::from_moved(configured));
        };
        if cx.ahead && cx.cycle < self.short_until {
            // The same beat as at the last look, which found a destination short of credits
            // that cannot come back before `short_until`: this look would find the same (so
            // it is skipped where steps may be; stepping every edge looks, the reference the
            // event-driven runs are compared with).
            return Ok(self.wait_for_room());
        }
        if beat.len == 0 || beat.len as usize > self.spec.width_words() {
            return Err(Box::new(NocError {
                net: self.spec.name.clone(),
                what: format!(
                    "a beat of {} words on a {}-word bus",
                    beat.len,
                    self.spec.width_words()
                ),
            }));
        }
        let route = self.route_of(beat.row, beat.col).map_err(Box::new)?;
        let (start, n) = self.route_span[route];
        if n == 0 {
            return Err(Box::new(NocError {
                net: self.spec.name.clone(),
                what: format!(
                    "tag ({}, {}) matches no PE: the beat would be lost",
                    beat.row, beat.col
                ),
            }));
        }
        let need = beat.len as u32;
        // Flow control: every destination must have room for the whole beat.
        let dests = &self.route_links[start as usize..(start + n) as usize];
        for &l in dests {
            let tx = &mut self.links[l as usize];
            // Credits already held suffice without looking for returned ones (the send below
            // takes those in as it spends).
            if tx.credits_held() < need && tx.credits_for(cx, need) < need {
                self.short_until = tx.short_until(need).unwrap_or(0);
                return Ok(self.wait_for_room());
            }
        }
        input.take(cx);
        self.short_until = 0;
        for &l in dests {
            // The beat's words land in the PE's FIFO at once.
            if !self.links[l as usize].try_send_all(cx, beat.words()) {
                return Err("GIN output refused a word it had credit for".into());
            }
        }
        if self.sig.is_some() {
            // The PEs enabled on each bus, for the trace.
            self.bus_mask.iter_mut().for_each(|m| *m = 0);
            for &(b, p) in &self.routes[route] {
                self.bus_mask[b as usize] |= 1 << p;
            }
        }
        let len = beat.len as u64;
        let buses = self.route_buses[route] as u64;
        self.counters.beats += 1;
        self.counters.y_words += len;
        self.counters.x_words += len * buses;
        self.counters.pe_words += len * n as u64;
        self.counters.fanout_total += n as u64;
        self.counters.fanout_max = self.counters.fanout_max.max(n as u64);
        self.sent = Some(beat);
        Ok(Activity::Moved)
    }

    /// An edge at which the beat at the head waits for room at a destination.
    fn wait_for_room(&mut self) -> Activity {
        self.counters.wait_cycles += 1;
        self.waiting = true;
        Activity::Idle
    }

    /// A mask on its way or waiting (the beats are the input's).
    pub fn config_pending(&self) -> bool {
        self.config_port.pending()
    }

    /// Idle (no beat, or a beat waiting for room at its PEs) until a beat, a mask or a credit
    /// arrives.
    pub fn wake(&self, did: Activity) -> Wake {
        Wake::after(did)
    }

    /// See [`Component::settle`].
    pub fn settle(&mut self, edges: u64) {
        if self.waiting {
            self.counters.wait_cycles += edges;
        }
    }

    /// See [`Component::declare`].
    pub fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        let n = self.spec.name.clone();
        let mut x_valid = Vec::new();
        let mut x_pe_en = Vec::new();
        for r in 0..self.spec.rows {
            let scope = format!("{n}.x_bus_r{r}");
            x_valid.push(s.signal(&scope, "valid", 1)?);
            x_pe_en.push(s.signal(&scope, "pe_en", self.spec.cols.clamp(1, 64))?);
        }
        self.sig = Some(GinSignals {
            y_valid: s.signal(&n, "y_valid", 1)?,
            y_row: s.signal(&n, "y_row_tag", self.spec.row_id_bits)?,
            y_col: s.signal(&n, "y_col_tag", self.spec.col_id_bits)?,
            y_data: s.signal(&n, "y_data", (16 * self.spec.width_words()) as u32)?,
            y_wait: s.signal(&n, "y_wait", 1)?,
            x_valid,
            x_pe_en,
        });
        Ok(())
    }

    /// See [`Component::trace`].
    pub fn trace(&self, f: &mut TraceFrame) {
        let Some(g) = &self.sig else { return };
        f.set_bool(g.y_valid, self.sent.is_some());
        f.set_bool(g.y_wait, self.waiting);
        if let Some(b) = self.sent {
            f.set(g.y_row, b.row as u64);
            f.set(g.y_col, b.col as u64);
            f.set(g.y_data, b.packed());
        }
        for (r, &mask) in self.bus_mask.iter().enumerate() {
            let m = if self.sent.is_some() { mask } else { 0 };
            f.set_bool(g.x_valid[r], m != 0);
            f.set(g.x_pe_en[r], m);
        }
    }
}

impl Component for Gin {
    fn name(&self) -> &str {
        self.buses.name()
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.buses.step_from(cx, &mut self.input)
    }

    fn holds_work(&self) -> bool {
        self.input.in_flight() > 0 || self.buses.config_pending()
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        self.buses.wake(did)
    }

    fn settle(&mut self, _last: &StepCtx, edges: u64) {
        self.buses.settle(edges)
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.buses.declare(s)
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.buses.trace(f)
    }
}

struct GonSignals {
    valid: SignalId,
    src_row: SignalId,
    src_col: SignalId,
    data: SignalId,
}

/// Where the GON's beats go: the link to the GLB's psum writer (a [`Gon`] of its own), or the
/// writer's beat FIFO inside the GLB block (a [`Wire`] with the link's timing).
pub trait BeatOut {
    /// Whether a beat sent at this edge has room (looking at a link also takes in its
    /// returned credits, and asks for a step at the one it waits for).
    fn can_send(&mut self, cx: &StepCtx) -> bool;
    /// Sends a beat (which [`BeatOut::can_send`] has just allowed); whether it went.
    fn send(&mut self, cx: &StepCtx, beat: GonBeat) -> bool;
}

impl BeatOut for LinkTx<GonBeat> {
    #[inline]
    fn can_send(&mut self, cx: &StepCtx) -> bool {
        LinkTx::can_send(self, cx)
    }
    #[inline]
    fn send(&mut self, cx: &StepCtx, beat: GonBeat) -> bool {
        self.try_send(cx, beat).is_ok()
    }
}

impl BeatOut for Wire<GonBeat> {
    #[inline]
    fn can_send(&mut self, cx: &StepCtx) -> bool {
        self.can_push(cx.cycle)
    }
    #[inline]
    fn send(&mut self, cx: &StepCtx, beat: GonBeat) -> bool {
        self.push(cx.cycle, beat).is_ok()
    }
}

/// The global output network proper: the PEs' psum outputs it serves round robin and its bus,
/// stepped into a [`BeatOut`] ([`GonBus::step_into`]). A [`Gon`] is this bus sending on a link,
/// a component of its own; the chip steps it inside the GLB block instead, into the psum
/// writer's FIFO (`rowsim-chip`'s `block`).
pub struct GonBus {
    spec: NetSpec,
    /// The PEs that send on the GON, in array order, with their psum outputs: the round robin
    /// runs over these only.
    inputs: Vec<(u16, u16, LinkRx<i16>)>,
    /// Round-robin pointer into `inputs`.
    next: usize,
    /// The last step had psums to send and no room on the bus.
    waited: bool,
    counters: NetCounters,
    sent: Option<GonBeat>,
    sig: Option<GonSignals>,
}

/// The global output network: PEs' psum outputs to the GLB, a component of its own that sends
/// on a link (see [`GonBus`]).
pub struct Gon {
    bus: GonBus,
    output: LinkTx<GonBeat>,
}

impl GonBus {
    /// The bus of `spec` with the PEs' psum outputs `inputs` (`[row][col]`, `None` where a PE
    /// does not send on the GON).
    pub fn new(spec: NetSpec, inputs: Vec<Vec<Option<LinkRx<i16>>>>) -> Result<Self, NocError> {
        if inputs.len() != spec.rows as usize
            || inputs.iter().any(|r| r.len() != spec.cols as usize)
        {
            return Err(NocError {
                net: spec.name.clone(),
                what: format!("inputs must be {} x {} (rows x cols)", spec.rows, spec.cols),
            });
        }
        let inputs = inputs
            .into_iter()
            .enumerate()
            .flat_map(|(b, row)| {
                row.into_iter()
                    .enumerate()
                    .filter_map(move |(p, i)| i.map(|rx| (b as u16, p as u16, rx)))
            })
            .collect();
        Ok(GonBus {
            spec,
            inputs,
            next: 0,
            waited: false,
            counters: NetCounters::default(),
            sent: None,
            sig: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn counters(&self) -> &NetCounters {
        &self.counters
    }

    /// Sends this bus on `output`: a component of its own.
    pub fn sending_on(self, output: LinkTx<GonBeat>) -> Gon {
        Gon { bus: self, output }
    }

    /// One edge (see [`Component::step`]): the next PE in round-robin order with psums
    /// arrived sends up to a beat's words of them into `out`, if it has room. A block that
    /// steps the bus itself steps it at every edge the bus would be stepped at (the edge after
    /// a beat sent, after a slot freed while it waits for room, and those its inputs ask for:
    /// every psum on its way asks for a step at its arrival, see [`rowsim_kernel::in_part`]);
    /// at the others a step would find nothing new ([`GonBus::skip`]).
    pub fn step_into<O: BeatOut>(&mut self, cx: &StepCtx, out: &mut O) -> Result<Activity, Fault> {
        self.sent = None;
        self.waited = false;
        let total = self.inputs.len();
        let width = self.spec.width_words();
        let mut i = self.next;
        for _ in 0..total {
            if i >= total {
                i = 0;
            }
            let (b, p, rx) = &mut self.inputs[i];
            if rx.peek(cx).is_none() {
                i += 1;
                continue;
            }
            if !out.can_send(cx) {
                self.counters.wait_cycles += 1;
                self.waited = true;
                return Ok(Activity::Idle);
            }
            let mut beat = GonBeat {
                bus: *b,
                pe: *p,
                ..Default::default()
            };
            // Up to a beat's words, those that have arrived, in one interaction.
            beat.len = rx.try_recv_many(cx, &mut beat.words[..width]) as u8;
            if !out.send(cx, beat) {
                return Err("GON output refused a beat it had credit for".into());
            }
            self.counters.beats += 1;
            self.counters.y_words += beat.len as u64;
            self.counters.x_words += beat.len as u64;
            self.counters.pe_words += beat.len as u64;
            self.counters.fanout_total += 1;
            self.counters.fanout_max = 1;
            self.next = i + 1;
            self.sent = Some(beat);
            return Ok(Activity::Moved);
        }
        Ok(Activity::Idle)
    }

    /// Whether the last step found psums and no room for them (the edge after a slot is
    /// freed then has work).
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// An edge at which a step would find nothing new (see [`GonBus::step_into`]): what it
    /// would do, without looking. Waiting for room, it waits another edge.
    pub fn skip(&mut self) {
        self.sent = None;
        if self.waited {
            self.counters.wait_cycles += 1;
        }
    }

    /// Psums on their way or waiting at its inputs.
    pub fn holds_work(&self) -> bool {
        self.inputs.iter().any(|(_, _, rx)| rx.in_flight() > 0)
    }

    /// The next edge after a beat sent; else idle until psums arrive or room is made.
    pub fn wake(&self, did: Activity) -> Wake {
        Wake::after(did)
    }

    /// See [`Component::settle`].
    pub fn settle(&mut self, edges: u64) {
        if self.waited {
            self.counters.wait_cycles += edges;
        }
    }

    /// See [`Component::declare`].
    pub fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        let n = self.spec.name.clone();
        self.sig = Some(GonSignals {
            valid: s.signal(&n, "valid", 1)?,
            src_row: s.signal(&n, "src_row", 8)?,
            src_col: s.signal(&n, "src_col", 8)?,
            data: s.signal(&n, "data", (16 * self.spec.width_words()) as u32)?,
        });
        Ok(())
    }

    /// See [`Component::trace`].
    pub fn trace(&self, f: &mut TraceFrame) {
        let Some(g) = &self.sig else { return };
        f.set_bool(g.valid, self.sent.is_some());
        if let Some(b) = self.sent {
            f.set(g.src_row, b.bus as u64 & 0xFF);
            f.set(g.src_col, b.pe as u64 & 0xFF);
            let packed = b.words[..b.len as usize]
                .iter()
                .enumerate()
                .fold(0u64, |acc, (i, &w)| acc | (w as u16 as u64) << (16 * i));
            f.set(g.data, packed);
        }
    }
}

impl Gon {
    pub fn new(
        spec: NetSpec,
        inputs: Vec<Vec<Option<LinkRx<i16>>>>,
        output: LinkTx<GonBeat>,
    ) -> Result<Self, NocError> {
        Ok(GonBus::new(spec, inputs)?.sending_on(output))
    }

    pub fn counters(&self) -> &NetCounters {
        self.bus.counters()
    }
}

impl Component for Gon {
    fn name(&self) -> &str {
        self.bus.name()
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        self.bus.step_into(cx, &mut self.output)
    }

    fn holds_work(&self) -> bool {
        self.bus.holds_work()
    }

    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        self.bus.wake(did)
    }

    fn settle(&mut self, _last: &StepCtx, edges: u64) {
        self.bus.settle(edges)
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        self.bus.declare(s)
    }

    fn trace(&self, f: &mut TraceFrame) {
        self.bus.trace(f)
    }
}
