//! AlexNet CONV1-5 at batch 1 on eyeriss-v1, tracing off, the mapper's mappings: core cycles
//! simulated per second on one core, and the process's peak memory (VmHWM).
//!
//! `cargo bench -p rowsim-chip --bench alexnet`

use std::time::Instant;

use rowsim_chip::{run_layer, RunOptions};
use rowsim_mapper::choose;
use rowsim_workload::{alexnet, synthetic_ifmap, synthetic_weights, Formats};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let hw = rowsim_config::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hw-configs/eyeriss-v1.toml"
    ))
    .unwrap();
    let fmt = Formats::DEFAULT;
    let (mut cycles, mut secs) = (0u64, 0f64);
    for l in alexnet() {
        let m = choose(&l, &hw).unwrap();
        let x = synthetic_ifmap(&l, 1, fmt);
        let w = synthetic_weights(&l, 1, fmt);
        let t = Instant::now();
        let run = run_layer(
            &hw,
            &l,
            &m,
            &x,
            &w,
            &RunOptions {
                mac: fmt.mac(),
                ..Default::default()
            },
        )
        .unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:<14} {:<34} {:>4} PEs {:>10} core cycles {:>7.2} s {:>9.0} cycles/s",
            l.name,
            m.to_string(),
            run.counts.pes_used,
            run.core_cycles,
            s,
            run.core_cycles as f64 / s
        );
        cycles += run.core_cycles;
        secs += s;
    }
    println!(
        "AlexNet CONV1-5, batch 1: {cycles} core cycles in {secs:.1} s = {:.0} core cycles/s; peak memory {:.0} MiB",
        cycles as f64 / secs,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}
