//! What the commands of every connection share: the store, the configuration, the caches
//! of encoded replies, the login throttle and the handles of the mail machinery. `App`
//! (app.rs) builds it at start and the front ends hand it to each command's `Cx`.

use super::issue_lines::IssueLines;
use super::projects::CatalogueCache;
use super::throttle::LoginThrottle;
use super::type_defaults::TypeDefaults;
use crate::attributes::DefinitionCache;
use crate::config::Config;
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub struct Shared {
    pub config: Config,
    pub store: Arc<Store>,
    /// RFC 4122 UUID made at first start and kept in the store.
    pub uuid: String,
    /// Failed-login counts per address and per account (abuse limit).
    pub throttle: LoginThrottle,
    /// The notification machinery; None when `[notify] enabled = false`.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// What subscription mails are made with; None unless `[subscribe]` and `[notify]`.
    pub subscriptions: Option<crate::subscribe::mail::Context>,
    /// LIST PROJECTS' encoded lines, shared by all connections.
    pub catalogue: CatalogueCache,
    /// LIST ISSUES' encoded lines of recently listed issues, shared by all connections.
    pub issue_lines: IssueLines,
    /// Attribute definitions parsed once, shared by all connections.
    pub definitions: DefinitionCache,
    /// Each issue type's attribute defaults, for ADD ISSUE.
    pub type_defaults: TypeDefaults,
    /// The descriptors kept for attachment files streamed to clients (sized by
    /// `crate::fdlimit` at start), so downloads cannot use them all up.
    pub streamed_files: Arc<Semaphore>,
}

impl Shared {
    /// The state of a server over `store`, with empty caches.
    pub fn new(
        config: Config,
        store: Arc<Store>,
        uuid: String,
        notifier: Option<Arc<crate::notify::Notifier>>,
        subscriptions: Option<crate::subscribe::mail::Context>,
        streamed_files: Arc<Semaphore>,
    ) -> Shared {
        Shared {
            throttle: LoginThrottle::new(&config.limits),
            config,
            store,
            uuid,
            notifier,
            subscriptions,
            catalogue: Default::default(),
            issue_lines: Default::default(),
            definitions: Default::default(),
            type_defaults: Default::default(),
            streamed_files,
        }
    }

    /// Where attachment bytes live, one file each, outside sled.
    pub fn attachments_dir(&self) -> std::path::PathBuf {
        attachments_dir(&self.config)
    }

    /// The optional features enabled by the configuration (LIST FEATURES).
    pub fn features(&self) -> Vec<&'static str> {
        let mut features = Vec::new();
        if self.notifier.is_some() {
            features.push("notify");
        }
        if self.subscriptions_enabled() {
            features.push("subscribe");
        }
        features.push("help");
        features
    }

    /// Whether subscriptions are on (`[subscribe]` and `[notify]`).
    pub fn subscriptions_enabled(&self) -> bool {
        self.subscriptions.is_some()
    }

    /// What subscription mails are made with, when the feature is on.
    pub fn subscriptions(
        &self,
    ) -> Option<(&crate::subscribe::mail::Context, &crate::mail::Templates)> {
        Some((
            self.subscriptions.as_ref()?,
            &self.notifier.as_deref()?.templates,
        ))
    }
}

/// Where uploaded files live: `attachments/` in the data directory.
pub fn attachments_dir(config: &Config) -> std::path::PathBuf {
    config.server.data_dir.join("attachments")
}
