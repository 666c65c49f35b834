//! Array plans: the paper's PE counts, no two logical PEs on one physical PE, chains that run up
//! one column, and GIN IDs under which every tag reaches exactly the PEs that need its data
//! (checked through the real GIN's routing).

use std::collections::BTreeSet;

use proptest::prelude::*;
use rowsim_chip::{ArrayPlan, IfmapScheme, LogicalPe, PhysPe};
use rowsim_config::HwConfig;
use rowsim_kernel::{Clock, DomainId, Link};
use rowsim_mapper::{enumerate, ExpectedData, Mapping, Problem};
use rowsim_noc::{Beat, Gin, GinIds, NetSpec};
use rowsim_workload::{alexnet, ConvLayer};

fn hw(name: &str) -> HwConfig {
    rowsim_config::load(format!(
        "{}/../../hw-configs/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A GIN with these IDs and every PE of the plan wired (as the chip wires it), to ask it where
/// tags go.
fn gin(hw: &HwConfig, plan: &ArrayPlan, ids: &GinIds, col_bits: u32) -> Gin {
    let clk = Clock::new(DomainId(0), "core", 200_000_000).unwrap();
    let (rows, cols) = (hw.array.rows as usize, hw.array.cols as usize);
    let used: BTreeSet<PhysPe> = plan.pes.values().copied().collect();
    let outs = (0..rows)
        .map(|b| {
            (0..cols)
                .map(|p| {
                    used.contains(&PhysPe {
                        row: b as u32,
                        col: p as u32,
                    })
                    .then(|| Link::<i16>::new("o", clk, 1, 1).unwrap().tx)
                })
                .collect()
        })
        .collect();
    let spec = NetSpec {
        name: "top.chip.noc.gin".into(),
        rows: rows as u32,
        cols: cols as u32,
        row_id_bits: hw.noc.row_id_bits,
        col_id_bits: col_bits,
        width_bits: 16,
    };
    Gin::new(
        spec,
        Link::<Beat>::new("i", clk, 1, 1).unwrap().rx,
        outs,
        ids,
    )
    .unwrap()
}

fn phys(d: &[(u16, u16)]) -> BTreeSet<PhysPe> {
    d.iter()
        .map(|&(b, p)| PhysPe {
            row: b as u32,
            col: p as u32,
        })
        .collect()
}

/// Every property of a plan, for a full-width strip (and the last, narrower one).
fn check(plan: &ArrayPlan, pb: &Problem, hw: &HwConfig) {
    let m = plan.mapping;
    // Each logical PE on its own physical PE, inside the array; the count the mapper reports.
    let places: BTreeSet<PhysPe> = plan.pes.values().copied().collect();
    assert_eq!(places.len(), plan.pes.len());
    assert_eq!(places.len() as u32, plan.placement.pes_used);
    assert!(places
        .iter()
        .all(|p| p.row < hw.array.rows && p.col < hw.array.cols));
    // Chains: from each bottom, R*r PEs up one column to a top, one row at a time.
    for (l, p) in &plan.pes {
        if plan.is_bottom(*l) {
            let (mut at, mut steps) = (*l, 1);
            while let Some(up) = plan.above(at) {
                let (a, b) = (plan.at(at).unwrap(), plan.at(up).unwrap());
                assert_eq!((b.col, b.row + 1), (a.col, a.row), "{at:?} -> {up:?}");
                at = up;
                steps += 1;
            }
            assert!(plan.is_top(at));
            assert_eq!(steps, pb.r * m.r);
            assert_eq!(p.col, plan.at(at).unwrap().col);
        }
    }
    // Filters: tag (rr, i, tt) reaches exactly the PEs of that logical row.
    let fg = gin(hw, plan, &plan.filter_ids, hw.noc.filter_gin.col_id_bits);
    for tt in 0..m.t {
        for rr in 0..m.r {
            for i in 0..pb.r {
                let (row, col) = plan.filter_tag(tt, rr, i);
                let want: BTreeSet<PhysPe> = plan
                    .pes
                    .iter()
                    .filter(|(l, _)| (l.tt, l.rr, l.i) == (tt, rr, i))
                    .map(|(_, p)| *p)
                    .collect();
                assert_eq!(
                    phys(fg.destinations(row, col).unwrap()),
                    want,
                    "filter ({tt}, {rr}, {i})"
                );
            }
        }
    }
    // Ifmaps: the tags of row y reach exactly the PEs that need it (j*U + i = y), for a full
    // strip and for a narrower last one.
    let ig = gin(hw, plan, &plan.ifmap_ids, hw.noc.ifmap_gin.col_id_bits);
    for e_cur in [m.e, (pb.e - 1) % m.e + 1] {
        for rr in 0..m.r {
            for y in 0..(e_cur - 1) * pb.u + pb.r {
                let want: BTreeSet<PhysPe> = plan
                    .pes
                    .iter()
                    .filter(|(l, _)| l.rr == rr && l.j < e_cur && l.j * pb.u + l.i == y)
                    .map(|(_, p)| *p)
                    .collect();
                let tags = plan.ifmap_tags(rr, y, e_cur);
                let mut got = BTreeSet::new();
                for (row, col) in &tags {
                    let d = phys(ig.destinations(*row, *col).unwrap());
                    assert!(
                        d.is_subset(&want) || e_cur < m.e,
                        "row {y}: a tag reaches a PE that does not need it"
                    );
                    got.extend(d.intersection(&want).copied());
                }
                assert_eq!(got, want, "ifmap rr={rr} y={y} e_cur={e_cur}");
                if plan.ifmap_scheme == IfmapScheme::Diagonal {
                    // One beat reaches the whole diagonal, in every segment and filter group.
                    assert!(tags.len() <= 1, "{tags:?}");
                }
            }
        }
    }
    // Psums: each bottom's tag reaches that bottom only.
    let pg = gin(hw, plan, &plan.psum_ids, hw.noc.psum_gin.col_id_bits);
    for (l, p) in &plan.pes {
        if plan.is_bottom(*l) {
            let (row, col) = plan.psum_tag(*p);
            assert_eq!(phys(pg.destinations(row, col).unwrap()), [*p].into());
        }
    }
}

const PAPER: [(&str, u32, IfmapScheme); 5] = [
    ("m=96,n=1,e=7,p=16,q=1,r=1,t=2", 154, IfmapScheme::Diagonal),
    ("m=64,n=1,e=27,p=16,q=2,r=1,t=1", 135, IfmapScheme::Diagonal),
    ("m=64,n=4,e=13,p=16,q=4,r=1,t=4", 156, IfmapScheme::Diagonal),
    ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 156, IfmapScheme::Diagonal),
    ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 156, IfmapScheme::Diagonal),
];

#[test]
fn the_papers_alexnet_mappings_place_154_135_156_156_156_pes() {
    let hw = hw("eyeriss-v1");
    for (l, (m, pes, scheme)) in alexnet().into_iter().zip(PAPER) {
        let l = l.with_batch(4);
        let pb = Problem::of(&l);
        let m: Mapping = m.parse().unwrap();
        let plan = ArrayPlan::new(&pb, &m, &hw).unwrap();
        assert_eq!(plan.pes.len() as u32, pes, "{}", l.name);
        assert_eq!(plan.ifmap_scheme, scheme, "{}", l.name);
        check(&plan, &pb, &hw);
    }
    // CONV2's 5 x 27 set: two segments (14 + 13 columns) stacked on rows 0-4 and 5-9.
    let pb = Problem::of(&alexnet()[1]);
    let plan = ArrayPlan::new(&pb, &PAPER[1].0.parse().unwrap(), &hw).unwrap();
    assert_eq!(
        plan.at(LogicalPe {
            tt: 0,
            rr: 0,
            i: 4,
            j: 13
        }),
        Some(PhysPe { row: 4, col: 13 })
    );
    assert_eq!(
        plan.at(LogicalPe {
            tt: 0,
            rr: 0,
            i: 0,
            j: 14
        }),
        Some(PhysPe { row: 5, col: 0 })
    );
}

fn small_layer() -> impl Strategy<Value = ConvLayer> {
    (
        1u32..=2,
        1u32..=2,
        1u32..=4,
        4u32..=20,
        1u32..=6,
        1u32..=5,
        1u32..=3,
        1u32..=2,
        0u32..=1,
    )
        .prop_filter_map("valid", |(n, g, cpg, h, mpg, r, s, u, pad)| {
            let l = ConvLayer {
                name: "t".into(),
                n,
                c: g * cpg,
                h,
                w: h,
                m: g * mpg,
                r,
                s,
                stride_v: u,
                stride_h: u,
                pad,
                groups: g,
                ifmap_zero_fraction: 0.5,
                first: false,
            };
            l.validate().ok().map(|_| l)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn every_legal_mapping_places_and_addresses_correctly(l in small_layer(), pick in any::<prop::sample::Index>(), tiny: bool) {
        let hw = hw(if tiny { "tiny" } else { "eyeriss-v1" });
        let data = ExpectedData { layer: &l, rlc: rowsim_datapath::rlc::RlcFormat::EYERISS, ifmap_coded: true, ofmap_coded: true, ifmap_zero_fraction: 0.5, ofmap_zero_fraction: 0.5 , weights: None};
        let Ok(all) = enumerate(&l, &hw, &data) else { return Ok(()) };
        let m = all[pick.index(all.len())].mapping;
        let pb = Problem::of(&l);
        match ArrayPlan::new(&pb, &m, &hw) {
            Ok(plan) => check(&plan, &pb, &hw),
            Err(e) => prop_assert!(e.to_string().contains("do not fit") || e.to_string().contains("need more"), "{}", e),
        }
    }
}
