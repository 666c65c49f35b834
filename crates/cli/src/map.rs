//! `rowsim map`: the row-stationary mapping of a layer, its accesses and energy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::Args;
use rowsim_config::HwConfig;
use rowsim_mapper::{enumerate, evaluate, ExpectedData, Mapping, Ranked};
use rowsim_workload::ConvLayer;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct MapArgs {
    /// Hardware config.
    #[arg(long, default_value = "hw-configs/eyeriss-v1.toml")]
    pub hw: PathBuf,
    /// A built-in layer (alexnet:conv1, vgg16:conv4_2) or a layer file (.toml).
    #[arg(long)]
    pub layer: String,
    /// Batch size N (overrides the layer's).
    #[arg(long)]
    pub batch: Option<u32>,
    /// Also list the K cheapest mappings.
    #[arg(long, default_value_t = 1)]
    pub top: usize,
    /// Pin a mapping instead of searching: m=..,n=..,e=..,p=..,q=..,r=..,t=..
    #[arg(long)]
    pub mapping: Option<Mapping>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A layer from a built-in name or a layer file, and the file's pinned mapping if any.
pub fn load_layer(spec: &str) -> anyhow::Result<(ConvLayer, Option<Mapping>)> {
    if spec.ends_with(".toml") || Path::new(spec).is_file() {
        rowsim_mapper::layer_file::load(Path::new(spec)).map_err(|e| anyhow!(e))
    } else {
        rowsim_workload::layer(spec)
            .map(|l| (l, None))
            .map_err(|e| anyhow!(e))
    }
}

/// The data model the mapper prices with before any data exists.
pub fn expected_data<'a>(layer: &'a ConvLayer, hw: &HwConfig) -> anyhow::Result<ExpectedData<'a>> {
    Ok(rowsim_mapper::expected_data(layer, hw)?)
}

#[derive(Serialize)]
struct Report<'a> {
    hw: &'a str,
    layer: &'a ConvLayer,
    batch: u32,
    macs: u64,
    legal_mappings: Option<usize>,
    pinned: bool,
    chosen: &'a Ranked,
    top: &'a [Ranked],
}

pub fn run(a: &MapArgs) -> anyhow::Result<ExitCode> {
    let hw = rowsim_config::load(&a.hw).map_err(|e| anyhow!("{e}"))?;
    let (mut layer, pinned_in_file) = load_layer(&a.layer)?;
    if let Some(n) = a.batch {
        layer = layer.with_batch(n);
    }
    let data = expected_data(&layer, &hw)?;
    let pin = a.mapping.or(pinned_in_file);
    let (ranked, legal) = match pin {
        Some(m) => (
            vec![evaluate(&layer, &hw, m, &data).context("the pinned mapping")?],
            None,
        ),
        None => {
            let all = enumerate(&layer, &hw, &data)?;
            let n = all.len();
            (all, Some(n))
        }
    };
    let chosen = &ranked[0];
    let top = &ranked[..a.top.clamp(1, ranked.len())];
    if a.json {
        let report = Report {
            hw: &hw.machine.name,
            layer: &layer,
            batch: layer.n,
            macs: layer.macs(),
            legal_mappings: legal,
            pinned: pin.is_some(),
            chosen,
            top,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&hw, &layer, chosen, legal));
    if top.len() > 1 {
        println!("\nthe {} cheapest mappings:", top.len());
        println!(
            "{:>4}  {:<34} {:>5} {:>7} {:>12}",
            "rank", "mapping", "PEs", "passes", "energy/MAC"
        );
        for (i, r) in top.iter().enumerate() {
            println!(
                "{:>4}  {:<34} {:>5} {:>7} {:>12.4}",
                i + 1,
                r.mapping.to_string(),
                r.counts.pes_used,
                r.counts.passes,
                r.energy.total / layer.macs() as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(hw: &HwConfig, layer: &ConvLayer, r: &Ranked, legal: Option<usize>) -> String {
    let c = &r.counts;
    let e = &r.energy;
    let pes = hw.pes();
    let macs = layer.macs() as f64;
    let mut s = String::new();
    s += &format!("layer     {layer}\n");
    s += &format!(
        "machine   {} ({} x {} PEs)\n",
        hw.machine.name, hw.array.rows, hw.array.cols
    );
    s += &format!(
        "mapping   {}   ({})\n",
        r.mapping,
        legal.map_or("pinned".to_string(), |n| format!(
            "the cheapest of {n} legal"
        ))
    );
    s += &format!(
        "PEs used  {} of {} ({:.1}%)\npasses    {}\nMACs      {} ({} gated, expected)\n\n",
        c.pes_used,
        pes,
        100.0 * c.pes_used as f64 / pes as f64,
        c.passes,
        c.macs,
        c.macs_gated
    );
    s += &format!(
        "{:<22}{:>14}{:>14}{:>14}{:>14}\n",
        "accesses (words)", "filter", "ifmap", "psum", "total"
    );
    let mut row = |name: &str, p: rowsim_mapper::PerType| {
        s += &format!(
            "  {name:<20}{:>14}{:>14}{:>14}{:>14}\n",
            p.filter,
            p.ifmap,
            p.psum,
            p.total()
        );
    };
    row("DRAM", c.dram());
    row("GLB", c.glb());
    row("NoC", c.noc);
    row("spad", c.spad());
    let (rd, wr) = c.dram_bytes();
    s += &format!("  DRAM bytes: {rd} read, {wr} written\n\n");
    let l = &e.by_level;
    s += &format!(
        "energy ({} units)  total {:.4e} = {:.4} per MAC\n  by level: DRAM {:.4e}  GLB {:.4e}  NoC {:.4e}  spad {:.4e}  MAC {:.4e}\n  by type:  filter {:.4e}  ifmap {:.4e}  psum {:.4e}\n",
        e.unit,
        e.total,
        e.total / macs,
        l.dram,
        l.glb,
        l.noc,
        l.spad,
        l.mac,
        e.by_type.filter,
        e.by_type.ifmap,
        e.by_type.psum
    );
    s
}
