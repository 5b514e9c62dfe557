//! `lstm-parity`: the command-line frontend. It parses arguments and prints;
//! all logic is in the library (`lstm_parity::conformance`).
//!
//! Exit codes: 0 all passed, 1 some case out of tolerance, 2 bad usage or
//! unreadable input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lstm_parity::bench::{self, Repeats, Shape};
use lstm_parity::conformance::{self, report, Dtype, Filter, Tolerance};

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
        /// The reference folder.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Tolerance level for every case (default: each case's own): default, exact, abs:A, rel:R, ulp:N.
        #[arg(long)]
        tolerance: Option<Tolerance>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Run only this dtype.
        #[arg(long, value_enum)]
        dtype: Option<DtypeArg>,
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
        #[arg(long, default_value_t = 1.0)]
        min_time: f64,
    },
    /// List the selected cases with their API and shapes.
    List {
        /// Case id filters, as for `run`.
        filter: Vec<String>,
        /// The reference folder.
        #[arg(long)]
        reference: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
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

/// `./reference` when it exists, else the one beside this crate's sources.
fn reference_root(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let here = PathBuf::from("reference");
        if here.is_dir() {
            here
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference")
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            filter,
            reference,
            tolerance,
            format,
            dtype,
        } => run(
            reference_root(reference),
            &filter,
            tolerance.as_ref(),
            format,
            dtype,
        ),
        Command::List { filter, reference } => list(reference_root(reference), &filter),
        Command::Bench {
            json,
            shapes,
            threads,
            dtype,
            activations,
            repeats,
            min_time,
        } => {
            let repeats = Repeats {
                min_runs: repeats.max(1),
                min_time: std::time::Duration::from_secs_f64(min_time.clamp(0.0, 3600.0)),
                ..Repeats::default()
            };
            bench_command(json, shapes, threads, dtype, activations, repeats)
        }
    }
}

fn bench_command(
    json: bool,
    shapes: Vec<Shape>,
    threads: Option<usize>,
    dtype: BenchDtype,
    activations: BenchActivations,
    repeats: Repeats,
) -> ExitCode {
    if threads == Some(0) {
        eprintln!("error: --threads must be at least 1");
        return ExitCode::from(2);
    }
    let shapes = if shapes.is_empty() {
        bench::SHAPES.to_vec()
    } else {
        shapes
    };
    if !json {
        println!(
            "{:<17} {:<14} {:<8} {:>10} {:>9} {:>7}",
            "impl", "shape", "dtype", "ms", "GFLOP/s", "threads (projection/steps)"
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
                results.push(bench::measure::<f32>(shape, threads, fast, repeats));
            }
            if dtype != BenchDtype::Float32 {
                results.push(bench::measure::<f64>(shape, threads, fast, repeats));
            }
        }
        for m in results {
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&m).expect("measurement serializes")
                );
            } else {
                println!(
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
    ExitCode::SUCCESS
}

fn run(
    root: PathBuf,
    filter: &[String],
    tolerance: Option<&Tolerance>,
    format: Format,
    dtype: Option<DtypeArg>,
) -> ExitCode {
    let selection = match Filter::new(filter).and_then(|f| conformance::select(&root, &f)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if selection.cases.is_empty() && selection.errors.is_empty() {
        eprintln!("error: no case in {} matches {:?}", root.display(), filter);
        return ExitCode::from(2);
    }
    let dtypes: &[Dtype] = match dtype {
        None => &Dtype::ALL,
        Some(DtypeArg::Float32) => &[Dtype::F32],
        Some(DtypeArg::Float64) => &[Dtype::F64],
    };
    let runs = conformance::run_all(&selection.cases, dtypes, tolerance);
    match format {
        Format::Table => print!("{}", report::table(&runs, &selection.errors)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&runs, &selection.errors))
                .expect("report serializes")
        ),
    }
    if !selection.errors.is_empty() {
        for e in &selection.errors {
            eprintln!("error: {e}");
        }
        ExitCode::from(2)
    } else if runs.iter().all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn list(root: PathBuf, filter: &[String]) -> ExitCode {
    let selection = match Filter::new(filter).and_then(|f| conformance::select(&root, &f)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for case in &selection.cases {
        let shapes: Vec<String> = case
            .inputs
            .iter()
            .map(|(name, t)| format!("{name}{:?}", t.shape()))
            .collect();
        println!(
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
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
