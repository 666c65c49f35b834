//! Every golden trace opened in real GTKWave (under Xvfb) with its `.gtkw` save file: a Tcl
//! script (`gtkwave -S`) reports what GTKWave loaded, and that must be every signal of the VCD,
//! every trace of the save file, and the VCD's end time, with nothing on GTKWave's output that
//! reads like an error.

use std::path::{Path, PathBuf};
use std::process::Command;

use rowsim_tests::waves;

fn golden_traces() -> Vec<PathBuf> {
    let dir = waves::golden_dir();
    let mut out = Vec::new();
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "gtkw") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs GTKWave on a save file; returns (its output, the script's report).
fn open_in_gtkwave(gtkw: &Path, report: &Path) -> (String, Option<String>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("gtkwave/check.tcl");
    let _ = std::fs::remove_file(report);
    let out = Command::new("timeout")
        .args(["120", "xvfb-run", "-a", "gtkwave", "-S"])
        .arg(&script)
        .arg(gtkw.file_name().unwrap())
        .current_dir(gtkw.parent().unwrap())
        .env("ROWSIM_GTKWAVE_REPORT", report)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, std::fs::read_to_string(report).ok())
}

#[test]
#[ignore = "needs gtkwave and xvfb-run (Debian: gtkwave xvfb xauth); .ci/run installs them and runs the ignored tool tests"]
fn gtkwave_opens_every_golden_trace_with_its_save_file() {
    assert!(
        have("gtkwave") && have("xvfb-run"),
        "this test needs gtkwave and xvfb-run (Debian: gtkwave xvfb xauth)"
    );
    let traces = golden_traces();
    assert!(traces.len() >= 5, "{traces:?}");
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gtkwave");
    std::fs::create_dir_all(&scratch).unwrap();
    for gtkw in traces {
        let vcd = gtkw.with_extension("vcd");
        check_in_gtkwave(&gtkw, &vcd, &scratch);
    }
}

/// Opens `gtkw` (whose dump file is `dump`, VCD or FST) in GTKWave and checks that it loaded
/// every signal of the dump, every trace of the save file and the dump's end time, with nothing
/// on its output that reads like an error.
fn check_in_gtkwave(gtkw: &Path, dump: &Path, scratch: &Path) {
    let name = gtkw.file_stem().unwrap().to_string_lossy().to_string();
    let report = scratch.join(format!("{name}.txt"));
    let (output, report) = open_in_gtkwave(gtkw, &report);
    let report = report.unwrap_or_else(|| {
        panic!(
            "{}: GTKWave did not run the script:\n{output}",
            gtkw.display()
        )
    });
    let lower = output.to_lowercase();
    for bad in [
        "error",
        "malformed",
        "cannot",
        "could not",
        "unable",
        "warning",
    ] {
        assert!(
            !lower.contains(bad),
            "{}: GTKWave said `{bad}`:\n{output}",
            gtkw.display()
        );
    }
    let w = waves::without_ranges(waves::read(dump).unwrap());
    let field = |k: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{k}` in the report:\n{report}"))
    };
    assert!(field("dumpfile").ends_with(dump.file_name().unwrap().to_str().unwrap()));
    assert_eq!(field("maxtime"), w.end.to_string(), "{}", gtkw.display());
    // Every signal of the VCD is a facility, with the same name and width.
    let facs: std::collections::BTreeSet<String> = report
        .lines()
        .filter_map(|l| l.strip_prefix("fac "))
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        field("facilities"),
        w.signals.len().to_string(),
        "{}",
        gtkw.display()
    );
    for (sig, width) in &w.widths {
        let want = if *width > 1 {
            format!("{sig}[{}:0]", width - 1)
        } else {
            sig.clone()
        };
        assert!(
            facs.contains(&want),
            "{}: GTKWave lacks {want}",
            gtkw.display()
        );
    }
    // Every signal line of the save file became a trace (GTKWave drops ones it cannot find),
    // and so did each group's two markers.
    let save = std::fs::read_to_string(gtkw).unwrap();
    let signals = save.lines().filter(|l| l.starts_with("top.")).count();
    let markers = save.lines().filter(|l| l.starts_with('-')).count();
    assert!(signals > 0);
    assert_eq!(
        field("traces"),
        (signals + markers).to_string(),
        "{}: not every trace of the save file loaded",
        gtkw.display()
    );
}

/// A trace written as FST (`*.fst`) opens in GTKWave with its save file just as a VCD does.
#[test]
#[ignore = "needs gtkwave and xvfb-run (Debian: gtkwave xvfb xauth); .ci/run installs them and runs the ignored tool tests"]
fn gtkwave_opens_an_fst_trace_with_its_save_file() {
    assert!(
        have("gtkwave") && have("xvfb-run"),
        "this test needs gtkwave and xvfb-run (Debian: gtkwave xvfb xauth)"
    );
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gtkwave_fst");
    std::fs::create_dir_all(&scratch).unwrap();
    let fst = scratch.join("clock_crossing.fst");
    rowsim_tests::trace_clock_crossing(&fst);
    check_in_gtkwave(&fst.with_extension("gtkw"), &fst, &scratch);
}
