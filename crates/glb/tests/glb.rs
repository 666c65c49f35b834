//! Bank allocation, addressing, the port model and the counters.

use rowsim_config::{GlbPorts, HwConfig};
use rowsim_glb::{DataType, Glb, GlbLayout, GlbPort, GlbReq, GlbResp};
use rowsim_kernel::{Activity, Component, Fault, Link, LinkRx, LinkTx, Scheduler, StepCtx};

fn hw(name: &str) -> HwConfig {
    rowsim_config::load(format!(
        "{}/../../hw-configs/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn allocation_gives_whole_banks_and_names_what_does_not_fit() {
    let hw = hw("eyeriss-v1");
    // AlexNet CONV1 on the chip's mapping: a band of 35 rows x 227 and 96 x 7 x 55 psums.
    let l = GlbLayout::allocate("alexnet:conv1", 35 * 227, 96 * 7 * 55, 32 * 121, &hw).unwrap();
    assert_eq!((l.ifmap_banks, l.psum_banks, l.lanes), (4, 19, 4));
    assert_eq!(l.locate(DataType::Ifmap, 0).unwrap(), (0, 0, 0));
    assert_eq!(l.locate(DataType::Ifmap, 2049).unwrap(), (1, 0, 1));
    assert_eq!(l.locate(DataType::Psum, 5).unwrap(), (4, 1, 1));
    assert_eq!(l.locate(DataType::Filter, 4095).unwrap(), (26, 511, 3));
    let e = l.locate(DataType::Ifmap, 4 * 2048).unwrap_err().to_string();
    assert_eq!(
        e,
        "glb: ifmap word 8192 is outside the ifmap region (4 banks of 2048 words)"
    );
    let e = GlbLayout::allocate("big", 20 * 2048, 6 * 2048, 0, &hw)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "layer `big`: ifmaps need 20 banks (40960 words) and psums 6 banks (12288 words); the GLB has 25 shared banks of 2048 words");
    let e = GlbLayout::allocate("f", 1, 1, 3 * 2048, &hw)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("filters need 3 banks (6144 words); the GLB has 2 filter banks"),
        "{e}"
    );
}

/// Issues a list of requests, one a cycle when possible, and records responses with cycles.
struct Requester {
    name: String,
    req: LinkTx<GlbReq>,
    resp: LinkRx<GlbResp>,
    todo: Vec<GlbReq>,
    next: usize,
    got: Vec<(u64, GlbResp)>,
}

impl Component for Requester {
    fn name(&self) -> &str {
        &self.name
    }
    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        let mut moved = false;
        if let Some(r) = self.resp.try_recv(cx) {
            self.got.push((cx.cycle, r));
            moved = true;
        }
        if let Some(&r) = self.todo.get(self.next) {
            if self.req.try_send(cx, r).is_ok() {
                self.next += 1;
                moved = true;
            }
        }
        Ok(Activity::from_moved(moved))
    }
    fn holds_work(&self) -> bool {
        self.next < self.todo.len() || self.resp.in_flight() > 0 || self.got.len() < self.todo.len()
    }
}

type Rig = (
    Scheduler,
    Vec<rowsim_kernel::ComponentId>,
    rowsim_kernel::ComponentId,
);

fn rig(layout: GlbLayout, ports_per_bank: u32, lists: Vec<Vec<GlbReq>>) -> Rig {
    rig_with(layout, ports_per_bank, GlbPorts::Shared, lists)
}

fn rig_with(
    layout: GlbLayout,
    ports_per_bank: u32,
    kind: GlbPorts,
    lists: Vec<Vec<GlbReq>>,
) -> Rig {
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let mut ports = vec![];
    let mut reqs = vec![];
    for (i, todo) in lists.into_iter().enumerate() {
        let q = Link::<GlbReq>::new("req", clk, 1, 2).unwrap();
        let a = Link::<GlbResp>::new("resp", clk, 1, 2).unwrap();
        ports.push(GlbPort {
            req: q.rx,
            resp: a.tx,
        });
        reqs.push(s.add(
            clk,
            Requester {
                name: format!("top.req{i}"),
                req: q.tx,
                resp: a.rx,
                todo,
                next: 0,
                got: vec![],
            },
        ));
    }
    let glb = s.add(
        clk,
        Glb::new("top.chip.glb", layout, ports_per_bank, ports).with_port_kind(kind),
    );
    s.set_watchdog(100);
    (s, reqs, glb)
}

fn w(bank: u32, entry: u32, dtype: DataType, data: u64, mask: u8) -> GlbReq {
    GlbReq {
        bank,
        entry,
        dtype,
        write: Some(data),
        lane_mask: mask,
        tag: entry,
    }
}
fn r(bank: u32, entry: u32, dtype: DataType) -> GlbReq {
    GlbReq {
        bank,
        entry,
        dtype,
        write: None,
        lane_mask: 0xF,
        tag: 1000 + entry,
    }
}

#[test]
fn one_access_per_bank_per_cycle_and_data_comes_back() {
    let layout = GlbLayout::allocate("t", 4096, 2048, 100, &hw("eyeriss-v1")).unwrap();
    // Requester 0 and 1 both hit bank 0 at once; requester 2 hits bank 2 (psum).
    let lists = vec![
        vec![
            w(0, 5, DataType::Ifmap, 0x1111_2222_3333_4444, 0xF),
            r(0, 5, DataType::Ifmap),
        ],
        vec![w(0, 6, DataType::Ifmap, 0xAAAA_BBBB_CCCC_DDDD, 0x3)],
        vec![w(2, 0, DataType::Psum, 7, 0x1)],
    ];
    let (mut s, reqs, glb) = rig(layout, 1, lists);
    s.run().unwrap();
    let got = |i: usize| s.component::<Requester>(reqs[i]).unwrap().got.clone();
    // Requests sent at cycle 0 reach the GLB at cycle 1. Bank 0 serves one of the two then and
    // the other at cycle 2; bank 2 is free: cycle 1. Responses arrive a cycle after service.
    let (g0, g1, g2) = (got(0), got(1), got(2));
    assert_eq!(g2[0].0, 2);
    let mut bank0 = vec![g0[0].0, g1[0].0];
    bank0.sort();
    assert_eq!(bank0, vec![2, 3]);
    // The read of entry 5 returns what was written; the masked write kept lanes 2 and 3 at 0.
    assert_eq!(g0[1].1.data, 0x1111_2222_3333_4444);
    assert_eq!(
        s.component::<Glb>(glb).unwrap().peek(0, 6),
        Some(0x0000_0000_CCCC_DDDD)
    );
    let c = s.component::<Glb>(glb).unwrap().counters();
    assert_eq!(c.writes[DataType::Ifmap as usize], 4 + 2);
    assert_eq!(c.reads[DataType::Ifmap as usize], 4);
    assert_eq!(c.writes[DataType::Psum as usize], 1);
    assert!(c.conflict_cycles >= 1);

    // With two ports per bank both bank-0 requests are served at cycle 1.
    let lists = vec![
        vec![w(0, 5, DataType::Ifmap, 1, 0xF)],
        vec![w(0, 6, DataType::Ifmap, 2, 0xF)],
    ];
    let (mut s, reqs, _) = rig(layout, 2, lists);
    s.run().unwrap();
    assert_eq!(s.component::<Requester>(reqs[0]).unwrap().got[0].0, 2);
    assert_eq!(s.component::<Requester>(reqs[1]).unwrap().got[0].0, 2);
}

/// Split ports (a two-port SRAM): one read and one write of the same bank in one cycle; a
/// second write waits. Shared, the three take turns.
#[test]
fn split_ports_serve_a_read_and_a_write_of_one_bank_at_once() {
    let layout = GlbLayout::allocate("t", 4096, 2048, 100, &hw("eyeriss-v1")).unwrap();
    let lists = || {
        vec![
            vec![r(0, 5, DataType::Ifmap)],
            vec![w(0, 6, DataType::Ifmap, 1, 0xF)],
            vec![w(0, 7, DataType::Ifmap, 2, 0xF)],
        ]
    };
    let served = |kind| {
        let (mut s, reqs, glb) = rig_with(layout, 1, kind, lists());
        s.run().unwrap();
        let mut at: Vec<u64> = reqs
            .iter()
            .map(|&id| s.component::<Requester>(id).unwrap().got[0].0)
            .collect();
        at.sort();
        let conflicts = s.component::<Glb>(glb).unwrap().counters().conflict_cycles;
        (at, conflicts)
    };
    // Requests reach the GLB at cycle 1; responses arrive a cycle after service.
    assert_eq!(served(GlbPorts::Shared), (vec![2, 3, 4], 2));
    assert_eq!(served(GlbPorts::Split), (vec![2, 2, 3], 1));
}

#[test]
fn bad_addresses_and_types_name_the_block_and_value() {
    let layout = GlbLayout::allocate("t", 4096, 2048, 100, &hw("eyeriss-v1")).unwrap();
    for (req, want) in [
        (
            r(1, 512, DataType::Ifmap),
            "top.chip.glb: address 512 outside bank 1 (512 entries)",
        ),
        (
            r(40, 0, DataType::Ifmap),
            "top.chip.glb: bank 40 does not exist (the GLB has 27)",
        ),
        (
            r(2, 0, DataType::Ifmap),
            "top.chip.glb: a ifmap access to bank 2, which this layer gives to psum",
        ),
    ] {
        let (mut s, _, _) = rig(layout, 1, vec![vec![req]]);
        let e = s.run().unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}
