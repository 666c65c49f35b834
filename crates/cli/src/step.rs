//! `rowsim step`: an interactive session on one layer, cycle by cycle.
//!
//! Every signal of the chip is probed (read in memory at every instant) so `print` shows what a
//! VCD of the same run holds at the same time; signal names are the VCD paths. Commands come from
//! a terminal (line editing and history) or from a pipe (one a line, `#` starts a comment), so
//! scripts and tests can drive a session. See `help` for the commands.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rowsim_chip::{LayerSim, RunOptions};
use rowsim_kernel::{SignalInfo, TraceConfig};
use rowsim_workload::Formats;

use crate::drive::ctrl_c_flag;
use crate::run::{LayerArgs, Prepared};

#[derive(Args, Debug)]
pub struct StepArgs {
    #[command(flatten)]
    pub layer: LayerArgs,
    /// Stop with a deadlock report when nothing has moved for this many cycles (at least 1).
    #[arg(long, default_value_t = 100_000, value_parser = crate::parse_watchdog)]
    pub watchdog: u64,
}

const HELP: &str = "\
commands (signal names are VCD paths; a GLOB's `*` crosses dots):
  step [N]                     run N core cycles (default 1)
  run                          run to the end of the layer
  run until <CYCLE>            run until core cycle CYCLE has completed
  run until <SIG> == <V>       run until a signal equals V (also !=, <, >, <=, >=)
  continue | c                 run until a breakpoint or the end
  break <SIG> <OP> <V>         stop `continue` (and `step`, `run`) when the condition holds
  break cycle <N>              stop once core cycle N has completed
  break                        list breakpoints;  delete [K]  removes one or all
  watch <SIG|GLOB>             report every change of these signals while running
  unwatch [SIG|GLOB]           stop watching them (all without an argument)
  print[/FMT] <SIG|GLOB>       current values; FMT: x hex, d signed, u unsigned, b binary,
                               qF fixed point with F fraction bits; default: hex, signed and,
                               for 16-bit words, the Q format of the data (Q1.15 weights, Q8.8
                               ifmaps and psums)
  signals [GLOB]               list signals and widths
  state <COMPONENT|GLOB>       a component's internal state (a PE's spads, FIFOs, control)
  components [GLOB]            list components
  info                         cycle, time, loads, readouts and passes done
  vcd start <FILE> [GLOB...]   write a VCD (and .gtkw) from now on, of the signals GLOBs select
  vcd stop                     end and flush it
  help | quit
values: 123, -5, 0x7b, 0b1011 (negative values are two's complement at the signal's width;
comparisons are on the raw bits, unsigned)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Clone, Debug)]
enum Cond {
    Cycle(u64),
    Signal { path: String, op: Op, value: u64 },
}

impl std::fmt::Display for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cond::Cycle(c) => write!(f, "cycle {c}"),
            Cond::Signal { path, op, value } => {
                let o = match op {
                    Op::Eq => "==",
                    Op::Ne => "!=",
                    Op::Lt => "<",
                    Op::Gt => ">",
                    Op::Le => "<=",
                    Op::Ge => ">=",
                };
                write!(f, "{path} {o} {value:#x}")
            }
        }
    }
}

struct Session {
    sim: LayerSim,
    layer: String,
    breaks: Vec<Cond>,
    /// Watched signals and their last reported values.
    watches: Vec<(String, u64)>,
    vcd: Option<PathBuf>,
    /// Set when the layer finished or a run failed: nothing more can be stepped.
    over: bool,
    reference: rowsim_workload::Tensor,
}

pub fn run(a: &StepArgs) -> anyhow::Result<ExitCode> {
    let hw = rowsim_config::load_spec(&a.layer.hw).map_err(|e| anyhow!("{e}"))?;
    let (mut layers, pinned) = a.layer.layers(None)?;
    let Prepared {
        layer,
        mapping,
        ifmap,
        weights,
    } = a.layer.prepare(&hw, layers.remove(0), pinned)?;
    let fmt = Formats::DEFAULT;
    let opts = RunOptions {
        mac: fmt.mac(),
        watchdog: a.watchdog,
        ..Default::default()
    };
    let (reference, _) =
        rowsim_workload::reference_conv(&layer, &ifmap, &weights, opts.mac, hw.datapath.relu)
            .map_err(|e| anyhow!(e))?;
    let mut sim = LayerSim::new(&hw, &layer, &mapping, &ifmap, &weights, &opts)
        .map_err(|e| anyhow!("{}: {e}", layer.name))?;
    sim.scheduler_mut().probe()?;
    let interactive = std::io::stdin().is_terminal();
    let mut s = Session {
        sim,
        layer: layer.name.clone(),
        breaks: Vec::new(),
        watches: Vec::new(),
        vcd: None,
        over: false,
        reference,
    };
    println!(
        "{} with {mapping} on {}: {} phases, {} passes; `help` lists the commands",
        layer.name,
        hw.machine.name,
        s.sim.phases().len(),
        s.sim.progress().passes
    );
    let mut errors = 0;
    if interactive {
        let mut ed = rustyline::DefaultEditor::new()?;
        loop {
            match ed.readline("(rowsim) ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = ed.add_history_entry(line.as_str());
                    }
                    match s.command(&line) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => println!("error: {e:#}"),
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => break,
            }
        }
    } else {
        for (n, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.context("reading commands from stdin")?;
            match s.command(&line) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    errors += 1;
                    println!("error: line {}: `{}`: {e:#}", n + 1, line.trim());
                }
            }
            std::io::stdout().flush()?;
        }
    }
    s.stop_vcd()?;
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Parses a value for a signal of `width` bits: decimal (negative: two's complement), 0x, 0b.
fn parse_value(s: &str, width: u32) -> anyhow::Result<u64> {
    let t = s.replace('_', "");
    let v = if let Some(h) = t.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(b) = t.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if let Some(n) = t.strip_prefix('-') {
        n.parse::<u64>().ok().map(|n| n.wrapping_neg())
    } else {
        t.parse::<u64>().ok()
    }
    .ok_or_else(|| anyhow!("`{s}` is not a value (123, -5, 0x7b, 0b1011)"))?;
    let mask = if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    if !t.starts_with('-') && v & !mask != 0 {
        bail!("{s} does not fit the signal's {width} bits");
    }
    Ok(v & mask)
}

fn signed(v: u64, width: u32) -> i64 {
    if width >= 64 {
        v as i64
    } else {
        let shift = 64 - width;
        ((v << shift) as i64) >> shift
    }
}

/// The Q format a 16-bit word signal carries: weights Q1.15, ifmaps and psums Q8.8.
fn default_frac(path: &str, width: u32) -> Option<u32> {
    if width != 16 {
        return None;
    }
    let f = Formats::DEFAULT;
    let name = path.rsplit('.').next().unwrap_or(path);
    let data = name.contains("data") || name.starts_with("mac_");
    if !data || path.contains(".dram.") || path.contains(".glb.") {
        return None;
    }
    // The multiplier's operands: `mac_a` is the weight (Q1.15), `mac_b` the ifmap value (Q8.8).
    Some(if name.starts_with("filter") || name == "mac_a" {
        f.weight_frac
    } else if name.starts_with("ifmap") || name == "mac_b" {
        f.ifmap_frac
    } else {
        f.psum_frac
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fmt {
    Default,
    Hex,
    Signed,
    Unsigned,
    Binary,
    Fixed(u32),
}

fn show(s: &SignalInfo, fmt: Fmt) -> String {
    let digits = s.width.div_ceil(4) as usize;
    let hex = format!("0x{:0digits$x}", s.value);
    let fixed = |frac: u32| {
        let v = signed(s.value, s.width) as f64 / 2f64.powi(frac as i32);
        format!("Q{}.{frac} {v}", s.width - frac)
    };
    let name = if s.width > 1 {
        format!("{}[{}:0]", s.path, s.width - 1)
    } else {
        s.path.clone()
    };
    let v = match fmt {
        Fmt::Hex => hex,
        Fmt::Signed => signed(s.value, s.width).to_string(),
        Fmt::Unsigned => s.value.to_string(),
        Fmt::Binary => format!("0b{:0w$b}", s.value, w = s.width as usize),
        Fmt::Fixed(f) => fixed(f), // at most the width: `print` refuses more
        Fmt::Default if s.width == 1 => s.value.to_string(),
        // Data words in signed decimal and their Q value; counters, states and addresses
        // unsigned.
        Fmt::Default => match default_frac(&s.path, s.width) {
            Some(f) => format!("{hex} {} ({})", signed(s.value, s.width), fixed(f)),
            None => format!("{hex} {}", s.value),
        },
    };
    format!("{name} = {v}")
}

impl Session {
    fn status(&self) -> String {
        let sched = self.sim.scheduler();
        let p = self.sim.progress();
        let c = self.sim.status();
        let phase = if self.sim.done() {
            "layer done".to_string()
        } else {
            format!(
                "loads {}/{}, readouts {}/{}",
                c.loads_done, c.loads, c.readouts_done, c.readouts
            )
        };
        format!(
            "cycle {} (t = {} ps), {phase}, passes {}/{}",
            sched.cycle(),
            sched.time(),
            p.passes_done,
            p.passes
        )
    }

    fn signals(&self, glob: &str) -> anyhow::Result<Vec<SignalInfo>> {
        let sched = self.sim.scheduler();
        if let Some(s) = sched.signal(glob) {
            return Ok(vec![s]);
        }
        let found = sched.signals(glob)?;
        if found.is_empty() {
            bail!("no signal matches `{glob}` (try `signals {glob}*`)");
        }
        Ok(found)
    }

    fn one_signal(&self, path: &str) -> anyhow::Result<SignalInfo> {
        self.sim.scheduler().signal(path).ok_or_else(|| {
            anyhow!("no signal `{path}` (signal names are VCD paths; `signals GLOB` lists them)")
        })
    }

    fn parse_cond(&self, words: &[&str]) -> anyhow::Result<Cond> {
        match words {
            ["cycle", n] => Ok(Cond::Cycle(parse_value(n, 64)?)),
            [n] => {
                Ok(Cond::Cycle(parse_value(n, 64).map_err(|_| {
                    anyhow!("expected a cycle or `<SIG> == <V>`")
                })?))
            }
            [sig, op, v] => {
                let info = self.one_signal(sig)?;
                let op = match *op {
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    ">" => Op::Gt,
                    "<=" => Op::Le,
                    ">=" => Op::Ge,
                    o => bail!("`{o}` is not a comparison (==, !=, <, >, <=, >=)"),
                };
                Ok(Cond::Signal {
                    path: info.path,
                    op,
                    value: parse_value(v, info.width)?,
                })
            }
            _ => bail!("expected `cycle <N>`, `<N>` or `<SIG> <OP> <V>`"),
        }
    }

    fn holds(&self, c: &Cond) -> bool {
        let sched = self.sim.scheduler();
        match c {
            Cond::Cycle(n) => sched.cycle() >= *n,
            Cond::Signal { path, op, value } => {
                let Some(a) = sched.signal_value(path) else {
                    return false;
                };
                let b = *value;
                match op {
                    Op::Eq => a == b,
                    Op::Ne => a != b,
                    Op::Lt => a < b,
                    Op::Gt => a > b,
                    Op::Le => a <= b,
                    Op::Ge => a >= b,
                }
            }
        }
    }

    /// Runs core cycles until `until` holds, a breakpoint holds, `max` cycles ran, the layer
    /// ends, a run fails, or Ctrl-C. Always runs at least one cycle.
    fn go(&mut self, max: Option<u64>, until: Option<Cond>) -> anyhow::Result<()> {
        if self.over {
            bail!("the layer is over; nothing more to run ({})", self.status());
        }
        let flag = ctrl_c_flag();
        let _simulating = crate::drive::Simulating::begin();
        let start = self.sim.scheduler().cycle();
        let why = loop {
            match self.sim.step_cycle() {
                Ok(true) => {}
                Ok(false) => break self.finished(),
                Err(e) => {
                    self.over = true;
                    let flushed = match &self.vcd {
                        Some(v) => format!("; {} is flushed up to this cycle", v.display()),
                        None => String::new(),
                    };
                    break format!("stopped: {}: {e}{flushed}", self.layer);
                }
            }
            self.report_watches();
            let sched = self.sim.scheduler();
            if self.sim.done() {
                break self.finished();
            }
            if let Some(c) = &until {
                if self.holds(c) {
                    break format!("reached {c}");
                }
            }
            if let Some(k) = self.breaks.iter().position(|b| self.holds(b)) {
                break format!("hit breakpoint {}: {}", k + 1, self.breaks[k]);
            }
            if max.is_some_and(|m| sched.cycle() - start >= m) {
                break String::new();
            }
            if flag.load(Ordering::Relaxed) {
                break "interrupted".to_string();
            }
        };
        if !why.is_empty() {
            println!("{why}");
        }
        println!("{}", self.status());
        Ok(())
    }

    fn finished(&mut self) -> String {
        self.over = true;
        // The VCD ends with the layer: report it before the run is collected.
        if let Err(e) = self.stop_vcd() {
            println!("error: {e:#}");
        }
        match self.sim.finish() {
            Ok(run) => {
                let verdict = if run.ofmap == self.reference {
                    "the ofmap equals the reference convolution bit for bit"
                } else {
                    "the ofmap DIFFERS from the reference convolution"
                };
                format!(
                    "{} done in {} core cycles, {} passes: {verdict}",
                    self.layer, run.core_cycles, run.counts.passes
                )
            }
            Err(e) => format!("{}: {e}", self.layer),
        }
    }

    fn report_watches(&mut self) {
        if self.watches.is_empty() {
            return;
        }
        let sched = self.sim.scheduler();
        let (cycle, t) = (sched.cycle(), sched.time());
        for (path, last) in &mut self.watches {
            if sched.signal_value(path).is_some_and(|v| v != *last) {
                if let Some(s) = sched.signal(path) {
                    println!("cycle {cycle} (t = {t} ps): {}", show(&s, Fmt::Default));
                    *last = s.value;
                }
            }
        }
    }

    fn stop_vcd(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.sim.finish_trace()? {
            println!(
                "{}: {} signals, {} changes, up to t = {} ps (cycle {})",
                s.vcd.display(),
                s.signals,
                s.changes,
                s.until,
                self.sim.scheduler().cycle()
            );
        }
        self.vcd = None;
        Ok(())
    }

    /// Runs one command line. Returns false on `quit`.
    fn command(&mut self, line: &str) -> anyhow::Result<bool> {
        let line = line.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            return Ok(true);
        };
        let (cmd, suffix) = cmd.split_once('/').unwrap_or((cmd, ""));
        match (cmd, args) {
            ("quit" | "exit" | "q", _) => return Ok(false),
            ("help" | "h", _) => println!("{HELP}"),
            ("step" | "s", []) => self.go(Some(1), None)?,
            ("step" | "s", [n]) => {
                let count = n.replace('_', "").parse::<u64>().map_err(|_| {
                    anyhow!("step `{n}`: a number of cycles is a whole number from 1")
                })?;
                if count == 0 {
                    bail!("step 0 does nothing");
                }
                self.go(Some(count), None)?
            }
            ("run", []) => self.go(None, None)?,
            ("run", ["until", rest @ ..]) => {
                let c = self.parse_cond(rest)?;
                if let Cond::Cycle(n) = c {
                    if n <= self.sim.scheduler().cycle() {
                        bail!(
                            "cycle {n} has passed (now {})",
                            self.sim.scheduler().cycle()
                        );
                    }
                }
                self.go(None, Some(c))?
            }
            ("continue" | "c", []) => self.go(None, None)?,
            ("break" | "b", []) => {
                if self.breaks.is_empty() {
                    println!("no breakpoints");
                }
                for (k, b) in self.breaks.iter().enumerate() {
                    println!("{}: {b}", k + 1);
                }
            }
            ("break" | "b", rest) => {
                let c = self.parse_cond(rest)?;
                println!("breakpoint {}: {c}", self.breaks.len() + 1);
                self.breaks.push(c);
            }
            ("delete" | "d", []) => self.breaks.clear(),
            ("delete" | "d", [k]) => {
                let k = parse_value(k, 64)? as usize;
                if k == 0 || k > self.breaks.len() {
                    bail!("no breakpoint {k} ({} set)", self.breaks.len());
                }
                self.breaks.remove(k - 1);
            }
            ("watch" | "w", [glob]) => {
                for s in self.signals(glob)? {
                    println!("watching {}", show(&s, Fmt::Default));
                    if !self.watches.iter().any(|w| w.0 == s.path) {
                        self.watches.push((s.path, s.value));
                    }
                }
            }
            ("unwatch", []) => self.watches.clear(),
            ("unwatch", [glob]) => {
                let gone: Vec<String> = self.signals(glob)?.into_iter().map(|s| s.path).collect();
                self.watches.retain(|w| !gone.contains(&w.0));
            }
            ("print" | "p", [glob]) => {
                let fmt = match suffix {
                    "" => Fmt::Default,
                    "x" => Fmt::Hex,
                    "d" => Fmt::Signed,
                    "u" => Fmt::Unsigned,
                    "b" => Fmt::Binary,
                    q if q.starts_with('q') => Fmt::Fixed(
                        q[1..]
                            .parse()
                            .map_err(|_| anyhow!("`/{q}`: expected q<fraction bits>, e.g. /q8"))?,
                    ),
                    f => bail!("`/{f}` is not a format (x, d, u, b, qF)"),
                };
                let found = self.signals(glob)?;
                if let Fmt::Fixed(f) = fmt {
                    if let Some(s) = found.iter().find(|s| f > s.width) {
                        bail!(
                            "`/q{f}`: {} has {} bits, so at most {} fraction bits",
                            s.path,
                            s.width,
                            s.width
                        );
                    }
                }
                let sched = self.sim.scheduler();
                println!("cycle {} (t = {} ps):", sched.cycle(), sched.time());
                for s in found {
                    println!("  {}", show(&s, fmt));
                }
            }
            ("signals", rest) => {
                let glob = rest.first().copied().unwrap_or("*");
                for s in self.signals(glob)? {
                    println!(
                        "{} ({} bit{})",
                        s.path,
                        s.width,
                        if s.width > 1 { "s" } else { "" }
                    );
                }
            }
            ("state", [name]) => {
                let sched = self.sim.scheduler();
                let ids: Vec<_> = match sched.find(name) {
                    Some(id) => vec![id],
                    None => {
                        let m = globset::Glob::new(name)?.compile_matcher();
                        sched
                            .component_names()
                            .iter()
                            .enumerate()
                            .filter(|(_, n)| m.is_match(n))
                            .map(|(i, _)| rowsim_kernel::ComponentId(i))
                            .collect()
                    }
                };
                if ids.is_empty() {
                    bail!("no component `{name}` (`components` lists them)");
                }
                println!("cycle {} (t = {} ps):", sched.cycle(), sched.time());
                for id in ids {
                    match sched.state_of(id) {
                        Some(st) => print!("{st}"),
                        None => println!(
                            "{}: no internal state to show (its signals: `print {}.*`)",
                            sched.component_names()[id.0],
                            sched.component_names()[id.0]
                        ),
                    }
                }
            }
            ("components", rest) => {
                let m = globset::Glob::new(rest.first().copied().unwrap_or("*"))?.compile_matcher();
                for n in self.sim.scheduler().component_names() {
                    if m.is_match(n) {
                        println!("{n}");
                    }
                }
            }
            ("info", []) => println!("{}", self.status()),
            ("vcd", ["start", file, globs @ ..]) => {
                if self.vcd.is_some() {
                    bail!("a VCD is being written; `vcd stop` first");
                }
                let path = PathBuf::from(file);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                self.sim.scheduler_mut().trace_to(&TraceConfig {
                    vcd: path.clone(),
                    scopes: globs.iter().map(|g| g.to_string()).collect(),
                    window: None,
                })?;
                println!(
                    "writing {} (and {}) from cycle {}",
                    path.display(),
                    path.with_extension("gtkw").display(),
                    self.sim.scheduler().cycle()
                );
                self.vcd = Some(path);
            }
            ("vcd", ["stop"]) => {
                if self.vcd.is_none() {
                    bail!("no VCD is being written");
                }
                self.stop_vcd()?;
            }
            _ => bail!("unknown command or arguments: `{line}` (`help` lists the commands)"),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod q_format_tests {
    use super::default_frac;

    /// The PE's multiplier takes the weight as `mac_a` and the ifmap value as `mac_b`
    /// (`Pe::mul_stage`): each is shown in its own Q format.
    #[test]
    fn mac_operands_print_in_their_own_formats() {
        let f = rowsim_workload::Formats::DEFAULT;
        let pe = "top.chip.pe_array.pe_r0_c0";
        assert_eq!(
            default_frac(&format!("{pe}.mac_a"), 16),
            Some(f.weight_frac)
        );
        assert_eq!(default_frac(&format!("{pe}.mac_b"), 16), Some(f.ifmap_frac));
        assert_eq!(
            default_frac(&format!("{pe}.mac_product"), 16),
            Some(f.psum_frac)
        );
        assert_eq!(
            default_frac(&format!("{pe}.filter_spad_rd_data"), 16),
            Some(f.weight_frac)
        );
        assert_eq!(
            default_frac(&format!("{pe}.ifmap_spad_wr_data"), 16),
            Some(f.ifmap_frac)
        );
    }
}
