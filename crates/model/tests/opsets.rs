//! The models of `rowsim_model::build` read under every opset from 11 to 21 that has their
//! operators (the encoder's LayerNormalization from 17, Gelu from 20): the same nodes and the
//! same float outputs as under the opset they were written for. (What differs between
//! opsets, the importer reads from where each opset puts it: Clip's and Pad's bounds as
//! inputs from 11, Softmax's default axis from 13, ReduceMean's axes as an input from 18.)

use rowsim_model::build;
use rowsim_model::exec::{forward_float, FTensor};

/// The model's outputs on inputs of `dims` uniform in `[-a, a]`.
fn outputs(bytes: &[u8], dims: [usize; 4], a: f32) -> Vec<f32> {
    let m = rowsim_model::parse(bytes, "m.onnx").unwrap();
    let n: usize = dims.iter().product();
    let x = FTensor {
        dims,
        data: build::weights(n, a, 9),
    };
    forward_float(&m, &x).unwrap()[&m.output].data.clone()
}

#[test]
fn every_opset_from_11_to_21_reads_the_same_model() {
    let models: [(&str, Vec<u8>, [usize; 4], i64); 5] = [
        ("resnet block", build::resnet_block(), [2, 4, 6, 6], 11),
        (
            "batchnorm block",
            build::batchnorm_block(),
            [2, 4, 6, 6],
            11,
        ),
        (
            "mobilenet block",
            build::mobilenet_block(),
            [2, 8, 8, 8],
            11,
        ),
        (
            "elementwise block",
            build::elementwise_block(),
            [2, 4, 6, 6],
            11,
        ),
        ("encoder layer", build::encoder_layer(), [2, 8, 16, 1], 17),
    ];
    for (name, bytes, dims, first) in models {
        let want = outputs(&bytes, dims, 1.0);
        for opset in first..=21 {
            let got = outputs(&build::at_opset(&bytes, opset), dims, 1.0);
            assert_eq!(got, want, "{name} at opset {opset}");
        }
    }
}

#[test]
fn gelu_is_erf_based_or_tanh_based_as_asked() {
    let x = build::weights(2 * 24, 3.0, 9);
    let exact = outputs(&build::gelu("none"), [2, 4, 6, 1], 3.0);
    let tanh = outputs(&build::gelu("tanh"), [2, 4, 6, 1], 3.0);
    for ((&v, &e), &t) in x.iter().zip(&exact).zip(&tanh) {
        let v = v as f64;
        let want = 0.5 * v * (1.0 + rowsim_model::erf(v / std::f64::consts::SQRT_2));
        assert!((e as f64 - want).abs() < 1e-6, "{v}: {e} vs {want}");
        // The two agree to within 0.02 everywhere (the tanh form's own error).
        assert!((e - t).abs() < 0.02, "{v}: {e} vs {t}");
    }
    assert_ne!(exact, tanh);
}
