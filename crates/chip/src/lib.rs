//! rowsim's chip: the elaboration of a hw-config and a mapping onto the PE array, the NoC, the
//! GLB and the DRAM controller.
//!
//! So far: [`plan`], where each PE of a mapping sits, how psums chain up the array, and the IDs
//! every GIN is configured with (what the scan chain carries); and [`array`], one processing
//! pass through the real PEs, GINs, local links and GON. The GLB, DRAM and the layer's loop of
//! passes (issue 6) build on these.

pub mod array;
pub mod controller;
pub mod layer;
pub mod plan;
pub mod stats;

pub use array::{
    build_pass, gate_strip, pass_primitive, wire_array, ArrayPass, ArrayWiring, PassError,
    PassInput,
};
pub use controller::{ControllerStatus, Slots, TopController};
pub use layer::{
    phases, run_checked, run_layer, CheckedRun, ChipError, LayerRun, LayerSim, Progress,
    ProgressHook, RunOptions,
};
pub use plan::{ArrayPlan, IfmapScheme, LogicalPe, PhysPe, PlanError};
pub use rowsim_mapper::Phase;
pub use stats::{BetweenPasses, Cycles, LayerStats, PeCycles, PeUtilization};
