//! The golden trace of one PE (golden/pe/), its counters (an insta snapshot), and zero gating
//! seen in the trace: gating changes only the gated signals.

use std::path::{Path, PathBuf};

use rowsim_datapath::mac::MacConfig;
use rowsim_kernel::TraceConfig;
use rowsim_pe::testbench::{reference_rows, BenchWiring, Harness, RowJob, RunResult};
use rowsim_pe::{PeSizes, Primitive};
use rowsim_tests::waves::{self};

const EYERISS: PeSizes = PeSizes {
    filter_entries: 224,
    ifmap_entries: 12,
    psum_entries: 24,
    mask_bits: None,
};

/// S=3, W=7 (so F=5), p=2 filters, q=2 channels, one row, psums in; the ifmap has zeros.
fn golden_job(zero_gating: bool) -> RowJob {
    let prim = Primitive {
        p: 2,
        q: 2,
        s: 3,
        u: 1,
        f: 5,
        rows: 1,
        psum_in: true,
        mac: MacConfig::default(),
        zero_gating,
        zero_skipping: false,
        compressed: false,
    };
    RowJob {
        prim,
        // weights[(f*q + c)*S + s]
        weights: vec![1, 2, 3, -1, -2, -3, 4, 0, -4, 5, 6, 7],
        // channel 0 then channel 1, 7 columns each
        ifmaps: vec![vec![3, 0, 5, 0, 0, 2, 1, /**/ 0, 4, -2, 0, 6, 0, 8]],
        psum_in: vec![vec![100, 200, 101, 201, 102, 202, 103, 203, 104, 204]],
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pe_golden");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn traced(job: &RowJob, path: &Path) -> RunResult {
    let t = TraceConfig {
        vcd: path.to_path_buf(),
        ..Default::default()
    };
    Harness::new("top.pe", EYERISS, job, BenchWiring::default())
        .unwrap()
        .run(job, Some(&t))
        .unwrap()
}

#[test]
fn pe_matches_its_golden_trace() {
    let job = golden_job(true);
    let path = scratch("pe_row.vcd");
    let r = traced(&job, &path);
    assert_eq!(r.rows, reference_rows(&job));
    let got = waves::check_golden(&path, "pe/pe_row.vcd");
    // The hand schedule of golden/README.md, read off the trace (5,000 ps per cycle; the
    // value at time (n+1)*5000 is the state after cycle n).
    let pulses = |s: &str| -> Vec<u64> {
        // cycles in which a 1-bit signal was high, from its changes
        let ch = &got.signals[&format!("top.pe.{s}")];
        let mut out = vec![];
        for (i, &(t, v)) in ch.iter().enumerate() {
            if v == 1 {
                let end = ch.get(i + 1).map_or(got.end + 5_000, |c| c.0);
                out.extend((t..end).step_by(5_000).map(|t| t / 5_000 - 1));
            }
        }
        out
    };
    assert_eq!(pulses("filter_spad_wr_en"), (1..=12).collect::<Vec<_>>());
    assert_eq!(
        pulses("psum_out_en"),
        vec![27, 28, 43, 44, 59, 60, 75, 76, 91, 92]
    );
    // Position 0 reads ifmap (s, c) = (0,0) 3, (0,1) 0, (1,0) 0, (1,1) 4, (2,0) 5, (2,1) -2 at
    // cycles 13, 15, 17, 19, 21, 23; the zeros gate the MACs of cycles 15-16 and 17-18.
    assert_eq!(pulses("ifmap_spad_rd_en")[..6], [13, 15, 17, 19, 21, 23]);
    // The 14 values: columns 0-5 as they arrive (1-12), then column 6 into column 0's entries
    // as position 0 releases them, at the last MAC of (0, 0) and of (0, 1) (the sliding window).
    let mut writes: Vec<u64> = (1..=12).collect();
    writes.extend([14, 16]);
    assert_eq!(pulses("ifmap_spad_wr_en"), writes);
    assert_eq!(pulses("mac_gated")[..4], [16, 17, 18, 19]);
    assert_eq!(
        r.counters.stall_filter
            + r.counters.stall_ifmap
            + r.counters.stall_psum_in
            + r.counters.stall_psum_out,
        1
    );
    insta::assert_debug_snapshot!("pe_row_counters", r.counters);
}

#[test]
fn zero_gating_changes_only_the_gated_signals() {
    let on = waves::read(&{
        let p = scratch("gating_on.vcd");
        traced(&golden_job(true), &p);
        p
    })
    .unwrap();
    let off = waves::read(&{
        let p = scratch("gating_off.vcd");
        traced(&golden_job(false), &p);
        p
    })
    .unwrap();
    let gated = [
        "filter_spad_rd_en",
        "filter_spad_rd_addr",
        "filter_spad_rd_data",
        "mac_valid",
        "mac_gated",
        "mac_a",
        "mac_b",
        "mac_product",
        "mac_sum",
        "psum_spad_rd_en",
        "psum_spad_rd_addr",
        "psum_spad_rd_data",
        "psum_spad_wr_en",
        "psum_spad_wr_addr",
        "psum_spad_wr_data",
    ];
    let mut differing = vec![];
    for (name, changes) in &on.signals {
        if off.signals[name] != *changes {
            differing.push(name.trim_start_matches("top.pe.").to_string());
        }
    }
    assert!(
        !differing.is_empty(),
        "the golden job has zeros, so gating must show"
    );
    for d in &differing {
        assert!(
            gated.contains(&d.as_str()),
            "gating changed `{d}`, which it must not"
        );
    }
    assert!(
        differing.contains(&"mac_gated".to_string())
            && differing.contains(&"filter_spad_rd_en".to_string())
    );
    assert_eq!(on.end, off.end, "same cycle count");
}
