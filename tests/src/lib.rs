//! Helpers for rowsim's end-to-end tests: reading VCDs back through an independent reader
//! (`wellen`) and comparing traces signal by signal.

pub mod waves;
