//! The connections a listener has open, so that the shutdown can drain them: each
//! connection's task watches one stop flag, and the set is awaited up to a deadline, after
//! which what is left is cut. Both listeners (TCP in `server/`, HTTP in `http/`) keep
//! theirs here; `crate::shutdown` says when.

use std::future::Future;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub struct Connections {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections that finished on their own.
    pub finished: usize,
    /// Connections still open at the deadline, cut.
    pub cut: usize,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            tasks: JoinSet::new(),
            stop: watch::channel(false).0,
        }
    }
}

impl Connections {
    /// The flag a connection watches: it turns true when the drain starts.
    pub fn stop_flag(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Runs one connection's task (reaping finished ones, so the set stays small).
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        while self.tasks.try_join_next().is_some() {}
        self.tasks.spawn(task);
    }

    /// Tells every connection to finish what it has begun and close, waits for them until
    /// `deadline`, then cuts the rest.
    pub async fn drain(mut self, deadline: Instant) -> Drained {
        while self.tasks.try_join_next().is_some() {}
        self.stop.send_replace(true);
        let mut finished = 0;
        let all = async {
            while self.tasks.join_next().await.is_some() {
                finished += 1;
            }
        };
        let _ = tokio::time::timeout_at(deadline, all).await;
        let cut = self.tasks.len();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        Drained { finished, cut }
    }
}
