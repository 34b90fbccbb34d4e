//! The `webissued` command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use webissued::{app::App, config::Config};

#[derive(Parser)]
#[command(
    name = "webissued",
    version,
    about = "WebIssues 0.8 issue-tracker server"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (no config file needed: every setting has a default).
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Protocol listen address (overrides [server] listen).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (overrides [server] data_dir).
        #[arg(long)]
        data: Option<PathBuf>,
        /// HTTP listen address for subscription pages (overrides [server] http_listen).
        #[arg(long)]
        http_listen: Option<String>,
    },
    /// Run conformance transcripts against a running, freshly initialised server.
    Conformance {
        /// Server address, e.g. 127.0.0.1:4080.
        addr: String,
        /// Transcript files (tests/conformance/*.txt).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Load generator and benchmark helpers (scripts/bench runs the full comparison).
    Bench(webissued::bench::BenchArgs),
    /// Data-directory tools: export, import, check, backup (webissued::tools).
    #[command(flatten)]
    Tool(webissued::tools::Tool),
    /// Recover from a damaged write-ahead log: keep every record before the damage, set the
    /// damaged file aside, say what was lost (the server must be stopped).
    Salvage {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    return_large_blocks_to_the_system();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Cmd::Serve {
            config,
            listen,
            data,
            http_listen,
        } => match serve(config, listen, data, http_listen) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("webissued: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Cmd::Conformance { addr, files } => conformance(&addr, &files),
        Cmd::Bench(args) => webissued::bench::main(args),
        Cmd::Tool(tool) => webissued::tools::main(tool),
        Cmd::Salvage { data } => salvage(&data),
    }
}

/// `webissued salvage`: under the data directory's lock, so never beside a running server.
fn salvage(data: &std::path::Path) -> std::process::ExitCode {
    let result =
        webissued::datadir::lock(data).and_then(|_lock| webissued::store::recovery::salvage(data));
    match result {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("webissued: salvage: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs each transcript; the admin password comes from WEBISSUED_ADMIN_PASSWORD.
fn conformance(addr: &str, files: &[PathBuf]) -> std::process::ExitCode {
    let password = std::env::var("WEBISSUED_ADMIN_PASSWORD").unwrap_or_else(|_| "secret".into());
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let result = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| webissued::conformance::run(addr, &text, &password));
        match result {
            Ok(n) => {
                passed += 1;
                println!("ok   {} ({n} commands)", file.display());
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", file.display());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<String>,
    data: Option<PathBuf>,
    http_listen: Option<String>,
) -> Result<(), String> {
    let mut cfg = match config {
        Some(path) => Config::load(&path)?,
        None => Config::default(),
    };
    if let Some(l) = listen {
        cfg.server.listen = l;
    }
    if let Some(d) = data {
        cfg.server.data_dir = d;
    }
    if let Some(h) = http_listen {
        cfg.server.http_listen = h;
    }
    // Before anything in the directory is read or written; held until serve returns.
    let _lock = webissued::datadir::lock(&cfg.server.data_dir)?;
    webissued::fdlimit::apply(&mut cfg);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if cfg.server.workers > 0 {
        runtime.worker_threads(cfg.server.workers);
    }
    let runtime = runtime.build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        // The pages confirm subscriptions and `email` preferences, and serve /metrics.
        // Bound before the store opens so that the links in mails can name the port chosen
        // when listening on port 0.
        if cfg.server.metrics {
            webissued::metrics::global().enable();
        }
        let http = if cfg.subscribe.enabled || cfg.notify.enabled || cfg.server.metrics {
            let l = tokio::net::TcpListener::bind(&cfg.server.http_listen)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", cfg.server.http_listen))?;
            let addr = l.local_addr().map_err(|e| e.to_string())?;
            cfg.server.http_listen = addr.to_string();
            Some((l, addr))
        } else {
            None
        };
        let app = App::open(cfg).map_err(|e| format!("cannot open the data directory: {e}"))?;
        let listener = tokio::net::TcpListener::bind(&app.config.server.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", app.config.server.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Scripts and tests read this line to find the port when listening on port 0; it
        // must stay the first line on stdout.
        println!("webissued listening on {addr}");
        tracing::info!(%addr, data = %app.config.server.data_dir.display(), "listening");
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let http_task = http.map(|(l, http_addr)| {
            println!("webissued http listening on {http_addr}");
            tracing::info!(%http_addr, "http listening");
            let app = app.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                };
                if let Err(e) = webissued::http::serve(app, l, stop).await {
                    tracing::error!(error = %e, "http listener failed");
                }
            })
        });
        let shutdown = async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        };
        let result = webissued::server::run(app, listener, shutdown)
            .await
            .map_err(|e| e.to_string());
        if let Some(t) = http_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        result
    })
}

/// Makes glibc serve allocations of 128 KiB and more with mmap, and give them back when
/// freed. Otherwise glibc raises that threshold after the first freed 19 MiB argon2 block
/// and keeps every later one in per-thread arenas: gigabytes after a burst of logins.
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
