//! Golden trace of a diagonal multicast on the ifmap GIN (golden/noc/ifmap_multicast.vcd).

use std::path::Path;

use rowsim_kernel::{Collector, Feeder, Link, Scheduler, TraceConfig};
use rowsim_noc::{Beat, Gin, GinIds, NetSpec};
use rowsim_tests::waves::{self};

#[test]
fn ifmap_diagonal_multicast_matches_its_golden_trace() {
    let (rows, cols) = (3usize, 4usize);
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let input = Link::<Beat>::new("glb_to_gin", clk, 1, 2).unwrap();
    let mut outputs = vec![];
    let mut pes = vec![];
    for i in 0..rows {
        let mut row = vec![];
        for j in 0..cols {
            let l = Link::<i16>::new("ifmap_fifo", clk, 1, 4).unwrap();
            row.push(Some(l.tx));
            pes.push(s.add(
                clk,
                Collector::new(&format!("top.chip.pe_array.pe_r{i}_c{j}"), l.rx, 1),
            ));
        }
        outputs.push(row);
    }
    // Every X-bus answers row tag 0; PE (i, j) answers column tag i + j: ifmap row h goes to
    // the diagonal i + j = h, as a 3 x 4 RS set with U = 1 needs.
    let ids = GinIds {
        row_ids: vec![0; rows],
        col_ids: (0..rows)
            .map(|i| (0..cols).map(|j| (i + j) as u16).collect())
            .collect(),
    };
    let spec = NetSpec {
        name: "top.chip.noc.gin_ifmap".into(),
        rows: 3,
        cols: 4,
        row_id_bits: 2,
        col_id_bits: 3,
        width_bits: 16,
    };
    s.add(clk, Gin::new(spec, input.rx, outputs, &ids).unwrap());
    s.add(
        clk,
        Feeder::new(
            "top.chip.glb_ifmap_port",
            input.tx,
            (0..6).map(|h| Beat::new(0, h, &[100 + h as i16])).collect(),
            1,
        ),
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("noc_golden");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ifmap_multicast.vcd");
    s.trace_to(&TraceConfig {
        vcd: path.clone(),
        ..Default::default()
    })
    .unwrap();
    s.run().unwrap();
    s.finish_trace().unwrap();

    // By hand: the source sends row h at cycle h; the GIN sees it at h + 1 (link latency 1)
    // and delivers it to the diagonal at once; each PE takes it at h + 2.
    for i in 0..rows {
        for j in 0..cols {
            let pe = s.component::<Collector<i16>>(pes[i * cols + j]).unwrap();
            let h = (i + j) as u64;
            let want = if h < 6 {
                vec![(h + 2, 100 + h as i16)]
            } else {
                vec![]
            };
            assert_eq!(pe.items, want, "PE ({i}, {j})");
        }
    }
    let got = waves::check_golden(&path, "noc/ifmap_multicast.vcd");
    // In the trace: at cycle h + 1 (time (h + 2) * 5 ns) bus i enables PE h - i.
    for h in 0..6u64 {
        let t = (h + 2) * 5_000;
        for i in 0..3u64 {
            let mask = got.signals[&format!("top.chip.noc.gin_ifmap.x_bus_r{i}.pe_en")]
                .iter()
                .rev()
                .find(|c| c.0 <= t)
                .unwrap()
                .1;
            let want = if h >= i && h - i < 4 { 1 << (h - i) } else { 0 };
            assert_eq!(mask, want, "bus {i} at beat {h}");
        }
    }
}
