//! rowsim hardware configurations: the TOML schema ([`HwConfig`]), parsing with errors that name
//! the file, the line and column, and the field, and validation of every value against its
//! allowed range and against the other fields it must agree with.
//!
//! ```no_run
//! let hw = rowsim_config::load("hw-configs/eyeriss-v1.toml").unwrap();
//! assert_eq!((hw.array.rows, hw.array.cols), (12, 14));
//! ```

mod locate;
mod schema;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use schema::*;

/// One thing wrong with a config, where it is and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the file could not be read at all.
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field (`spad.filter.entries`), empty when no field is concerned.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything wrong with a config (at least one error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }
}

/// The machines built into the binary, by name: the files of `hw-configs/`, so `--hw eyeriss-v1`
/// works outside the checkout and after `cargo install`.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "eyeriss-v1",
        include_str!("../../../hw-configs/eyeriss-v1.toml"),
    ),
    (
        "eyeriss-v1-skip",
        include_str!("../../../hw-configs/eyeriss-v1-skip.toml"),
    ),
    (
        "eyeriss-v1-sparse",
        include_str!("../../../hw-configs/eyeriss-v1-sparse.toml"),
    ),
    ("tiny", include_str!("../../../hw-configs/tiny.toml")),
    (
        "isca2016-rs",
        include_str!("../../../hw-configs/isca2016/rs.toml"),
    ),
    (
        "isca2016-ws",
        include_str!("../../../hw-configs/isca2016/ws.toml"),
    ),
    (
        "isca2016-osa",
        include_str!("../../../hw-configs/isca2016/osa.toml"),
    ),
    (
        "isca2016-osb",
        include_str!("../../../hw-configs/isca2016/osb.toml"),
    ),
    (
        "isca2016-osc",
        include_str!("../../../hw-configs/isca2016/osc.toml"),
    ),
    (
        "isca2016-nlr",
        include_str!("../../../hw-configs/isca2016/nlr.toml"),
    ),
];

/// A config's text and the name to give it in errors: `spec` is a file when one exists at that
/// path, else the name of a built-in machine ([`BUILTIN`]).
pub fn source(spec: &Path) -> Result<(String, std::path::PathBuf), ConfigErrors> {
    let err = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: spec.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message,
        }])
    };
    if spec.exists() {
        let text = std::fs::read_to_string(spec).map_err(|e| err(format!("cannot read: {e}")))?;
        return Ok((text, spec.to_path_buf()));
    }
    let name = spec.to_string_lossy();
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => Ok((text.to_string(), format!("{n} (built in)").into())),
        None => Err(err(format!(
            "no such file, and not a built-in machine (built in: {})",
            BUILTIN.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Reads and validates a config: a file, or a built-in machine by name (see [`source`]).
pub fn load_spec(spec: impl AsRef<Path>) -> Result<HwConfig, ConfigErrors> {
    let (text, file) = source(spec.as_ref())?;
    parse(&text, &file)
}

/// Reads and validates a config file.
pub fn load(path: impl AsRef<Path>) -> Result<HwConfig, ConfigErrors> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(&text, path)
}

/// Parses and validates config text; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<HwConfig, ConfigErrors> {
    let fields = locate::Fields::parse(text);
    let at = |span: Option<std::ops::Range<usize>>, field: String, message: String| {
        let (line, column) = span.map_or((1, 1), |s| locate::line_col(text, s.start));
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    };
    let hw: HwConfig = match toml::from_str(text) {
        Ok(hw) => hw,
        Err(e) => {
            let span = e.span();
            let field = match (&fields, &span) {
                (Ok(f), Some(s)) => f.field_at(s.start, e.message()),
                _ => String::new(),
            };
            return Err(ConfigErrors(vec![at(
                span,
                field,
                e.message().trim().to_string(),
            )]));
        }
    };
    let problems = validate::validate(&hw);
    if problems.is_empty() {
        return Ok(hw);
    }
    Err(ConfigErrors(
        problems
            .into_iter()
            .map(|p| {
                let span = fields.as_ref().ok().and_then(|f| f.span_of(&p.field));
                at(span, p.field, p.message)
            })
            .collect(),
    ))
}

impl HwConfig {
    /// PEs in the array.
    pub fn pes(&self) -> u32 {
        self.array.rows * self.array.cols
    }

    /// Peak MACs per second: one MAC per PE per core cycle.
    pub fn peak_macs_per_s(&self) -> f64 {
        self.pes() as f64 * self.clocks.core_hz as f64
    }

    /// Bytes of one global-buffer bank.
    pub fn glb_bank_bytes(&self) -> u64 {
        self.glb.bank_entries as u64 * self.glb.bank_width_bits as u64 / 8
    }

    /// Bytes of the whole global buffer.
    pub fn glb_bytes(&self) -> u64 {
        (self.glb.shared_banks + self.glb.filter_banks) as u64 * self.glb_bank_bytes()
    }

    /// Bytes of one PE's register files (its three spads).
    pub fn rf_bytes_per_pe(&self) -> u64 {
        let s = &self.spad;
        [&s.filter, &s.ifmap, &s.psum]
            .iter()
            .map(|x| x.entries as u64 * x.width_bits as u64 / 8)
            .sum()
    }

    /// Storage area under the config's `[area]` model, if it has one.
    pub fn storage_area(&self) -> Option<f64> {
        self.area.as_ref().map(|a| {
            self.pes() as f64 * self.rf_bytes_per_pe() as f64 * a.rf_per_byte
                + self.glb_bytes() as f64 * a.glb_per_byte
        })
    }

    /// A human-readable description of the machine, as `rowsim config check` prints it.
    pub fn describe(&self) -> String {
        let mhz = |hz: u64| hz as f64 / 1e6;
        let spad = |s: &Spad| {
            let mask = match s.mask_bits {
                Some(bits) if s.compressed => {
                    format!("; compressed: a {bits}-bit zero mask, the nonzero weights")
                }
                _ => String::new(),
            };
            format!(
                "{} x {}b ({} B, {}{mask})",
                s.entries,
                s.width_bits,
                s.entries as u64 * s.width_bits as u64 / 8,
                match s.kind {
                    SpadKind::Sram => "SRAM",
                    SpadKind::Register => "registers",
                }
            )
        };
        let kb = |b: u64| b as f64 / 1024.0;
        let g = &self.glb;
        let n = &self.noc;
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18}{v}\n"));
        line("machine", self.machine.name.clone());
        if !self.machine.description.is_empty() {
            line("", self.machine.description.clone());
        }
        line(
            "PE array",
            format!(
                "{} x {} ({} PEs)",
                self.array.rows,
                self.array.cols,
                self.pes()
            ),
        );
        line(
            "datapath",
            format!(
                "{}-bit words, {}-bit products, {}-stage PE pipeline ({} for the MAC), zero gating {}, zero skipping {}, ReLU {}",
                self.datapath.word_bits,
                self.datapath.product_bits,
                self.datapath.pe_pipeline_stages,
                self.datapath.mac_stages,
                on_off(self.datapath.zero_gating),
                on_off(self.datapath.zero_skipping),
                on_off(self.datapath.relu)
            ),
        );
        line("filter spad", spad(&self.spad.filter));
        line("ifmap spad", spad(&self.spad.ifmap));
        line("psum spad", spad(&self.spad.psum));
        line(
            "PE FIFOs",
            format!(
                "filter {}, ifmap {}, psum in {}, psum out {} words",
                self.pe.filter_fifo_depth,
                self.pe.ifmap_fifo_depth,
                self.pe.psum_in_fifo_depth,
                self.pe.psum_out_fifo_depth
            ),
        );
        line(
            "global buffer",
            format!(
                "{:.0} kB: {} ifmap/psum banks + {} filter banks of {} x {}b ({:.0} kB), {} each",
                kb(self.glb_bytes()),
                g.shared_banks,
                g.filter_banks,
                g.bank_entries,
                g.bank_width_bits,
                kb(self.glb_bank_bytes()),
                match g.port_kind {
                    GlbPorts::Shared => format!("{} port(s)", g.ports_per_bank),
                    GlbPorts::Split => format!(
                        "{} read and {} write port(s)",
                        g.ports_per_bank, g.ports_per_bank
                    ),
                }
            ),
        );
        let gin = |x: &Gin| format!("{}b, col ID {}b", x.width_bits, x.col_id_bits);
        line(
            "NoC",
            format!(
                "GINs with row ID {}b: filter {}; ifmap {}; psum {}",
                n.row_id_bits,
                gin(&n.filter_gin),
                gin(&n.ifmap_gin),
                gin(&n.psum_gin)
            ),
        );
        line(
            "",
            format!(
                "GON {}b; local psum link {}b",
                n.gon.width_bits, n.local_link.width_bits
            ),
        );
        line(
            "clocks",
            format!(
                "core {} MHz, link {} MHz",
                mhz(self.clocks.core_hz),
                mhz(self.clocks.link_hz)
            ),
        );
        let d = &self.dram;
        line(
            "DRAM",
            format!(
                "{}b bus, {} link cycles latency, {} requests queued, async FIFO {} x {} sync stages, {} write buffers ({:.0} MB/s peak)",
                d.bus_width_bits,
                d.access_latency_cycles,
                d.request_queue_depth,
                d.async_fifo_depth,
                d.sync_stages,
                d.write_buffers,
                d.bus_width_bits as f64 / 8.0 * self.clocks.link_hz as f64 / 1e6
            ),
        );
        let r = &self.rlc;
        line(
            "RLC",
            format!(
                "{} x ({}b run, {}b level) + last flag per {}b word",
                r.pairs_per_word, r.run_bits, r.level_bits, r.word_bits
            ),
        );
        line(
            "scan chain",
            format!(
                "{} bits shifted at {} MHz ({:.1} us a layer; limit {} us)",
                self.scan_chain.bits,
                self.scan_chain.shift_hz as f64 / 1e6,
                self.scan_chain.bits as f64 * 1e6 / self.scan_chain.shift_hz as f64,
                self.scan_chain.load_time_limit_us
            ),
        );
        let l = &self.limits;
        line(
            "layer limits",
            format!(
                "R <= {}, S <= {}, M <= {}, C <= {}, vertical stride in {:?}, horizontal stride <= {}",
                l.max_filter_height,
                l.max_filter_width,
                l.max_filters,
                l.max_channels,
                l.vertical_strides,
                l.max_horizontal_stride
            ),
        );
        let e = &self.energy;
        line(
            "energy / word",
            format!(
                "DRAM {}, GLB {}, NoC {}, spad {}, MAC {} (unit: {})",
                e.dram, e.glb, e.noc, e.spad, e.mac, e.unit
            ),
        );
        line(
            "peak",
            format!(
                "{:.1} GMAC/s ({} PEs x {} MHz)",
                self.peak_macs_per_s() / 1e9,
                self.pes(),
                mhz(self.clocks.core_hz)
            ),
        );
        out
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod builtin_tests {
    use super::*;

    /// Every built-in machine is its file in hw-configs/, byte for byte, and valid.
    #[test]
    fn built_in_machines_are_the_shipped_files_and_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw-configs");
        for (name, text) in BUILTIN {
            let file = match name.strip_prefix("isca2016-") {
                Some(df) => dir.join("isca2016").join(format!("{df}.toml")),
                None => dir.join(format!("{name}.toml")),
            };
            assert_eq!(std::fs::read_to_string(&file).unwrap(), *text, "{name}");
            let hw = load_spec(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(hw, load(&file).unwrap(), "{name}");
        }
        let e = load_spec("eyeriss-v9").unwrap_err().to_string();
        assert!(
            e.contains("eyeriss-v9")
                && e.contains("built in: eyeriss-v1, eyeriss-v1-skip, eyeriss-v1-sparse, tiny"),
            "{e}"
        );
    }
}
