//! What the CLI tests share: the binary, run from the workspace root, and scratch files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `rowsim` binary, run from the workspace root (so `hw-configs/...` resolves).
pub fn rowsim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rowsim"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

/// A scratch file `name` in the target's test folder `dir`.
pub fn scratch_in(dir: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}
