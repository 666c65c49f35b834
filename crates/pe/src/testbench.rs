//! A test bench for one PE: feeders for its input FIFOs, a collector for its output, and the
//! reference 1-D convolution its output is checked against. Used by the PE's tests, its golden
//! trace, its bench and `rowsim`'s examples.

use rowsim_datapath::mac::{self, MacCounters, Overflow};
use rowsim_kernel::{Clock, ComponentId, Link, Scheduler, SimError, TraceConfig};
pub use rowsim_kernel::{Collector, Feeder};

use crate::{Pe, PeCounters, PePorts, PeSizes, Primitive};

/// The data of one PE program, in logical layouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowJob {
    pub prim: Primitive,
    /// `weights[(f*q + c)*S + s]`: filter `f`, channel `c`, tap `s`.
    pub weights: Vec<i16>,
    /// `ifmaps[r][c*W + col]`: row `r`, channel `c`, column `col`.
    pub ifmaps: Vec<Vec<i16>>,
    /// `psum_in[r][x*p + f]`, when the primitive takes psums in.
    pub psum_in: Vec<Vec<i16>>,
}

impl RowJob {
    /// The filter stream, in filter-spad order `(s, c, f)`; with compressed weights, that row
    /// as a zero mask and its nonzero values (`rowsim_datapath::zmask`).
    pub fn filter_stream(&self) -> Vec<i16> {
        let row = self.filter_row();
        if !self.prim.compressed {
            return row;
        }
        let mut v = Vec::new();
        rowsim_datapath::zmask::encode_row(&row, &mut v);
        v
    }

    /// The weights in filter-spad order `(s, c, f)`, uncompressed.
    pub fn filter_row(&self) -> Vec<i16> {
        let Primitive { p, q, s, .. } = self.prim;
        let mut v = Vec::with_capacity((p * q * s) as usize);
        for si in 0..s {
            for c in 0..q {
                for f in 0..p {
                    v.push(self.weights[((f * q + c) * s + si) as usize]);
                }
            }
        }
        v
    }

    /// The ifmap stream: per row, column by column, the `q` channels of each column.
    pub fn ifmap_stream(&self) -> Vec<i16> {
        let (q, w) = (self.prim.q, self.prim.w());
        let mut v = Vec::new();
        for row in &self.ifmaps {
            for col in 0..w {
                for c in 0..q {
                    v.push(row[(c * w + col) as usize]);
                }
            }
        }
        v
    }
}

/// The reference: each row's `F x p` outputs by the definition of a strided 1-D convolution,
/// `out[x][f] = psum_in[x][f] + sum over c, s of window(w[f][c][s] * in[c][x*U + s])`.
/// With wrapping arithmetic the sum is taken exactly in i64 and wrapped once at the end (any
/// order gives the same bits); with saturation it replays the PE's order (`s`, then `c`, then
/// the incoming psum), since a saturating sum depends on order.
pub fn reference_rows(job: &RowJob) -> Vec<Vec<i16>> {
    let pr = job.prim;
    let (p, q, s, u, f, w) = (pr.p, pr.q, pr.s, pr.u, pr.f, pr.w());
    let mut scratch = MacCounters::default();
    let mut out = Vec::new();
    for (r, row) in job.ifmaps.iter().enumerate() {
        let mut o = Vec::with_capacity((f * p) as usize);
        for x in 0..f {
            for fi in 0..p {
                let input = |c: u32, si: u32| row[(c * w + x * u + si) as usize];
                let weight = |c: u32, si: u32| job.weights[((fi * q + c) * s + si) as usize];
                let incoming = if pr.psum_in {
                    job.psum_in[r][(x * p + fi) as usize]
                } else {
                    0
                };
                let v = match pr.mac.overflow {
                    Overflow::Wrap => {
                        let mut total = incoming as i64;
                        for c in 0..q {
                            for si in 0..s {
                                total +=
                                    mac::product(weight(c, si), input(c, si), pr.mac, &mut scratch)
                                        as i64;
                            }
                        }
                        ((total + 32768).rem_euclid(65536) - 32768) as i16
                    }
                    Overflow::Saturate => {
                        let mut acc = 0i16;
                        for si in 0..s {
                            for c in 0..q {
                                let pv =
                                    mac::product(weight(c, si), input(c, si), pr.mac, &mut scratch);
                                acc = mac::add(acc, pv, pr.mac, &mut scratch);
                            }
                        }
                        mac::add(acc, incoming, pr.mac, &mut scratch)
                    }
                };
                o.push(v);
            }
        }
        out.push(o);
    }
    out
}

/// What a PE run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Per row, the `F x p` psums out.
    pub rows: Vec<Vec<i16>>,
    /// Cycle of each psum out, as the collector took it.
    pub out_cycles: Vec<u64>,
    pub counters: PeCounters,
    /// Core cycles until the last component finished.
    pub cycles: u64,
}

/// FIFO and feed parameters of the bench.
#[derive(Clone, Copy, Debug)]
pub struct BenchWiring {
    pub fifo_depth: u32,
    /// Words per cycle the filter and psum feeders and the collector move (64-bit paths: 4).
    pub wide_per_cycle: u32,
    /// Words per cycle the ifmap feeder moves (16-bit GIN: 1).
    pub ifmap_per_cycle: u32,
}

impl Default for BenchWiring {
    fn default() -> Self {
        BenchWiring {
            fifo_depth: 4,
            wide_per_cycle: 4,
            ifmap_per_cycle: 1,
        }
    }
}

/// One PE wired to feeders and a collector in a scheduler.
pub struct Harness {
    pub sched: Scheduler,
    pub pe: ComponentId,
    pub collector: ComponentId,
    pub clock: Clock,
}

impl Harness {
    pub fn new(
        name: &str,
        sizes: PeSizes,
        job: &RowJob,
        wiring: BenchWiring,
    ) -> Result<Self, String> {
        Self::build(name, sizes, job, wiring, None)
    }

    /// [`Harness::new`] feeding `filters` as the filter stream (a corrupt compressed row, say).
    pub fn with_filter_stream(
        name: &str,
        sizes: PeSizes,
        job: &RowJob,
        wiring: BenchWiring,
        filters: Vec<i16>,
    ) -> Result<Self, String> {
        Self::build(name, sizes, job, wiring, Some(filters))
    }

    /// The bench; the job's own filter stream unless `filters` is given (taken only once the
    /// PE has accepted the primitive, so a primitive that does not fit is refused first).
    fn build(
        name: &str,
        sizes: PeSizes,
        job: &RowJob,
        wiring: BenchWiring,
        filters: Option<Vec<i16>>,
    ) -> Result<Self, String> {
        let mut sched = Scheduler::new();
        let clock = sched
            .add_clock("core", 200_000_000)
            .map_err(|e| e.to_string())?;
        let d = wiring.fifo_depth;
        let link = |n: &str| Link::<i16>::new(n, clock, 1, d).map_err(|e| e.to_string());
        let filter = link("filter_in")?;
        let ifmap = link("ifmap_in")?;
        let psum_in = link("psum_in")?;
        let out = link("psum_out")?;
        let mut pe = Pe::new(
            name,
            sizes,
            PePorts {
                filter_in: filter.rx,
                ifmap_in: ifmap.rx,
                psum_in: Some(psum_in.rx),
                psum_out: out.tx,
            },
        );
        pe.configure(job.prim).map_err(|e| e.to_string())?;
        let filters = filters.unwrap_or_else(|| job.filter_stream());
        let scope = name.rsplit_once('.').map_or("top", |(a, _)| a);
        sched.add(
            clock,
            Feeder::new(
                &format!("{scope}.filter_feeder"),
                filter.tx,
                filters,
                wiring.wide_per_cycle,
            ),
        );
        sched.add(
            clock,
            Feeder::new(
                &format!("{scope}.ifmap_feeder"),
                ifmap.tx,
                job.ifmap_stream(),
                wiring.ifmap_per_cycle,
            ),
        );
        let psums: Vec<i16> = if job.prim.psum_in {
            job.psum_in.concat()
        } else {
            vec![]
        };
        sched.add(
            clock,
            Feeder::new(
                &format!("{scope}.psum_feeder"),
                psum_in.tx,
                psums,
                wiring.wide_per_cycle,
            ),
        );
        let pe = sched.add(clock, pe);
        let collector = sched.add(
            clock,
            Collector::new(&format!("{scope}.collector"), out.rx, wiring.wide_per_cycle),
        );
        Ok(Harness {
            sched,
            pe,
            collector,
            clock,
        })
    }

    /// Runs to completion (tracing if asked) and gathers the outputs.
    pub fn run(mut self, job: &RowJob, trace: Option<&TraceConfig>) -> Result<RunResult, SimError> {
        if let Some(t) = trace {
            self.sched.trace_to(t)?;
        }
        self.sched.set_watchdog(1000);
        self.sched.run()?;
        self.sched.finish_trace()?;
        let col: &Collector<i16> = self
            .sched
            .component(self.collector)
            .ok_or_else(|| SimError::Setup("collector".into()))?;
        let pe: &Pe = self
            .sched
            .component(self.pe)
            .ok_or_else(|| SimError::Setup("pe".into()))?;
        let per_row = (job.prim.f * job.prim.p) as usize;
        let values = col.values();
        Ok(RunResult {
            rows: values.chunks(per_row.max(1)).map(|c| c.to_vec()).collect(),
            out_cycles: col.items.iter().map(|w| w.0).collect(),
            counters: *pe.counters(),
            cycles: self.sched.cycle(),
        })
    }
}
