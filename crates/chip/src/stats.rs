//! The statistics of a layer run, as `rowsim run --stats-json` writes them (one object a layer).
//! Every field is documented in the README.

use rowsim_config::HwConfig;
use rowsim_mapper::{Counts, Dataflow, Energy, PerType};
use rowsim_workload::ConvLayer;
use serde::{Deserialize, Serialize};

use crate::layer::LayerRun;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingStats {
    /// Row stationary unless given.
    #[serde(default, skip_serializing_if = "Dataflow::is_rs")]
    pub dataflow: Dataflow,
    pub m: u32,
    pub n: u32,
    pub e: u32,
    pub p: u32,
    pub q: u32,
    pub r: u32,
    pub t: u32,
    pub pes_used: u32,
    pub passes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycles {
    pub core_total: u64,
    pub core_processing: u64,
    pub link_total: u64,
    /// The mapper's closed-form lower bound for the mapping ([`rowsim_mapper::cycle_bound`]).
    #[serde(default)]
    pub bound: u64,
    /// The resource that bounds most passes (`dram` when the DRAM bus outlasts them).
    #[serde(default)]
    pub bottleneck: String,
    /// The mapper's estimate of the passes' fill and drain, summed (not part of the bound).
    #[serde(default)]
    pub fill_drain: u64,
    /// Core cycles in which no pass ran, by what the next pass waited for (a run only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_passes: Option<BetweenPasses>,
}

/// A cause of the PE cycle account: its field, its words in the text summary and the report's
/// chart, the chart's colour, and how to read it.
#[derive(Clone, Copy, Debug)]
pub struct PeCause {
    pub field: &'static str,
    /// In the summary line (`stall filter 5.2% ifmap 0.1% psum_in ...`).
    pub summary: &'static str,
    /// On the chart.
    pub label: &'static str,
    pub rgb: (u8, u8, u8),
    pub get: fn(&PeCycles) -> u64,
    /// Shown in the summary only when not zero (an account without the mechanism).
    pub optional: bool,
}

/// The PE cycle account, from one list of its causes: the struct, its sums, and
/// [`PeCycles::CAUSES`], which the summary, the JSON and the report's chart all follow.
macro_rules! pe_cycles {
    ($($(#[$doc:meta])* $field:ident: $summary:literal, $label:literal, $rgb:expr, $optional:literal;)*) => {
        /// Over the PEs the mapping uses, each core cycle of the layer counted once, by what
        /// the PE did: the values sum to `mapping.pes_used * cycles.core_total`.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct PeCycles {
            $($(#[$doc])* pub $field: u64,)*
        }

        impl PeCycles {
            /// Every cause, once, in the order the summary and the chart show them.
            pub const CAUSES: [PeCause; [$(stringify!($field)),*].len()] = [$(PeCause {
                field: stringify!($field),
                summary: $summary,
                label: $label,
                rgb: $rgb,
                get: |p| p.$field,
                optional: $optional,
            }),*];

            /// Adds another account's cycles, cause by cause.
            pub fn add(&mut self, b: &PeCycles) {
                $(self.$field += b.$field;)*
            }

            pub fn total(&self) -> u64 {
                0 $(+ self.$field)*
            }

            /// Each cause's share of the account, as the summary line gives them
            /// (` mac 63.3% gated 0.0% ...`; an optional cause only when not zero).
            pub fn shares(&self) -> String {
                let t = self.total().max(1) as f64;
                Self::CAUSES
                    .iter()
                    .filter(|c| !c.optional || (c.get)(self) > 0)
                    .map(|c| format!(" {} {:.1}%", c.summary, 100.0 * (c.get)(self) as f64 / t))
                    .collect()
            }
        }
    };
}

pe_cycles! {
    /// A MAC issued (not gated).
    mac: "mac", "mac", (0x4c, 0x72, 0xb0), false;
    /// A MAC slot spent on a zero ifmap value (zero gating).
    gated: "gated", "gated", (0x9e, 0xb9, 0xd8), false;
    /// Waiting for a weight, for the window's ifmap values, for an incoming psum, for room in
    /// the psum output FIFO.
    stall_filter: "stall filter", "stall filter", (0xdd, 0x84, 0x52), false;
    stall_ifmap: "ifmap", "stall ifmap", (0xc4, 0x4e, 0x52), false;
    stall_psum_in: "psum_in", "stall psum in", (0x81, 0x72, 0xb3), false;
    stall_psum_out: "psum_out", "stall psum out", (0x93, 0x78, 0x60), false;
    /// Filling (a weight written into the filter spad as it arrives), the pipeline emptying
    /// before a drain (bubbles), and draining psums.
    pipeline: "pipeline", "pipeline", (0x55, 0xa8, 0x68), false;
    /// The scan chain shifting the layer's configuration in.
    config: "config", "config", (0xda, 0x8b, 0xc3), false;
    /// No program: between passes, or gated in a narrower strip.
    idle: "idle", "idle", (0xbb, 0xbb, 0xbb), false;
    /// Zero skipping: a position's cycle reading its window's index.
    #[serde(default, skip_serializing_if = "is_zero")]
    index: "index", "index", (0x2a, 0x3f, 0x6b), true;
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One PE's work: where it is on the array and its MAC slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeUtilization {
    pub row: u32,
    pub col: u32,
    pub mac_slots: u64,
}

/// Core cycles in which no pass ran, by cause: `core_processing` plus these is `core_total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BetweenPasses {
    /// The scan chain shifting the layer's configuration in.
    pub config: u64,
    /// The next pass's band or filters still coming from DRAM.
    pub loads: u64,
    /// The next pass's psums still being read out to DRAM (its psum slot not yet free).
    pub psum_slot: u64,
    /// After the last pass: the last readouts draining to DRAM.
    pub after: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeMs {
    pub total: f64,
    pub processing: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Macs {
    pub total: u64,
    pub gated: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accesses {
    pub dram: PerType,
    pub glb: PerType,
    pub noc: PerType,
    pub spad: PerType,
    /// Zero skipping's index reads (a position's window index, a visited ifmap value's
    /// pointer); absent without skipping.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index: u64,
    /// Compressed weights' index writes (the mask words written into the PEs' weight zero
    /// buffers); absent without compression.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index_writes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DramBytes {
    pub read: u64,
    pub write: u64,
}

fn energy() -> String {
    "energy".into()
}

/// One layer's statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub hw: String,
    pub layer: String,
    pub batch: u32,
    pub seed: u64,
    pub mapping: MappingStats,
    /// What the mapping was chosen for (`energy`, `delay`, `edp`), or `pinned`.
    #[serde(default = "energy")]
    pub objective: String,
    pub cycles: Cycles,
    pub time_ms: TimeMs,
    pub macs: Macs,
    pub ifmap_zero_fraction: f64,
    pub accesses_words: Accesses,
    pub dram_bytes: DramBytes,
    /// The PE cycle account (a run only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_cycles: Option<PeCycles>,
    /// The PE array, `[rows, cols]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<[u32; 2]>,
    /// Per PE used: MAC slots over the layer's core cycles (a run only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pe_utilization: Vec<PeUtilization>,
    /// The networks' beats and waits and the GLB's refusals (a run only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interconnect: Option<Interconnect>,
    pub energy: Energy,
    pub verified: bool,
    /// How fast this machine emulated the layer (`rowsim run` only: wall-clock times differ
    /// from run to run, so sweeps and snapshots leave them out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// A layer beyond the chip's limits ran in parts (`rowsim_mapper::Split`): why, and each
    /// part's statistics. This object's counts, cycles and energy are the parts' sums; its
    /// mapping is the first part's, with every part's passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<LayerStats>,
}

/// One network's traffic and waits over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetWaits {
    /// Beats sent (each up to the network's width in words).
    pub beats: u64,
    /// Core cycles the network held a beat it could not deliver: a destination FIFO full (a
    /// GIN), or the GLB's psum writer not taking it (the GON).
    pub wait_cycles: u64,
}

/// Where data waited between the GLB and the PEs (a run only): each network's beats and
/// waits, and the cycles the GLB refused a request. With the PE cycle account it says which
/// mechanism holds a layer above its bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interconnect {
    pub filter_gin: NetWaits,
    pub ifmap_gin: NetWaits,
    pub psum_gin: NetWaits,
    pub gon: NetWaits,
    /// Core cycles in which the GLB refused at least one request: its bank's ports were taken
    /// (`glb.ports_per_bank`, `glb.port_kind`) or its requester's response FIFO was full.
    pub glb_refused_cycles: u64,
}

impl Interconnect {
    fn add(&mut self, o: &Interconnect) {
        for (a, b) in [
            (&mut self.filter_gin, &o.filter_gin),
            (&mut self.ifmap_gin, &o.ifmap_gin),
            (&mut self.psum_gin, &o.psum_gin),
            (&mut self.gon, &o.gon),
        ] {
            a.beats += b.beats;
            a.wait_cycles += b.wait_cycles;
        }
        self.glb_refused_cycles += o.glb_refused_cycles;
    }

    /// One line: each network's beats, the share of the layer's core cycles it was busy, and
    /// its waits; the GLB's refusals.
    fn summary(&self, core_cycles: u64) -> String {
        let t = core_cycles.max(1) as f64;
        let net = |name: &str, n: &NetWaits| {
            format!(
                "{name} {} beats ({:.1}% of cycles), waited {}",
                n.beats,
                100.0 * n.beats as f64 / t,
                n.wait_cycles
            )
        };
        format!(
            "networks  {}; {}; {}; {}; GLB refused requests in {} cycles\n",
            net("filter GIN", &self.filter_gin),
            net("ifmap GIN", &self.ifmap_gin),
            net("psum GIN", &self.psum_gin),
            net("GON", &self.gon),
            self.glb_refused_cycles
        )
    }
}

/// Wall-clock figures of one layer's run, measured in the same process, and where the host's
/// time went: component steps and link interactions per simulated core cycle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Seconds the emulation took (building the chip, running it, reading the ofmap back).
    pub emulation_s: f64,
    /// Seconds the reference convolution of the same layer took.
    pub reference_s: f64,
    /// Core cycles emulated per second.
    pub core_cycles_per_s: f64,
    /// `emulation_s / reference_s`.
    pub emulation_over_reference: f64,
    /// Component steps (calls of `Component::step`, every clock) per core cycle.
    #[serde(default)]
    pub steps_per_cycle: f64,
    /// Messages sent and taken on links per core cycle.
    #[serde(default)]
    pub link_interactions_per_cycle: f64,
    /// The three kinds of component that took the most steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_kinds: Vec<HostKind>,
}

/// Steps and link interactions of one kind of component, per core cycle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostKind {
    /// The component's kind (its Rust type: `Pe`, `Gin`, `GlbReader`, ...).
    pub kind: String,
    /// Components of this kind in the chip.
    pub components: u64,
    pub steps_per_cycle: f64,
    pub link_interactions_per_cycle: f64,
}

impl Host {
    pub fn new(
        emulation_s: f64,
        reference_s: f64,
        core_cycles: u64,
        activity: &[rowsim_kernel::KindActivity],
    ) -> Self {
        let per = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let cycles = core_cycles as f64;
        let (steps, links) = activity.iter().fold((0u64, 0u64), |(s, l), k| {
            (s + k.steps, l + k.link_interactions)
        });
        Host {
            emulation_s,
            reference_s,
            core_cycles_per_s: per(cycles, emulation_s),
            emulation_over_reference: per(emulation_s, reference_s),
            steps_per_cycle: per(steps as f64, cycles),
            link_interactions_per_cycle: per(links as f64, cycles),
            // `activity` is sorted by steps, most first.
            top_kinds: activity
                .iter()
                .take(3)
                .map(|k| HostKind {
                    kind: k.kind.clone(),
                    components: k.components,
                    steps_per_cycle: per(k.steps as f64, cycles),
                    link_interactions_per_cycle: per(k.link_interactions as f64, cycles),
                })
                .collect(),
        }
    }

    /// One line: steps and link interactions per cycle, overall and for the top kinds.
    pub fn profile_line(&self) -> String {
        let kinds: Vec<String> = self
            .top_kinds
            .iter()
            .map(|k| {
                format!(
                    "{} x{} {:.2}/{:.2}",
                    k.kind, k.components, k.steps_per_cycle, k.link_interactions_per_cycle
                )
            })
            .collect();
        format!(
            "{:.2} component steps and {:.2} link interactions per core cycle (top: {})",
            self.steps_per_cycle,
            self.link_interactions_per_cycle,
            kinds.join(", ")
        )
    }
}

impl LayerStats {
    pub fn new(
        hw: &HwConfig,
        layer: &ConvLayer,
        seed: u64,
        run: &LayerRun,
        ifmap_zero_fraction: f64,
        verified: bool,
    ) -> Self {
        let simulated = (run.core_cycles, run.processing_cycles, run.link_cycles);
        let mut s = Self::of_counts(
            hw,
            layer,
            seed,
            &run.counts,
            Some(simulated),
            ifmap_zero_fraction,
        );
        s.cycles.between_passes = Some(BetweenPasses {
            config: run.controller.idle_config,
            loads: run.controller.idle_loads,
            psum_slot: run.controller.idle_psum_slot,
            after: run.controller.idle_after,
        });
        s.pe_cycles = Some(run.pe_cycles);
        s.pe_utilization = run.pe_utilization.clone();
        s.interconnect = Some(run.interconnect);
        s.time_ms.total = run.time_ps as f64 / 1e9;
        s.verified = verified;
        s
    }

    /// Statistics from counts and `(core total, core processing, link)` cycles: not verified,
    /// and the time is the core cycles at the core clock. Without cycles (the closed form, not
    /// a run) the cycles are the mapper's bound: its total, and its passes' share as
    /// processing.
    pub fn of_counts(
        hw: &HwConfig,
        layer: &ConvLayer,
        seed: u64,
        c: &Counts,
        cycles: Option<(u64, u64, u64)>,
        ifmap_zero_fraction: f64,
    ) -> Self {
        let m = c.mapping;
        let core_ms = |cycles: u64| cycles as f64 * 1e3 / hw.clocks.core_hz as f64;
        let b = rowsim_mapper::cycle_bound(
            &rowsim_mapper::Problem::lowered(layer, m.dataflow),
            &m,
            hw,
            c,
        );
        let (core_total, core_processing, link_total) = cycles.unwrap_or((b.total, b.passes, 0));
        let cycles = Cycles {
            core_total,
            core_processing,
            link_total,
            bound: b.total,
            bottleneck: b.bottleneck.name().to_string(),
            fill_drain: b.fill_drain,
            between_passes: None,
        };
        let (read, write) = c.dram_bytes();
        LayerStats {
            hw: hw.machine.name.clone(),
            layer: layer.name.clone(),
            batch: layer.n,
            seed,
            mapping: MappingStats {
                dataflow: m.dataflow,
                m: m.m,
                n: m.n,
                e: m.e,
                p: m.p,
                q: m.q,
                r: m.r,
                t: m.t,
                pes_used: c.pes_used,
                passes: c.passes,
            },
            objective: energy(),
            time_ms: TimeMs {
                total: core_ms(cycles.core_total),
                processing: core_ms(cycles.core_processing),
            },
            cycles,
            macs: Macs {
                total: c.macs,
                gated: c.macs_gated,
            },
            ifmap_zero_fraction,
            accesses_words: Accesses {
                dram: c.dram(),
                glb: c.glb(),
                noc: c.noc,
                spad: c.spad(),
                index: c.index_reads,
                index_writes: c.index_writes,
            },
            dram_bytes: DramBytes { read, write },
            pe_cycles: None,
            pe_utilization: Vec::new(),
            interconnect: None,
            host: None,
            array: Some([hw.array.rows, hw.array.cols]),
            energy: c.energy(hw),
            verified: false,
            split: None,
            parts: Vec::new(),
        }
    }

    /// The statistics of a layer that ran in parts: the parts' sums (counts, cycles, time,
    /// energy; the PE cycle account over the parts' PEs and cycles), the first part's mapping
    /// with all passes, verified when every part was and the assembled output was
    /// (`verified`), the layer's own name, batch and zero fraction.
    pub fn combine(
        layer: &ConvLayer,
        why: String,
        parts: Vec<LayerStats>,
        ifmap_zero_fraction: f64,
        verified: bool,
    ) -> LayerStats {
        let mut s = parts[0].clone();
        s.layer = layer.name.clone();
        s.batch = layer.n;
        s.ifmap_zero_fraction = ifmap_zero_fraction;
        s.pe_utilization = Vec::new();
        s.host = None;
        s.split = Some(why);
        for p in &parts[1..] {
            s.add(p);
        }
        // The bottleneck of the part that took longest.
        if let Some(p) = parts.iter().max_by_key(|p| p.cycles.core_total) {
            s.cycles.bottleneck = p.cycles.bottleneck.clone();
        }
        s.verified = verified && parts.iter().all(|p| p.verified);
        s.parts = parts;
        s
    }

    /// Adds another run's counts, cycles, time, MACs, accesses, PE cycles and energy to these
    /// (passes too; the PEs used are the larger).
    pub fn add(&mut self, p: &LayerStats) {
        let pt = |a: &mut PerType, b: &PerType| *a = a.plus(b);
        self.mapping.passes += p.mapping.passes;
        self.mapping.pes_used = self.mapping.pes_used.max(p.mapping.pes_used);
        let (c, d) = (&mut self.cycles, &p.cycles);
        c.core_total += d.core_total;
        c.core_processing += d.core_processing;
        c.link_total += d.link_total;
        c.bound += d.bound;
        c.fill_drain += d.fill_drain;
        if let (Some(a), Some(b)) = (&mut c.between_passes, &d.between_passes) {
            a.config += b.config;
            a.loads += b.loads;
            a.psum_slot += b.psum_slot;
            a.after += b.after;
        }
        self.time_ms.total += p.time_ms.total;
        self.time_ms.processing += p.time_ms.processing;
        self.macs.total += p.macs.total;
        self.macs.gated += p.macs.gated;
        let (a, b) = (&mut self.accesses_words, &p.accesses_words);
        pt(&mut a.dram, &b.dram);
        pt(&mut a.glb, &b.glb);
        pt(&mut a.noc, &b.noc);
        pt(&mut a.spad, &b.spad);
        a.index += b.index;
        a.index_writes += b.index_writes;
        self.dram_bytes.read += p.dram_bytes.read;
        self.dram_bytes.write += p.dram_bytes.write;
        if let (Some(a), Some(b)) = (&mut self.pe_cycles, &p.pe_cycles) {
            a.add(b);
        }
        if let (Some(a), Some(b)) = (&mut self.interconnect, &p.interconnect) {
            a.add(b);
        }
        let (e, f) = (&mut self.energy, &p.energy);
        e.total += f.total;
        e.by_level.dram += f.by_level.dram;
        e.by_level.glb += f.by_level.glb;
        e.by_level.noc += f.by_level.noc;
        e.by_level.spad += f.by_level.spad;
        e.by_level.mac += f.by_level.mac;
        e.by_type.filter += f.by_type.filter;
        e.by_type.ifmap += f.by_type.ifmap;
        e.by_type.psum += f.by_type.psum;
    }

    /// The human-readable summary `rowsim run` prints.
    pub fn summary(&self) -> String {
        let a = &self.accesses_words;
        let row = |name: &str, p: &PerType| {
            format!(
                "  {name:<6}{:>14}{:>14}{:>14}{:>14}\n",
                p.filter,
                p.ifmap,
                p.psum,
                p.total()
            )
        };
        let e = &self.energy;
        let l = &e.by_level;
        format!(
            "{} on {} (batch {}, seed {}): {}\n\
             mapping   {}m={} n={} e={} p={} q={} r={} t={} ({}): {} PEs active, {} passes\n\
             cycles    {} core ({} in passes), {} link; {:.3} ms at the config's clocks ({:.3} ms processing); lower bound {} ({}), passes' fill and drain ~{}\n\
             MACs      {} ({} gated, {:.1}%), ifmap zeros {:.1}%\n\
             accesses (16-bit words)   filter         ifmap          psum         total\n{}{}{}{}\
             DRAM      {} bytes read, {} bytes written\n\
             energy    {:.4e} {} units = {:.4} per MAC; DRAM {:.3e} GLB {:.3e} NoC {:.3e} spad {:.3e} MAC {:.3e}; filter {:.3e} ifmap {:.3e} psum {:.3e}\n",
            self.layer,
            self.hw,
            self.batch,
            self.seed,
            if self.verified { "bit-exact against the reference convolution" } else { "NOT VERIFIED" },
            if self.mapping.dataflow.is_rs() { String::new() } else { format!("{} ", self.mapping.dataflow.name().to_uppercase()) },
            self.mapping.m, self.mapping.n, self.mapping.e, self.mapping.p, self.mapping.q, self.mapping.r, self.mapping.t,
            if self.objective == "pinned" { "pinned".to_string() } else { format!("chosen for {}", self.objective) },
            self.mapping.pes_used, self.mapping.passes,
            self.cycles.core_total, self.cycles.core_processing, self.cycles.link_total, self.time_ms.total, self.time_ms.processing, self.cycles.bound, self.cycles.bottleneck, self.cycles.fill_drain,
            self.macs.total, self.macs.gated, 100.0 * self.macs.gated as f64 / self.macs.total.max(1) as f64, 100.0 * self.ifmap_zero_fraction,
            row("DRAM", &a.dram), row("GLB", &a.glb), row("NoC", &a.noc), row("spad", &a.spad),
            self.dram_bytes.read, self.dram_bytes.write,
            e.total, e.unit, e.total / self.macs.total.max(1) as f64, l.dram, l.glb, l.noc, l.spad, l.mac,
            e.by_type.filter, e.by_type.ifmap, e.by_type.psum,
        ) + &match &self.cycles.between_passes {
            Some(b) => format!(
                "between passes (core cycles): config {}, waiting for loads {}, waiting for a psum slot {}, after the last pass {}\n",
                b.config, b.loads, b.psum_slot, b.after
            ),
            None => String::new(),
        } + &match &self.interconnect {
            Some(i) => i.summary(self.cycles.core_total),
            None => String::new(),
        } + &match &self.split {
            Some(why) => format!("split     {why}; statistics are the {} parts' sums\n", self.parts.len()),
            None => String::new(),
        } + &match &self.pe_cycles {
            Some(p) => format!(
                "PE cycles ({} PEs x {} cycles):{}\n",
                self.mapping.pes_used,
                self.cycles.core_total,
                p.shares()
            ),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each cause reads the field the JSON names it by: an account with one field set (through
    /// serde, not the macro) shows in that cause alone.
    #[test]
    fn each_pe_cause_reads_its_own_field() {
        for c in PeCycles::CAUSES {
            let mut v = serde_json::to_value(PeCycles::default()).unwrap();
            // Every cause is in the JSON, an optional one only when not zero.
            assert_eq!(v.get(c.field).is_some(), !c.optional, "{}", c.field);
            v[c.field] = 7.into();
            let p: PeCycles = serde_json::from_value(v).unwrap();
            for d in PeCycles::CAUSES {
                assert_eq!(
                    (d.get)(&p),
                    if d.field == c.field { 7 } else { 0 },
                    "{}",
                    d.field
                );
            }
            assert_eq!(p.total(), 7);
        }
    }

    /// The summary's shares, by hand: 1000 cycles, mac 600, gated 250, stall filter 100, idle
    /// 50; index shown only when some cycles went to it.
    #[test]
    fn the_summary_gives_each_causes_share() {
        let mut p = PeCycles {
            mac: 600,
            gated: 250,
            stall_filter: 100,
            idle: 50,
            ..Default::default()
        };
        assert_eq!(
            p.shares(),
            " mac 60.0% gated 25.0% stall filter 10.0% ifmap 0.0% psum_in 0.0% psum_out 0.0% \
             pipeline 0.0% config 0.0% idle 5.0%"
        );
        p.idle = 0;
        p.index = 50;
        assert!(
            p.shares().ends_with(" idle 0.0% index 5.0%"),
            "{}",
            p.shares()
        );
    }
}
