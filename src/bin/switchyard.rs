//! The `switchyard` command: chat, embeddings and models from the shell, and spec tooling.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[path = "switchyard/conformance.rs"]
mod conformance;
use switchyard::spec::openai::ChatCompletionStreamOptions;
use switchyard::{ChatMessage, ChatRequest, Client, EmbeddingRequest, Error, ProviderKind, ProviderSettings};

#[derive(Parser)]
#[command(name = "switchyard", version, about = "One OpenAI-shaped interface to many LLM providers.")]
struct Cli {
    /// Log what happens (repeat for more); `RUST_LOG` works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send one chat request and print the answer.
    Chat(ChatArgs),
    /// Embed texts and print one vector per line.
    Embed(EmbedArgs),
    /// List the models a provider offers.
    Models {
        /// Provider id (`openai`, `groq`, `mock`, ...).
        provider: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the providers this build knows, with their API base and key variables.
    Providers,
    /// Run the OpenAI-compatible gateway (with no config: the mock provider's models).
    Serve(ServeArgs),
    /// Serve the built-in mock provider as an OpenAI-format HTTP upstream (load and
    /// end-to-end tests).
    MockUpstream {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Port to listen on.
        #[arg(long, default_value_t = 4010)]
        port: u16,
        /// Milliseconds to wait before each answer.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Commit a fault in every answer. In what it says, for the conformance checks to
        /// catch: wrong-finish-reason, broken-stream, bad-tool-arguments, missing-usage. On
        /// the wire, for a gateway to survive: hang-before-headers, stall-mid-body, drip,
        /// reset, oversize-line, redirect, huge-retry-after, html-200.
        #[arg(long)]
        misbehave: Option<String>,
    },
    /// Conformance: replay the recorded cases, run them live against an endpoint, record new ones.
    Conformance {
        #[command(subcommand)]
        command: conformance::ConformanceCommand,
    },
    /// Work with the API descriptions in `openapi/`.
    Spec {
        #[command(subcommand)]
        command: SpecCommand,
    },
}

#[derive(Args)]
struct Connection {
    /// API base to use instead of the provider's (any OpenAI-compatible server with `openai/...`).
    #[arg(long)]
    base_url: Option<String>,
    /// Environment variable holding the API key, instead of the provider's usual one.
    #[arg(long)]
    api_key_env: Option<String>,
    /// Provider for bare model names that are not OpenAI's (`llama3` with `ollama`).
    #[arg(long)]
    default_provider: Option<String>,
}

#[derive(Args)]
struct ChatArgs {
    /// Model as `provider/model`; `mock/echo` answers with no key and no network.
    #[arg(short, long, default_value = "mock/echo")]
    model: String,
    /// A system message.
    #[arg(short, long)]
    system: Option<String>,
    /// Print the answer as it streams.
    #[arg(long)]
    stream: bool,
    /// Print the whole response as JSON (with --stream, one chunk per line).
    #[arg(long)]
    json: bool,
    /// Sampling temperature.
    #[arg(long)]
    temperature: Option<f64>,
    /// Most tokens to generate.
    #[arg(long)]
    max_tokens: Option<i64>,
    #[command(flatten)]
    connection: Connection,
    /// The prompt; `-` or nothing reads it from standard input.
    prompt: Vec<String>,
}

#[derive(Args)]
struct EmbedArgs {
    /// Model as `provider/model`.
    #[arg(short, long, default_value = "mock/embed")]
    model: String,
    /// Dimensions to ask for, where the model supports it.
    #[arg(long)]
    dimensions: Option<i64>,
    #[command(flatten)]
    connection: Connection,
    /// The texts to embed.
    #[arg(required = true)]
    texts: Vec<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// A config in LiteLLM's config.yaml shape; without one, the mock provider's models
    /// `echo`, `tools` and `embed` are served.
    #[arg(long, short, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "SWITCHYARD_HOST")]
    host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 4000, env = "SWITCHYARD_PORT")]
    port: u16,
    /// Event loops (threads) serving connections; by default one per core.
    #[arg(long, env = "SWITCHYARD_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
}

#[derive(Subcommand)]
enum SpecCommand {
    /// Compare one of our descriptions with an upstream one (OpenAPI 3.0/3.1 in YAML or JSON,
    /// or a botocore service model): `--spec` and `--upstream`, or `--provider` for the pairs
    /// the project keeps drift snapshots of.
    Drift(DriftArgs),
    /// The schemas and fields each of our descriptions defines.
    List {
        /// One description (default: every `openapi/*.yaml`).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// `switchyard spec drift`'s arguments.
#[derive(Args)]
struct DriftArgs {
    /// Our description (`openapi/openai.yaml`).
    #[arg(long, required_unless_present_any = ["provider", "list"], requires = "upstream")]
    spec: Option<PathBuf>,
    /// The upstream description.
    #[arg(long, required_unless_present_any = ["provider", "list"])]
    upstream: Option<PathBuf>,
    /// Compare only the schemas this file maps (`OurSchema: UpstreamPath` lines), for a
    /// vendor that speaks another provider's format.
    #[arg(long, conflicts_with = "provider")]
    map: Option<PathBuf>,
    /// One of the kept pairs (the providers whose descriptor names an upstream
    /// description; `--list` prints them).
    #[arg(long, conflicts_with_all = ["spec", "upstream"])]
    provider: Option<String>,
    /// Print the providers of the kept pairs, one per line, and compare nothing.
    #[arg(long, conflicts_with_all = ["spec", "upstream", "provider"])]
    list: bool,
    /// Where the upstream descriptions are, with `--provider`.
    #[arg(long, env = "SWITCHYARD_UPSTREAM_SPECS", default_value = "../shared/specs")]
    upstream_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    // The gateway runs its own event loops, one per core, this thread's among them (see
    // `serve_on_workers`); every other command runs on a work-stealing runtime.
    let builder = match &cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    };
    let runtime = match builder {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`switchyard ... | head`): stop quietly, as Unix tools do.
        Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(Failure::Sdk(err)) => fail(&describe(&err)),
        Err(Failure::Failed) => ExitCode::FAILURE,
    }
}

/// Why a command stopped early.
enum Failure {
    Sdk(Error),
    /// Standard output was closed by its reader.
    Closed,
    /// A conformance run found failures (its report says which).
    Failed,
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Sdk(err)
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Sdk(Error::Config(format!("cannot write the output: {err}")))
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Chat(args) => chat(args, &mut out).await,
        Command::Embed(args) => embed(args, &mut out).await,
        Command::Models { provider, connection } => {
            let kind: ProviderKind = provider.parse()?;
            let client = client_for(&connection, Some(kind))?;
            for model in client.models(kind).await?.data {
                writeln!(out, "{}", model.id)?;
            }
            Ok(())
        }
        Command::Providers => providers(&mut out),
        Command::Serve(args) => serve(args).await,
        Command::Conformance { command } => {
            if conformance::run(command, &mut out).await? {
                Ok(())
            } else {
                Err(Failure::Failed)
            }
        }
        Command::MockUpstream { host, port, latency_ms, misbehave } => {
            mock_upstream(std::net::SocketAddr::new(host, port), latency_ms, misbehave).await
        }
        Command::Spec { command: SpecCommand::List { spec, format } } => spec_list(spec, format, &mut out),
        Command::Spec { command: SpecCommand::Drift(args) } if args.list => {
            for pair in switchyard::drift::upstreams() {
                writeln!(out, "{}", pair.provider)?;
            }
            Ok(())
        }
        Command::Spec { command: SpecCommand::Drift(args) } => spec_drift(args, &mut out),
    }
}

/// `switchyard mock-upstream`: the built-in mock provider over HTTP, until a signal.
async fn mock_upstream(addr: std::net::SocketAddr, latency_ms: u64, misbehave: Option<String>) -> Result<(), Failure> {
    let misbehaviour = match misbehave.as_deref() {
        None => None,
        Some(name) => Some(switchyard::gateway::mock_upstream::Misbehaviour::from_name(name).ok_or_else(|| {
            let names: Vec<&str> =
                switchyard::gateway::mock_upstream::Misbehaviour::ALL.iter().map(|(n, _)| *n).collect();
            Error::Config(format!("--misbehave {name}: choose one of {}", names.join(", ")))
        })?),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let fault = misbehave.map(|m| format!(", misbehaving: {m}")).unwrap_or_default();
    eprintln!("mock upstream on http://{addr}/v1 (latency {latency_ms} ms{fault})");
    let app =
        switchyard::gateway::mock_upstream::misbehaving(std::time::Duration::from_millis(latency_ms), misbehaviour);
    axum::serve(switchyard::gateway::no_delay(listener), app)
        .with_graceful_shutdown(switchyard::gateway::shutdown_signal())
        .await
        .map_err(|e| Error::Config(format!("server: {e}")))?;
    Ok(())
}

/// `switchyard spec list`: the schemas and fields of our descriptions.
fn spec_list(spec: Option<PathBuf>, format: Format, out: &mut impl Write) -> Result<(), Failure> {
    let specs = match spec {
        Some(spec) => vec![spec],
        None => {
            let mut found: Vec<PathBuf> = std::fs::read_dir("openapi")
                .map_err(|e| Error::Config(format!("openapi/: {e} (run from the crate root, or give --spec)")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            found.sort();
            found
        }
    };
    let mut all = serde_json::Map::new();
    for spec in &specs {
        let schemas = switchyard::drift::list(spec)?;
        match format {
            Format::Text => write!(out, "{}", switchyard::drift::list_text(spec, &schemas))?,
            Format::Json => {
                all.insert(spec.display().to_string(), serde_json::to_value(&schemas).unwrap_or_default());
            }
        }
    }
    if let Format::Json = format {
        writeln!(out, "{}", serde_json::to_string_pretty(&all).unwrap_or_default())?;
    }
    Ok(())
}

/// `switchyard spec drift`: one of our descriptions against an upstream one.
fn spec_drift(args: DriftArgs, out: &mut impl Write) -> Result<(), Failure> {
    let DriftArgs { spec, upstream, map, provider, upstream_dir, format, .. } = args;
    let report = match (provider, spec, upstream) {
        (Some(provider), _, _) => {
            let pair = switchyard::drift::upstreams().find(|u| u.provider == provider).ok_or_else(|| {
                let known: Vec<&str> = switchyard::drift::upstreams().map(|u| u.provider).collect();
                Error::Config(format!("no kept drift pair for `{provider}` (known: {})", known.join(", ")))
            })?;
            switchyard::drift::drift_mapped(
                std::path::Path::new(pair.spec),
                &upstream_dir.join(pair.upstream),
                pair.map.map(std::path::Path::new),
            )?
        }
        (None, Some(spec), Some(upstream)) => switchyard::drift::drift_mapped(&spec, &upstream, map.as_deref())?,
        _ => return Err(Error::Config("give --provider, or --spec and --upstream".into()).into()),
    };
    match format {
        Format::Text => write!(out, "{report}")?,
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report).unwrap_or_default())?,
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    use secrecy::ExposeSecret as _;
    use switchyard::gateway::{Config, Gateway};
    let started = Instant::now();
    let env = |name: &str| std::env::var(name).ok();
    let gateway = match &args.config {
        Some(path) => {
            let config = Config::load(path)?;
            let unsupported = config.unsupported_keys();
            if !unsupported.is_empty() {
                eprintln!("warning: {} does not act on these config keys: {}", path.display(), unsupported.join(", "));
            }
            Gateway::from_config(&config, &env).await?
        }
        None => Gateway::with_defaults(&env).await?,
    };
    let addr = std::net::SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    eprintln!("switchyard gateway on http://{addr} serving {}", gateway.router().groups().join(", "));
    if gateway.master_key_was_generated() {
        eprintln!(
            "master key (generated; set SWITCHYARD_MASTER_KEY to choose one): {}",
            gateway.master_key().expose_secret()
        );
    }
    eprintln!("ready in {} ms", started.elapsed().as_millis());
    let workers = args.workers.map_or_else(switchyard::gateway::default_workers, usize::from);
    switchyard::gateway::serve_on_workers(gateway, listener, workers, switchyard::gateway::shutdown_signal()).await?;
    Ok(())
}

async fn chat(args: ChatArgs, out: &mut impl Write) -> Result<(), Failure> {
    let prompt = prompt(&args.prompt)?;
    let default = args.connection.default_provider.as_deref().map(str::parse).transpose()?;
    let kind = switchyard::ModelRef::parse_with_default(&args.model, default)?.provider;
    let client = client_for(&args.connection, Some(kind))?;
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage::system(system));
    }
    messages.push(ChatMessage::user(prompt));
    let mut request = ChatRequest::new(args.model.clone(), messages);
    request.temperature = args.temperature;
    request.max_tokens = args.max_tokens;
    let started = Instant::now();
    let usage = if args.stream {
        request.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
            extra: Default::default(),
        });
        let mut stream = client.chat_stream(&request).await?;
        let mut usage = None;
        while let Some(chunk) = stream.next_chunk().await {
            let chunk = chunk?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string(&chunk).unwrap_or_default())?;
            } else {
                for choice in &chunk.choices {
                    write!(out, "{}", choice.delta.content.as_deref().unwrap_or(""))?;
                }
            }
            out.flush()?;
            if let Some(u) = chunk.usage.as_ref() {
                usage = Some(u.clone());
            }
        }
        if !args.json {
            writeln!(out)?;
        }
        usage
    } else {
        let response = client.chat(&request).await?;
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&response).unwrap_or_default())?;
        } else {
            writeln!(out, "{}", response.text().unwrap_or_default())?;
            for call in response.tool_calls() {
                if let Some(f) = &call.function {
                    writeln!(out, "[tool call {}: {}({})]", call.id, f.name, f.arguments)?;
                }
            }
        }
        response.usage
    };
    if std::io::stderr().is_terminal() || !args.json {
        let tokens = usage
            .map(|u| format!("{} prompt + {} completion tokens", u.prompt_tokens, u.completion_tokens))
            .unwrap_or_else(|| "no usage reported".into());
        // A closed standard error is no reason to fail a request that succeeded.
        let _ = writeln!(
            std::io::stderr(),
            "[{} · {tokens} · {:.1} ms]",
            args.model,
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

async fn embed(args: EmbedArgs, out: &mut impl Write) -> Result<(), Failure> {
    let kind = switchyard::ModelRef::parse(&args.model)?.provider;
    let client = client_for(&args.connection, Some(kind))?;
    let mut request = EmbeddingRequest::new(args.model, args.texts);
    request.dimensions = args.dimensions;
    for embedding in client.embed(&request).await?.data {
        let vector = embedding.vector().unwrap_or_default();
        writeln!(out, "{}", serde_json::to_string(&vector).unwrap_or_default())?;
    }
    Ok(())
}

fn client_for(connection: &Connection, kind: Option<ProviderKind>) -> Result<Client, Error> {
    let mut builder = Client::builder();
    if let Some(default) = &connection.default_provider {
        builder = builder.default_provider(default.parse()?);
    }
    if let Some(kind) = kind {
        let mut settings = ProviderSettings::default();
        settings.base_url.clone_from(&connection.base_url);
        if let Some(var) = &connection.api_key_env {
            let key = std::env::var(var).map_err(|_| Error::Config(format!("{var} is not set")))?;
            settings.api_key = Some(key.into());
        }
        builder = builder.provider(kind, settings);
    }
    builder.build()
}

fn prompt(words: &[String]) -> Result<String, Error> {
    if !words.is_empty() && words != ["-"] {
        return Ok(words.join(" "));
    }
    if std::io::stdin().is_terminal() {
        return Err(Error::Config("give a prompt, or pipe one in".into()));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| Error::Config(format!("reading the prompt: {e}")))?;
    Ok(text.trim_end().to_string())
}

fn providers(out: &mut impl Write) -> Result<(), Failure> {
    writeln!(out, "{:<14} {:<42} key", "id", "API base")?;
    for kind in ProviderKind::all() {
        let (base, key) = match kind {
            ProviderKind::Compat(v) => {
                let base =
                    if v.base_url.is_empty() { format!("{} (required)", v.base_env()) } else { v.base_url.to_string() };
                let key = if v.key_required {
                    v.key_env.join(" or ")
                } else {
                    format!("optional ({})", v.key_env.join(" or "))
                };
                (base, key)
            }
            native => native
                .descriptor()
                .map_or_else(Default::default, |d| (d.base_shown.to_string(), d.key_shown.to_string())),
        };
        writeln!(out, "{:<14} {base:<42} {key}", kind.id())?;
    }
    Ok(())
}

fn describe(err: &Error) -> String {
    match err.api() {
        Some(api) => format!("{err}\n  kind: {}, retryable: {}", api.kind.name(), err.is_retryable()),
        None => err.to_string(),
    }
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::FAILURE
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "switchyard=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
