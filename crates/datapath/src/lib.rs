//! rowsim's bit-accurate datapath: the fixed-point MAC ([`mac`]) and the run-length codec of
//! feature maps ([`rlc`]).

pub mod mac;
pub mod rlc;

pub use mac::{MacConfig, MacCounters, Overflow, Rounding};
