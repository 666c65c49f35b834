//! The kernel's contract, end to end: order independence, exact clock interleaving, backpressure,
//! the watchdog, and traces read back by an independent reader.

use std::path::{Path, PathBuf};
use std::process::Command;

use rowsim_kernel::demo::{clock_crossing_pipeline, word, Consumer, PipelineSpec, Producer};
use rowsim_kernel::{
    Activity, Component, Cycle, Fault, Link, LinkRx, LinkTx, RunOutcome, Scheduler, SimError,
    StepCtx, StepOrder, TraceConfig,
};
use rowsim_tests::waves;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

struct Outcome {
    vcd: Vec<u8>,
    gtkw: String,
    received: Vec<(u64, u16)>,
    stalls: u64,
    cycles: u64,
    time: u64,
}

fn run_pipeline(spec: PipelineSpec, order: StepOrder, vcd: &Path) -> Outcome {
    let mut p = clock_crossing_pipeline(spec).unwrap();
    p.sched.set_order(order);
    p.sched
        .trace_to(&TraceConfig {
            vcd: vcd.to_path_buf(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p.sched.run().unwrap(), RunOutcome::Quiescent);
    p.sched.finish_trace().unwrap();
    let consumer: &Consumer = p.sched.component(p.consumer).unwrap();
    let producer: &Producer = p.sched.component(p.producer).unwrap();
    Outcome {
        vcd: std::fs::read(vcd).unwrap(),
        gtkw: std::fs::read_to_string(vcd.with_extension("gtkw")).unwrap(),
        received: consumer.received.clone(),
        stalls: producer.stalls(),
        cycles: p.sched.cycle(),
        time: p.sched.time(),
    }
}

#[test]
fn shuffled_step_orders_give_byte_identical_traces_and_results() {
    let spec = PipelineSpec::default();
    let reference = run_pipeline(spec, StepOrder::Registration, &scratch("order_ref.vcd"));
    assert_eq!(reference.received.len() as u64, spec.words);
    for seed in 0..64 {
        let path = scratch(&format!("order_{seed}.vcd"));
        let got = run_pipeline(spec, StepOrder::Shuffled(seed), &path);
        assert!(
            got.vcd == reference.vcd,
            "seed {seed}: VCD differs from registration order"
        );
        assert_eq!(got.received, reference.received, "seed {seed}");
        assert_eq!(got.stalls, reference.stalls, "seed {seed}");
        assert_eq!(
            (got.cycles, got.time),
            (reference.cycles, reference.time),
            "seed {seed}"
        );
        assert_eq!(
            got.gtkw.replace(&format!("order_{seed}"), "order_ref"),
            reference.gtkw
        );
    }
}

#[test]
fn pipeline_timing_matches_the_hand_schedule() {
    // core 200 MHz (edges at 5 ns), link 60 MHz (edges at 16.666, 33.333, 50 ns, ...).
    // Word 0: sent at core cycle 0, ready at the FIFO write port at core cycle 2 (t = 15 ns),
    // written then; the read pointer sees it at the 2nd link edge after 15 ns: link cycle 1
    // (t = 33.333 ns); the read port forwards it, ready at the consumer at link cycle 2, which
    // takes a word at even link cycles. The producer is 6.7x faster than the consumer drains, so
    // from then on a word is always waiting: word k arrives at link cycle 2(k+1).
    let spec = PipelineSpec::default();
    let out = run_pipeline(spec, StepOrder::Registration, &scratch("timing.vcd"));
    let expected: Vec<(u64, u16)> = (0..spec.words).map(|k| (2 * (k + 1), word(k))).collect();
    assert_eq!(out.received, expected);
    // Backpressure reached the producer: the links and FIFO hold at most 2 + 4 + 2 = 8 words,
    // so the last word cannot leave the producer before the consumer has taken word 24-9 = 15.
    assert!(out.stalls > 0);
    let w = waves::read(&scratch("timing.vcd")).unwrap();
    let last_send = w.signals["top.core.producer.valid"]
        .iter()
        .rfind(|c| c.1 == 1)
        .unwrap()
        .0;
    let link_edge = |c: u64| ((c + 1) * 1_000_000_000_000) / 60_000_000;
    assert!(last_send >= link_edge(out.received[15].0), "{last_send}");
    // Each producer cycle until the last send either sent a word or stalled.
    assert_eq!(out.stalls + spec.words, last_send / 5_000);
    // The run ends when the last word is taken: link cycle 48 ends at 49 * 16,666.67 ps; the
    // core cycles completed by then are floor(t / 5 ns).
    let t_last = (49u64 * 1_000_000_000_000) / 60_000_000;
    assert_eq!(out.time, t_last);
    assert_eq!(out.cycles, t_last / 5_000);
}

#[test]
fn nothing_is_lost_or_duplicated_under_any_ratio_or_depth() {
    for (core, link, depth, stages, every) in [
        (200_000_000u64, 60_000_000u64, 4u32, 2u32, 1u64),
        (60_000_000, 200_000_000, 2, 2, 3),
        (100_000_000, 100_000_000, 1, 1, 1),
        (250_000_000, 90_000_000, 8, 3, 5),
        (123_456_789, 98_765_432, 3, 2, 2),
    ] {
        let spec = PipelineSpec {
            core_hz: core,
            link_hz: link,
            words: 200,
            fifo_depth: depth,
            sync_stages: stages,
            accept_every: every,
        };
        let mut p = clock_crossing_pipeline(spec).unwrap();
        p.sched.run().unwrap();
        let c: &Consumer = p.sched.component(p.consumer).unwrap();
        let words: Vec<u16> = c.received.iter().map(|r| r.1).collect();
        assert_eq!(words, (0..200).map(word).collect::<Vec<_>>(), "{spec:?}");
        assert!(
            c.received.windows(2).all(|w| w[0].0 < w[1].0),
            "one word per take"
        );
    }
}

/// Waits for a token from its peer before passing its own on: two of them deadlock.
struct Polite {
    name: String,
    rx: LinkRx<u8>,
    /// Never used: the token is only ever owed.
    _tx: LinkTx<u8>,
    has_token: bool,
}

impl Component for Polite {
    fn name(&self) -> &str {
        &self.name
    }
    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        if self.rx.try_recv(cx).is_some() {
            self.has_token = true;
            return Ok(Activity::Moved);
        }
        Ok(Activity::Idle)
    }
    fn holds_work(&self) -> bool {
        // It still owes its peer a token, but only sends after receiving one.
        !self.has_token
    }
}

#[test]
fn watchdog_names_both_components_of_a_deadlock() {
    let mut s = Scheduler::new();
    let core = s.add_clock("core", 200_000_000).unwrap();
    let ab = Link::new("a_to_b", core, 1, 1).unwrap();
    let ba = Link::new("b_to_a", core, 1, 1).unwrap();
    s.add(
        core,
        Polite {
            name: "top.a".into(),
            rx: ba.rx,
            _tx: ab.tx,
            has_token: false,
        },
    );
    s.add(
        core,
        Polite {
            name: "top.b".into(),
            rx: ab.rx,
            _tx: ba.tx,
            has_token: false,
        },
    );
    s.set_watchdog(500);
    match s.run() {
        Err(SimError::Deadlock {
            holding,
            idle_cycles,
            cycle,
            ..
        }) => {
            assert_eq!(holding, vec!["top.a".to_string(), "top.b".to_string()]);
            assert_eq!(idle_cycles, 500);
            assert_eq!(cycle, 500);
        }
        other => panic!("expected a deadlock, got {other:?}"),
    }
    let msg = s.run().unwrap_err().to_string();
    assert!(msg.contains("top.a") && msg.contains("top.b"), "{msg}");
}

#[test]
fn vcd_reads_back_through_wellen_with_the_same_changes() {
    let spec = PipelineSpec {
        words: 40,
        ..Default::default()
    };
    let path = scratch("readback.vcd");
    let out = run_pipeline(spec, StepOrder::Registration, &path);
    let w = waves::read(&path).unwrap();
    let link_edge = |c: u64| ((c + 1) * 1_000_000_000_000) / 60_000_000;

    // The consumer's count steps up by one at each link edge that took a word, and `data`
    // holds that word: derived from the consumer's own record, not from the trace.
    let mut count = vec![(0u64, 0u64)];
    let mut data = vec![(0u64, 0u64)];
    for (i, &(c, v)) in out.received.iter().enumerate() {
        count.push((link_edge(c), i as u64 + 1));
        if data.last().unwrap().1 != v as u64 {
            data.push((link_edge(c), v as u64));
        }
    }
    assert_eq!(w.signals["top.link.consumer.count"], count);
    assert_eq!(w.signals["top.link.consumer.data"], data);
    assert_eq!(w.widths["top.link.consumer.data"], 16);
    // `take` pulses high for one link cycle per word.
    let take = &w.signals["top.link.consumer.take"];
    let highs: Vec<u64> = take.iter().filter(|c| c.1 == 1).map(|c| c.0).collect();
    assert_eq!(
        highs,
        out.received
            .iter()
            .map(|r| link_edge(r.0))
            .collect::<Vec<_>>()
    );

    // The producer's data follows the word sequence at core edges (5 ns apart).
    let pdata: Vec<u64> = w.signals["top.core.producer.data"]
        .iter()
        .map(|c| c.1)
        .collect();
    let mut expected = vec![0u64]; // the reset value, then each new word (word(0) is 0 too)
    for k in 0..spec.words {
        if *expected.last().unwrap() != word(k) as u64 {
            expected.push(word(k) as u64);
        }
    }
    assert_eq!(pdata, expected);
    assert!(w.signals["top.core.producer.data"]
        .iter()
        .all(|c| c.0 % 5_000 == 0));

    // Every signal of the file, as wellen reads it, against the vcd crate's own parser.
    let mut parser = vcd::Parser::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let header = parser.parse_header().unwrap();
    let mut names = std::collections::HashMap::new();
    fn walk(
        items: &[vcd::ScopeItem],
        prefix: &str,
        names: &mut std::collections::HashMap<vcd::IdCode, String>,
    ) {
        for it in items {
            match it {
                vcd::ScopeItem::Scope(s) => {
                    walk(&s.items, &format!("{prefix}{}.", s.identifier), names)
                }
                vcd::ScopeItem::Var(v) => {
                    names.insert(v.code, format!("{prefix}{}", v.reference));
                }
                _ => {}
            }
        }
    }
    walk(&header.items, "", &mut names);
    let mut t = 0;
    let mut seen: std::collections::BTreeMap<String, Vec<(u64, u64)>> = Default::default();
    for cmd in parser {
        match cmd.unwrap() {
            vcd::Command::Timestamp(ts) => t = ts,
            vcd::Command::ChangeScalar(id, v) => seen
                .entry(names[&id].clone())
                .or_default()
                .push((t, (v == vcd::Value::V1) as u64)),
            vcd::Command::ChangeVector(id, v) => {
                let bits = v
                    .iter()
                    .fold(0u64, |a, b| (a << 1) | (b == vcd::Value::V1) as u64);
                seen.entry(names[&id].clone()).or_default().push((t, bits));
            }
            _ => {}
        }
    }
    assert_eq!(seen, w.signals);
    assert_eq!(w.end, out.time);
}

#[test]
fn vcd_header_is_reproducible_and_gtkw_groups_every_scope() {
    let path = scratch("header.vcd");
    run_pipeline(PipelineSpec::default(), StepOrder::Registration, &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("$date"));
    assert!(text.contains("$timescale 1 ps $end"), "{}", &text[..200]);
    let dump = text.find("$dumpvars").unwrap();
    assert!(
        text[..dump].ends_with("#0\n"),
        "#0 must come right before $dumpvars"
    );
    assert!(text.contains("$var wire 16 ! data [15:0] $end") || text.contains("data [15:0] $end"));
    let gtkw = std::fs::read_to_string(path.with_extension("gtkw")).unwrap();
    for scope in [
        "top.core.producer",
        "top.cdc_fifo.wr",
        "top.cdc_fifo.rd",
        "top.link.consumer",
    ] {
        assert!(
            gtkw.contains(&format!("@800200\n-{scope}\n")),
            "group {scope} opens"
        );
        assert!(
            gtkw.contains(&format!("@1000200\n-{scope}\n")),
            "group {scope} closes"
        );
    }
    assert!(gtkw.contains("top.core.producer.data[15:0]"));
    assert!(gtkw.contains("[dumpfile] \"header.vcd\""));
}

#[test]
fn scope_globs_and_cycle_windows_limit_the_trace() {
    let full_path = scratch("full.vcd");
    run_pipeline(PipelineSpec::default(), StepOrder::Registration, &full_path);
    let full = waves::read(&full_path).unwrap();

    let path = scratch("window.vcd");
    let mut p = clock_crossing_pipeline(PipelineSpec::default()).unwrap();
    p.sched
        .trace_to(&TraceConfig {
            vcd: path.clone(),
            scopes: vec!["top.link".into(), "top.cdc_fifo.r?".into()],
            window: Some(20..60),
        })
        .unwrap();
    p.sched.run().unwrap();
    p.sched.finish_trace().unwrap();
    let w = waves::read(&path).unwrap();
    let names: Vec<&str> = w.signals.keys().map(|s| s.as_str()).collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("top.link.") || n.starts_with("top.cdc_fifo.rd.")),
        "{names:?}"
    );
    assert!(names.contains(&"top.link.consumer.count"));
    // Window [20, 60) of the core clock: from the state after 20 cycles (100 ns) to the edge
    // ending cycle 59 (300 ns). Inside it, the windowed trace equals the full one.
    let (start, end) = (100_000u64, 300_000u64);
    assert!(w.end <= end);
    for (name, changes) in &w.signals {
        assert_eq!(changes[0].0, start, "{name} opens at the window start");
        let value_at = |t: u64| {
            full.signals[name]
                .iter()
                .take_while(|c| c.0 <= t)
                .last()
                .unwrap()
                .1
        };
        assert_eq!(changes[0].1, value_at(start), "{name} at window start");
        let inside: Vec<_> = full.signals[name]
            .iter()
            .filter(|c| c.0 > start && c.0 <= end)
            .copied()
            .collect();
        assert_eq!(&changes[1..], &inside[..], "{name}");
    }
}

/// Fails at a given cycle, as a component with bad input would.
struct Faulty {
    at: u64,
    sig: rowsim_kernel::SignalId,
    cycle: u64,
}

impl Component for Faulty {
    fn name(&self) -> &str {
        "top.faulty"
    }
    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        if cx.cycle == self.at {
            return Err(format!("address {:#x} outside bank 3 (512 entries)", 0x2000).into());
        }
        self.cycle = cx.cycle + 1;
        Ok(Activity::Moved)
    }
    fn holds_work(&self) -> bool {
        true
    }
    fn declare(
        &mut self,
        s: &mut rowsim_kernel::SignalRegistry,
    ) -> Result<(), rowsim_kernel::TraceError> {
        self.sig = s.signal("top.faulty", "cycles_done", 32)?;
        Ok(())
    }
    fn trace(&self, f: &mut rowsim_kernel::TraceFrame) {
        f.set(self.sig, self.cycle);
    }
}

#[test]
fn a_fault_or_interrupt_leaves_a_flushed_vcd_up_to_the_last_cycle() {
    let path = scratch("fault.vcd");
    let mut s = Scheduler::new();
    let core = s.add_clock("core", 200_000_000).unwrap();
    s.add(
        core,
        Faulty {
            at: 37,
            sig: Default::default(),
            cycle: 0,
        },
    );
    s.trace_to(&TraceConfig {
        vcd: path.clone(),
        ..Default::default()
    })
    .unwrap();
    let err = s.run().unwrap_err();
    assert_eq!(err.cycle(), Some(37));
    let msg = err.to_string();
    assert!(
        msg.contains("top.faulty") && msg.contains("cycle 37") && msg.contains("bank 3"),
        "{msg}"
    );
    // Nothing closed the trace explicitly: the scheduler flushed it when the run failed.
    let w = waves::read(&path).unwrap();
    let c = &w.signals["top.faulty.cycles_done"];
    assert_eq!(c.last().unwrap(), &(37 * 5_000, 37));
    assert_eq!(w.end, 37 * 5_000);

    // An interrupt stops at the end of an instant, with the trace complete to it.
    let path = scratch("interrupt.vcd");
    let mut p = clock_crossing_pipeline(PipelineSpec {
        words: 1000,
        ..Default::default()
    })
    .unwrap();
    p.sched
        .trace_to(&TraceConfig {
            vcd: path.clone(),
            ..Default::default()
        })
        .unwrap();
    p.sched.run_until(Cycle(123)).unwrap();
    p.sched
        .interrupt_flag()
        .store(true, std::sync::atomic::Ordering::Relaxed);
    match p.sched.run() {
        Err(SimError::Interrupted { cycle, time }) => {
            assert_eq!(cycle, 124);
            assert_eq!(time, 124 * 5_000);
        }
        other => panic!("expected an interruption, got {other:?}"),
    }
    let w = waves::read(&path).unwrap();
    assert_eq!(w.end, 124 * 5_000);
}

#[test]
fn run_until_cycle_time_and_predicate() {
    let mut p = clock_crossing_pipeline(PipelineSpec::default()).unwrap();
    assert_eq!(p.sched.run_until(Cycle(10)).unwrap(), RunOutcome::Reached);
    assert_eq!(p.sched.cycle(), 10);
    assert_eq!(p.sched.time(), 50_000);
    let consumer = p.consumer;
    let r = p
        .sched
        .run_until(move |s: &Scheduler| {
            s.component::<Consumer>(consumer).unwrap().received.len() == 5
        })
        .unwrap();
    assert_eq!(r, RunOutcome::Reached);
    // The 5th word is taken at link cycle 10, the edge at 11 * 16,666.67 ps.
    assert_eq!(p.sched.time(), 11 * 1_000_000_000_000 / 60_000_000);
    // A condition on state that can never hold ends when the work is done.
    let r = p.sched.run_until(|_: &Scheduler| false).unwrap();
    assert_eq!(r, RunOutcome::Quiescent);
    // A cycle is reached even when idle.
    let now = p.sched.cycle();
    assert_eq!(
        p.sched.run_until(Cycle(now + 1000)).unwrap(),
        RunOutcome::Reached
    );
    assert_eq!(p.sched.cycle(), now + 1000);
}

#[test]
#[ignore = "needs vcd2fst (Debian: gtkwave); .ci/run installs it and runs the ignored tool tests"]
fn vcd2fst_accepts_the_trace() {
    let path = scratch("fst.vcd");
    run_pipeline(PipelineSpec::default(), StepOrder::Registration, &path);
    let fst = path.with_extension("fst");
    let out = Command::new("vcd2fst")
        .arg(&path)
        .arg(&fst)
        .output()
        .expect("vcd2fst (Debian package gtkwave) must be installed to run this test");
    assert!(
        out.status.success(),
        "vcd2fst failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&fst).unwrap().len() > 0);
}

#[test]
fn a_probe_reads_what_the_vcd_holds_and_a_trace_can_start_mid_run() {
    let spec = PipelineSpec {
        words: 40,
        ..PipelineSpec::default()
    };
    let full = scratch("probe_full.vcd");
    run_pipeline(spec, StepOrder::Registration, &full);
    let whole = waves::read(&full).unwrap();

    let mut p = clock_crossing_pipeline(spec).unwrap();
    p.sched.probe().unwrap();
    let names: Vec<String> = p
        .sched
        .signals("*")
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect();
    assert_eq!(names.len(), whole.signals.len(), "every signal is probed");
    let part = scratch("probe_part.vcd");
    let mut checked = 0;
    while p.sched.busy() || p.sched.instants() == 0 {
        p.sched.step().unwrap();
        let t = p.sched.time();
        if p.sched.cycle() == 30 && !p.sched.is_tracing() {
            // A second trace of only the consumer, from here on.
            p.sched
                .trace_to(&TraceConfig {
                    vcd: part.clone(),
                    scopes: vec!["top.link.consumer".into()],
                    window: None,
                })
                .unwrap();
        }
        for n in &names {
            let got = p.sched.signal(n).unwrap().value;
            assert_eq!(Some(got), whole.value_at(n, t), "{n} at t={t}");
            assert_eq!(p.sched.signal_value(n), Some(got));
            checked += 1;
        }
    }
    let summary = p.sched.finish_trace().unwrap().unwrap();
    assert!(checked > 1000);
    assert!(p.sched.signal("top.link.consumer.nothing").is_none());
    let w = waves::read(&part).unwrap();
    assert_eq!(summary.signals, 3);
    assert!(w
        .signals
        .keys()
        .all(|k| k.starts_with("top.link.consumer.")));
    let start = w
        .signals
        .values()
        .flat_map(|c| c.first())
        .map(|c| c.0)
        .min()
        .unwrap();
    assert!(
        start > 0,
        "the partial trace opens where it started, not at 0"
    );
    for (name, changes) in &w.signals {
        for &(t, v) in changes {
            assert_eq!(Some(v), whole.value_at(name, t), "{name} at t={t}");
        }
        // Every change of the full trace after the start is in the partial one.
        let later: Vec<_> = whole.signals[name].iter().filter(|c| c.0 > start).collect();
        assert_eq!(
            later,
            changes.iter().filter(|c| c.0 > start).collect::<Vec<_>>()
        );
    }
}

/// Event-driven scheduling on a small system whose parts sleep: a source that waits out gaps
/// (`IdleFor`), a worker that computes a burst per token without looking at its links (`IgnoringLinksFor`)
/// and idles between tokens (`Idle`, counting idle edges), and a sink. Every result equals the
/// run stepped at every edge, in any step order, and the worker is stepped far less.
mod event_driven {
    use super::*;
    use rowsim_kernel::Wake;

    /// Sends token `k` once `gap(k)` cycles have passed since the last send.
    pub struct Source {
        out: LinkTx<u32>,
        next: u32,
        count: u32,
        wait: u64,
    }

    fn gap(k: u32) -> u64 {
        (k as u64 * 7919) % 23
    }

    impl Component for Source {
        fn name(&self) -> &str {
            "top.source"
        }
        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            if self.next == self.count {
                return Ok(Activity::Idle);
            }
            if self.wait > 0 {
                self.wait -= 1;
                return Ok(Activity::Moved);
            }
            if self.out.try_send(cx, self.next).is_ok() {
                self.next += 1;
                self.wait = gap(self.next);
                return Ok(Activity::Moved);
            }
            Ok(Activity::Idle)
        }
        fn holds_work(&self) -> bool {
            self.next < self.count
        }
        fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
            match (did.moved(), self.wait) {
                (false, _) => Wake::Idle,
                (true, 0) => Wake::Next,
                (true, w) => Wake::IgnoringLinksFor(w),
            }
        }
        fn settle(&mut self, _last: &StepCtx, edges: u64) {
            if self.next < self.count {
                self.wait -= edges.min(self.wait);
            }
        }
    }

    /// Takes a token, works on it for `3 + token % 5` edges, then sends `token * 2`.
    pub struct Worker {
        input: LinkRx<u32>,
        out: LinkTx<u32>,
        left: u64,
        token: u32,
        pub work_edges: u64,
        pub idle_edges: u64,
        pub steps: u64,
        sending: bool,
    }

    impl Component for Worker {
        fn name(&self) -> &str {
            "top.worker"
        }
        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            self.steps += 1;
            if self.left > 0 {
                self.left -= 1;
                self.work_edges += 1;
                self.sending = self.left == 0;
                return Ok(Activity::Moved);
            }
            if self.sending {
                if self.out.try_send(cx, self.token * 2).is_ok() {
                    self.sending = false;
                    return Ok(Activity::Moved);
                }
                self.idle_edges += 1;
                return Ok(Activity::Idle);
            }
            match self.input.try_recv(cx) {
                Some(t) => {
                    self.token = t;
                    self.left = 3 + t as u64 % 5;
                    Ok(Activity::Moved)
                }
                None => {
                    self.idle_edges += 1;
                    Ok(Activity::Idle)
                }
            }
        }
        fn holds_work(&self) -> bool {
            self.left > 0 || self.sending || self.input.in_flight() > 0
        }
        fn wake(&self, _cx: &StepCtx, did: Activity) -> Wake {
            if !did.moved() {
                Wake::Idle
            } else if self.left > 0 {
                // The burst's edges touch no link; the send comes at the edge after them.
                Wake::IgnoringLinksFor(self.left)
            } else {
                Wake::Next
            }
        }
        fn settle(&mut self, _last: &StepCtx, edges: u64) {
            let burst = edges.min(self.left);
            self.left -= burst;
            self.work_edges += burst;
            if burst > 0 && self.left == 0 {
                self.sending = true;
            }
            self.idle_edges += edges - burst;
        }
    }

    /// Takes one result every other cycle (backpressure on the worker).
    pub struct Sink {
        input: LinkRx<u32>,
        pub got: Vec<(u64, u32)>,
    }

    impl Component for Sink {
        fn name(&self) -> &str {
            "top.sink"
        }
        fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
            if cx.cycle % 2 == 1 {
                return Ok(Activity::Idle);
            }
            match self.input.try_recv(cx) {
                Some(v) => {
                    self.got.push((cx.cycle, v));
                    Ok(Activity::Moved)
                }
                None => Ok(Activity::Idle),
            }
        }
        fn holds_work(&self) -> bool {
            self.input.in_flight() > 0
        }
        // Its idle steps depend on the cycle's parity: it is stepped at every edge (the
        // default), which the others must not notice.
    }

    /// As [`run`], but switching between event-driven and every-edge stepping every 7 cycles
    /// (a debugger flipping the mode mid-run must not change anything).
    pub fn run_switching() -> (u64, Vec<(u64, u32)>, u64, u64) {
        let (mut s, w, k) = build();
        let mut every = false;
        loop {
            every = !every;
            s.set_every_edge(every);
            let until = s.cycle() + 7;
            // A condition on state, so the run ends where `run` would (at quiescence).
            let stop = move |sch: &Scheduler| sch.cycle() >= until;
            if s.run_until(stop).unwrap() == RunOutcome::Quiescent {
                break;
            }
        }
        let worker: &Worker = s.component(w).unwrap();
        let sink: &Sink = s.component(k).unwrap();
        (
            s.cycle(),
            sink.got.clone(),
            worker.work_edges,
            worker.idle_edges,
        )
    }

    fn build() -> (
        Scheduler,
        rowsim_kernel::ComponentId,
        rowsim_kernel::ComponentId,
    ) {
        let mut s = Scheduler::new();
        let clk = s.add_clock("core", 100_000_000).unwrap();
        let a = Link::new("top.a", clk, 2, 2).unwrap();
        let b = Link::new("top.b", clk, 1, 1).unwrap();
        s.add(
            clk,
            Source {
                out: a.tx,
                next: 0,
                count: 40,
                wait: 0,
            },
        );
        let w = s.add(
            clk,
            Worker {
                input: a.rx,
                out: b.tx,
                left: 0,
                token: 0,
                work_edges: 0,
                idle_edges: 0,
                steps: 0,
                sending: false,
            },
        );
        let k = s.add(
            clk,
            Sink {
                input: b.rx,
                got: vec![],
            },
        );
        (s, w, k)
    }

    pub fn run(every_edge: bool, order: StepOrder) -> (u64, Vec<(u64, u32)>, u64, u64, u64) {
        let (mut s, w, k) = build();
        s.set_every_edge(every_edge);
        s.set_order(order);
        assert_eq!(s.run().unwrap(), RunOutcome::Quiescent);
        let worker: &Worker = s.component(w).unwrap();
        let sink: &Sink = s.component(k).unwrap();
        (
            s.cycle(),
            sink.got.clone(),
            worker.work_edges,
            worker.idle_edges,
            worker.steps,
        )
    }
}

#[test]
fn sleeping_components_give_the_run_stepped_at_every_edge() {
    let reference = event_driven::run(true, StepOrder::Registration);
    assert_eq!(reference.1.len(), 40);
    let want: Vec<u32> = (0..40).map(|t| t * 2).collect();
    assert_eq!(reference.1.iter().map(|g| g.1).collect::<Vec<_>>(), want);
    // Every edge of the run is the worker's: working, or idle (waiting or blocked).
    assert_eq!(reference.2 + reference.3 + 40 * 2, reference.4);
    // Flipping between the two kernels mid-run changes nothing either.
    let switching = event_driven::run_switching();
    assert_eq!(
        switching,
        (reference.0, reference.1.clone(), reference.2, reference.3),
        "switching kernels mid-run"
    );
    for order in [
        StepOrder::Registration,
        StepOrder::Shuffled(1),
        StepOrder::Shuffled(99),
    ] {
        let got = event_driven::run(false, order);
        assert_eq!(got.0, reference.0, "{order:?}: cycles");
        assert_eq!(got.1, reference.1, "{order:?}: what arrived, and when");
        assert_eq!(got.2, reference.2, "{order:?}: work edges");
        assert_eq!(got.3, reference.3, "{order:?}: idle edges, added on waking");
        assert!(
            got.4 * 2 < reference.4,
            "{order:?}: the worker was stepped {} times of {}",
            got.4,
            reference.4
        );
    }
}
