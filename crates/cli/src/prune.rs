//! `rowsim prune`: a pruned copy of an ONNX model, by magnitude or energy-aware, priced by the
//! emulator's own energy model on a machine.
//!
//! - **magnitude**: every layer keeps the `--density` fraction of its weights of largest
//!   magnitude (`--scope layer`), or one threshold over all layers keeps that fraction of all
//!   weights (`--scope global`).
//! - **energy** (in the manner of Yang, Chen and Sze, CVPR 2017): each layer's energy is
//!   estimated on the machine (the mapper's closed form on the calibration images' own
//!   activations and the weights: exactly what the chip counts); layers are pruned in order of
//!   energy, costliest first, each to `--density` by magnitude, its kept weights then restored
//!   by least squares so its outputs on the calibration batch (through the already pruned
//!   layers before it) stay as close as they can to the dense network's; after each layer the
//!   top-1 accuracy on `--input`/`--labels` (the fixed-point network the chip runs) is
//!   measured against the dense model's: a layer is pruned to the lowest of `--density`,
//!   `--density + 0.1`, ... (below 1) that keeps the model within `--budget` points, or left as
//!   it was when none does.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use rowsim_chip::split::part_relu;
use rowsim_config::HwConfig;
use rowsim_mapper::{evaluate, ExactData, Objective, Split};
use rowsim_model::prune::{self, Scope};
use rowsim_model::{calibrate, forward_fixed, forward_float, top1, FTensor, Model, Op};
use rowsim_workload::{reference_conv, Tensor};
use serde::Serialize;

use crate::model::{read_images, read_labels};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Magnitude,
    Energy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Layer,
    Global,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// The model (.onnx).
    #[arg(long)]
    pub net: PathBuf,
    /// Weight density to prune to (0 to 1): the fraction of each pruned layer's weights kept.
    #[arg(long, value_parser = crate::map::parse_unit)]
    pub density: f64,
    /// magnitude, or energy (energy-aware: costliest layers first, least-squares restoration,
    /// an accuracy budget).
    #[arg(long, value_enum, default_value = "magnitude")]
    pub method: Method,
    /// Magnitude pruning: a threshold per layer, or one over every layer.
    #[arg(long, value_enum, default_value = "layer")]
    pub scope: ScopeArg,
    /// The machine whose energy model prices the layers: a TOML file or a built-in name.
    #[arg(long, default_value = "eyeriss-v1")]
    pub hw: PathBuf,
    /// Test images (float `.npy`, [N, C, H, W]) and their labels: the accuracy after each step.
    #[arg(long)]
    pub input: Option<PathBuf>,
    #[arg(long, requires = "input")]
    pub labels: Option<PathBuf>,
    /// The calibration images (default: `calib_x.npy` beside the model, else the first 64 of
    /// `--input`): formats, activations for the energy estimate and the restoration.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Energy-aware pruning: the most top-1 accuracy, in percentage points, it may cost.
    #[arg(long, default_value_t = 1.0)]
    pub budget: f64,
    /// Where to write the pruned model (.onnx).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Write the report here (JSON).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What a model costs and scores.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Per layer: (name, energy per image on the calibration batch).
    pub energy: Vec<(String, f64)>,
    pub energy_total: f64,
    /// Top-1 accuracy of the fixed-point network on the test images.
    pub accuracy: Option<f64>,
}

/// One layer's line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct LayerLine {
    pub layer: String,
    pub density_before: f64,
    pub density_after: f64,
    pub energy_before: f64,
    pub energy_after: f64,
    /// The model's accuracy after this layer's step (energy-aware) or after all (magnitude).
    pub accuracy_after: Option<f64>,
    pub note: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub output: String,
    pub method: Method,
    pub density: f64,
    pub hw: String,
    pub unit: String,
    pub dense: Evaluation,
    pub pruned: Evaluation,
    pub layers: Vec<LayerLine>,
}

/// The images and labels a pruning run measures with.
pub struct Data {
    pub calib: FTensor,
    pub test: Option<(FTensor, Vec<i64>)>,
}

/// The model's per-layer energy per image on `hw` (the closed form on the calibration
/// images' activations in the chip's fixed point, each layer split as the chip splits it) and
/// its accuracy on the test images.
pub fn evaluate_model(model: &Model, data: &Data, hw: &HwConfig) -> anyhow::Result<Evaluation> {
    let cal = calibrate(model, &data.calib).map_err(|e| anyhow!("{e}"))?;
    let mut energy: Vec<(String, f64)> = Vec::new();
    let images = data.calib.dims[0] as f64;
    let mut price = |c: &rowsim_model::ConvCall| -> Result<Tensor, String> {
        let split = Split::of(c.layer, hw).map_err(|e| e.to_string())?;
        let relu = part_relu(&split, c.relu);
        let mut outs = Vec::new();
        let mut total = 0.0;
        for part in &split.parts {
            let (x, w) = if split.is_split() {
                (part.ifmap(c.ifmap), part.weights(c.weights))
            } else {
                (c.ifmap.clone(), c.weights.clone())
            };
            let (y, _) = reference_conv(&part.layer, &x, &w, c.mac, relu)?;
            let expected =
                rowsim_mapper::expected_data(&part.layer, hw).map_err(|e| e.to_string())?;
            let exact = ExactData {
                layer: &part.layer,
                ifmap: &x,
                ofmap: &y,
                rlc: expected.rlc,
                ifmap_coded: expected.ifmap_coded,
                ofmap_coded: expected.ofmap_coded,
                weights: Some(&w),
            };
            let m = crate::run::choose(hw, &part.layer, None, Objective::Energy, Some(&w))
                .map_err(|e| format!("{e:#}"))?;
            total += evaluate(&part.layer, hw, m, &exact)
                .map_err(|e| e.to_string())?
                .energy
                .total;
            outs.push(y);
        }
        energy.push((c.node.name.clone(), total / images));
        if split.is_split() {
            Ok(split.assemble(&outs, c.relu))
        } else {
            Ok(outs.remove(0))
        }
    };
    forward_fixed(model, &cal, &data.calib, &mut price).map_err(|e| anyhow!("{e}"))?;
    let accuracy = match &data.test {
        Some((x, y)) => {
            let v = forward_fixed(model, &cal, x, &mut |c| {
                reference_conv(c.layer, c.ifmap, c.weights, c.mac, c.relu).map(|r| r.0)
            })
            .map_err(|e| anyhow!("{e}"))?;
            let l = &v[model.logits()];
            let p = top1(l.dims, &l.data);
            Some(p.iter().zip(y).filter(|(p, y)| **p as i64 == **y).count() as f64 / y.len() as f64)
        }
        None => None,
    };
    Ok(Evaluation {
        energy_total: energy.iter().map(|e| e.1).sum(),
        energy,
        accuracy,
    })
}

fn layer_energy(e: &Evaluation, name: &str) -> f64 {
    e.energy
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0.0, |e| e.1)
}

fn weights_of<'a>(model: &'a Model, name: &str) -> &'a [f32] {
    model
        .layers()
        .find(|(n, _)| n.name == name)
        .map_or(&[], |(_, l)| l.weights.as_slice())
}

/// Energy-aware pruning (see the module docs); returns the report's lines.
fn energy_aware(
    model: &mut Model,
    dense: &Evaluation,
    data: &Data,
    hw: &HwConfig,
    density: f64,
    budget: f64,
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<Vec<LayerLine>> {
    let Some(dense_acc) = dense.accuracy else {
        bail!("--method energy measures accuracy after each layer: give --input and --labels");
    };
    let original = model.clone();
    let dense_vals = forward_float(&original, &data.calib).map_err(|e| anyhow!("{e}"))?;
    let mut order = dense.energy.clone();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut lines = Vec::new();
    let mut current = dense.clone();
    for (name, _) in order {
        let before_w = prune::density(weights_of(model, &name));
        let e_before = layer_energy(&current, &name);
        let saved = model.clone();
        // The lowest density of `density`, `density + 0.1`, ... (below 1) that keeps the model
        // within the budget.
        let mut tries = Vec::new();
        let mut d = density;
        while d < 1.0 - 1e-9 {
            tries.push(d);
            d += 0.1;
        }
        let mut accepted = None;
        let mut first_cost = None;
        for &d in &tries {
            *model = saved.clone();
            prune::magnitude(model, d, Scope::Layer, Some(std::slice::from_ref(&name)));
            // Least squares on the calibration batch: this layer's input through the pruned
            // layers before it, its target the dense network's output.
            let vals = forward_float(model, &data.calib).map_err(|e| anyhow!("{e}"))?;
            if let Some(node) = model.nodes.iter_mut().find(|n| n.name == name) {
                let input = &node.inputs[0];
                let dense_layer = original
                    .layers()
                    .find(|(n, _)| n.name == name)
                    .map(|(_, l)| l.clone());
                if let (Op::Layer(l), Some(dl)) = (&mut node.op, dense_layer) {
                    let target = prune::pre_activation(&dl, &dense_vals[input]);
                    prune::restore(l, &vals[input], &target);
                }
            }
            let after = evaluate_model(model, data, hw)?;
            let cost = (dense_acc - after.accuracy.unwrap_or(0.0)) * 100.0;
            first_cost.get_or_insert(cost);
            if cost <= budget {
                accepted = Some((d, after));
                break;
            }
        }
        match accepted {
            Some((d, after)) => {
                let note = if d == density {
                    "pruned, kept weights restored by least squares".to_string()
                } else {
                    format!(
                        "pruned to {d:.1} (at {density} it would cost {:.2} points; budget {budget}), kept weights restored by least squares",
                        first_cost.unwrap_or(0.0)
                    )
                };
                lines.push(LayerLine {
                    layer: name.clone(),
                    density_before: before_w,
                    density_after: prune::density(weights_of(model, &name)),
                    energy_before: e_before,
                    energy_after: layer_energy(&after, &name),
                    accuracy_after: after.accuracy,
                    note,
                });
                current = after;
            }
            None => {
                *model = saved;
                lines.push(LayerLine {
                    layer: name.clone(),
                    density_before: before_w,
                    density_after: before_w,
                    energy_before: e_before,
                    energy_after: e_before,
                    accuracy_after: current.accuracy,
                    note: format!(
                        "left as it was: at {density} it would cost {:.2} points, and more than the budget ({budget}) at every density tried below 1",
                        first_cost.unwrap_or(0.0)
                    ),
                });
            }
        }
        if let Some(b) = bar {
            b.inc(1);
        }
    }
    Ok(lines)
}

pub fn run(a: &PruneArgs) -> anyhow::Result<ExitCode> {
    let hw = rowsim_config::load_spec(&a.hw).map_err(|e| anyhow!("{e}"))?;
    if !crate::model::is_onnx(&a.net.to_string_lossy()) {
        bail!(
            "--net {}: rowsim prune takes an ONNX model (.onnx)",
            a.net.display()
        );
    }
    let bytes =
        std::fs::read(&a.net).with_context(|| format!("cannot read {}", a.net.display()))?;
    let mut model = crate::model::load(&a.net)?;
    let mut outputs = vec![(a.output.clone(), "pruned model (--output)")];
    outputs.extend(a.report.iter().map(|p| (p.clone(), "report (--report)")));
    crate::run::check_outputs(&outputs, std::slice::from_ref(&a.net))?;
    let test = match (&a.input, &a.labels) {
        (Some(x), Some(y)) => {
            let x = read_images(x, &model)?;
            let y = read_labels(y, x.dims[0])?;
            Some((x, y))
        }
        (Some(_), None) => bail!("--input without --labels: pruning measures top-1 accuracy"),
        _ => None,
    };
    let beside = a.net.with_file_name("calib_x.npy");
    let calib = match (&a.calibration, &test) {
        (Some(p), _) => read_images(p, &model)?,
        (None, _) if beside.is_file() => read_images(&beside, &model)?,
        (None, Some((x, _))) => x.slice(0, x.dims[0].min(64)),
        (None, None) => {
            bail!("no calibration images: give --calibration, or --input (its first 64 images)")
        }
    };
    let data = Data { calib, test };
    let dense = evaluate_model(&model, &data, &hw)?;
    let bar = (!a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
        let b = indicatif::ProgressBar::new(dense.energy.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "pruning [{bar:30}] {pos}/{len} layers ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    let before: Vec<(String, f64)> = model
        .layers()
        .map(|(n, l)| (n.name.clone(), prune::density(&l.weights)))
        .collect();
    let layers = match a.method {
        Method::Magnitude => {
            let scope = match a.scope {
                ScopeArg::Layer => Scope::Layer,
                ScopeArg::Global => Scope::Global,
            };
            prune::magnitude(&mut model, a.density, scope, None);
            let after = evaluate_model(&model, &data, &hw)?;
            if let Some(b) = &bar {
                b.inc(dense.energy.len() as u64);
            }
            before
                .iter()
                .map(|(name, d)| LayerLine {
                    layer: name.clone(),
                    density_before: *d,
                    density_after: prune::density(weights_of(&model, name)),
                    energy_before: layer_energy(&dense, name),
                    energy_after: layer_energy(&after, name),
                    accuracy_after: after.accuracy,
                    note: format!("magnitude, {:?} scope", a.scope).to_lowercase(),
                })
                .collect()
        }
        Method::Energy => energy_aware(
            &mut model,
            &dense,
            &data,
            &hw,
            a.density,
            a.budget,
            bar.as_ref(),
        )?,
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let pruned = evaluate_model(&model, &data, &hw)?;
    let how = match a.method {
        Method::Magnitude => format!("magnitude ({:?} scope)", a.scope).to_lowercase(),
        Method::Energy => format!("energy-aware on {}", hw.machine.name),
    };
    let out = prune::write_onnx(&model, &bytes, &how).map_err(|e| anyhow!("{e}"))?;
    crate::run::write_whole(&a.output, &out)?;
    let unit = hw.energy.unit.clone();
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v));
    println!(
        "{} -> {} ({:?} pruning to density {}; energy per image on {}, in {unit} units, from the closed form on the calibration images):",
        a.net.display(),
        a.output.display(),
        a.method,
        a.density,
        hw.machine.name
    );
    println!(
        "{:<12} {:>8} {:>8} {:>14} {:>14} {:>10}  note",
        "layer", "density", "after", "energy before", "energy after", "accuracy"
    );
    for l in &layers {
        println!(
            "{:<12} {:>8.3} {:>8.3} {:>14.4e} {:>14.4e} {:>10}  {}",
            l.layer,
            l.density_before,
            l.density_after,
            l.energy_before,
            l.energy_after,
            pct(l.accuracy_after),
            l.note
        );
    }
    println!(
        "model: energy per image {:.4e} -> {:.4e} ({:.1}%), top-1 accuracy {} -> {}",
        dense.energy_total,
        pruned.energy_total,
        100.0 * pruned.energy_total / dense.energy_total.max(1e-300),
        pct(dense.accuracy),
        pct(pruned.accuracy)
    );
    if let Some(p) = &a.report {
        let r = Report {
            model: a.net.display().to_string(),
            output: a.output.display().to_string(),
            method: a.method,
            density: a.density,
            hw: hw.machine.name.clone(),
            unit,
            dense,
            pruned,
            layers,
        };
        crate::run::write_json(p, &r)?;
    }
    Ok(ExitCode::SUCCESS)
}
