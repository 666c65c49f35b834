//! rowsim's chip: the elaboration of a hw-config and a mapping onto the PE array, the NoC, the
//! GLB and the DRAM controller.
//!
//! - [`plan`]: where each PE of a mapping sits, how psums chain up the array, and the IDs every
//!   GIN is configured with;
//! - [`mod@array`]: the PEs, GINs, local links and GON wired for a plan, and one processing pass
//!   through them;
//! - [`controller`]: the chip's top-level controller, a component on the core clock that walks
//!   the mapper's loop nest and overlaps loads, passes and readouts through the buffers;
//! - [`layer`]: a whole layer through DRAM, the GLB, the NoC and the PEs, and what it counted;
//! - [`stats`]: the statistics `rowsim run` writes;
//! - [`stream`]: the order a pass's operands cross the GINs, shared by the controller and the
//!   pass test bench.

pub mod array;
pub mod block;
pub mod controller;
pub mod layer;
pub mod plan;
pub mod split;
pub mod stats;
pub mod stream;

pub use array::{
    build_pass, gate_strip, pass_primitive, wire_array, ArrayPass, ArrayWiring, PassError,
    PassInput,
};
pub use controller::{ControllerStatus, Slots, TopController};
pub use layer::{
    host_bytes, phases, run_checked, run_layer, CheckedRun, ChipError, LayerRun, LayerSim,
    Progress, ProgressHook, RunOptions,
};
pub use plan::{ArrayPlan, IfmapScheme, LogicalPe, PhysPe, PlanError};
pub use rowsim_mapper::Phase;
pub use split::{run_split, SplitRun};
pub use stats::{BetweenPasses, Cycles, Host, HostKind, LayerStats, PeCycles, PeUtilization};
