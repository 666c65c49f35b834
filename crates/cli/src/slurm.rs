//! `rowsim sweep --slurm DIR`: a sweep as a Slurm job array. One array task per shard (each runs
//! `rowsim sweep` on its points, the shard taken from `SLURM_ARRAY_TASK_ID` and
//! `SLURM_ARRAY_TASK_COUNT`), and a merge job that runs after every task succeeded
//! (`--dependency=afterok`) and joins the shards with `rowsim merge`.
//!
//! The folder holds everything the jobs write: `sweep.sbatch` and `merge.sbatch` (the scripts),
//! `shards/shard-K.jsonl`, `logs/` (Slurm's output of each task and of the merge) and, at the
//! end, `sweep.jsonl`. The scripts run in the folder `rowsim sweep` was started from
//! (`--chdir`), so relative paths of configs and layers mean there what they meant here; the
//! rowsim they run is this executable, by its absolute path (a cluster's nodes share the file
//! system the job was submitted from). With `--submit`, both scripts are handed to `sbatch`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};
use clap::Args;

/// Resources of each array task, and whether to submit.
#[derive(Args, Debug, Clone)]
pub struct SlurmArgs {
    /// Write a Slurm job array that runs the sweep (one task per shard) and a merge job into
    /// this folder (made if missing; it must be empty), instead of running the sweep here.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["shard", "output", "dry_run"])]
    pub slurm: Option<PathBuf>,
    /// Array tasks (shards) of the job array.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "slurm")]
    pub tasks: u64,
    /// CPUs of each task (`--cpus-per-task`); the task's sweep runs that many threads.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "slurm")]
    pub cpus_per_task: u32,
    /// Memory of each task (`--mem`, e.g. `2G`, `500M`).
    #[arg(long, value_name = "SIZE", default_value = "2G", requires = "slurm")]
    pub mem: String,
    /// Time limit of each task and of the merge (`--time`, e.g. `1:00:00`, `2-00:00:00`).
    #[arg(
        long,
        value_name = "TIME",
        default_value = "1:00:00",
        requires = "slurm"
    )]
    pub time: String,
    /// Partition to run in (default: the cluster's).
    #[arg(long, value_name = "NAME", requires = "slurm")]
    pub partition: Option<String>,
    /// Account to charge (default: the user's).
    #[arg(long, value_name = "NAME", requires = "slurm")]
    pub account: Option<String>,
    /// Submit the job array and the merge job with `sbatch`.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
}

/// The most array tasks a sweep is split into (Slurm's default `MaxArraySize` is 1001).
pub const MAX_TASKS: u64 = 1000;

/// A word for a bash script: single-quoted, a `'` inside closed, escaped and reopened.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn text<'a>(p: &'a Path, what: &str) -> anyhow::Result<&'a str> {
    p.to_str()
        .ok_or_else(|| anyhow!("{}: the {what} path is not UTF-8", p.display()))
}

/// Checks a value passed to an `#SBATCH` line: one line of plain characters.
fn sbatch_value(flag: &str, v: &str) -> anyhow::Result<()> {
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:.,+".contains(c))
    {
        bail!("--{flag} `{v}`: expected letters, digits and -_:.,+ only (it goes into an #SBATCH line)");
    }
    Ok(())
}

/// The scripts written, and what they will produce.
pub struct Written {
    pub sweep_script: PathBuf,
    pub merge_script: PathBuf,
    pub merged: PathBuf,
}

/// Writes the job array and merge scripts for a sweep of `points` points whose own arguments
/// (everything but the shard, the output and the thread count) are `sweep_args`.
pub fn write(
    s: &SlurmArgs,
    dir: &Path,
    sweep_args: &[String],
    points: u64,
) -> anyhow::Result<Written> {
    if s.tasks == 0 || s.tasks > MAX_TASKS {
        bail!("--tasks {}: expected 1 to {MAX_TASKS} array tasks", s.tasks);
    }
    if s.tasks > points {
        bail!(
            "--tasks {}: the sweep has {points} points, so {} tasks would have none; use --tasks {points} or fewer",
            s.tasks,
            s.tasks - points
        );
    }
    if s.cpus_per_task == 0 || s.cpus_per_task > 1024 {
        bail!("--cpus-per-task {}: expected 1 to 1024", s.cpus_per_task);
    }
    sbatch_value("mem", &s.mem)?;
    sbatch_value("time", &s.time)?;
    for (flag, v) in [("partition", &s.partition), ("account", &s.account)] {
        if let Some(v) = v {
            sbatch_value(flag, v)?;
        }
    }
    // The folder: made if missing, and empty, so that no shard of another sweep is merged in
    // and nothing of the user's is overwritten.
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{}: --slurm names a file, not a folder", dir.display());
        }
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the --slurm folder {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{}: the --slurm folder is not empty (a sweep's jobs write their shards, logs and result there: give a new or empty folder)",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir.join("shards"))
        .and_then(|_| std::fs::create_dir_all(dir.join("logs")))
        .with_context(|| format!("cannot make the --slurm folder {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .context("cannot find the rowsim executable to run in the jobs")?;
    let (dir_s, cwd_s, exe_s) = (
        text(&dir, "--slurm folder")?,
        text(&cwd, "current folder")?,
        text(&exe, "rowsim executable")?,
    );
    for (what, p) in [("--slurm folder", dir_s), ("current folder", cwd_s)] {
        if p.chars().any(|c| c.is_control() || c == '%') {
            bail!("{p}: the {what} has a control character or `%` (Slurm reads `%` in --output as a pattern)");
        }
    }
    let header = |name: &str, log: &str| {
        let mut h = vec![
            "#!/bin/bash".to_string(),
            format!("#SBATCH --job-name={name}"),
            format!("#SBATCH --chdir={cwd_s}"),
            format!("#SBATCH --output={dir_s}/logs/{log}"),
            format!("#SBATCH --time={}", s.time),
            "#SBATCH --ntasks=1".to_string(),
        ];
        if let Some(p) = &s.partition {
            h.push(format!("#SBATCH --partition={p}"));
        }
        if let Some(a) = &s.account {
            h.push(format!("#SBATCH --account={a}"));
        }
        h
    };
    let mut sweep = header("rowsim-sweep", "shard-%a.log");
    sweep.extend([
        format!("#SBATCH --array=0-{}", s.tasks - 1),
        format!("#SBATCH --cpus-per-task={}", s.cpus_per_task),
        format!("#SBATCH --mem={}", s.mem),
        String::new(),
        format!(
            "# rowsim sweep of {points} points in {} shards: this task runs shard $SLURM_ARRAY_TASK_ID",
            s.tasks
        ),
        "# (rowsim reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT).".to_string(),
        "set -euo pipefail".to_string(),
    ]);
    let mut cmd: Vec<String> = vec![quote(exe_s), "sweep".into()];
    cmd.extend(sweep_args.iter().map(|a| quote(a)));
    cmd.push("--jobs \"${SLURM_CPUS_PER_TASK:-1}\"".into());
    cmd.push(format!(
        "--output {}\"/shards/shard-${{SLURM_ARRAY_TASK_ID}}.jsonl\"",
        quote(dir_s)
    ));
    sweep.push(format!("exec {}", cmd.join(" ")));
    let mut merge = header("rowsim-merge", "merge.log");
    merge.extend([
        "#SBATCH --cpus-per-task=1".to_string(),
        "#SBATCH --mem=1G".to_string(),
        String::new(),
        format!(
            "# Joins the {} shards once every task of the array has succeeded (submitted with --dependency=afterok).",
            s.tasks
        ),
        "set -euo pipefail".to_string(),
    ]);
    let shards: Vec<String> = (0..s.tasks)
        .map(|k| quote(&format!("{dir_s}/shards/shard-{k}.jsonl")))
        .collect();
    merge.push(format!(
        "exec {} merge {} --output {}",
        quote(exe_s),
        shards.join(" "),
        quote(&format!("{dir_s}/sweep.jsonl"))
    ));
    let w = Written {
        sweep_script: dir.join("sweep.sbatch"),
        merge_script: dir.join("merge.sbatch"),
        merged: dir.join("sweep.jsonl"),
    };
    for (path, lines) in [(&w.sweep_script, &sweep), (&w.merge_script, &merge)] {
        std::fs::write(path, lines.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(w)
}

/// Runs `sbatch --parsable` on a script: the job id.
fn sbatch(script: &Path, extra: &[String]) -> anyhow::Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .map_err(|e| {
            anyhow!(
                "cannot run sbatch ({e}): --submit needs Slurm's sbatch on the PATH (a login node); the scripts are written, submit them there with `sbatch {}`",
                script.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `id` or `id;cluster`.
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "sbatch {} printed `{}`, not a job id",
            script.display(),
            text.trim()
        );
    }
    Ok(id)
}

/// Submits the array, then the merge after it: their job ids.
pub fn submit(w: &Written) -> anyhow::Result<(String, String)> {
    let array = sbatch(&w.sweep_script, &[])?;
    let merge = sbatch(&w.merge_script, &[format!("--dependency=afterok:{array}")])?;
    Ok((array, merge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        let out = Command::new("bash")
            .args(["-c", &format!("printf %s {}", quote("x'y $HOME \"z\"\n"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x'y $HOME \"z\"\n");
    }
}
