//! `rowsim compare`: dataflows side by side on their equal-area machines (ISCA 2016).
//!
//! For every layer and dataflow: the dataflow's mapper picks its cheapest mapping on the
//! dataflow's machine (`<configs>/<dataflow>.toml`), and the layer's synthetic data is priced
//! with that mapping's closed-form counts, which equal what the chip counts when it runs the
//! mapping (the tests check this for every dataflow). Cycles are then a lower bound (the PEs'
//! compute, the GINs, the GON and the DRAM bus; see `rowsim_mapper::cycle_bound`). With `--simulate`, each
//! point runs cycle by cycle instead: the ofmap is checked against the reference convolution,
//! the counts against the closed form, and the cycles are the simulated ones.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rayon::prelude::*;
use rowsim_chip::{run_layer, LayerStats, RunOptions};
use rowsim_config::HwConfig;
use rowsim_mapper::{choose_with, evaluate, expected_data, Dataflow, ExactData, Objective, Split};
use rowsim_workload::{
    reference_conv, synthetic_ifmap, synthetic_weights, ConvLayer, Formats, Tensor,
};
use serde::{Deserialize, Serialize};

use crate::report::{self, Row};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The dataflows to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "rs,ws,osa,osb,osc,nlr")]
    pub dataflows: Vec<Dataflow>,
    /// A folder with one machine per dataflow, `<dataflow>.toml`.
    #[arg(long, default_value = "hw-configs/isca2016")]
    pub configs: PathBuf,
    /// The network: alexnet, vgg16, a SCALE-Sim CSV or a folder of Timeloop YAML files.
    #[arg(long, default_value = "alexnet")]
    pub net: String,
    /// Only these layers of the network (names or their last part, e.g. conv1), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Images per layer.
    #[arg(long, default_value_t = 16)]
    pub batch: u32,
    /// Seed of the synthetic ifmaps and weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What each dataflow's mapper chooses for: energy, delay, edp or chip.
    #[arg(long, default_value = "energy")]
    pub objective: Objective,
    /// Run every point cycle by cycle (slow at batch 16) and report simulated cycles.
    #[arg(long)]
    pub simulate: bool,
    /// Threads (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Writes the points as JSON lines (`rowsim report` reads them).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Writes the charts of `rowsim report` (energy per MAC by level and type, cycles).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// One point of the comparison, as a JSON line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    /// The dataflow (the label `rowsim report` shows).
    pub point: Dataflow,
    /// Whether the point ran cycle by cycle (else: closed form, cycles a lower bound).
    pub simulated: bool,
    pub stats: LayerStats,
}

/// Loads each dataflow's machine and checks it is built for that dataflow.
fn machines(a: &CompareArgs) -> anyhow::Result<Vec<(Dataflow, HwConfig)>> {
    if a.dataflows.is_empty() {
        bail!("--dataflows: name at least one of rs, ws, osa, osb, osc, nlr");
    }
    a.dataflows
        .iter()
        .map(|&df| {
            let path = a.configs.join(format!("{df}.toml"));
            let hw = rowsim_config::load(&path).map_err(|e| anyhow!("{e}"))?;
            let built = Dataflow::of_machine(&hw);
            if built != df {
                bail!(
                    "{}: machine.dataflow is `{built}`, but the file is the {df} machine of --configs",
                    path.display()
                );
            }
            Ok((df, hw))
        })
        .collect()
}

/// The layer's data and reference output, shared by every dataflow.
struct Data {
    layer: ConvLayer,
    ifmap: Tensor,
    weights: Tensor,
    ofmap: Tensor,
    /// Whether the readout applies ReLU (not for a part whose psums are still to be added).
    relu: bool,
}

fn data(layer: ConvLayer, seed: u64, relu: bool) -> anyhow::Result<Data> {
    let fmt = Formats::DEFAULT;
    let ifmap = synthetic_ifmap(&layer, seed, fmt);
    let weights = synthetic_weights(&layer, seed, fmt);
    data_of(layer, ifmap, weights, relu)
}

/// A layer, its tensors and its reference output.
fn data_of(layer: ConvLayer, ifmap: Tensor, weights: Tensor, relu: bool) -> anyhow::Result<Data> {
    let fmt = Formats::DEFAULT;
    let (ofmap, _) =
        reference_conv(&layer, &ifmap, &weights, fmt.mac(), relu).map_err(|e| anyhow!("{e}"))?;
    Ok(Data {
        layer,
        ifmap,
        weights,
        ofmap,
        relu,
    })
}

/// One dataflow on one layer (in parts where the layer is beyond the machine's limits, their
/// statistics summed).
fn point(df: Dataflow, hw: &HwConfig, d: &Data, a: &CompareArgs) -> anyhow::Result<Point> {
    let l = &d.layer;
    let ctx = || format!("{} with {df} on {}", l.name, hw.machine.name);
    let split = Split::of(l, hw).with_context(ctx)?;
    if !split.is_split() {
        return part(df, hw, d, a);
    }
    let relu = hw.datapath.relu;
    let done = rowsim_chip::split::run_parts(
        &split,
        &d.ifmap,
        &rowsim_workload::Weights::of(&d.weights),
        Formats::DEFAULT.mac(),
        relu,
        |p, x, w, relu| {
            let part_data = data_of(p.layer.clone(), x.clone(), w.clone(), relu)?;
            let pt = part(df, hw, &part_data, a)?;
            Ok::<_, anyhow::Error>(Some((pt.stats, part_data.ofmap)))
        },
    )
    .with_context(ctx)?
    .ok_or_else(|| anyhow!("{}: a part stopped", ctx()))?;
    if !done.stats.verified && a.simulate {
        bail!(
            "{}: the parts' assembled ofmap differs from the reference",
            ctx()
        );
    }
    let mut stats = done.stats;
    stats.verified = a.simulate;
    Ok(Point {
        point: df,
        simulated: a.simulate,
        stats,
    })
}

/// One dataflow on a layer within the machine's limits.
fn part(df: Dataflow, hw: &HwConfig, d: &Data, a: &CompareArgs) -> anyhow::Result<Point> {
    let l = &d.layer;
    let ctx = || format!("{} with {df} on {}", l.name, hw.machine.name);
    let mapping = choose_with(l, hw, df, a.objective).with_context(ctx)?;
    // The config's RLC format and whether this layer's input is coded, as the mapper has them.
    let expected = expected_data(l, hw).with_context(ctx)?;
    let exact = ExactData {
        layer: l,
        ifmap: &d.ifmap,
        ofmap: &d.ofmap,
        rlc: expected.rlc,
        ifmap_coded: expected.ifmap_coded,
        ofmap_coded: expected.ofmap_coded,
        weights: Some(&d.weights),
    };
    // The closed form on this data: what the chip counts when it runs the mapping.
    let counts = evaluate(l, hw, mapping, &exact).with_context(ctx)?.counts;
    let zf = d.ifmap.zero_fraction();
    if !a.simulate {
        return Ok(Point {
            point: df,
            simulated: false,
            stats: LayerStats {
                objective: a.objective.name().into(),
                ..LayerStats::of_counts(hw, l, a.seed, &counts, None, zf)
            },
        });
    }
    let opts = RunOptions {
        mac: Formats::DEFAULT.mac(),
        relu: Some(d.relu),
        ..Default::default()
    };
    let run = run_layer(hw, l, &mapping, &d.ifmap, &d.weights, &opts).with_context(ctx)?;
    if run.ofmap != d.ofmap {
        bail!(
            "{}: the ofmap differs from the reference convolution",
            ctx()
        );
    }
    if run.counts != counts {
        bail!(
            "{}: the counted accesses differ from the closed form",
            ctx()
        );
    }
    Ok(Point {
        point: df,
        simulated: true,
        stats: LayerStats {
            objective: a.objective.name().into(),
            ..LayerStats::new(hw, l, a.seed, &run, zf, true)
        },
    })
}

/// Each layer's winner and every dataflow's energy relative to RS (or to the first dataflow).
pub fn verdicts(points: &[Point]) -> String {
    let mut out = String::new();
    let mut layers: Vec<&str> = Vec::new();
    for p in points {
        if !layers.contains(&p.stats.layer.as_str()) {
            layers.push(&p.stats.layer);
        }
    }
    let per_mac = |p: &Point| p.stats.energy.total / p.stats.macs.total.max(1) as f64;
    for layer in layers {
        let of: Vec<&Point> = points.iter().filter(|p| p.stats.layer == layer).collect();
        let base = of
            .iter()
            .find(|p| p.point == Dataflow::Rs)
            .or(of.first())
            .copied();
        let best = of
            .iter()
            .min_by(|a, b| per_mac(a).total_cmp(&per_mac(b)))
            .copied();
        let (Some(base), Some(best)) = (base, best) else {
            continue;
        };
        let _ = write!(
            out,
            "{layer}: {} wins at {:.3}/MAC; energy / {}'s:",
            best.point.name().to_uppercase(),
            per_mac(best),
            base.point.name().to_uppercase()
        );
        for p in &of {
            let _ = write!(
                out,
                " {} {:.2}x",
                p.point.name().to_uppercase(),
                per_mac(p) / per_mac(base)
            );
        }
        out.push('\n');
    }
    out
}

pub fn run(a: &CompareArgs) -> anyhow::Result<ExitCode> {
    let machines = machines(a)?;
    let mut layers = crate::map::load_network(&a.net)?;
    if !a.only.is_empty() {
        layers.retain(|l| {
            let short = l.name.rsplit(':').next().unwrap_or(&l.name);
            a.only.iter().any(|o| o == &l.name || o == short)
        });
        if layers.is_empty() {
            bail!("--only {}: no such layer in {}", a.only.join(","), a.net);
        }
    }
    let relu = machines[0].1.datapath.relu;
    if machines.iter().any(|(_, hw)| hw.datapath.relu != relu) {
        bail!("--configs: the machines disagree on datapath.relu, so their outputs differ");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs.unwrap_or(0))
        .build()?;
    let points: Vec<Point> = pool.install(|| -> anyhow::Result<Vec<Point>> {
        let data: Vec<Data> = layers
            .into_par_iter()
            .map(|l| data(l.with_batch(a.batch), a.seed, relu))
            .collect::<anyhow::Result<_>>()?;
        let jobs: Vec<(&Data, Dataflow, &HwConfig)> = data
            .iter()
            .flat_map(|d| machines.iter().map(move |(df, hw)| (d, *df, hw)))
            .collect();
        jobs.into_par_iter()
            .map(|(d, df, hw)| point(df, hw, d, a))
            .collect()
    })?;
    let rows: Vec<Row> = points
        .iter()
        .map(|p| Row {
            label: format!("{} [{}]", p.stats.layer, p.point),
            stats: p.stats.clone(),
        })
        .collect();
    println!(
        "{} at batch {} on {} ({}), energy in units of a MAC:",
        a.net,
        a.batch,
        a.configs.display(),
        if a.simulate {
            "simulated cycle by cycle, bit-exact"
        } else {
            "closed-form counts; cycles are a lower bound"
        }
    );
    print!("{}", report::table(&rows));
    print!("{}", verdicts(&points));
    if let Some(path) = &a.json {
        let mut text = String::new();
        for p in &points {
            text.push_str(&serde_json::to_string(p)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &a.svg {
        // Bars grouped by layer, coloured by dataflow, with a legend.
        let grouped: Vec<(String, String, LayerStats)> = points
            .iter()
            .map(|p| (p.stats.layer.clone(), p.point.to_string(), p.stats.clone()))
            .collect();
        report::grouped_svg(&grouped, path)?;
    }
    Ok(ExitCode::SUCCESS)
}
