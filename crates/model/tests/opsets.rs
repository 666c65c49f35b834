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

/// Softmax over any axis after the batch, and before opset 13 over the axes from `axis` on as
/// one: each against the definition, by hand on `[2, 3, 4, 5]` images.
#[test]
fn softmax_is_over_the_axis_its_opset_means() {
    let dims = [2usize, 3, 4, 5];
    let x = build::weights(120, 2.0, 9);
    let at = |i: usize, c: usize, h: usize, w: usize| ((i * 3 + c) * 4 + h) * 5 + w;
    // The softmax of the values at `idx`, at position `k` of them.
    let soft = |idx: &[usize], k: usize| {
        let m = idx.iter().map(|&j| x[j] as f64).fold(f64::MIN, f64::max);
        let s: f64 = idx.iter().map(|&j| (x[j] as f64 - m).exp()).sum();
        (x[idx[k]] as f64 - m).exp() / s
    };
    for (opset, axis) in [
        (13, Some(1)),
        (13, Some(-2)),
        (13, None),
        (11, None),
        (11, Some(2)),
    ] {
        let got = outputs(&build::softmax(opset, axis), dims, 2.0);
        for i in 0..2 {
            for c in 0..3 {
                for h in 0..4 {
                    for w in 0..5 {
                        // The values the softmax of (c, h, w) runs over.
                        let idx: Vec<usize> = match (opset, axis) {
                            (13, Some(1)) => (0..3).map(|k| at(i, k, h, w)).collect(),
                            (13, Some(-2)) => (0..4).map(|k| at(i, c, k, w)).collect(),
                            (13, None) => (0..5).map(|k| at(i, c, h, k)).collect(),
                            (11, None) => (0..60).map(|k| i * 60 + k).collect(),
                            _ => (0..20).map(|k| at(i, c, 0, 0) + k).collect(),
                        };
                        let me = at(i, c, h, w);
                        let k = idx.iter().position(|&j| j == me).unwrap();
                        let want = soft(&idx, k);
                        assert!(
                            (got[me] as f64 - want).abs() < 1e-6,
                            "opset {opset}, axis {axis:?}, at {:?}",
                            (i, c, h, w)
                        );
                    }
                }
            }
        }
    }
}

/// A Transpose that keeps the axes in place (a vector's only order, `perm = [0, 1]`) passes
/// its words on.
#[test]
fn a_transpose_in_place_is_the_same_words() {
    let bytes = build::model(
        vec![build::node(
            "Transpose",
            "t",
            &["x"],
            "y",
            vec![build::ints("perm", &[0, 1])],
        )],
        vec![],
        build::value("x", &[None, Some(6)]),
        build::value("y", &[None, Some(6)]),
    );
    assert_eq!(
        outputs(&bytes, [2, 6, 1, 1], 1.0),
        build::weights(12, 1.0, 9)
    );
}
