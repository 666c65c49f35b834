//! Running a scheduler from the command line: tracing, the watchdog, and Ctrl-C, with a report of
//! where a run stopped and how far its VCD goes.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use rowsim_kernel::demo::{clock_crossing_pipeline, Consumer, PipelineSpec, Producer};
use rowsim_kernel::{Scheduler, SimError, TraceConfig};

use crate::TraceArgs;

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How many simulations are running (see [`Simulating`]): layers of a `--net` run may run
/// side by side.
static SIMULATING: AtomicUsize = AtomicUsize::new(0);

/// Marks a simulation as running while it lives: Ctrl-C then stops it (and any other running)
/// at a cycle boundary with its trace flushed. Outside one (loading, mapping, making data) Ctrl-C ends the command at
/// once with status 130: nothing is half-written then (statistics are written after each layer).
pub struct Simulating;

impl Simulating {
    pub fn begin() -> Self {
        SIMULATING.fetch_add(1, Ordering::SeqCst);
        Simulating
    }
}

impl Drop for Simulating {
    fn drop(&mut self) {
        SIMULATING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The flag Ctrl-C (SIGINT), SIGTERM and SIGHUP raise; one handler per process, pointed at the
/// current run's flag. Any of them stops a run at a cycle boundary with the trace flushed.
fn ctrl_c_target() -> &'static Mutex<Option<Arc<AtomicBool>>> {
    static TARGET: OnceLock<Mutex<Option<Arc<AtomicBool>>>> = OnceLock::new();
    TARGET.get_or_init(|| {
        // Without a handler Ctrl-C still ends the process, just without the flushed trace.
        if let Err(e) = ctrlc::set_handler(|| {
            if SIMULATING.load(Ordering::SeqCst) == 0 {
                eprintln!("interrupted (no simulation was running)");
                std::process::exit(EXIT_INTERRUPTED as i32);
            }
            if let Some(flag) = ctrl_c_target().lock().ok().and_then(|g| g.clone()) {
                flag.store(true, Ordering::Relaxed);
            }
        }) {
            eprintln!("warning: Ctrl-C will not stop runs cleanly: {e}");
        }
        Mutex::new(None)
    })
}

/// A fresh interrupt flag that Ctrl-C raises (for runs that build their own schedulers).
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    *ctrl_c_target().lock().unwrap_or_else(|p| p.into_inner()) = Some(flag.clone());
    flag
}

/// Runs `sched` to completion with tracing per `trace`. On success returns `Ok(None)`; on a stop
/// (Ctrl-C, deadlock, a component's fault) prints where it stopped and how far the VCD goes, and
/// returns the exit code.
pub fn run(sched: &mut Scheduler, trace: &TraceArgs) -> anyhow::Result<Option<ExitCode>> {
    sched.set_watchdog(trace.watchdog);
    if let Some(vcd) = &trace.vcd {
        if let Some(dir) = vcd.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the trace's folder {}", dir.display()))?;
        }
        sched.trace_to(&TraceConfig {
            vcd: vcd.clone(),
            scopes: trace.globs.clone(),
            window: trace.window.clone(),
        })?;
    }
    *ctrl_c_target().lock().unwrap_or_else(|p| p.into_inner()) = Some(sched.interrupt_flag());
    let simulating = Simulating::begin();
    let outcome = sched.run();
    drop(simulating);
    let summary = sched.finish_trace();
    let trace_note = match &summary {
        Ok(Some(s)) => format!(
            "{} holds {} signals up to t = {} ps ({} changes), open it with `gtkwave {}`",
            s.vcd.display(),
            s.signals,
            s.until,
            s.changes,
            s.gtkw.display()
        ),
        Ok(None) => String::new(),
        Err(e) => format!("the trace could not be completed: {e}"),
    };
    match outcome {
        Ok(_) => {
            summary?;
            if !trace_note.is_empty() {
                eprintln!("trace: {trace_note}");
            }
            Ok(None)
        }
        Err(e) => {
            let code = match e {
                SimError::Interrupted { .. } => ExitCode::from(EXIT_INTERRUPTED),
                _ => ExitCode::FAILURE,
            };
            let at = e
                .cycle()
                .map(|c| format!("stopped at cycle {c}"))
                .unwrap_or_else(|| "stopped".into());
            eprintln!("error: {e}");
            if trace_note.is_empty() {
                eprintln!("{at}");
            } else {
                eprintln!("{at}; {trace_note}");
            }
            Ok(Some(code))
        }
    }
}

pub fn clock_crossing(spec: PipelineSpec, trace: &TraceArgs) -> anyhow::Result<ExitCode> {
    let mut p = clock_crossing_pipeline(spec)?;
    if let Some(code) = run(&mut p.sched, trace)? {
        return Ok(code);
    }
    let c: &Consumer = p.sched.component(p.consumer).context("consumer")?;
    let pr: &Producer = p.sched.component(p.producer).context("producer")?;
    let ok = c.count == spec.words && c.out_of_order == 0;
    println!(
        "{} words crossed from {} MHz to {} MHz in {} core cycles ({:.3} us); producer stalled {} cycles; {}",
        c.count,
        spec.core_hz as f64 / 1e6,
        spec.link_hz as f64 / 1e6,
        p.sched.cycle(),
        p.sched.time() as f64 / 1e6,
        pr.stalls(),
        if ok { "all in order" } else { "WORDS LOST OR REORDERED" }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
