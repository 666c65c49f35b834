//! A network's CONV layers on eyeriss-v1 (or another built-in machine) with the mapper's
//! mappings, tracing off unless asked:
//! per layer and in all, core cycles emulated per second, the emulation's time over the
//! reference convolution's (both timed in this process), and the process's peak memory (VmHWM).
//!
//! `cargo bench -p rowsim-chip --bench alexnet` runs AlexNet CONV1-5 at batch 1. Options (after
//! `--`):
//! - `--net alexnet|vgg16`, `--batch N`;
//! - `--hw NAME`: a machine of `hw-configs/` (`eyeriss-v1-skip`, `eyeriss-v1-sparse`, ...);
//! - `--layers conv1_1,conv5_3`: only these layers, and a projection of the whole network's time
//!   from their emulation rate in MAC slots per second (said so in the output);
//! - `--every-edge`: step every component at every edge (the reference kernel);
//! - `--trace-pe`: trace one PE (`pe_r1_c1`) to a VCD in the temp folder, for the cost of tracing.

use std::time::Instant;

use rowsim_chip::{run_checked, RunOptions};
use rowsim_kernel::TraceConfig;
use rowsim_mapper::choose;
use rowsim_workload::{alexnet, synthetic_ifmap, synthetic_weights, vgg16, Formats};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let net = value("--net").unwrap_or_else(|| "alexnet".into());
    let batch: u32 = value("--batch").map_or(1, |b| b.parse().expect("--batch N"));
    let only: Option<Vec<String>> =
        value("--layers").map(|l| l.split(',').map(String::from).collect());
    let every_edge = args.iter().any(|a| a == "--every-edge");
    let trace_pe = args.iter().any(|a| a == "--trace-pe");
    let machine = value("--hw").unwrap_or_else(|| "eyeriss-v1".into());
    if machine.is_empty()
        || !machine
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        panic!("--hw NAME (a file of hw-configs/ without .toml), not {machine:?}");
    }
    let path = format!(
        "{}/../../hw-configs/{machine}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let hw = rowsim_config::load(&path).unwrap_or_else(|e| panic!("--hw {machine}: {e}"));
    let layers = match net.as_str() {
        "alexnet" => alexnet(),
        "vgg16" => vgg16(),
        other => panic!("--net alexnet|vgg16, not {other}"),
    };
    let layers: Vec<_> = layers
        .into_iter()
        .map(|mut l| {
            l.n = batch;
            l
        })
        .collect();
    let all_macs: u64 = layers.iter().map(|l| l.macs()).sum();
    let fmt = Formats::DEFAULT;
    let (mut cycles, mut emu, mut reference, mut macs) = (0u64, 0f64, 0f64, 0u64);
    let vcd = std::env::temp_dir().join(format!("rowsim-bench-{}.vcd", std::process::id()));
    for l in &layers {
        let short = l.name.split(':').nth(1).unwrap_or(&l.name);
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == short)) {
            continue;
        }
        let m = choose(l, &hw).unwrap();
        let x = synthetic_ifmap(l, 1, fmt);
        let w = synthetic_weights(l, 1, fmt);
        let trace = trace_pe.then(|| TraceConfig {
            vcd: vcd.clone(),
            scopes: vec!["top.chip.pe_array.pe_r1_c1".into()],
            window: None,
        });
        let t = Instant::now();
        let c = run_checked(
            &hw,
            l,
            &m,
            &x,
            &w,
            &RunOptions {
                mac: fmt.mac(),
                every_edge,
                trace,
                ..Default::default()
            },
        )
        .unwrap();
        let total = t.elapsed().as_secs_f64();
        assert!(
            c.verified,
            "{}: the ofmap differs from the reference",
            l.name
        );
        let h = &c.host;
        println!(
            "{:<16} {:<34} {:>4} PEs {:>11} core cycles {:>8.2} s {:>9.0} cycles/s  reference {:>6.3} s  ratio {:>6.1}x  ({:.1} s with the reference)",
            l.name,
            m.to_string(),
            c.run.counts.pes_used,
            c.run.core_cycles,
            h.emulation_s,
            h.core_cycles_per_s,
            h.reference_s,
            h.emulation_over_reference,
            total
        );
        println!("{:<16} {}", "", h.profile_line());
        cycles += c.run.core_cycles;
        emu += h.emulation_s;
        reference += h.reference_s;
        macs += l.macs();
    }
    std::fs::remove_file(&vcd).ok();
    std::fs::remove_file(vcd.with_extension("gtkw")).ok();
    println!(
        "{net} batch {batch}{}{}{}: {cycles} core cycles emulated in {emu:.1} s = {:.0} core cycles/s; reference {reference:.2} s, ratio {:.1}x; peak memory {:.0} MiB",
        if machine != "eyeriss-v1" {
            format!(" on {machine}")
        } else {
            String::new()
        },
        if every_edge { ", every edge" } else { "" },
        if trace_pe { ", one PE traced" } else { "" },
        cycles as f64 / emu,
        emu / reference,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    if macs < all_macs {
        let rate = macs as f64 / emu;
        println!(
            "projected (not measured): the whole of {net} at batch {batch} ({all_macs} MAC slots) at the measured {rate:.0} MAC slots/s: {:.0} s",
            all_macs as f64 / rate
        );
    }
}
