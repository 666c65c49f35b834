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
#[allow(dead_code)] // not every test binary that includes `common` writes scratch files
pub fn scratch_in(dir: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The header line of a SCALE-Sim convolution topology.
#[allow(dead_code)] // not every test binary that includes `common` writes topologies
pub const SCALESIM_HEAD: &str = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n";

/// Writes a SCALE-Sim topology: the header line, then `rows`.
#[allow(dead_code)]
pub fn write_scalesim(path: &Path, rows: &str) {
    std::fs::write(path, format!("{SCALESIM_HEAD}{rows}")).unwrap();
}

/// Waits for `child` to exit, failing the test (and killing it) after `limit`: a hang is a
/// failure, not a stuck test run.
#[allow(dead_code)]
pub fn wait_at_most(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `rowsim run` of the digits model over its test split, statistics to `stats`: the command, to
/// add arguments to or spawn.
#[allow(dead_code)]
pub fn digits(stats: &Path) -> Command {
    trained("digits", stats)
}

/// `rowsim run` of a trained model of `models/` (`models/NAME/NAME.onnx`) over its test split
/// (`test_x.npy`, `test_y.npy` beside it), statistics to `stats`.
#[allow(dead_code)]
pub fn trained(name: &str, stats: &Path) -> Command {
    let mut c = rowsim();
    c.args(["run", "--net"])
        .arg(format!("models/{name}/{name}.onnx"))
        .arg("--input")
        .arg(format!("models/{name}/test_x.npy"))
        .arg("--labels")
        .arg(format!("models/{name}/test_y.npy"))
        .args(["-q", "--stats-json"])
        .arg(stats);
    c
}

/// The largest difference between rowsim's float model of `model` on the inputs `x` and ONNX
/// Runtime's outputs `y` (float32 `.npy` files), relative (`|a - b| / (1 + |b|)`). Inputs of
/// any rank: images `[N, C, H, W]`, tokens `[N, L, D]` (held as `[N, L, D, 1]`), vectors.
#[allow(dead_code)]
pub fn float_against_onnx_runtime(model: &Path, x: &Path, y: &Path) -> f32 {
    let read = |p: &Path| -> (Vec<u64>, Vec<f32>) {
        let bytes = std::fs::read(p).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        (npy.shape().to_vec(), npy.into_vec::<f32>().unwrap())
    };
    let (xs, xd) = read(x);
    let (_, want) = read(y);
    let mut dims = [1usize; 4];
    for (k, &d) in xs.iter().enumerate() {
        dims[k] = d as usize;
    }
    let m = rowsim_model::onnx::load(model).unwrap();
    let got =
        rowsim_model::exec::forward_float(&m, &rowsim_model::exec::FTensor { dims, data: xd })
            .unwrap();
    let got = &got[&m.output].data;
    assert_eq!(got.len(), want.len(), "{}: output sizes", model.display());
    got.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0f32, f32::max)
}
