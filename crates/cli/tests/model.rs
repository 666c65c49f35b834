//! ONNX models through `rowsim run --net model.onnx`: the digits model on eyeriss-v1 (every
//! layer bit-exact against the fixed-point reference network, accuracy beside the float
//! model's) and a ResNet-style block made here (bad model input is in bad_input.rs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rowsim_model::build;

mod common;
use common::{rowsim, scratch_in};

fn stats(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A trained model of `models/` over its 360 test images on eyeriss-v1 in batches of 16:
/// every value of every batch equal to the fixed-point reference network's, the float model's
/// top-1 right on `float_correct` images (as its train.py printed), the chip's accuracy within
/// a point of it and its predictions the float model's on at least 99% of the images. Its
/// statistics, stdout and statistics file.
fn runs_with_its_accuracy(name: &str, float_correct: u64) -> (serde_json::Value, String, PathBuf) {
    let out = scratch_in("model", &format!("{name}.json"));
    let o = common::trained(name, &out).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = stats(&out);
    assert_eq!(s["bit_exact"], true);
    assert_eq!(s["images"], 360);
    let acc = &s["accuracy"];
    let (chip, float) = (
        acc["chip"].as_f64().unwrap(),
        acc["float"].as_f64().unwrap(),
    );
    assert_eq!(
        (float * 360.0).round() as u64,
        float_correct,
        "{name}: {acc}"
    );
    assert!((chip - float).abs() <= 0.01, "{name}: {acc}");
    assert!(
        acc["agreement_with_float"].as_f64().unwrap() >= 0.99,
        "{name}: {acc}"
    );
    (s, text, out)
}

/// The digits model (models/digits/, trained by its train.py) over its 360 test images on
/// eyeriss-v1 in batches of 16: every value of every batch equals the fixed-point reference
/// network's, each layer equals its reference convolution; the chip's top-1 accuracy is within
/// a point of the float model's (96.67%, 348 of 360, as train.py printed with numpy and with
/// onnxruntime) and its predictions agree with the float model's on at least 99% of the images.
#[test]
fn the_digits_model_runs_bit_exact_on_eyeriss_v1_with_the_float_models_accuracy() {
    let (s, text, out) = runs_with_its_accuracy("digits", 348);
    let layers = s["layers"].as_array().unwrap();
    let names: Vec<&str> = layers
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["conv1", "conv2", "fc1", "fc2"]);
    // Every image's MACs: the closed form of the four layers, summed over the images.
    let per_image: u64 = 64 * 8 * 9 + 16 * 16 * 8 * 9 + 32 * 64 + 10 * 32;
    let macs: u64 = layers
        .iter()
        .map(|l| l["macs"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(macs, 360 * per_image);
    assert!(layers.iter().all(|l| l["verified"] == true));
    // The totals are the layers' sums.
    let energy: f64 = layers
        .iter()
        .map(|l| l["energy"]["total"].as_f64().unwrap())
        .sum();
    let t = &s["totals"];
    assert!((t["energy"].as_f64().unwrap() - energy).abs() <= 1e-6 * energy);
    assert!((t["energy_per_inference"].as_f64().unwrap() * 360.0 - energy).abs() <= 1e-6 * energy);
    // An image's latency is its batch's cycles through the layers, averaged over the 23 batches
    // (22 of 16 images and one of 8): the layers' cycles over the batches.
    let cycles: u64 = layers
        .iter()
        .map(|l| l["cycles"]["core_total"].as_u64().unwrap())
        .sum();
    assert_eq!(t["core_cycles"].as_u64().unwrap(), cycles);
    assert!(
        (t["latency_cycles"].as_f64().unwrap() * 23.0 - cycles as f64).abs() < 1e-6 * cycles as f64
    );
    assert!(
        (t["core_cycles_per_inference"].as_f64().unwrap() * 360.0 - cycles as f64).abs()
            < 1e-6 * cycles as f64
    );
    // At the config's 200 MHz core clock.
    assert!(
        (t["latency_ms"].as_f64().unwrap() - t["latency_cycles"].as_f64().unwrap() / 200e3).abs()
            < 1e-9
    );
    assert_eq!(s["predictions"].as_array().unwrap().len(), 360);
    assert!(text.contains("top-1 accuracy: chip 96."), "{text}");
    // The report reads the model's statistics.
    let r = rowsim().arg("report").arg(&out).output().unwrap();
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stdout).contains("fc2"));
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch_in("model", name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `rowsim run --net model --hw hw --batch 2`, which must succeed bit-exact: its statistics,
/// each node's by name, and what it printed on stderr.
struct Ran {
    stats: serde_json::Value,
    err: String,
}

impl Ran {
    fn node(&self, name: &str) -> serde_json::Value {
        self.stats["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no node `{name}`"))
            .clone()
    }
}

fn run_bit_exact(model: &Path, tag: &str, hw: &str) -> Ran {
    let out = scratch_in("model", &format!("{tag}-{hw}.json"));
    let o = rowsim()
        .args(["run", "--hw", hw, "--batch", "2", "--net"])
        .arg(model)
        .arg("--stats-json")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{hw}: {err}");
    let stats = stats(&out);
    assert_eq!(stats["bit_exact"], true, "{tag} on {hw}");
    Ran { stats, err }
}

/// The MobileNet-style digits model (models/digits-mobile/, trained by its train.py: a CONV,
/// a depthwise-separable block, each CONV followed by BatchNormalization and ReLU6, global
/// average pooling, an FC layer) over its 360 test images on eyeriss-v1: bit-exact, its three
/// BatchNormalizations folded into the CONVs, the depthwise CONV on the chip, ReLU6 on the
/// host; the float model's accuracy is train.py's (94.72%, 341 of 360) and the chip's within a
/// point of it, agreeing with the float model on at least 99% of the images.
#[test]
fn the_digits_mobile_model_runs_bit_exact_with_the_float_models_accuracy() {
    let (s, _, _) = runs_with_its_accuracy("digits-mobile", 341);
    let node = |name: &str| {
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}"))
            .clone()
    };
    for conv in ["conv", "depthwise", "pointwise", "fc"] {
        assert_eq!(node(conv)["on"], "chip", "{conv}");
    }
    for bn in ["bn1", "bn2", "bn3"] {
        assert!(
            node(bn)["note"]
                .as_str()
                .unwrap()
                .starts_with("folded into"),
            "{bn}"
        );
    }
    for r in ["relu6_1", "relu6_2", "relu6_3"] {
        assert_eq!(node(r)["on"], "host", "{r}");
    }
    // Every image's MACs: the closed form of the four layers (the depthwise CONV one filter
    // of one channel a group), summed over the images.
    let per_image: u64 = 64 * 16 * 9 + 16 * 16 * 9 + 16 * 32 * 16 + 32 * 10;
    let macs: u64 = s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["macs"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(macs, 360 * per_image);
}

/// A ResNet-style block (a residual Add, AveragePool, an FC layer over the pooled map, bias
/// and a fused ReLU) made here, on the tiny config and on eyeriss-v1: bit-exact.
#[test]
fn a_resnet_block_made_here_imports_and_runs_bit_exact() {
    let model = write("block.onnx", &build::resnet_block());
    for hw in ["tiny", "eyeriss-v1"] {
        let out = scratch_in("model", &format!("block-{hw}.json"));
        let o = rowsim()
            .args(["run", "--hw", hw, "--batch", "3", "--net"])
            .arg(&model)
            .arg("--stats-json")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{hw}: {err}");
        let s = stats(&out);
        assert_eq!(s["bit_exact"], true, "{hw}");
        let nodes = s["nodes"].as_array().unwrap();
        let on = |name: &str| {
            nodes
                .iter()
                .find(|n| n["name"] == name)
                .map(|n| n["on"].as_str().unwrap().to_string())
        };
        assert_eq!(on("conv_a").as_deref(), Some("chip"));
        assert_eq!(on("fc").as_deref(), Some("chip"));
        assert_eq!(on("residual").as_deref(), Some("host"));
        assert_eq!(on("pool").as_deref(), Some("host"));
        assert!(err.contains("ReLU at the chip's readout"), "{err}");
        assert!(err.contains("fused"), "{err}");
        // The FC layer is mapped over the pooled 4 x 3 x 3 map (R = H, S = W).
        assert!(
            err.contains("FC layer fc: N=1 C=4 H=3 W=3 M=5 R=3 S=3"),
            "{err}"
        );
        assert_eq!(s["layers"].as_array().unwrap().len(), 3);
    }
}

/// BatchNormalization as torchvision exports it: after a CONV without bias and after one with
/// bias, each folded into the CONV's weights and bias (the CONVs then run on the chip with the
/// folded weights); on the block's input, with no layer before it, on the host. Bit-exact on
/// tiny and eyeriss-v1. (The float model against ONNX Runtime on the unfolded model is in
/// tests/onnxruntime.rs.)
#[test]
fn batchnorm_folds_into_the_layer_before_it_or_runs_on_the_host() {
    let model = write("bn.onnx", &build::batchnorm_block());
    for hw in ["tiny", "eyeriss-v1"] {
        let r = run_bit_exact(&model, "bn", hw);
        assert_eq!(r.node("bn_in")["on"], "host");
        assert!(
            r.node("bn_in")["note"]
                .as_str()
                .unwrap()
                .starts_with("x * scale (Q"),
            "{}",
            r.err
        );
        for (bn, conv) in [("bn_a", "conv_a"), ("bn_b", "conv_b")] {
            let note = r.node(bn)["note"].as_str().unwrap().to_string();
            assert!(note.starts_with(&format!("folded into `{conv}`")), "{note}");
            assert_eq!(r.node(conv)["on"], "chip");
            assert!(
                r.node(conv)["note"].as_str().unwrap().contains(
                    "affine map after it (BatchNormalization, Mul, Div, Sub, Add) folded"
                ),
                "{}",
                r.err
            );
        }
        assert_eq!(r.stats["layers"].as_array().unwrap().len(), 3);
    }
    // Pruned, the folded layers are written back unfolded: reloaded (and folded again) each
    // keeps half its weights, the kept ones exactly the weights before pruning.
    let calib = scratch_in("model", "bn_calib.npy");
    {
        use npyz::WriterBuilder;
        let mut f = std::fs::File::create(&calib).unwrap();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[16, 4, 6, 6])
            .writer(&mut f)
            .begin_nd()
            .unwrap();
        w.extend((0..16 * 144).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0))
            .unwrap();
        w.finish().unwrap();
    }
    let pruned = scratch_in("model", "bn-pruned.onnx");
    let o = rowsim()
        .args(["prune", "-q", "--density", "0.5", "--net"])
        .arg(&model)
        .arg("--calibration")
        .arg(&calib)
        .arg("-o")
        .arg(&pruned)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = rowsim_model::onnx::load(&model).unwrap();
    let after = rowsim_model::onnx::load(&pruned).unwrap();
    for ((n, a), (_, b)) in before.layers().zip(after.layers()) {
        if a.folded.is_none() {
            continue;
        }
        let kept = b.weights.iter().filter(|&&w| w != 0.0).count();
        assert_eq!(kept * 2, a.weights.len(), "{}", n.name);
        for (x, y) in a.weights.iter().zip(&b.weights) {
            assert!(*y == 0.0 || x == y, "{}: {x} became {y}", n.name);
        }
    }
}

/// A MobileNet-v2 inverted-residual block (1x1 expansion, a strided depthwise 3x3 CONV with
/// `group` = 16, 1x1 projection, each CONV followed by BatchNormalization and the first two by
/// ReLU6) runs bit-exact on tiny and eyeriss-v1: the three BNs folded, the depthwise CONV on
/// the chip as a layer of 16 groups, ReLU6 on the host.
#[test]
fn a_mobilenet_v2_block_with_a_strided_depthwise_conv_runs_bit_exact() {
    let model = write("mobilenet.onnx", &build::mobilenet_block());
    for hw in ["tiny", "eyeriss-v1"] {
        let r = run_bit_exact(&model, "mobilenet", hw);
        for conv in ["expand", "depthwise", "project", "fc"] {
            assert_eq!(r.node(conv)["on"], "chip", "{conv}");
        }
        for bn in ["bn_expand", "bn_depthwise", "bn_project"] {
            let note = r.node(bn)["note"].as_str().unwrap().to_string();
            assert!(note.starts_with("folded into"), "{bn}: {note}");
        }
        assert_eq!(r.node("relu6_a")["on"], "host");
        assert!(
            r.err.contains(
                "CONV layer depthwise: N=1 C=16 H=8 W=8 M=16 R=3 S=3 U=2x2 pad=1 G=16 -> E=4 F=4"
            ),
            "{}",
            r.err
        );
        assert_eq!(r.stats["layers"].as_array().unwrap().len(), 4);
    }
}

/// One Transformer encoder layer over tokens [N, 8, 16] (`build::encoder_layer`, as PyTorch
/// exports a one-head post-norm layer) runs bit-exact on tiny and eyeriss-v1: the six
/// products on the chip (the projections as FC layers whose batch is the N x 8 tokens, Q K^T
/// and attention x V image by image with the second operand as the filters), everything else
/// on the host; the MACs of each chip node are its closed form over the 2 images.
#[test]
fn a_transformer_encoder_layer_runs_bit_exact() {
    let model = write("encoder.onnx", &build::encoder_layer());
    for hw in ["tiny", "eyeriss-v1"] {
        let r = run_bit_exact(&model, "encoder", hw);
        for chip in ["q", "k", "v", "scores", "context", "out", "ff1", "ff2"] {
            assert_eq!(r.node(chip)["on"], "chip", "{chip}");
        }
        for host in [
            "k_t",
            "scale",
            "attention",
            "residual1",
            "norm1",
            "gelu_erf",
            "gelu_mul",
            "norm2",
        ] {
            assert_eq!(r.node(host)["on"], "host", "{host}");
        }
        assert!(
            r.err.contains("FC layer q: N=1 C=16 H=1 W=1 M=16 R=1 S=1")
                && r.err.contains("over 8 tokens an image"),
            "{}",
            r.err
        );
        // Two images of 8 tokens: a projection is 2 x 8 x 16 x 16 MACs, Q K^T 2 x 8 x 16 x 8,
        // attention x V 2 x 8 x 8 x 16, the MLP's 2 x 8 x 16 x 32 each.
        let macs = |name: &str| {
            r.stats["layers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["layer"] == name)
                .unwrap_or_else(|| panic!("no layer {name}"))["macs"]["total"]
                .as_u64()
                .unwrap()
        };
        for (name, want) in [
            ("q", 4096),
            ("out", 4096),
            ("scores", 2048),
            ("context", 2048),
            ("ff1", 8192),
            ("ff2", 8192),
        ] {
            assert_eq!(macs(name), want, "{name} on {hw}");
        }
    }
    // The report of the run: a line a node in model order, where it ran, a chip node's
    // energy, cycles and utilization (its layer's), and a chart of them beside the layer charts.
    let stats_file = scratch_in("model", "encoder-tiny.json");
    let svg = scratch_in("model", "encoder-report.svg");
    let nodes_svg = svg.with_file_name("encoder-report-nodes.svg");
    let _ = std::fs::remove_file(&nodes_svg);
    let o = rowsim()
        .arg("report")
        .arg(&stats_file)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("nodes of"))
        .skip(2)
        .take(20)
        .collect();
    assert_eq!(table.len(), 20, "{text}");
    assert!(
        table[0].starts_with("q ") && table[0].contains(" chip "),
        "{text}"
    );
    assert!(
        table[4].starts_with("scores ") && table[4].contains(" chip "),
        "{text}"
    );
    assert!(
        table[6].starts_with("attention ")
            && table[6].contains("Softmax")
            && table[6].contains(" host "),
        "{text}"
    );
    let s = stats(&stats_file);
    let scores = s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layer"] == "scores")
        .unwrap()
        .clone();
    assert!(
        table[4].contains(&format!(" {} ", scores["cycles"]["core_total"])),
        "{}",
        table[4]
    );
    assert!(
        text.contains("20 nodes: 8 on the chip") && text.contains("12 on the host"),
        "{text}"
    );
    assert!(std::fs::metadata(&nodes_svg).unwrap().len() > 1000);
    // One node on its own (`--layer model.onnx:NODE`): a projection over two images' tokens,
    // and Q K^T of one image; a batch that is not whole images of tokens is refused.
    for (node, batch) in [("q", "16"), ("scores", "8")] {
        let o = rowsim()
            .args(["run", "--hw", "tiny", "--batch", batch, "--layer"])
            .arg(format!("{}:{node}", model.display()))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{node}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.contains(&format!(
                "{node} on tiny (batch {batch}, seed 1): bit-exact"
            )),
            "{out}"
        );
    }
    let o = rowsim()
        .args(["run", "--hw", "tiny", "--batch", "5", "--layer"])
        .arg(format!("{}:q", model.display()))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("`q` runs over tokens (8 an image): --batch 5 is not a multiple of 8"));
}

/// The encoder layer with two attention heads, as PyTorch exports multi-head attention (Q, K
/// and V reshaped to heads and transposed, one product per head, the context transposed back
/// and merged): bit-exact on tiny and eyeriss-v1; Q K^T and attention x V run once per image
/// and head (2 images x 2 heads of 8 x 8 x 8 MACs each).
#[test]
fn a_multihead_encoder_layer_runs_bit_exact() {
    let model = write("multihead.onnx", &build::multihead_encoder_layer(2));
    for hw in ["tiny", "eyeriss-v1"] {
        let r = run_bit_exact(&model, "multihead", hw);
        for host in [
            "q_split",
            "k_heads",
            "context_tokens",
            "context_merge",
            "gelu",
        ] {
            assert_eq!(r.node(host)["on"], "host", "{host}");
        }
        let layers = r.stats["layers"].as_array().unwrap();
        for name in ["scores", "context"] {
            let l = layers.iter().find(|l| l["layer"] == name).unwrap();
            assert_eq!(l["macs"]["total"], 2 * 2 * 8 * 8 * 8, "{name} on {hw}");
            assert_eq!(r.node(name)["on"], "chip");
        }
        assert!(r.err.contains("head by head (2 heads)"), "{}", r.err);
    }
}

/// The host's elementwise operators (Mul, Sub, Div by constants, Sigmoid, HardSwish, Concat,
/// Pad, HardSigmoid) around a CONV whose constant Add is folded into it as its bias: bit-exact
/// on tiny and eyeriss-v1, each where it should run.
#[test]
fn elementwise_operators_run_on_the_host_around_the_chip() {
    let model = write("elementwise.onnx", &build::elementwise_block());
    for hw in ["tiny", "eyeriss-v1"] {
        let r = run_bit_exact(&model, "elementwise", hw);
        for host in [
            "scale",
            "center",
            "spread",
            "sigmoid",
            "hardswish",
            "cat",
            "pad",
            "hsig",
        ] {
            assert_eq!(r.node(host)["on"], "host", "{host}");
        }
        assert_eq!(r.node("conv")["on"], "chip");
        assert!(r.node("offset")["note"]
            .as_str()
            .unwrap()
            .starts_with("folded into `conv`"));
        assert_eq!(r.node("sigmoid")["out_frac"], 15);
        assert!(
            r.err
                .contains("CONV layer conv: N=1 C=8 H=8 W=8 M=4 R=3 S=3"),
            "{}",
            r.err
        );
    }
}

/// One layer of a model on its own weights and the activations of its calibration images.
#[test]
fn a_model_layer_runs_on_its_own_weights_and_activations() {
    let o = rowsim()
        .args([
            "run",
            "--layer",
            "models/digits/digits.onnx:conv2",
            "--batch",
            "4",
            "-q",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("conv2 of models/digits/digits.onnx: its weights (Q2.14) on the activations of the first 4 of models/digits/calib_x.npy"),
        "{err}"
    );
    assert!(
        out.contains("conv2 on eyeriss-v1 (batch 4, seed 1): bit-exact"),
        "{out}"
    );
    // 4 images x 16 filters x 4 x 4 outputs x 8 channels x 3 x 3 taps.
    assert!(out.contains("MACs      73728"), "{out}");
}

/// SIGTERM during a model run: status 130, and the statistics hold exactly the batches that
/// finished (written after each batch).
#[cfg(unix)]
#[test]
fn an_interrupted_model_run_keeps_its_finished_batches() {
    let file = scratch_in("model", "interrupted.json");
    let _ = std::fs::remove_file(&file);
    let child = common::digits(&file)
        .args(["--batch", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no batch finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let s = stats(&file);
    let images = s["images"].as_u64().unwrap();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("the statistics are those of the finished batches"),
        "{err}"
    );
    assert!((1..360).contains(&images), "{images}");
    assert_eq!(s["predictions"].as_array().unwrap().len() as u64, images);
    let per_image: u64 = 64 * 8 * 9 + 16 * 16 * 8 * 9 + 32 * 64 + 10 * 32;
    let macs: u64 = s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["macs"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(macs, images * per_image);
}
