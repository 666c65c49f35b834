//! Built-in networks against the papers' numbers; the reference convolution against an
//! independent float computation; synthetic data against its parameters.

use proptest::prelude::*;
use rowsim_datapath::mac::{MacConfig, Overflow, Rounding};
use rowsim_workload::{
    alexnet, layer, network, reference_conv, reference_conv_plain, synthetic_filters,
    synthetic_ifmap, synthetic_weights, vgg16, ConvLayer, Formats, SplitMix64, Tensor, Weights,
};

#[test]
fn alexnet_matches_the_papers() {
    let l = alexnet();
    // H includes padding; E; C per group; M; U (SPEC.md's mapping table).
    let table = [
        (227, 11, 55, 3, 96, 4),
        (31, 5, 27, 48, 256, 1),
        (15, 3, 13, 256, 384, 1),
        (15, 3, 13, 192, 384, 1),
        (15, 3, 13, 192, 256, 1),
    ];
    for (layer, &(h, r, e, c, m, u)) in l.iter().zip(&table) {
        assert_eq!(
            (
                layer.hp(),
                layer.r,
                layer.e(),
                layer.cg(),
                layer.m,
                layer.stride_v
            ),
            (h, r, e, c, m, u),
            "{layer}"
        );
        assert_eq!(layer.e(), layer.f());
        layer.validate().unwrap();
    }
    assert_eq!(l.iter().map(|x| x.macs()).sum::<u64>(), 665_784_864);
    let zeros: Vec<f64> = l.iter().map(|x| x.ifmap_zero_fraction).collect();
    assert_eq!(zeros, [0.0001, 0.387, 0.725, 0.793, 0.776]);
}

#[test]
fn vgg16_has_13_conv_layers() {
    let v = vgg16();
    assert_eq!(v.len(), 13);
    assert!(v.iter().all(|l| l.r == 3 && l.pad == 1 && l.e() == l.h));
    // 15.35 GMACs per image for VGG-16's CONV layers.
    assert_eq!(v.iter().map(|l| l.macs()).sum::<u64>(), 15_346_630_656);
}

#[test]
fn layers_by_name_and_clear_errors() {
    assert_eq!(layer("vgg16:conv4_2").unwrap().c, 512);
    assert_eq!(layer("alexnet:conv3").unwrap().m, 384);
    assert!(layer("alexnet")
        .unwrap_err()
        .contains("expected NETWORK:LAYER"));
    assert!(layer("resnet:conv1")
        .unwrap_err()
        .contains("unknown network `resnet`; built in: alexnet, vgg16"));
    assert!(layer("alexnet:conv9")
        .unwrap_err()
        .contains("has no layer `conv9`; it has: conv1, conv2"));
    assert!(network("vgg16").is_ok());
    let mut bad = layer("alexnet:conv2").unwrap();
    bad.groups = 3;
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("groups 3 must divide C (96) and M (256)"));
}

#[test]
fn synthetic_data_is_reproducible_and_has_its_zero_fraction() {
    let l = layer("alexnet:conv3").unwrap();
    let a = synthetic_ifmap(&l, 7, Formats::DEFAULT);
    assert_eq!(a, synthetic_ifmap(&l, 7, Formats::DEFAULT));
    assert_ne!(a, synthetic_ifmap(&l, 8, Formats::DEFAULT));
    assert!(
        (a.zero_fraction() - 0.725).abs() < 0.01,
        "{}",
        a.zero_fraction()
    );
    assert!(
        a.data.iter().all(|&v| v >= 0),
        "post-ReLU ifmaps are non-negative"
    );
    let first = synthetic_ifmap(&layer("alexnet:conv1").unwrap(), 7, Formats::DEFAULT);
    assert!(
        first.data.iter().any(|&v| v < 0),
        "a first layer's input is signed"
    );
    let w = synthetic_weights(&l, 7, Formats::DEFAULT);
    let bound = (2.0 / ((256 * 9) as f64).sqrt() * 32768.0).round() as i16;
    assert!(w.data.iter().all(|&v| v.abs() <= bound));
    // A fixed value for a fixed seed: the generator must never change.
    assert_eq!(
        &a.data[..4],
        &synthetic_ifmap(&l, 7, Formats::DEFAULT).data[..4]
    );
}

/// A generator skipped `n` draws is where `n` draws leave it, for any `n` (the state wraps).
#[test]
fn skipping_draws_is_drawing_them() {
    for (seed, n) in [(0u64, 0u64), (7, 1), (7, 2), (u64::MAX, 3), (12345, 1000)] {
        let (mut drawn, mut skipped) = (SplitMix64::new(seed), SplitMix64::new(seed));
        for _ in 0..n {
            drawn.next_u64();
        }
        skipped.skip(n);
        assert_eq!(
            drawn.next_u64(),
            skipped.next_u64(),
            "seed {seed}, {n} draws"
        );
    }
    // Far skips compose as the draws would (2^64 + 5 draws are 5: the state is a counter).
    let (mut a, mut b) = (SplitMix64::new(3), SplitMix64::new(3));
    a.skip(u64::MAX);
    a.skip(6);
    b.skip(5);
    assert_eq!(a.next_u64(), b.next_u64());
}

/// A block of a layer's synthetic filters, made alone, is the whole layer's filters in that
/// range value for value (so a layer run in parts runs on the same weights); held weights give
/// the same blocks.
#[test]
fn a_block_of_synthetic_filters_is_the_whole_layers() {
    let fmt = Formats::DEFAULT;
    let mut l = layer("alexnet:conv2").unwrap();
    l.m = 40;
    let whole = synthetic_weights(&l, 11, fmt);
    let per = whole.dims[1] * whole.dims[2] * whole.dims[3];
    let made = Weights::Synthetic {
        layer: l.clone(),
        seed: 11,
        fmt,
    };
    let held = Weights::of(&whole);
    for m in [0..40, 0..1, 1..2, 13..29, 39..40, 20..20] {
        let (a, b) = (m.start as usize, m.end as usize);
        let want = &whole.data[a * per..b * per];
        let block = synthetic_filters(&l, 11, fmt, m.clone());
        assert_eq!(block.dims, [b - a, 48, 5, 5], "filters {m:?}");
        assert_eq!(block.data, want, "filters {m:?}");
        assert_eq!(made.filters(m.clone()).data, want, "filters {m:?}");
        assert_eq!(held.filters(m.clone()).data, want, "filters {m:?}");
    }
    assert!(matches!(held.filters(0..40), std::borrow::Cow::Borrowed(_)));
    assert_eq!(made.into_tensor(), whole);
}

/// The float convolution of the dequantized tensors, independent of the datapath code.
fn float_conv(l: &ConvLayer, x: &Tensor, w: &Tensor, fmt: Formats) -> Vec<f64> {
    let (cg, mg) = (l.cg() as i64, l.mg() as i64);
    let xs = 1.0 / (1u64 << fmt.ifmap_frac) as f64;
    let ws = 1.0 / (1u64 << fmt.weight_frac) as f64;
    let mut out = vec![];
    for n in 0..l.n as i64 {
        for m in 0..l.m as i64 {
            for e in 0..l.e() as i64 {
                for f in 0..l.f() as i64 {
                    let mut acc = 0.0;
                    for c in 0..cg {
                        for r in 0..l.r as i64 {
                            for s in 0..l.s as i64 {
                                let (y, z) = (
                                    e * l.stride_v as i64 + r - l.pad as i64,
                                    f * l.stride_h as i64 + s - l.pad as i64,
                                );
                                if (0..l.h as i64).contains(&y) && (0..l.w as i64).contains(&z) {
                                    let xi = x.get([
                                        n as usize,
                                        ((m / mg) * cg + c) as usize,
                                        y as usize,
                                        z as usize,
                                    ]);
                                    acc += xi as f64
                                        * xs
                                        * w.get([m as usize, c as usize, r as usize, s as usize])
                                            as f64
                                        * ws;
                                }
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

fn small_layer() -> impl Strategy<Value = ConvLayer> {
    (
        1u32..=2,
        1u32..=3,
        1u32..=3,
        3u32..=9,
        3u32..=9,
        1u32..=4,
        1u32..=4,
        1u32..=3,
        1u32..=3,
        0u32..=2,
        0.0f64..0.8,
        any::<bool>(),
    )
        .prop_filter_map(
            "a valid shape",
            |(n, g, cpg, h, w, mpg, r, s, u, pad, z, first)| {
                let l = ConvLayer {
                    name: "t".into(),
                    n,
                    c: g * cpg,
                    h,
                    w,
                    m: g * mpg,
                    r,
                    s,
                    stride_v: u,
                    stride_h: if first { 1 } else { u },
                    pad,
                    groups: g,
                    ifmap_zero_fraction: z,
                    first,
                };
                l.validate().ok().map(|_| l)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reference_is_within_the_quantization_step_of_float(l in small_layer(), seed: u64) {
        let fmt = Formats::DEFAULT;
        let x = synthetic_ifmap(&l, seed, fmt);
        let w = synthetic_weights(&l, seed, fmt);
        let (out, counters) = reference_conv(&l, &x, &w, fmt.mac(), false).unwrap();
        prop_assume!(counters.sum_overflows == 0 && counters.product_overflows == 0);
        let float = float_conv(&l, &x, &w, fmt);
        // Each product loses less than one Q8.8 step to truncation (towards minus infinity).
        let step = 1.0 / 256.0;
        let products = (l.cg() * l.r * l.s) as f64;
        for (got, want) in out.data.iter().zip(&float) {
            let got = *got as f64 * step;
            prop_assert!(got <= want + 1e-9 && want - got < products * step, "got {} want {}", got, want);
        }
        let (relu, _) = reference_conv(&l, &x, &w, fmt.mac(), true).unwrap();
        prop_assert!(relu.data.iter().zip(&out.data).all(|(r, o)| *r == (*o).max(0)));
    }
}

/// A tensor of `dims` with values anywhere in 16 bits (about a quarter zero, some at the
/// extremes), so that products leave the window and sums leave 16 bits.
fn wild_tensor(dims: [usize; 4], seed: u64) -> Tensor {
    let mut rng = rowsim_workload::SplitMix64::new(seed);
    let mut t = Tensor::zeros(dims);
    for v in t.data.iter_mut() {
        *v = match rng.next_u64() % 8 {
            0 | 1 => 0,
            2 => i16::MIN,
            3 => i16::MAX,
            _ => rng.next_u64() as i16,
        };
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The reference every run checks against is its definition, the plain loops, output for
    /// output and count for count: with strides, padding and groups, every product shift and
    /// both roundings, products that leave the window and sums that leave 16 bits.
    #[test]
    fn reference_equals_its_plain_loops(
        l in small_layer(),
        seed: u64,
        shift in 0u32..=16,
        nearest: bool,
        relu: bool,
    ) {
        let x = wild_tensor([l.n as usize, l.c as usize, l.h as usize, l.w as usize], seed);
        let w = wild_tensor(
            [l.m as usize, l.cg() as usize, l.r as usize, l.s as usize],
            seed ^ 0x5555,
        );
        let cfg = MacConfig {
            shift,
            rounding: if nearest { Rounding::NearestEven } else { Rounding::Truncate },
            overflow: Overflow::Wrap,
        };
        let fast = reference_conv(&l, &x, &w, cfg, relu).unwrap();
        let plain = reference_conv_plain(&l, &x, &w, cfg, relu).unwrap();
        prop_assert_eq!(&fast.0, &plain.0);
        prop_assert_eq!(fast.1, plain.1);
    }
}

/// Outputs of more products than `i32` holds at the largest magnitude (73,728 products of
/// -2^15 each, -2^31.2 in all, in a row of 16 outputs; 65,537 in one output): the fast
/// reference's `i32` sums along a patch are added in `i64` in time, and a row's patches too
/// long for a tile are split into tiles of a few outputs.
#[test]
fn reference_sums_of_many_products_stay_exact() {
    let cfg = MacConfig {
        shift: 15,
        rounding: Rounding::Truncate,
        overflow: Overflow::Wrap,
    };
    // (-2^15)^2 >> 15 = 2^15: each product wraps to -2^15 (and counts as an overflow).
    for (c, h, w, r, s) in [(8192u32, 3u32, 18u32, 3u32, 3u32), (1, 1, 65537, 1, 65537)] {
        let l = ConvLayer {
            name: "wide".into(),
            n: 1,
            c,
            h,
            w,
            m: 1,
            r,
            s,
            stride_v: 1,
            stride_h: 1,
            pad: 0,
            groups: 1,
            ifmap_zero_fraction: 0.0,
            first: false,
        };
        l.validate().unwrap();
        let mut x = Tensor::zeros([1, c as usize, h as usize, w as usize]);
        x.data.fill(i16::MIN);
        let mut wt = Tensor::zeros([1, c as usize, r as usize, s as usize]);
        wt.data.fill(i16::MIN);
        let fast = reference_conv(&l, &x, &wt, cfg, false).unwrap();
        let plain = reference_conv_plain(&l, &x, &wt, cfg, false).unwrap();
        assert_eq!(fast, plain, "{c} x {r} x {s}");
        let products = (c * r * s) as i64;
        let outputs = l.f() as usize;
        assert_eq!(fast.1.product_overflows, products as u64 * outputs as u64);
        assert_eq!(fast.1.sum_overflows, outputs as u64);
        let want = ((products * -32768 + 32768).rem_euclid(65536) - 32768) as i16;
        assert_eq!(fast.0.data, vec![want; outputs]);
    }
}

/// A layer whose output row has more patch values than a tile holds (8,192 a patch, 64 and
/// 66 outputs a row): the row is summed in tiles of 32 outputs (tap by tap) and a last one of
/// 2 (output by output), equal to the plain loops on wild values, with and without stride
/// and padding.
#[test]
fn reference_splits_long_rows_into_tiles() {
    for (w, stride, pad) in [(65u32, 1u32, 0u32), (130, 2, 1)] {
        let l = ConvLayer {
            name: "long rows".into(),
            n: 1,
            c: 2048,
            h: 2,
            w,
            m: 2,
            r: 2,
            s: 2,
            stride_v: stride,
            stride_h: stride,
            pad,
            groups: 1,
            ifmap_zero_fraction: 0.0,
            first: false,
        };
        l.validate().unwrap();
        let x = wild_tensor([1, 2048, 2, w as usize], 11);
        let wt = wild_tensor([2, 2048, 2, 2], 12);
        let cfg = Formats::DEFAULT.mac();
        let fast = reference_conv(&l, &x, &wt, cfg, false).unwrap();
        let plain = reference_conv_plain(&l, &x, &wt, cfg, false).unwrap();
        assert_eq!(fast, plain, "W = {w}");
    }
}

#[test]
fn reference_refuses_saturation_and_wrong_shapes() {
    let l = layer("alexnet:conv3").unwrap();
    let mut cfg = Formats::DEFAULT.mac();
    cfg.overflow = rowsim_datapath::mac::Overflow::Saturate;
    let x = Tensor::zeros([1, 256, 13, 13]);
    let w = Tensor::zeros([384, 256, 3, 3]);
    assert!(reference_conv(&l, &x, &w, cfg, false)
        .unwrap_err()
        .contains("wrapping"));
    let bad = Tensor::zeros([1, 256, 13, 14]);
    let e = reference_conv(&l, &bad, &w, Formats::DEFAULT.mac(), false).unwrap_err();
    assert!(e.contains("[N, C, H, W] = [1, 256, 13, 13]"), "{e}");
}
