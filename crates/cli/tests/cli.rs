//! The `rowsim` binary, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{rowsim, scratch_in, wait_at_most, write_scalesim};

fn scratch(name: &str) -> PathBuf {
    scratch_in("cli", name)
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
    interrupt_stops_at_a_cycle_and_leaves_a_complete_vcd("INT");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_a_run_like_ctrl_c() {
    interrupt_stops_at_a_cycle_and_leaves_a_complete_vcd("TERM");
}

/// A closed stdout ends a command quietly, killed by SIGPIPE as any Unix tool is: no panic.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // Outputs larger than a pipe's buffer (64 KiB), so the command is still writing when the
    // pipe closes however late that is.
    for args in [
        &["map", "--layer", "alexnet:conv3", "--top", "3000"][..],
        &["map", "--net", "alexnet", "--top", "1000"][..],
    ] {
        let mut child = rowsim()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command prints anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(
            out.status.signal(),
            Some(libc_sigpipe()),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}

#[cfg(unix)]
fn libc_sigpipe() -> i32 {
    13 // SIGPIPE on Linux and the BSDs
}

#[cfg(unix)]
fn interrupt_stops_at_a_cycle_and_leaves_a_complete_vcd(signal: &str) {
    let vcd = scratch(&format!("interrupted_{signal}.vcd"));
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
        .arg(format!("-{signal}"))
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

#[test]
fn map_prints_the_mapping_accesses_and_energy() {
    let out = rowsim()
        .args(["map", "--layer", "alexnet:conv1", "--top", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "mapping   m=96 n=1 e=7 p=16 q=1 r=1 t=2",
        "PEs used  154 of 168",
        "DRAM bytes:",
        "the 3 best mappings for energy:",
        "(the best for energy of ",
        "cycles    at least ",
        "by type:  filter",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let out = rowsim()
        .args([
            "map",
            "--layer",
            "alexnet:conv3",
            "--batch",
            "4",
            "--json",
            "--top",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["batch"], 4);
    assert_eq!(v["macs"], 4 * 149_520_384u64);
    assert_eq!(v["top"].as_array().unwrap().len(), 2);
    let c = &v["chosen"]["counts"];
    for level in ["dram_reads", "glb_reads", "noc", "spad_reads"] {
        for t in ["filter", "ifmap", "psum"] {
            assert!(c[level][t].is_u64(), "{level}.{t}");
        }
    }
    let e = &v["chosen"]["energy"];
    let total = e["total"].as_f64().unwrap();
    let levels: f64 = ["dram", "glb", "noc", "spad", "mac"]
        .iter()
        .map(|k| e["by_level"][k].as_f64().unwrap())
        .sum();
    assert!((total - levels).abs() < 1e-6 * total);
}

#[test]
fn map_validates_pinned_mappings_from_flags_and_layer_files() {
    let out = rowsim()
        .args([
            "map",
            "--layer",
            "alexnet:conv2",
            "--mapping",
            "m=64,n=1,e=27,p=16,q=2,r=1,t=1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("(pinned)") && text.contains("PEs used  135 of 168"),
        "{text}"
    );

    let file = scratch("layer.toml");
    std::fs::write(&file, "[layer]\nname = \"mine:conv\"\nc = 64\nh = 28\nw = 28\nm = 64\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\npad = 1\n\n[mapping]\nm = 64\nn = 1\ne = 14\np = 16\nq = 4\nr = 1\nt = 1\n").unwrap();
    let out = rowsim()
        .args(["map", "--layer"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("m=64 n=1 e=14 p=16 q=4 r=1 t=1   (pinned)"));

    std::fs::write(&file, "[layer]\nname = \"mine:conv\"\nc = 64\nh = 28\nw = 28\nm = 64\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\n\n[mapping]\nm = 64\nn = 1\ne = 28\np = 16\nq = 5\nr = 1\nt = 1\n").unwrap();
    let out = rowsim()
        .args(["map", "--layer"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("q*r=5 must divide the channels per group C=64"),
        "{err}"
    );

    std::fs::write(&file, "[layer]\nname = \"x\"\nc = 64\nh = 28\nw = 28\nm = 64\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\nstrid = 2\n").unwrap();
    let out = rowsim()
        .args(["map", "--layer"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("{}:11:1: unknown field `strid`", file.display())),
        "{err}"
    );
}

#[test]
fn map_refuses_layers_outside_the_machine() {
    let file = scratch("tall.toml");
    std::fs::write(&file, "[layer]\nname = \"tall\"\nc = 3\nh = 64\nw = 64\nm = 8\nr = 13\ns = 3\nstride_v = 1\nstride_h = 1\n").unwrap();
    let out = rowsim()
        .args(["map", "--layer"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("filter height R is 13; the machine supports at most 12 (hw-config `limits.max_filter_height`)"), "{err}");
}

#[test]
fn run_verifies_a_layer_and_writes_its_statistics() {
    let file = scratch("tiny_layer.toml");
    std::fs::write(&file, "[layer]\nname = \"tinynet:conv2\"\nn = 2\nc = 8\nh = 5\nw = 5\nm = 12\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\npad = 1\ngroups = 2\nifmap_zero_fraction = 0.4\n").unwrap();
    let stats = scratch("tiny_stats.json");
    let out = rowsim()
        .args([
            "run",
            "--hw",
            "hw-configs/tiny.toml",
            "--seed",
            "5",
            "--layer",
        ])
        .arg(&file)
        .arg("--stats-json")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("bit-exact against the reference convolution"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let s = &v[0];
    for key in [
        "hw",
        "layer",
        "batch",
        "seed",
        "mapping",
        "cycles",
        "time_ms",
        "macs",
        "ifmap_zero_fraction",
        "accesses_words",
        "dram_bytes",
        "energy",
        "verified",
    ] {
        assert!(!s[key].is_null(), "stats lack `{key}`");
    }
    for key in ["m", "n", "e", "p", "q", "r", "t", "pes_used", "passes"] {
        assert!(s["mapping"][key].is_u64(), "mapping.{key}");
    }
    for level in ["dram", "glb", "noc", "spad"] {
        for t in ["filter", "ifmap", "psum"] {
            assert!(s["accesses_words"][level][t].is_u64(), "{level}.{t}");
        }
    }
    assert_eq!(s["verified"], true);
    assert_eq!(s["macs"]["total"], 21600);
    assert_eq!(s["seed"], 5);
    assert_eq!(
        s["dram_bytes"]["write"].as_u64().unwrap(),
        2 * s["accesses_words"]["dram"]["psum"].as_u64().unwrap()
    );
}

fn write_npy(path: &Path, shape: &[u64], data: &[i16]) {
    use npyz::WriterBuilder;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut f)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

#[test]
fn run_takes_npy_tensors_and_writes_the_ofmap_as_npy() {
    use rowsim_workload::{reference_conv, synthetic_ifmap, synthetic_weights, Formats};
    let file = scratch("npy_layer.toml");
    std::fs::write(&file, "[layer]\nname = \"npy:conv\"\nc = 2\nh = 6\nw = 7\nm = 4\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\npad = 1\n").unwrap();
    let (layer, _) = rowsim_mapper::layer_file::load(&file).unwrap();
    // Tensors from another seed than the run's, so the run must have used the files.
    let x = synthetic_ifmap(&layer, 99, Formats::DEFAULT);
    let w = synthetic_weights(&layer, 99, Formats::DEFAULT);
    let (xi, wi, oo) = (scratch("x.npy"), scratch("w.npy"), scratch("o.npy"));
    write_npy(&xi, &[1, 2, 6, 7], &x.data);
    write_npy(&wi, &[4, 2, 3, 3], &w.data);
    let out = rowsim()
        .args(["run", "--hw", "hw-configs/tiny.toml", "--layer"])
        .arg(&file)
        .arg("--ifmap")
        .arg(&xi)
        .arg("--weights")
        .arg(&wi)
        .arg("--ofmap")
        .arg(&oo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&oo).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[1, 4, 6, 7]);
    let got: Vec<i16> = npy.into_vec().unwrap();
    let (want, _) = reference_conv(&layer, &x, &w, Formats::DEFAULT.mac(), true).unwrap();
    assert_eq!(got, want.data);

    // A wrong shape names the file and the shape the layer needs.
    write_npy(&xi, &[1, 2, 7, 6], &x.data);
    let out = rowsim()
        .args(["run", "--hw", "hw-configs/tiny.toml", "--layer"])
        .arg(&file)
        .arg("--ifmap")
        .arg(&xi)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("x.npy: shape [1, 2, 7, 6]; this layer needs [N, C, H, W] = [1, 2, 6, 7]"),
        "{err}"
    );
}

#[test]
fn report_tabulates_statistics_and_draws_svg_charts_that_render() {
    let stats = scratch("report_stats.json");
    let out = rowsim()
        .args(["run", "--quiet", "--hw", "hw-configs/tiny.toml"])
        .args([
            "--layer",
            "layers/tiny-conv.toml",
            "--batch",
            "2",
            "--stats-json",
        ])
        .arg(&stats)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = scratch("report.svg");
    let out = rowsim()
        .arg("report")
        .arg(&stats)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // The table's numbers, recomputed from the JSON.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let s = &v[0];
    let macs = s["macs"]["total"].as_f64().unwrap();
    let e = &s["energy"];
    let dram = &s["accesses_words"]["dram"];
    let dram_words: f64 = ["filter", "ifmap", "psum"]
        .iter()
        .map(|k| dram[k].as_f64().unwrap())
        .sum();
    let row = text
        .lines()
        .find(|l| l.starts_with("tiny:conv "))
        .expect(&text);
    let want = [
        s["cycles"]["core_total"].to_string(),
        s["macs"]["total"].to_string(),
        format!("{:.3}", e["total"].as_f64().unwrap() / macs),
        format!("{:.3}", e["by_level"]["dram"].as_f64().unwrap() / macs),
        format!("{:.3}", e["by_level"]["spad"].as_f64().unwrap() / macs),
        format!("{:.3}", e["by_type"]["psum"].as_f64().unwrap() / macs),
        format!("{:.4}", dram_words / macs),
    ];
    for w in want {
        assert!(
            row.split_whitespace().any(|c| c == w),
            "`{w}` missing from `{row}`"
        );
    }
    // The SVG: three charts, the layer's bars and the legends; and it renders.
    let doc = std::fs::read_to_string(&svg).unwrap();
    for t in [
        "Energy per MAC by level",
        "by data type",
        "Core cycles per layer",
        "tiny:conv",
        "DRAM",
        "spad (RF)",
        "psums",
        "PE cycles by what the PEs did",
        "stall psum in",
        "PE utilization",
    ] {
        assert!(doc.contains(t), "`{t}` missing from the SVG");
    }
    // The heatmap: a cell per PE of the 3 x 4 tiny array, coloured or grey.
    assert_eq!(s["array"], serde_json::json!([3, 4]));
    assert!(!s["pe_utilization"].as_array().unwrap().is_empty());
    // That it renders: `the_report_and_compare_svgs_render` (needs rsvg-convert).
    // Bad input names the file and where.
    let bad = scratch("bad_stats.json");
    std::fs::write(&bad, "[{\"hw\": \"tiny\"}]").unwrap();
    let out = rowsim().arg("report").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad_stats.json:1:") && err.contains("missing field"),
        "{err}"
    );
}

#[test]
fn sweep_shards_merged_equal_the_unsharded_sweep_line_for_line() {
    let csv = scratch("sweep_net.csv");
    write_scalesim(&csv, "T1, 9, 9, 3, 3, 2, 4, 2,\n");
    let sweep = |out: &Path, extra: &[&str], env: &[(&str, &str)]| {
        let mut c = rowsim();
        c.args(["sweep", "--hw", "hw-configs/tiny.toml"])
            .args(["--set", "array.cols=3,4", "--set", "spad.psum.entries=8,16"])
            .args(["--layer", "layers/tiny-conv.toml", "--layer"])
            .arg(format!("{}:T1", csv.display()))
            .args(["--jobs", "2", "-o"])
            .arg(out)
            .args(extra)
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("SLURM_ARRAY_TASK_COUNT")
            .env_remove("SLURM_ARRAY_TASK_MIN");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let full = sweep(&scratch("sweep_full.jsonl"), &[], &[]);
    let s0 = scratch("sweep_s0.jsonl");
    let s1 = scratch("sweep_s1.jsonl");
    let a = sweep(&s0, &["--shard", "0/2"], &[]);
    // The second shard from Slurm's job-array variables (an array numbered from 1).
    let b = sweep(
        &s1,
        &[],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ],
    );
    let lines: Vec<&str> = full.lines().collect();
    assert_eq!(lines.len(), 8);
    for (k, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["index"], k as u64);
        assert!(v["stats"]["verified"].as_bool().unwrap(), "point {k}: {l}");
    }
    let idx = |t: &str| -> Vec<u64> {
        t.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(idx(&a), vec![0, 2, 4, 6]);
    assert_eq!(idx(&b), vec![1, 3, 5, 7]);
    // The array width changes the run; the psum spad size does not matter to these layers.
    let v0: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let v4: serde_json::Value = serde_json::from_str(lines[4]).unwrap();
    assert_eq!(v0["point"]["array.cols"], 3);
    assert_ne!(v0["stats"]["cycles"], v4["stats"]["cycles"]);

    let merged = scratch("sweep_merged.jsonl");
    let o = rowsim()
        .arg("merge")
        .arg(&s1)
        .arg(&s0)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&merged).unwrap(),
        full,
        "merged shards == unsharded sweep"
    );

    let o = rowsim().arg("merge").arg(&s0).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("4 of 8 points are missing: 1, 3, 5, 7"));
    let o = rowsim()
        .arg("merge")
        .arg(&s0)
        .arg(&s1)
        .arg(&s0)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sweep_s0.jsonl:1: point 0 is duplicated (also at "),
        "{err}"
    );
    // Shards of another seed, of another grid with as many points, and a --dry-run listing
    // (points without results) are refused, naming the file and line.
    let refuse = |other: &Path, want: &str| {
        let o = rowsim().arg("merge").arg(&s0).arg(other).output().unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
    };
    let seed2 = scratch("sweep_seed2.jsonl");
    sweep(&seed2, &["--shard", "1/2", "--seed", "2"], &[]);
    refuse(&seed2, "has seed 1: shards of sweeps with different seeds");
    let grid2 = scratch("sweep_grid2.jsonl");
    let mut c = rowsim();
    c.args(["sweep", "--hw", "hw-configs/tiny.toml"])
        .args(["--set", "array.cols=3,4", "--set", "spad.psum.entries=8,12"])
        .args(["--layer", "layers/tiny-conv.toml", "--layer"])
        .arg(format!("{}:T1", csv.display()))
        .args(["--shard", "1/2", "-o"])
        .arg(&grid2);
    assert!(c.output().unwrap().status.success());
    refuse(&grid2, "shards of different sweeps");
    let dry = scratch("sweep_dry.jsonl");
    sweep(&dry, &["--shard", "1/2", "--dry-run"], &[]);
    refuse(
        &dry,
        "sweep_dry.jsonl:1: a record with neither `stats` nor `error`",
    );
    // And the merged sweep reports.
    let o = rowsim().arg("report").arg(&merged).output().unwrap();
    assert!(o.status.success());
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("tiny:conv [array.cols=3,spad.psum.entries=8]"),
        "{table}"
    );
}

/// `rowsim compare`: every dataflow of a small network through its ISCA 2016 machine, cycle by
/// cycle and in closed form. The simulated points are bit-exact, their counts (and so their
/// energy) equal the closed form's, their cycles are at least the closed form's lower bound, and
/// `rowsim report` reads the JSON lines back.
#[test]
fn compare_runs_every_dataflow_and_the_closed_form_equals_the_simulation() {
    let net = scratch("small-net.csv");
    write_scalesim(
        &net,
        "A, 9, 10, 3, 3, 4, 6, 1,\n\
         B, 11, 11, 5, 3, 3, 4, 2,\n",
    );
    let read = |path: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut runs = Vec::new();
    for simulate in [true, false] {
        let json = scratch(&format!("compare-{simulate}.jsonl"));
        let svg = scratch(&format!("compare-{simulate}.svg"));
        let mut cmd = rowsim();
        cmd.args(["compare", "--net"])
            .arg(&net)
            .args(["--batch", "2", "--json"])
            .arg(&json)
            .arg("--svg")
            .arg(&svg);
        if simulate {
            cmd.arg("--simulate");
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for df in ["RS", "WS", "OSA", "OSB", "OSC", "NLR"] {
            assert!(
                stdout.contains(&format!(" {df} ")),
                "{df} missing:\n{stdout}"
            );
        }
        assert!(
            stdout.contains("small-net:A: ") || stdout.contains("A: "),
            "{stdout}"
        );
        // Bars grouped by layer, coloured by dataflow, with a legend naming each dataflow; and
        // the file renders.
        let doc = std::fs::read_to_string(&svg).unwrap();
        assert!(doc.contains("<svg"));
        assert!(
            doc.contains("Energy per MAC, by layer and dataflow"),
            "{doc}"
        );
        for df in ["rs", "ws", "osa", "osb", "osc", "nlr"] {
            assert!(
                doc.contains(&format!(">\n{df}\n<")),
                "no legend entry `{df}`"
            );
        }
        // That it renders: `the_report_and_compare_svgs_render` (needs rsvg-convert).
        let points = read(&json);
        assert_eq!(points.len(), 12);
        runs.push(points);
    }
    for (sim, closed) in runs[0].iter().zip(&runs[1]) {
        assert_eq!(sim["point"], closed["point"]);
        assert_eq!(sim["simulated"], true);
        assert_eq!(sim["stats"]["verified"], true, "{sim}");
        for k in ["accesses_words", "macs", "energy", "mapping", "dram_bytes"] {
            assert_eq!(
                sim["stats"][k], closed["stats"][k],
                "{k} of {}",
                sim["point"]
            );
        }
        for k in ["core_total", "core_processing"] {
            let cycles = |v: &serde_json::Value| v["stats"]["cycles"][k].as_u64().unwrap();
            assert!(
                cycles(sim) >= cycles(closed),
                "{}: {k} {} < bound {}",
                sim["point"],
                cycles(sim),
                cycles(closed)
            );
        }
        assert_eq!(
            sim["stats"]["cycles"]["bound"],
            closed["stats"]["cycles"]["core_total"]
        );
        // The mapping keeps to its dataflow's letters.
        let m = &sim["stats"]["mapping"];
        match sim["point"].as_str().unwrap() {
            "ws" => assert_eq!(m["q"], 1),
            "osa" => assert_eq!(
                (&m["r"], &m["p"], &m["t"]),
                (&1.into(), &1.into(), &1.into())
            ),
            "osb" => assert_eq!(m["r"], 1),
            "osc" => assert_eq!((&m["r"], &m["e"]), (&1.into(), &1.into())),
            "nlr" => assert_eq!(
                (&m["q"], &m["p"], &m["n"]),
                (&1.into(), &1.into(), &1.into())
            ),
            _ => {}
        }
    }
    let out = rowsim()
        .arg("report")
        .arg(scratch("compare-true.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("[nlr]"), "{stdout}");
}

#[test]
fn compare_refuses_unknown_dataflows_and_mismatched_machines() {
    let out = rowsim()
        .args(["compare", "--dataflows", "rs,xs"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown dataflow `xs`"),
        "{err}"
    );
    let dir = scratch_in("cli-machines", "ws.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw-configs/isca2016/rs.toml"),
        &dir,
    )
    .unwrap();
    let out = rowsim()
        .args(["compare", "--dataflows", "ws", "--configs"])
        .arg(dir.parent().unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("ws.toml: machine.dataflow is `rs`"),
        "{err}"
    );
}

/// `--objective`: `map` ranks by it and says so, `run` records it, and choosing for delay never
/// gives a larger cycle bound than choosing for energy.
#[test]
fn the_objective_is_chosen_printed_and_recorded() {
    let map = |objective: &str| -> serde_json::Value {
        let out = rowsim()
            .args([
                "map",
                "--hw",
                "hw-configs/tiny.toml",
                "--layer",
                "layers/tiny-conv.toml",
            ])
            .args(["--objective", objective, "--json", "--top", "100"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (energy, delay, edp) = (map("energy"), map("delay"), map("edp"));
    assert_eq!(delay["objective"], "delay");
    let d = |v: &serde_json::Value| v["chosen"]["delay"].as_u64().unwrap();
    let e = |v: &serde_json::Value| v["chosen"]["energy"]["total"].as_f64().unwrap();
    assert!(d(&delay) <= d(&energy));
    assert!(e(&energy) <= e(&delay));
    assert!(e(&edp) * d(&edp) as f64 <= e(&energy) * d(&energy) as f64);
    for r in delay["top"].as_array().unwrap() {
        assert!(r["delay"].as_u64().unwrap() >= d(&delay));
    }
    // `chip`: no mapping keeps more PEs at work on average, and of those that keep as many,
    // none costs less energy.
    let chip = map("chip");
    assert_eq!(chip["objective"], "chip");
    let a = |v: &serde_json::Value| v["active_pes"].as_f64().unwrap();
    let best = &chip["chosen"];
    for r in chip["top"].as_array().unwrap() {
        assert!(a(r) <= a(best));
        if a(r) == a(best) {
            assert!(r["energy"]["total"].as_f64().unwrap() >= e(&chip));
        }
    }
    let bad = rowsim()
        .args(["map", "--layer", "alexnet:conv1", "--objective", "speed"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("energy, delay, edp or chip"));

    let stats = scratch("objective.json");
    let out = rowsim()
        .args([
            "run",
            "--hw",
            "hw-configs/tiny.toml",
            "--layer",
            "layers/tiny-conv.toml",
        ])
        .args(["--objective", "delay", "--quiet", "--stats-json"])
        .arg(&stats)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(chosen for delay)"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(v[0]["objective"], "delay");
    assert_eq!(v[0]["cycles"]["bound"].as_u64().unwrap(), d(&delay));
    assert!(v[0]["cycles"]["core_total"].as_u64().unwrap() >= d(&delay));
}

/// Output paths: a layer name never leads a trace out of its folder, two layers never share a
/// trace file, and an output that is an input or another output is refused before anything runs.
#[test]
fn output_paths_stay_in_their_folder_and_never_clash() {
    let dir = scratch("paths");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let escaped = std::env::temp_dir().join(format!("ESCAPED_{}", std::process::id()));
    let csv = dir.join("net.csv");
    write_scalesim(
        &csv,
        &format!(
            "x/../../../../../..{}, 5, 5, 3, 3, 1, 2, 1,\n\
             a.b, 5, 5, 3, 3, 1, 2, 1,\n\
             a/b, 5, 5, 3, 3, 1, 2, 1,\n",
            escaped.display()
        ),
    );
    let out = dir.join("out");
    let o = rowsim()
        .args(["run", "--hw", "tiny", "-q", "--net"])
        .arg(&csv)
        .arg("--vcd")
        .arg(out.join("t.vcd"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!escaped.with_extension("vcd").exists() && !escaped.exists());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".vcd"))
        .collect();
    names.sort();
    // Three layers, three traces, every one in the folder; `a.b` and `a/b` both become `a_b`.
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"t_a_b.vcd".to_string()), "{names:?}");
    assert!(names.contains(&"t_a_b_3.vcd".to_string()), "{names:?}");

    // An output that is an input, or two outputs that are one file: refused before running.
    let layer = dir.join("layer.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../layers/tiny-conv.toml"),
        &layer,
    )
    .unwrap();
    let before = std::fs::read(&layer).unwrap();
    let o = rowsim()
        .args(["run", "--hw", "tiny", "-q", "--layer"])
        .arg(&layer)
        .arg("--stats-json")
        .arg(dir.join("x/../layer.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("would overwrite an input of this run"),
        "{err}"
    );
    assert!(!err.contains("running"), "checked before running: {err}");
    assert_eq!(std::fs::read(&layer).unwrap(), before);
    let o = rowsim()
        .args(["run", "--hw", "tiny", "-q", "--layer"])
        .arg(&layer)
        .arg("--vcd")
        .arg(dir.join("same.json"))
        .arg("--stats-json")
        .arg(dir.join("same.json"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("both the trace and the statistics (--stats-json) would be written"),
        "{err}"
    );
}

/// A `--net` run interrupted in its second layer keeps the first layer's statistics in
/// `--stats-json` and says so.
#[cfg(unix)]
#[test]
fn an_interrupted_net_run_keeps_the_statistics_of_the_layers_that_finished() {
    let dir = scratch("interrupted_net");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("net.csv");
    write_scalesim(
        &csv,
        "small, 5, 5, 3, 3, 1, 2, 1,\n\
         large, 224, 224, 3, 3, 16, 32, 1,\n",
    );
    let stats = dir.join("stats.json");
    let _ = std::fs::remove_file(&stats);
    let mut child = rowsim()
        .args(["run", "--hw", "tiny", "-q", "--net"])
        .arg(&csv)
        .arg("--stats-json")
        .arg(&stats)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, text, rest) = signal_once(&mut child, "-INT", |line| {
        line.contains("running") && line.contains("large")
    });
    assert_eq!(status.code(), Some(130), "{text}{rest}");
    assert!(
        rest.contains("the statistics of the 1 layer(s) that finished"),
        "{rest}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let layers = v.as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert!(layers[0]["layer"].as_str().unwrap().ends_with("small"));
    assert!(layers[0]["verified"].as_bool().unwrap());
}

/// `--zero-fraction` sets the synthetic ifmap's zeros (and the mapper's expectation of them) for
/// any layer, imported ones included; `map --net` maps a whole network as `run --net` runs it.
#[test]
fn zero_fraction_and_map_net() {
    let csv = scratch("zf_net.csv");
    write_scalesim(
        &csv,
        "A, 9, 9, 3, 3, 2, 4, 1,\n\
         B, 7, 7, 3, 3, 4, 4, 1,\n",
    );
    let stats = scratch("zf_stats.json");
    let o = rowsim()
        .args([
            "run",
            "--hw",
            "tiny",
            "-q",
            "--zero-fraction",
            "0.8",
            "--layer",
        ])
        .arg(format!("{}:A", csv.display()))
        .arg("--stats-json")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    // The host figures are the run's own: cycles per second is the core cycles over the
    // emulation's seconds, the ratio the two times'.
    let h = &v[0]["host"];
    let (emu, reference) = (
        h["emulation_s"].as_f64().unwrap(),
        h["reference_s"].as_f64().unwrap(),
    );
    assert!(emu > 0.0 && reference > 0.0, "{h}");
    let cycles = v[0]["cycles"]["core_total"].as_f64().unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(
        rel(h["core_cycles_per_s"].as_f64().unwrap(), cycles / emu),
        "{h}"
    );
    assert!(
        rel(
            h["emulation_over_reference"].as_f64().unwrap(),
            emu / reference
        ),
        "{h}"
    );
    // Where the host's time went: the top three kinds of component, most steps first, within
    // the totals (a layer's chip steps its PEs, NoC, GLB and DRAM blocks at least once each).
    let kinds = h["top_kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 3, "{h}");
    let per = |k: &serde_json::Value, f: &str| k[f].as_f64().unwrap();
    let (steps, links) = (
        per(h, "steps_per_cycle"),
        per(h, "link_interactions_per_cycle"),
    );
    assert!(steps > 0.0 && links > 0.0, "{h}");
    assert!(kinds
        .windows(2)
        .all(|w| per(&w[0], "steps_per_cycle") >= per(&w[1], "steps_per_cycle")));
    let top: f64 = kinds.iter().map(|k| per(k, "steps_per_cycle")).sum();
    let top_links: f64 = kinds
        .iter()
        .map(|k| per(k, "link_interactions_per_cycle"))
        .sum();
    assert!(
        top <= steps * (1.0 + 1e-9) && top_links <= links * (1.0 + 1e-9),
        "{h}"
    );
    // Each a kind of the chip's blocks (which three lead depends on the layer).
    let chip_kinds = [
        "Pe",
        "Gin",
        "Gon",
        "Glb",
        "TopController",
        "DramController",
        "Inbound",
        "Outbound",
        "AsyncFifoWrite",
        "AsyncFifoRead",
        "Merge",
    ];
    assert!(
        kinds
            .iter()
            .all(|k| chip_kinds.contains(&k["kind"].as_str().unwrap())),
        "{h}"
    );
    let zf = v[0]["ifmap_zero_fraction"].as_f64().unwrap();
    assert!((zf - 0.8).abs() < 0.1, "{zf}");
    assert!(v[0]["verified"].as_bool().unwrap());
    // More zeros, less energy (gated MACs and spad reads), for the same mapping.
    let energy = |zf: &str| -> f64 {
        let o = rowsim()
            .args([
                "map",
                "--layer",
                "alexnet:conv3",
                "--json",
                "--zero-fraction",
                zf,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["chosen"]["energy"]["total"].as_f64().unwrap()
    };
    assert!(energy("0.9") < energy("0.1"));
    let o = rowsim()
        .args(["run", "--zero-fraction", "1.5"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("a fraction of zeros is from 0 to 1"));
    let o = rowsim()
        .args(["map", "--hw", "tiny", "--net"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.matches("\nmapping   ").count() + usize::from(text.starts_with("mapping")),
        2,
        "{text}"
    );
}

/// Ctrl-C while the mapper is still searching (a layer of 4 million rows of 9 values under 64
/// filters of 1 x 9 prices slowly) ends the command at once with status 130, not after the
/// search.
#[cfg(unix)]
#[test]
fn ctrl_c_during_mapping_ends_the_command_at_once() {
    let csv = scratch("slow_map.csv");
    write_scalesim(&csv, "Conv1a, 4186116, 9, 1, 9, 1, 64, 1,\n");
    let mut child = rowsim()
        .args(["run", "-q", "--layer"])
        .arg(format!("{}:Conv1a", csv.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the mapping ended too soon to test"
    );
    let kill = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_at_most(&mut child, Duration::from_secs(10), "mapping after Ctrl-C");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted (no simulation was running)"),
        "{err}"
    );
}

/// A full disk on stdout (`/dev/full`) ends the command with a clear error and status 1, no panic.
/// Ignored by `cargo test`: a machine (a container) may have no `/dev/full`, or a plain file by
/// that name; `.ci/run` runs it, and it checks first that it is the character device.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs /dev/full to be the character device; .ci/run runs it"]
fn a_full_disk_on_stdout_is_a_clear_error() {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata("/dev/full").map(|m| m.file_type());
    assert!(
        kind.as_ref().is_ok_and(|k| k.is_char_device()),
        "/dev/full is not the character device here ({kind:?}): this test needs it"
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = rowsim()
        .args(["map", "--layer", "alexnet:conv1"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("error: cannot write to standard output: No space left on device"),
        "{err}"
    );
}

/// The SVGs `rowsim report` and `rowsim compare` draw are valid: rsvg-convert renders them to
/// PNGs of some size. Ignored by `cargo test` (it needs rsvg-convert, Debian's librsvg2-bin);
/// `.ci/run` installs it and runs this.
#[test]
#[ignore = "needs rsvg-convert (Debian: librsvg2-bin); .ci/run installs it and runs it"]
fn the_report_and_compare_svgs_render() {
    let stats = scratch("render_stats.json");
    let net = scratch("render-net.csv");
    write_scalesim(&net, "A, 9, 10, 3, 3, 4, 6, 1,\n");
    let ok = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (report, compare) = (scratch("render_report.svg"), scratch("render_compare.svg"));
    ok(rowsim()
        .args([
            "run",
            "-q",
            "--hw",
            "tiny",
            "--layer",
            "layers/tiny-conv.toml",
        ])
        .arg("--stats-json")
        .arg(&stats));
    ok(rowsim().arg("report").arg(&stats).arg("--svg").arg(&report));
    ok(rowsim()
        .args(["compare", "--net"])
        .arg(&net)
        .arg("--svg")
        .arg(&compare));
    // A model run's report draws its per-node chart too.
    let model = scratch("render-encoder.onnx");
    std::fs::write(&model, rowsim_model::build::encoder_layer()).unwrap();
    let (model_stats, model_report) = (scratch("render_model.json"), scratch("render_model.svg"));
    ok(rowsim()
        .args(["run", "-q", "--hw", "tiny", "--batch", "2", "--net"])
        .arg(&model)
        .arg("--stats-json")
        .arg(&model_stats));
    ok(rowsim()
        .arg("report")
        .arg(&model_stats)
        .arg("--svg")
        .arg(&model_report));
    let nodes = model_report.with_file_name("render_model-nodes.svg");
    for svg in [report, compare, model_report, nodes] {
        let png = svg.with_extension("png");
        let r = Command::new("rsvg-convert")
            .arg("-o")
            .arg(&png)
            .arg(&svg)
            .status()
            .expect("rsvg-convert (Debian: librsvg2-bin) renders the SVG; .ci/run installs it");
        assert!(r.success(), "rsvg-convert refused {}", svg.display());
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "{}",
            png.display()
        );
    }
}

/// What `config check` accepts runs: the tiny layer at each end of every range the check
/// allows (one field at a time) either runs, bit-exact, or has no legal mapping; no config the
/// check passed fails in the middle of a run (an ifmap spad of 100 entries once did).
#[test]
fn every_config_the_check_accepts_runs_or_has_no_mapping() {
    let fields: &[&[&str]] = &[
        // The ifmap spad's largest: its zero buffer has a bit an entry.
        &["spad.ifmap.entries=64", "datapath.zero_buffer_bits=64"],
        &["clocks.core_hz=1000000,10000000000"],
        &["clocks.link_hz=1000000,10000000000"],
        &["spad.filter.entries=1,65536"],
        &["spad.psum.entries=1,65536"],
        &["pe.ifmap_fifo_depth=1,1024"],
        &["pe.psum_out_fifo_depth=1,1024"],
        &["glb.shared_banks=1,1024"],
        &["glb.filter_banks=1,1024"],
        &["glb.ports_per_bank=1,4"],
        &["dram.access_latency_cycles=1,100000"],
        &["dram.request_queue_depth=1,4096"],
        &["dram.async_fifo_depth=1,4096"],
        &["dram.sync_stages=1,4"],
        &["rlc.run_bits=1,5"],
        &["rlc.pairs_per_word=1,3"],
    ];
    for sets in fields {
        let f = sets.join(" ");
        let mut c = rowsim();
        c.args(["sweep", "--hw", "tiny", "--layer", "layers/tiny-conv.toml"]);
        for s in *sets {
            c.args(["--set", s]);
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            match v.get("error") {
                Some(e) => assert!(
                    e.as_str().unwrap().contains("no legal RS mapping"),
                    "{f}: {line}"
                ),
                None => assert_eq!(v["stats"]["verified"], true, "{f}: {line}"),
            }
        }
    }
}

/// A sweep interrupted (SIGTERM) after its first point stops the point running at a cycle
/// boundary, starts no more, and keeps every line already written, whole and in index order;
/// status 130 and a message say how far it got. (It ran to the end before.)
#[cfg(unix)]
#[test]
fn an_interrupted_sweep_keeps_its_written_points_and_stops() {
    let dir = scratch("interrupted_sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("net.csv");
    write_scalesim(
        &csv,
        "small, 5, 5, 3, 3, 1, 2, 1,\n\
         large, 224, 224, 3, 3, 16, 32, 1,\n",
    );
    let out = dir.join("sweep.jsonl");
    let _ = std::fs::remove_file(&out);
    let mut child = rowsim()
        .args([
            "sweep",
            "--hw",
            "tiny",
            "-j",
            "1",
            "--set",
            "array.cols=3,4",
            "--net",
        ])
        .arg(&csv)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, text, rest) =
        signal_once(&mut child, "-TERM", |line| line.contains("1/4 points done"));
    assert_eq!(status.code(), Some(130), "{text}{rest}");
    assert!(
        rest.contains("sweep: interrupted; the first 1 of this shard's 4 points are written"),
        "{rest}"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 1, "{written}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["index"], 0);
    assert_eq!(v["stats"]["verified"], true);
}

/// Reads `child`'s stderr until a line `at` matches, waits 300 ms, sends `signal` (`-INT`,
/// `-TERM`), and waits for it: its status, the stderr before the signal, and after.
#[cfg(unix)]
fn signal_once(
    child: &mut std::process::Child,
    signal: &str,
    at: impl Fn(&str) -> bool,
) -> (std::process::ExitStatus, String, String) {
    use std::io::{BufRead, BufReader};
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "ended early:\n{text}"
        );
        text.push_str(&line);
        if at(&line) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    (child.wait().unwrap(), text, rest)
}

/// Timeloop GEMM problems (`gemm_ABZ`, timeloop-accelergy-exercises' `MM/`) are FC layers: the
/// three in workloads/timeloop-mm map on eyeriss-v1; a small one runs bit-exact on tiny (with
/// the counts the mapper predicts, which `run` checks), and `sweep` and `compare` take it.
#[test]
fn timeloop_gemm_problems_map_and_run_as_fc_layers() {
    for f in ["M1024-K512-N256", "M512-K128-N1024", "M512-K256-N1024"] {
        let o = rowsim()
            .args(["map", "--layer", &format!("workloads/timeloop-mm/{f}.yaml")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            text.contains("R=1 S=1") && text.contains("mapping "),
            "{f}: {text}"
        );
    }
    let dir = scratch("gemm");
    std::fs::create_dir_all(&dir).unwrap();
    let small = dir.join("gemm.yaml");
    std::fs::write(
        &small,
        "problem:\n  instance:\n    M: 6\n    K: 12\n    N: 4\n    densities:\n      A:\n        density: 0.7\n  shape:\n    name: gemm_ABZ\n",
    )
    .unwrap();
    let o = rowsim()
        .args(["run", "--hw", "tiny", "--layer"])
        .arg(&small)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    // M = 6 rows of A the batch, K = 12 its channels, N = 4 filters: 6 x 12 x 4 MACs.
    assert!(
        out.contains("gemm on tiny (batch 6, seed 1): bit-exact against the reference convolution"),
        "{out}"
    );
    assert!(out.contains("MACs      288"), "{out}");
    // The same product as a SCALE-Sim GEMM file (`Layer, M, N, K`) is the same FC layer: the
    // same mapping and the same report but the layer's name.
    let csv = dir.join("gemm.csv");
    std::fs::write(&csv, "Layer, M, N, K,\ngemm, 6, 4, 12,\n").unwrap();
    let o = rowsim()
        .args(["run", "--hw", "tiny", "--layer"])
        .arg(format!("{}:gemm", csv.display()))
        .args(["--zero-fraction", "0.3"])
        .output()
        .unwrap();
    let scalesim = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let timeloop = String::from_utf8_lossy(
        &rowsim()
            .args(["run", "--hw", "tiny", "--layer"])
            .arg(&small)
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert_eq!(
        scalesim.replace("gemm:gemm", "gemm"),
        timeloop,
        "a SCALE-Sim GEMM and a Timeloop GEMM of one product"
    );
    // A folder of GEMM problems is a network; `--batch` sets M, the batch.
    for (cmd, file) in [
        (
            vec![
                "sweep",
                "--hw",
                "tiny",
                "--set",
                "array.cols=3,4",
                "--layer",
            ],
            &small,
        ),
        (vec!["compare", "--batch", "6", "--net"], &dir),
    ] {
        let o = rowsim().args(&cmd).arg(file).output().unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            cmd[0],
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `run --net` with layers side by side (`--jobs`) prints the same report, in the same layer
/// order, writes the same statistics (but the host's own times) and the same traces, byte for
/// byte, as one layer at a time; a layer in parts (B: M = 70 over the tiny machine's 64
/// filters) runs its parts in order on its thread.
#[test]
fn layers_side_by_side_report_and_trace_as_one_at_a_time() {
    let dir = scratch("jobs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("net.csv");
    write_scalesim(
        &csv,
        "A, 9, 9, 3, 3, 2, 4, 1,\n\
         B, 3, 3, 1, 1, 2, 70, 1,\n\
         C, 7, 7, 3, 3, 4, 4, 1,\n\
         D, 5, 5, 3, 3, 1, 2, 1,\n",
    );
    let mut got = Vec::new();
    for jobs in ["1", "3"] {
        let out = dir.join(format!("j{jobs}"));
        let o = rowsim()
            .args(["run", "--hw", "tiny", "-q", "--jobs", jobs, "--net"])
            .arg(&csv)
            .arg("--stats-json")
            .arg(out.join("stats.json"))
            .arg("--vcd")
            .arg(out.join("t.vcd"))
            .args(["--trace", "top.chip.pe_array.pe_r0_c0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "--jobs {jobs}: {err}");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap())
                .unwrap();
        let layers = v.as_array_mut().unwrap();
        assert_eq!(layers.len(), 4, "--jobs {jobs}");
        // The host's times (of a layer, or of each part of one) are the only figures the
        // jobs may change.
        for l in layers.iter_mut() {
            let parts = l["parts"]
                .as_array_mut()
                .map(|p| p.iter_mut().collect::<Vec<_>>());
            for one in parts.unwrap_or_default() {
                assert!(one["host"].is_object(), "{one}");
                one["host"] = serde_json::Value::Null;
            }
            if l["parts"].is_null() {
                assert!(l["host"].is_object(), "{l}");
                l["host"] = serde_json::Value::Null;
            }
        }
        let names: Vec<&str> = layers
            .iter()
            .map(|l| l["layer"].as_str().unwrap())
            .collect();
        assert!(
            names[0].ends_with(":A") && names[1].ends_with(":B") && names[3].ends_with(":D"),
            "{names:?}"
        );
        let mut traces = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "vcd"))
            .collect();
        files.sort();
        // A, B's two parts, C, D.
        assert_eq!(files.len(), 5, "{files:?}");
        for f in &files {
            traces.push((f.file_name().unwrap().to_owned(), std::fs::read(f).unwrap()));
        }
        // Lines announcing a start (a layer's parts, a run) show as they happen.
        let err_report: Vec<String> = err
            .lines()
            .filter(|l| {
                !l.starts_with("host:") && !l.starts_with("running") && !l.contains(" runs in ")
            })
            .map(|l| l.replace(&format!("j{jobs}"), "jN"))
            .collect();
        got.push((String::from_utf8(o.stdout).unwrap(), v, traces, err_report));
    }
    let (one, side) = (&got[0], &got[1]);
    assert_eq!(one.0, side.0, "stdout");
    assert_eq!(one.1, side.1, "statistics");
    assert!(one.2 == side.2, "traces differ");
    assert_eq!(one.3, side.3, "stderr but the start and host lines");
    // Four layers and B's two parts.
    assert_eq!(one.0.matches("bit-exact").count(), 6, "{}", one.0);
}
