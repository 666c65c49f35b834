//! `rowsim prune` on the digits model: magnitude pruning to a density, energy-aware pruning
//! within an accuracy budget, the pruned ONNX running bit-exact on the chip with the accuracy
//! the report states, and `rowsim report`'s charts against weight density.

use std::path::PathBuf;

mod common;
use common::{rowsim, scratch_in};

const D: &str = "models/digits";

fn json(p: &PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn prune(method: &str, density: &str, hw: &str, tag: &str) -> (PathBuf, serde_json::Value) {
    let out = scratch_in("prune", &format!("{tag}.onnx"));
    let report = scratch_in("prune", &format!("{tag}.json"));
    let o = rowsim()
        .args([
            "prune",
            "--net",
            &format!("{D}/digits.onnx"),
            "--density",
            density,
        ])
        .args(["--method", method, "--hw", hw, "-q"])
        .args([
            "--input",
            &format!("{D}/test_x.npy"),
            "--labels",
            &format!("{D}/test_y.npy"),
        ])
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (out, json(&report))
}

/// The pruned model on the chip: bit-exact, and the stats.
fn run(model: &PathBuf, hw: &str, tag: &str) -> serde_json::Value {
    let stats = scratch_in("prune", &format!("{tag}-run.json"));
    let o = rowsim()
        .args(["run", "--hw", hw, "-q", "--net"])
        .arg(model)
        .args([
            "--input",
            &format!("{D}/test_x.npy"),
            "--labels",
            &format!("{D}/test_y.npy"),
        ])
        .arg("--stats-json")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json(&stats);
    assert_eq!(s["bit_exact"], true);
    s
}

#[test]
fn magnitude_pruning_keeps_the_density_and_the_skip_machine_saves_energy() {
    let (model, r) = prune("magnitude", "0.5", "eyeriss-v1-skip", "mag50");
    for l in r["layers"].as_array().unwrap() {
        assert_eq!(l["density_before"], 1.0);
        let d = l["density_after"].as_f64().unwrap();
        assert!((d - 0.5).abs() < 0.01, "{l}");
        assert!(
            l["energy_after"].as_f64().unwrap() < l["energy_before"].as_f64().unwrap(),
            "{l}"
        );
    }
    let s = run(&model, "eyeriss-v1-skip", "mag50");
    assert!((s["weight_density"].as_f64().unwrap() - 0.5).abs() < 0.01);
    assert_eq!(s["pruning"], "magnitude (layer scope)");
    // The report's accuracy is the chip's: the same fixed-point network.
    assert_eq!(s["accuracy"]["chip"], r["pruned"]["accuracy"]);
    // The report's energy is the closed form on the calibration images; the run's, the chip's
    // on the test images: the same model of the same machine, so close.
    let (est, ran) = (
        r["pruned"]["energy_total"].as_f64().unwrap(),
        s["totals"]["energy_per_inference"].as_f64().unwrap(),
    );
    assert!((est / ran - 1.0).abs() < 0.1, "estimate {est}, run {ran}");
    let dense = run(
        &PathBuf::from(format!("{D}/digits.onnx")),
        "eyeriss-v1-skip",
        "dense",
    );
    assert!(
        ran < dense["totals"]["energy_per_inference"].as_f64().unwrap(),
        "pruning saves the skip machine energy"
    );
    assert!(
        s["totals"]["core_cycles_per_inference"].as_f64().unwrap()
            < dense["totals"]["core_cycles_per_inference"]
                .as_f64()
                .unwrap()
    );
    // The charts against density, from the two runs.
    let svg = scratch_in("prune", "r.svg");
    let o = rowsim()
        .arg("report")
        .arg(scratch_in("prune", "mag50-run.json"))
        .arg(scratch_in("prune", "dense-run.json"))
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("model runs by weight density"));
    let d = std::fs::read_to_string(scratch_in("prune", "r-density.svg")).unwrap();
    assert!(d.contains("Energy per inference") && d.contains("eyeriss-v1-skip, magnitude"));
}

#[test]
fn energy_aware_pruning_goes_costliest_first_within_its_budget() {
    let (model, r) = prune("energy", "0.3", "eyeriss-v1-skip", "energy30");
    let dense = r["dense"]["accuracy"].as_f64().unwrap();
    let layers = r["layers"].as_array().unwrap();
    // Costliest first.
    let before: Vec<f64> = layers
        .iter()
        .map(|l| l["energy_before"].as_f64().unwrap())
        .collect();
    let dense_energy: Vec<f64> = layers
        .iter()
        .map(|l| {
            r["dense"]["energy"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e[0] == l["layer"])
                .unwrap()[1]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert!(
        dense_energy.windows(2).all(|w| w[0] >= w[1]),
        "{dense_energy:?}"
    );
    assert_eq!(before.len(), 4);
    // Within the budget of one point, on the chip too.
    let pruned = r["pruned"]["accuracy"].as_f64().unwrap();
    assert!(dense - pruned <= 0.01 + 1e-12, "{dense} -> {pruned}");
    let s = run(&model, "eyeriss-v1-skip", "energy30");
    assert_eq!(s["accuracy"]["chip"].as_f64().unwrap(), pruned);
    assert!(s["pruning"].as_str().unwrap().starts_with("energy-aware"));
    // Something was pruned, and what broke the budget was left as it was.
    assert!(layers
        .iter()
        .any(|l| l["density_after"].as_f64().unwrap() < 0.5));
    for l in layers {
        if l["note"].as_str().unwrap().starts_with("left as it was") {
            assert_eq!(l["density_after"], l["density_before"]);
        }
    }
}

#[test]
fn prune_refuses_what_it_cannot_do() {
    for (args, error) in [
        (
            vec![
                "prune",
                "--net",
                "alexnet",
                "--density",
                "0.5",
                "-o",
                "/tmp/x.onnx",
            ],
            "rowsim prune takes an ONNX model",
        ),
        (
            vec![
                "prune",
                "--net",
                "models/digits/digits.onnx",
                "--density",
                "1.5",
                "-o",
                "/tmp/x.onnx",
            ],
            "`1.5`: expected a number from 0 to 1",
        ),
        (
            vec![
                "prune",
                "--net",
                "models/digits/digits.onnx",
                "--density",
                "0.5",
                "--method",
                "energy",
                "-o",
                "/tmp/rowsim-prune-x.onnx",
            ],
            "--method energy measures accuracy after each layer: give --input and --labels",
        ),
        (
            vec![
                "prune",
                "--net",
                "models/digits/digits.onnx",
                "--density",
                "0.5",
                "-o",
                "models/digits/digits.onnx",
            ],
            "would overwrite an input",
        ),
    ] {
        let o = rowsim().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(error), "{args:?}: {err}");
    }
}
