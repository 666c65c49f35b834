//! The digits model (models/digits/) imported and run on the host: float and fixed point.

use rowsim_model::{calibrate, forward_fixed, forward_float, top1, FTensor};
use rowsim_workload::reference_conv;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/digits")
}

fn f32s(name: &str) -> FTensor {
    let bytes = std::fs::read(root().join(name)).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let s: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    FTensor {
        dims: [s[0], s[1], s[2], s[3]],
        data: npy.into_vec::<f32>().unwrap(),
    }
}

fn labels() -> Vec<usize> {
    let bytes = std::fs::read(root().join("test_y.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    npy.into_vec::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as usize)
        .collect()
}

#[test]
fn the_digits_model_in_float_and_in_fixed_point() {
    let model = rowsim_model::load(&root().join("digits.onnx")).unwrap();
    let x = f32s("test_x.npy");
    let y = labels();
    let vals = forward_float(&model, &x).unwrap();
    let logits = &vals[model.logits()];
    let float_pred = top1(logits.dims, &logits.data);
    let acc = |p: &[usize]| p.iter().zip(&y).filter(|(a, b)| a == b).count();
    let cal = calibrate(&model, &f32s("calib_x.npy")).unwrap();
    let fixed = forward_fixed(&model, &cal, &x, &mut |c| {
        reference_conv(c.layer, c.ifmap, c.weights, c.mac, c.relu).map(|r| r.0)
    })
    .unwrap();
    let fl = &fixed[model.logits()];
    let fixed_pred = top1(fl.dims, &fl.data);
    eprintln!(
        "float {} / {}, fixed {} / {}; formats {:?}",
        acc(&float_pred),
        y.len(),
        acc(&fixed_pred),
        y.len(),
        cal.layers
            .iter()
            .map(|(k, l)| (k, l.ifmap_frac, l.weight_frac, l.psum_frac, l.shift))
            .collect::<Vec<_>>()
    );
    // train.py printed this accuracy for the float model with numpy and with onnxruntime.
    assert_eq!(acc(&float_pred), 348);
    let agree = float_pred
        .iter()
        .zip(&fixed_pred)
        .filter(|(a, b)| a == b)
        .count();
    assert!(agree * 100 >= y.len() * 99, "{agree} of {} agree", y.len());
}
