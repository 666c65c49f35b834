//! The `rowsim` binary, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rowsim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rowsim"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn config_check_prints_the_machine() {
    let out = rowsim()
        .args(["config", "check", "hw-configs/eyeriss-v1.toml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "PE array          12 x 14 (168 PEs)",
        "filter spad       224 x 16b (448 B, SRAM)",
        "global buffer     108 kB",
        "ifmap 16b, col ID 5b",
        "core 200 MHz, link 60 MHz",
        "33.6 GMAC/s",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let out = rowsim()
        .args(["config", "check", "hw-configs/tiny.toml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("3 x 4 (12 PEs)"));
}

#[test]
fn config_check_refuses_a_bad_config_with_file_line_and_field() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw-configs/eyeriss-v1.toml"),
    )
    .unwrap();
    let bad = scratch("bad.toml");
    std::fs::write(&bad, text.replace("bank_entries = 512", "bank_entries = 0")).unwrap();
    let out = rowsim()
        .arg("config")
        .arg("check")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("bank_entries"))
        .unwrap()
        + 1;
    let want = format!(
        "{}:{line}:16: field `glb.bank_entries`: 0 is outside the allowed range",
        bad.display()
    );
    assert!(err.contains(&want), "want `{want}` in:\n{err}");
}

#[test]
fn demo_runs_and_traces() {
    let vcd = scratch("demo.vcd");
    let out = rowsim()
        .args(["demo", "clock-crossing", "--words", "50", "--vcd"])
        .arg(&vcd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("50 words crossed"));
    let w = rowsim_tests::waves::read(&vcd).unwrap();
    assert_eq!(w.signals["top.link.consumer.count"].last().unwrap().1, 50);
    assert!(vcd.with_extension("gtkw").exists());
}

#[test]
fn bad_windows_and_globs_are_refused() {
    let out = rowsim()
        .args([
            "demo",
            "clock-crossing",
            "--vcd",
            "/dev/null",
            "--window",
            "50..10",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the end must be after the start"));
    let vcd = scratch("glob.vcd");
    let out = rowsim()
        .args(["demo", "clock-crossing", "--trace", "top.[", "--vcd"])
        .arg(&vcd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trace scope glob `top.[`"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_at_a_cycle_and_leaves_a_complete_vcd() {
    let vcd = scratch("interrupted.vcd");
    let _ = std::fs::remove_file(&vcd);
    let child = rowsim()
        .args([
            "demo",
            "clock-crossing",
            "--words",
            "1000000000",
            "--trace",
            "top.core.*",
            "--vcd",
        ])
        .arg(&vcd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it get going (the VCD header is written before the first edge).
    let start = Instant::now();
    while std::fs::metadata(&vcd).map_or(0, |m| m.len()) < 50_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never started tracing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8(out.stderr).unwrap();
    let cycle: u64 = err
        .split("stopped at cycle ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no stop cycle in:\n{err}"));
    assert!(err.contains("interrupted at cycle"), "{err}");
    // The VCD ends exactly at that cycle's edge and every line is whole.
    let w = rowsim_tests::waves::read(&vcd).unwrap();
    assert_eq!(w.end, cycle * 5_000, "{err}");
    assert!(std::fs::read_to_string(&vcd).unwrap().ends_with('\n'));
    assert!(
        err.contains(&format!("up to t = {} ps", cycle * 5_000)),
        "{err}"
    );
}
