//! Helpers for rowsim's end-to-end tests: reading VCDs back through an independent reader
//! (`wellen`) and comparing traces signal by signal.

pub mod waves;

use std::path::Path;

use rowsim_kernel::demo::{clock_crossing_pipeline, PipelineSpec};
use rowsim_kernel::TraceConfig;

/// Runs the kernel's clock-crossing pipeline over 8 words with every signal traced to `path`
/// (VCD, or FST for `*.fst`): the trace the golden, FST and GTKWave tests share.
pub fn trace_clock_crossing(path: &Path) {
    let mut p = clock_crossing_pipeline(PipelineSpec {
        words: 8,
        ..Default::default()
    })
    .expect("the demo pipeline builds");
    p.sched
        .trace_to(&TraceConfig {
            vcd: path.to_path_buf(),
            ..Default::default()
        })
        .expect("the trace opens");
    p.sched.run().expect("the pipeline runs");
    p.sched.finish_trace().expect("the trace closes");
}
