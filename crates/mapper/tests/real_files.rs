//! The workload files SCALE-Sim and Timeloop users have, imported and mapped: every SCALE-Sim
//! topology of scale-sim-v3's `topologies/` and every Timeloop problem of
//! timeloop-accelergy-exercises' `layer_shapes/{alexnet,resnet18,vgg16,mobilenet_v3}`, as
//! committed under `tests/data/real/` (see the README there for where they came from and their
//! licences). At least 95% of the files import; every layer they hold either maps onto
//! eyeriss-v1 or is refused naming a limit of the chip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rowsim_mapper::{first_legal, Dataflow, Split};
use rowsim_workload::{scalesim_csv, timeloop_yaml, ConvLayer};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext)
            && p.file_name().is_some_and(|n| n != "problem_base.yaml")
        {
            out.push(p);
        }
    }
}

/// An error names a limit of the chip when it says which config field (or spad, or array) it
/// exceeds.
fn names_a_limit(e: &str) -> bool {
    [
        "(hw-config `limits.",
        "(spad.",
        "(array.",
        "the array has",
        "spad has",
    ]
    .iter()
    .any(|k| e.contains(k))
}

#[test]
fn real_scalesim_and_timeloop_files_import_and_map_or_name_a_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/real");
    let hw = rowsim_config::load(root.join("../../../hw-configs/eyeriss-v1.toml")).unwrap();
    let (mut csvs, mut yamls) = (Vec::new(), Vec::new());
    files(&root.join("scalesim"), "csv", &mut csvs);
    files(&root.join("timeloop"), "yaml", &mut yamls);
    assert_eq!((csvs.len(), yamls.len()), (131, 109));
    let mut layers: Vec<ConvLayer> = Vec::new();
    let mut failed = Vec::new();
    for f in &csvs {
        match scalesim_csv(f) {
            Ok(ls) => layers.extend(ls),
            Err(e) => failed.push(e.to_string()),
        }
    }
    for f in &yamls {
        match timeloop_yaml(f) {
            Ok(l) => layers.push(l),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let total = csvs.len() + yamls.len();
    eprintln!(
        "{} of {total} files import; not: {failed:#?}",
        total - failed.len()
    );
    assert!(
        (total - failed.len()) * 100 >= total * 95,
        "{} of {total} files fail to import: {failed:#?}",
        failed.len()
    );
    // Every distinct shape maps, or is refused naming a limit.
    let mut shapes = BTreeSet::new();
    let (mut mapped, mut refused, mut in_parts, mut fc, mut fc_mapped) = (0, 0, 0, 0, 0);
    for l in &layers {
        let key = format!(
            "{} {} {} {} {} {} {} {} {} {}",
            l.n, l.c, l.h, l.w, l.m, l.r, l.s, l.stride_v, l.stride_h, l.groups
        );
        if !shapes.insert(key) {
            continue;
        }
        // Whether it runs at all, in parts where it is beyond a limit (an FC layer, SCALE-Sim's
        // encoding of one: a filter as large as its input): the first legal mapping of every
        // part, or the refusal the full search gives (pricing every candidate of a
        // 4-million-row GEMM is the mapper's slow case).
        let r = Split::of(l, &hw).and_then(|s| {
            s.parts
                .iter()
                .try_for_each(|p| first_legal(&p.layer, &hw, Dataflow::Rs).map(|_| ()))
                .map(|_| s.is_split())
        });
        if l.is_fc() {
            fc += 1;
        }
        match r {
            Ok(split) => {
                mapped += 1;
                if split {
                    in_parts += 1;
                }
                if l.is_fc() {
                    fc_mapped += 1;
                }
            }
            Err(e) => {
                let e = e.to_string();
                assert!(
                    names_a_limit(&e),
                    "{}: refused without naming a limit: {e}",
                    l.name
                );
                refused += 1;
            }
        }
    }
    eprintln!(
        "{} shapes: {mapped} map ({in_parts} of them in parts), {refused} refused naming a limit; {fc} FC layers, {fc_mapped} of them map",
        shapes.len()
    );
    assert!(mapped > 100, "{mapped}");
    // SCALE-Sim encodes FC layers as filters as large as their input: recognised, and run.
    assert!(
        fc >= 20 && fc_mapped == fc,
        "{fc_mapped} of {fc} FC layers map"
    );
}
