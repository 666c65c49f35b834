//! The AlexNet topology as SCALE-Sim and Timeloop describe it, read to the built-in shapes.

use std::path::{Path, PathBuf};

use rowsim_workload::{alexnet, scalesim_csv, timeloop_yaml, ConvLayer};

fn workloads() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads")
}

/// What a convolution computes: batch, filters, channels a filter sees, filter size, strides,
/// the padded input, the output, and MACs. (Padding is part of the input size in both formats.)
fn work(l: &ConvLayer) -> [u64; 11] {
    [
        l.n as u64,
        l.m as u64,
        l.cg() as u64,
        l.r as u64,
        l.s as u64,
        l.stride_v as u64,
        (l.h + 2 * l.pad) as u64,
        (l.w + 2 * l.pad) as u64,
        l.e() as u64,
        l.f() as u64,
        l.macs(),
    ]
}

#[test]
fn scalesim_alexnet_has_the_built_in_shapes() {
    let got = scalesim_csv(&workloads().join("alexnet-scalesim.csv")).unwrap();
    let want = alexnet();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(work(g), work(w), "{} vs {}", g.name, w.name);
        // SCALE-Sim has no groups: a grouped layer comes in ungrouped, per-group channels.
        assert_eq!(g.groups, 1);
        assert_eq!(g.c, w.cg());
        assert_eq!(g.first, w.first);
    }
    assert_eq!(got[2].name, "alexnet-scalesim:Conv3");
}

#[test]
fn timeloop_alexnet_has_the_built_in_shapes_groups_included() {
    for (k, w) in alexnet().iter().enumerate() {
        let f = workloads().join(format!("alexnet-timeloop/conv{}.yaml", k + 1));
        let g = timeloop_yaml(&f).unwrap();
        assert_eq!(work(&g), work(w), "{}", f.display());
        assert_eq!((g.c, g.m, g.groups), (w.c, w.m, w.groups));
    }
}
