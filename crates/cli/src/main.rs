//! `rowsim`: the command-line front end.

mod compare;
mod console;
mod drive;
mod map;
mod model;
mod node_report;
mod npy;
mod progress;
mod prune;
mod report;
mod run;
mod slurm;
mod step;
mod sweep;

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rowsim",
    version,
    about = "Cycle-accurate, bit-accurate emulator of Eyeriss-style spatial DNN accelerators"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hardware configurations.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Runs a layer (or a network's CONV and FC layers, or an ONNX model over images) on the
    /// emulated chip, checks it bit for bit against the reference, and reports cycles,
    /// accesses, energy (and a model's accuracy).
    Run(Box<run::RunArgs>),
    /// An interactive session on a layer: step cycles, print signals, break on values, look
    /// inside PEs, start and stop VCDs. Reads commands from a terminal or a pipe.
    Step(step::StepArgs),
    /// Statistics files as a table and SVG charts (energy by level and data type, cycles).
    Report(report::ReportArgs),
    /// A grid of config variations x layers, in parallel, sharded over a cluster (JSON lines).
    Sweep(sweep::SweepArgs),
    /// Joins sweep shards into one file, refusing missing or duplicated points.
    Merge(sweep::MergeArgs),
    /// The mapping of a layer (for the machine's dataflow): PEs, passes, accesses per level and data type,
    /// and energy.
    Map(map::MapArgs),
    /// Dataflows side by side (RS, WS, OSA, OSB, OSC, NLR) on equal-area machines, as in the
    /// ISCA 2016 comparison: energy per MAC by level and data type, DRAM accesses, cycles.
    Compare(compare::CompareArgs),
    /// Writes a pruned copy of an ONNX model (magnitude, or energy-aware priced by the
    /// machine's energy model), with each layer's density, energy before and after, and the
    /// accuracy after.
    Prune(prune::PruneArgs),
    /// Small simulations that show the kernel at work.
    #[command(subcommand)]
    Demo(DemoCmd),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validates a hardware config and prints the machine it describes.
    Check {
        /// The config file (e.g. hw-configs/eyeriss-v1.toml), or a built-in machine by name.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DemoCmd {
    /// A producer on the core clock streams words through a link with backpressure and an async
    /// FIFO to a consumer on the link clock.
    ClockCrossing {
        /// Words to stream.
        #[arg(long, default_value_t = 1000)]
        words: u64,
        #[arg(long, default_value_t = 200_000_000)]
        core_hz: u64,
        #[arg(long, default_value_t = 60_000_000)]
        link_hz: u64,
        /// Depth of the async FIFO.
        #[arg(long, default_value_t = 4)]
        fifo_depth: u32,
        /// The consumer takes a word every this many link cycles.
        #[arg(long, default_value_t = 2)]
        accept_every: u64,
        #[command(flatten)]
        trace: TraceArgs,
    },
}

/// Tracing options, shared by every command that simulates.
#[derive(Args, Clone, Debug)]
pub struct TraceArgs {
    /// Write a VCD here (and a GTKWave save file beside it, .gtkw). A path ending in .fst is
    /// written as FST (compressed; GTKWave opens it with the same save file).
    #[arg(long)]
    pub vcd: Option<PathBuf>,
    /// Write the trace as FST: the --vcd path with the extension .fst.
    #[arg(long, requires = "vcd")]
    pub fst: bool,
    /// Trace only scopes matching this glob (repeatable), e.g. 'top.chip.pe_array.pe_r0_*'.
    #[arg(long = "trace", value_name = "GLOB", requires = "vcd")]
    pub globs: Vec<String>,
    /// Trace only primary-clock cycles A..B (B exclusive).
    #[arg(long, value_name = "A..B", value_parser = parse_window, requires = "vcd")]
    pub window: Option<Range<u64>>,
    /// Stop with a deadlock report when nothing has moved for this many cycles (at least 1).
    #[arg(long, default_value_t = rowsim_kernel::DEFAULT_WATCHDOG_CYCLES, value_parser = parse_watchdog)]
    pub watchdog: u64,
}

/// A watchdog of at least one cycle (0 would stop every run at its first idle cycle).
pub fn parse_watchdog(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of cycles"))?;
    if n == 0 {
        return Err(
            "0: the watchdog counts the cycles in which nothing moved before it stops a run; it needs at least 1".into(),
        );
    }
    Ok(n)
}

fn parse_window(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: expected A..B, e.g. 1000..2000"))?;
    let num = |x: &str| {
        x.trim()
            .replace('_', "")
            .parse::<u64>()
            .map_err(|_| format!("`{x}` in `{s}` is not a cycle number"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if b <= a {
        return Err(format!("`{s}`: the end must be after the start"));
    }
    Ok(a..b)
}

impl TraceArgs {
    /// `--fst`: the trace file is the `--vcd` path with the extension `.fst`.
    fn resolve(&mut self) {
        if self.fst {
            self.vcd = self.vcd.take().map(|p| p.with_extension("fst"));
        }
    }
}

fn main() -> ExitCode {
    // A closed stdout (`rowsim map | head -1`) ends the command quietly, as for any Unix tool:
    // the default action of SIGPIPE, which the Rust runtime replaces with "ignore" (and then
    // every print to the closed pipe would panic).
    #[cfg(unix)]
    // SAFETY: the first thing main does, before any other thread exists; `signal` with SIG_DFL
    // installs no handler code, it only restores the kernel's default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A tensor, DRAM image or trace buffer of a megabyte or more is mapped on its own and given
    // back to the system when freed. By default glibc raises that threshold to the largest
    // block freed so far (up to 32 MB), after which such blocks come from the heaps of the
    // threads that run layers side by side, whose freed space stays resident: a network's
    // layers then leave their peak behind them (`rowsim run --net vgg16 --batch 3`: 304 MB
    // resident at its peak with glibc's default, 203 MB with this).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: before any other thread exists and before any allocation this setting could
    // affect; `mallopt` only sets a parameter of the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    // A full disk (or any other write error) on stdout: a clear error and status 1, not a panic
    // and its backtrace (`print!` panics when stdout cannot be written).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = msg.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: cannot write to standard output: {why}");
            std::process::exit(1);
        }
        default_hook(info);
    }));
    let mut cli = Cli::parse();
    match &mut cli.command {
        Command::Run(args) => args.trace.resolve(),
        Command::Demo(DemoCmd::ClockCrossing { trace, .. }) => trace.resolve(),
        _ => {}
    }
    let result = match cli.command {
        Command::Config(ConfigCmd::Check { file }) => config_check(&file),
        Command::Map(args) => map::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Prune(args) => prune::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Step(args) => step::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Merge(args) => sweep::merge(&args),
        Command::Demo(DemoCmd::ClockCrossing {
            words,
            core_hz,
            link_hz,
            fifo_depth,
            accept_every,
            trace,
        }) => drive::clock_crossing(
            rowsim_kernel::demo::PipelineSpec {
                core_hz,
                link_hz,
                words,
                fifo_depth,
                sync_stages: 2,
                accept_every,
            },
            &trace,
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_check(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    match rowsim_config::load_spec(file) {
        Ok(hw) => {
            println!("{}: ok", file.display());
            print!("{}", hw.describe());
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
