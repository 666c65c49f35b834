//! The dataflows of the ISCA 2016 comparison, as restrictions of one loop nest on one machine.
//!
//! # One machine, six dataflows
//! Every dataflow runs on the same PEs, NoC, GLB and DRAM; what differs is what each PE keeps
//! in its register file (RF) and what the array shares, which is what a dataflow *is*. The PE
//! runs one primitive (see `rowsim_pe`): it keeps `p x q` filter rows of `S'` weights, slides a
//! `q x S'` window along an ifmap row, and makes `p` psums per output position, which it passes
//! on (up a chain of PEs over the local links, or to the GLB).
//!
//! A layer is *lowered* before it is mapped: the `R x S` filter can be split into `R` rows of
//! `1 x S` (**rows folded**) and further into `R x S` taps of `1 x 1` (**taps folded**). Each
//! piece becomes a *virtual channel*: virtual channel `cv = (c*KR + ir)*KS + js` (with
//! `KR = R`, `KS = S` when folded, else 1) of real channel `c` covers filter row `ir` (or all
//! rows) and tap `js` (or all taps). Its ifmap is the real ifmap seen from that offset: virtual
//! row `y` (padded) is real row `y*U + ir` when rows are folded (the vertical stride moves into
//! the lowering, so the virtual stride is 1), and virtual column `x` is real column `x*U + js`
//! when taps are folded. Summing over virtual channels is summing over `(c, i, j)`, so the
//! lowered layer computes the same outputs bit for bit (wrapping accumulation is associative).
//! Nothing is copied: DRAM and the GLB hold the real ifmap, and the GLB reader addresses it
//! through the lowering.
//!
//! The RS mapping letters (see the crate docs) then apply to the lowered layer, and each
//! dataflow fixes some of them:
//!
//! | dataflow | lowering | letters fixed | what the RF holds | reuse in the array |
//! |---|---|---|---|---|
//! | RS  | none | none | `p x q` filter rows, a `q x S` ifmap window, `p` psums | filter rows across a set, ifmap rows along diagonals, psums up the set |
//! | WS  | taps | `q = 1` | `p` weights of one tap (stationary for the pass) | ifmaps multicast to the `t` filter groups, psums accumulated up chains of taps |
//! | OSA | rows | `r = 1, p = 1, t = 1` | one output channel's psum per position, accumulated over `q` rows of `S` taps | one output channel: PEs on different output rows |
//! | OSB | rows | `r = 1` | `p` psums per position | several output channels and rows |
//! | OSC | rows | `r = 1, e = 1` | `p` psums per position | several output channels, one output row |
//! | NLR | taps | `q = 1, p = 1, n = 1` | one weight, one ifmap value, one psum | psums accumulated up chains of taps |
//!
//! A virtual channel block (`q*r` virtual channels) must cover whole real channels or a whole
//! fraction of one (`q*r` a multiple or a divisor of `KR*KS`). When a block covers a fraction,
//! the channel's band is loaded from DRAM once per block: the mapper prices that, and picks
//! larger blocks when they are cheaper.
//!
//! # Where this differs from the paper's dataflows
//! The PE has one primitive, a row's worth of output positions: a weight it holds is used for
//! every position of the ifmap row it convolves (`F` MACs), in every dataflow. So OS and NLR
//! here keep weights in the RF for one row, where the paper's OS and NLR fetch a weight for
//! each MAC; and an OSC "single output pixel" is a single output row. Psums of OS dataflows are
//! accumulated in the RF over `q*S` MACs and then leave the PE, because a psum spad holds one
//! position's psums (the paper's OS keeps a psum until it is complete).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::mapping::Mapping;

/// A dataflow of the ISCA 2016 comparison (see the module docs).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Dataflow {
    /// Row stationary.
    #[default]
    Rs,
    /// Weight stationary.
    Ws,
    /// Output stationary, one output channel, many output pixels.
    Osa,
    /// Output stationary, many output channels and pixels.
    Osb,
    /// Output stationary, many output channels, one output row.
    Osc,
    /// No local reuse.
    Nlr,
}

impl Dataflow {
    pub const ALL: [Dataflow; 6] = [
        Dataflow::Rs,
        Dataflow::Ws,
        Dataflow::Osa,
        Dataflow::Osb,
        Dataflow::Osc,
        Dataflow::Nlr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dataflow::Rs => "rs",
            Dataflow::Ws => "ws",
            Dataflow::Osa => "osa",
            Dataflow::Osb => "osb",
            Dataflow::Osc => "osc",
            Dataflow::Nlr => "nlr",
        }
    }

    /// The dataflow a machine is built for (its `machine.dataflow`; RS if it names none).
    pub fn of_machine(hw: &rowsim_config::HwConfig) -> Dataflow {
        hw.machine
            .dataflow
            .as_deref()
            .and_then(|d| d.parse().ok())
            .unwrap_or_default()
    }

    pub fn is_rs(&self) -> bool {
        *self == Dataflow::Rs
    }

    /// Whether filter rows become virtual channels.
    pub fn folds_rows(self) -> bool {
        !matches!(self, Dataflow::Rs)
    }

    /// Whether filter taps become virtual channels.
    pub fn folds_taps(self) -> bool {
        matches!(self, Dataflow::Ws | Dataflow::Nlr)
    }

    /// The letters this dataflow fixes, as (letter, value) pairs; `e` fixed to 1 for OSC.
    pub fn fixed(self) -> &'static [(char, u32)] {
        match self {
            Dataflow::Rs => &[],
            Dataflow::Ws => &[('q', 1)],
            Dataflow::Osa => &[('r', 1), ('p', 1), ('t', 1)],
            Dataflow::Osb => &[('r', 1)],
            Dataflow::Osc => &[('r', 1), ('e', 1)],
            Dataflow::Nlr => &[('q', 1), ('p', 1), ('n', 1)],
        }
    }

    /// Whether `m` keeps to this dataflow's fixed letters; the error names the first that
    /// does not.
    pub fn allows(self, m: &Mapping) -> Result<(), String> {
        for &(k, v) in self.fixed() {
            let got = match k {
                'q' => m.q,
                'r' => m.r,
                'p' => m.p,
                't' => m.t,
                'e' => m.e,
                'n' => m.n,
                _ => unreachable!("letters are from the table above"),
            };
            if got != v {
                return Err(format!(
                    "{} fixes {k}={v} (the mapping has {k}={got})",
                    self.name().to_uppercase()
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Dataflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataflow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        Dataflow::ALL
            .into_iter()
            .find(|d| d.name() == t)
            .ok_or_else(|| {
                format!("unknown dataflow `{s}`; the dataflows are rs, ws, osa, osb, osc, nlr")
            })
    }
}
