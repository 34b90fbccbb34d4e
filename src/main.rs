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
    #[command(after_help = SERVE_HELP)]
    Serve {
        /// TOML configuration file [default: none, every key has a default]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Protocol listen address, overrides [server] listen [default: 127.0.0.1:4080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Data directory, overrides [server] data_dir [default: ./data]
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// HTTP listen address: WebIssues over HTTP, subscription pages and stop links,
        /// overrides [server] http_listen [default: 127.0.0.1:4081]
        #[arg(long, value_name = "ADDR")]
        http_listen: Option<String>,
    },
    /// Offline administration of a data directory (refused while a server holds it).
    #[command(subcommand)]
    Admin(AdminCmd),
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

const SERVE_HELP: &str = "\
Environment:
  WEBISSUED_ADMIN_PASSWORD  password of the administrator 'admin', read only at the first
                            start of a data directory (else a random one is printed once)
  RUST_LOG                  log filter [default: webissued at info, dependencies at warn];
                            a bare level (debug) applies to webissued only

Configuration: every key and its default is in protocol-spec/configuration.md (mail:
notifications.md, subscriptions: subscriptions.md, limits: limits.md). Command-line
options override the file. A lost admin password: webissued admin set-password --help.";

#[derive(Subcommand)]
enum AdminCmd {
    /// Sets a user's password, e.g. a lost `admin` one. Reads the new password from
    /// WEBISSUED_ADMIN_PASSWORD when set, else one line from standard input.
    SetPassword {
        /// Data directory of the (stopped) server.
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        /// Login name of the user.
        user: String,
    },
}

fn main() -> std::process::ExitCode {
    return_large_blocks_to_the_system();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter(
            std::env::var("RUST_LOG").ok(),
            matches!(cli.command, Cmd::Admin(_)),
        )))
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
        Cmd::Admin(AdminCmd::SetPassword { data, user }) => match set_password(&data, &user) {
            Ok(()) => {
                eprintln!("webissued: password of '{user}' in {} set", data.display());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("webissued: {e}");
                std::process::ExitCode::FAILURE
            }
        },
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

/// The new password from WEBISSUED_ADMIN_PASSWORD, else the first line of stdin.
fn set_password(data: &std::path::Path, user: &str) -> Result<(), String> {
    let password = match std::env::var("WEBISSUED_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("new password for '{user}': ");
            }
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    webissued::admin::set_password(data, user, &password)
}

/// The log filter: the server's own lines at `info` (offline tools: `warn`), dependencies
/// (sled, hyper, lettre) at `warn`. A bare level in RUST_LOG (`debug`) sets the server's
/// level only; anything with a `=` or `,` is used as written.
fn log_filter(rust_log: Option<String>, tool: bool) -> String {
    match rust_log.map(|s| s.trim().to_string()) {
        Some(s) if s.contains('=') || s.contains(',') => s,
        Some(level) if !level.is_empty() => format!("warn,webissued={level}"),
        _ if tool => "warn".into(),
        _ => "warn,webissued=info".into(),
    }
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<String>,
    data: Option<PathBuf>,
    http_listen: Option<String>,
) -> Result<(), String> {
    let origin = webissued::startup::Origin::new(config.as_deref());
    let mut cfg = match &config {
        Some(path) => webissued::startup::load(path)?,
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
    // The whole configuration first: nothing is created before it is known to be valid.
    webissued::startup::check(&cfg, &origin)?;
    // A TLS setting that cannot work stops the start with its own message (App::open
    // loads the files again).
    webissued::tls::Tls::from_config(&cfg.server)?;
    // Both listeners before the data directory: a port in use stops the server before a
    // first start creates anything, and the links in mails can name the port actually chosen
    // when listening on port 0. The HTTP listener carries the WebIssues HTTP transport and
    // the pages that confirm subscriptions and `email` preferences.
    use webissued::startup::bind;
    let http = {
        let l = bind(
            &cfg.server.http_listen,
            "[server] http_listen or --http-listen",
        )?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        cfg.server.http_listen = addr.to_string();
        (l, addr)
    };
    let listener = bind(&cfg.server.listen, "[server] listen or --listen")?;
    // Before anything in the directory is read or written; held until serve returns.
    let _lock = webissued::datadir::lock(&cfg.server.data_dir)?;
    webissued::startup::check_data_dir(&cfg.server.data_dir)?;
    webissued::fdlimit::apply(&mut cfg);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if cfg.server.workers > 0 {
        runtime.worker_threads(cfg.server.workers);
    }
    let runtime = runtime.build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        if cfg.server.metrics {
            webissued::metrics::global().enable();
        }
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let http = (
            tokio::net::TcpListener::from_std(http.0).map_err(|e| e.to_string())?,
            http.1,
        );
        let data_dir = cfg.server.data_dir.clone();
        let app = App::open(cfg).map_err(|e| {
            format!(
                "cannot open the data directory {}: {e} (the cause is on the log line above)",
                data_dir.display()
            )
        })?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Scripts and tests read this line to find the port when listening on port 0; it
        // must stay the first line on stdout.
        println!("webissued listening on {addr}");
        // The one INFO line of a start.
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            %addr,
            http = %http.1,
            data = %app.config.server.data_dir.display(),
            mail = %app.notifier.as_ref().map_or("off", |n| n.mail_peer()),
            "started"
        );
        let (http, http_addr) = http;
        println!("webissued http listening on {http_addr}");
        // Serves until SIGTERM or SIGINT; shutdown.rs says the order things stop in.
        webissued::shutdown::run(app, listener, http, shutdown_signal()).await;
        Ok(())
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
