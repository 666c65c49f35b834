//! The chip against ONNX Runtime: the digits model's top-1 predictions on the emulated chip
//! (16-bit fixed point) agree with ONNX Runtime's (float) on at least 99% of the test images,
//! and the two accuracies are within a point; the ResNet-style block of the model tests runs in
//! ONNX Runtime too and its float top-1 agrees with rowsim's float model. They need python3
//! with numpy and onnxruntime, so a plain `cargo test` ignores them (with the reason); `.ci/run`
//! installs both and runs them, and fails if they did not run.

use std::process::Command;

mod common;
use common::{rowsim, scratch_in};

fn python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("these tests need python3 with numpy and onnxruntime; .ci/run installs them");
    assert!(
        out.status.success(),
        "python3 failed (pip install numpy onnxruntime):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn the_chip_agrees_with_onnx_runtime_on_the_digits_model() {
    chip_against_onnx_runtime_on("digits");
}

/// A trained model of `models/` (`models/NAME/NAME.onnx`, input `input`) on its test split:
/// the chip's top-1 equals ONNX Runtime's on at least 99% of the images, the two accuracies
/// are within a point, and the chip's is the one the statistics report.
fn chip_against_onnx_runtime_on(name: &str) {
    let stats = scratch_in("onnxruntime", &format!("{name}.json"));
    let o = common::trained(name, &stats).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = format!("{}/../../models/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = python(&format!(
        "import json, numpy as np, onnxruntime as ort\n\
         s = json.load(open('{}'))\n\
         x = np.load('{root}/test_x.npy'); y = np.load('{root}/test_y.npy')\n\
         sess = ort.InferenceSession('{root}/{name}.onnx', providers=['CPUExecutionProvider'])\n\
         p = sess.run(None, {{'input': x}})[0].argmax(1)\n\
         chip = np.array(s['predictions'])\n\
         print((p == chip).mean(), (p == y).mean(), (chip == y).mean(), s['accuracy']['chip'])\n",
        stats.display()
    ));
    let v: Vec<f64> = out.split_whitespace().map(|t| t.parse().unwrap()).collect();
    let (agree, ort_acc, chip_acc, reported) = (v[0], v[1], v[2], v[3]);
    eprintln!("{name}: agreement {agree}, ONNX Runtime {ort_acc}, chip {chip_acc}");
    assert!(
        agree >= 0.99,
        "{name}: the chip agrees with ONNX Runtime on {agree}"
    );
    assert!(
        (ort_acc - chip_acc).abs() <= 0.01,
        "{name}: {ort_acc} vs {chip_acc}"
    );
    assert_eq!(chip_acc, reported);
}

/// The MobileNet-style digits model (models/digits-mobile): the chip's top-1 equals ONNX
/// Runtime's on at least 99% of the test images, and the two accuracies are within a point.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn the_chip_agrees_with_onnx_runtime_on_the_digits_mobile_model() {
    chip_against_onnx_runtime_on("digits-mobile");
}

#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn the_resnet_block_runs_in_onnx_runtime_as_rowsim_reads_it() {
    // The block made by rowsim_model::build, run by ONNX Runtime and by rowsim's float model on
    // the same images: the same top-1 for every image (and the same values); the chip's on at
    // least 95%.
    agrees_with_onnx_runtime("block", &rowsim_model::build::resnet_block(), "4, 6, 6");
}

/// [`top1_against_onnx_runtime`], asserting what every model of `rowsim_model::build` must
/// give: rowsim's float model the same top-1 as ONNX Runtime on every image (the values within
/// 1e-5 are checked inside), the chip's on at least 95%.
fn agrees_with_onnx_runtime(name: &str, bytes: &[u8], shape: &str) {
    let (chip, float) = top1_against_onnx_runtime(name, bytes, shape);
    assert!(
        chip >= 0.95,
        "{name}: the chip agrees with ONNX Runtime on {chip}"
    );
    assert_eq!(
        float, 1.0,
        "{name}: rowsim's float model agrees with ONNX Runtime on {float}"
    );
}

/// A model made by rowsim_model::build, run by ONNX Runtime as the file has it and by rowsim
/// (its float model, and the chip) on the same 64 random images of `shape`: the fraction of
/// images on which the chip's and the float model's top-1 agree with ONNX Runtime's.
fn top1_against_onnx_runtime(name: &str, bytes: &[u8], shape: &str) -> (f64, f64) {
    let model = scratch_in("onnxruntime", &format!("{name}.onnx"));
    std::fs::write(&model, bytes).unwrap();
    let x = scratch_in("onnxruntime", &format!("{name}_x.npy"));
    let stats = scratch_in("onnxruntime", &format!("{name}.json"));
    python(&format!(
        "import numpy as np\n\
         np.save('{}', np.random.default_rng(5).uniform(-1, 1, size=(64, {shape})).astype(np.float32))\n",
        x.display()
    ));
    let o = rowsim()
        .args(["run", "-q", "--net"])
        .arg(&model)
        .arg("--input")
        .arg(&x)
        .arg("--stats-json")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = python(&format!(
        "import json, numpy as np, onnxruntime as ort\n\
         s = json.load(open('{}'))\n\
         x = np.load('{}')\n\
         p = ort.InferenceSession('{}', providers=['CPUExecutionProvider']).run(None, {{'x': x}})[0].reshape(len(x), -1).argmax(1)\n\
         print((p == np.array(s['predictions'])).mean(), (p == np.array(s['float_predictions'])).mean())\n",
        stats.display(),
        x.display(),
        model.display()
    ));
    let v: Vec<f64> = out.split_whitespace().map(|t| t.parse().unwrap()).collect();
    eprintln!(
        "{name}: the chip agrees with ONNX Runtime on {}, rowsim's float model on {}",
        v[0], v[1]
    );
    // Value for value: ONNX Runtime's output against rowsim's float model's, within 1e-5
    // relative (float32 sums in another order).
    let y = scratch_in("onnxruntime", &format!("{name}_y.npy"));
    python(&format!(
        "import numpy as np, onnxruntime as ort\n\
         x = np.load('{}')\n\
         np.save('{}', ort.InferenceSession('{}', providers=['CPUExecutionProvider']).run(None, {{'x': x}})[0].astype(np.float32))\n",
        x.display(),
        y.display(),
        model.display()
    ));
    let worst = common::float_against_onnx_runtime(&model, &x, &y);
    eprintln!("{name}: largest difference from ONNX Runtime {worst:e} (relative)");
    assert!(
        worst <= 1e-5,
        "{name}: rowsim's float model differs from ONNX Runtime by {worst}"
    );
    (v[0], v[1])
}

/// The BatchNormalization block (two folded into their CONVs, one on the host): ONNX Runtime
/// runs the file unfolded, rowsim folded; the same float top-1 on every image, the chip's on
/// at least 95%.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn batchnorm_folded_as_onnx_runtime_runs_it_unfolded() {
    agrees_with_onnx_runtime("bn", &rowsim_model::build::batchnorm_block(), "4, 6, 6");
}

/// The MobileNet-v2 block (BatchNormalization, ReLU6 as Clip with bound inputs, a strided
/// depthwise CONV): as for the BatchNormalization block.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn a_mobilenet_block_runs_as_onnx_runtime_runs_it() {
    agrees_with_onnx_runtime(
        "mobilenet",
        &rowsim_model::build::mobilenet_block(),
        "8, 8, 8",
    );
}

/// Pooling with `ceil_mode` (a last window past the map; an average counting padding whose
/// last window runs past the padded map): the top-1 over the pooled map, ONNX Runtime's and
/// rowsim's float model's, on every image; the chip's (host pooling in fixed point) on 95%.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn ceil_mode_pooling_is_onnx_runtimes() {
    agrees_with_onnx_runtime("pools", &rowsim_model::build::ceil_pools(), "2, 8, 8");
}

/// The host's elementwise operators (opset 14): as for the BatchNormalization block.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn elementwise_operators_are_onnx_runtimes() {
    agrees_with_onnx_runtime(
        "elementwise",
        &rowsim_model::build::elementwise_block(),
        "4, 6, 6",
    );
}

/// One Transformer encoder layer (tokens [N, 8, 16]; Q, K, V, Q K^T and attention x V, the
/// output projection and the MLP on the chip; Softmax, LayerNormalization, the written-out
/// GELU and the residual Adds on the host): rowsim's float model within 1e-5 of ONNX
/// Runtime's outputs, value by value; the chip's top-1 (the largest of an image's 128 outputs)
/// equal to ONNX Runtime's on at least 95% of the images.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn a_transformer_encoder_layer_is_onnx_runtimes() {
    agrees_with_onnx_runtime("encoder", &rowsim_model::build::encoder_layer(), "8, 16");
}

/// `Gelu` (opset 20), exact and tanh-approximated, on the host: rowsim's float model within
/// 1e-5 of ONNX Runtime's, the chip's top-1 on at least 95% of the images.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn gelu_is_onnx_runtimes() {
    for approximate in ["none", "tanh"] {
        agrees_with_onnx_runtime(
            &format!("gelu_{approximate}"),
            &rowsim_model::build::gelu(approximate),
            "4, 6",
        );
    }
}

/// The encoder layer with two attention heads (Reshape to heads, rank-4 Transposes, one
/// product per head, Gelu): rowsim's float model within 1e-5 of ONNX Runtime's outputs; the
/// chip's top-1 on at least 95% of the images.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn a_multihead_encoder_layer_is_onnx_runtimes() {
    agrees_with_onnx_runtime(
        "multihead",
        &rowsim_model::build::multihead_encoder_layer(2),
        "8, 16",
    );
}

/// Softmax over the channel axis of images (opset 13) and over all of an image's values
/// (opset 11's flattening default): rowsim's float model within 1e-5 of ONNX Runtime's.
#[test]
#[ignore = "needs python3 with numpy and onnxruntime (pip install numpy onnxruntime); .ci/run installs them and runs the ignored tool tests"]
fn softmax_axes_are_onnx_runtimes() {
    for (name, opset, axis) in [("softmax_c", 13, Some(1)), ("softmax_11", 11, None)] {
        let (_, float) =
            top1_against_onnx_runtime(name, &rowsim_model::build::softmax(opset, axis), "3, 4, 5");
        assert_eq!(float, 1.0, "{name}: rowsim's float model on {float}");
    }
}
