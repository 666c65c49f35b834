//! The hardware-config schema: one struct per TOML table. Every number of the reference machine
//! is a field here; nothing about the machine is a constant in code. Units are in the field
//! names (`_hz`, `_bits`, `_cycles`, `_us`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A whole machine: `hw-configs/*.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HwConfig {
    pub machine: Machine,
    pub clocks: Clocks,
    pub array: Array,
    pub datapath: Datapath,
    pub spad: Spads,
    pub pe: Pe,
    pub glb: Glb,
    pub noc: Noc,
    pub dram: Dram,
    pub rlc: Rlc,
    pub scan_chain: ScanChain,
    pub limits: Limits,
    pub energy: Energy,
    /// The storage area model, for configs compared at equal area (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<Area>,
}

/// Storage area per byte, in any unit, of the register files and of the global buffer: a
/// machine's storage area is `PEs * RF bytes per PE * rf_per_byte + GLB bytes * glb_per_byte`
/// (see `hw-configs/isca2016/README.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub rf_per_byte: f64,
    pub glb_per_byte: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// Short name, used in reports and statistics (`eyeriss-v1`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The dataflow the machine is built for (`rs`, `ws`, `osa`, `osb`, `osc`, `nlr`); row
    /// stationary if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataflow: Option<String>,
}

/// The two clock domains, joined by an async FIFO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clocks {
    /// Core clock: PEs, NoC, GLB.
    pub core_hz: u64,
    /// Link clock: the off-chip DRAM interface.
    pub link_hz: u64,
}

/// The PE array: `rows` X-buses of `cols` PEs each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Array {
    pub rows: u32,
    pub cols: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Datapath {
    /// Width of ifmaps, weights and psums.
    pub word_bits: u32,
    /// Width of the full multiplier product, before a per-layer shift keeps `word_bits` of it.
    pub product_bits: u32,
    /// Stages of the PE pipeline: spad access plus compute.
    pub pe_pipeline_stages: u32,
    /// Of those, the multiply-add stages.
    pub mac_stages: u32,
    /// Bits of the zero buffer: one per ifmap-spad entry.
    pub zero_buffer_bits: u32,
    /// Zero gating of MACs on zero ifmap values.
    pub zero_gating: bool,
    /// Zero skipping (in the manner of Eyeriss v2): the PE walks only the MACs whose ifmap
    /// value and weight are both nonzero (a zero buffer bit per ifmap-spad entry and per
    /// filter-spad entry), so zeros take no cycle; each position spends one cycle reading its
    /// window's index, and index reads are priced (`energy.skip_index`). Off: Eyeriss v1.
    #[serde(default)]
    pub zero_skipping: bool,
    /// ReLU on the output path, before compression.
    pub relu: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpadKind {
    Sram,
    Register,
}

/// One per-PE scratchpad.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spad {
    pub entries: u32,
    pub width_bits: u32,
    pub kind: SpadKind,
    /// Filter spad only: weights held compressed (a zero mask and the nonzero values, see
    /// `rowsim_datapath::zmask`), as they also sit in the GLB and cross DRAM and the filter
    /// GIN. Needs `datapath.zero_skipping` (the PE walks the mask) and excludes
    /// `rlc.code_filters` (the stream on the bus is already compressed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub compressed: bool,
    /// Filter spad only, with `compressed`: bits of the weight zero mask, one a weight, so a
    /// PE holds at most `mask_bits` weights of which at most `entries` nonzero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_bits: Option<u32>,
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spads {
    pub filter: Spad,
    pub ifmap: Spad,
    pub psum: Spad,
}

/// The PE's FIFOs, in words (the papers give no depths; these are the designer's choice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pe {
    pub filter_fifo_depth: u32,
    pub ifmap_fifo_depth: u32,
    pub psum_in_fifo_depth: u32,
    pub psum_out_fifo_depth: u32,
}

/// The global buffer: shared banks given wholly to ifmaps or psums per layer, and filter banks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Glb {
    pub shared_banks: u32,
    pub filter_banks: u32,
    pub bank_entries: u32,
    pub bank_width_bits: u32,
    /// Accesses (each `bank_width_bits` wide) one bank serves per core cycle: reads or writes
    /// (`port_kind = "shared"`), or that many reads and as many writes (`"split"`).
    pub ports_per_bank: u32,
    /// Whether a bank's ports serve reads and writes alike (`shared`, a single-port SRAM with
    /// one port) or reads and writes on ports of their own (`split`, a two-port 1R1W SRAM).
    #[serde(default)]
    pub port_kind: GlbPorts,
}

/// How a GLB bank's ports divide between reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlbPorts {
    /// `ports_per_bank` ports, each serving a read or a write.
    #[default]
    Shared,
    /// `ports_per_bank` read ports and `ports_per_bank` write ports.
    Split,
}

/// One global input network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gin {
    pub width_bits: u32,
    pub col_id_bits: u32,
}

/// A point-to-point or gathering network without tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bus {
    pub width_bits: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noc {
    /// Row-ID tag bits of every GIN (one ID per X-bus).
    pub row_id_bits: u32,
    pub filter_gin: Gin,
    pub ifmap_gin: Gin,
    pub psum_gin: Gin,
    pub gon: Bus,
    /// The PE-to-PE psum link, from each PE to the one above.
    pub local_link: Bus,
}

/// The off-chip interface, on the link clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dram {
    pub bus_width_bits: u32,
    /// Link cycles from a request to its first data word.
    pub access_latency_cycles: u32,
    pub request_queue_depth: u32,
    /// Depth, in bus words, of the async FIFO between the link and core domains (each way).
    pub async_fifo_depth: u32,
    /// Synchronizer flip-flops on each FIFO pointer.
    pub sync_stages: u32,
    /// Feature-map streams (ofmap rows) the outbound coder holds: the one whose values are
    /// coming in and those whose command or words have not yet gone to DRAM. 2 (ping-pong) lets
    /// a row's values come in while the row before it crosses the bus; 1 alternates them. Absent
    /// from a config: 2.
    #[serde(default = "two")]
    pub write_buffers: u32,
}

fn two() -> u32 {
    2
}

/// Run-length coding of feature maps: `pairs_per_word` (run, level) pairs and a last-word flag
/// per `word_bits` word.
fn coded() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlc {
    pub run_bits: u32,
    pub level_bits: u32,
    pub pairs_per_word: u32,
    pub word_bits: u32,
    /// Whether feature maps cross the DRAM bus run-length coded: every layer's output, and its
    /// input but a network's first (see `code_first_layer_input`). The chip codes them; `false`
    /// moves them raw, as the ISCA 2016 analysis counts every access (a dense mode beside
    /// `datapath.zero_gating = false` and `--zero-fraction 0`). Optional, `true` by default.
    #[serde(default = "coded")]
    pub code_feature_maps: bool,
    /// Whether the first layer's input image is coded (the chip does not code it).
    pub code_first_layer_input: bool,
    /// Whether filters are coded (the chip does not code them).
    pub code_filters: bool,
}

impl Rlc {
    /// Whether a layer's input crosses the DRAM bus coded (`first`: a network's first layer).
    pub fn codes_ifmap(&self, first: bool) -> bool {
        self.code_feature_maps && (!first || self.code_first_layer_input)
    }

    /// Whether a layer's output crosses the DRAM bus coded.
    pub fn codes_ofmap(&self) -> bool {
        self.code_feature_maps
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanChain {
    pub bits: u32,
    /// Longest time a per-layer configuration load may take.
    pub load_time_limit_us: u32,
    /// The clock the chain is shifted at, one bit an edge (Hz).
    pub shift_hz: u64,
}

/// Layer shapes the machine supports natively; a layer outside them is refused by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_filter_height: u32,
    pub max_filter_width: u32,
    pub max_filters: u32,
    pub max_channels: u32,
    pub vertical_strides: Vec<u32>,
    pub max_horizontal_stride: u32,
}

/// Energy per access of one word, normalized to one MAC (`unit = "MAC"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    pub unit: String,
    pub dram: f64,
    pub glb: f64,
    pub noc: f64,
    pub spad: f64,
    pub mac: f64,
    /// Cost of one index read of zero skipping (a position's window index, or a nonzero
    /// ifmap value's next-nonzero pointer); required when `datapath.zero_skipping` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_index: Option<f64>,
    /// Absolute costs in picojoules for users who want them, by operation name; informational.
    #[serde(default)]
    pub reference_pj: BTreeMap<String, f64>,
}
