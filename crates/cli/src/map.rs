//! `rowsim map`: the cheapest mapping of a layer (for the dataflow the machine is built for), its
//! accesses and energy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rowsim_config::HwConfig;
use rowsim_mapper::{
    enumerate_for, evaluate, rank, Dataflow, ExpectedData, Mapping, Objective, Ranked,
};
use rowsim_workload::ConvLayer;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct MapArgs {
    /// Hardware config: a TOML file, or a built-in machine by name (eyeriss-v1, tiny, isca2016-rs, ...).
    #[arg(long, default_value = "eyeriss-v1")]
    pub hw: PathBuf,
    /// A built-in layer (alexnet:conv1, vgg16:conv4_2) or a layer file (.toml).
    #[arg(long, required_unless_present = "net", conflicts_with = "net")]
    pub layer: Option<String>,
    /// Map every CONV layer of a network instead, as `run --net` does: built in (alexnet, vgg16),
    /// a SCALE-Sim topology (.csv), or a folder of Timeloop problems (*.yaml).
    #[arg(long, conflicts_with = "mapping")]
    pub net: Option<String>,
    /// Fraction of zeros in the ifmaps (0 to 1), overriding the layer's, for the energy zero
    /// gating saves (AlexNet's layers carry measured fractions; other layers 0.5).
    #[arg(long, value_parser = parse_fraction)]
    pub zero_fraction: Option<f64>,
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
    /// What to choose for: energy, delay (the lower bound on cycles), edp, or chip (the most PEs
    /// at work averaged over the passes, then energy: how the chip's compiler chose).
    #[arg(long, default_value = "energy")]
    pub objective: Objective,
}

fn is_csv(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn is_yaml(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// A layer from a built-in name (`alexnet:conv3`), a layer file (`.toml`), a layer of a SCALE-Sim
/// topology (`net.csv:Conv3`), or a Timeloop problem (`.yaml`); and the layer file's pinned
/// mapping if any.
pub fn load_layer(spec: &str) -> anyhow::Result<(ConvLayer, Option<Mapping>)> {
    let path = Path::new(spec);
    if let Some((file, node)) = spec
        .rsplit_once(':')
        .filter(|(f, _)| crate::model::is_onnx(f))
    {
        return Ok((crate::model::layer(Path::new(file), node)?, None));
    }
    if crate::model::is_onnx(spec) {
        let names: Vec<String> = crate::model::layers(path)?
            .into_iter()
            .map(|l| l.name)
            .collect();
        anyhow::bail!(
            "{spec}: a model; name one of its layers as {spec}:NODE ({}), or run it with --net {spec}",
            names.join(", ")
        );
    }
    if let Some((file, name)) = spec.rsplit_once(':').filter(|(f, _)| is_csv(Path::new(f))) {
        let layers = rowsim_workload::scalesim_csv(Path::new(file))?;
        let names: Vec<&str> = layers
            .iter()
            .map(|l| l.name.rsplit(':').next().unwrap_or(""))
            .collect();
        let k = names.iter().position(|n| *n == name).ok_or_else(|| {
            anyhow!(
                "{file}: no layer `{name}`; its layers: {}",
                names.join(", ")
            )
        })?;
        return Ok((layers[k].clone(), None));
    }
    if is_csv(path) {
        let layers = rowsim_workload::scalesim_csv(path)?;
        if layers.len() == 1 {
            return Ok((layers[0].clone(), None));
        }
        let names: Vec<&str> = layers
            .iter()
            .map(|l| l.name.rsplit(':').next().unwrap_or(""))
            .collect();
        anyhow::bail!(
            "{spec} holds {} layers; name one as {spec}:{} (or run them all with --net {spec})",
            layers.len(),
            names[0]
        );
    }
    if is_yaml(path) {
        return Ok((rowsim_workload::timeloop_yaml(path)?, None));
    }
    if spec.ends_with(".toml") || path.is_file() {
        rowsim_mapper::layer_file::load(path).map_err(|e| anyhow!(e))
    } else {
        rowsim_workload::layer(spec)
            .map(|l| (l, None))
            .map_err(|e| anyhow!(e))
    }
}

/// A file name as a sort key in natural order: runs of digits compare as numbers, so `layer2`
/// comes before `layer10` (and `9.yaml` before `10.yaml`).
pub fn natural_key(name: &str) -> Vec<(String, u128)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = c.to_string();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            // Very long digit runs saturate; the text part still orders them.
            let n = digits.parse::<u128>().unwrap_or(u128::MAX);
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

/// A network: built in (`alexnet`, `vgg16`), every row of a SCALE-Sim topology CSV, or every
/// Timeloop problem (`*.yaml`) of a folder, in natural file-name order (`layer2` before
/// `layer10`; the first is the first layer).
pub fn load_network(spec: &str) -> anyhow::Result<Vec<ConvLayer>> {
    let path = Path::new(spec);
    if crate::model::is_onnx(spec) {
        return crate::model::layers(path);
    }
    if is_csv(path) {
        return Ok(rowsim_workload::scalesim_csv(path)?);
    }
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read the folder {spec}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_yaml(p))
            .collect();
        files.sort_by_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
        if files.is_empty() {
            anyhow::bail!("{spec}: no Timeloop problem files (*.yaml) in this folder");
        }
        let mut layers = Vec::new();
        for (k, f) in files.iter().enumerate() {
            let mut l = rowsim_workload::timeloop_yaml(f)?;
            let net = path.file_name().and_then(|n| n.to_str()).unwrap_or("net");
            l.name = format!("{net}:{}", l.name);
            if k == 0 {
                l.first = true;
                l.ifmap_zero_fraction = 0.0;
            }
            layers.push(l);
        }
        return Ok(layers);
    }
    rowsim_workload::network(spec).map_err(|e| anyhow!(e))
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
    objective: Objective,
    chosen: &'a Ranked,
    top: &'a [Ranked],
}

/// A density or an accuracy: a number from 0 to 1.
pub fn parse_unit(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        Ok(_) => Err(format!("`{s}`: expected a number from 0 to 1")),
        Err(_) => Err(format!("`{s}` is not a number (0 to 1)")),
    }
}

/// A fraction of zeros: a number from 0 to 1.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        Ok(_) => Err(format!("`{s}`: a fraction of zeros is from 0 to 1")),
        Err(_) => Err(format!(
            "`{s}` is not a number (a fraction of zeros, 0 to 1)"
        )),
    }
}

pub fn run(a: &MapArgs) -> anyhow::Result<ExitCode> {
    let hw = rowsim_config::load_spec(&a.hw).map_err(|e| anyhow!("{e}"))?;
    let layers: Vec<(ConvLayer, Option<Mapping>)> = match (&a.net, &a.layer) {
        (Some(net), _) => load_network(net)?.into_iter().map(|l| (l, None)).collect(),
        (None, Some(l)) => vec![load_layer(l)?],
        (None, None) => bail!("give --layer or --net"),
    };
    let several = layers.len() > 1;
    for (k, (mut layer, pinned_in_file)) in layers.into_iter().enumerate() {
        if let Some(n) = a.batch {
            layer = layer.with_batch(n);
        }
        if let Some(z) = a.zero_fraction {
            layer.ifmap_zero_fraction = z;
        }
        if several && !a.json && k > 0 {
            println!();
        }
        let split = rowsim_mapper::Split::of(&layer, &hw)?;
        if !split.is_split() {
            map_one(a, &hw, layer, pinned_in_file)?;
            continue;
        }
        if a.mapping.or(pinned_in_file).is_some() {
            bail!(
                "--mapping: {}; each part has its own mapping",
                split.describe()
            );
        }
        if !a.json {
            println!("{}\n", split.describe());
        }
        for (i, part) in split.parts.into_iter().enumerate() {
            if !a.json && i > 0 {
                println!();
            }
            map_one(a, &hw, part.layer, None)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn map_one(
    a: &MapArgs,
    hw: &HwConfig,
    layer: ConvLayer,
    pinned_in_file: Option<Mapping>,
) -> anyhow::Result<()> {
    let data = expected_data(&layer, hw)?;
    let pin = a.mapping.or(pinned_in_file);
    let (ranked, legal) = match pin {
        Some(m) => (
            vec![evaluate(&layer, hw, m, &data).context("the pinned mapping")?],
            None,
        ),
        None => {
            let mut all = enumerate_for(&layer, hw, &data, Dataflow::of_machine(hw))?;
            rank(&mut all, a.objective);
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
            objective: a.objective,
            chosen,
            top,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", table(hw, &layer, chosen, legal, a.objective));
    if top.len() > 1 {
        println!(
            "\nthe {} best mappings for {}:",
            top.len(),
            a.objective.name()
        );
        println!(
            "{:>4}  {:<34} {:>5} {:>7} {:>12} {:>14}",
            "rank", "mapping", "PEs", "passes", "energy/MAC", "cycles (bound)"
        );
        for (i, r) in top.iter().enumerate() {
            println!(
                "{:>4}  {:<34} {:>5} {:>7} {:>12.4} {:>14}",
                i + 1,
                r.mapping.to_string(),
                r.counts.pes_used,
                r.counts.passes,
                r.energy.total / layer.macs() as f64,
                r.delay
            );
        }
    }
    Ok(())
}

fn table(
    hw: &HwConfig,
    layer: &ConvLayer,
    r: &Ranked,
    legal: Option<usize>,
    objective: Objective,
) -> String {
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
            "the best for {} of {n} legal",
            objective.name()
        ))
    );
    s += &format!("cycles    at least {} (lower bound)\n", r.delay);
    // A short last strip leaves PEs idle in its passes: the mean over the layer says so.
    let mean = if r.active_pes < c.pes_used as f64 {
        format!(", {:.2} on average over the passes", r.active_pes)
    } else {
        String::new()
    };
    s += &format!(
        "PEs used  {} of {} ({:.1}%){mean}\npasses    {}\nMACs      {} ({} gated, expected)\n\n",
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

#[cfg(test)]
mod natural_order_tests {
    #[test]
    fn layer2_comes_before_layer10() {
        let mut names = vec![
            "layer10.yaml",
            "layer2.yaml",
            "layer1.yaml",
            "b.yaml",
            "a10b.yaml",
            "a9b.yaml",
        ];
        names.sort_by_key(|n| super::natural_key(n));
        assert_eq!(
            names,
            [
                "a9b.yaml",
                "a10b.yaml",
                "b.yaml",
                "layer1.yaml",
                "layer2.yaml",
                "layer10.yaml"
            ]
        );
    }
}
