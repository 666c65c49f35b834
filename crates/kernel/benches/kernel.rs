//! Kernel overheads, measured in one run so their ratios can be compared:
//! - idle: 168 components that only return Idle (the per-step cost of the scheduler itself);
//! - ring: 168 components passing tokens around a ring of links (a message per component per
//!   cycle: send, credit, receive);
//! - pipeline: the two-clock demo pipeline, with and without tracing.
//!
//! `cargo bench -p rowsim-kernel` prints component steps and instants per second.

use std::hint::black_box;
use std::time::Instant;

use rowsim_kernel::demo::{clock_crossing_pipeline, PipelineSpec};
use rowsim_kernel::{
    Activity, Component, Cycle, Fault, Link, LinkRx, LinkTx, Scheduler, StepCtx, TraceConfig,
};

struct Idle(String);

impl Component for Idle {
    fn name(&self) -> &str {
        &self.0
    }
    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        black_box(cx.cycle);
        Ok(Activity::Idle)
    }
    fn holds_work(&self) -> bool {
        false
    }
}

struct RingNode {
    name: String,
    rx: LinkRx<u64>,
    tx: LinkTx<u64>,
    held: Option<u64>,
}

impl Component for RingNode {
    fn name(&self) -> &str {
        &self.name
    }
    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        if self.held.is_none() {
            self.held = self.rx.try_recv(cx);
        }
        if let Some(v) = self.held.take() {
            if let Err(v) = self.tx.try_send(cx, v.wrapping_add(1)) {
                self.held = Some(v);
            }
            return Ok(Activity::Moved);
        }
        Ok(Activity::Idle)
    }
    fn holds_work(&self) -> bool {
        true
    }
}

fn report(what: &str, steps: u64, instants: u64, secs: f64) {
    println!(
        "{what:<34} {:>8.1} M component-steps/s {:>8.2} M instants/s  ({:.2} ns/step)",
        steps as f64 / secs / 1e6,
        instants as f64 / secs / 1e6,
        secs * 1e9 / steps as f64
    );
}

fn main() {
    const N: usize = 168;
    const CYCLES: u64 = 200_000;

    let mut s = Scheduler::new();
    let core = s.add_clock("core", 200_000_000).unwrap();
    for i in 0..N {
        s.add(core, Idle(format!("top.idle_{i}")));
    }
    let t = Instant::now();
    s.run_until(Cycle(CYCLES)).unwrap();
    report(
        "idle x168",
        CYCLES * N as u64,
        CYCLES,
        t.elapsed().as_secs_f64(),
    );

    let mut s = Scheduler::new();
    let core = s.add_clock("core", 200_000_000).unwrap();
    let links: Vec<Link<u64>> = (0..N)
        .map(|i| Link::new(&format!("ring_{i}"), core, 1, 2).unwrap())
        .collect();
    let (mut txs, mut rxs): (Vec<_>, Vec<_>) = links.into_iter().map(|l| (l.tx, l.rx)).unzip();
    rxs.rotate_left(1);
    for (i, (tx, rx)) in txs.drain(..).zip(rxs.drain(..)).enumerate() {
        s.add(
            core,
            RingNode {
                name: format!("top.n{i}"),
                rx,
                tx,
                held: Some(i as u64),
            },
        );
    }
    s.set_watchdog(u64::MAX);
    let t = Instant::now();
    s.run_until(Cycle(CYCLES / 4)).unwrap();
    report(
        "ring x168 (1 msg/component/cycle)",
        CYCLES / 4 * N as u64,
        CYCLES / 4,
        t.elapsed().as_secs_f64(),
    );

    for traced in [false, true] {
        let mut p = clock_crossing_pipeline(PipelineSpec {
            words: 200_000,
            ..Default::default()
        })
        .unwrap();
        let dir = std::env::temp_dir().join("rowsim-bench");
        std::fs::create_dir_all(&dir).unwrap();
        if traced {
            p.sched
                .trace_to(&TraceConfig {
                    vcd: dir.join("bench.vcd"),
                    ..Default::default()
                })
                .unwrap();
        }
        let t = Instant::now();
        p.sched.run().unwrap();
        p.sched.finish_trace().unwrap();
        let secs = t.elapsed().as_secs_f64();
        // 2 components per clock; count the steps actually taken.
        let core_cycles = p.sched.cycle();
        let steps = 2 * core_cycles + 2 * (core_cycles * 3 / 10);
        report(
            if traced {
                "pipeline, traced"
            } else {
                "pipeline, untraced"
            },
            steps,
            p.sched.instants(),
            secs,
        );
    }
}
