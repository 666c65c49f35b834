//! `rowsim sweep --slurm`: the job array and merge job it writes give the sweep run here, line
//! for line: run by bash as Slurm runs them (every machine), and submitted to a real Slurm
//! cluster (`.ci/run` starts a single-node one with `.ci/slurm-up`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{rowsim, scratch_in};

/// The 12-point grid: 2 x 3 configs x 2 layers on the tiny machine.
const GRID: &[&str] = &[
    "sweep",
    "--hw",
    "tiny",
    "--set",
    "array.cols=3,4",
    "--set",
    "spad.psum.entries=8,12,16",
    "--layer",
    "layers/tiny-conv.toml",
    "--layer",
    "layers/tiny-conv.toml",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A new, empty folder for one test's job array.
fn fresh(name: &str) -> PathBuf {
    let dir = scratch_in("slurm", name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    dir
}

/// The grid run here, in one process.
fn local_sweep(name: &str) -> String {
    let out = scratch_in("slurm", name);
    let o = rowsim()
        .args(GRID)
        .args(["--jobs", "2", "-o"])
        .arg(&out)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out).unwrap();
    assert_eq!(text.lines().count(), 12);
    text
}

/// `rowsim sweep --slurm dir --tasks 4` with `extra`: its standard output.
fn write_array(dir: &Path, extra: &[&str]) -> String {
    let o = rowsim()
        .args(GRID)
        .arg("--slurm")
        .arg(dir)
        .args(["--tasks", "4", "--mem", "500M", "--time", "0:20:00"])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn bash(script: &Path, env: &[(&str, String)]) {
    let mut c = Command::new("bash");
    c.arg(script).current_dir(root());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The scripts, run by bash with the variables Slurm sets for each array task and then the
/// merge, give the local sweep's file byte for byte; they say what a cluster needs.
#[test]
fn the_job_array_scripts_run_the_sweep_in_shards_and_merge_it() {
    let dir = fresh("by-bash");
    let said = write_array(&dir, &[]);
    assert!(said.contains("sbatch --dependency=afterok:$j"), "{said}");
    let sweep = dir.join("sweep.sbatch");
    let merge = dir.join("merge.sbatch");
    let text = std::fs::read_to_string(&sweep).unwrap();
    for want in [
        "#SBATCH --array=0-3",
        "#SBATCH --mem=500M",
        "#SBATCH --time=0:20:00",
        "#SBATCH --cpus-per-task=1",
        "shards/shard-${SLURM_ARRAY_TASK_ID}.jsonl",
        "'--set' 'spad.psum.entries=8,12,16'",
    ] {
        assert!(text.contains(want), "no `{want}` in\n{text}");
    }
    // The tasks run where rowsim sweep ran, so relative paths mean the same there.
    let chdir = format!(
        "#SBATCH --chdir={}\n",
        root().canonicalize().unwrap().display()
    );
    assert!(text.contains(&chdir), "no `{chdir}` in\n{text}");
    for s in [&sweep, &merge] {
        let o = Command::new("bash").arg("-n").arg(s).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for k in 0..4 {
        bash(
            &sweep,
            &[
                ("SLURM_ARRAY_TASK_ID", k.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", "4".into()),
                ("SLURM_CPUS_PER_TASK", "1".into()),
            ],
        );
    }
    bash(&merge, &[]);
    let merged = std::fs::read_to_string(dir.join("sweep.jsonl")).unwrap();
    assert_eq!(merged, local_sweep("by-bash-local.jsonl"));
}

/// A 12-point sweep as a 4-task array on a real Slurm cluster: submitted with sbatch, the merge
/// job run after it, the merged file equal to the local sweep's.
#[test]
#[ignore = "needs a running Slurm cluster (sbatch, squeue): .ci/run starts a single-node one with .ci/slurm-up"]
fn a_sweep_runs_as_a_slurm_job_array_and_merges_to_the_local_sweep() {
    let dir = fresh("cluster");
    let said = write_array(&dir, &["--submit"]);
    let ids: Vec<&str> = said
        .lines()
        .find(|l| l.starts_with("submitted job array"))
        .unwrap_or_else(|| panic!("no job ids in\n{said}"))
        .split_whitespace()
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(ids.len(), 2, "the array's and the merge's ids in\n{said}");
    let (array, merge) = (ids[0], ids[1]);
    let merged = dir.join("sweep.jsonl");
    let start = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-j", &format!("{array},{merge}"), "-o", "%i %T"])
            .output()
            .unwrap();
        let queue = String::from_utf8_lossy(&q.stdout).into_owned();
        if queue.trim().is_empty() && merged.exists() {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            let logs: Vec<String> = std::fs::read_dir(dir.join("logs"))
                .map(|d| {
                    d.flatten()
                        .map(|e| {
                            format!(
                                "{}:\n{}",
                                e.path().display(),
                                std::fs::read_to_string(e.path()).unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "the jobs did not finish in 10 minutes; queue:\n{queue}\nlogs:\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every array task and the merge ended COMPLETED (the merge ran only after all of them).
    let o = Command::new("scontrol")
        .args(["show", "job", merge])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.is_empty() || shown.contains("JobState=COMPLETED"),
        "{shown}"
    );
    for k in 0..4 {
        assert!(dir.join(format!("shards/shard-{k}.jsonl")).exists());
        assert!(dir.join(format!("logs/shard-{k}.log")).exists());
    }
    let got = std::fs::read_to_string(&merged).unwrap();
    assert_eq!(got, local_sweep("cluster-local.jsonl"));
}
