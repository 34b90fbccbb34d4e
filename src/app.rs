//! A running server: opens the data directory, builds what commands share
//! ([`Shared`]), the TLS setup, and wires the notification task.

use crate::commands::Shared;
use crate::commands::shared::attachments_dir;
use crate::config::Config;
use crate::error::Result;
use crate::store::{Store, issues, key_str, types, users};
use std::sync::Arc;

pub struct App {
    /// What the commands of every connection share (store, config, caches, throttle, mail
    /// handles); `App` derefs to it, so front ends read `app.store` and `app.config`.
    pub shared: Shared,
    /// TLS for both listeners, when `[server] tls_cert` and `tls_key` are set.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

impl std::ops::Deref for App {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl App {
    /// Opens (or initialises) the data directory. On first start it creates the server
    /// administrator `admin`, with the password from `WEBISSUED_ADMIN_PASSWORD` or a random
    /// one printed once on stderr, and the predefined issue type "Bugs".
    pub fn open(config: Config) -> Result<Arc<App>> {
        let tls = crate::tls::Tls::from_config(&config.server)
            .map_err(|e| crate::error::Error::with(crate::error::Code::ServerError, e))?;
        // Files of uploads that never got recorded are removed once the data is loaded and
        // before any command runs (an upload writes its file before its record).
        let attachments = attachments_dir(&config);
        let sweep = Box::new(move |r: &crate::store::Reader| {
            match issues::sweep_orphan_files(r, &attachments) {
                Ok(0) => {}
                Ok(swept) => {
                    tracing::info!(swept, "removed attachment files of unfinished uploads")
                }
                Err(e) => tracing::warn!(error = %e, "sweeping attachment files failed"),
            }
        });
        let store = Store::open_then(
            &config.server.data_dir,
            crate::store::Options {
                cache_bytes: config.server.cache_mb << 20,
                checkpoint_bytes: config.server.checkpoint_wal_mb.max(1) << 20,
                checkpoint_age: std::time::Duration::from_secs(
                    config.server.checkpoint_secs.max(1),
                ),
                checkpoint_backlog_bytes: config.server.checkpoint_backlog_mb.max(1) << 20,
                compact_min_records: config.server.compact_min_records,
            },
            sweep,
        )?;
        let initial = config.server.initial_data.clone();
        if !["webissued", "webissues", "none"].contains(&initial.as_str()) {
            return Err(crate::error::Error::with(
                crate::error::Code::ServerError,
                format!(
                    "[server] initial_data = {initial:?}: expected \"webissued\", \"webissues\" or \"none\""
                ),
            ));
        }
        let uuid = match store.get_early::<String>(&key_str("meta", "uuid"))? {
            Some(u) => u,
            None => {
                let uuid = new_uuid();
                let password = std::env::var("WEBISSUED_ADMIN_PASSWORD").ok();
                let printed = password.is_none();
                let password = password.unwrap_or_else(random_password);
                let hash = crate::password::hash(&password);
                store.write(|w| {
                    users::insert(w, "admin", "Administrator", users::ACCESS_ADMIN, hash)?;
                    match initial.as_str() {
                        "webissued" => types::create_default_types(w)?,
                        "webissues" => crate::store::installer_types::create(w)?,
                        _ => {}
                    }
                    w.put(key_str("meta", "version"), &1u32)?;
                    w.put(key_str("meta", "uuid"), &uuid)
                })?;
                store.flush_now()?;
                if printed {
                    eprintln!("webissued: created user 'admin' with password '{password}'");
                }
                uuid
            }
        };
        // Subscriptions are delivered by the notification machinery (pass, outbox, worker),
        // so they are on only when both `[subscribe]` and `[notify]` are enabled.
        let subscriptions = (config.notify.enabled && config.subscribe.enabled)
            .then(|| crate::subscribe::mail::Context::new(&config));
        let notifier = if config.notify.enabled {
            // The file transport writes beside the data unless told otherwise.
            let mut mail = config.mail.clone();
            if mail.file_dir == crate::mail::MailConfig::default().file_dir {
                mail.file_dir = config.server.data_dir.join("mail");
            }
            let n = crate::notify::Notifier::new(
                &config.notify,
                &mail,
                &config.server.name,
                &config.server.timezone,
            )
            .map_err(|e| crate::error::Error::with(crate::error::Code::ServerError, e))?;
            let mut n = n;
            if let Some(ctx) = &subscriptions {
                n.enable_stop_links(&ctx.base_url);
                n.add_channel(Box::new(ctx.clone()));
            }
            store.enable_fanout(n.fanout.clone());
            Some(Arc::new(n))
        } else {
            None
        };
        let shared = Shared::new(
            config,
            Arc::new(store),
            uuid,
            notifier,
            subscriptions,
            crate::fdlimit::streamed_files().clone(),
        );
        let app = App { shared, tls };
        Ok(Arc::new(app))
    }

    /// Starts the notification task (when `[notify]` is on); it ends when `stop` turns true.
    pub fn spawn_notifier(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let (store, notifier) = (self.store.clone(), self.notifier.clone());
        tokio::spawn(async move {
            if let Some(notifier) = notifier {
                crate::notify::service::run(store, notifier, stop).await;
            }
        })
    }
}

/// A random (version 4) UUID in its text form.
fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_password() -> String {
    use rand::RngExt;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_has_version_and_variant() {
        let u = super::new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
