//! AlexNet on eyeriss-v1 through the whole chip. Minutes in a debug build, so these run only
//! in release builds (`cargo test --release -p rowsim-chip --test alexnet`, which .ci/run does);
//! in debug builds they say so and pass.

use rowsim_chip::{run_layer, RunOptions};
use rowsim_config::HwConfig;
use rowsim_datapath::rlc::RlcFormat;
use rowsim_mapper::{choose, predict, DataTotals, ExactData, Mapping, Problem};
use rowsim_workload::{
    alexnet, reference_conv, synthetic_ifmap, synthetic_weights, ConvLayer, Formats,
};

fn hw() -> HwConfig {
    rowsim_config::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hw-configs/eyeriss-v1.toml"
    ))
    .unwrap()
}

fn release_only() -> bool {
    if cfg!(debug_assertions) {
        eprintln!(
            "skipped in a debug build: run `cargo test --release -p rowsim-chip --test alexnet`"
        );
        return false;
    }
    true
}

/// Runs a layer; checks the ofmap against the reference and the counts against the mapper.
/// Returns the active PEs.
fn run(l: &ConvLayer, m: &Mapping) -> u32 {
    let hw = hw();
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(l, 7, fmt);
    let w = synthetic_weights(l, 7, fmt);
    let t = std::time::Instant::now();
    let out = run_layer(
        &hw,
        l,
        m,
        &x,
        &w,
        &RunOptions {
            mac: fmt.mac(),
            ..Default::default()
        },
    )
    .unwrap();
    eprintln!(
        "{} {m}: {} core cycles in {:.1} s",
        l.name,
        out.core_cycles,
        t.elapsed().as_secs_f64()
    );
    let (want, _) = reference_conv(l, &x, &w, fmt.mac(), true).unwrap();
    assert!(
        out.ofmap == want,
        "{}: the ofmap differs from the reference",
        l.name
    );
    let pb = Problem::of(l);
    let data = ExactData {
        layer: l,
        ifmap: &x,
        ofmap: &out.ofmap,
        rlc: RlcFormat::EYERISS,
        ifmap_coded: !l.first,
    };
    assert_eq!(
        out.counts,
        predict(&pb, m, out.counts.pes_used, &DataTotals::of(&pb, &data)),
        "{}",
        l.name
    );
    out.counts.pes_used
}

#[test]
fn conv3_at_batch_1_with_the_mappers_choice() {
    if !release_only() {
        return;
    }
    let l = rowsim_workload::layer("alexnet:conv3").unwrap();
    let m = choose(&l, &hw()).unwrap();
    assert_eq!(run(&l, &m), 156);
}

#[test]
fn the_papers_mappings_activate_154_135_156_156_156_pes() {
    if !release_only() {
        return;
    }
    // SPEC.md's table; CONV3-5 were made for batch 4 (n = 4).
    let paper = [
        ("m=96,n=1,e=7,p=16,q=1,r=1,t=2", 1, 154),
        ("m=64,n=1,e=27,p=16,q=2,r=1,t=1", 1, 135),
        ("m=64,n=4,e=13,p=16,q=4,r=1,t=4", 4, 156),
        ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 4, 156),
        ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 4, 156),
    ];
    for (l, (m, batch, pes)) in alexnet().into_iter().zip(paper) {
        let l = l.with_batch(batch);
        assert_eq!(run(&l, &m.parse().unwrap()), pes, "{}", l.name);
    }
}
