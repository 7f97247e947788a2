//! `switchyard conformance`: the recorded cases offline (`replay`), the same scenarios live
//! against any endpoint (`run`), and new cases recorded from one (`record`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt as _;
use switchyard::Error;
use switchyard::conformance::case::Operation;
use switchyard::conformance::live::LiveOptions;
use switchyard::conformance::record::RecordOptions;
use switchyard::conformance::report::{CaseReport, Report};
use switchyard::conformance::suite::{check_case, glob_match};

#[derive(Subcommand)]
pub enum ConformanceCommand {
    /// Replay the recorded cases offline, as the test suite does, and report.
    Replay {
        /// Only this provider's cases.
        #[arg(long)]
        provider: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Run the scenarios live against an endpoint (semantic checks; see conformance/README.md).
    Run {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Tokens in the oversize-prompt scenario (its prompt must exceed the context window).
        #[arg(long, default_value_t = 2_000_000)]
        oversize_tokens: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Record an input against a live endpoint as a new case (secrets scrubbed).
    Record {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The new case's name.
        #[arg(long = "case")]
        name: String,
        /// The input from conformance/inputs to send (default: the input named like the case).
        #[arg(long)]
        input: Option<String>,
        /// chat, chat-stream, embed or models (default: from the input).
        #[arg(long, value_enum)]
        operation: Option<OperationArg>,
        /// What the case shows (default: where it was recorded, and when).
        #[arg(long)]
        description: Option<String>,
        /// Replace the case if it exists.
        #[arg(long)]
        force: bool,
        /// The conformance folder.
        #[arg(long, default_value = "conformance")]
        root: PathBuf,
        /// Bound on the call, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

#[derive(Args)]
pub struct Endpoint {
    /// A provider id, or `openai_compat` for any OpenAI-compatible server.
    #[arg(long)]
    provider: String,
    /// The endpoint's API base (`http://localhost:8000/v1`).
    #[arg(long)]
    base_url: String,
    /// The environment variable holding the API key (default for a provider: its usual one;
    /// `openai_compat` sends none unless given).
    #[arg(long)]
    api_key_env: Option<String>,
    /// The model to use (without the provider prefix); by default each case's.
    #[arg(long)]
    model: Option<String>,
    /// The model for embeddings scenarios.
    #[arg(long)]
    embedding_model: Option<String>,
}

#[derive(Args)]
pub struct Common {
    /// Only cases whose id matches (`openai/tools_*`, `*stream*`, `error/*`).
    #[arg(long = "case")]
    case: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// Cases at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Bound on each case, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// The conformance folder.
    #[arg(long, default_value = "conformance")]
    root: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// A table, the failures' details and the capability report.
    Table,
    /// The whole report as JSON.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OperationArg {
    Chat,
    ChatStream,
    Embed,
    Models,
}

/// Runs the command; `Ok(false)` when a case failed (the report is written either way).
pub async fn run(command: ConformanceCommand, out: &mut dyn Write) -> Result<bool, Error> {
    match command {
        ConformanceCommand::Replay { provider, common } => {
            let report = replay(provider.as_deref(), &common).await?;
            emit(&report, common.format, out)
        }
        ConformanceCommand::Run { endpoint, oversize_tokens, common } => {
            let mut options = live_options(&endpoint, common.timeout)?;
            options.case_glob = common.case.clone();
            options.concurrency = common.concurrency;
            options.oversize_tokens = oversize_tokens;
            root(&common.root)?;
            let total = switchyard::conformance::live::count(&common.root, &options)?;
            let bar = progress(total as u64, &format!("{} at {}", endpoint.provider, endpoint.base_url));
            let report = switchyard::conformance::live::run(&common.root, &options, |case| tick(&bar, case)).await?;
            bar.finish_and_clear();
            emit(&report, common.format, out)
        }
        ConformanceCommand::Record { endpoint, name, input, operation, description, force, root, timeout } => {
            self::root(&root)?;
            let live = live_options(&endpoint, timeout)?;
            let options = RecordOptions {
                live,
                root,
                case: name,
                input,
                operation: operation.map(|o| match o {
                    OperationArg::Chat => Operation::Chat,
                    OperationArg::ChatStream => Operation::ChatStream,
                    OperationArg::Embed => Operation::Embed,
                    OperationArg::Models => Operation::Models,
                }),
                description,
                force,
            };
            let recorded = switchyard::conformance::record::record(&options).await?;
            writeln!(out, "recorded {}: {}", recorded.dir.display(), recorded.files.join(", ")).map_err(io)?;
            let report = Report { mode: "replay".into(), target: "the new case".into(), cases: vec![recorded.replay] };
            write!(out, "{}", report.table()).map_err(io)?;
            Ok(report.failed() == 0)
        }
    }
}

fn io(err: std::io::Error) -> Error {
    Error::Config(format!("cannot write the report: {err}"))
}

fn live_options(endpoint: &Endpoint, timeout: u64) -> Result<LiveOptions, Error> {
    let mut options = LiveOptions::new(&endpoint.provider, &endpoint.base_url);
    options.api_key = match &endpoint.api_key_env {
        Some(var) => Some(
            std::env::var(var).map_err(|_| Error::Config(format!("--api-key-env {var}: the variable is not set")))?,
        ),
        None => None,
    };
    options.model = endpoint.model.clone();
    options.embedding_model = endpoint.embedding_model.clone();
    options.timeout = Duration::from_secs(timeout.max(1));
    Ok(options)
}

/// The cases folder, or a clear error when it is not there.
fn root(root: &std::path::Path) -> Result<(), Error> {
    if root.join("inputs").is_dir() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "no conformance cases at `{}`: run from a Switchyard checkout, or pass --root path/to/switchyard/conformance",
            root.display()
        )))
    }
}

async fn replay(provider: Option<&str>, common: &Common) -> Result<Report, Error> {
    root(&common.root)?;
    let cases = switchyard::conformance::discover(&common.root)?;
    if let Some(provider) = provider
        && !cases.iter().any(|c| c.provider == provider)
    {
        return Err(Error::Config(format!("no recorded cases for `{provider}` under {}", common.root.display())));
    }
    let by_id: HashMap<String, switchyard::conformance::Case> = cases.iter().map(|c| (c.id(), c.clone())).collect();
    let selected: Vec<_> = cases
        .into_iter()
        .filter(|c| provider.is_none_or(|p| c.provider == p))
        .filter(|c| common.case.as_deref().is_none_or(|g| glob_match(g, &c.id())))
        .collect();
    let bar = progress(selected.len() as u64, "recorded cases");
    let by_id = std::sync::Arc::new(by_id);
    let runtime = tokio::runtime::Handle::current();
    // Each case on a thread of its own: wiremock's servers verify themselves when dropped by
    // blocking the thread, which must not be one that other cases' futures run on.
    let mut results: Vec<CaseReport> = futures_util::stream::iter(selected)
        .map(|case| {
            let (by_id, runtime, bar) = (by_id.clone(), runtime.clone(), bar.clone());
            async move {
                let id = case.id();
                let (provider, capability) = (case.provider.clone(), case.capability().to_string());
                let joined = tokio::task::spawn_blocking(move || runtime.block_on(check_case(&case, &by_id))).await;
                let report = joined.unwrap_or_else(|e| {
                    let check =
                        switchyard::conformance::report::Check::fail("replay", format!("the replay panicked: {e}"));
                    CaseReport::new(id, &provider, &capability, vec![check], 0.0)
                });
                tick(&bar, &report);
                report
            }
        })
        .buffer_unordered(common.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    results.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Report { mode: "replay".into(), target: common.root.display().to_string(), cases: results })
}

fn progress(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

fn tick(bar: &indicatif::ProgressBar, case: &CaseReport) {
    bar.set_message(case.id.clone());
    bar.inc(1);
}

fn emit(report: &Report, format: ReportFormat, out: &mut dyn Write) -> Result<bool, Error> {
    match format {
        ReportFormat::Table => {
            write!(out, "{}", report.table()).map_err(io)?;
            write!(out, "\ncapabilities ({}):\n{}", report.mode, report.capabilities_text()).map_err(io)?;
        }
        ReportFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&report.json()).unwrap_or_default()).map_err(io)?;
        }
        ReportFormat::Junit => write!(out, "{}", report.junit()).map_err(io)?,
    }
    Ok(report.failed() == 0)
}
