//! `rowsim sweep` and `rowsim merge`: a grid of hardware-config variations x layers, run in
//! parallel on local cores, sharded over a cluster, and the shards joined again.
//!
//! The grid is the cartesian product of every `--set FIELD=V1,V2,...` (the first `--set` varies
//! slowest) and then the layers (fastest); its points are numbered from 0 in that order. Each
//! point becomes one JSON line, `{"index", "points", "point": {FIELD: V, ...}, "layer", "stats"}`
//! (or `"error"` instead of `"stats"` when the layer cannot run there, e.g. no legal mapping),
//! written in index order whatever order the threads finish in. A point's line depends only on
//! the point, so a shard's lines are exactly the unsharded sweep's lines of its points.
//!
//! `--shard K/N` runs the points `K, K+N, K+2N, ...` (K from 0). Under a Slurm job array
//! (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, and `SLURM_ARRAY_TASK_MIN` when the array
//! does not start at 0) the shard comes from the environment. `rowsim merge` joins shard files
//! into one, in index order, and refuses missing, duplicated or inconsistent points.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rayon::prelude::*;
use rowsim_chip::{run_split, LayerStats, RunOptions};
use rowsim_config::HwConfig;
use rowsim_mapper::Objective;
use rowsim_mapper::Split;
use rowsim_workload::{ConvLayer, Formats};
use serde_json::{json, Value};

use crate::map::{load_layer, load_network};
use crate::run::{choose, data};
use crate::slurm::{self, SlurmArgs};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The base hardware config: a TOML file, or a built-in machine by name.
    #[arg(long, default_value = "eyeriss-v1")]
    pub hw: PathBuf,
    /// A config field and its values, e.g. `array.rows=8,12,16` or `glb.bank_entries=256,512`
    /// (repeatable; the grid is their product).
    #[arg(long = "set", value_name = "FIELD=V1,V2,..")]
    pub sets: Vec<String>,
    /// Layers (repeatable): built in, layer files, `net.csv:Conv3`, Timeloop `.yaml`.
    #[arg(long = "layer")]
    pub layers: Vec<String>,
    /// Every CONV layer of a network (built in, SCALE-Sim .csv, folder of Timeloop .yaml).
    #[arg(long)]
    pub net: Option<String>,
    /// Batch size N (overrides the layers').
    #[arg(long)]
    pub batch: Option<u32>,
    /// Seed of the synthetic ifmaps and weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What the mapper chooses for at every point: energy, delay, edp or chip.
    #[arg(long, default_value = "energy")]
    pub objective: Objective,
    /// Run only points K, K+N, K+2N, ... (K from 0). Default: from Slurm's job-array variables
    /// when set, else every point.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Threads (default: every core).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Write the JSON lines here (default: stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only list the grid's points, without running them.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard outputs of one sweep.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged JSON lines here (default: stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected K/N, e.g. 0/4"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{x}` in `{s}` is not a number"))
    };
    let (k, n) = (num(k)?, num(n)?);
    if n == 0 || k >= n {
        return Err(format!("`{s}`: need N >= 1 and 0 <= K < N"));
    }
    Ok((k, n))
}

/// The shard from Slurm's job-array variables, if they are set.
fn slurm_shard(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<(u64, u64)>> {
    let (Some(id), Some(count)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"))
    else {
        return Ok(None);
    };
    let num = |name: &str, v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|_| anyhow!("{name}=`{v}` is not a number"))
    };
    let id = num("SLURM_ARRAY_TASK_ID", &id)?;
    let count = num("SLURM_ARRAY_TASK_COUNT", &count)?;
    let min = match env("SLURM_ARRAY_TASK_MIN") {
        Some(m) => num("SLURM_ARRAY_TASK_MIN", &m)?,
        None => 0,
    };
    let k = id
        .checked_sub(min)
        .ok_or_else(|| anyhow!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"))?;
    if count == 0 || k >= count {
        bail!(
            "SLURM_ARRAY_TASK_ID={id} (from {min}) is not one of SLURM_ARRAY_TASK_COUNT={count} tasks; use --array=0-{} or set --shard",
            count.saturating_sub(1)
        );
    }
    Ok(Some((k, count)))
}

/// One swept field and its values, as TOML values.
struct Axis {
    field: String,
    values: Vec<toml_edit::Value>,
}

fn parse_axis(s: &str) -> anyhow::Result<Axis> {
    let (field, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--set `{s}`: expected FIELD=V1,V2,.. e.g. array.rows=8,12"))?;
    let field = field.trim().to_string();
    if field.is_empty() || field.split('.').any(|p| p.trim().is_empty()) {
        bail!("--set `{s}`: `{field}` is not a field path like array.rows");
    }
    let values = vals
        .split(',')
        .map(|v| {
            let v = v.trim();
            v.parse::<toml_edit::Value>()
                .or_else(|_| format!("\"{v}\"").parse::<toml_edit::Value>())
                .map_err(|e| anyhow!("--set `{s}`: value `{v}`: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if values.iter().any(|v| v.to_string().trim().is_empty()) || values.is_empty() {
        bail!("--set `{s}`: no values");
    }
    Ok(Axis { field, values })
}

fn json_of(v: &toml_edit::Value) -> Value {
    match v {
        toml_edit::Value::Integer(i) => json!(*i.value()),
        toml_edit::Value::Float(f) => json!(*f.value()),
        toml_edit::Value::Boolean(b) => json!(*b.value()),
        toml_edit::Value::String(s) => json!(s.value()),
        other => json!(other.to_string().trim()),
    }
}

/// The base config with `field = value` for each pair; the field must exist in the file.
fn config_at(
    base: &str,
    file: &Path,
    sets: &[(&str, &toml_edit::Value)],
) -> anyhow::Result<HwConfig> {
    let mut doc: toml_edit::DocumentMut = base
        .parse()
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    for (field, value) in sets {
        let parts: Vec<&str> = field.split('.').collect();
        let (last, tables) = parts.split_last().expect("a field has a name");
        let mut item: &mut toml_edit::Item = doc.as_item_mut();
        for p in tables {
            item = item
                .get_mut(p)
                .filter(|i| i.is_table_like())
                .ok_or_else(|| anyhow!("--set {field}: {} has no table `{p}`", file.display()))?;
        }
        let slot = item
            .get_mut(last)
            .filter(|i| i.is_value())
            .ok_or_else(|| anyhow!("--set {field}: {} has no field `{field}`", file.display()))?;
        let mut v = (*value).clone();
        // Keep the line's layout (and so every line number of the file).
        if let Some(old) = slot.as_value() {
            *v.decor_mut() = old.decor().clone();
        }
        *slot = toml_edit::Item::Value(v);
    }
    let what: Vec<String> = sets.iter().map(|(f, v)| format!("{f}={v}")).collect();
    rowsim_config::parse(&doc.to_string(), file)
        .map_err(|e| anyhow!("with --set {}: {e}", what.join(" --set ")))
}

/// The most points a sweep (or a merge) may have: each is a simulation, so 10^7 is already more
/// than any machine runs; a larger grid is refused before it is built.
const MAX_SWEEP_POINTS: u64 = 10_000_000;

/// The grid's points: (config values, layer), in index order.
fn grid(axes: &[Axis], layers: &[ConvLayer]) -> Vec<(Vec<usize>, usize)> {
    let mut points = vec![(Vec::new(), 0usize)];
    for a in axes {
        points = points
            .into_iter()
            .flat_map(|(p, _)| {
                (0..a.values.len()).map(move |k| {
                    let mut q = p.clone();
                    q.push(k);
                    (q, 0)
                })
            })
            .collect();
    }
    points
        .into_iter()
        .flat_map(|(p, _)| (0..layers.len()).map(move |l| (p.clone(), l)))
        .collect()
}

fn run_point(
    hw: &HwConfig,
    layer: &ConvLayer,
    seed: u64,
    objective: Objective,
    interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> Result<LayerStats, String> {
    let split = Split::of(layer, hw).map_err(|e| e.to_string())?;
    let need = rowsim_chip::split::host_bytes(&split, false);
    let d = data(layer, seed, None, None, need).map_err(|e| format!("{e:#}"))?;
    let opts = RunOptions {
        mac: Formats::DEFAULT.mac(),
        interrupt,
        ..Default::default()
    };
    let mut mapping = |l: &ConvLayer, w: &rowsim_workload::Tensor| {
        choose(hw, l, None, objective, Some(w)).map_err(|e| format!("{e:#}"))
    };
    let r = run_split(hw, &split, &d.ifmap, &d.weights, seed, &opts, &mut mapping)
        .map_err(|e| e.to_string())?;
    if !r.stats.verified {
        return Err("the ofmap differs from the reference convolution".into());
    }
    let mut s = r.stats;
    s.host = None;
    s.parts.iter_mut().for_each(|p| p.host = None);
    s.objective = objective.name().into();
    Ok(s)
}

fn open_out(path: &Option<PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot write {}", p.display()))?,
            ))
        }
        None => Box::new(std::io::stdout().lock()),
    })
}

pub fn sweep(a: &SweepArgs) -> anyhow::Result<ExitCode> {
    let (base, _) = rowsim_config::source(&a.hw).map_err(|e| anyhow!("{e}"))?;
    let axes: Vec<Axis> = a
        .sets
        .iter()
        .map(|s| parse_axis(s))
        .collect::<anyhow::Result<_>>()?;
    for (i, ax) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.field == ax.field) {
            bail!(
                "--set {} is given twice: give its values once, as --set {}=V1,V2,..",
                ax.field,
                ax.field
            );
        }
    }
    let mut layers = Vec::new();
    if let Some(net) = &a.net {
        layers.extend(load_network(net)?);
    }
    for l in &a.layers {
        layers.push(load_layer(l)?.0);
    }
    if layers.is_empty() {
        bail!("no layers: give --layer (repeatable) or --net");
    }
    if let Some(n) = a.batch {
        layers = layers.into_iter().map(|l| l.with_batch(n)).collect();
    }
    let shard = match a.shard {
        Some(s) => Some(s),
        // Writing a job array, from inside a job or not: every point is the array's.
        None if a.slurm.slurm.is_some() => None,
        None => slurm_shard(|k| std::env::var(k).ok())?,
    };
    let (k, n) = shard.unwrap_or((0, 1));
    // The grid's size before the grid: a product of axes is refused above the limit, not built.
    axes.iter()
        .map(|a| a.values.len() as u64)
        .chain([layers.len() as u64])
        .try_fold(1u64, |acc, v| acc.checked_mul(v))
        .filter(|&p| p <= MAX_SWEEP_POINTS)
        .ok_or_else(|| {
            let sizes: Vec<String> = axes
                .iter()
                .map(|a| format!("{} ({} values)", a.field, a.values.len()))
                .collect();
            anyhow!(
                "the sweep has more than {MAX_SWEEP_POINTS} points ({} x {} layers); split it into smaller sweeps",
                sizes.join(" x "),
                layers.len()
            )
        })?;
    let all = grid(&axes, &layers);
    let total = all.len() as u64;
    let mine: Vec<(u64, &(Vec<usize>, usize))> = all
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64, p))
        .filter(|(i, _)| i % n == k)
        .collect();
    // Every config of the grid is checked before anything runs.
    let mut configs: BTreeMap<Vec<usize>, HwConfig> = BTreeMap::new();
    for (_, (p, _)) in &mine {
        if !configs.contains_key(p) {
            let sets: Vec<(&str, &toml_edit::Value)> = axes
                .iter()
                .zip(p)
                .map(|(ax, &v)| (ax.field.as_str(), &ax.values[v]))
                .collect();
            configs.insert(p.clone(), config_at(&base, &a.hw, &sets)?);
        }
    }
    if let Some(dir) = &a.slurm.slurm {
        return write_job_array(a, dir, total);
    }
    eprintln!(
        "sweep: {total} points ({} configs x {} layers); shard {k}/{n} runs {}",
        total / layers.len() as u64,
        layers.len(),
        mine.len()
    );
    let id = sweep_id(&base, &axes, &layers, a.seed, a.objective.name());
    let record = |i: u64, p: &[usize], l: usize| {
        let point: serde_json::Map<String, Value> = axes
            .iter()
            .zip(p)
            .map(|(ax, &v)| (ax.field.clone(), json_of(&ax.values[v])))
            .collect();
        json!({"sweep": id, "seed": a.seed, "index": i, "points": total, "point": point, "layer": layers[l].name})
    };
    let mut out = open_out(&a.output)?;
    if a.dry_run {
        for (i, (p, l)) in &mine {
            writeln!(out, "{}", record(*i, p, *l))?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs.unwrap_or(0))
        .build()?;
    // Ctrl-C, SIGTERM or SIGHUP stops the points running at a cycle boundary and starts no
    // more; every line already written stays, complete and in index order.
    let interrupt = crate::drive::ctrl_c_flag();
    let _simulating = crate::drive::Simulating::begin();
    let stopped = || interrupt.load(std::sync::atomic::Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let mut failed = 0usize;
    let mut written = 0usize;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let work = &mine;
        let (configs, layers, record) = (&configs, &layers, &record);
        let (interrupt, stopped) = (&interrupt, &stopped);
        scope.spawn(move || {
            pool.install(|| {
                work.par_iter()
                    .enumerate()
                    .for_each_with(tx, |tx, (slot, (i, (p, l)))| {
                        if stopped() {
                            return;
                        }
                        let mut r = record(*i, p, *l);
                        let ran = run_point(
                            &configs[p],
                            &layers[*l],
                            a.seed,
                            a.objective,
                            Some(interrupt.clone()),
                        );
                        // A point the interrupt stopped has no line: it did not finish.
                        if stopped() {
                            return;
                        }
                        match ran {
                            Ok(s) => r["stats"] = json!(s),
                            Err(e) => r["error"] = json!(e),
                        }
                        let _ = tx.send((slot, r.to_string()));
                    })
            })
        });
        // Lines in index order, each as soon as every earlier one is out.
        let mut pending = BTreeMap::new();
        let mut next = 0;
        for (slot, line) in rx {
            pending.insert(slot, line);
            while let Some(line) = pending.remove(&next) {
                if line.contains("\"error\":") {
                    failed += 1;
                }
                writeln!(out, "{line}")?;
                out.flush()?;
                next += 1;
                written = next;
                eprintln!("sweep: {next}/{} points done", work.len());
            }
        }
        Ok(())
    })?;
    if failed > 0 {
        eprintln!("sweep: {failed} points could not run (their lines hold the error)");
    }
    if stopped() {
        eprintln!(
            "sweep: interrupted; the first {written} of this shard's {} points are written{} (each line whole, in index order)",
            mine.len(),
            a.output
                .as_ref()
                .map(|p| format!(" to {}", p.display()))
                .unwrap_or_default()
        );
        return Ok(ExitCode::from(crate::drive::EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--slurm DIR`: the job array and merge job for this sweep (every config of the grid was
/// checked), submitted with `--submit`.
fn write_job_array(a: &SweepArgs, dir: &Path, points: u64) -> anyhow::Result<ExitCode> {
    let path = |p: &Path, what: &str| {
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{}: the {what} path is not UTF-8", p.display()))
    };
    let mut args = vec!["--hw".to_string(), path(&a.hw, "--hw")?];
    for s in &a.sets {
        args.extend(["--set".to_string(), s.clone()]);
    }
    if let Some(net) = &a.net {
        args.extend(["--net".to_string(), net.clone()]);
    }
    for l in &a.layers {
        args.extend(["--layer".to_string(), l.clone()]);
    }
    if let Some(b) = a.batch {
        args.extend(["--batch".to_string(), b.to_string()]);
    }
    args.extend(["--seed".to_string(), a.seed.to_string()]);
    args.extend(["--objective".to_string(), a.objective.name().to_string()]);
    let w = slurm::write(&a.slurm, dir, &args, points)?;
    println!("wrote {}", w.sweep_script.display());
    println!("wrote {}", w.merge_script.display());
    if a.slurm.submit {
        let (array, merge) = slurm::submit(&w)?;
        println!("submitted job array {array} ({} tasks) and merge job {merge} (after the array succeeds)", a.slurm.tasks);
        println!("the merged sweep will be {}", w.merged.display());
    } else {
        println!(
            "submit with: j=$(sbatch --parsable {}) && sbatch --dependency=afterok:$j {}",
            w.sweep_script.display(),
            w.merge_script.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What identifies a sweep, so that `merge` joins only shards of one: a 64-bit FNV-1a hash of
/// the base config's text, every axis (field and values), every layer (its whole shape), the seed
/// and the objective. The same command gives the same id on any machine.
fn sweep_id(base: &str, axes: &[Axis], layers: &[ConvLayer], seed: u64, objective: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(base.as_bytes());
    for ax in axes {
        eat(ax.field.as_bytes());
        for v in &ax.values {
            eat(json_of(v).to_string().as_bytes());
        }
    }
    for l in layers {
        eat(format!("{l:?}").as_bytes());
    }
    eat(&seed.to_le_bytes());
    eat(objective.as_bytes());
    format!("{h:016x}")
}

pub fn merge(a: &MergeArgs) -> anyhow::Result<ExitCode> {
    let mut lines: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut total: Option<(u64, String)> = None;
    // The sweep id and seed of the first record, and where it was.
    let mut first: Option<(String, u64, String)> = None;
    for f in &a.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        for (k, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", f.display(), k + 1);
            let v: Value = serde_json::from_str(line)
                .map_err(|e| anyhow!("{at}: {e}; expected a sweep record"))?;
            let field = |name: &str| {
                v.get(name).and_then(Value::as_u64).ok_or_else(|| {
                    anyhow!("{at}: no `{name}` (a whole number); expected a sweep record")
                })
            };
            let (i, n) = (field("index")?, field("points")?);
            let seed = field("seed")?;
            let id = v
                .get("sweep")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{at}: no `sweep` id; expected a sweep record"))?
                .to_string();
            if v.get("stats").is_none() && v.get("error").is_none() {
                bail!("{at}: a record with neither `stats` nor `error` (a --dry-run listing?): not a finished point");
            }
            match &first {
                None => first = Some((id, seed, at.clone())),
                Some((_, s, w)) if *s != seed => bail!(
                    "{at}: seed {seed}, but {w} has seed {s}: shards of sweeps with different seeds"
                ),
                Some((fid, _, w)) if *fid != id => bail!(
                    "{at}: sweep {id}, but {w} is from sweep {fid}: shards of different sweeps (another config, grid, layer set, seed or objective)"
                ),
                _ => {}
            }
            match &total {
                None => total = Some((n, at.clone())),
                Some((t, first)) if *t != n => bail!(
                    "{at}: a sweep of {n} points, but {first} is from a sweep of {t}: shards of different sweeps"
                ),
                _ => {}
            }
            if n > MAX_SWEEP_POINTS {
                bail!("{at}: a sweep of {n} points; a sweep has at most {MAX_SWEEP_POINTS}");
            }
            if i >= n {
                bail!("{at}: index {i} is outside the sweep's {n} points");
            }
            if let Some((_, before)) = lines.get(&i) {
                bail!("{at}: point {i} is duplicated (also at {before})");
            }
            lines.insert(i, (line.to_string(), at));
        }
    }
    let Some((n, _)) = total else {
        bail!("no sweep records in {} file(s)", a.files.len());
    };
    // Every index is below n and none repeats, so n - lines are missing; the first ten are
    // found without walking all n.
    let missing = n - lines.len() as u64;
    if missing > 0 {
        let show: Vec<String> = (0..n)
            .filter(|i| !lines.contains_key(i))
            .take(10)
            .map(|i| i.to_string())
            .collect();
        bail!(
            "{missing} of {n} points are missing: {}{} (a shard did not finish or was not given)",
            show.join(", "),
            if missing > 10 { ", ..." } else { "" }
        );
    }
    let mut out = open_out(&a.output)?;
    for (line, _) in lines.values() {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    eprintln!("merged {n} points from {} files", a.files.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_variables_pick_the_shard() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|v| v.0 == k).map(|v| v.1.to_string())
        };
        assert_eq!(slurm_shard(env(&[])).unwrap(), None);
        assert_eq!(
            slurm_shard(env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "4")
            ]))
            .unwrap(),
            Some((2, 4))
        );
        // --array=1-4: ids 1..=4 are shards 0..=3.
        assert_eq!(
            slurm_shard(env(&[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1")
            ]))
            .unwrap(),
            Some((3, 4))
        );
        let e = slurm_shard(env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("is not one of SLURM_ARRAY_TASK_COUNT=4"),
            "{e}"
        );
        assert!(parse_shard("2/2").is_err() && parse_shard("1/0").is_err());
        assert_eq!(parse_shard("1/3"), Ok((1, 3)));
    }

    #[test]
    fn the_grid_varies_the_first_axis_slowest_and_layers_fastest() {
        let axes = vec![
            parse_axis("a.b=1,2").unwrap(),
            parse_axis("c.d=x,y,z").unwrap(),
        ];
        let layers = vec![
            rowsim_workload::alexnet()[0].clone(),
            rowsim_workload::alexnet()[1].clone(),
        ];
        let g = grid(&axes, &layers);
        assert_eq!(g.len(), 12);
        assert_eq!(g[0], (vec![0, 0], 0));
        assert_eq!(g[1], (vec![0, 0], 1));
        assert_eq!(g[2], (vec![0, 1], 0));
        assert_eq!(g[11], (vec![1, 2], 1));
        assert_eq!(json_of(&axes[1].values[2]), json!("z"));
        assert_eq!(json_of(&axes[0].values[1]), json!(2));
    }

    #[test]
    fn a_set_changes_one_field_and_keeps_line_numbers() {
        let file = Path::new("../../hw-configs/tiny.toml");
        let base = std::fs::read_to_string(file).unwrap();
        let v: toml_edit::Value = "3".parse().unwrap();
        let hw = config_at(&base, file, &[("array.cols", &v)]).unwrap();
        assert_eq!((hw.array.rows, hw.array.cols), (3, 3));
        let e = config_at(&base, file, &[("array.colz", &v)]).unwrap_err();
        assert!(e.to_string().contains("has no field `array.colz`"), "{e}");
        let zero: toml_edit::Value = "0".parse().unwrap();
        let e = config_at(&base, file, &[("array.cols", &zero)])
            .unwrap_err()
            .to_string();
        let line = base.lines().position(|l| l.starts_with("cols")).unwrap() + 1;
        assert!(e.contains(&format!("tiny.toml:{line}:")), "{e}");
        assert!(e.starts_with("with --set array.cols=0"), "{e}");
    }
}
