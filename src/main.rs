//! `lstm-parity`: the command-line frontend. It parses arguments and prints;
//! all logic is in the library (`lstm_parity::conformance`, `lstm_parity::bench`).
//!
//! Exit codes: 0 all passed, 1 some case out of tolerance (or a stale
//! expected-failure entry, or `compare` found something worse), 2 bad
//! usage or unreadable input.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lstm_parity::bench::{self, Repeats, Shape};
use lstm_parity::conformance::check::{run_request, RunRequest};
use lstm_parity::conformance::expectations::Expectations;
use lstm_parity::conformance::gate::{self, CheckOptions, ExportOptions, SelectedBy};
use lstm_parity::conformance::report::{self, Report};
use lstm_parity::conformance::{delta, suite, Dtype, Tolerance};
use lstm_parity::dialect::layout::{ForgetBias, Layout};
use lstm_parity::lstm::Precision;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Write to standard output; a write that fails (a full disk, a closed
/// pipe that does not stop the process) is an error message and exit 2,
/// never a panic.
fn print(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

/// [`print`] with a newline.
fn println(text: impl Display) {
    print(&format!("{text}\n"));
}

/// An error message and exit code 2 (bad usage or unreadable input).
fn fail(e: impl Display) -> u8 {
    eprintln!("error: {e}");
    2
}

#[derive(Parser)]
#[command(
    name = "lstm-parity",
    version,
    about = "Check LSTM implementations against recorded TensorFlow/Keras cases"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the parity suite: every selected case through the Rust LSTM, in float32 and float64.
    Run {
        #[command(flatten)]
        cases: Cases,
        #[command(flatten)]
        judging: Judging,
        /// Run only this dtype (default: float32 and float64, and float16 and bfloat16 where a case has a run in them).
        #[arg(long, value_enum)]
        dtype: Option<Dtype>,
    },
    /// Time the Rust LSTM kernel (one layer, I = H, no trace): median ms and GFLOP/s per shape.
    Bench {
        /// Print one JSON object per line (the format of scripts/bench_peers.py).
        #[arg(long)]
        json: bool,
        /// Shapes as B64-T50-H512 (default: the four standard shapes).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        shapes: Vec<Shape>,
        /// Threads (default: LSTM_PARITY_THREADS, else every core; small shapes use one).
        #[arg(long)]
        threads: Option<usize>,
        /// Float type(s) to time.
        #[arg(long, value_enum, default_value_t = bench::Dtypes::Float32)]
        dtype: bench::Dtypes,
        /// Activations.
        #[arg(long, value_enum, default_value_t = bench::Activations::Exact)]
        activations: bench::Activations,
        /// Minimum timed runs per shape (after two warm-up runs).
        #[arg(long, default_value_t = 7)]
        repeats: usize,
        /// Minimum timed seconds per shape (more runs until reached, at most 200).
        #[arg(long, default_value = "1", value_parser = bench::parse_min_time)]
        min_time: Duration,
        /// Pack the weights in every run (`lstm::run_with`) instead of once
        /// before the timed runs (`lstm::Prepared`, as onnxruntime packs
        /// them once per session).
        #[arg(long)]
        pack_every_run: bool,
    },
    /// List the selected cases with their API and shapes.
    List {
        #[command(flatten)]
        cases: Cases,
    },
    /// Export the selected cases for another implementation, in its weight layout (docs/gate.md).
    Export {
        /// The target layout: canonical, tf1, keras, block, block-v2, onnx, onnx-layout1, torch, cudnn.
        #[arg(long)]
        layout: Layout,
        /// The export folder: new, empty, or an earlier export, which is replaced whole once the new one is complete.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        cases: Cases,
        /// The dtype of every float array.
        #[arg(long, value_enum, default_value_t = Dtype::F32)]
        dtype: Dtype,
        /// forget_bias as a separate option (kept; layouts that have one) or added into the bias (folded).
        #[arg(long)]
        forget_bias: Option<ForgetBias>,
    },
    /// Check the outputs an implementation wrote for an export against the references.
    Check {
        /// The implementation's outputs folder.
        #[arg(long)]
        outputs: PathBuf,
        /// The export folder (default: the one outputs.json names).
        #[arg(long)]
        export: Option<PathBuf>,
        /// The reference folder the export was made from [default: $LSTM_PARITY_REFERENCE, else ./reference, else the crate's own]
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Judge an implementation that computes in 16 bits against TensorFlow's own run in that precision (float32 exports; cases with such a run).
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
        #[command(flatten)]
        judging: Judging,
    },
    /// Compare two JSON reports of `run` or `check`: what got worse (first) and what got better.
    Compare {
        /// The earlier report.
        base: PathBuf,
        /// The later report.
        new: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
        format: CompareFormat,
    },
}

/// Which cases: from which reference folder, by id and by what they run.
#[derive(Args)]
struct Cases {
    /// Case id filters: globs (`tf1/*`) or substrings (`nb003`). All cases when none.
    filter: Vec<String>,
    /// The reference folder [default: $LSTM_PARITY_REFERENCE, else ./reference, else the crate's own]
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Only cases of this API (a glob): tf1.dynamic_rnn, 'keras3.*', block.BlockLSTM, ...
    #[arg(long)]
    api: Option<String>,
    /// Only cases whose model summary (as `list` prints it) contains this word: peepholes, cell_clip, go_backwards, ...
    #[arg(long)]
    option: Option<String>,
}

impl Cases {
    fn root(&self) -> PathBuf {
        suite::reference_root(self.reference.as_deref())
    }

    fn selected_by(&self) -> SelectedBy {
        SelectedBy::Filters {
            filters: self.filter.clone(),
            api: self.api.clone(),
            option: self.option.clone(),
        }
    }
}

/// How results are judged and reported.
#[derive(Args)]
struct Judging {
    /// Tolerance level for every case (default: each case's own): default, exact, abs:A, rel:R, ulp:N.
    #[arg(long)]
    tolerance: Option<Tolerance>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = report::Format::Table)]
    format: report::Format,
    /// Also write the report to FILE (JUnit for *.xml, JSON for *.json, else the table; - for standard output). Only a regular file, never one of the command's inputs.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Cases expected to fail, and stated tolerances, with reasons (TOML or JSON).
    #[arg(long)]
    expectations: Option<PathBuf>,
}

impl Judging {
    fn expectations(&self) -> Result<Option<Expectations>, u8> {
        let path = self.expectations.as_deref();
        path.map(Expectations::load).transpose().map_err(fail)
    }

    /// Print the report, write it to `--report` if asked (never over one
    /// of the command's inputs: `dirs` and the expectations file), and
    /// return the exit code.
    fn finish(&self, report: &Report, name: &str, dirs: &[&Path]) -> u8 {
        print(&report::render(report, self.format, name));
        // `-`: standard output, where the report (in --format) just went.
        if let Some(path) = self.report.as_deref().filter(|p| p.as_os_str() != "-") {
            let files: Vec<&Path> = self.expectations.as_deref().into_iter().collect();
            if let Err(e) = report::write(report, path, name, &files, dirs) {
                return fail(e);
            }
        }
        for e in &report.errors {
            eprintln!("error: {}", e.message);
        }
        report.exit_code()
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    Float16,
    Bfloat16,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompareFormat {
    Table,
    Json,
}

fn main() -> ExitCode {
    // A closed pipe (`lstm-parity list | head`) ends the process quietly,
    // as it does any command-line filter.
    // SAFETY: restoring the default action of one signal before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let code = match Cli::parse().command {
        Command::Run {
            cases,
            judging,
            dtype,
        } => run(&cases, &judging, dtype),
        Command::List { cases } => list(&cases),
        Command::Bench {
            json,
            shapes,
            threads,
            dtype,
            activations,
            repeats,
            min_time,
            pack_every_run,
        } => {
            let request = bench::Request {
                shapes,
                threads,
                dtypes: dtype,
                activations,
                prepared: !pack_every_run,
                repeats: Repeats {
                    min_runs: repeats.max(1),
                    min_time,
                    ..Repeats::default()
                },
            };
            bench_command(&request, json)
        }
        Command::Export {
            layout,
            out,
            cases,
            dtype,
            forget_bias,
        } => export(&cases, &out, layout, dtype, forget_bias),
        Command::Check {
            outputs,
            export,
            reference,
            precision,
            judging,
        } => {
            let precision = precision.map(|p| match p {
                PrecisionArg::Float16 => Precision::Float16,
                PrecisionArg::Bfloat16 => Precision::BFloat16,
            });
            let reference = suite::reference_root(reference.as_deref());
            check(&outputs, export, &reference, precision, &judging)
        }
        Command::Compare { base, new, format } => compare(&base, &new, format),
    };
    ExitCode::from(code)
}

fn bench_command(request: &bench::Request, json: bool) -> u8 {
    if let Err(e) = request.validate() {
        return fail(e);
    }
    if !json {
        println(bench::Measurement::TABLE_HEADER);
    }
    let printed = request.run(|m| {
        if json {
            println(serde_json::to_string(m).expect("measurement serializes"));
        } else {
            println(m.table_row());
        }
    });
    printed.map_or_else(fail, |()| 0)
}

fn run(cases: &Cases, judging: &Judging, dtype: Option<Dtype>) -> u8 {
    let expectations = match judging.expectations() {
        Ok(e) => e,
        Err(code) => return code,
    };
    let every = [Dtype::ALL, Dtype::REDUCED].concat();
    let dtypes: Vec<Dtype> = dtype.map_or(every, |d| vec![d]);
    let root = cases.root();
    let request = RunRequest {
        root: &root,
        selected_by: &cases.selected_by(),
        dtypes: &dtypes,
        tolerance: judging.tolerance.as_ref(),
        expectations: expectations.as_ref(),
    };
    match run_request(&request) {
        Ok(report) => judging.finish(&report, "lstm-parity run", &[&root]),
        Err(e) => fail(e),
    }
}

fn list(cases: &Cases) -> u8 {
    let selection = match cases.selected_by().select(&cases.root()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    for case in &selection.cases {
        println(case.listing());
    }
    for e in &selection.errors {
        eprintln!("error: {e}");
    }
    if selection.errors.is_empty() {
        0
    } else {
        2
    }
}

fn export(
    cases: &Cases,
    out: &Path,
    layout: Layout,
    dtype: Dtype,
    forget_bias: Option<ForgetBias>,
) -> u8 {
    // A signal stops the export between two files and leaves the folder
    // as it was; a second one ends the process at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone());
        let _ = signal_hook::flag::register(signal, interrupted.clone());
    }
    let selected_by = cases.selected_by();
    let options = ExportOptions {
        selected_by: Some(&selected_by),
        layout,
        dtype,
        forget_bias,
        interrupt: Some(&interrupted),
    };
    match gate::export_selected(&cases.root(), out, &options) {
        Ok(index) => {
            print(&index.summary(out));
            0
        }
        Err(e) => fail(e),
    }
}

fn check(
    outputs: &Path,
    export: Option<PathBuf>,
    reference: &Path,
    precision: Option<Precision>,
    judging: &Judging,
) -> u8 {
    let expectations = match judging.expectations() {
        Ok(e) => e,
        Err(code) => return code,
    };
    let export = match export.map_or_else(|| gate::export_dir_of(outputs), Ok) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let options = CheckOptions {
        export_dir: &export,
        outputs_dir: outputs,
        reference,
        tolerance: judging.tolerance.as_ref(),
        expectations: expectations.as_ref(),
        precision,
    };
    match gate::check(&options) {
        Ok(report) => {
            let name = report.name("lstm-parity check");
            judging.finish(&report, &name, &[outputs, &export, reference])
        }
        Err(e) => fail(e),
    }
}

fn compare(base: &Path, new: &Path, format: CompareFormat) -> u8 {
    let delta = match delta::compare_files(base, new) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    match format {
        CompareFormat::Table => print(&delta::table(&delta)),
        CompareFormat::Json => {
            println(serde_json::to_string_pretty(&delta).expect("delta serializes"));
        }
    }
    u8::from(delta.got_worse())
}
