//! Runs one AlexNet layer on eyeriss-v1 with the mapper's choice and times it:
//! `cargo run --release -p rowsim-chip --example alexnet_layer -- conv3 [mapping]`
use std::time::Instant;

use rowsim_chip::{run_checked, RunOptions};
use rowsim_mapper::choose;
use rowsim_workload::{layer, synthetic_ifmap, synthetic_weights, Formats};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(|s| s.as_str()).unwrap_or("conv3");
    let hw = rowsim_config::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hw-configs/eyeriss-v1.toml"
    ))
    .unwrap();
    let l = layer(&format!("alexnet:{name}")).unwrap();
    let m = match args.get(2) {
        Some(m) => m.parse().unwrap(),
        None => choose(&l, &hw).unwrap(),
    };
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(&l, 1, fmt);
    let w = synthetic_weights(&l, 1, fmt);
    let t = Instant::now();
    let checked = run_checked(
        &hw,
        &l,
        &m,
        &x,
        &w,
        &RunOptions {
            mac: fmt.mac(),
            ..Default::default()
        },
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let run = &checked.run;
    println!("{} {m}: {} PEs, {} passes, {} core cycles ({} processing) in {secs:.2} s = {:.0} cycles/s; bit-exact: {}",
        l.name, run.counts.pes_used, run.counts.passes, run.core_cycles, run.processing_cycles, run.core_cycles as f64 / secs, checked.verified);
}
