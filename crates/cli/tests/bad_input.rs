//! Bad input, as one table: each case is a command line (with the files it needs) and the text
//! its error must hold. No case may panic, hang (each has a time limit) or succeed.

use std::process::Stdio;
use std::time::Duration;

use rowsim_model::build;
use rowsim_model::proto::TensorProto;

mod common;
use common::{rowsim, scratch_in, wait_at_most, SCALESIM_HEAD};

struct Case {
    what: &'static str,
    /// Files to write first: (name, contents); `{dir}` in the arguments is their folder.
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// Standard input (commands of `rowsim step`), if any.
    stdin: &'static str,
    error: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "padding of 2^31",
            files: &[(
                "pad.toml",
                "[layer]\nname = \"p\"\nn = 1\nc = 3\nh = 8\nw = 8\nm = 4\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\npad = 2147483648\n",
            )],
            args: &["map", "--layer", "{dir}/pad.toml"],
            stdin: "",
            error: "pad 2147483648 is above the limit 16777216",
        },
        Case {
            what: "a batch of 10^9",
            files: &[],
            args: &["run", "--layer", "alexnet:conv3", "--batch", "1000000000"],
            stdin: "",
            error: "N 1000000000 is above the limit 16777216",
        },
        Case {
            what: "a batch of 10^7 (a 1.5 TB ifmap)",
            files: &[],
            args: &["run", "--layer", "alexnet:conv1", "--batch", "10000000"],
            stdin: "",
            error: "ifmap N*C*H*W = 1545870000000 values is above the limit 2147483648",
        },
        Case {
            what: "a 2^32-1 square input",
            files: &[("huge.csv", "")],
            args: &["run", "--layer", "{dir}/huge.csv:X"],
            stdin: "",
            error: "H 4294967295 is above the limit 16777216",
        },
        Case {
            // 4 x 10^8 ifmap values, within the tensor limits: refused by the mapper before
            // they are built (it took seconds and 0.8 GB when the tensors came first).
            what: "a 20000 x 20000 layer the tiny config cannot map",
            files: &[(
                "wide.toml",
                "[layer]\nname = \"wide\"\nn = 1\nc = 1\nh = 20000\nw = 20000\nm = 1\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\npad = 1\n",
            )],
            args: &["run", "--hw", "tiny", "--layer", "{dir}/wide.toml"],
            stdin: "",
            error: "no legal RS mapping on tiny",
        },
        Case {
            what: "a zero fraction above 1",
            files: &[],
            args: &["run", "--zero-fraction", "1.5"],
            stdin: "",
            error: "a fraction of zeros is from 0 to 1",
        },
        Case {
            what: "an unknown built-in machine",
            files: &[],
            args: &["map", "--hw", "eyeriss-v9", "--layer", "alexnet:conv1"],
            stdin: "",
            error: "not a built-in machine (built in: eyeriss-v1",
        },
        Case {
            what: "a Timeloop include that is missing",
            files: &[("inc.yaml", "{{include_text('nope.yaml')}}\nproblem: {}\n")],
            args: &["map", "--layer", "{dir}/inc.yaml"],
            stdin: "",
            error: "inc.yaml: line 1: include_text('nope.yaml')",
        },
        Case {
            what: "a Timeloop include of itself",
            files: &[("self.yaml", "{{include_text('self.yaml')}}\n")],
            args: &["map", "--layer", "{dir}/self.yaml"],
            stdin: "",
            error: "includes nest deeper than 4",
        },
        Case {
            what: "a tab-separated topology",
            files: &[("tabs.csv", "Layer name\tIFMAP Height\t\nC\t5\t\n")],
            args: &["map", "--net", "{dir}/tabs.csv"],
            stdin: "",
            error: "tab-separated; SCALE-Sim topologies are comma-separated",
        },
        Case {
            what: "a filter row wider than the ifmap spad",
            files: &[("wide.csv", "")],
            args: &["map", "--layer", "{dir}/wide.csv:W"],
            stdin: "",
            error: "the ifmap spad (spad.ifmap.entries) has 12",
        },
        Case {
            what: "statistics written over the layer file",
            files: &[(
                "l.toml",
                "[layer]\nname = \"l\"\nn = 1\nc = 2\nh = 6\nw = 6\nm = 2\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\n",
            )],
            args: &["run", "--hw", "tiny", "--layer", "{dir}/l.toml", "--stats-json", "{dir}/l.toml"],
            stdin: "",
            error: "would overwrite an input of this run",
        },
        Case {
            what: "a merge line claiming 10^15 points",
            files: &[(
                "huge.jsonl",
                "{\"sweep\":\"x\",\"seed\":1,\"index\":0,\"points\":1000000000000000,\"stats\":{}}\n",
            )],
            args: &["merge", "{dir}/huge.jsonl"],
            stdin: "",
            error: "huge.jsonl:1: a sweep of 1000000000000000 points; a sweep has at most 10000000",
        },
        Case {
            what: "a merge line with points as a float",
            files: &[(
                "float.jsonl",
                "{\"sweep\":\"x\",\"seed\":1,\"index\":0,\"points\":1e15,\"stats\":{}}\n",
            )],
            args: &["merge", "{dir}/float.jsonl"],
            stdin: "",
            error: "float.jsonl:1: no `points` (a whole number)",
        },
        Case {
            what: "a sweep --dry-run of 10^12 points",
            files: &[],
            args: &[
                "sweep", "--hw", "tiny", "--dry-run", "--layer", "layers/tiny-conv.toml",
                "--set", "array.cols=1,2,3,4,5,6,7,8,9,10",
                "--set", "array.rows=1,2,3,4,5,6,7,8,9,10",
                "--set", "glb.bank_entries=1,2,3,4,5,6,7,8,9,10",
                "--set", "spad.psum.entries=1,2,3,4,5,6,7,8,9,10",
                "--set", "spad.ifmap.entries=1,2,3,4,5,6,7,8,9,10",
                "--set", "spad.filter.entries=1,2,3,4,5,6,7,8,9,10",
                "--set", "dram.access_latency_cycles=1,2,3,4,5,6,7,8,9,10",
                "--set", "clocks.core_hz=1,2,3,4,5,6,7,8,9,10",
                "--set", "clocks.link_hz=1,2,3,4,5,6,7,8,9,10",
                "--set", "glb.ports_per_bank=1,2,3,4,5,6,7,8,9,10",
                "--set", "dram.request_queue_depth=1,2,3,4,5,6,7,8,9,10",
                "--set", "dram.bus_width_bits=1,2,3,4,5,6,7,8,9,10",
            ],
            stdin: "",
            error: "the sweep has more than 10000000 points",
        },
        Case {
            what: "a config whose GLB would take 8 GiB",
            files: &[("big_glb.toml", "")],
            args: &["config", "check", "{dir}/big_glb.toml"],
            stdin: "",
            error: "= 8405385216 bytes of global buffer; at most 67108864",
        },
        Case {
            what: "a Timeloop file nested 100,000 deep",
            files: &[("deep.yaml", "")],
            args: &["map", "--layer", "{dir}/deep.yaml"],
            stdin: "",
            error: "nested 100000 brackets deep, indented 2 columns; a problem file nests at most 64 levels",
        },
        Case {
            what: "a trace glob that matches nothing",
            files: &[],
            args: &[
                "run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--vcd",
                "{dir}/t.vcd", "--trace", "top.chip.pe_arry.*",
            ],
            stdin: "",
            error: "trace scope glob `top.chip.pe_arry.*`: matches no signal",
        },
        Case {
            what: "a fixed-point format with more fraction bits than the signal in step",
            files: &[],
            args: &["step", "--hw", "tiny", "--layer", "layers/tiny-conv.toml"],
            stdin: "print/q99 top.chip.pe_array.pe_r0_c0.psum_out_credits\nquit\n",
            error: "`/q99`: top.chip.pe_array.pe_r0_c0.psum_out_credits has 8 bits, so at most 8 fraction bits",
        },
        Case {
            what: "a watchdog of 0 cycles",
            files: &[],
            args: &["run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--watchdog", "0"],
            stdin: "",
            error: "the watchdog counts the cycles in which nothing moved before it stops a run; it needs at least 1",
        },
        Case {
            what: "no jobs",
            files: &[],
            args: &["run", "--hw", "tiny", "--net", "alexnet", "--jobs", "0"],
            stdin: "",
            error: "invalid value '0' for '--jobs <JOBS>': 0 is not in 1..=1024",
        },
        Case {
            what: "jobs for a model, whose layers depend on each other",
            files: &[],
            args: &["run", "--net", "models/digits/digits.onnx", "--jobs", "2"],
            stdin: "",
            error: "--net model.onnx: --jobs is for networks of independent layers",
        },
        Case {
            what: "a layer name with a newline and a terminal escape",
            files: &[(
                "ctl.toml",
                "[layer]\nname = \"x\\n\\u001b[31mRED\"\nn = 1\nc = 4\nh = 7\nw = 7\nm = 4\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\npad = 1\n",
            )],
            args: &["map", "--hw", "tiny", "--layer", "{dir}/ctl.toml"],
            stdin: "",
            error: "layer `x\\n\\u{1b}[31mRED`: name has a control character (shown escaped)",
        },
        Case {
            what: "an empty layer name",
            files: &[(
                "noname.toml",
                "[layer]\nname = \"\"\nn = 1\nc = 4\nh = 7\nw = 7\nm = 4\nr = 3\ns = 3\nstride_v = 1\nstride_h = 1\npad = 1\n",
            )],
            args: &["map", "--hw", "tiny", "--layer", "{dir}/noname.toml"],
            stdin: "",
            error: "name is empty: a layer needs a name",
        },
        Case {
            // 49.1 GB, more than this kind of machine (24 GiB) has: refused before any tensor.
            what: "a batch of 10^7 on the tiny layer (more memory than the machine has)",
            files: &[],
            args: &["run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--batch", "10000000"],
            stdin: "",
            error: "a run needs about 49.1 GB of memory",
        },
        Case {
            what: "report of statistics with no layers",
            files: &[("empty.json", "[]")],
            args: &["report", "{dir}/empty.json"],
            stdin: "",
            error: "no layers in the statistics (an empty list)",
        },
        Case {
            // The PE refused it at its first pass, after config check had accepted it.
            what: "an ifmap spad of more entries than the PE's zero buffer holds",
            files: &[("wide_ifmap.toml", "")],
            args: &["config", "check", "{dir}/wide_ifmap.toml"],
            stdin: "",
            error: "field `spad.ifmap.entries`: 100 is above 64: the PE keeps its zero buffer",
        },
        Case {
            what: "a .npy of pickled Python objects",
            files: &[("obj.npy", "")],
            args: &["run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--ifmap", "{dir}/obj.npy"],
            stdin: "",
            error: "obj.npy: dtype '|O': an array of Python objects, which numpy loads only by unpickling",
        },
        Case {
            what: "a .npy whose header's shape needs more data than the file holds",
            files: &[("short.npy", "")],
            args: &["run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--ifmap", "{dir}/short.npy"],
            stdin: "",
            error: "short.npy: the header's shape [1, 4, 7, 7] of '<i2' needs 392 bytes of data, and the file holds 20",
        },
        Case {
            what: "a .npy declaring 2x10^11 values",
            files: &[("lying.npy", "")],
            args: &["run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--ifmap", "{dir}/lying.npy"],
            stdin: "",
            error: "lying.npy: the header's shape [1000000000, 4, 7, 7] of '<i2' needs 392000000000 bytes",
        },
        Case {
            what: "a float16 .npy where the chip's int16 words are expected",
            files: &[("half.npy", "")],
            args: &["run", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--ifmap", "{dir}/half.npy"],
            stdin: "",
            error: "half.npy: dtype '<f2': expected int16 (<i2 or >i2) fixed-point values",
        },
        Case {
            what: "model images of the wrong shape",
            files: &[("x7.npy", "")],
            args: &["run", "--net", "models/digits/digits.onnx", "--input", "{dir}/x7.npy"],
            stdin: "",
            error: "shape [2, 1, 7, 7]; the model takes images of [N, 1, 8, 8]",
        },
        Case {
            what: "labels of the wrong length",
            files: &[("y359.npy", "")],
            args: &[
                "run", "--net", "models/digits/digits.onnx", "--input",
                "models/digits/test_x.npy", "--labels", "{dir}/y359.npy",
            ],
            stdin: "",
            error: "shape [359]; expected one label per image: [360]",
        },
        Case {
            what: "a model layer that is not CONV or FC",
            files: &[],
            args: &["run", "--layer", "models/digits/digits.onnx:pool1"],
            stdin: "",
            error: "no node `pool1` that runs on the chip; its layers: conv1, conv2, fc1, fc2",
        },
        Case {
            what: "a GEMM problem with sparse weights",
            files: &[(
                "sparse_b.yaml",
                "problem:\n  instance:\n    M: 4\n    K: 8\n    N: 4\n    densities:\n      B:\n        density: 0.3\n",
            )],
            args: &["map", "--hw", "tiny", "--layer", "{dir}/sparse_b.yaml"],
            stdin: "",
            error: "problem.instance.densities.B: the weights' density is not taken from a problem file",
        },
        Case {
            what: "a GEMM problem with a convolution's dimension",
            files: &[("mixed.yaml", "problem:\n  instance: {M: 4, K: 8, N: 4, R: 3}\n")],
            args: &["map", "--hw", "tiny", "--layer", "{dir}/mixed.yaml"],
            stdin: "",
            error: "problem.instance.R: unknown dimension of a GEMM problem; expected M, N, K",
        },
        Case {
            what: "a repeated --set of one field in sweep",
            files: &[],
            args: &[
                "sweep", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--dry-run",
                "--set", "array.cols=3", "--set", "array.cols=4",
            ],
            stdin: "",
            error: "--set array.cols is given twice",
        },
        Case {
            what: "a Slurm job array of more tasks than points",
            files: &[],
            args: &[
                "sweep", "--hw", "tiny", "--layer", "layers/tiny-conv.toml",
                "--set", "array.cols=3,4", "--slurm", "{dir}/slurm-new", "--tasks", "3",
            ],
            stdin: "",
            error: "--tasks 3: the sweep has 2 points, so 1 tasks would have none",
        },
        Case {
            what: "a Slurm job array into a folder that is not empty",
            files: &[],
            args: &[
                "sweep", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--slurm", "{dir}",
                "--tasks", "1",
            ],
            stdin: "",
            error: "the --slurm folder is not empty",
        },
        Case {
            what: "an #SBATCH value with a line of its own in it",
            files: &[],
            args: &[
                "sweep", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--slurm",
                "{dir}/slurm-new", "--tasks", "1", "--mem", "2G\n#SBATCH --uid=0",
            ],
            stdin: "",
            error: "--mem `2G\n#SBATCH --uid=0`: expected letters, digits and -_:.,+ only",
        },
        Case {
            what: "Slurm resources without --slurm",
            files: &[],
            args: &["sweep", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--tasks", "4"],
            stdin: "",
            error: "--slurm <DIR>",
        },
        Case {
            what: "a Slurm job array and a shard of it at once",
            files: &[],
            args: &[
                "sweep", "--hw", "tiny", "--layer", "layers/tiny-conv.toml", "--slurm",
                "{dir}/slurm-new", "--shard", "0/2",
            ],
            stdin: "",
            error: "cannot be used with",
        },
    ]
}

/// A trace window after the end of the run is not an error, but it is said.
#[test]
fn a_trace_window_past_the_end_is_warned_about() {
    let dir = scratch_in("bad_input", "x").parent().unwrap().to_path_buf();
    let o = rowsim()
        .args([
            "run",
            "--hw",
            "tiny",
            "-q",
            "--layer",
            "layers/tiny-conv.toml",
            "--vcd",
        ])
        .arg(dir.join("late.vcd"))
        .args(["--window", "100000..200000"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: the trace window 100000..200000 starts after the layer ended"),
        "{err}"
    );
}

/// ONNX models made to hurt: what each is, its bytes, and the text its error must hold (the
/// file, the node and the op where there is one).
fn bad_models() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let digits = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/digits/digits.onnx"
    ))
    .unwrap();
    let relu = |op: &str| {
        build::model(
            vec![build::node(op, "odd", &["x"], "y", vec![])],
            vec![],
            build::value("x", &[None, Some(4)]),
            build::value("y", &[None, Some(4)]),
        )
    };
    let dynamic = build::model(
        vec![build::node("Relu", "r", &["x"], "y", vec![])],
        vec![],
        build::value("x", &[None, Some(1), None, Some(8)]),
        build::value("y", &[None, Some(1), None, Some(8)]),
    );
    let reshape = build::model(
        vec![build::node("Reshape", "rs", &["x", "shape"], "y", vec![])],
        vec![],
        build::value("x", &[None, Some(4), Some(2), Some(2)]),
        build::value("y", &[None, Some(16)]),
    );
    let asym = build::model(
        vec![build::node(
            "Conv",
            "c",
            &["x", "w"],
            "y",
            vec![build::ints("pads", &[1, 0, 1, 0])],
        )],
        vec![build::floats(
            "w",
            &[2, 1, 3, 3],
            build::weights(18, 0.5, 1),
        )],
        build::value("x", &[None, Some(1), Some(6), Some(6)]),
        build::value("y", &[None, Some(2), Some(6), Some(4)]),
    );
    let short = build::model(
        vec![build::node("Conv", "c", &["x", "w"], "y", vec![])],
        vec![build::floats("w", &[2, 1, 3, 3], vec![0.5; 5])],
        build::value("x", &[None, Some(1), Some(6), Some(6)]),
        build::value("y", &[None, Some(2), Some(4), Some(4)]),
    );
    let pool = build::model(
        vec![build::node(
            "MaxPool",
            "mp",
            &["x"],
            "y",
            vec![
                build::ints("kernel_shape", &[2, 2]),
                build::ints("pads", &[2, 0, 0, 0]),
            ],
        )],
        vec![],
        build::value("x", &[None, Some(1), Some(6), Some(6)]),
        build::value("y", &[None, Some(1), Some(4), Some(3)]),
    );
    let conv_with = |w: Vec<f32>| {
        build::model(
            vec![build::node("Conv", "c", &["x", "w"], "y", vec![])],
            vec![build::floats("w", &[2, 1, 3, 3], w)],
            build::value("x", &[None, Some(1), Some(6), Some(6)]),
            build::value("y", &[None, Some(2), Some(4), Some(4)]),
        )
    };
    let mut nan = build::weights(18, 0.5, 1);
    nan[7] = f32::NAN;
    let mut inf = build::weights(18, 0.5, 1);
    inf[3] = f32::NEG_INFINITY;
    let external = build::model(
        vec![build::node("Conv", "c", &["x", "w"], "y", vec![])],
        vec![build::external(
            "w",
            &[2, 1, 3, 3],
            "../../../../etc/passwd",
        )],
        build::value("x", &[None, Some(1), Some(6), Some(6)]),
        build::value("y", &[None, Some(2), Some(4), Some(4)]),
    );
    let cycle = build::model(
        vec![
            build::node("Relu", "a", &["z"], "y", vec![]),
            build::node("Relu", "b", &["y"], "z", vec![]),
        ],
        vec![],
        build::value("x", &[None, Some(4)]),
        build::value("y", &[None, Some(4)]),
    );
    let twice = build::model(
        vec![
            build::node("Relu", "a", &["x"], "y", vec![]),
            build::node("Relu", "b", &["x"], "y", vec![]),
        ],
        vec![],
        build::value("x", &[None, Some(4)]),
        build::value("y", &[None, Some(4)]),
    );
    let huge = build::model(
        vec![build::node("Relu", "r", &["x"], "y", vec![])],
        vec![],
        build::value("x", &[None, Some(1000), Some(1000), Some(1000)]),
        build::value("y", &[None, Some(1000), Some(1000), Some(1000)]),
    );
    let bn = |attrs: Vec<_>, var: f32| {
        build::model(
            vec![build::node(
                "BatchNormalization",
                "bn",
                &["x", "g", "b", "m", "v"],
                "y",
                attrs,
            )],
            vec![
                build::floats("g", &[2], vec![1.0, 0.5]),
                build::floats("b", &[2], vec![0.0, 0.1]),
                build::floats("m", &[2], vec![0.2, 0.0]),
                build::floats("v", &[2], vec![1.0, var]),
            ],
            build::value("x", &[None, Some(2), Some(4), Some(4)]),
            build::value("y", &[None, Some(2), Some(4), Some(4)]),
        )
    };
    let binary = |op: &str, inputs: &[&str], k: TensorProto| {
        build::model(
            vec![build::node(op, "op", inputs, "y", vec![])],
            vec![k],
            build::value("x", &[None, Some(2), Some(4), Some(4)]),
            build::value("y", &[None, Some(2), Some(4), Some(4)]),
        )
    };
    // Tokens [N, 4, 6] through one node.
    let tokens = |nodes: Vec<_>, inits: Vec<TensorProto>, out: &[Option<i64>]| {
        build::model_at(
            17,
            nodes,
            inits,
            build::value("x", &[None, Some(4), Some(6)]),
            build::value("y", out),
        )
    };
    let t3 = [None, Some(4), Some(6)];
    let matmul_mismatch = tokens(
        vec![
            build::node("Relu", "r", &["x"], "z", vec![]),
            build::node("MatMul", "mm", &["x", "z"], "y", vec![]),
        ],
        vec![],
        &[None, Some(4), Some(6)],
    );
    let ln_axis = tokens(
        vec![build::node(
            "LayerNormalization",
            "ln",
            &["x", "g"],
            "y",
            vec![build::int("axis", 1)],
        )],
        vec![build::floats("g", &[6], vec![1.0; 6])],
        &t3,
    );
    let ln_scale = tokens(
        vec![build::node(
            "LayerNormalization",
            "ln",
            &["x", "g"],
            "y",
            vec![],
        )],
        vec![build::floats("g", &[4], vec![1.0; 4])],
        &t3,
    );
    let perm = tokens(
        vec![build::node(
            "Transpose",
            "tr",
            &["x"],
            "y",
            vec![build::ints("perm", &[1, 0, 2])],
        )],
        vec![],
        &[Some(4), None, Some(6)],
    );
    let old_softmax = build::model_at(
        13,
        vec![build::node(
            "Softmax",
            "sm",
            &["x"],
            "y",
            vec![build::int("axis", 0)],
        )],
        vec![],
        build::value("x", &[None, Some(4), Some(6)]),
        build::value("y", &t3),
    );
    let conv_tokens = tokens(
        vec![build::node("Conv", "c", &["x", "w"], "y", vec![])],
        vec![build::floats("w", &[2, 4, 3], vec![0.5; 24])],
        &t3,
    );
    let broadcast = tokens(
        vec![
            build::node(
                "ReduceMean",
                "mean",
                &["x"],
                "m",
                vec![build::ints("axes", &[1])],
            ),
            build::node("Sub", "sub", &["x", "m"], "y", vec![]),
        ],
        vec![],
        &t3,
    );
    let reshape_tokens = tokens(
        vec![build::node("Reshape", "rs", &["x", "shape"], "y", vec![])],
        vec![build::int64s("shape", &[0, 2, 12])],
        &[None, Some(2), Some(12)],
    );
    vec![
        (
            "a Reshape of tokens that mixes them",
            reshape_tokens,
            "node `rs` (Reshape): shape [0, 2, 12]: only [N, 24] (flatten) or the same [N, 4, 6] is supported",
        ),
        (
            "a MatMul of two activations whose inner dimensions differ",
            matmul_mismatch,
            "node `mm` (MatMul): [1, 4, 6] x [1, 4, 6]: the heads or the inner dimensions differ",
        ),
        (
            "a LayerNormalization over another axis than the last",
            ln_axis,
            "node `ln` (LayerNormalization): axis 1: only the last axis (2, or -1) is supported",
        ),
        (
            "a LayerNormalization scale of the wrong length",
            ln_scale,
            "node `ln` (LayerNormalization): its Scale has 4 values; expected 6, one per position of the last axis",
        ),
        (
            "a Transpose that moves the batch",
            perm,
            "node `tr` (Transpose): perm [1, 0, 2] of a rank-3 value: the batch must stay first",
        ),
        (
            "a Softmax over the batch",
            old_softmax,
            "node `sm` (Softmax): axis 0: expected an axis after the batch (1 to 2, or -2 to -1)",
        ),
        (
            "a Conv of tokens",
            conv_tokens,
            "node `c` (Conv): its input is a sequence of tokens [N, L, D]; this op takes images",
        ),
        (
            "a ReduceMean over the tokens, not the last axis",
            broadcast,
            "node `mean` (ReduceMean): axes [1], keepdims 1: only the last axis ([2] or [-1]), kept",
        ),
        (
            "a constant divided by an activation",
            binary("Div", &["k", "x"], build::floats("k", &[], vec![2.0])),
            "node `op` (Div): expected an activation and a constant (an initializer)",
        ),
        (
            "a Mul by a constant that broadcasts along the width",
            binary("Mul", &["x", "k"], build::floats("k", &[2], vec![2.0, 3.0])),
            "node `op` (Mul): a constant of dims [2] with a value of [2, 4, 4]; expected one value, or one a channel",
        ),
        (
            "a Div by zero",
            binary("Div", &["x", "k"], build::floats("k", &[1, 2, 1, 1], vec![2.0, 0.0])),
            "node `op` (Div): divides channel 1 by 0",
        ),
        (
            "a BatchNormalization in training mode",
            bn(vec![build::int("training_mode", 1)], 1.0),
            "node `bn` (BatchNormalization): training_mode 1: only inference",
        ),
        (
            "a BatchNormalization of a negative variance",
            bn(vec![build::float("epsilon", 1e-5)], -2.0),
            "node `bn` (BatchNormalization): channel 1: variance -2 plus epsilon 0.00001 is not positive",
        ),
        (
            "NaN weights",
            conv_with(nan),
            "initializer `w`: value 7 is NaN",
        ),
        (
            "infinite weights",
            conv_with(inf),
            "initializer `w`: value 3 is -inf",
        ),
        (
            "weights in an external file (outside the model's folder)",
            external,
            "initializer `w`: its data is in an external file",
        ),
        (
            "a graph with a cycle",
            cycle,
            "node `a` (Relu): input `z` is neither made by an earlier node nor the graph input",
        ),
        (
            "two nodes making one output",
            twice,
            "node `b` (Relu): its output `y` is made by an earlier node too",
        ),
        (
            "a 10^9-value image",
            huge,
            "16 synthetic images of [1000, 1000, 1000] are more than 2147483648 values (the tensor limit)",
        ),
        (
            "pooling padding as large as the window",
            pool,
            "node `mp` (MaxPool): pads [2, 0, 0, 0] must be smaller than the kernel [2, 2]",
        ),
        (
            "a truncated file",
            digits[..digits.len() / 2].to_vec(),
            "not an ONNX model, or a truncated one",
        ),
        (
            "not a model at all",
            b"hello, world\n".to_vec(),
            "not an ONNX model",
        ),
        (
            "an unsupported op",
            relu("LpNormalization"),
            "node `odd` (LpNormalization): op `LpNormalization` is not supported",
        ),
        (
            "a dynamic spatial dimension",
            dynamic,
            "input `x`: dimension 2 is dynamic (`N`); only the batch dimension may be",
        ),
        (
            "a Reshape to a computed shape",
            reshape,
            "node `rs` (Reshape): the shape is not an initializer (a dynamic shape is not supported)",
        ),
        (
            "asymmetric padding",
            asym,
            "node `c` (Conv): pads [1, 0, 1, 0]: the chip pads every side alike",
        ),
        (
            "weights of the wrong size",
            short,
            "initializer `w`: 5 values for dims [2, 1, 3, 3]",
        ),
    ]
}

/// A version-1 `.npy` file: header `descr` and `shape` (a Python tuple), then `data`.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend(data);
    b
}

#[test]
fn bad_input_is_refused_clearly_without_a_panic_or_a_hang() {
    let dir = scratch_in("bad_input", "x").parent().unwrap().to_path_buf();
    for case in cases() {
        for (name, text) in case.files {
            let text = match *name {
                "huge.csv" => format!("{SCALESIM_HEAD}X, 4294967295, 4294967295, 3, 3, 3, 8, 1,\n"),
                "wide.csv" => format!("{SCALESIM_HEAD}W, 20, 20, 3, 16, 1, 4, 1,\n"),
                "deep.yaml" => format!(
                    "problem:\n  instance: {}{}\n",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                ),
                "wide_ifmap.toml" => std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../hw-configs/tiny.toml"
                ))
                .unwrap()
                .replace("\nentries = 6\n", "\nentries = 100\n")
                .replace("zero_buffer_bits = 6\n", "zero_buffer_bits = 100\n"),
                "big_glb.toml" => std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../hw-configs/eyeriss-v1.toml"
                ))
                .unwrap()
                .replace("shared_banks = 25 ", "shared_banks = 1000 ")
                .replace("bank_entries = 512", "bank_entries = 1048576"),
                _ => text.to_string(),
            };
            let bytes = match *name {
                // .npy files made to hurt (bytes written here; numpy is not needed).
                "obj.npy" => npy(
                    "|O",
                    "(1, 4, 7, 7)",
                    b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.",
                ),
                "short.npy" => npy("<i2", "(1, 4, 7, 7)", &[0u8; 20]),
                "half.npy" => npy("<f2", "(1, 4, 7, 7)", &[0u8; 392]),
                "lying.npy" => npy("<i2", "(1000000000, 4, 7, 7)", &[0u8; 392]),
                "x7.npy" => npy("<f4", "(2, 1, 7, 7)", &[0u8; 2 * 49 * 4]),
                "y359.npy" => npy("<i8", "(359,)", &[0u8; 359 * 8]),
                _ => text.into_bytes(),
            };
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| a.replace("{dir}", &dir.display().to_string()))
            .collect();
        let mut child = rowsim()
            .args(&args)
            .stdin(Stdio::piped())
            // `step` reads commands from stdin and reports a bad one in its transcript.
            .stdout(if case.stdin.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            // A command that fails before reading its input closes the pipe: not an error here.
            let _ = input.write_all(case.stdin.as_bytes());
        }
        let status = wait_at_most(&mut child, Duration::from_secs(60), case.what);
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        if let Some(mut out) = child.stdout.take() {
            std::io::Read::read_to_string(&mut out, &mut err).unwrap();
        }
        assert!(!status.success(), "{}: succeeded: {args:?}", case.what);
        assert!(!err.contains("panicked"), "{}: panicked:\n{err}", case.what);
        assert!(
            err.contains(case.error),
            "{}: the error does not say `{}`:\n{err}",
            case.what,
            case.error
        );
    }
    // ONNX models made to hurt, run with --net.
    for (k, (what, bytes, error)) in bad_models().into_iter().enumerate() {
        let p = dir.join(format!("bad{k}.onnx"));
        std::fs::write(&p, bytes).unwrap();
        let mut child = rowsim()
            .args(["run", "--net"])
            .arg(&p)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_at_most(&mut child, Duration::from_secs(60), what);
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{what}: succeeded");
        assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
        assert!(
            err.contains(&*p.display().to_string()) && err.contains(error),
            "{what}: the error does not name the file and say `{error}`:\n{err}"
        );
    }
}
