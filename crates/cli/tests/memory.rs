//! The memory estimate a run is refused by (`rowsim_chip::host_bytes`) against the peak
//! resident memory of a real run whose tensors dominate it.

mod common;
use common::rowsim;

/// The largest resident set of any child this process has waited for, in bytes (Linux
/// reports kilobytes). This file's only test runs one child.
fn children_peak_rss() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the call to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    usage.ru_maxrss as u64 * 1024
}

/// The tiny layer at batch 20,000 (3.9M ifmap and ofmap values each): the estimate is at most
/// the measured peak (so a run is never refused for memory it would not use), and the peak is
/// at most 1.5 times the estimate plus 16 MB for what does not grow with the batch.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release-only: 28M core cycles (cargo test --release -p rowsim-cli --test memory)"
)]
fn the_memory_estimate_is_the_peak_of_a_run_whose_tensors_dominate() {
    // layers/tiny-conv.toml at batch 20,000.
    let layer = rowsim_workload::ConvLayer {
        name: "tiny:conv".into(),
        n: 20_000,
        c: 4,
        h: 7,
        w: 7,
        m: 4,
        r: 3,
        s: 3,
        stride_v: 1,
        stride_h: 1,
        pad: 1,
        groups: 1,
        ..rowsim_workload::alexnet()[2].clone()
    };
    let estimate = rowsim_chip::host_bytes(&layer);
    let o = rowsim()
        .args(["run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml"])
        .args(["--batch", "20000", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let peak = children_peak_rss();
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!("estimate {:.1} MB, peak {:.1} MB", mb(estimate), mb(peak));
    assert!(
        estimate <= peak,
        "estimate {} MB over the peak {} MB",
        mb(estimate),
        mb(peak)
    );
    assert!(
        peak <= estimate * 3 / 2 + 16_000_000,
        "peak {} MB over 1.5 x the estimate {} MB + 16 MB",
        mb(peak),
        mb(estimate)
    );
}
