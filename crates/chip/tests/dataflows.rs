//! Every dataflow of the ISCA 2016 comparison through the same chip: bit-exact against the
//! reference convolution, and every counted access equal to that dataflow's closed form.

use rowsim_mapper::{enumerate_for, expected_data, Dataflow};
use rowsim_workload::ConvLayer;

mod common;
use common::{hw, run_and_check};

#[allow(clippy::too_many_arguments)] // a table row of layer shapes
fn layer(
    name: &str,
    n: u32,
    c: u32,
    h: u32,
    m: u32,
    r: u32,
    s: u32,
    u: u32,
    pad: u32,
    groups: u32,
    first: bool,
) -> ConvLayer {
    // The tests' square layer, one column wider and with its own filter width.
    ConvLayer {
        w: h + 1,
        s,
        ..common::layer(name, n, c, h, m, r, u, pad, groups, first)
    }
}

/// Padding, strides that leave columns unread, groups, batch, a raw first layer, a filter
/// wider than tall.
fn tiny_layers() -> Vec<ConvLayer> {
    vec![
        layer("tiny:conv", 1, 4, 7, 4, 3, 3, 1, 1, 1, false),
        layer("tiny:stride2", 2, 2, 9, 4, 3, 2, 2, 0, 1, true),
        layer("tiny:groups", 2, 4, 6, 4, 2, 3, 1, 1, 2, false),
    ]
}

#[test]
fn every_dataflow_is_bit_exact_on_the_tiny_config_with_its_cheapest_mappings() {
    let hw = hw("tiny");
    for l in tiny_layers() {
        for df in Dataflow::ALL {
            let all = enumerate_for(&l, &hw, &expected_data(&l, &hw).unwrap(), df)
                .unwrap_or_else(|e| panic!("{}: {df}: {e}", l.name));
            // The cheapest, the dearest and a spread between.
            let step = (all.len() / 6).max(1);
            for r in all.iter().step_by(step).chain(all.last()) {
                assert_eq!(r.mapping.dataflow, df);
                df.allows(&r.mapping).unwrap();
                run_and_check(&l, &hw, &r.mapping, 7);
            }
        }
    }
}
