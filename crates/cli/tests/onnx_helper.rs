//! The networks users bring, as the ONNX library writes them: `tests/models/make_models.py`
//! builds a ResNet-18 stem and basic block at 64 x 64, a MobileNet-v2 inverted-residual block
//! with a strided depthwise convolution, and a Transformer encoder layer with two attention
//! heads with `onnx.helper`
//! (initializers as raw data, as `numpy_helper` writes them; each model passes
//! `onnx.checker`'s full check) and has ONNX Runtime compute their outputs. Each runs on
//! eyeriss-v1 bit-exact against the fixed-point reference network, with its nodes where they
//! belong, and rowsim's float model gives ONNX Runtime's outputs within 1e-5 (relative: float32
//! sums in another order). They need python3 with numpy, onnx and onnxruntime, and the ResNet
//! stem takes a release build to run in seconds, so a plain `cargo test` ignores them (with the
//! reason); `.ci/run` installs the packages and runs them in release.

use std::process::Command;

mod common;
use common::{rowsim, scratch_in};

#[test]
#[ignore = "needs python3 with numpy, onnx and onnxruntime (pip install numpy onnx onnxruntime) and a release build; .ci/run installs them and runs it with --release"]
fn models_built_with_onnx_helper_run_bit_exact_and_compute_what_onnx_runtime_does() {
    let dir = scratch_in("onnx_helper", "models");
    std::fs::create_dir_all(&dir).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/models/make_models.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("this test needs python3 with numpy, onnx and onnxruntime; .ci/run installs them");
    assert!(
        out.status.success(),
        "make_models.py failed (pip install numpy onnx onnxruntime):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "resnet18_stem",
            &["conv1", "layer1_conv1", "layer1_conv2", "y"],
            &["maxpool", "layer1_add", "layer1_relu2", "pool"],
        ),
        (
            "mobilenet_v2_block",
            &["expand", "depthwise", "project", "y"],
            &["expand_relu6", "depthwise_relu6", "pool"],
        ),
        (
            "encoder_layer",
            &["q", "k", "v", "scores", "context", "out", "ff1", "ff2"],
            &[
                "q_split",
                "k_heads",
                "context_tokens",
                "context_merge",
                "scale",
                "attention",
                "norm1",
                "gelu_erf",
                "gelu_mul",
                "norm2",
            ],
        ),
    ];
    for (name, chip, host) in cases {
        let model = dir.join(format!("{name}.onnx"));
        let x = dir.join(format!("{name}_x.npy"));
        let stats = dir.join(format!("{name}.json"));
        let o = rowsim()
            .args(["run", "--hw", "eyeriss-v1", "-q", "--batch", "2", "--net"])
            .arg(&model)
            .arg("--input")
            .arg(&x)
            .arg("--stats-json")
            .arg(&stats)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {err}");
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        assert_eq!(s["bit_exact"], true, "{name}");
        assert!(
            s["layers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["verified"] == true),
            "{name}"
        );
        let on = |node: &str| {
            s["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["name"] == node)
                .unwrap_or_else(|| panic!("{name}: no node `{node}`"))["on"]
                .as_str()
                .unwrap()
                .to_string()
        };
        for n in chip {
            assert_eq!(on(n), "chip", "{name}: {n}");
        }
        for n in host {
            assert_eq!(on(n), "host", "{name}: {n}");
        }
        // Every BatchNormalization after a CONV is folded into it.
        for n in s["nodes"].as_array().unwrap() {
            if n["op"] == "BatchNormalization" {
                assert!(
                    n["note"].as_str().unwrap().starts_with("folded into"),
                    "{n}"
                );
            }
        }
        let worst =
            common::float_against_onnx_runtime(&model, &x, &dir.join(format!("{name}_y.npy")));
        eprintln!(
            "{name}: bit-exact on eyeriss-v1; the float model within {worst:e} of ONNX Runtime"
        );
        assert!(
            worst <= 1e-5,
            "{name}: the float model differs from ONNX Runtime by {worst}"
        );
    }
}
