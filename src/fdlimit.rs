//! Descriptor budget: the soft `RLIMIT_NOFILE` is raised to the hard limit at start-up and
//! the connection caps are lowered to fit in it, so that running out of descriptors
//! answers `503` at the caps instead of failing accepts, log writes and uploads.

use crate::config::Config;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Descriptors kept for everything but client sockets: the store's files, the log, the
/// listeners, attachment files being written or read, mail connections.
pub const RESERVED: u64 = 64;

/// Raises the soft descriptor limit to the hard one; returns the soft limit in force.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        let soft = lim.rlim_cur as u64;
        soft
    }
}

/// The caps that fit in `nofile` descriptors, as (protocol connections, HTTP connections,
/// attachment files streamed at once). HTTP gets at most a quarter, streamed files at most
/// an eighth (and 1024), the protocol port what is left after [`RESERVED`]. Each is at
/// least 1; an HTTP cap of 0 (no configured cap) gets the quarter.
pub fn caps(nofile: u64, max_connections: usize, http_max: usize) -> (usize, usize, usize) {
    let http_max = if http_max == 0 {
        u64::MAX
    } else {
        http_max as u64
    };
    let http = http_max.min(nofile / 4).max(1);
    let files = MAX_STREAMED_FILES.min(nofile / 8).max(1);
    let tcp = (max_connections as u64)
        .min(nofile.saturating_sub(RESERVED + http + files))
        .max(1);
    (tcp as usize, http as usize, files as usize)
}

/// Most attachment files streamed at once, whatever the descriptor limit.
const MAX_STREAMED_FILES: u64 = 1024;

static STREAMED_FILES: OnceLock<Arc<Semaphore>> = OnceLock::new();

/// Permits to hold an attachment file open while its reply is streamed: GET ATTACHMENT
/// takes one before it opens a large file, so open files stay within their share of the
/// descriptors however many connections download at once.
pub fn streamed_files() -> &'static Arc<Semaphore> {
    STREAMED_FILES.get_or_init(|| Arc::new(Semaphore::new(MAX_STREAMED_FILES as usize)))
}

/// Raises the limit and lowers `[server] max_connections` and `[limits]
/// http_max_connections` to what fits; sizes [`streamed_files`]; logs the result.
pub fn apply(cfg: &mut Config) {
    let nofile = raise_nofile();
    let (tcp, http, files) = caps(
        nofile,
        cfg.server.max_connections,
        cfg.limits.http_max_connections,
    );
    // A TLS line connection holds three descriptors: the socket and the pair its relay
    // hands to the connection loop (src/tls.rs).
    let tcp = if cfg.server.tls_cert.is_some() {
        let left = nofile.saturating_sub(RESERVED + http as u64 + files as u64);
        tcp.min((left / 3).max(1) as usize)
    } else {
        tcp
    };
    let _ = STREAMED_FILES.set(Arc::new(Semaphore::new(files)));
    // Lowering a default to fit is the normal case (20 000 connections need more than the
    // usual 20 000 descriptors); only a cap the operator raised and cannot have is a warning.
    let defaults = crate::config::Config::default();
    let configured = cfg.server.max_connections != defaults.server.max_connections
        || cfg.limits.http_max_connections != defaults.limits.http_max_connections;
    if configured && (tcp < cfg.server.max_connections || http < cfg.limits.http_max_connections) {
        tracing::warn!(
            nofile,
            max_connections = tcp,
            http_max_connections = http,
            streamed_files = files,
            configured_max_connections = cfg.server.max_connections,
            configured_http_max_connections = cfg.limits.http_max_connections,
            "descriptor limit: connection caps lowered to fit"
        );
    } else {
        tracing::debug!(
            nofile,
            max_connections = tcp,
            http_max_connections = http,
            streamed_files = files,
            "descriptor limit"
        );
    }
    cfg.server.max_connections = tcp;
    cfg.limits.http_max_connections = http;
}

#[cfg(test)]
mod tests {
    use super::caps;

    #[test]
    fn caps_fit_the_limit() {
        assert_eq!(caps(1024, 20_000, 1024), (576, 256, 128));
        assert_eq!(caps(20_000, 20_000, 1024), (17_888, 1024, 1024));
        assert_eq!(caps(1_048_576, 20_000, 1024), (20_000, 1024, 1024));
        let (tcp, http, files) = caps(100, 20_000, 1024);
        assert!(tcp + http + files <= 100 && tcp >= 1 && http >= 1 && files >= 1);
        assert_eq!(caps(10, 5, 5), (1, 2, 1));
        assert_eq!(caps(1024, 20_000, 0), (576, 256, 128));
    }
}
