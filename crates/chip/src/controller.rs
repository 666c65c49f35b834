//! The chip's top-level controller: a component on the core clock that walks the mapper's loop
//! nest and hands work to the blocks over links, overlapping loads, passes and readouts as far
//! as the buffers allow.
//!
//! # What it sends, and to whom
//! - DRAM read commands to the DRAM controller's command queue (one a cycle), and the shape of
//!   each stream asked for (`values`, coded or raw) to the inbound RLC decoder;
//! - write jobs (where the values to come go) to the GLB loader, read jobs to the GLB's filter,
//!   ifmap and psum sequencers and to the readout sequencer, and a psum-write job (where each
//!   chain top's psums go) to the GON writer;
//! - each pass's primitive to every PE of the strip, over a per-PE configuration link (the
//!   per-pass part of the configuration), and a mask of working PEs to each GIN when a strip
//!   changes width;
//! - the rows to code and write to DRAM to the outbound RLC coder.
//!
//! Each sequencer answers on a done link with the id of every job it finishes. The layer's
//! configuration (the mapping, IDs, shapes: 1794 bits on Eyeriss v1) is shifted into the scan
//! chain first, at `scan_chain.shift_hz`; nothing is issued until it is in.
//!
//! # Three sequencers, one loop nest
//! The loop nest ([`phases`](crate::phases)) is split into loads (bands and filters, in order,
//! except that a load waiting for its buffer lets the one behind it go first), passes (in
//! order) and readouts (in order), each issued as soon as its inputs are ready and its buffer
//! is free:
//! - **filters** for pass `j` go into filter slot `j mod F` (`F` = 2 when two passes' filters fit
//!   the filter banks: the banks double-buffer, so pass `j+1`'s filters come from DRAM while the
//!   PEs read pass `j`'s), once the filter sequencer has finished reading pass `j - F`'s;
//! - a **band** goes into ifmap slot `b mod I` (`I` = 2 when the shared banks left over hold a
//!   second band: the next band prefetches while the current one is read), once every pass
//!   that read band `b - I` is done;
//! - a **pass** starts when its band and filters are in, the previous pass is done (every psum
//!   written: the PEs are free), and, for a pass of a strip's first channel block, the psums
//!   of its filter block in its psum slot (`strip mod P`, `P` = 2 when two strips' psums fit)
//!   have been read out;
//! - a **readout** of a strip's filter block starts when that block's pass of the last channel
//!   block is done, and runs while later passes compute: the block's psums are final, and no
//!   pass writes them again until the slot's next strip reaches that block.
//!
//! Loads share one path (DRAM, the decoder, the loader), so they complete in issue order. Where
//! a buffer is too small to overlap, the wait is counted (the statistics' `between_passes`) and
//! visible in the trace: `top.chip.ctrl.pass_wait` says what the next pass waits for (1 the scan
//! chain, 2 its loads, 3 its psum slot), beside `pass_running` and the issued and done counts.
//!
//! Each job is a descriptor of a few words ([`rowsim_glb::desc`]: rows round robin, columns of
//! row streams, runs, a strided nest, spans of words), checked against its GLB region when it
//! is issued and expanded by the sequencer itself, one item as it issues it, as the hardware's
//! address generators count through their loops. The orders they expand to are the pass
//! orders of [`crate::stream`], item by item (this module's tests), which the pass test bench
//! drives the array with.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rowsim_datapath::mac::MacConfig;
use rowsim_dram::DramCmd;
use rowsim_glb::{DataType, GlbLayout};
use rowsim_kernel::{
    Activity, Component, Fault, LinkRx, LinkTx, SignalId, SignalRegistry, StepCtx, TraceError,
    TraceFrame, Wake,
};
use rowsim_mapper::{BandKey, FilterKey, Mapping, Problem};
use rowsim_noc::GinMask;
use rowsim_pe::Primitive;

use crate::array::pass_primitive;
use crate::plan::{ArrayPlan, LogicalPe};
use rowsim_glb::desc::{ColumnStream, ReadDesc, Region, TaggedRow, Words};
use rowsim_glb::sequencer::{ReadJob, Tags, WriteJob};
use rowsim_mapper::Phase;

/// (DRAM address, bus words, values) of a pass's filter stream.
pub(crate) type FilterStream = (u64, u32, u32);

/// Where a layer's streams lie in DRAM: (addr, words) of each ifmap row stream, by (image,
/// channel, row); each pass's filter stream (addr, words, values) by its [`FilterKey`]; the
/// reserved address of each ofmap row by (image, filter, row). Made once with the DRAM image
/// and shared by the controller and the run.
pub(crate) struct DramMap {
    pub ifmap: BTreeMap<(u32, u32, u32), (u64, u32)>,
    pub filters: BTreeMap<FilterKey, FilterStream>,
    /// With compressed weights, the words of each row of each pass's filter stream, in stream
    /// order; empty when every row is `p*q*S` words.
    pub filter_rows: BTreeMap<FilterKey, Vec<u32>>,
    pub ofmap: BTreeMap<(u32, u32, u32), u64>,
}

/// How many of each buffer the GLB holds (1 or 2), and the words of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    pub filter: u32,
    pub ifmap: u32,
    pub psum: u32,
    pub filter_words: u64,
    pub band_words: u64,
    pub psum_words: u64,
}

/// Everything the controller knows of the layer: the loop nest's geometry.
pub(crate) struct Geometry {
    pub pb: Problem,
    pub m: Mapping,
    pub plan: ArrayPlan,
    pub layout: GlbLayout,
    pub slots: Slots,
    pub lanes: u64,
    pub row_stride: u64,
    pub coded: bool,
    pub dram: Arc<DramMap>,
    pub mac: MacConfig,
    pub zeros: crate::array::ZeroMode,
    /// Whether filter streams cross the bus RLC coded (`rlc.code_filters`).
    pub coded_filters: bool,
}

type Err = String;

impl Geometry {
    fn region(&self, dtype: DataType) -> Region {
        Region::new(self.layout, dtype)
    }

    /// Index of a band value: (image in block, real channel in block, row in band, column).
    fn band_index(&self, slot: u32, img: u32, ch: u32, row: u32, col: u32, rows: u32) -> u64 {
        let (_, chans) = self.pb.block_channels(self.m.q * self.m.r, 0);
        slot as u64 * self.slots.band_words
            + ((img as u64 * chans as u64 + ch as u64) * rows as u64 + row as u64)
                * self.pb.w as u64
            + col as u64
    }

    /// Index of psum `k` of chain `(tt, j)` of pass `fb` in psum slot `slot`.
    fn psum_index(&self, slot: u32, fb: u32, tt: u32, j: u32, k: u64) -> u64 {
        let per_chain = (self.m.n * self.pb.f * self.m.p) as u64;
        slot as u64 * self.slots.psum_words
            + (((fb * self.m.t + tt) * self.m.e + j) as u64) * per_chain
            + k
    }

    /// A band load: DRAM commands, the streams' shapes, and where its values go: the band's
    /// rows, image by image and channel by channel, fill its slot from the start.
    #[allow(clippy::type_complexity)]
    fn band(
        &self,
        slot: u32,
        BandKey { g, nb, eb, cb }: BandKey,
        next_id: &mut u32,
    ) -> Result<(Vec<DramCmd>, Vec<(usize, bool)>, Vec<Words>), Err> {
        let (pb, m) = (self.pb, self.m);
        let (lo, hi) = pb.band(m.e, eb);
        let (first, chans) = pb.block_channels(m.q * m.r, cb);
        let (mut cmds, mut shapes) = (Vec::new(), Vec::new());
        for img in 0..m.n {
            for ch in 0..chans {
                let gch = g * pb.real.c + first + ch;
                for y in lo..hi {
                    let (addr, len) = *self
                        .dram
                        .ifmap
                        .get(&(nb * m.n + img, gch, y))
                        .ok_or("ifmap row missing")?;
                    *next_id += 1;
                    cmds.push(DramCmd {
                        id: *next_id,
                        write: false,
                        addr,
                        len,
                        kind: DataType::Ifmap,
                        coded: self.coded,
                    });
                    shapes.push((pb.w as usize, self.coded));
                }
            }
        }
        let words = Words {
            region: self.region(DataType::Ifmap),
            base: self.band_index(slot, 0, 0, 0, 0, hi - lo),
            count: (m.n * chans * (hi - lo) * pb.w) as u64,
        };
        words.check().map_err(|e| e.to_string())?;
        Ok((cmds, shapes, vec![words]))
    }

    /// The words of each logical filter row of pass `key`, in stream order `(tt, rr, i)`.
    fn row_lens(&self, key: FilterKey) -> Result<Vec<u64>, Err> {
        if self.zeros.compressed {
            let rows = self
                .dram
                .filter_rows
                .get(&key)
                .ok_or("compressed filter rows missing")?;
            return Ok(rows.iter().map(|&w| w as u64).collect());
        }
        let n = (self.m.t * self.m.r * self.pb.r) as usize;
        Ok(vec![(self.m.p * self.m.q * self.pb.s) as u64; n])
    }

    /// A filter load: one DRAM stream (raw, or coded with `rlc.code_filters`), each logical
    /// filter row (compressed or not) starting on an entry.
    #[allow(clippy::type_complexity)]
    fn filters(
        &self,
        slot: u32,
        key: FilterKey,
        next_id: &mut u32,
    ) -> Result<(Vec<DramCmd>, Vec<(usize, bool)>, Vec<Words>), Err> {
        let (addr, len, values) = *self.dram.filters.get(&key).ok_or("filter stream missing")?;
        *next_id += 1;
        let cmd = DramCmd {
            id: *next_id,
            write: false,
            addr,
            len,
            kind: DataType::Filter,
            coded: self.coded_filters,
        };
        let base = slot as u64 * self.slots.filter_words;
        let lens = self.row_lens(key)?;
        if lens.iter().sum::<u64>() != values as u64 {
            return Err(format!(
                "filter stream {key:?}: {values} values, its rows hold {}",
                lens.iter().sum::<u64>()
            ));
        }
        let region = self.region(DataType::Filter);
        let words = lens
            .iter()
            .enumerate()
            .map(|(row, &count)| {
                let w = Words {
                    region,
                    base: base + row as u64 * self.row_stride,
                    count,
                };
                w.check().map(|_| w).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((
            vec![cmd],
            vec![(values as usize, self.coded_filters)],
            words,
        ))
    }

    /// A pass's filter reads: each logical row's words (`lens`, in (tt, rr, i) order), a bus
    /// width at a time, rows round robin (a compressed row that has ended drops out of the
    /// round).
    fn filter_reads(&self, lens: &[u64], slot: u32) -> ReadDesc {
        let (pb, m) = (self.pb, self.m);
        let fbase = slot as u64 * self.slots.filter_words;
        let mut rows = Vec::with_capacity(lens.len());
        for tt in 0..m.t {
            for rr in 0..m.r {
                for i in 0..pb.r {
                    let row = ((tt * m.r + rr) * pb.r + i) as usize;
                    rows.push(TaggedRow {
                        base: fbase + row as u64 * self.row_stride,
                        len: lens[row],
                        tag: self.plan.filter_tag(tt, rr, i),
                    });
                }
            }
        }
        ReadDesc::RoundRobin {
            region: self.region(DataType::Filter),
            rows,
            width: self.lanes,
        }
    }

    /// A pass's jobs, as descriptors: filter, ifmap and psum reads, and the GON writer's words.
    /// Their orders are [`stream`]'s.
    #[allow(clippy::type_complexity)]
    fn pass(
        &self,
        p: &PassInfo,
    ) -> Result<(ReadDesc, ReadDesc, ReadDesc, Vec<((u16, u16), Words)>), Err> {
        let (pb, m) = (self.pb, self.m);
        let (eb, cb, fb, e_cur) = (p.eb, p.cb, p.fb, p.e_cur);
        let continuing = cb > 0;
        let filters = self.filter_reads(&self.row_lens(p.key)?, p.filter_slot);
        // Ifmaps: image by image, column by column, in each column every row of the band of
        // each channel block and in each row the `q` channels: one row stream each.
        let (lo, hi) = pb.band(m.e, eb);
        let band = (e_cur - 1) * pb.u + pb.r;
        let (first, chans) = pb.block_channels(m.q * m.r, cb);
        let folds_taps = m.dataflow.folds_taps();
        let mut streams = Vec::with_capacity((m.r * band * m.q) as usize);
        for rr in 0..m.r {
            for y in 0..band {
                let tags = Tags::from(self.plan.ifmap_tags(rr, y, e_cur));
                for c in 0..m.q {
                    let cv = cb * m.q * m.r + rr * m.q + c;
                    let (ch, yp, x_off) = pb.real_of(cv, eb * m.e * pb.u + y, 0);
                    let real_row = yp >= pb.pad && yp - pb.pad < pb.h;
                    streams.push(ColumnStream {
                        row: real_row.then(|| {
                            self.band_index(
                                p.band_slot,
                                0,
                                ch - first,
                                yp - pb.pad - lo,
                                0,
                                hi - lo,
                            )
                        }),
                        x_mul: if folds_taps { pb.real.uh } else { 1 },
                        x_off,
                        tags: tags.clone(),
                    });
                }
            }
        }
        let ifmaps = ReadDesc::Columns {
            region: self.region(DataType::Ifmap),
            images: m.n,
            img_stride: (chans * (hi - lo) * pb.w) as u64,
            cols: pb.w_used(),
            pad: pb.pad,
            width: pb.w,
            streams,
        };
        // Psums out of the chain tops, and in to the bottoms when continuing.
        let n_words = (m.n * pb.f * m.p) as u64;
        let mut gon = Vec::new();
        for tt in 0..m.t {
            for j in 0..e_cur {
                let top = self
                    .plan
                    .at(LogicalPe { tt, rr: 0, i: 0, j })
                    .ok_or("chain top missing")?;
                let words = Words {
                    region: self.region(DataType::Psum),
                    base: self.psum_index(p.psum_slot, fb, tt, j, 0),
                    count: n_words,
                };
                words.check().map_err(|e| e.to_string())?;
                gon.push(((top.row as u16, top.col as u16), words));
            }
        }
        let mut bottoms = Vec::new();
        if continuing {
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
                        .ok_or("chain bottom missing")?;
                    bottoms.push((
                        self.psum_index(p.psum_slot, fb, tt, j, 0),
                        self.plan.psum_tag(bottom),
                    ));
                }
            }
        }
        // Position by position (image-major), each chain's `p` psums, an entry's lanes at a
        // time.
        let psums = ReadDesc::Runs {
            region: self.region(DataType::Psum),
            positions: (m.n * pb.f) as u64,
            run: m.p as u64,
            streams: bottoms,
        };
        for d in [&filters, &ifmaps, &psums] {
            d.check().map_err(|e| e.to_string())?;
        }
        Ok((filters, ifmaps, psums, gon))
    }

    /// A readout's reads: image by image, filter by filter of the pass's `p * t`, row by row,
    /// column by column.
    fn readout_reads(&self, r: &ReadoutInfo) -> ReadDesc {
        let (pb, m) = (self.pb, self.m);
        let per_chain = (m.n * pb.f * m.p) as u64;
        let (p, f) = (m.p as u64, pb.f as u64);
        ReadDesc::Strided {
            region: self.region(DataType::Psum),
            base: self.psum_index(r.psum_slot, r.fb, 0, 0, 0),
            dims: vec![
                (m.n as u64, f * p),
                (m.t as u64, m.e as u64 * per_chain),
                (p, 1),
                (r.e_cur as u64, per_chain),
                (f, p),
            ],
        }
    }

    /// A readout: each finished row's psums, through ReLU to the RLC coder, and where it goes.
    /// Image by image, filter by filter of the pass's `p * t`, row by row, column by column.
    fn readout(&self, r: &ReadoutInfo) -> Result<(ReadDesc, Vec<(usize, u64)>), Err> {
        let (pb, m) = (self.pb, self.m);
        let items = self.readout_reads(r);
        items.check().map_err(|e| e.to_string())?;
        let mut streams = Vec::new();
        let pt = m.p * m.t;
        for img in 0..m.n {
            for mf in r.fb * pt..(r.fb + 1) * pt {
                for j in 0..r.e_cur {
                    let filter = r.g * pb.m + r.mb * m.m + mf;
                    let addr = *self
                        .dram
                        .ofmap
                        .get(&(r.nb * m.n + img, filter, r.eb * m.e + j))
                        .ok_or("ofmap row missing")?;
                    streams.push((pb.f as usize, addr));
                }
            }
        }
        Ok((items, streams))
    }
}

/// A load of the loop nest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Band {
        key: BandKey,
        slot: u32,
        /// Passes done before the slot is free (every pass of the band `I` loads back).
        free_after_passes: u64,
    },
    Filters {
        key: FilterKey,
        slot: u32,
        /// Filter reads done before the slot is free.
        free_after_reads: u64,
    },
}

/// A pass of the loop nest and what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PassInfo {
    /// Its filters.
    key: FilterKey,
    eb: u32,
    cb: u32,
    fb: u32,
    e_cur: u32,
    band_slot: u32,
    filter_slot: u32,
    psum_slot: u32,
    /// The loads of its band and of its filters.
    band_load: usize,
    filter_load: usize,
    /// Readouts done before its psum slot is free (first pass of a strip), else 0.
    readouts_before: u64,
}

/// A readout and what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadoutInfo {
    g: u32,
    nb: u32,
    mb: u32,
    eb: u32,
    fb: u32,
    e_cur: u32,
    psum_slot: u32,
    /// Passes done before its strip is finished.
    passes_before: u64,
}

/// The loop nest split into the three sequences, with their dependencies.
fn schedule(
    phases: &[Phase],
    slots: &Slots,
    fbs: u32,
) -> (Vec<Load>, Vec<PassInfo>, Vec<ReadoutInfo>) {
    let (mut loads, mut passes, mut readouts) = (Vec::new(), Vec::new(), Vec::new());
    // Per band: the number of passes done once its last pass is done.
    let mut band_last_pass: Vec<u64> = Vec::new();
    let mut band_slot = 0;
    let mut band_load = 0;
    let mut strips = 0u64;
    for ph in phases {
        match *ph {
            Phase::Strip { .. } => {}
            Phase::Band { g, nb, eb, cb } => {
                let b = band_last_pass.len();
                band_slot = (b as u32) % slots.ifmap;
                let free_after_passes = if b >= slots.ifmap as usize {
                    band_last_pass[b - slots.ifmap as usize]
                } else {
                    0
                };
                band_load = loads.len();
                loads.push(Load::Band {
                    key: BandKey { g, nb, eb, cb },
                    slot: band_slot,
                    free_after_passes,
                });
                band_last_pass.push(0);
            }
            Phase::Filters { g, mb, cb, fb } => {
                let j = passes.len() as u64;
                loads.push(Load::Filters {
                    key: FilterKey { g, mb, cb, fb },
                    slot: (j % slots.filter as u64) as u32,
                    free_after_reads: (j + 1).saturating_sub(slots.filter as u64),
                });
            }
            Phase::Pass {
                g,
                mb,
                eb,
                cb,
                fb,
                e_cur,
                ..
            } => {
                let j = passes.len() as u64;
                let psum_slot = (strips % slots.psum as u64) as u32;
                // The first pass of a strip to write filter block `fb`'s psums waits for the
                // readout of that block `P` strips back (readouts go strip by strip, block by
                // block).
                let readouts_before = if cb == 0 && strips >= slots.psum as u64 {
                    (strips - slots.psum as u64) * fbs as u64 + fb as u64 + 1
                } else {
                    0
                };
                passes.push(PassInfo {
                    key: FilterKey { g, mb, cb, fb },
                    eb,
                    cb,
                    fb,
                    e_cur,
                    band_slot,
                    filter_slot: (j % slots.filter as u64) as u32,
                    psum_slot,
                    band_load,
                    filter_load: loads.len() - 1,
                    readouts_before,
                });
                if let Some(l) = band_last_pass.last_mut() {
                    *l = j + 1;
                }
            }
            Phase::Readout {
                g,
                nb,
                mb,
                eb,
                fb,
                e_cur,
            } => {
                readouts.push(ReadoutInfo {
                    g,
                    nb,
                    mb,
                    eb,
                    fb,
                    e_cur,
                    psum_slot: (strips % slots.psum as u64) as u32,
                    passes_before: passes.len() as u64,
                });
                if fb + 1 == fbs {
                    strips += 1;
                }
            }
        }
    }
    (loads, passes, readouts)
}

/// A link and the messages waiting to go on it, one a cycle.
pub(crate) struct Outbox<T> {
    tx: LinkTx<T>,
    queue: VecDeque<T>,
}

impl<T> Outbox<T> {
    pub fn new(tx: LinkTx<T>) -> Self {
        Outbox {
            tx,
            queue: VecDeque::new(),
        }
    }

    fn send(&mut self, cx: &StepCtx) -> bool {
        let Some(m) = self.queue.pop_front() else {
            return false;
        };
        match self.tx.try_send(cx, m) {
            Ok(()) => true,
            Err(m) => {
                self.queue.push_front(m);
                false
            }
        }
    }
}

/// The controller's links.
pub(crate) struct ControllerPorts {
    pub dram_cmd: LinkTx<DramCmd>,
    pub inbound: LinkTx<Vec<(usize, bool)>>,
    pub loader: LinkTx<WriteJob>,
    pub filter_rd: LinkTx<ReadJob>,
    pub ifmap_rd: LinkTx<ReadJob>,
    pub psum_rd: LinkTx<ReadJob>,
    pub gon_wr: LinkTx<WriteJob>,
    pub readout: LinkTx<ReadJob>,
    pub outbound: LinkTx<Vec<(usize, u64)>>,
    pub pes: Vec<(LogicalPe, LinkTx<Primitive>)>,
    pub gins: Vec<LinkTx<GinMask>>,
    /// Done links: loader, filter reader, GON writer (a pass), readout reader.
    pub loader_done: LinkRx<u32>,
    pub filter_done: LinkRx<u32>,
    pub pass_done: LinkRx<u32>,
    pub readout_done: LinkRx<u32>,
    /// Done links that are only drained (the ifmap and psum readers).
    pub other_done: Vec<LinkRx<u32>>,
}

/// What the pass sequencer waits for, as traced (`pass_wait[2:0]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PassWait {
    /// Nothing: a pass is running, or none is left.
    None = 0,
    /// The scan chain is still shifting the layer's configuration in.
    Config = 1,
    /// The pass's band or filters are not in the GLB yet.
    Loads = 2,
    /// The strip's psum slot is still being read out.
    PsumSlot = 3,
}

/// The top-level controller (see the module docs).
pub struct TopController {
    name: String,
    geo: Geometry,
    loads: Vec<Load>,
    passes: Vec<PassInfo>,
    readouts: Vec<ReadoutInfo>,
    loads_issued: u64,
    loads_done: u64,
    /// Per load: 0 waiting, 1 issued, 2 done; and the first still waiting.
    load_state: Vec<u8>,
    first_waiting: usize,
    passes_issued: u64,
    passes_done: u64,
    filter_reads_done: u64,
    readouts_issued: u64,
    readouts_done: u64,
    /// Core cycles of scan-chain shifting left.
    config_left: u64,
    /// Core cycles during which a pass was running.
    processing_cycles: u64,
    /// Output rows of the strip the GINs are gated for.
    gating: u32,
    next_cmd_id: u32,
    wait: PassWait,
    /// Cycles with no pass running, by what the pass sequencer waited for ([`PassWait`]).
    wait_cycles: [u64; 4],
    cmds: Outbox<DramCmd>,
    inbound: Outbox<Vec<(usize, bool)>>,
    loader: Outbox<WriteJob>,
    filter_rd: Outbox<ReadJob>,
    ifmap_rd: Outbox<ReadJob>,
    psum_rd: Outbox<ReadJob>,
    gon_wr: Outbox<WriteJob>,
    readout: Outbox<ReadJob>,
    outbound: Outbox<Vec<(usize, u64)>>,
    pe_cfg: Vec<(LogicalPe, Outbox<Primitive>)>,
    /// Whether some PE's primitive is still queued (so idle cycles skip the PEs' outboxes).
    pe_cfg_queued: bool,
    gin_cfg: Vec<Outbox<GinMask>>,
    loader_done: LinkRx<u32>,
    filter_done: LinkRx<u32>,
    pass_done: LinkRx<u32>,
    readout_done: LinkRx<u32>,
    other_done: Vec<LinkRx<u32>>,
    sig: Option<[SignalId; 8]>,
}

/// Where the controller is, for statistics and progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerStatus {
    pub passes: u64,
    pub passes_done: u64,
    pub loads: u64,
    pub loads_done: u64,
    pub readouts: u64,
    pub readouts_done: u64,
    pub processing_cycles: u64,
    /// Core cycles in which no pass ran, by what the next pass waited for: the scan chain
    /// (`config`), its band or filters (`loads`), its psum slot's readout (`psum_slot`); and
    /// the cycles with no pass left to run (`after`: the last readouts to DRAM).
    pub idle_config: u64,
    pub idle_loads: u64,
    pub idle_psum_slot: u64,
    pub idle_after: u64,
}

impl TopController {
    pub(crate) fn new(
        name: &str,
        geo: Geometry,
        phases: &[Phase],
        config_cycles: u64,
        ports: ControllerPorts,
    ) -> Self {
        let fbs = geo.m.m / (geo.m.p * geo.m.t);
        let (loads, passes, readouts) = schedule(phases, &geo.slots, fbs);
        let n_loads = loads.len();
        TopController {
            name: name.into(),
            gating: geo.m.e,
            geo,
            loads,
            passes,
            readouts,
            loads_issued: 0,
            loads_done: 0,
            load_state: vec![0; n_loads],
            first_waiting: 0,
            passes_issued: 0,
            passes_done: 0,
            filter_reads_done: 0,
            readouts_issued: 0,
            readouts_done: 0,
            config_left: config_cycles,
            processing_cycles: 0,
            next_cmd_id: 0,
            wait: PassWait::None,
            wait_cycles: [0; 4],
            cmds: Outbox::new(ports.dram_cmd),
            inbound: Outbox::new(ports.inbound),
            loader: Outbox::new(ports.loader),
            filter_rd: Outbox::new(ports.filter_rd),
            ifmap_rd: Outbox::new(ports.ifmap_rd),
            psum_rd: Outbox::new(ports.psum_rd),
            gon_wr: Outbox::new(ports.gon_wr),
            readout: Outbox::new(ports.readout),
            outbound: Outbox::new(ports.outbound),
            pe_cfg: ports
                .pes
                .into_iter()
                .map(|(l, tx)| (l, Outbox::new(tx)))
                .collect(),
            pe_cfg_queued: false,
            gin_cfg: ports.gins.into_iter().map(Outbox::new).collect(),
            loader_done: ports.loader_done,
            filter_done: ports.filter_done,
            pass_done: ports.pass_done,
            readout_done: ports.readout_done,
            other_done: ports.other_done,
            sig: None,
        }
    }

    pub fn status(&self) -> ControllerStatus {
        ControllerStatus {
            passes: self.passes.len() as u64,
            passes_done: self.passes_done,
            loads: self.loads.len() as u64,
            loads_done: self.loads_done,
            readouts: self.readouts.len() as u64,
            readouts_done: self.readouts_done,
            processing_cycles: self.processing_cycles,
            idle_config: self.wait_cycles[PassWait::Config as usize],
            idle_loads: self.wait_cycles[PassWait::Loads as usize],
            idle_psum_slot: self.wait_cycles[PassWait::PsumSlot as usize],
            idle_after: self.wait_cycles[PassWait::None as usize],
        }
    }

    /// Whether every job of the layer has been issued and finished.
    pub fn finished(&self) -> bool {
        self.passes_done == self.passes.len() as u64
            && self.readouts_done == self.readouts.len() as u64
            && self.loads_done == self.loads.len() as u64
    }

    /// The gating mask of a strip of `e_cur` output rows, per GIN.
    fn mask(&self, e_cur: u32) -> GinMask {
        let plan = &self.geo.plan;
        let mut m = vec![vec![false; plan.cols as usize]; plan.rows as usize];
        for (l, p) in &plan.pes {
            if l.j < e_cur {
                m[p.row as usize][p.col as usize] = true;
            }
        }
        Arc::new(m)
    }

    /// Whether a load's buffer slot is free.
    fn load_ready(&self, load: &Load) -> bool {
        match *load {
            Load::Band {
                free_after_passes, ..
            } => self.passes_done >= free_after_passes,
            Load::Filters {
                free_after_reads, ..
            } => self.filter_reads_done >= free_after_reads,
        }
    }

    /// Issues one load a cycle: the first waiting one whose slot is free, looking one past a
    /// load that must wait (a band waiting for its slot does not hold up the filters behind
    /// it, nor filters waiting for theirs the band behind them).
    fn issue_load(&mut self) -> Result<bool, Err> {
        let end = (self.first_waiting + 2).min(self.loads.len());
        let Some(k) = (self.first_waiting..end)
            .find(|&k| self.load_state[k] == 0 && self.load_ready(&self.loads[k]))
        else {
            return Ok(false);
        };
        let (cmds, shapes, addrs) = match self.loads[k] {
            Load::Band { key, slot, .. } => self.geo.band(slot, key, &mut self.next_cmd_id)?,
            Load::Filters { key, slot, .. } => {
                self.geo.filters(slot, key, &mut self.next_cmd_id)?
            }
        };
        self.cmds.queue.extend(cmds);
        self.inbound.queue.push_back(shapes);
        self.loader.queue.push_back(WriteJob {
            id: k as u32,
            values: addrs,
            gon: Vec::new(),
        });
        self.load_state[k] = 1;
        self.loads_issued += 1;
        while self
            .load_state
            .get(self.first_waiting)
            .is_some_and(|&s| s != 0)
        {
            self.first_waiting += 1;
        }
        Ok(true)
    }

    fn load_done(&self, k: usize) -> bool {
        self.load_state.get(k) == Some(&2)
    }

    fn issue_pass(&mut self) -> Result<bool, Err> {
        let j = self.passes_issued;
        let Some(&p) = self.passes.get(j as usize) else {
            self.wait = PassWait::None;
            return Ok(false);
        };
        if self.passes_done < j {
            self.wait = PassWait::None; // a pass is running
            return Ok(false);
        }
        if !self.load_done(p.band_load) || !self.load_done(p.filter_load) {
            self.wait = PassWait::Loads;
            return Ok(false);
        }
        if self.readouts_done < p.readouts_before {
            self.wait = PassWait::PsumSlot;
            return Ok(false);
        }
        self.wait = PassWait::None;
        if p.e_cur != self.gating {
            self.gating = p.e_cur;
            let mask = self.mask(p.e_cur);
            for g in &mut self.gin_cfg {
                g.queue.push_back(mask.clone());
            }
        }
        let (filters, ifmaps, psums, gon) = self.geo.pass(&p)?;
        let id = j as u32;
        let continuing = p.cb > 0;
        for (l, cfg) in &mut self.pe_cfg {
            if l.j < p.e_cur {
                cfg.queue.push_back(pass_primitive(
                    &self.geo.plan,
                    &self.geo.pb,
                    *l,
                    continuing,
                    self.geo.mac,
                    self.geo.zeros,
                ));
            }
        }
        self.pe_cfg_queued = true;
        self.filter_rd
            .queue
            .push_back(ReadJob { id, items: filters });
        self.ifmap_rd.queue.push_back(ReadJob { id, items: ifmaps });
        self.psum_rd.queue.push_back(ReadJob { id, items: psums });
        self.gon_wr.queue.push_back(WriteJob {
            id,
            values: Vec::new(),
            gon,
        });
        self.passes_issued += 1;
        Ok(true)
    }

    fn issue_readout(&mut self) -> Result<bool, Err> {
        let Some(&r) = self.readouts.get(self.readouts_issued as usize) else {
            return Ok(false);
        };
        if self.passes_done < r.passes_before {
            return Ok(false);
        }
        let (items, streams) = self.geo.readout(&r)?;
        self.readout.queue.push_back(ReadJob {
            id: self.readouts_issued as u32,
            items,
        });
        self.outbound.queue.push_back(streams);
        self.readouts_issued += 1;
        Ok(true)
    }

    fn outboxes_empty(&self) -> bool {
        self.cmds.queue.is_empty()
            && self.inbound.queue.is_empty()
            && self.loader.queue.is_empty()
            && self.filter_rd.queue.is_empty()
            && self.ifmap_rd.queue.is_empty()
            && self.psum_rd.queue.is_empty()
            && self.gon_wr.queue.is_empty()
            && self.readout.queue.is_empty()
            && self.outbound.queue.is_empty()
            && !self.pe_cfg_queued
            && self.gin_cfg.iter().all(|o| o.queue.is_empty())
    }
}

fn drain(rx: &mut LinkRx<u32>, cx: &StepCtx) -> u64 {
    let mut n = 0;
    while rx.try_recv(cx).is_some() {
        n += 1;
    }
    n
}

impl Component for TopController {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let before = (
            self.loads_done,
            self.filter_reads_done,
            self.passes_done,
            self.readouts_done,
        );
        while let Some(id) = self.loader_done.try_recv(cx) {
            let state = self
                .load_state
                .get_mut(id as usize)
                .ok_or_else(|| format!("{}: load {id} finished, never issued", self.name))?;
            *state = 2;
            self.loads_done += 1;
        }
        self.filter_reads_done += drain(&mut self.filter_done, cx);
        self.passes_done += drain(&mut self.pass_done, cx);
        self.readouts_done += drain(&mut self.readout_done, cx);
        let mut moved = before
            != (
                self.loads_done,
                self.filter_reads_done,
                self.passes_done,
                self.readouts_done,
            );
        for rx in &mut self.other_done {
            moved |= drain(rx, cx) > 0;
        }
        if self.config_left > 0 {
            self.config_left -= 1;
            self.wait = PassWait::Config;
            moved = true;
        } else {
            moved |= self
                .issue_load()
                .map_err(|e| format!("{}: {e}", self.name))?;
            moved |= self
                .issue_readout()
                .map_err(|e| format!("{}: {e}", self.name))?;
            moved |= self
                .issue_pass()
                .map_err(|e| format!("{}: {e}", self.name))?;
        }
        // Every core cycle is counted once: a pass running (issued this cycle or before, not
        // yet done), or the pass sequencer waiting, by cause.
        if self.passes_issued > self.passes_done {
            self.processing_cycles += 1;
        } else {
            self.wait_cycles[self.wait as usize] += 1;
        }
        moved |= self.cmds.send(cx);
        moved |= self.inbound.send(cx);
        moved |= self.loader.send(cx);
        moved |= self.filter_rd.send(cx);
        moved |= self.ifmap_rd.send(cx);
        moved |= self.psum_rd.send(cx);
        moved |= self.gon_wr.send(cx);
        moved |= self.readout.send(cx);
        moved |= self.outbound.send(cx);
        if self.pe_cfg_queued {
            for (_, o) in &mut self.pe_cfg {
                moved |= o.send(cx);
            }
            self.pe_cfg_queued = self.pe_cfg.iter().any(|(_, o)| !o.queue.is_empty());
        }
        for o in &mut self.gin_cfg {
            moved |= o.send(cx);
        }
        Ok(Activity::from_moved(moved))
    }

    /// An idle step (waiting for a sequencer, a load or a credit) repeats until a done or a
    /// credit arrives; its cycle goes to the same account.
    fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
        Wake::after(did)
    }

    fn settle(&mut self, _last: &StepCtx, edges: u64) {
        if self.passes_issued > self.passes_done {
            self.processing_cycles += edges;
        } else {
            self.wait_cycles[self.wait as usize] += edges;
        }
    }

    fn holds_work(&self) -> bool {
        !self.finished() || self.config_left > 0 || !self.outboxes_empty()
    }

    fn declare(&mut self, s: &mut SignalRegistry) -> Result<(), TraceError> {
        let n = self.name.clone();
        self.sig = Some([
            s.signal(&n, "config_shift", 1)?,
            s.signal(&n, "pass_running", 1)?,
            s.signal(&n, "pass_wait", 2)?,
            s.signal(&n, "passes_issued", 32)?,
            s.signal(&n, "passes_done", 32)?,
            s.signal(&n, "loads_issued", 32)?,
            s.signal(&n, "loads_done", 32)?,
            s.signal(&n, "readouts_done", 32)?,
        ]);
        Ok(())
    }

    fn trace(&self, f: &mut TraceFrame) {
        let Some(g) = &self.sig else { return };
        f.set_bool(g[0], self.config_left > 0);
        f.set_bool(g[1], self.passes_issued > self.passes_done);
        f.set(g[2], self.wait as u64);
        f.set(g[3], self.passes_issued & 0xFFFF_FFFF);
        f.set(g[4], self.passes_done & 0xFFFF_FFFF);
        f.set(g[5], self.loads_issued & 0xFFFF_FFFF);
        f.set(g[6], self.loads_done & 0xFFFF_FFFF);
        f.set(g[7], self.readouts_done & 0xFFFF_FFFF);
    }

    fn state(&self) -> Option<String> {
        Some(format!(
            "config shift left {}  passes {}/{} issued/done of {}  loads {}/{} of {}  readouts {}/{} of {}  pass_wait {:?}\n  slots: filter {} ifmap {} psum {}  processing cycles {}",
            self.config_left,
            self.passes_issued,
            self.passes_done,
            self.passes.len(),
            self.loads_issued,
            self.loads_done,
            self.loads.len(),
            self.readouts_issued,
            self.readouts_done,
            self.readouts.len(),
            self.wait,
            self.geo.slots.filter,
            self.geo.slots.ifmap,
            self.geo.slots.psum,
            self.processing_cycles,
        ))
    }
}

#[cfg(test)]
mod tests {
    //! The controller's descriptors, expanded as the sequencers expand them, against the pass
    //! order written once in [`crate::stream`] (which the pass test bench drives) and the
    //! address arithmetic of the band, filter and psum buffers, item by item.

    use super::*;
    use crate::stream;
    use rowsim_glb::desc::Walk;
    use rowsim_glb::sequencer::{GlbAddr, ReadItem, Src};
    use rowsim_workload::ConvLayer;

    fn hw(name: &str) -> rowsim_config::HwConfig {
        rowsim_config::load(format!(
            "{}/../../hw-configs/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(n: u32, c: u32, h: u32, m: u32, k: u32, stride: u32, pad: u32) -> ConvLayer {
        ConvLayer {
            name: "l".into(),
            n,
            c,
            h,
            w: h + 1,
            m,
            r: k,
            s: k,
            stride_v: stride,
            stride_h: stride,
            pad,
            groups: 1,
            ifmap_zero_fraction: 0.5,
            first: false,
        }
    }

    /// A geometry of the layer under the mapper's choice, with GLB room for everything (the
    /// layout only places words; the test is about which words, in which order).
    fn geometry(l: &ConvLayer, hw: &rowsim_config::HwConfig) -> (Geometry, Vec<Phase>) {
        let m = rowsim_mapper::choose_for(l, hw, rowsim_mapper::Dataflow::of_machine(hw)).unwrap();
        let pb = Problem::lowered(l, m.dataflow);
        let plan = ArrayPlan::new(&pb, &m, hw).unwrap();
        let lanes = 4u64;
        let align = |w: u64| w.div_ceil(lanes) * lanes;
        let (_, chans) = pb.block_channels(m.q * m.r, 0);
        let band_rows = (0..pb.e.div_ceil(m.e))
            .map(|eb| {
                let (lo, hi) = pb.band(m.e, eb);
                hi - lo
            })
            .max()
            .unwrap() as u64;
        let row_stride = align((m.p * m.q * pb.s) as u64 + 3);
        let slots = Slots {
            filter: 2,
            ifmap: 2,
            psum: 2,
            filter_words: (m.t * m.r * pb.r) as u64 * row_stride,
            band_words: align(m.n as u64 * chans as u64 * band_rows * pb.w as u64),
            psum_words: align((m.n * m.m * m.e * pb.f) as u64),
        };
        let layout = GlbLayout {
            shared_banks: 8,
            ifmap_banks: 4,
            psum_banks: 4,
            filter_banks: 4,
            bank_entries: 1 << 16,
            lanes: lanes as u32,
        };
        let phases = crate::layer::phases(&pb, &m);
        let geo = Geometry {
            pb,
            m,
            plan,
            layout,
            slots,
            lanes,
            row_stride,
            coded: false,
            dram: Arc::new(DramMap {
                ifmap: BTreeMap::new(),
                filters: BTreeMap::new(),
                filter_rows: BTreeMap::new(),
                ofmap: BTreeMap::new(),
            }),
            mac: Default::default(),
            zeros: crate::array::ZeroMode {
                gating: true,
                skipping: false,
                compressed: false,
            },
            coded_filters: false,
        };
        (geo, phases)
    }

    fn expand(d: ReadDesc) -> Vec<ReadItem> {
        let n = d.items();
        let v: Vec<ReadItem> = Walk::new(d).map(|i| i.unwrap()).collect();
        assert_eq!(v.len() as u64, n, "items() counts what the walk makes");
        v
    }

    /// Asserts two streams equal, naming the first item where they part.
    fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
        if let Some(k) = (0..got.len().min(want.len())).find(|&k| got[k] != want[k]) {
            panic!(
                "{what}: item {k} is {:?}, the stream order has {:?}",
                got[k], want[k]
            );
        }
        assert_eq!(got.len(), want.len(), "{what}: items");
    }

    fn glb(g: &Geometry, dtype: DataType, a: u64, len: u8) -> Src {
        let a = GlbAddr::of(&g.layout, dtype, a).unwrap();
        Src::Glb {
            bank: a.bank,
            entry: a.entry,
            lane: a.lane,
            len,
            dtype,
        }
    }

    /// The filter reads of rows `lens` long, from [`stream::filter_chunks`].
    fn filter_reference(g: &Geometry, lens: &[u64], slot: u32) -> Vec<ReadItem> {
        let fbase = slot as u64 * g.slots.filter_words;
        stream::filter_chunks(&g.m, &g.pb, lens, g.lanes)
            .map(|ch| ReadItem {
                src: glb(
                    g,
                    DataType::Filter,
                    fbase + ch.row as u64 * g.row_stride + ch.start,
                    ch.len as u8,
                ),
                tags: Tags::One(g.plan.filter_tag(ch.tt, ch.rr, ch.i)),
            })
            .collect()
    }

    /// A pass's ifmap and psum reads and GON words, from [`stream::ifmap_values`] and
    /// [`stream::psum_positions`] and the buffers' index arithmetic.
    #[allow(clippy::type_complexity)]
    fn pass_reference(
        g: &Geometry,
        p: &PassInfo,
    ) -> (
        Vec<ReadItem>,
        Vec<ReadItem>,
        Vec<((u16, u16), Vec<GlbAddr>)>,
    ) {
        let (pb, m) = (g.pb, g.m);
        let (lo, hi) = pb.band(m.e, p.eb);
        let band = (p.e_cur - 1) * pb.u + pb.r;
        let (first, _) = pb.block_channels(m.q * m.r, p.cb);
        let ifmaps = stream::ifmap_values(&m, &pb, band)
            .map(|v| {
                let cv = p.cb * m.q * m.r + v.rr * m.q + v.c;
                let (ch, yp, xp) = pb.real_of(cv, p.eb * m.e * pb.u + v.y, v.col);
                let src = if pb.is_real(yp, xp) {
                    let a = g.band_index(
                        p.band_slot,
                        v.img,
                        ch - first,
                        yp - pb.pad - lo,
                        xp - pb.pad,
                        hi - lo,
                    );
                    glb(g, DataType::Ifmap, a, 1)
                } else {
                    Src::Zeros(1)
                };
                ReadItem {
                    src,
                    tags: Tags::from(g.plan.ifmap_tags(v.rr, v.y, p.e_cur)),
                }
            })
            .collect();
        let mut psums = Vec::new();
        if p.cb > 0 {
            for (pos, tt, j) in stream::psum_positions(&m, &pb, p.e_cur) {
                let bottom = g
                    .plan
                    .at(LogicalPe {
                        tt,
                        rr: m.r - 1,
                        i: pb.r - 1,
                        j,
                    })
                    .unwrap();
                let mut k = pos * m.p as u64;
                let end = k + m.p as u64;
                while k < end {
                    let a = g.psum_index(p.psum_slot, p.fb, tt, j, k);
                    let len = (end - k).min(g.lanes - a % g.lanes) as u8;
                    psums.push(ReadItem {
                        src: glb(g, DataType::Psum, a, len),
                        tags: Tags::One(g.plan.psum_tag(bottom)),
                    });
                    k += len as u64;
                }
            }
        }
        let mut gon = Vec::new();
        for tt in 0..m.t {
            for j in 0..p.e_cur {
                let top = g.plan.at(LogicalPe { tt, rr: 0, i: 0, j }).unwrap();
                let addrs = (0..(m.n * pb.f * m.p) as u64)
                    .map(|k| {
                        GlbAddr::of(
                            &g.layout,
                            DataType::Psum,
                            g.psum_index(p.psum_slot, p.fb, tt, j, k),
                        )
                        .unwrap()
                    })
                    .collect();
                gon.push(((top.row as u16, top.col as u16), addrs));
            }
        }
        (ifmaps, psums, gon)
    }

    /// A readout's reads, loop by loop.
    fn readout_reference(g: &Geometry, r: &ReadoutInfo) -> Vec<ReadItem> {
        let (pb, m) = (g.pb, g.m);
        let pt = m.p * m.t;
        let mut items = Vec::new();
        for img in 0..m.n {
            for mf in r.fb * pt..(r.fb + 1) * pt {
                let (fb, tt, f) = (mf / pt, (mf % pt) / m.p, mf % m.p);
                for j in 0..r.e_cur {
                    for x in 0..pb.f {
                        let k = ((img * pb.f + x) * m.p + f) as u64;
                        let a = g.psum_index(r.psum_slot, fb, tt, j, k);
                        items.push(ReadItem {
                            src: glb(g, DataType::Psum, a, 1),
                            tags: Tags::None,
                        });
                    }
                }
            }
        }
        items
    }

    /// Checks every pass and readout of the layer; returns how many passes continue an
    /// accumulation (read psums in).
    fn check_layer(l: &ConvLayer, hw: &rowsim_config::HwConfig) -> u32 {
        let (g, phases) = geometry(l, hw);
        let fbs = g.m.m / (g.m.p * g.m.t);
        let (_, passes, readouts) = schedule(&phases, &g.slots, fbs);
        assert!(!passes.is_empty());
        let mut continuing = 0;
        for p in &passes {
            let (filters, ifmaps, psums, gon) = g.pass(p).unwrap();
            let lens = g.row_lens(p.key).unwrap();
            let what = format!("{p:?}");
            let want = filter_reference(&g, &lens, p.filter_slot);
            same(&expand(filters), &want, &format!("filters of {what}"));
            let (ifr, psr, gonr) = pass_reference(&g, p);
            same(&expand(ifmaps), &ifr, &format!("ifmaps of {what}"));
            same(&expand(psums), &psr, &format!("psums of {what}"));
            let gon: Vec<((u16, u16), Vec<GlbAddr>)> = gon
                .into_iter()
                .map(|(pe, w)| (pe, w.addrs().map(|a| a.unwrap()).collect()))
                .collect();
            same(&gon, &gonr, &format!("GON words of {what}"));
            continuing += (p.cb > 0) as u32;
        }
        for r in &readouts {
            let want = readout_reference(&g, r);
            same(&expand(g.readout_reads(r)), &want, &format!("{r:?}"));
        }
        assert!(!readouts.is_empty());
        continuing
    }

    #[test]
    fn pass_descriptors_expand_to_the_pass_stream_order() {
        let eyeriss = hw("eyeriss-v1");
        let mut continuing = 0;
        // Padding and a stride that leaves trailing columns, two images, several strips.
        continuing += check_layer(&layer(2, 6, 13, 16, 3, 2, 1), &eyeriss);
        continuing += check_layer(&layer(1, 64, 12, 32, 3, 1, 1), &eyeriss);
        continuing += check_layer(&layer(3, 3, 15, 8, 5, 4, 2), &eyeriss);
        assert!(continuing > 0, "some pass reads psums in");
        // Dataflows that fold filter rows and taps into virtual channels, with strides.
        for d in ["ws", "nlr", "osb"] {
            check_layer(&layer(2, 4, 9, 8, 3, 2, 1), &hw(&format!("isca2016/{d}")));
        }
    }

    #[test]
    fn compressed_filter_rows_of_any_lengths_go_round_robin() {
        let (g, _) = geometry(&layer(2, 6, 13, 16, 3, 2, 1), &hw("eyeriss-v1"));
        let rows = (g.m.t * g.m.r * g.pb.r) as usize;
        for seed in 0..20u64 {
            let lens: Vec<u64> = (0..rows as u64)
                .map(|k| (k * 7 + seed * 13) % (g.row_stride + 1))
                .collect();
            for slot in 0..2 {
                let want = filter_reference(&g, &lens, slot);
                same(
                    &expand(g.filter_reads(&lens, slot)),
                    &want,
                    &format!("rows {lens:?}"),
                );
            }
        }
    }
}
