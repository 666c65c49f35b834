//! rowsim's bit-accurate datapath: the fixed-point MAC ([`mac`]), the run-length codec of
//! feature maps ([`rlc`]) and the zero-mask codec of compressed filter rows ([`zmask`]).

pub mod mac;
pub mod rlc;
pub mod zmask;

pub use mac::{MacConfig, MacCounters, Overflow, Rounding};
