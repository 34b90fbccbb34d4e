//! Offline administration of a data directory (`webissued admin ...`): what an operator needs
//! when no administrator can log in any more, e.g. a lost `admin` password.
//!
//! It takes the data directory's lock like a server does, so it refuses to run while a
//! server holds the directory (two writers would each rewrite the other's log).

use crate::store::{Options, Store, key_str, users};
use std::path::Path;

/// Sets the password of the user `login` in the data directory `dir`, durably.
pub fn set_password(dir: &Path, login: &str, password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("the new password is empty".into());
    }
    if !dir.join("db").is_dir() {
        return Err(format!(
            "{} holds no webissued data (no db/ inside); start the server once to create it",
            dir.display()
        ));
    }
    let _lock = crate::datadir::lock(dir)?;
    let store = Store::open_then(dir, Options::default(), Box::new(|_| {}))
        .map_err(|e| format!("cannot open the data directory {}: {e}", dir.display()))?;
    let result = (|| {
        if store
            .get_early::<String>(&key_str("meta", "uuid"))
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err(format!("{} was never initialised", dir.display()));
        }
        let hash = crate::password::hash(password);
        store
            .write(|w| {
                let Some(old) = users::by_login(w, login)? else {
                    return Ok(false);
                };
                let new = users::User {
                    password: hash,
                    ..old.clone()
                };
                users::update(w, &old, &new)?;
                Ok(true)
            })
            .map_err(|e| e.to_string())
            .and_then(|(found, _)| {
                if found {
                    Ok(())
                } else {
                    Err(format!("no user with login '{login}' in {}", dir.display()))
                }
            })?;
        store.flush_now().map_err(|e| e.to_string())
    })();
    let closed = store.close().map_err(|e| e.to_string());
    result.and(closed)
}
