//! FC layers on the chip (a CONV layer whose filter covers its input), whole and split into
//! parts beyond the machine's limits: bit-exact against the reference convolution of the whole
//! layer, every part's counted accesses equal to the closed form (see `common`).

use rowsim_chip::{run_split, RunOptions};
use rowsim_config::HwConfig;
use rowsim_mapper::{choose, Split};
use rowsim_workload::{
    reference_conv, synthetic_ifmap, synthetic_weights, ConvLayer, Formats, Weights,
};

mod common;

fn fc(name: &str, n: u32, c: u32, hw: u32, m: u32) -> ConvLayer {
    ConvLayer {
        name: name.into(),
        n,
        c,
        h: hw,
        w: hw,
        m,
        r: hw,
        s: hw,
        stride_v: 1,
        stride_h: 1,
        pad: 0,
        groups: 1,
        ifmap_zero_fraction: 0.3,
        first: false,
    }
}

/// Runs `l` in its parts on `hw` and checks: every part's run against its closed form and
/// reference (`common::run_and_check`), the assembled output against the reference convolution
/// of the whole layer, and the summed statistics against the whole layer's MACs.
fn split_and_check(l: &ConvLayer, hw: &HwConfig, parts: usize) {
    assert!(l.is_fc());
    let split = Split::of(l, hw).unwrap();
    assert_eq!(split.parts.len(), parts, "{}", split.describe());
    for p in &split.parts {
        let m = choose(&p.layer, hw).unwrap();
        common::run_and_check(&p.layer, hw, &m, 5);
    }
    let fmt = Formats::DEFAULT;
    let (x, w) = (synthetic_ifmap(l, 9, fmt), synthetic_weights(l, 9, fmt));
    let opts = RunOptions {
        mac: fmt.mac(),
        ..Default::default()
    };
    let mut mapping =
        |p: &ConvLayer, _: &rowsim_workload::Tensor| choose(p, hw).map_err(|e| e.to_string());
    let r = run_split(hw, &split, &x, &Weights::of(&w), 9, &opts, &mut mapping).unwrap();
    // The same with the weights made a block of filters at a time, as a run of synthetic data
    // makes them: the same output and statistics (the host's figures aside).
    let made = Weights::Synthetic {
        layer: l.clone(),
        seed: 9,
        fmt,
    };
    let blocks = run_split(hw, &split, &x, &made, 9, &opts, &mut mapping).unwrap();
    assert!(blocks.ofmap == r.ofmap);
    let unhosted = |s: &rowsim_chip::LayerStats| {
        let mut s = s.clone();
        s.host = None;
        s.parts.iter_mut().for_each(|p| p.host = None);
        serde_json::to_string(&s).unwrap()
    };
    assert_eq!(unhosted(&blocks.stats), unhosted(&r.stats));
    let (want, _) = reference_conv(l, &x, &w, fmt.mac(), hw.datapath.relu).unwrap();
    assert!(
        r.ofmap == want,
        "{}: differs from the whole layer's reference",
        l.name
    );
    assert!(r.stats.verified);
    assert_eq!(r.stats.macs.total, l.macs());
    assert_eq!(r.stats.parts.len(), parts);
    let sum: u64 = r.stats.parts.iter().map(|p| p.cycles.core_total).sum();
    assert_eq!(r.stats.cycles.core_total, sum);
}

#[test]
fn an_fc_layer_on_the_tiny_config_is_bit_exact_with_closed_form_counts() {
    let hw = common::hw("tiny");
    let l = fc("tiny:fc", 2, 8, 3, 12);
    assert_eq!((l.e(), l.f()), (1, 1));
    let m = choose(&l, &hw).unwrap();
    let run = common::run_and_check(&l, &hw, &m, 3);
    assert_eq!(run.counts.macs, l.macs());
    // Whole: within every limit, one part.
    assert!(!Split::of(&l, &hw).unwrap().is_split());
}

#[test]
fn a_split_fc_layer_equals_the_unsplit_reference() {
    // Over tiny's limits: M 70 > 64 (2 blocks), C 80 > 64 (2 blocks), R = H = 4 > the 3 rows
    // of the array (2 blocks of rows); S = 4 fits. 8 parts, the sums of 4 added per filter.
    let hw = common::hw("tiny");
    split_and_check(&fc("tiny:fc_big", 2, 80, 4, 70), &hw, 8);
}

#[test]
fn a_split_fc_layer_with_relu_off_keeps_negative_sums() {
    let mut hw = common::hw("tiny");
    hw.datapath.relu = false;
    split_and_check(&fc("tiny:fc_signed", 1, 70, 2, 10), &hw, 2);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: minutes in a debug build; run with cargo test --release"
)]
fn alexnet_fc8_in_four_channel_parts_is_bit_exact() {
    let hw = common::hw("eyeriss-v1");
    let l = rowsim_workload::layer("alexnet:fc8").unwrap();
    split_and_check(&l, &hw, 4);
}
