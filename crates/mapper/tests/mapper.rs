//! The mapper against the paper's AlexNet mappings, its closed form against a walk of the loop
//! nest, and its errors against the machine's limits.

use proptest::prelude::*;
use rowsim_config::HwConfig;
use rowsim_datapath::rlc::RlcFormat;
use rowsim_mapper::choose;
use rowsim_mapper::*;
use rowsim_workload::{
    alexnet, reference_conv, synthetic_ifmap, synthetic_weights, ConvLayer, Formats,
};

fn hw(name: &str) -> HwConfig {
    rowsim_config::load(format!(
        "{}/../../hw-configs/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn expected(l: &ConvLayer) -> ExpectedData<'_> {
    ExpectedData {
        layer: l,
        rlc: RlcFormat::EYERISS,
        ifmap_coded: !l.first,
        ofmap_coded: true,
        ifmap_zero_fraction: l.ifmap_zero_fraction,
        ofmap_zero_fraction: 0.5,
        weights: None,
    }
}

/// SPEC.md's mapping table.
const PAPER: [(&str, u32); 5] = [
    ("m=96,n=1,e=7,p=16,q=1,r=1,t=2", 154),
    ("m=64,n=1,e=27,p=16,q=2,r=1,t=1", 135),
    ("m=64,n=4,e=13,p=16,q=4,r=1,t=4", 156),
    ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 156),
    ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 156),
];

#[test]
fn alexnet_mappings_of_the_paper_are_legal_and_the_choice_costs_no_more() {
    let hw = hw("eyeriss-v1");
    for (l, (pm, pes)) in alexnet().into_iter().zip(PAPER) {
        let l = l.with_batch(4);
        let data = expected(&l);
        let paper = evaluate(&l, &hw, pm.parse().unwrap(), &data).unwrap();
        assert_eq!(paper.counts.pes_used, pes, "{}", l.name);
        let all = enumerate(&l, &hw, &data).unwrap();
        let best = &all[0];
        assert!(best.energy.total <= paper.energy.total, "{}", l.name);
        let rank = all.iter().position(|r| r.mapping == paper.mapping).unwrap();
        println!(
            "{}: chose {} ({} PEs, {:.3}/MAC); the paper's {} ({} PEs, {:.3}/MAC) ranks {rank}",
            l.name,
            best.mapping,
            best.counts.pes_used,
            best.energy.total / l.macs() as f64,
            paper.mapping,
            pes,
            paper.energy.total / l.macs() as f64
        );
        if l.name == "alexnet:conv1" {
            assert_eq!(
                best.mapping, paper.mapping,
                "CONV1: the chip's mapping is the cheapest"
            );
        }
    }
}

#[test]
fn ranking_is_sorted_and_reproducible() {
    let hw = hw("eyeriss-v1");
    let l = rowsim_workload::layer("alexnet:conv3").unwrap();
    let a = enumerate(&l, &hw, &expected(&l)).unwrap();
    let b = enumerate(&l, &hw, &expected(&l)).unwrap();
    assert_eq!(
        a.iter().map(|r| r.mapping).collect::<Vec<_>>(),
        b.iter().map(|r| r.mapping).collect::<Vec<_>>()
    );
    assert!(a.windows(2).all(|w| w[0].energy.total <= w[1].energy.total));
    for r in &a[..20] {
        let e = &r.energy;
        let levels =
            e.by_level.dram + e.by_level.glb + e.by_level.noc + e.by_level.spad + e.by_level.mac;
        assert!((levels - e.total).abs() < 1e-6 * e.total);
        let types = e.by_type.filter + e.by_type.ifmap + e.by_type.psum + e.by_level.mac;
        assert!((types - e.total).abs() < 1e-6 * e.total);
        assert_eq!(r.counts.macs, l.macs());
    }
}

fn layer_on(tiny: bool) -> impl Strategy<Value = ConvLayer> {
    let (rmax, smax) = if tiny { (3u32, 6u32) } else { (5, 7) };
    (
        1u32..=3,
        1u32..=2,
        1u32..=4,
        3u32..=10,
        3u32..=10,
        1u32..=6,
        1u32..=rmax,
        1u32..=smax,
        1u32..=2,
        1u32..=3,
        0u32..=2,
        any::<bool>(),
    )
        .prop_filter_map(
            "valid",
            move |(n, g, cpg, h, w, mpg, r, s, u, uh, pad, first)| {
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
                    stride_h: uh,
                    pad,
                    groups: g,
                    ifmap_zero_fraction: 0.5,
                    first,
                };
                l.validate().ok().map(|_| l)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn closed_form_equals_walking_the_loop_nest(l in layer_on(true), pick in any::<prop::sample::Index>(), seed: u64, tiny: bool, df in 0usize..6) {
        let df = Dataflow::ALL[df];
        let hw = hw(if tiny { "tiny" } else { "eyeriss-v1" });
        let fmt = Formats::DEFAULT;
        let x = synthetic_ifmap(&l, seed, fmt);
        let w = synthetic_weights(&l, seed, fmt);
        let (y, _) = reference_conv(&l, &x, &w, fmt.mac(), true).unwrap();
        let data = ExactData { layer: &l, ifmap: &x, ofmap: &y, rlc: RlcFormat::EYERISS, ifmap_coded: !l.first, ofmap_coded: true, weights: None };
        let all = match enumerate_for(&l, &hw, &data, df) {
            Ok(all) => all,
            Err(e) => { prop_assert!(!e.to_string().is_empty()); return Ok(()); }
        };
        let chosen = &all[pick.index(all.len())];
        let pb = Problem::lowered(&l, df);
        // The walk finds gated MACs slot by slot from the tensor; the closed form from the data.
        let walked = walk(&pb, &chosen.mapping, chosen.counts.pes_used, &data, Some(&x));
        prop_assert_eq!(&walked, &chosen.counts);
        prop_assert_eq!(walked.passes, chosen.mapping.passes(&pb));
    }

    #[test]
    fn no_layer_shape_panics(n in 0u32..5, c in 0u32..40, h in 0u32..40, m in 0u32..40, r in 0u32..16, s in 0u32..40, u in 0u32..6, uh in 0u32..14, pad in 0u32..4, g in 0u32..4, tiny: bool) {
        let hw = hw(if tiny { "tiny" } else { "eyeriss-v1" });
        let l = ConvLayer { name: "x".into(), n, c, h, w: h, m, r, s, stride_v: u, stride_h: uh, pad, groups: g, ifmap_zero_fraction: 0.3, first: false };
        match enumerate(&l, &hw, &expected(&l)) {
            Ok(all) => prop_assert!(!all.is_empty()),
            Err(e) => prop_assert!(e.to_string().contains(&l.name) || e.to_string().contains("layer")),
        }
    }
}

#[test]
fn layers_outside_the_machine_name_the_limit() {
    let hw = hw("eyeriss-v1");
    let base = rowsim_workload::layer("alexnet:conv3").unwrap();
    let err = |f: &dyn Fn(&mut ConvLayer)| {
        let mut l = base.clone();
        f(&mut l);
        enumerate(&l, &hw, &expected(&l)).err().unwrap().to_string()
    };
    assert_eq!(
        err(&|l| { l.r = 13; l.h = 20 }),
        "layer `alexnet:conv3`: filter height R is 13; the machine supports at most 12 (hw-config `limits.max_filter_height`)"
    );
    assert!(err(&|l| {
        l.s = 33;
        l.w = 40
    })
    .contains("filter width S is 33; the machine supports at most 32"));
    assert!(err(&|l| l.stride_v = 3).contains("vertical stride is 3; the machine supports one of [1, 2, 4] (hw-config `limits.vertical_strides`)"));
    assert!(err(&|l| l.stride_h = 13)
        .contains("horizontal stride is 13; the machine supports at most 12"));
    assert!(err(&|l| l.m = 2048).contains("filters M is 2048; the machine supports at most 1024"));
    assert!(err(&|l| l.c = 2048).contains("channels C is 2048"));
    // A layer within the tiny machine's limits that no mapping fits: even one image, one
    // channel and one output row need a band of R = 3 rows of 400 values, 1200 words, and the
    // tiny GLB's 4 shared banks hold 256 words each (with a bank for the psums).
    let tiny = self::hw("tiny");
    let mut l = base.clone();
    l.r = 3;
    l.s = 6;
    l.h = 400;
    l.w = 400;
    l.pad = 0;
    l.c = 8;
    l.m = 8;
    let e = enumerate(&l, &tiny, &expected(&l))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("layer `alexnet:conv3`: no legal RS mapping on tiny: "),
        "{e}"
    );
}

#[test]
fn pinned_mappings_are_parsed_and_checked() {
    let hw = hw("eyeriss-v1");
    let l = rowsim_workload::layer("alexnet:conv3").unwrap();
    let m: Mapping = "t=4,r=1,q=4,p=16,e=13,n=1,m=64".parse().unwrap();
    assert_eq!(m.to_string(), "m=64 n=1 e=13 p=16 q=4 r=1 t=4");
    assert!("m=64,n=1"
        .parse::<Mapping>()
        .unwrap_err()
        .contains("e is missing"));
    assert!("m=64,x=1"
        .parse::<Mapping>()
        .unwrap_err()
        .contains("unknown `x`"));
    let bad = |s: &str| {
        evaluate(&l, &hw, s.parse().unwrap(), &expected(&l))
            .err()
            .unwrap()
            .to_string()
    };
    assert!(bad("m=64,n=1,e=13,p=4,q=8,r=1,t=4")
        .contains("q*S=24 ifmap values do not fit the ifmap spad (12 entries)"));
    assert!(bad("m=64,n=1,e=13,p=16,q=8,r=1,t=4")
        .contains("p*q*S=384 weights do not fit the filter spad (224 entries)"));
    assert!(bad("m=64,n=1,e=13,p=16,q=5,r=1,t=4")
        .contains("q*r=5 must divide the channels per group C=256"));
    assert!(bad("m=64,n=1,e=13,p=16,q=4,r=1,t=5").contains("p*t=80 must divide m=64"));
    assert!(bad("m=64,n=1,e=13,p=8,q=4,r=1,t=8").contains("do not fit the 12 x 14 array"));
    assert!(bad("m=64,n=2,e=13,p=16,q=4,r=1,t=4").contains("n=2 must divide the batch N=1"));
}

#[test]
fn at_batch_1_the_choices_activate_the_papers_pe_counts() {
    let hw = hw("eyeriss-v1");
    let pes: Vec<u32> = alexnet()
        .iter()
        .map(|l| {
            let m = choose(l, &hw).unwrap();
            m.placement(&Problem::of(l), &hw).unwrap().pes_used
        })
        .collect();
    assert_eq!(pes, [154, 135, 156, 156, 156]);
}

/// The cycle bound of AlexNet CONV5 under m=128 n=1 e=13 p=16 q=4 r=2 t=2, by hand: a pass is
/// 13 positions of 16*4*3 + 2 + 16 = 210 cycles = 2730 for the PEs, against 2*2*3*48 = 576
/// filter beats, 15 columns * 2 * 4 * 15 rows = 1800 ifmap beats (one a value: 12 + 2 < 32
/// column IDs), and 2*13*13*4 = 1352 psum beats each way; 192 passes of 2730, plus the scan
/// chain's 1794 bits at 60 MHz = 5980 core cycles. DRAM: 522,240 words = 130,560 bus words =
/// 435,200 core cycles, under the passes.
#[test]
fn the_cycle_bound_of_conv5_by_hand() {
    let hw = hw("eyeriss-v1");
    let l = rowsim_workload::layer("alexnet:conv5").unwrap();
    let m: Mapping = "m=128,n=1,e=13,p=16,q=4,r=2,t=2".parse().unwrap();
    let r = evaluate(&l, &hw, m, &expected(&l)).unwrap();
    let pb = Problem::of(&l);
    let b = cycle_bound(&pb, &m, &hw, &r.counts);
    assert_eq!(b.config, 5980);
    assert_eq!(b.passes, 192 * 2730);
    assert_eq!(b.by_resource[0], 192 * 2730);
    assert_eq!(b.by_resource[1], 192 * 576);
    assert_eq!(b.by_resource[2], 192 * 1800);
    // Psums come in on the passes that continue an accumulation: 2 groups x 23 of the 24
    // channel blocks (192 channels / q*r = 8) x 4 filter blocks (128 / p*t = 32).
    assert_eq!(b.by_resource[3], 2 * 23 * 4 * 1352);
    assert_eq!(b.by_resource[4], 192 * 1352);
    assert_eq!(
        r.counts.dram_reads.total() + r.counts.dram_writes.total(),
        522_240
    );
    assert_eq!(b.dram, 435_200);
    assert_eq!(b.total, 5980 + 192 * 2730);
    assert_eq!(b.bottleneck, Resource::Pe);
    assert_eq!(r.delay, b.total);
    // Fill: the filters' 576 beats outlast the first window's 3 columns x 2 x 4 x 15 = 360
    // ifmap beats; drain: 6 PEs of chain and 16 psums.
    assert_eq!(b.fill_drain, 192 * (576 + 6 + 16));
    // Choosing for delay finds a mapping at least this fast, and for energy one at least as
    // cheap.
    let data = expected(&l);
    let mut all = enumerate(&l, &hw, &data).unwrap();
    let cheapest = all[0].energy.total;
    rank(&mut all, Objective::Delay);
    assert!(all[0].delay <= b.total);
    assert!(all.iter().all(|x| x.delay >= all[0].delay));
    assert!(all[0].energy.total >= cheapest);
    rank(&mut all, Objective::Edp);
    let edp = |x: &Ranked| x.energy.total * x.delay as f64;
    assert!(all.iter().all(|x| edp(x) >= edp(&all[0])));
}

/// `--objective chip`: the most PEs at work averaged over the passes, then the least energy.
/// At batch 4 it keeps the chip's PE counts on every AlexNet layer and its whole mapping on
/// CONV1. The mean by hand: CONV1's e=7 cuts E=55 into 8 strips, the last of 6 rows, so
/// 11*1*2*55/8 = 151.25 PEs work on average of the 154 placed; CONV2's e=27 (segments of 14
/// and 13) keeps 5*27 = 135 at work in every pass.
#[test]
fn choosing_like_the_chip_keeps_its_pe_counts() {
    let hw = hw("eyeriss-v1");
    let mut chosen = Vec::new();
    for (l, (pm, pes)) in alexnet().into_iter().zip(PAPER) {
        let l = l.with_batch(4);
        let data = expected(&l);
        let paper = evaluate(&l, &hw, pm.parse().unwrap(), &data).unwrap();
        let mut all = enumerate(&l, &hw, &data).unwrap();
        rank(&mut all, Objective::Chip);
        let best = &all[0];
        assert!(all.iter().all(|x| x.active_pes <= best.active_pes));
        let busiest: Vec<&Ranked> = all
            .iter()
            .filter(|x| x.active_pes == best.active_pes)
            .collect();
        assert!(busiest.iter().all(|x| x.energy.total >= best.energy.total));
        assert_eq!(best.active_pes, paper.active_pes, "{}", l.name);
        assert_eq!(best.counts.pes_used, pes, "{}", l.name);
        chosen.push((best.mapping, paper.mapping, paper.active_pes));
    }
    assert_eq!(chosen[0].0, chosen[0].1, "CONV1: the chip's own mapping");
    assert_eq!(chosen[0].2, 151.25);
    assert_eq!(chosen[1].2, 135.0);
    assert_eq!(chosen[2].2, 156.0);
}

/// With filters coded on the bus (`rlc.code_filters`), a mapping's DRAM filter words are its
/// passes' streams coded, whatever `m`: the search prices them once per `(p, q, r, t)` and
/// shares them across `m` (every `m` loads the same blocks of `p*t` filters). Checked against
/// each `m`'s own pass keys, streams coded one by one, on AlexNet CONV2 (in groups) with
/// pruned weights, through one cache as the search uses it.
#[test]
fn coded_filter_words_are_each_mappings_own_streams_coded() {
    let mut machine = hw("eyeriss-v1");
    machine.rlc.code_filters = true;
    let fmt = RlcFormat::EYERISS;
    // A layer of 5x5 filters and a fully connected one (1x1 as lowered), each priced through
    // one cache for several filter blocks `m` and several splits of a pass's channels into
    // chain sets (`q`, `r`): the 1x1 layer's splits of `q*r` channels share a price, the 5x5
    // layer's do not (its streams differ).
    let conv = ConvLayer {
        c: 64,
        m: 64,
        ..alexnet()[1].clone()
    };
    let fc = ConvLayer {
        c: 96,
        m: 32,
        ..rowsim_workload::alexnet_fc()[2].clone()
    };
    // Weights with zeros everywhere (each stream counted value by value), and with a few
    // (one in 64: most streams sized from their count of zeros, a stream ending in one a pair
    // more) and a block of them in filters 0-7, channels 0-1 (in the 5x5 layer's streams
    // through it, runs longer than a pair holds: counted value by value).
    let many = |k: usize, _: &ConvLayer| k % 7 < 3 || (k / 40).is_multiple_of(5);
    let few = |k: usize, l: &ConvLayer| {
        let taps = (l.r * l.s) as usize;
        let (f, c) = (k / (l.cg() as usize * taps), (k / taps) % l.cg() as usize);
        (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58 == 0 || (f < 8 && c < 2)
    };
    let mut seen = 0;
    for (l, e, zero) in [
        (&conv, 9, &many as &dyn Fn(usize, &ConvLayer) -> bool),
        (&fc, 1, &many),
        (&conv, 9, &few),
        (&fc, 1, &few),
    ] {
        let mut w = synthetic_weights(l, 9, Formats::DEFAULT);
        for (k, v) in w.data.iter_mut().enumerate() {
            if zero(k, l) {
                *v = 0;
            }
        }
        let mut data = expected(l);
        data.weights = Some(&w);
        let pb = Problem::lowered(l, Dataflow::Rs);
        let totals = DataTotals::on(&pb, &data, &machine);
        let mut cache = StripCache::default();
        for (m, q, r) in [
            (4, 2, 1),
            (8, 2, 1),
            (16, 1, 2),
            (32, 2, 1),
            (16, 4, 1),
            (8, 2, 2),
            (32, 1, 4),
        ] {
            let mapping = Mapping {
                dataflow: Dataflow::Rs,
                m,
                n: 1,
                e,
                p: 2,
                q,
                r,
                t: 2,
            };
            let got = predict_with(&pb, &mapping, 1, &totals, &mut cache)
                .dram_reads
                .filter;
            let mut words = 0;
            for g in 0..pb.groups {
                for mb in 0..pb.m / m {
                    for cb in 0..pb.c / (mapping.q * mapping.r) {
                        for fb in 0..m / (mapping.p * mapping.t) {
                            let key = FilterKey { g, mb, cb, fb };
                            let v = filter_stream(&pb, &mapping, key, &w);
                            words += rowsim_datapath::rlc::encoded_len(&fmt, &v) as u64 * 4;
                        }
                    }
                }
            }
            let (nbc, strips) = (pb.n as u64, pb.e.div_ceil(mapping.e) as u64);
            assert_eq!(got, words * nbc * strips, "{} {mapping}", l.name);
            seen += 1;
        }
    }
    assert_eq!(seen, 28);
}

/// On a machine that holds weights compressed, a mapping's counts priced through a cache
/// shared with mappings of other `m` (the compressed rows' totals, kept once for every `m`
/// that tiles the filters) equal those priced alone, for `m` that tile and one that does
/// not.
#[test]
fn compressed_rows_priced_through_a_shared_cache_are_each_mappings_own() {
    let machine = hw("eyeriss-v1-sparse");
    let l = ConvLayer {
        c: 32,
        m: 64,
        ..alexnet()[2].clone()
    };
    let mut w = synthetic_weights(&l, 3, Formats::DEFAULT);
    for (k, v) in w.data.iter_mut().enumerate() {
        if k % 5 < 2 {
            *v = 0;
        }
    }
    let mut data = expected(&l);
    data.weights = Some(&w);
    let pb = Problem::lowered(&l, Dataflow::Rs);
    let totals = DataTotals::on(&pb, &data, &machine);
    assert!(totals.compressed.is_some());
    let mut cache = StripCache::default();
    let mut seen = 0;
    for (m, p, t) in [
        (64, 2, 2),
        (8, 2, 2),
        (16, 2, 2),
        (12, 2, 2),
        (32, 4, 2),
        (16, 4, 2),
    ] {
        let mapping = Mapping {
            dataflow: Dataflow::Rs,
            m,
            n: 1,
            e: 13,
            p,
            q: 2,
            r: 2,
            t,
        };
        let shared = predict_with(&pb, &mapping, 1, &totals, &mut cache);
        let alone = predict(&pb, &mapping, 1, &totals);
        assert_eq!(shared, alone, "{mapping}");
        seen += 1;
    }
    assert_eq!(seen, 6);
}

/// Ranking moves the mappings once, into an order found on their indices: it is the stable sort
/// of the mappings themselves by the same order ([`ranking`]). Duplicates of some (equal
/// on every key) must stay in the order they came: each carries its place in a field no key
/// looks at.
#[test]
fn ranking_is_the_stable_sort_of_the_mappings() {
    let hw = hw("eyeriss-v1");
    let l = alexnet().into_iter().nth(2).unwrap();
    let data = expected(&l);
    let mut all = enumerate(&l, &hw, &data).unwrap();
    let dups: Vec<Ranked> = all.iter().step_by(97).cloned().collect();
    all.extend(dups);
    for (i, r) in all.iter_mut().enumerate() {
        r.counts.macs = i as u64;
    }
    for objective in [
        Objective::Energy,
        Objective::Delay,
        Objective::Edp,
        Objective::Chip,
    ] {
        let mut want = all.clone();
        want.sort_by(|a, b| ranking(objective, a, b));
        let mut got = all.clone();
        rank(&mut got, objective);
        let places = |v: &[Ranked]| v.iter().map(|r| r.counts.macs).collect::<Vec<_>>();
        assert_eq!(places(&got), places(&want), "{objective:?}");
    }
}
