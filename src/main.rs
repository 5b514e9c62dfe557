//! `lstm-parity`: the command-line frontend. It parses arguments and prints;
//! all logic is in the library (`lstm_parity::conformance`).
//!
//! Exit codes: 0 all passed, 1 some case out of tolerance, 2 bad usage or
//! unreadable input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lstm_parity::conformance::{self, report, Dtype, Filter, ModelFilter, Tolerance};

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
        #[command(flatten)]
        model: ModelArgs,
    },
    /// List the selected cases with their API and shapes.
    List {
        /// Case id filters, as for `run`.
        filter: Vec<String>,
        /// The reference folder.
        #[arg(long)]
        reference: Option<PathBuf>,
        #[command(flatten)]
        model: ModelArgs,
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
            model,
        } => run(
            reference_root(reference),
            &filter,
            &model,
            tolerance.as_ref(),
            format,
            dtype,
        ),
        Command::List {
            filter,
            reference,
            model,
        } => list(reference_root(reference), &filter, &model),
    }
}

/// Select, load and narrow the cases.
fn select(
    root: &std::path::Path,
    filter: &[String],
    model: &ModelArgs,
) -> Result<conformance::Selection, conformance::suite::SuiteError> {
    let narrow = ModelFilter::new(model.api.as_deref(), model.option.as_deref())?;
    let mut selection = conformance::select(root, &Filter::new(filter)?)?;
    selection
        .cases
        .retain(|c| narrow.matches(&c.model.api(), &c.model.summary()));
    Ok(selection)
}

fn run(
    root: PathBuf,
    filter: &[String],
    model: &ModelArgs,
    tolerance: Option<&Tolerance>,
    format: Format,
    dtype: Option<DtypeArg>,
) -> ExitCode {
    let selection = match select(&root, filter, model) {
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

fn list(root: PathBuf, filter: &[String], model: &ModelArgs) -> ExitCode {
    let selection = match select(&root, filter, model) {
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
