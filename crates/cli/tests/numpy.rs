//! Tensors to and from NumPy: numpy writes the ifmap and weights, `rowsim run` reads them and
//! writes the ofmap, and numpy checks it against its own fixed-point convolution. They need
//! python3 with numpy, so a plain `cargo test` ignores them (with the reason); `.ci/run`
//! installs numpy and runs them, and fails if they did not run.

use std::process::Command;

mod common;
use common::{rowsim, scratch_in};

fn python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("these tests need python3 with numpy (pip install numpy); .ci/run installs it");
    assert!(
        out.status.success(),
        "python3 failed (does it have numpy? pip install numpy):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs python3 with numpy (pip install numpy); .ci/run installs it and runs the ignored tool tests"]
fn a_numpy_round_trip_keeps_every_value() {
    let (x, w, y) = (
        scratch_in("numpy", "x.npy"),
        scratch_in("numpy", "w.npy"),
        scratch_in("numpy", "y.npy"),
    );
    // The layer of layers/tiny-conv.toml: N=1, C=4, 7x7, M=4, 3x3, stride 1, padding 1. Values
    // span the whole int16 range, zeros included, so every bit must survive.
    python(&format!(
        "import numpy as np\n\
         r = np.random.default_rng(7)\n\
         x = r.integers(-32768, 32768, size=(1, 4, 7, 7), dtype=np.int16)\n\
         x[r.random(x.shape) < 0.3] = 0\n\
         w = r.integers(-32768, 32768, size=(4, 4, 3, 3), dtype=np.int16)\n\
         np.save('{}', x)\n\
         np.save('{}', w)\n",
        x.display(),
        w.display()
    ));
    let out = rowsim()
        .args(["run", "--quiet", "--hw", "hw-configs/tiny.toml"])
        .args(["--layer", "layers/tiny-conv.toml", "--ifmap"])
        .arg(&x)
        .arg("--weights")
        .arg(&w)
        .arg("--ofmap")
        .arg(&y)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // numpy's convolution in the chip's arithmetic: each product's bits [30:15] (floor), kept as
    // 16 bits (wrapping), summed wrapping, then ReLU.
    let verdict = python(&format!(
        "import numpy as np\n\
         x = np.load('{}'); w = np.load('{}'); y = np.load('{}')\n\
         assert y.dtype == np.int16 and y.shape == (1, 4, 7, 7), (y.dtype, y.shape)\n\
         xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)))\n\
         ref = np.zeros((1, 4, 7, 7), dtype=np.int64)\n\
         for m in range(4):\n\
         \x20   for e in range(7):\n\
         \x20       for f in range(7):\n\
         \x20           p = (xp[0, :, e:e + 3, f:f + 3] * w[m].astype(np.int64)) >> 15\n\
         \x20           ref[0, m, e, f] = p.astype(np.int16).astype(np.int64).sum()\n\
         ref = np.maximum(ref.astype(np.int16), 0)\n\
         bad = np.argwhere(ref != y)\n\
         print('equal' if len(bad) == 0 else f'differ at {{bad[0]}}: {{y[tuple(bad[0])]}} vs {{ref[tuple(bad[0])]}}')\n\
         print(int(np.count_nonzero(y)))\n",
        x.display(),
        w.display(),
        y.display()
    ));
    let mut lines = verdict.lines();
    assert_eq!(lines.next(), Some("equal"), "{verdict}");
    let nonzero: usize = lines.next().unwrap().parse().unwrap();
    assert!(
        nonzero > 20,
        "a trivial ofmap proves little: {nonzero} nonzero values"
    );
}

#[test]
#[ignore = "needs python3 with numpy (pip install numpy); .ci/run installs it and runs the ignored tool tests"]
fn a_npy_of_the_wrong_shape_or_type_is_refused_with_the_file() {
    let (shape, dtype, junk) = (
        scratch_in("numpy", "shape.npy"),
        scratch_in("numpy", "dtype.npy"),
        scratch_in("numpy", "junk.npy"),
    );
    std::fs::write(&junk, b"\x93NUMPY garbage").unwrap();
    python(&format!(
        "import numpy as np\n\
         np.save('{}', np.zeros((1, 4, 7, 6), dtype=np.int16))\n\
         np.save('{}', np.zeros((1, 4, 7, 7), dtype=np.float32))\n",
        shape.display(),
        dtype.display()
    ));
    for (f, want) in [
        (
            &shape,
            "shape [1, 4, 7, 6]; this layer needs [N, C, H, W] = [1, 4, 7, 7]",
        ),
        (
            &dtype,
            "dtype '<f4': expected int16 (<i2 or >i2) fixed-point values",
        ),
        (&junk, "not a .npy file"),
    ] {
        let out = rowsim()
            .args(["run", "--quiet", "--hw", "hw-configs/tiny.toml"])
            .args(["--layer", "layers/tiny-conv.toml", "--ifmap"])
            .arg(f)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&f.display().to_string()) && err.contains(want),
            "{err}"
        );
    }
}
