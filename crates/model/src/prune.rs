//! Pruning a model's weights: magnitude pruning, the least-squares restoration of a layer's
//! kept weights (the step of Yang, Chen and Sze, "Designing Energy-Efficient Convolutional
//! Neural Networks using Energy-Aware Pruning", CVPR 2017), and writing the weights back into
//! the ONNX file.

use onnx_protobuf::{Message, ModelProto};

use rowsim_workload::{keep_largest, kept};

use crate::exec::FTensor;
use crate::{LayerOp, Model, ModelError, Op};

/// The metadata key a pruned model records how it was pruned under.
pub const PRUNING_KEY: &str = "rowsim.pruning";

/// Which weights one magnitude threshold covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Each layer keeps its own largest `density` fraction.
    Layer,
    /// One threshold over every layer's weights.
    Global,
}

/// The fraction of nonzero weights.
pub fn density(w: &[f32]) -> f64 {
    if w.is_empty() {
        return 1.0;
    }
    w.iter().filter(|&&v| v != 0.0).count() as f64 / w.len() as f64
}

/// Magnitude pruning of the layers named in `only` (every layer when `None`) to `density`.
pub fn magnitude(model: &mut Model, density: f64, scope: Scope, only: Option<&[String]>) {
    let chosen = |name: &str| only.is_none_or(|o| o.iter().any(|n| n == name));
    match scope {
        Scope::Layer => {
            for n in model.nodes.iter_mut().filter(|n| chosen(&n.name)) {
                if let Op::Layer(l) = &mut n.op {
                    let keep = kept(l.weights.len(), density);
                    keep_largest(&mut l.weights, keep, |v| v.abs() as f64);
                }
            }
        }
        Scope::Global => {
            let mut all: Vec<f32> = Vec::new();
            for n in model.nodes.iter().filter(|n| chosen(&n.name)) {
                if let Op::Layer(l) = &n.op {
                    all.extend(l.weights.iter().map(|v| v.abs()));
                }
            }
            let keep = kept(all.len(), density);
            all.sort_by(|a, b| b.total_cmp(a));
            let Some(&thr) = all.get(keep.saturating_sub(1)) else {
                return;
            };
            // Weights strictly above the threshold stay, and as many equal to it as fit.
            let mut room = keep - all.iter().filter(|&&v| v > thr).count();
            for n in model.nodes.iter_mut().filter(|n| chosen(&n.name)) {
                if let Op::Layer(l) = &mut n.op {
                    for v in l.weights.iter_mut() {
                        let a = v.abs();
                        if keep == 0 || a < thr {
                            *v = 0.0;
                        } else if a == thr {
                            if room > 0 {
                                room -= 1;
                            } else {
                                *v = 0.0;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A layer's output before bias and ReLU on input `x` (`[N][M][E][F]`, in `f64`): the target
/// of [`restore`].
pub fn pre_activation(l: &LayerOp, x: &FTensor) -> Vec<f64> {
    crate::exec::conv_f32(&l.layer, x, &l.weights)
}

/// The input patch of output position `pos` of a layer, for filter group `g`: `C/G*R*S`
/// values (padding zero), in the weights' `[c][r][s]` order.
fn patch(l: &LayerOp, x: &FTensor, pos: usize, g: usize, out: &mut Vec<f64>) {
    let ly = &l.layer;
    let [_, c, h, w] = x.dims;
    let (e, f) = (ly.e() as usize, ly.f() as usize);
    let (n, rest) = (pos / (e * f), pos % (e * f));
    let (ey, fx) = (rest / f, rest % f);
    let cg = ly.cg() as usize;
    out.clear();
    for cc in 0..cg {
        let ch = g * cg + cc;
        for r in 0..ly.r as usize {
            let y = (ey * ly.stride_v as usize + r) as i64 - ly.pad as i64;
            for s in 0..ly.s as usize {
                let xx = (fx * ly.stride_h as usize + s) as i64 - ly.pad as i64;
                let v = if y < 0 || y >= h as i64 || xx < 0 || xx >= w as i64 {
                    0.0
                } else {
                    x.data[((n * c + ch) * h + y as usize) * w + xx as usize] as f64
                };
                out.push(v);
            }
        }
    }
}

/// Solves `A w = b` for a symmetric positive definite `A` (`k x k`, row-major) by Cholesky;
/// `None` when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], k: usize) -> Option<()> {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut v = a[i * k + j];
            for p in 0..j {
                v -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = v / d;
        }
    }
    for i in 0..k {
        let mut v = b[i];
        for p in 0..i {
            v -= a[i * k + p] * b[p];
        }
        b[i] = v / a[i * k + i];
    }
    for i in (0..k).rev() {
        let mut v = b[i];
        for p in i + 1..k {
            v -= a[p * k + i] * b[p];
        }
        b[i] = v / a[i * k + i];
    }
    Some(())
}

/// Restores a pruned layer's kept weights by least squares: for each filter, the nonzero
/// weights that make its output (before bias) on the layer's input `x` closest, in the sum of
/// squares over every output position of the batch, to `target` (`[N][M][E][F]`: what the dense
/// network's layer made). Zeros stay zero. A tiny ridge (1e-6 of the mean diagonal) keeps the
/// system solvable; a filter whose system still fails keeps its weights.
pub fn restore(l: &mut LayerOp, x: &FTensor, target: &[f64]) {
    let ly = l.layer.clone();
    let (m, mg) = (ly.m as usize, ly.mg() as usize);
    let k = (ly.cg() * ly.r * ly.s) as usize;
    let (e, f) = (ly.e() as usize, ly.f() as usize);
    let n = x.dims[0];
    let positions = n * e * f;
    let mut p = Vec::with_capacity(k);
    for mm in 0..m {
        let g = mm / mg;
        let w = &l.weights[mm * k..(mm + 1) * k];
        let keep: Vec<usize> = (0..k).filter(|&i| w[i] != 0.0).collect();
        let kk = keep.len();
        if kk == 0 {
            continue;
        }
        let mut ata = vec![0f64; kk * kk];
        let mut aty = vec![0f64; kk];
        for pos in 0..positions {
            patch(l, x, pos, g, &mut p);
            let (ni, rest) = (pos / (e * f), pos % (e * f));
            let y = target[(ni * m + mm) * e * f + rest];
            for (i, &a) in keep.iter().enumerate() {
                let va = p[a];
                if va == 0.0 {
                    continue;
                }
                aty[i] += va * y;
                for (j, &b) in keep.iter().enumerate().take(i + 1) {
                    ata[i * kk + j] += va * p[b];
                }
            }
        }
        for i in 0..kk {
            for j in 0..i {
                ata[j * kk + i] = ata[i * kk + j];
            }
        }
        let mean = (0..kk).map(|i| ata[i * kk + i]).sum::<f64>() / kk as f64;
        let ridge = 1e-6 * mean.max(1e-12);
        for i in 0..kk {
            ata[i * kk + i] += ridge;
        }
        if cholesky_solve(&mut ata, &mut aty, kk).is_some() && aty.iter().all(|v| v.is_finite()) {
            for (i, &a) in keep.iter().enumerate() {
                l.weights[mm * k + a] = aty[i] as f32;
            }
        }
    }
}

/// The model's (pruned) weights written back into the ONNX file it came from (`original`):
/// each layer's weight initializer replaced, `how` recorded under [`PRUNING_KEY`], everything
/// else as it was.
pub fn write_onnx(model: &Model, original: &[u8], how: &str) -> Result<Vec<u8>, ModelError> {
    let err = |why: String| ModelError {
        file: model.file.clone(),
        node: None,
        op: None,
        why,
    };
    let mut proto = ModelProto::parse_from_bytes(original)
        .map_err(|e| err(format!("not an ONNX model, or a truncated one: {e}")))?;
    // How it was pruned, for the tools that compare pruned models (`rowsim report`).
    proto.metadata_props.retain(|p| p.key != PRUNING_KEY);
    proto
        .metadata_props
        .push(onnx_protobuf::StringStringEntryProto {
            key: PRUNING_KEY.into(),
            value: how.into(),
            ..Default::default()
        });
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| err("the model has no graph".into()))?;
    for (node, l) in model.layers() {
        let init = graph
            .initializer
            .iter_mut()
            .find(|t| t.name == l.weight_init)
            .ok_or_else(|| {
                err(format!(
                    "node `{}`: initializer `{}` is missing",
                    node.name, l.weight_init
                ))
            })?;
        // With a BatchNormalization folded in, ours are the stored weights times each filter's
        // factor: the stored ones are kept, and those pruned (zero, with a nonzero factor)
        // zeroed, so that loading the pruned model folds it to exactly our weights.
        let weights = match &l.folded {
            None => l.weights.clone(),
            Some(factor) => {
                let stored = crate::onnx::floats_of(init, l.weights.len())
                    .map_err(|why| err(format!("initializer `{}`: {why}", l.weight_init)))?;
                let m = l.layer.m as usize;
                let per = l.weights.len() / m.max(1);
                stored_order(l.transposed, m, &stored)
                    .into_iter()
                    .enumerate()
                    .map(|(k, w)| {
                        let pruned = l.weights[k] == 0.0 && factor[k / per.max(1)] != 0.0;
                        if pruned {
                            0.0
                        } else {
                            w
                        }
                    })
                    .collect()
            }
        };
        let values = if l.transposed {
            // Stored [K, M]; ours are [M][K].
            let m = l.layer.m as usize;
            let k = weights.len() / m.max(1);
            let mut t = vec![0f32; weights.len()];
            for j in 0..m {
                for i in 0..k {
                    t[i * m + j] = weights[j * k + i];
                }
            }
            t
        } else {
            weights
        };
        init.raw_data.clear();
        init.float_data = values;
    }
    proto
        .write_to_bytes()
        .map_err(|e| err(format!("cannot serialize: {e}")))
}

/// Weights as stored (`[K, M]` when `transposed`) in our order `[M][K]`.
fn stored_order(transposed: bool, m: usize, stored: &[f32]) -> Vec<f32> {
    if !transposed {
        return stored.to_vec();
    }
    let k = stored.len() / m.max(1);
    let mut t = vec![0f32; stored.len()];
    for j in 0..m {
        for i in 0..k {
            t[j * k + i] = stored[i * m + j];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_largest_keeps_the_largest_magnitudes() {
        let mut w = vec![0.1f32, -0.5, 0.3, -0.2, 0.05];
        keep_largest(&mut w, 2, |v| v.abs() as f64);
        assert_eq!(w, vec![0.0, -0.5, 0.3, 0.0, 0.0]);
        assert_eq!(density(&w), 0.4);
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] w = [2, 1] -> w = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        cholesky_solve(&mut a, &mut b, 2).unwrap();
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
    }
}
