//! `rowsim run`: a layer (or a network's layers, each split where it is beyond the chip's
//! limits) on the emulated chip, checked against the reference convolution, with a summary and
//! statistics. An ONNX model runs in `crate::model`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rowsim_chip::{run_checked, ChipError, LayerStats, RunOptions};
use rowsim_config::HwConfig;
use rowsim_kernel::{SimError, TraceConfig};
use rowsim_mapper::{enumerate_for, evaluate, rank, Dataflow, Mapping, Objective, Split};
use rowsim_workload::{synthetic_ifmap, ConvLayer, Formats, Tensor, Weights};

use crate::console::{Console, Log};
use crate::drive::{ctrl_c_flag, EXIT_INTERRUPTED};
use crate::map::{expected_data, load_layer, load_network};
use crate::TraceArgs;

/// Which machine, layer, mapping and data: what `run` and `step` share.
#[derive(Args, Debug, Clone)]
pub struct LayerArgs {
    /// Hardware config: a TOML file, or a built-in machine by name (eyeriss-v1, tiny, isca2016-rs, ...).
    #[arg(long, default_value = "eyeriss-v1")]
    pub hw: PathBuf,
    /// A built-in layer (alexnet:conv3, vgg16:conv4_2), a layer file (.toml), or a layer of a
    /// SCALE-Sim topology CSV or Timeloop problem YAML (file.csv:Conv3, file.yaml).
    #[arg(long, default_value = "alexnet:conv3")]
    pub layer: String,
    /// Batch size N (overrides the layer's).
    #[arg(long)]
    pub batch: Option<u32>,
    /// Seed of the synthetic ifmaps and weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pin a mapping instead of the mapper's choice: m=..,n=..,e=..,p=..,q=..,r=..,t=..
    #[arg(long)]
    pub mapping: Option<Mapping>,
    /// What the mapper chooses for: energy, delay (its lower bound on cycles), edp, or chip (the
    /// most PEs at work averaged over the passes, then energy: how the chip's compiler chose).
    #[arg(long, default_value = "energy")]
    pub objective: Objective,
    /// Fraction of zeros in the synthetic ifmap (0 to 1), overriding the layer's (AlexNet's
    /// layers carry measured fractions; other layers, imported ones included, 0.5).
    #[arg(long, value_parser = crate::map::parse_fraction, conflicts_with = "ifmap")]
    pub zero_fraction: Option<f64>,
    /// The ifmap, instead of a synthetic one: int16 (Q8.8) `.npy` of shape [N, C, H, W].
    #[arg(long)]
    pub ifmap: Option<PathBuf>,
    /// The weights, instead of synthetic ones: int16 (Q1.15) `.npy` of shape [M, C/G, R, S].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Magnitude-prune the synthetic weights of each layer to this density (0 to 1): the
    /// smallest magnitudes become zero (what zero skipping and coded weights save).
    #[arg(long, value_parser = crate::map::parse_unit, conflicts_with = "weights")]
    pub weight_density: Option<f64>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub layer: LayerArgs,
    /// Run every layer of a network instead: built in (alexnet, vgg16: CONV and FC), a SCALE-Sim
    /// topology (.csv), a folder of Timeloop problems (*.yaml), or an ONNX model (.onnx: every
    /// image of --input through the whole model).
    #[arg(long, conflicts_with_all = ["layer", "mapping", "ifmap", "weights", "ofmap"])]
    pub net: Option<String>,
    /// Write the statistics here (a JSON array, one object a layer).
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Write the ofmap here: int16 (Q8.8) `.npy` of shape [N, M, E, F].
    #[arg(long)]
    pub ofmap: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// With `--net`: how many layers run side by side, each on a thread of its own (default:
    /// the cores this process may use, fewer when their runs would not fit in memory
    /// together). Each layer's report still prints in layer order, and its numbers are the same
    /// whatever the jobs; only the host's time per layer is shared out.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
    /// Step every component at every clock edge instead of only when it needs a step: the
    /// reference the event-driven kernel is tested against (same results, several times slower).
    #[arg(long)]
    pub every_edge: bool,
    /// With `--net model.onnx`: the images, a float32/float64 `.npy` of [N, C, H, W] (or [N, K])
    /// (default: `--batch` synthetic images, uniform in 0..1 from the seed). They run in
    /// batches of `--batch` (default 16) as the layers' N.
    #[arg(long, requires = "net")]
    pub input: Option<PathBuf>,
    /// With `--input`: the class of each image (an integer `.npy` of [N]), for top-1 accuracy.
    #[arg(long, requires = "input")]
    pub labels: Option<PathBuf>,
    /// With `--net model.onnx`: the images the fixed-point formats are chosen on (default: the
    /// first 64 images of `--input`).
    #[arg(long, requires = "net")]
    pub calibration: Option<PathBuf>,
    /// With `--net model.onnx`: the float model's top-1 accuracy (0 to 1), instead of computing
    /// it from the ONNX model.
    #[arg(long, requires = "labels", value_parser = crate::map::parse_unit)]
    pub float_accuracy: Option<f64>,
    #[command(flatten)]
    pub trace: TraceArgs,
}

/// A layer ready to run: its mapping (pinned or the mapper's choice) and data.
pub struct Prepared {
    pub layer: ConvLayer,
    pub mapping: Mapping,
    pub ifmap: Tensor,
    pub weights: Tensor,
}

impl LayerArgs {
    /// The layers these arguments name, and a mapping pinned by the command line or the file.
    pub fn layers(&self, net: Option<&str>) -> anyhow::Result<(Vec<ConvLayer>, Option<Mapping>)> {
        Ok(match net {
            Some(net) => (load_network(net)?, None),
            None => {
                let (l, file_pin) = load_layer(&self.layer)?;
                (vec![l], self.mapping.or(file_pin))
            }
        })
    }

    /// The layer with the command line's batch and zero fraction.
    pub fn adjust(&self, mut layer: ConvLayer) -> ConvLayer {
        if let Some(n) = self.batch {
            layer = layer.with_batch(n);
        }
        if let Some(z) = self.zero_fraction {
            layer.ifmap_zero_fraction = z;
        }
        layer
    }

    /// Whether a layer's weights are held whole (read from `--weights`, or pruned), not made
    /// a block of filters at a time.
    pub fn weights_held(&self) -> bool {
        self.weights.is_some() || self.weight_density.is_some()
    }

    /// A layer's data: read from `--ifmap`/`--weights`, or synthetic from the seed; refused
    /// first when its run would `need` more memory than the machine has.
    pub fn data(&self, layer: &ConvLayer, need: u64) -> anyhow::Result<Data> {
        layer.validate()?;
        let mut d = data(
            layer,
            self.seed,
            self.ifmap.as_deref(),
            self.weights.as_deref(),
            need,
        )?;
        if let Some(density) = self.weight_density {
            // Pruning ranks the whole layer's weights: it holds them all.
            let mut w = d.weights.into_tensor();
            magnitude_prune(&mut w, density);
            d.weights = Weights::Held(std::borrow::Cow::Owned(w));
        }
        Ok(d)
    }

    /// The batch override, the mapping and the data of one layer.
    pub fn prepare(
        &self,
        hw: &HwConfig,
        layer: ConvLayer,
        pinned: Option<Mapping>,
    ) -> anyhow::Result<Prepared> {
        let layer = self.adjust(layer);
        layer.validate()?;
        // Before the mapper too, whose terms for a huge batch take a while.
        let need = rowsim_chip::host_bytes(&layer);
        check_memory(&layer, need, available_memory(), false)?;
        let early = early_choice(hw, &layer, pinned, self.objective)?;
        let d = self.data(&layer, need)?;
        let weights = d.weights.into_tensor();
        let mapping = early.finish(hw, &layer, pinned, self.objective, &weights)?;
        Ok(Prepared {
            layer: d.layer,
            mapping,
            ifmap: d.ifmap,
            weights,
        })
    }
}

/// Zeroes all but the `density` fraction of weights of largest magnitude (ties: the earlier
/// kept).
pub fn magnitude_prune(w: &mut Tensor, density: f64) {
    let keep = rowsim_workload::kept(w.data.len(), density);
    rowsim_workload::keep_largest(&mut w.data, keep, |v| (v as f64).abs());
}

/// A layer and its tensors.
pub struct Data {
    pub layer: ConvLayer,
    pub ifmap: Tensor,
    /// Held, or synthetic and made a block of filters at a time as the parts of a layer run
    /// (see [`rowsim_chip::split::run_parts`]).
    pub weights: Weights<'static>,
}

/// What can be known of a layer's mapping before its tensors exist.
pub enum EarlyChoice {
    /// The mapping: the weights cannot change it.
    Final(Mapping),
    /// A legal mapping exists (the weights cannot change that), but which is cheapest depends
    /// on them (coded filters, skipped zero weights).
    Legal,
    /// Legality itself depends on the weights (compressed rows).
    Unknown,
}

impl EarlyChoice {
    /// The layer's mapping, given its weights.
    pub fn finish(
        self,
        hw: &HwConfig,
        layer: &ConvLayer,
        pinned: Option<Mapping>,
        objective: Objective,
        weights: &Tensor,
    ) -> anyhow::Result<Mapping> {
        match self {
            EarlyChoice::Final(m) => Ok(m),
            _ => choose(hw, layer, pinned, objective, Some(weights)),
        }
    }
}

/// A layer's mapping as far as it can be chosen without its tensors, so that a layer that
/// cannot be mapped is refused before they (perhaps gigabytes) are built. Whether a mapping is
/// legal depends on the weights only when they are compressed (rows sized from them); which
/// one is cheapest, also when filters are coded or zero weights skipped.
pub fn early_choice(
    hw: &HwConfig,
    layer: &ConvLayer,
    pinned: Option<Mapping>,
    objective: Objective,
) -> anyhow::Result<EarlyChoice> {
    if hw.spad.filter.compressed {
        return Ok(EarlyChoice::Unknown);
    }
    let m = choose(hw, layer, pinned, objective, None)?;
    Ok(if hw.rlc.code_filters || hw.datapath.zero_skipping {
        EarlyChoice::Legal
    } else {
        EarlyChoice::Final(m)
    })
}

/// A layer's mapping: pinned (checked), or the mapper's cheapest for `objective`. With the
/// layer's `weights`, a machine with compressed weights sizes each filter row from them (a
/// sparse layer may fit mappings a dense one cannot); without, every weight counts as nonzero.
pub fn choose(
    hw: &HwConfig,
    layer: &ConvLayer,
    pinned: Option<Mapping>,
    objective: Objective,
    weights: Option<&Tensor>,
) -> anyhow::Result<Mapping> {
    let mut expected = expected_data(layer, hw)?;
    expected.weights = weights;
    Ok(match pinned {
        Some(m) => {
            evaluate(layer, hw, m, &expected)
                .context("the pinned mapping")?
                .mapping
        }
        None => {
            let mut all = enumerate_for(layer, hw, &expected, Dataflow::of_machine(hw))?;
            rank(&mut all, objective);
            all.remove(0).mapping
        }
    })
}

/// A layer's data: `.npy` files, or synthetic from `seed` (the weights made as its parts run);
/// refused first when its run would `need` more memory than the machine has.
pub fn data(
    layer: &ConvLayer,
    seed: u64,
    ifmap: Option<&Path>,
    weights: Option<&Path>,
    need: u64,
) -> anyhow::Result<Data> {
    check_memory(layer, need, available_memory(), true)?;
    let fmt = Formats::DEFAULT;
    let ifmap = match ifmap {
        Some(p) => read_npy(p, [layer.n, layer.c, layer.h, layer.w], "[N, C, H, W]")?,
        None => synthetic_ifmap(layer, seed, fmt),
    };
    let weights = match weights {
        Some(p) => Weights::Held(std::borrow::Cow::Owned(read_npy(
            p,
            [layer.m, layer.cg(), layer.r, layer.s],
            "[M, C/G, R, S]",
        )?)),
        None => Weights::Synthetic {
            layer: layer.clone(),
            seed,
            fmt,
        },
    };
    Ok(Data {
        layer: layer.clone(),
        ifmap,
        weights,
    })
}

/// Bytes of memory this machine has available for a new run (`MemAvailable` in
/// `/proc/meminfo`), where the system says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Refuses a layer whose run would `need` more than `available` bytes, before any tensor is
/// built ([`rowsim_chip::host_bytes`], [`rowsim_chip::split::host_bytes`]); with `say`, says
/// what it builds when that is a large job, since building it takes a while before the first
/// cycle.
fn check_memory(
    layer: &ConvLayer,
    need: u64,
    available: Option<u64>,
    say: bool,
) -> anyhow::Result<()> {
    let gb = |b: u64| b as f64 / 1e9;
    let values = |a: [u32; 4]| a.iter().map(|&x| x as u128).product::<u128>();
    let ifmap = values([layer.n, layer.c, layer.h, layer.w]);
    let ofmap = values([layer.n, layer.m, layer.e(), layer.f()]);
    if let Some(avail) = available.filter(|&a| need > a) {
        bail!(
            "{}: a run needs about {:.1} GB of memory (ifmap {ifmap} and ofmap {ofmap} values with N = {}: the tensors, the chip's DRAM image and its row maps), more than the {:.1} GB this machine has available (MemAvailable); use a smaller --batch or a larger machine",
            rowsim_workload::printable(&layer.name),
            gb(need),
            layer.n,
            gb(avail)
        );
    }
    if say && need > 1_000_000_000 {
        eprintln!(
            "{}: building its tensors and DRAM image (about {:.1} GB) before the first cycle",
            rowsim_workload::printable(&layer.name),
            gb(need)
        );
    }
    Ok(())
}

/// A layer name as part of a file name: `[A-Za-z0-9_-]` only (a name from a CSV such as
/// `x/../../tmp/y` can never leave the folder or name a hidden file).
fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "layer".into()
    } else {
        s
    }
}

/// The trace of each layer: the `--vcd` path for one layer; for several, `trace.vcd` ->
/// `trace_conv1.vcd` (`.fst` likewise) beside it, the layer's name made file-safe, and `_2`,
/// `_3`, ... added where two layers would otherwise share a file.
fn layer_vcds(vcd: &Path, layers: &[ConvLayer]) -> Vec<PathBuf> {
    if layers.len() == 1 {
        return vec![vcd.to_path_buf()];
    }
    let stem = vcd.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
    let ext = vcd.extension().and_then(|e| e.to_str()).unwrap_or("vcd");
    let mut seen = std::collections::BTreeSet::new();
    layers
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let short = file_safe(l.name.rsplit(':').next().unwrap_or("layer"));
            let mut name = format!("{stem}_{short}");
            if !seen.insert(name.clone()) {
                name = format!("{stem}_{short}_{}", k + 1);
                seen.insert(name.clone());
            }
            vcd.with_file_name(format!("{name}.{ext}"))
        })
        .collect()
}

/// A path made absolute with `.` and `..` resolved by name (the file need not exist), for
/// comparing paths.
fn normalized(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The files a command reads, from its arguments: layer or network files (`file.csv:Conv3` names
/// `file.csv`), a config file, tensors.
fn input_files(a: &RunArgs) -> Vec<PathBuf> {
    let mut specs: Vec<PathBuf> = vec![a.layer.hw.clone()];
    for s in [Some(a.layer.layer.as_str()), a.net.as_deref()]
        .into_iter()
        .flatten()
    {
        specs.push(PathBuf::from(s));
        if let Some((file, _)) = s.rsplit_once(':') {
            specs.push(PathBuf::from(file));
        }
    }
    specs.extend(a.layer.ifmap.iter().cloned());
    specs.extend(a.layer.weights.iter().cloned());
    specs.into_iter().filter(|p| p.is_file()).collect()
}

/// Every output is checked before anything runs: its folder can be made, it is not a folder,
/// no two outputs are one file, and no output is one of the inputs.
pub fn check_outputs(outputs: &[(PathBuf, &str)], inputs: &[PathBuf]) -> anyhow::Result<()> {
    let inputs: Vec<PathBuf> = inputs.iter().map(|p| normalized(p)).collect();
    let mut seen: Vec<(PathBuf, &str)> = Vec::new();
    for (path, what) in outputs {
        let n = normalized(path);
        if let Some((_, other)) = seen.iter().find(|(p, _)| *p == n) {
            bail!(
                "{}: both the {other} and the {what} would be written to this file",
                path.display()
            );
        }
        if inputs.contains(&n) {
            bail!(
                "{}: the {what} would overwrite an input of this run",
                path.display()
            );
        }
        if path.is_dir() {
            bail!("{}: the {what} is a folder, not a file", path.display());
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {} (for the {what})", dir.display()))?;
        }
        seen.push((n, what));
    }
    Ok(())
}

/// Writes the statistics of the layers that ran.
fn write_stats(path: &Path, all: &[LayerStats]) -> anyhow::Result<()> {
    write_json(path, &all)
}

/// Writes `value` as pretty JSON beside `path` and renames it over it, so an interruption never
/// leaves half a file.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    write_whole(
        path,
        (serde_json::to_string_pretty(value)? + "\n").as_bytes(),
    )
}

/// Writes `bytes` beside `path` and renames them over it: an interruption (a signal, a full
/// disk) leaves the old file or the new one, never half of one.
pub fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// What one chip run ended with.
enum Ran {
    Done(Box<LayerStats>, Tensor),
    /// The simulation stopped (an error or Ctrl-C): the exit code.
    Stopped(ExitCode),
}

/// What a layer (all its parts) ended with.
enum LayerOutcome {
    Done {
        stats: Box<LayerStats>,
        /// Its output, when `--ofmap` asks for it.
        ofmap: Option<Tensor>,
        /// The ofmap differs from the reference convolution (reported in the layer's log).
        failed: bool,
    },
    /// Stopped (Ctrl-C, a deadlock, a fault): the exit code.
    Stopped(ExitCode),
}

/// The layers of a `run` and what they share: the machine, the arguments, the interrupt flag,
/// the pinned mapping, and each part's trace file.
struct NetRun<'a> {
    hw: &'a HwConfig,
    a: &'a RunArgs,
    interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pinned: Option<Mapping>,
    vcds: Option<Vec<PathBuf>>,
}

impl NetRun<'_> {
    /// Part `k` of the run's trace files.
    fn trace(&self, k: usize) -> Option<TraceConfig> {
        self.vcds.as_ref().map(|v| TraceConfig {
            vcd: v[k].clone(),
            scopes: self.a.trace.globs.clone(),
            window: self.a.trace.window.clone(),
        })
    }

    /// One layer, its parts in order (the first of them part `first` of the run), reported to
    /// `log`, its progress bar (if any) among `console`'s.
    fn layer(
        &self,
        split: &Split,
        mut early: std::collections::VecDeque<EarlyChoice>,
        first: usize,
        log: &mut Log,
        console: &Console,
    ) -> anyhow::Result<LayerOutcome> {
        let (a, hw, pinned) = (self.a, self.hw, self.pinned);
        // A model's layer (`model.onnx:NODE`) runs on its own weights and the activations the
        // model makes of its calibration images, in its formats; any other on synthetic data.
        let model_layer = match crate::model::node_spec(&a.layer.layer) {
            Some((file, node)) if a.layer.ifmap.is_none() && a.layer.weights.is_none() => {
                Some(crate::model::node_data(&file, &node, &split.whole)?)
            }
            _ => None,
        };
        let mut mac = Formats::DEFAULT.mac();
        let (whole, layer_relu) = match model_layer {
            Some(nd) => {
                mac = nd.mac;
                log.err(&nd.source);
                (nd.data, Some(nd.relu))
            }
            None => {
                let need = rowsim_chip::split::host_bytes(split, a.layer.weights_held());
                (a.layer.data(&split.whole, need)?, None)
            }
        };
        if split.is_split() {
            log.start(console, &split.describe());
        }
        let relu = layer_relu.unwrap_or(hw.datapath.relu);
        let (mut stop, mut failed, mut k) = (None, false, first);
        let ran = rowsim_chip::split::run_parts(
            split,
            &whole.ifmap,
            &whole.weights,
            mac,
            relu,
            |part, x, w, part_relu| {
                // A pinned mapping applies to a layer in one part (refused before any layer
                // runs otherwise). The parts run in order.
                let mapping = early
                    .pop_front()
                    .ok_or_else(|| anyhow!("{}: more parts ran than were mapped", part.layer.name))?
                    .finish(hw, &part.layer, pinned, a.layer.objective, w)?;
                // A whole layer reads out as it is configured (or as its model says).
                let relu = if split.is_split() {
                    Some(part_relu)
                } else {
                    layer_relu
                };
                let part_run = PartRun {
                    layer: &part.layer,
                    mapping: &mapping,
                    mac,
                    trace: self.trace(k),
                    relu,
                };
                let r = self.part(&part_run, x, w, log, console, &mut failed)?;
                k += 1;
                Ok::<_, anyhow::Error>(match r {
                    Ran::Done(stats, ofmap) => Some((*stats, ofmap)),
                    Ran::Stopped(code) => {
                        stop = Some(code);
                        None
                    }
                })
            },
        )?;
        let Some(done) = ran else {
            return Ok(LayerOutcome::Stopped(stop.unwrap_or(ExitCode::FAILURE)));
        };
        if split.is_split() {
            if !done.stats.verified {
                failed = true;
                log.err(format!(
                    "error: {}: the parts' assembled ofmap differs from the reference convolution of the whole layer",
                    split.whole.name
                ));
            }
            log.out(done.stats.summary());
        }
        Ok(LayerOutcome::Done {
            stats: Box::new(done.stats),
            // Kept only to be written: a layer's report may wait for the layers before it.
            ofmap: a.ofmap.is_some().then_some(done.ofmap),
            failed,
        })
    }

    /// One chip run (a layer, or a part of a split one), reported to `log`; an ofmap that
    /// differs from the reference is reported and sets `failed`.
    fn part(
        &self,
        p: &PartRun,
        x: &Tensor,
        w: &Tensor,
        log: &mut Log,
        console: &Console,
        failed: &mut bool,
    ) -> anyhow::Result<Ran> {
        let (a, hw, layer) = (self.a, self.hw, p.layer);
        // Side by side, the start shows now; the report when the layers before are done.
        log.start(
            console,
            &format!("running {} with {} ...", layer.name, p.mapping),
        );
        let (hook, bar) = crate::progress::Bar::hook(&layer.name, a.quiet, console.multi());
        let opts = RunOptions {
            mac: p.mac,
            trace: p.trace.clone(),
            watchdog: a.trace.watchdog,
            interrupt: Some(self.interrupt.clone()),
            progress: hook,
            every_edge: a.every_edge,
            relu: p.relu,
        };
        let simulating = crate::drive::Simulating::begin();
        let result = run_checked(hw, layer, p.mapping, x, w, &opts);
        drop(simulating);
        if let Some(b) = &bar {
            b.finish();
        }
        let checked = match result {
            Ok(c) => c,
            Err(ChipError::Sim(e)) => {
                let code = if matches!(e, SimError::Interrupted { .. }) {
                    EXIT_INTERRUPTED
                } else {
                    1
                };
                log.err(format!("error: {}: {e}", layer.name));
                if let (Some(c), Some(t)) = (e.cycle(), &p.trace) {
                    log.err(format!(
                        "stopped at cycle {c}; {} is complete and flushed up to that cycle",
                        t.vcd.display()
                    ));
                } else if let Some(c) = e.cycle() {
                    log.err(format!("stopped at cycle {c}"));
                }
                return Ok(Ran::Stopped(ExitCode::from(code)));
            }
            Err(e) => bail!("{}: {e}", layer.name),
        };
        let verified = checked.verified;
        let host = checked.host.clone();
        if let Some((idx, got, want)) = checked.first_difference() {
            *failed = true;
            log.err(format!(
                "error: {}: the ofmap differs from the reference convolution at [n, m, e, f] = {idx:?}: got {got}, want {want}",
                layer.name
            ));
        }
        let out = checked.run;
        let mut stats = LayerStats::new(hw, layer, a.layer.seed, &out, x.zero_fraction(), verified);
        stats.objective = if self.pinned.is_some() {
            "pinned".into()
        } else {
            a.layer.objective.name().into()
        };
        log.err(format!(
            "host: {} core cycles emulated in {:.2} s ({:.0} core cycles/s); the reference convolution took {:.3} s ({:.1}x); {}",
            out.core_cycles,
            host.emulation_s,
            host.core_cycles_per_s,
            host.reference_s,
            host.emulation_over_reference,
            host.profile_line()
        ));
        stats.host = Some(host);
        log.out(stats.summary());
        if let (Some(t), Some(w)) = (&p.trace, &a.trace.window) {
            if w.start >= out.core_cycles {
                log.err(format!(
                    "warning: the trace window {}..{} starts after the layer ended (cycle {}): {} holds no changes",
                    w.start,
                    w.end,
                    out.core_cycles,
                    t.vcd.display()
                ));
            }
        }
        if let Some(t) = &p.trace {
            log.err(format!(
                "trace: {} (open {} in GTKWave)",
                t.vcd.display(),
                t.vcd.with_extension("gtkw").display()
            ));
        }
        Ok(Ran::Done(Box::new(stats), out.ofmap))
    }
}

/// One chip run's layer, mapping, formats, trace and readout.
struct PartRun<'a> {
    layer: &'a ConvLayer,
    mapping: &'a Mapping,
    mac: rowsim_datapath::mac::MacConfig,
    trace: Option<TraceConfig>,
    relu: Option<bool>,
}

/// How many layers run side by side: `asked` (`--jobs`; default `cores`), no more than there
/// are layers (one memory need each, [`rowsim_chip::host_bytes`]), and no more than fit in the
/// memory `available` together (the largest needs summed); with the reason when memory lowers
/// an asked-for number.
fn jobs_for(
    asked: Option<u32>,
    cores: usize,
    needs: &[u64],
    available: Option<u64>,
) -> (usize, Option<String>) {
    let want = asked.map_or(cores, |j| j as usize).min(needs.len()).max(1);
    let Some(avail) = available else {
        return (want, None);
    };
    let mut largest = needs.to_vec();
    largest.sort_unstable_by(|x, y| y.cmp(x));
    let (mut fit, mut sum) = (0usize, 0u64);
    for &b in largest.iter().take(want) {
        sum = sum.saturating_add(b);
        if sum > avail && fit > 0 {
            break;
        }
        fit += 1;
    }
    let fit = fit.max(1);
    let why = (fit < want && asked.is_some()).then(|| {
        format!(
            "--jobs {want}: {fit} layer(s) at a time, as the largest layers' runs together need more than the {:.1} GB of memory available",
            avail as f64 / 1e9
        )
    });
    (fit, why)
}

pub fn run(a: &RunArgs) -> anyhow::Result<ExitCode> {
    if let Some(net) = a.net.as_deref().filter(|n| crate::model::is_onnx(n)) {
        if a.trace.vcd.is_some() || a.ofmap.is_some() {
            bail!(
                "--net model.onnx: --vcd and --ofmap are for one layer (--layer model.onnx:NODE)"
            );
        }
        if a.jobs.is_some() {
            bail!("--net model.onnx: --jobs is for networks of independent layers; a model's layers run in order, each on the one before's output");
        }
        return crate::model::run(a, net);
    }
    if a.input.is_some() || a.calibration.is_some() {
        bail!("--input and --calibration are for a model: --net model.onnx");
    }
    let hw = rowsim_config::load_spec(&a.layer.hw).map_err(|e| anyhow!("{e}"))?;
    let (layers, pinned) = a.layer.layers(a.net.as_deref())?;
    // Each layer as the parts it runs in on this machine (one part: the layer itself).
    let splits: Vec<Split> = layers
        .into_iter()
        .map(|l| Split::of(&a.layer.adjust(l), &hw))
        .collect::<Result<_, _>>()?;
    if pinned.is_some() && splits.iter().any(Split::is_split) {
        bail!("--mapping: the layer runs in parts on this machine (see `rowsim map`), each with its own mapping; a pinned mapping cannot apply to all");
    }
    let runs: Vec<ConvLayer> = splits
        .iter()
        .flat_map(|s| s.parts.iter().map(|p| p.layer.clone()))
        .collect();
    let vcds = a.trace.vcd.as_deref().map(|v| layer_vcds(v, &runs));
    let mut outputs: Vec<(PathBuf, &str)> = Vec::new();
    for v in vcds.iter().flatten() {
        outputs.push((v.clone(), "trace"));
        outputs.push((v.with_extension("gtkw"), "GTKWave save file"));
    }
    outputs.extend(
        a.stats_json
            .iter()
            .map(|p| (p.clone(), "statistics (--stats-json)")),
    );
    outputs.extend(a.ofmap.iter().map(|p| (p.clone(), "ofmap (--ofmap)")));
    check_outputs(&outputs, &input_files(a))?;
    let net = NetRun {
        hw: &hw,
        a,
        interrupt: ctrl_c_flag(),
        pinned,
        vcds,
    };
    // Every part of every layer mapped (as far as its data cannot change that) before any
    // tensor is built.
    let early: Vec<std::collections::VecDeque<EarlyChoice>> = splits
        .iter()
        .map(|s| {
            s.parts
                .iter()
                .map(|p| early_choice(&hw, &p.layer, pinned, a.layer.objective))
                .collect::<anyhow::Result<_>>()
        })
        .collect::<anyhow::Result<_>>()?;
    // The first part of each layer, counting the parts of the layers before (trace files).
    let firsts: Vec<usize> = splits
        .iter()
        .scan(0, |k, s| {
            let first = *k;
            *k += s.parts.len();
            Some(first)
        })
        .collect();
    let needs: Vec<u64> = splits
        .iter()
        .map(|s| rowsim_chip::split::host_bytes(s, a.layer.weights_held()))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (jobs, why) = jobs_for(a.jobs, cores, &needs, available_memory());
    if let Some(why) = why {
        eprintln!("{why}");
    }
    let mut done = Finished::default();
    if jobs <= 1 {
        let console = Console::default();
        for (i, (split, early)) in splits.iter().zip(early).enumerate() {
            let mut log = Log::direct();
            match net.layer(split, early, firsts[i], &mut log, &console)? {
                LayerOutcome::Stopped(code) => return done.stopped(a, code),
                outcome => done.add(a, outcome)?,
            }
        }
        return Ok(done.exit_code());
    }
    side_by_side(&net, &splits, early, &firsts, jobs, done)
}

/// The layers that finished, in layer order, and whether any differed from its reference.
#[derive(Default)]
struct Finished {
    stats: Vec<LayerStats>,
    failed: bool,
}

impl Finished {
    /// A finished layer: its statistics kept (and `--stats-json` rewritten, so that a run
    /// stopped later keeps every finished layer), its ofmap written if asked.
    fn add(&mut self, a: &RunArgs, outcome: LayerOutcome) -> anyhow::Result<()> {
        let LayerOutcome::Done {
            stats,
            ofmap,
            failed,
        } = outcome
        else {
            return Ok(());
        };
        self.failed |= failed;
        self.stats.push(*stats);
        if let (Some(p), Some(ofmap)) = (&a.ofmap, &ofmap) {
            write_npy(p, ofmap)?;
        }
        if let Some(path) = &a.stats_json {
            write_stats(path, &self.stats)?;
        }
        Ok(())
    }

    /// A run stopped: the statistics of the layers that finished, and the stop's exit code.
    fn stopped(&self, a: &RunArgs, code: ExitCode) -> anyhow::Result<ExitCode> {
        if let (Some(path), false) = (&a.stats_json, self.stats.is_empty()) {
            write_stats(path, &self.stats)?;
            eprintln!(
                "{}: the statistics of the {} layer(s) that finished",
                path.display(),
                self.stats.len()
            );
        }
        Ok(code)
    }

    fn exit_code(&self) -> ExitCode {
        if self.failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// A layer's emulation time in seconds on this machine kind, roughly, for handing out the
/// longest layers first: its MACs (a CONV layer's PEs compute them, ~15 ns each) and its
/// weights (an FC layer waits for them from DRAM, ~0.43 us each), fitted on AlexNet's CONV and
/// FC layers. Only the order depends on it.
fn emulation_cost(layer: &ConvLayer) -> f64 {
    let weights = layer.m as f64 * layer.cg() as f64 * layer.r as f64 * layer.s as f64;
    1.5e-8 * layer.macs() as f64 + 4.3e-7 * weights
}

/// The layers on `jobs` threads, the longest first (see [`emulation_cost`]); each layer's
/// report is printed once the layers before it (in layer order) have printed theirs. A layer
/// that stops (Ctrl-C, a fault) or fails to run stops the handing out of the layers after it;
/// those already running finish (or stop, on Ctrl-C). On a stop, every layer that finished is kept; on an error, the error ends
/// the command after the reports of the layers before it, as one layer at a time would.
fn side_by_side(
    net: &NetRun,
    splits: &[Split],
    early: Vec<std::collections::VecDeque<EarlyChoice>>,
    firsts: &[usize],
    jobs: usize,
    mut done: Finished,
) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let a = net.a;
    let console = Console::new(!a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let early: Vec<Mutex<Option<_>>> = early.into_iter().map(|e| Mutex::new(Some(e))).collect();
    let n = splits.len();
    // The longest layers first (so that a long one does not start last and run alone), by an
    // estimate of their emulation's time; their reports still print in layer order.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| {
        emulation_cost(&splits[y].whole)
            .total_cmp(&emulation_cost(&splits[x].whole))
            .then(x.cmp(&y))
    });
    let next = AtomicUsize::new(0);
    // The first layer that did not finish: none after it is started.
    let stop_at = AtomicUsize::new(usize::MAX);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut results: Vec<Option<(anyhow::Result<LayerOutcome>, Log)>> =
        (0..n).map(|_| None).collect();
    let mut printed = 0;
    let mut ended: Option<usize> = None;
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop_at, early, console, order) =
                (&next, &stop_at, &early, &console, &order);
            s.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= n || net.interrupt.load(Ordering::Relaxed) {
                    break;
                }
                let i = order[k];
                if i > stop_at.load(Ordering::SeqCst) {
                    continue;
                }
                let mine = early[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                let mut log = Log::held();
                let outcome = match mine {
                    Some(e) => net.layer(&splits[i], e, firsts[i], &mut log, console),
                    None => Err(anyhow!("{}: taken twice", splits[i].whole.name)),
                };
                if !matches!(outcome, Ok(LayerOutcome::Done { .. })) {
                    stop_at.fetch_min(i, Ordering::SeqCst);
                }
                if tx.send((i, outcome, log)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // Reports in layer order, as they complete; the first layer that did not finish
        // waits for the end.
        for (i, outcome, log) in rx {
            results[i] = Some((outcome, log));
            while ended.is_none() && printed < n {
                let Some((Ok(LayerOutcome::Done { .. }), _)) = &results[printed] else {
                    if results[printed].is_some() {
                        ended = Some(printed);
                    }
                    break;
                };
                let (outcome, log) = results[printed].take().expect("checked above");
                log.flush(&console);
                if let Err(e) = done.add(a, outcome.expect("checked above")) {
                    results[printed] = Some((Err(e), Log::direct()));
                    ended = Some(printed);
                    break;
                }
                printed += 1;
            }
        }
    });
    let Some(end) = ended else {
        if printed == n {
            return Ok(done.exit_code());
        }
        // Ctrl-C came while no layer was being stopped (between two layers of a thread): the
        // layers not started never ran. Those that finished are kept.
        for r in results.iter_mut().skip(printed) {
            if let Some((Ok(o @ LayerOutcome::Done { .. }), log)) = r.take() {
                log.flush(&console);
                done.add(a, o)?;
            }
        }
        eprintln!(
            "interrupted: {} of the {n} layers never started",
            n - done.stats.len()
        );
        return done.stopped(a, ExitCode::from(EXIT_INTERRUPTED));
    };
    let (outcome, log) = results[end].take().expect("the layer that ended the run");
    log.flush(&console);
    match outcome? {
        LayerOutcome::Stopped(code) => {
            // Layers after it that were running when it stopped and finished are kept too.
            for r in results.iter_mut().skip(end + 1) {
                if let Some((Ok(o @ LayerOutcome::Done { .. }), _)) = r.take() {
                    done.add(a, o)?;
                }
            }
            done.stopped(a, code)
        }
        LayerOutcome::Done { .. } => Ok(done.exit_code()),
    }
}

/// Reads an int16 `.npy` of the given shape.
pub fn read_npy(path: &Path, shape: [u32; 4], names: &str) -> anyhow::Result<Tensor> {
    let file = crate::npy::Npy::read(path)?;
    let npy = file.file();
    let want: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    if npy.shape() != want.as_slice() {
        bail!(
            "{}: shape {:?}; this layer needs {names} = {want:?}",
            path.display(),
            npy.shape()
        );
    }
    let dtype = npy.dtype();
    let order = npy.order();
    let data: Vec<i16> = npy.into_vec::<i16>().map_err(|e| {
        anyhow!(
            "{}: dtype {}: expected int16 (<i2 or >i2) fixed-point values ({e})",
            path.display(),
            dtype.descr()
        )
    })?;
    let data = crate::npy::row_major(data, &want, order);
    Ok(Tensor {
        dims: shape.map(|d| d as usize),
        data,
    })
}

/// Writes a tensor as an int16 `.npy`.
pub fn write_npy(path: &Path, t: &Tensor) -> anyhow::Result<()> {
    use npyz::WriterBuilder;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    let shape: Vec<u64> = t.dims.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut file)
        .begin_nd()?;
    w.extend(t.data.iter().copied())?;
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod npy_tests {
    use super::*;

    /// A Fortran-ordered `.npy` (first index fastest) reads as the same tensor as the C-ordered
    /// one, value for value.
    #[test]
    fn layers_side_by_side_are_as_many_as_asked_cores_layers_and_memory_allow() {
        // Cores by default, no more than the layers.
        assert_eq!(jobs_for(None, 2, &[10, 10, 10], None), (2, None));
        assert_eq!(jobs_for(Some(8), 2, &[10, 10, 10], Some(1000)), (3, None));
        assert_eq!(jobs_for(None, 4, &[], None).0, 1);
        // The two largest together (70 + 50) are over 100: one at a time, said when asked.
        let (n, why) = jobs_for(Some(2), 2, &[50, 10, 70], Some(100));
        assert_eq!(n, 1);
        assert!(why.unwrap().contains("--jobs 2: 1 layer(s) at a time"));
        assert_eq!(jobs_for(None, 2, &[50, 10, 70], Some(100)), (1, None));
        // Three of four fit (70 + 50 + 10 = 130 <= 130); a layer too large alone still runs
        // alone (its own check refuses it, with its own message).
        assert_eq!(jobs_for(Some(4), 1, &[50, 10, 70, 10], Some(130)).0, 3);
        assert_eq!(jobs_for(Some(2), 1, &[500, 10], Some(100)).0, 1);
    }

    #[test]
    fn a_fortran_ordered_npy_reads_as_the_same_tensor() {
        use npyz::WriterBuilder;
        let dims = [2usize, 3, 4, 5];
        let value =
            |i: usize, j: usize, k: usize, l: usize| (i * 1000 + j * 100 + k * 10 + l) as i16;
        let dir = std::env::temp_dir().join(format!("rowsim-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shape: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        let mut files = Vec::new();
        for order in [npyz::Order::C, npyz::Order::Fortran] {
            // The file's element order: C walks l fastest, Fortran walks i fastest.
            let mut data = Vec::new();
            let [a, b, c, d] = dims;
            match order {
                npyz::Order::C => {
                    for i in 0..a {
                        for j in 0..b {
                            for k in 0..c {
                                for l in 0..d {
                                    data.push(value(i, j, k, l));
                                }
                            }
                        }
                    }
                }
                npyz::Order::Fortran => {
                    for l in 0..d {
                        for k in 0..c {
                            for j in 0..b {
                                for i in 0..a {
                                    data.push(value(i, j, k, l));
                                }
                            }
                        }
                    }
                }
            }
            let path = dir.join(format!("{order:?}.npy"));
            let mut file = std::fs::File::create(&path).unwrap();
            let mut w = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .order(order)
                .writer(&mut file)
                .begin_nd()
                .unwrap();
            w.extend(data).unwrap();
            w.finish().unwrap();
            files.push(path);
        }
        let want = read_npy(&files[0], [2, 3, 4, 5], "x").unwrap();
        let got = read_npy(&files[1], [2, 3, 4, 5], "x").unwrap();
        assert_eq!(want.get([1, 2, 3, 4]), value(1, 2, 3, 4));
        assert_eq!(got.data, want.data);
        // Big-endian (`>i2`, numpy's `astype('>i2')`), and with bytes after the data (numpy
        // ignores them): the same values.
        let be = dir.join("be.npy");
        let mut h = "{'descr': '>i2', 'fortran_order': False, 'shape': (2, 3, 4, 5), }".to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((h.len() as u16).to_le_bytes());
        bytes.extend(h.as_bytes());
        bytes.extend(want.data.iter().flat_map(|v| v.to_be_bytes()));
        bytes.extend([0xAB; 7]);
        std::fs::write(&be, bytes).unwrap();
        assert_eq!(read_npy(&be, [2, 3, 4, 5], "x").unwrap().data, want.data);
        std::fs::remove_dir_all(&dir).ok();
    }
}
