//! The golden trace of one small processing pass on the tiny config (golden/chip/pass.vcd),
//! compared signal by signal.

use std::path::Path;

use rowsim_chip::{run_layer, RunOptions};
use rowsim_kernel::TraceConfig;
use rowsim_tests::waves::{self};
use rowsim_workload::{reference_conv, synthetic_ifmap, synthetic_weights, ConvLayer, Formats};

#[test]
fn one_pass_matches_its_golden_trace() {
    let hw = rowsim_config::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hw-configs/tiny.toml"
    ))
    .unwrap();
    // 1 image, 2 channels of 4 x 6, 2 filters of 3 x 3, no padding: E = 2, F = 4. The mapping
    // m=2 n=1 e=2 p=2 q=2 r=1 t=1 is a single pass on a 3 x 2 set of PEs.
    let l = ConvLayer {
        name: "golden:pass".into(),
        n: 1,
        c: 2,
        h: 4,
        w: 6,
        m: 2,
        r: 3,
        s: 3,
        stride_v: 1,
        stride_h: 1,
        pad: 0,
        groups: 1,
        ifmap_zero_fraction: 0.3,
        first: false,
    };
    let m = "m=2,n=1,e=2,p=2,q=2,r=1,t=1".parse().unwrap();
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(&l, 3, fmt);
    let w = synthetic_weights(&l, 3, fmt);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chip_golden");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pass.vcd");
    let trace = TraceConfig {
        vcd: path.clone(),
        scopes: vec!["top.chip".into()],
        window: None,
    };
    let run = run_layer(
        &hw,
        &l,
        &m,
        &x,
        &w,
        &RunOptions {
            mac: fmt.mac(),
            trace: Some(trace),
            ..Default::default()
        },
    )
    .unwrap();
    let (want, _) = reference_conv(&l, &x, &w, fmt.mac(), true).unwrap();
    assert_eq!(run.ofmap, want);
    assert_eq!((run.counts.passes, run.counts.pes_used), (1, 6));
    let got = waves::check_golden(&path, "chip/pass.vcd");
    // The controller's account against its trace and a hand count: the scan chain's 256 bits at
    // 60 MHz take ceil(256 * 200 / 60) = 854 core cycles; the wait for loads runs from then to
    // the cycle the pass starts, the pass until its last psum is written. A value stamped at
    // (k + 1) * 5,000 ps is the state after core edge k.
    let ctrl = |s: &str| &got.signals[&format!("top.chip.ctrl.{s}")];
    let edge = |s: &str, v: u64, after: u64| -> u64 {
        ctrl(s)
            .iter()
            .find(|c| c.1 == v && c.0 > after)
            .unwrap_or_else(|| panic!("{s} never becomes {v} after {after} ps"))
            .0
            / 5_000
            - 1
    };
    let last_shift = edge("config_shift", 0, 0);
    let (started, ended) = (edge("pass_running", 1, 0), edge("pass_running", 0, 5_000));
    let c = run.controller;
    assert_eq!((last_shift + 1, c.idle_config), (854, 854));
    assert_eq!(c.idle_loads, started - (last_shift + 1));
    assert_eq!(c.processing_cycles, ended - started);
    assert_eq!(c.idle_after, run.core_cycles - ended);
    assert_eq!(c.idle_psum_slot, 0);
    // By hand: each of the 6 PEs runs F = 4 positions of p*q*S = 12 MACs; a position costs
    // 12 + 2 + 2 = 16 cycles once its window is in, so a PE's psum drains are 16 cycles apart.
    for (pe, expect_macs) in [("pe_r0_c0", 48u64), ("pe_r2_c1", 48)] {
        let valid = &got.signals[&format!("top.chip.pe_array.{pe}.mac_valid")];
        let gated = &got.signals[&format!("top.chip.pe_array.{pe}.mac_gated")];
        let count = |ch: &Vec<(u64, u64)>| -> u64 {
            ch.iter()
                .enumerate()
                .filter(|(_, c)| c.1 == 1)
                .map(|(i, c)| (ch.get(i + 1).map_or(c.0 + 5_000, |n| n.0) - c.0) / 5_000)
                .sum()
        };
        assert_eq!(count(valid) + count(gated), expect_macs, "{pe}");
        let drains: Vec<u64> = got.signals[&format!("top.chip.pe_array.{pe}.psum_out_en")]
            .iter()
            .filter(|c| c.1 == 1)
            .map(|c| c.0)
            .collect();
        assert_eq!(
            drains.len(),
            4,
            "{pe}: one drain burst (of p = 2) per position"
        );
        assert!(
            drains.windows(2).all(|d| d[1] - d[0] >= 16 * 5_000),
            "{pe}: {drains:?}"
        );
    }
}
