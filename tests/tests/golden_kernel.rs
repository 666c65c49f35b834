//! Golden trace of the kernel's clock-crossing pipeline (golden/kernel/clock_crossing.vcd),
//! compared signal by signal through wellen; and the comparison itself, shown to catch changes.

use std::path::{Path, PathBuf};

use rowsim_tests::waves::{self, first_difference, Difference};

fn fresh_trace() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clock_crossing.vcd");
    rowsim_tests::trace_clock_crossing(&path);
    path
}

#[test]
fn clock_crossing_matches_its_golden_trace() {
    let got_path = fresh_trace();
    let got = waves::check_golden(&got_path, "kernel/clock_crossing.vcd");
    // The hand schedule of golden/README.md: word 0 taken at link cycle 2 (t = 50,000 ps),
    // then one word every 2 link cycles; the last (word 7) at link cycle 16 (283,333 ps).
    let take: Vec<u64> = got.signals["top.link.consumer.take"]
        .iter()
        .filter(|c| c.1 == 1)
        .map(|c| c.0)
        .collect();
    let link_edge = |c: u64| (c + 1) * 1_000_000_000_000 / 60_000_000;
    assert_eq!(take, (1..=8).map(|k| link_edge(2 * k)).collect::<Vec<_>>());
    assert_eq!(take[0], 50_000);
    // The first write into the FIFO at core cycle 2 (15,000 ps), its first read at link cycle 1.
    let first_high = |s: &str| got.signals[s].iter().find(|c| c.1 == 1).unwrap().0;
    assert_eq!(first_high("top.cdc_fifo.wr.wr_en"), 15_000);
    assert_eq!(first_high("top.cdc_fifo.rd.rd_en"), 33_333);
}

#[test]
fn the_comparison_reports_the_first_difference() {
    let base = waves::read(&waves::golden_dir().join("kernel/clock_crossing.vcd")).unwrap();
    assert_eq!(first_difference(&base, &base), None);

    // A changed value at one time, and a later change elsewhere: the earlier one is reported.
    let mut changed = base.clone();
    let data = changed.signals.get_mut("top.link.consumer.data").unwrap();
    let (t, v) = data[2];
    data[2].1 = v ^ 1;
    let late = changed.signals.get_mut("top.link.consumer.count").unwrap();
    late.last_mut().unwrap().1 += 1;
    assert_eq!(
        first_difference(&base, &changed),
        Some(Difference {
            time: t,
            signal: "top.link.consumer.data".into(),
            expected: Some(v),
            got: Some(v ^ 1)
        })
    );

    // A change moved in time shows as a value present on one side only at the earlier time.
    let mut moved = base.clone();
    let take = moved.signals.get_mut("top.link.consumer.take").unwrap();
    let (t, v) = take[1];
    take[1].0 = t + 1;
    let d = first_difference(&base, &moved).unwrap();
    assert_eq!((d.time, d.expected, d.got), (t, Some(v), None));
    assert!(d.to_string().contains("got (no change)"), "{d}");

    // A missing signal is reported by name.
    let mut missing = base.clone();
    missing.signals.remove("top.cdc_fifo.wr.full");
    let d = first_difference(&base, &missing).unwrap();
    assert!(
        d.signal.contains("top.cdc_fifo.wr.full") && d.signal.contains("only in the expected"),
        "{d}"
    );
}

/// The same run traced to FST (`*.fst`, through fst-writer) and to VCD holds the same signals,
/// widths and value changes, read back by wellen, and ends at the same time.
#[test]
fn an_fst_holds_the_same_value_changes_as_the_vcd() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fst");
    std::fs::create_dir_all(&dir).unwrap();
    let mut waves_of = Vec::new();
    for ext in ["vcd", "fst"] {
        let path = dir.join(format!("clock_crossing.{ext}"));
        rowsim_tests::trace_clock_crossing(&path);
        waves_of.push(waves::without_ranges(waves::read(&path).unwrap()));
    }
    let (vcd, fst) = (&waves_of[0], &waves_of[1]);
    assert!(vcd.signals.len() > 10);
    assert_eq!(vcd.widths, fst.widths);
    assert_eq!(first_difference(vcd, fst), None);
    assert_eq!(vcd.signals, fst.signals);
    assert_eq!(vcd.end, fst.end);
}
