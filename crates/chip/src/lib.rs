//! rowsim's chip: the elaboration of a hw-config and a mapping onto the PE array, the NoC, the
//! GLB and the DRAM controller.
//!
//! So far: [`plan`], where each PE of a mapping sits, how psums chain up the array, and the IDs
//! every GIN is configured with (what the scan chain carries). Running whole layers through the
//! components (issue 6) builds on it.

pub mod plan;

pub use plan::{ArrayPlan, IfmapScheme, LogicalPe, PhysPe, PlanError};
