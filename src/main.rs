//! `lstm-parity`: the command-line frontend. It parses arguments and prints;
//! all logic is in the library (`lstm_parity::conformance`).
//!
//! Exit codes: 0 all passed, 1 some case out of tolerance (or a stale
//! expected-failure entry, or `compare` found something worse), 2 bad
//! usage or unreadable input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use lstm_parity::bench::{self, Repeats, Shape};
use lstm_parity::conformance::expectations::Expectations;
use lstm_parity::conformance::gate::{self, CheckOptions, ExportOptions, SelectedBy};
use lstm_parity::conformance::report::{self, Report};
use lstm_parity::conformance::{self, delta, Dtype, Tolerance};
use lstm_parity::dialect::layout::{ForgetBias, Layout};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Write to standard output; a write that fails (a full disk, a closed
/// pipe that does not stop the process) is an error message and exit 2,
/// never a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout(&format!($($arg)*))
    };
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => {
        write_stdout("\n")
    };
    ($($arg:tt)*) => {
        write_stdout(&format!("{}\n", format!($($arg)*)))
    };
}

fn write_stdout(text: &str) {
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
        /// Case id filters: globs (`tf1/*`) or substrings (`nb003`). All cases when none.
        filter: Vec<String>,
        /// The reference folder [default: $LSTM_PARITY_REFERENCE, else ./reference, else the crate's own]
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Tolerance level for every case (default: each case's own): default, exact, abs:A, rel:R, ulp:N.
        #[arg(long)]
        tolerance: Option<Tolerance>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also write the report to FILE (JUnit for *.xml, JSON for *.json, else the table; - for standard output). Only a regular file, never one of the command's inputs.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Cases expected to fail, with reasons (TOML or JSON).
        #[arg(long)]
        expectations: Option<PathBuf>,
        /// Run only this dtype.
        #[arg(long, value_enum)]
        dtype: Option<DtypeArg>,
        #[command(flatten)]
        model: ModelArgs,
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
        #[arg(long, value_enum, default_value_t = BenchDtype::Float32)]
        dtype: BenchDtype,
        /// Activations: exact (libm, the default everywhere), fast (vectorised float32 sigmoid/tanh), or both.
        #[arg(long, value_enum, default_value_t = BenchActivations::Exact)]
        activations: BenchActivations,
        /// Minimum timed runs per shape (after two warm-up runs).
        #[arg(long, default_value_t = 7)]
        repeats: usize,
        /// Minimum timed seconds per shape (more runs until reached, at most 200).
        #[arg(long, default_value_t = 1.0, value_parser = parse_min_time)]
        min_time: f64,
        /// Pack the weights in every run (`lstm::run_with`) instead of once
        /// before the timed runs (`lstm::Prepared`, as onnxruntime packs
        /// them once per session).
        #[arg(long)]
        pack_every_run: bool,
    },
    /// List the selected cases with their API and shapes.
    List {
        /// Case id filters, as for `run`.
        filter: Vec<String>,
        /// The reference folder [default: $LSTM_PARITY_REFERENCE, else ./reference, else the crate's own]
        #[arg(long)]
        reference: Option<PathBuf>,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Export the selected cases for another implementation, in its weight layout (docs/gate.md).
    Export {
        /// The target layout: canonical, tf1, keras, block, block-v2, onnx, onnx-layout1, torch, cudnn.
        #[arg(long)]
        layout: Layout,
        /// The export folder: new, empty, or an earlier export, which is replaced whole once the new one is complete.
        #[arg(long)]
        out: PathBuf,
        /// Case id filters, as for `run`.
        filter: Vec<String>,
        /// The reference folder [default: $LSTM_PARITY_REFERENCE, else ./reference, else the crate's own]
        #[arg(long)]
        reference: Option<PathBuf>,
        /// The dtype of every float array.
        #[arg(long, value_enum, default_value_t = DtypeArg::Float32)]
        dtype: DtypeArg,
        /// forget_bias as a separate option (kept; layouts that have one) or added into the bias (folded).
        #[arg(long)]
        forget_bias: Option<ForgetBias>,
        #[command(flatten)]
        model: ModelArgs,
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
        /// Cases expected to fail, with reasons (TOML or JSON).
        #[arg(long)]
        expectations: Option<PathBuf>,
        /// Tolerance level for every case (default: each case's own).
        #[arg(long)]
        tolerance: Option<Tolerance>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also write the report to FILE (JUnit for *.xml, JSON for *.json, else the table; - for standard output). Only a regular file, never one of the command's inputs.
        #[arg(long)]
        report: Option<PathBuf>,
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

/// Selection by what a case runs.
#[derive(clap::Args)]
struct ModelArgs {
    /// Only cases of this API (a glob): tf1.dynamic_rnn, 'keras3.*', block.BlockLSTM, ...
    #[arg(long)]
    api: Option<String>,
    /// Only cases whose model summary (as `list` prints it) contains this word: peepholes, cell_clip, go_backwards, ...
    #[arg(long)]
    option: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Junit,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompareFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchActivations {
    Exact,
    Fast,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchDtype {
    Float32,
    Float64,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    Float32,
    Float64,
}

impl DtypeArg {
    fn dtype(self) -> Dtype {
        match self {
            DtypeArg::Float32 => Dtype::F32,
            DtypeArg::Float64 => Dtype::F64,
        }
    }
}

/// The reference folder: `--reference`, else the library's rule
/// ([`conformance::suite::reference_root`]).
fn reference_root(given: Option<PathBuf>) -> PathBuf {
    conformance::suite::reference_root(given.as_deref())
}

fn main() -> ExitCode {
    // A closed pipe (`lstm-parity list | head`) ends the process quietly,
    // as it does any command-line filter.
    // SAFETY: restoring the default action of one signal before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run {
            filter,
            reference,
            tolerance,
            format,
            report,
            expectations,
            dtype,
            model,
        } => run(
            reference_root(reference),
            &filter,
            &model,
            tolerance.as_ref(),
            format,
            report.as_deref(),
            expectations.as_deref(),
            dtype,
        ),
        Command::List {
            filter,
            reference,
            model,
        } => list(reference_root(reference), &filter, &model),
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
            let repeats = Repeats {
                min_runs: repeats.max(1),
                min_time: std::time::Duration::from_secs_f64(min_time),
                ..Repeats::default()
            };
            let prepared = !pack_every_run;
            bench_command(json, shapes, threads, dtype, activations, prepared, repeats)
        }
        Command::Export {
            layout,
            out,
            filter,
            reference,
            dtype,
            forget_bias,
            model,
        } => export(
            reference_root(reference),
            &filter,
            &model,
            &out,
            layout,
            dtype.dtype(),
            forget_bias,
        ),
        Command::Check {
            outputs,
            export,
            reference,
            expectations,
            tolerance,
            format,
            report,
        } => check(
            &outputs,
            export,
            &reference_root(reference),
            expectations.as_deref(),
            tolerance.as_ref(),
            format,
            report.as_deref(),
        ),
        Command::Compare { base, new, format } => compare(&base, &new, format),
    };
    ExitCode::from(code)
}

/// `--min-time`: seconds, finite, from 0 to [`bench::MAX_MIN_TIME_SECONDS`].
fn parse_min_time(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=bench::MAX_MIN_TIME_SECONDS).contains(&v) {
        return Err(format!(
            "{s:?}: must be from 0 to {} seconds",
            bench::MAX_MIN_TIME_SECONDS
        ));
    }
    Ok(v)
}

fn bench_command(
    json: bool,
    shapes: Vec<Shape>,
    threads: Option<usize>,
    dtype: BenchDtype,
    activations: BenchActivations,
    prepared: bool,
    repeats: Repeats,
) -> u8 {
    if let Some(n) = threads.filter(|&n| n == 0 || n > bench::max_threads()) {
        eprintln!(
            "error: --threads {n}: must be from 1 to {} (four per core)",
            bench::max_threads()
        );
        return 2;
    }
    let shapes = if shapes.is_empty() {
        bench::SHAPES.to_vec()
    } else {
        shapes
    };
    let element_bytes = if dtype == BenchDtype::Float32 { 4 } else { 8 };
    for shape in &shapes {
        if let Err(e) = shape.check_fits(element_bytes) {
            eprintln!("error: --shapes: {e}");
            return 2;
        }
    }
    if !json {
        outln!(
            "{:<17} {:<14} {:<8} {:>10} {:>9} {:>7}",
            "impl",
            "shape",
            "dtype",
            "ms",
            "GFLOP/s",
            "threads (projection/steps)"
        );
    }
    for shape in shapes {
        let mut results = Vec::new();
        let fast_modes: &[bool] = match activations {
            BenchActivations::Exact => &[false],
            BenchActivations::Fast => &[true],
            BenchActivations::Both => &[false, true],
        };
        for &fast in fast_modes {
            if dtype != BenchDtype::Float64 {
                results.push(bench::measure::<f32>(
                    shape, threads, fast, prepared, repeats,
                ));
            }
            if dtype != BenchDtype::Float32 {
                results.push(bench::measure::<f64>(
                    shape, threads, fast, prepared, repeats,
                ));
            }
        }
        for m in results {
            if json {
                outln!(
                    "{}",
                    serde_json::to_string(&m).expect("measurement serializes")
                );
            } else {
                outln!(
                    "{:<17} {:<14} {:<8} {:>10.3} {:>9.1} {:>7}",
                    m.implementation,
                    m.shape,
                    m.dtype,
                    m.ms,
                    m.gflops,
                    format!("{}/{}", m.projection_threads, m.threads)
                );
            }
        }
    }
    0
}

/// Select, load and narrow the cases.
/// The command line's selection: case-id filters and the model filters.
fn selected_by(filter: &[String], model: &ModelArgs) -> SelectedBy {
    SelectedBy::Filters {
        filters: filter.to_vec(),
        api: model.api.clone(),
        option: model.option.clone(),
    }
}

fn select(
    root: &Path,
    filter: &[String],
    model: &ModelArgs,
) -> Result<conformance::Selection, conformance::suite::SuiteError> {
    selected_by(filter, model).select(root)
}

fn load_expectations(path: Option<&Path>) -> Result<Option<Expectations>, u8> {
    path.map(Expectations::load).transpose().map_err(|e| {
        eprintln!("error: {e}");
        2
    })
}

/// Print the report, write it to `file` if asked (never over one of the
/// command's inputs), and return the exit code.
fn finish(
    report: &Report,
    format: Format,
    file: Option<&Path>,
    name: &str,
    inputs: (&[&Path], &[&Path]),
) -> u8 {
    let format = match format {
        Format::Table => report::Format::Table,
        Format::Json => report::Format::Json,
        Format::Junit => report::Format::Junit,
    };
    out!("{}", report::render(report, format, name));
    // `-`: standard output, where the report (in --format) just went.
    if let Some(path) = file.filter(|p| p.as_os_str() != "-") {
        if let Err(e) = report::write(report, path, name, inputs.0, inputs.1) {
            eprintln!("error: {e}");
            return 2;
        }
    }
    for e in &report.errors {
        eprintln!("error: {}", e.message);
    }
    report.exit_code()
}

#[allow(clippy::too_many_arguments)]
fn run(
    root: PathBuf,
    filter: &[String],
    model: &ModelArgs,
    tolerance: Option<&Tolerance>,
    format: Format,
    report_file: Option<&Path>,
    expectations: Option<&Path>,
    dtype: Option<DtypeArg>,
) -> u8 {
    let expectations_path = expectations;
    let expectations = match load_expectations(expectations) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let dtypes: Vec<Dtype> = match dtype {
        None => Dtype::ALL.to_vec(),
        Some(d) => vec![d.dtype()],
    };
    let report = match conformance::check::run_request(&conformance::check::RunRequest {
        root: &root,
        selected_by: &selected_by(filter, model),
        dtypes: &dtypes,
        tolerance,
        expectations: expectations.as_ref(),
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let files: Vec<&Path> = expectations_path.into_iter().collect();
    finish(
        &report,
        format,
        report_file,
        "lstm-parity run",
        (&files, &[root.as_path()]),
    )
}

fn list(root: PathBuf, filter: &[String], model: &ModelArgs) -> u8 {
    let selection = match select(&root, filter, model) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for case in &selection.cases {
        let shapes: Vec<String> = case
            .inputs
            .iter()
            .map(|(name, t)| format!("{name}{:?}", t.shape()))
            .collect();
        outln!(
            "{}  {}  {}",
            case.id,
            case.model.summary(),
            shapes.join(" ")
        );
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
    root: PathBuf,
    filter: &[String],
    model: &ModelArgs,
    out: &Path,
    layout: Layout,
    dtype: Dtype,
    forget_bias: Option<ForgetBias>,
) -> u8 {
    let selection = match select(&root, filter, model) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if !selection.errors.is_empty() {
        for e in &selection.errors {
            eprintln!("error: {e}");
        }
        eprintln!("error: nothing exported: the reference folder has cases that do not load");
        return 2;
    }
    if selection.cases.is_empty() {
        eprintln!("error: no case in {} matches {:?}", root.display(), filter);
        return 2;
    }
    // A signal stops the export between two files and leaves the folder
    // as it was; a second one ends the process at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone());
        let _ = signal_hook::flag::register(signal, interrupted.clone());
    }
    let selected_by = selected_by(filter, model);
    let options = ExportOptions {
        selected_by: Some(&selected_by),
        layout,
        dtype,
        forget_bias,
        interrupt: Some(&interrupted),
    };
    let index = match gate::export(&root, &selection.cases, out, &options) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut steps = 0;
    for c in &index.cases {
        if c.exported {
            steps += c.steps.len();
        } else {
            outln!(
                "not exported: {}: {}",
                c.id,
                c.reason.as_deref().unwrap_or("")
            );
        }
    }
    let exported = index.cases.iter().filter(|c| c.exported).count();
    outln!(
        "exported {exported} of {} cases ({steps} steps) in layout {}, {}, forget_bias {}, to {} (suite {})",
        index.cases.len(),
        index.layout,
        index.dtype,
        index.forget_bias,
        out.display(),
        index.suite_fingerprint
    );
    0
}

fn check(
    outputs: &Path,
    export: Option<PathBuf>,
    reference: &Path,
    expectations: Option<&Path>,
    tolerance: Option<&Tolerance>,
    format: Format,
    report_file: Option<&Path>,
) -> u8 {
    let expectations_path = expectations;
    let expectations = match load_expectations(expectations) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let export = match export {
        Some(e) => e,
        None => match gate::read_outputs_info(outputs) {
            Ok(info) => match info.export {
                Some(e) => PathBuf::from(e),
                None => {
                    eprintln!(
                        "error: {}/outputs.json names no export folder: give --export",
                        outputs.display()
                    );
                    return 2;
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
    };
    let options = CheckOptions {
        export_dir: &export,
        outputs_dir: outputs,
        reference,
        tolerance,
        expectations: expectations.as_ref(),
    };
    match gate::check(&options) {
        Ok(report) => {
            let name = report
                .gate
                .as_ref()
                .map_or("lstm-parity check".into(), |g| {
                    format!(
                        "lstm-parity check {} ({}, {})",
                        g.implementation, g.layout, g.dtype
                    )
                });
            let files: Vec<&Path> = expectations_path.into_iter().collect();
            let dirs = [outputs, export.as_path(), reference];
            finish(&report, format, report_file, &name, (&files, &dirs))
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn compare(base: &Path, new: &Path, format: CompareFormat) -> u8 {
    let delta = match delta::compare_files(base, new) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match format {
        CompareFormat::Table => out!("{}", delta::table(&delta)),
        CompareFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&delta).expect("delta serializes")
        ),
    }
    u8::from(delta.got_worse())
}
