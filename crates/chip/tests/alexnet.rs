//! AlexNet on eyeriss-v1 through the whole chip. Minutes in a debug build, so in a debug build
//! these are ignored (with the reason); `cargo test --release -p rowsim-chip --test alexnet`
//! runs them, as .ci/run does (and it fails if any is ignored there).

use rowsim_mapper::{choose, Mapping};
use rowsim_workload::{alexnet, ConvLayer};

mod common;

/// Runs a layer, checked against the reference and the mapper (see `common`).
fn run_layer(l: &ConvLayer, m: &Mapping) -> rowsim_chip::LayerRun {
    let t = std::time::Instant::now();
    let out = common::run_and_check(l, &common::hw("eyeriss-v1"), m, 7);
    eprintln!(
        "{} {m}: {} core cycles in {:.1} s",
        l.name,
        out.core_cycles,
        t.elapsed().as_secs_f64()
    );
    out
}

/// The active PEs of a checked run.
fn run(l: &ConvLayer, m: &Mapping) -> u32 {
    run_layer(l, m).counts.pes_used
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: minutes in a debug build; run with cargo test --release"
)]
fn conv3_at_batch_1_with_the_mappers_choice() {
    let l = rowsim_workload::layer("alexnet:conv3").unwrap();
    let m = choose(&l, &common::hw("eyeriss-v1")).unwrap();
    assert_eq!(run(&l, &m), 156);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: minutes in a debug build; run with cargo test --release"
)]
fn the_papers_mappings_activate_154_135_156_156_156_pes() {
    // SPEC.md's table; CONV3-5 were made for batch 4 (n = 4).
    let paper = [
        ("m=96,n=1,e=7,p=16,q=1,r=1,t=2", 1, 154),
        ("m=64,n=1,e=27,p=16,q=2,r=1,t=1", 1, 135),
        ("m=64,n=4,e=13,p=16,q=4,r=1,t=4", 4, 156),
        ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 4, 156),
        ("m=64,n=4,e=13,p=16,q=3,r=2,t=2", 4, 156),
    ];
    let hw = common::hw("eyeriss-v1");
    for (l, (m, batch, pes)) in alexnet().into_iter().zip(paper) {
        let l = l.with_batch(batch);
        let m: Mapping = m.parse().unwrap();
        let out = run_layer(&l, &m);
        assert_eq!(out.counts.pes_used, pes, "{}", l.name);
        // The passes take no more than 10% over the mapper's bound on them plus its estimate
        // of their fill and drain: nothing but the PEs' work, the NoC's beats, and each pass's
        // ramp holds them (with single-port GLB banks CONV3's psum reads and writes took turns:
        // +33%).
        let b = rowsim_mapper::cycle_bound(
            &rowsim_mapper::Problem::lowered(&l, m.dataflow),
            &m,
            &hw,
            &out.counts,
        );
        let over = out.processing_cycles as f64 / (b.passes + b.fill_drain) as f64;
        eprintln!("{}: processing {over:.3} of passes + fill/drain", l.name);
        assert!(over <= 1.10, "{}: {over:.3}", l.name);
    }
}

/// AlexNet CONV5 (2 groups, 75 M MACs) with each dataflow's cheapest mapping on its ISCA 2016
/// machine: bit-exact, with the counts of that dataflow's closed form (see `common`).
fn dataflow_on_conv5(df: rowsim_mapper::Dataflow) {
    let l = rowsim_workload::layer("alexnet:conv5").unwrap();
    let hw = common::hw(&format!("isca2016/{df}"));
    let m = rowsim_mapper::choose_for(&l, &hw, df).unwrap();
    assert_eq!(m.dataflow, df);
    let t = std::time::Instant::now();
    let out = common::run_and_check(&l, &hw, &m, 7);
    eprintln!(
        "{} {m}: {} core cycles in {:.1} s",
        l.name,
        out.core_cycles,
        t.elapsed().as_secs_f64()
    );
}

macro_rules! conv5 {
    ($($name:ident: $df:ident),*) => {$(
        #[test]
        #[cfg_attr(
            debug_assertions,
            ignore = "release only: minutes in a debug build; run with cargo test --release"
        )]
        fn $name() {
            dataflow_on_conv5(rowsim_mapper::Dataflow::$df);
        }
    )*};
}

conv5!(conv5_rs: Rs, conv5_ws: Ws, conv5_osa: Osa, conv5_osb: Osb, conv5_osc: Osc, conv5_nlr: Nlr);

/// The event-driven kernel against every component stepped at every edge on a real layer:
/// AlexNet CONV5 at batch 1 with the mapper's choice; cycles, statistics, ofmap and the VCD of a
/// traced PE and the ifmap GIN equal, byte for byte.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: minutes in a debug build; run with cargo test --release"
)]
fn conv5_event_driven_equals_every_edge() {
    let hw = common::hw("eyeriss-v1");
    let l = rowsim_workload::layer("alexnet:conv5").unwrap();
    let m = choose(&l, &hw).unwrap();
    let run = common::event_driven_equals_every_edge(
        &hw,
        &l,
        &m,
        7,
        rowsim_kernel::StepOrder::Registration,
    );
    eprintln!(
        "{} {m}: {} core cycles, event-driven == every edge",
        l.name, run.core_cycles
    );
}

/// AlexNet CONV1-5 at batch 1 on eyeriss-v1, eyeriss-v1-skip (zero skipping, coded filters) and
/// eyeriss-v1-sparse (compressed weights), each with the mapping the machine's search picks for
/// the layer's weights: the event-driven run (links taking words for their receivers, PEs
/// running ahead, components skipping the steps that would move nothing, pops waking only
/// senders that wait for credits) and the run stepped at every edge give the same core and
/// link cycles, statistics, ofmap and VCD of a traced PE and the ifmap GIN, byte for byte.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: minutes in a debug build; run with cargo test --release"
)]
fn alexnet_conv1_to_5_event_driven_equals_every_edge_on_three_machines() {
    use rowsim_workload::{synthetic_ifmap, synthetic_weights, Formats};
    for machine in ["eyeriss-v1", "eyeriss-v1-skip", "eyeriss-v1-sparse"] {
        let hw = common::hw(machine);
        for l in alexnet() {
            let t = std::time::Instant::now();
            let fmt = Formats::DEFAULT;
            let (x, w) = (synthetic_ifmap(&l, 7, fmt), synthetic_weights(&l, 7, fmt));
            let mut data = rowsim_mapper::expected_data(&l, &hw).unwrap();
            data.weights = Some(&w);
            let m = rowsim_mapper::enumerate_for(&l, &hw, &data, rowsim_mapper::Dataflow::Rs)
                .unwrap()[0]
                .mapping;
            let run = common::event_driven_equals_every_edge_on(
                &hw,
                &l,
                &m,
                7,
                rowsim_kernel::StepOrder::Registration,
                &x,
                &w,
            );
            eprintln!(
                "{machine} {} {m}: {} core cycles, {} link cycles, event-driven == every edge ({:.1} s)",
                l.name,
                run.core_cycles,
                run.link_cycles,
                t.elapsed().as_secs_f64()
            );
        }
    }
}
