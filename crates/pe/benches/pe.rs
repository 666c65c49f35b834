//! PE steps per second on one core. The PE runs an AlexNet CONV1-like primitive (p=16, q=1,
//! S=11, U=4, F=55: compute-bound, one MAC issued per cycle, a tenth of its values zero) and
//! a CONV3-like one (p=16, q=4, S=3, U=1, F=13); the bench keeps its FIFOs fed and drained
//! directly, so what is timed is the PE's step plus a few link operations a cycle.
//!
//! `cargo bench -p rowsim-pe`

use std::hint::black_box;
use std::time::Instant;

use rowsim_datapath::mac::MacConfig;
use rowsim_kernel::{Clock, Component, DomainId, Link, StepCtx};
use rowsim_pe::testbench::RowJob;
use rowsim_pe::{Pe, PePorts, PeSizes, Primitive};

fn bench(label: &str, prim: Primitive) {
    let clock = Clock::new(DomainId(0), "core", 200_000_000).unwrap();
    let sizes = PeSizes {
        filter_entries: 224,
        ifmap_entries: 12,
        psum_entries: 24,
        mask_bits: None,
    };
    let Link {
        tx: mut f_tx,
        rx: f_rx,
    } = Link::<i16>::new("f", clock, 1, 4).unwrap();
    let Link {
        tx: mut i_tx,
        rx: i_rx,
    } = Link::<i16>::new("i", clock, 1, 4).unwrap();
    let Link {
        tx: o_tx,
        rx: mut o_rx,
    } = Link::<i16>::new("o", clock, 1, 4).unwrap();
    let mut pe = Pe::new(
        "top.pe",
        sizes,
        PePorts {
            filter_in: f_rx,
            ifmap_in: i_rx,
            psum_in: None,
            psum_out: o_tx,
        },
    );
    pe.configure(prim).unwrap();
    let w = prim.w() as usize;
    let job = RowJob {
        prim,
        weights: (0..(prim.p * prim.q * prim.s) as i16)
            .map(|v| v * 37 - 500)
            .collect(),
        ifmaps: (0..prim.rows)
            .map(|r| {
                (0..prim.q as usize * w)
                    .map(|k| {
                        if (k + r as usize).is_multiple_of(10) {
                            0
                        } else {
                            (k * 7) as i16
                        }
                    })
                    .collect()
            })
            .collect(),
        psum_in: vec![],
    };
    let filters = job.filter_stream();
    let ifmaps = job.ifmap_stream();
    let (mut fi, mut ii, mut outs) = (0usize, 0usize, 0u64);
    let start = Instant::now();
    let mut cycle = 0u64;
    loop {
        let cx = StepCtx {
            domain: DomainId(0),
            cycle,
            time: clock.edge_time(cycle),
            ahead: false,
            parts: 0,
        };
        if fi < filters.len() && f_tx.try_send(&cx, filters[fi]).is_ok() {
            fi += 1;
        }
        if ii < ifmaps.len() && i_tx.try_send(&cx, ifmaps[ii]).is_ok() {
            ii += 1;
        }
        while let Some(v) = o_rx.try_recv(&cx) {
            black_box(v);
            outs += 1;
        }
        pe.step(&cx).unwrap();
        cycle += 1;
        if !pe.holds_work() && o_rx.in_flight() == 0 {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let c = pe.counters();
    assert_eq!(outs, (prim.f * prim.p * prim.rows) as u64);
    println!(
        "{label:<28} {:>7.1} M PE steps/s  {:>6.2} ns/step  ({} cycles, {} MACs + {} gated, {:.0}% issue rate)",
        cycle as f64 / secs / 1e6,
        secs * 1e9 / cycle as f64,
        cycle,
        c.macs,
        c.macs_gated,
        100.0 * (c.macs + c.macs_gated) as f64 / cycle as f64
    );
}

fn main() {
    let mac = MacConfig::default();
    bench(
        "conv1-like p16 q1 S11 U4",
        Primitive {
            p: 16,
            q: 1,
            s: 11,
            u: 4,
            f: 55,
            rows: 200,
            psum_in: false,
            mac,
            zero_gating: true,
            zero_skipping: false,
            compressed: false,
        },
    );
    bench(
        "conv3-like p16 q4 S3 U1",
        Primitive {
            p: 16,
            q: 4,
            s: 3,
            u: 1,
            f: 13,
            rows: 800,
            psum_in: false,
            mac,
            zero_gating: true,
            zero_skipping: false,
            compressed: false,
        },
    );
}
