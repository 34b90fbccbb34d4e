//! What the load generator knows about the data on the server, learnt over the protocol
//! before the timed run (LIST TYPES, LIST PROJECTS, LIST ISSUES f 0), so a run works
//! against any seeded server without sharing files with the seeder.

use super::conn::{Conn, ReplyBytes};
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use webissued::attributes::{AttributeDef, AttributeKind};
use webissued::protocol::token::{self, Arg};

pub struct Folder {
    pub id: i64,
    pub type_id: i64,
    /// Stamps of the folder's issues, ascending: LIST ISSUES picks a recent one. Writes
    /// of the run add theirs ([`Folder::changed`]), as a syncing client would learn them.
    pub stamps: Mutex<Vec<i64>>,
}

/// Stamps a folder keeps beyond the newest ten LIST ISSUES picks from.
const KEPT_STAMPS: usize = 64;

impl Folder {
    /// One of the folder's ten newest stamps, minus one (LIST ISSUES then returns the
    /// issues changed since), or 0 for an empty folder.
    pub fn recent_since(&self, pick: impl FnOnce(usize) -> usize) -> i64 {
        let stamps = self.stamps.lock().unwrap();
        match stamps.len() {
            0 => 0,
            n => stamps[n - 1 - pick(n.min(10))] - 1,
        }
    }

    /// Records `stamp`, the new stamp of an issue of this folder (a write's `ID` reply).
    pub fn changed(&self, stamp: i64) {
        let mut stamps = self.stamps.lock().unwrap();
        let at = stamps.partition_point(|s| *s < stamp);
        stamps.insert(at, stamp);
        if stamps.len() > 2 * KEPT_STAMPS {
            let old = stamps.len() - KEPT_STAMPS;
            stamps.drain(..old);
        }
    }
}

/// An attribute the generator can set, with values its definition accepts.
pub struct Settable {
    pub id: i64,
    pub values: Vec<String>,
}

#[derive(Default)]
pub struct Model {
    pub folders: Vec<Folder>,
    /// (issue id, index into `folders`).
    pub issues: Vec<(i64, usize)>,
    pub settable: HashMap<i64, Vec<Settable>>,
}

/// The data lines of a reply as (keyword, arguments); lines that do not tokenize are skipped.
pub fn data_lines(r: &ReplyBytes) -> Vec<(String, Vec<Arg>)> {
    r.lines()
        .filter_map(|l| token::line(l).ok())
        .filter_map(|t| Some((t.keywords.first()?.to_string(), t.args)))
        .collect()
}

pub fn int(args: &[Arg], i: usize) -> i64 {
    match args.get(i) {
        Some(Arg::Int(n)) => *n,
        _ => 0,
    }
}

pub fn string(args: &[Arg], i: usize) -> &str {
    match args.get(i) {
        Some(Arg::Str(s)) => s,
        _ => "",
    }
}

/// Values that pass an attribute's validation, or none when the generator cannot make one
/// up (USER, DATETIME, NUMERIC attributes are left alone).
fn values_for(definition: &str) -> Vec<String> {
    match AttributeDef::parse(definition).map(|d| d.kind) {
        Ok(AttributeKind::Enum { items, .. }) => items,
        Ok(AttributeKind::Text { max_length, .. }) => (0..16)
            .map(|i| {
                let mut s = format!("value {i} it's");
                s.truncate(max_length);
                s
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl Model {
    /// Learns types, folders and issues through `conn` (logged in).
    pub async fn discover(conn: &mut Conn) -> io::Result<Model> {
        let mut m = Model::default();
        let types = conn.call(b"LIST TYPES").await?;
        for (kw, args) in data_lines(&types) {
            if kw == "A" {
                let values = values_for(string(&args, 3));
                if !values.is_empty() {
                    m.settable.entry(int(&args, 1)).or_default().push(Settable {
                        id: int(&args, 0),
                        values,
                    });
                }
            }
        }
        let projects = conn.call(b"LIST PROJECTS").await?;
        for (kw, args) in data_lines(&projects) {
            if kw == "F" {
                m.folders.push(Folder {
                    id: int(&args, 0),
                    type_id: int(&args, 3),
                    stamps: Mutex::new(Vec::new()),
                });
            }
        }
        let cmds = m
            .folders
            .iter()
            .map(|f| format!("LIST ISSUES {} 0", f.id).into_bytes());
        let replies = conn.pipeline(cmds.collect::<Vec<_>>(), 8).await?;
        for (fi, reply) in replies.iter().enumerate() {
            for (kw, args) in data_lines(reply) {
                if kw == "I" {
                    m.issues.push((int(&args, 0), fi));
                    m.folders[fi].stamps.get_mut().unwrap().push(int(&args, 3));
                }
            }
            m.folders[fi].stamps.get_mut().unwrap().sort_unstable();
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_moves_list_issues_to_its_stamp_and_the_list_stays_bounded() {
        let f = Folder {
            id: 1,
            type_id: 1,
            stamps: Mutex::new((1..=20).collect()),
        };
        assert_eq!(f.recent_since(|_| 0), 19, "newest seeded stamp, minus one");
        assert_eq!(f.recent_since(|n| n - 1), 10, "the tenth newest");
        f.changed(500);
        f.changed(400); // replies of concurrent writes may come out of order
        assert_eq!(f.recent_since(|_| 0), 499);
        assert_eq!(f.recent_since(|_| 1), 399);
        for s in 1000..1300 {
            f.changed(s);
        }
        let kept = f.stamps.lock().unwrap().clone();
        assert!(kept.len() <= 2 * KEPT_STAMPS, "{} stamps kept", kept.len());
        assert!(kept.is_sorted());
        assert_eq!(kept.last(), Some(&1299));
    }
}
