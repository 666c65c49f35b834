//! One processing pass through the real array: every chain top's psums equal the pass's partial
//! sums computed directly from the tensors, for random layers, mappings, strips and channel
//! blocks, with and without psums coming in.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use rowsim_chip::{build_pass, ArrayPlan, PassInput};
use rowsim_config::HwConfig;
use rowsim_datapath::mac::{self, MacCounters};
use rowsim_mapper::{enumerate, ExpectedData, Problem};
use rowsim_workload::{synthetic_ifmap, synthetic_weights, ConvLayer, Formats, SplitMix64, Tensor};

fn hw(name: &str) -> HwConfig {
    rowsim_config::load(format!(
        "{}/../../hw-configs/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The padded input value (0 in the padding).
fn padded(x: &Tensor, l: &ConvLayer, img: u32, ch: u32, yp: u32, xp: u32) -> i16 {
    if yp < l.pad || xp < l.pad || yp - l.pad >= l.h || xp - l.pad >= l.w {
        0
    } else {
        x.get([
            img as usize,
            ch as usize,
            (yp - l.pad) as usize,
            (xp - l.pad) as usize,
        ])
    }
}

struct Picked {
    eb: u32,
    cb: u32,
    fb: u32,
    continuing: bool,
}

fn run_pass(
    l: &ConvLayer,
    hw: &HwConfig,
    pick_map: prop::sample::Index,
    pk: &Picked,
    seed: u64,
) -> Result<(), TestCaseError> {
    let data = ExpectedData {
        layer: l,
        rlc: rowsim_datapath::rlc::RlcFormat::EYERISS,
        ifmap_coded: true,
        ofmap_coded: true,
        ifmap_zero_fraction: 0.5,
        ofmap_zero_fraction: 0.5,
        weights: None,
    };
    let Ok(all) = enumerate(l, hw, &data) else {
        return Ok(());
    };
    let m = all[pick_map.index(all.len())].mapping;
    let pb = Problem::of(l);
    let Ok(plan) = ArrayPlan::new(&pb, &m, hw) else {
        return Ok(());
    };
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(l, seed, fmt);
    let w = synthetic_weights(l, seed, fmt);
    let eb = pk.eb % pb.e.div_ceil(m.e);
    let cb = pk.cb % (pb.c / (m.q * m.r));
    let fb = pk.fb % (m.m / (m.p * m.t));
    let e_cur = pb.strip_rows(m.e, eb);
    // Group 0, image block 0, filter group 0.
    let filt = |tt: u32, f: u32| fb * m.p * m.t + tt * m.p + f;
    let chan = |rr: u32, c: u32| cb * m.q * m.r + rr * m.q + c;
    let mut input = PassInput {
        e_cur,
        mac: fmt.mac(),
        zero_gating: true,
        zero_skipping: false,
        compressed: false,
        ..Default::default()
    };
    for tt in 0..m.t {
        for rr in 0..m.r {
            for i in 0..pb.r {
                let mut v = vec![];
                for s in 0..pb.s {
                    for c in 0..m.q {
                        for f in 0..m.p {
                            v.push(w.get([
                                filt(tt, f) as usize,
                                chan(rr, c) as usize,
                                i as usize,
                                s as usize,
                            ]));
                        }
                    }
                }
                input.filters.insert((tt, rr, i), v);
            }
        }
    }
    let band = (e_cur - 1) * pb.u + pb.r;
    for img in 0..m.n {
        let mut per_rr = vec![];
        for rr in 0..m.r {
            let mut rows = vec![];
            for y in 0..band {
                let mut row = vec![];
                for col in 0..pb.w_used() {
                    for c in 0..m.q {
                        row.push(padded(&x, l, img, chan(rr, c), eb * m.e * pb.u + y, col));
                    }
                }
                rows.push(row);
            }
            per_rr.push(rows);
        }
        input.ifmaps.push(per_rr);
    }
    let mut rng = SplitMix64::new(seed ^ 77);
    let len = (m.n * pb.f * m.p) as usize;
    if pk.continuing {
        let mut pin = BTreeMap::new();
        for tt in 0..m.t {
            for j in 0..e_cur {
                pin.insert(
                    (tt, j),
                    (0..len)
                        .map(|_| rng.range(-3000, 3000) as i16)
                        .collect::<Vec<_>>(),
                );
            }
        }
        input.psum_in = Some(pin);
    }
    RAN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut pass = build_pass(&plan, &pb, hw, &input).unwrap();
    let out = pass.run(&plan).unwrap();
    let mut scratch = MacCounters::default();
    for tt in 0..m.t {
        for j in 0..e_cur {
            let mut want = vec![];
            for img in 0..m.n {
                for xo in 0..pb.f {
                    for f in 0..m.p {
                        let k = ((img * pb.f + xo) * m.p + f) as usize;
                        let mut sum = input.psum_in.as_ref().map_or(0, |p| p[&(tt, j)][k]) as i64;
                        for rr in 0..m.r {
                            for c in 0..m.q {
                                for i in 0..pb.r {
                                    for s in 0..pb.s {
                                        let a = padded(
                                            &x,
                                            l,
                                            img,
                                            chan(rr, c),
                                            (eb * m.e + j) * pb.u + i,
                                            xo * pb.uh + s,
                                        );
                                        let wt = w.get([
                                            filt(tt, f) as usize,
                                            chan(rr, c) as usize,
                                            i as usize,
                                            s as usize,
                                        ]);
                                        sum += mac::product(wt, a, fmt.mac(), &mut scratch) as i64;
                                    }
                                }
                            }
                        }
                        want.push(((sum + 32768).rem_euclid(65536) - 32768) as i16);
                    }
                }
            }
            prop_assert_eq!(
                out.get(&(tt, j)),
                Some(&want),
                "chain ({}, {}) of {} (strip {}, block {})",
                tt,
                j,
                m,
                eb,
                cb
            );
        }
    }
    prop_assert_eq!(out.len() as u32, m.t * e_cur);
    Ok(())
}

static RAN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn small_layer() -> impl Strategy<Value = ConvLayer> {
    (
        1u32..=2,
        1u32..=4,
        4u32..=12,
        1u32..=8,
        1u32..=3,
        1u32..=3,
        1u32..=2,
        1u32..=2,
        0u32..=1,
        0.0f64..0.7,
    )
        .prop_filter_map("valid", |(n, c, h, mm, r, s, u, uh, pad, z)| {
            let l = ConvLayer {
                name: "t".into(),
                n,
                c,
                h,
                w: h + 1,
                m: mm,
                r,
                s,
                stride_v: u,
                stride_h: uh,
                pad,
                groups: 1,
                ifmap_zero_fraction: z,
                first: false,
            };
            l.validate().ok().map(|_| l)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn a_pass_through_the_array_computes_its_partial_sums(
        l in small_layer(), pick in any::<prop::sample::Index>(), eb in 0u32..8, cb in 0u32..8, fb in 0u32..8,
        continuing: bool, tiny: bool, seed: u64,
    ) {
        let hw = hw(if tiny { "tiny" } else { "eyeriss-v1" });
        run_pass(&l, &hw, pick, &Picked { eb, cb, fb, continuing }, seed)?;
    }
}

#[test]
fn most_generated_passes_really_run() {
    // The property above returns early when a layer has no mapping on the machine; make sure
    // that is the exception (run after it in the same binary, or on its own: it reruns a few).
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strat = (small_layer(), any::<prop::sample::Index>(), any::<u64>());
    let before = RAN.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..20 {
        let (l, pick, seed) = strat.new_tree(&mut runner).unwrap().current();
        run_pass(
            &l,
            &hw("eyeriss-v1"),
            pick,
            &Picked {
                eb: 1,
                cb: 1,
                fb: 0,
                continuing: true,
            },
            seed,
        )
        .unwrap();
    }
    let ran = RAN.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(ran >= 15, "only {ran} of 20 generated passes ran");
}
