//! `rowsim step` driven through a pipe, checked against the VCD of the same run.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use rowsim_tests::waves::{self, Waves};

mod common;
use common::{rowsim, scratch_in};

fn scratch(name: &str) -> PathBuf {
    scratch_in("step", name)
}

const LAYER: [&str; 4] = [
    "--hw",
    "hw-configs/tiny.toml",
    "--layer",
    "layers/tiny-conv.toml",
];
const PE: &str = "top.chip.pe_array.pe_r1_c1";

fn session(script: &str) -> (String, bool) {
    let mut child = rowsim()
        .arg("step")
        .args(LAYER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    (text, out.status.success())
}

/// The value a trace holds for `signal` at time `t` (the signal must be in it).
fn value_at(w: &Waves, signal: &str, t: u64) -> u64 {
    w.value_at(signal, t)
        .unwrap_or_else(|| panic!("{signal} has no value at {t} in the VCD"))
}

/// A block the session printed: `cycle N (t = T ps):` and the lines under it.
struct Block {
    cycle: u64,
    time: u64,
    lines: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cycle ").filter(|l| l.ends_with("ps):")) {
            let (c, t) = rest.split_once(" (t = ").unwrap();
            out.push(Block {
                cycle: c.parse().unwrap(),
                time: t.trim_end_matches(" ps):").parse().unwrap(),
                lines: Vec::new(),
            });
        } else if let Some(b) = out.last_mut() {
            if line.starts_with("  ") {
                b.lines.push(line.to_string());
            }
        }
    }
    out
}

/// `  name[15:0] = 0x00ab ...` -> (name, 0xab).
fn printed_values(b: &Block) -> Vec<(String, u64)> {
    b.lines
        .iter()
        .filter_map(|l| {
            let (name, v) = l.trim().split_once(" = ")?;
            let name = name.split('[').next()?.to_string();
            let v = v.split_whitespace().next()?;
            let v = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok()?,
                None => v.parse().ok()?,
            };
            Some((name, v))
        })
        .collect()
}

/// The psum spad a `state` block shows.
fn psum_spad(b: &Block) -> Vec<i16> {
    let at = b
        .lines
        .iter()
        .position(|l| l.trim_start().starts_with("psum_spad ("))
        .expect("a psum_spad section");
    b.lines[at + 1..]
        .iter()
        .take_while(|l| l.trim_start().starts_with('['))
        .flat_map(|l| {
            l.split(']')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .map(|v| v.parse::<i16>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The psum spad rebuilt from the VCD up to time `t`: each write stores `wr_data` at `wr_addr`,
/// and each drain (a psum out together with a spad read) clears the entry it read, as the PE's
/// psum registers clear as they are read out. The spad starts at zero and is cleared when a pass
/// configures the PE; both checks below are in the PE's first pass. A write or drain repeated
/// with the same address and data leaves no change in the VCD, and none in the spad either.
fn psum_spad_from_vcd(w: &Waves, entries: usize, t: u64) -> Vec<i16> {
    let sig = |n: &str| format!("{PE}.{n}");
    let names = [
        "psum_spad_wr_en",
        "psum_spad_wr_addr",
        "psum_spad_wr_data",
        "psum_spad_rd_en",
        "psum_spad_rd_addr",
        "psum_out_en",
    ];
    let mut times: Vec<u64> = names
        .iter()
        .flat_map(|n| w.signals[&sig(n)].iter().map(|c| c.0))
        .filter(|&x| x <= t)
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut spad = vec![0i16; entries];
    for x in times {
        let v = |n: &str| value_at(w, &sig(n), x);
        if v("psum_spad_wr_en") == 1 {
            spad[v("psum_spad_wr_addr") as usize] = v("psum_spad_wr_data") as u16 as i16;
        }
        if v("psum_out_en") == 1 && v("psum_spad_rd_en") == 1 {
            spad[v("psum_spad_rd_addr") as usize] = 0;
        }
    }
    spad
}

#[test]
fn a_piped_session_prints_what_the_vcd_of_the_same_run_holds() {
    let vcd = scratch("whole.vcd");
    let out = rowsim()
        .arg("run")
        .args(LAYER)
        .args(["--quiet", "--vcd"])
        .arg(&vcd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = waves::read(&vcd).unwrap();

    let script = format!(
        "# comments and blank lines are skipped\n\n\
         run until 240\n\
         print {PE}.psum_spad*\n\
         state {PE}\n\
         break {PE}.psum_out_en == 1\n\
         continue\n\
         print {PE}.*\n\
         print/d {PE}.psum_out_data\n\
         state {PE}\n\
         quit\n"
    );
    let (text, ok) = session(&script);
    assert!(ok, "the session failed");
    let b = blocks(&text);
    assert_eq!(b.len(), 5, "five printed blocks:\n{text}");
    // Every value printed equals the VCD's at the time the session says.
    for blk in [&b[0], &b[2]] {
        let vals = printed_values(blk);
        assert!(vals.len() >= 6, "{:?}", blk.lines);
        for (name, v) in vals {
            assert_eq!(
                v,
                value_at(&w, &name, blk.time),
                "{name} at cycle {}",
                blk.cycle
            );
        }
    }
    assert_eq!(b[0].cycle, 240);
    // The breakpoint: psum_out_en is 1 where the session stopped and 0 at every cycle between.
    let stop = &b[2];
    assert!(stop.cycle > 240);
    let en = format!("{PE}.psum_out_en");
    assert_eq!(value_at(&w, &en, stop.time), 1);
    let period = stop.time / stop.cycle;
    assert_eq!(b[0].time, 240 * period);
    for c in 240..stop.cycle {
        assert_eq!(
            value_at(&w, &en, c * period),
            0,
            "psum_out_en was 1 at cycle {c}"
        );
    }
    assert!(text.contains(&format!("hit breakpoint 1: {PE}.psum_out_en == 0x1")));
    // print/d shows the signed value.
    let d = &b[3].lines[0];
    let data = value_at(&w, &format!("{PE}.psum_out_data"), stop.time) as u16 as i16;
    assert!(d.ends_with(&format!("= {data}")), "{d}");
    // The psum spad `state` shows equals the one rebuilt from the VCD's write port, and the PE
    // did accumulate something by the breakpoint.
    assert!(
        text.contains("passes 0/"),
        "both stops are in the first pass"
    );
    for blk in [&b[1], &b[4]] {
        let shown = psum_spad(blk);
        assert_eq!(
            shown,
            psum_spad_from_vcd(&w, shown.len(), blk.time),
            "cycle {}",
            blk.cycle
        );
    }
    assert!(psum_spad(&b[4]).iter().any(|&v| v != 0));
}

#[test]
fn a_session_runs_to_the_end_writes_a_vcd_from_where_it_started_and_reports_bad_commands() {
    let vcd = scratch("part.vcd");
    let script = format!(
        "step 5\n\
         step\n\
         vcd start {} {PE}\n\
         watch {PE}.state\n\
         run until {PE}.state == 4\n\
         vcd stop\n\
         print no.such.signal\n\
         frobnicate\n\
         run\n\
         step\n",
        vcd.display()
    );
    let (text, ok) = session(&script);
    assert!(!ok, "bad commands make a piped session fail");
    assert!(text.contains("cycle 6 (t = "), "{text}");
    assert!(text.contains("error: line 7: `print no.such.signal`: no signal matches"));
    assert!(text.contains("error: line 8: `frobnicate`: unknown command"));
    assert!(text.contains("the ofmap equals the reference convolution bit for bit"));
    assert!(text.contains("error: line 10: `step`: the layer is over"));
    // The watch reported each state change, and the run stopped where the state became 4 (Done).
    let lines: Vec<&str> = text.lines().collect();
    let changes = lines
        .iter()
        .filter(|l| l.contains(".state[2:0] = "))
        .count();
    assert!(changes >= 6, "{text}");
    let reached = lines
        .iter()
        .position(|l| *l == format!("reached {PE}.state == 0x4"))
        .unwrap();
    assert!(lines[reached - 1].ends_with(".state[2:0] = 0x4 4"));
    assert!(lines[reached - 2].ends_with(".state[2:0] = 0x3 3"));
    // The VCD holds only the PE, from cycle 6 on.
    let w = waves::read(&vcd).unwrap();
    assert!(w.signals.keys().all(|k| k.starts_with(PE)));
    let first = w
        .signals
        .values()
        .filter_map(|c| c.first())
        .map(|c| c.0)
        .min()
        .unwrap();
    assert_eq!(
        first,
        6 * 5000,
        "the VCD opens at the cycle `vcd start` ran at"
    );
    assert!(std::fs::metadata(vcd.with_extension("gtkw")).is_ok());
}
