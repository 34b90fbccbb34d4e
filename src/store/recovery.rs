//! Telling a crash's torn tail from damage in the write-ahead log, and salvaging what can
//! be read from a damaged log (`webissued salvage`).
//!
//! The committer writes one flush at a time and starts a new file only after the last
//! flush to the old one succeeded, so a crash can only cut the newest file, within its last
//! flush, which was never acknowledged. A bad record anywhere else is damage: the records
//! after it were acknowledged and cannot be read. Sequences are consecutive across files
//! (a batch discarded after a failed write gives its sequence to the next one), so damage
//! after the last record of a closed file is harmless when the next file goes on at the next
//! sequence: nothing is missing.

use super::wal::{self, FileSummary};
use std::path::{Path, PathBuf};

/// One log file as read at start-up or by salvage.
pub struct Scanned {
    pub path: PathBuf,
    pub summary: FileSummary,
}

/// What a bad record in a log file means.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    /// The newest file ends in an unfinished record: a crash during its last flush.
    TornTail(usize),
    /// A closed file is damaged after its last record that matters: the next file goes on
    /// at the next sequence (or sled holds everything), so nothing is lost.
    Harmless(usize),
    /// Records after the damage may be lost: refuse to start.
    Damaged(usize),
}

/// The findings for `files` (oldest first), given that sled holds every batch up to
/// `folded`.
pub fn judge(files: &[Scanned], folded: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = folded;
    for (i, f) in files.iter().enumerate() {
        if f.summary.records > 0 {
            seen = seen.max(f.summary.last_seq);
        }
        if !f.summary.torn {
            continue;
        }
        if i + 1 == files.len() {
            out.push(Finding::TornTail(i));
            continue;
        }
        let next = files[i + 1..]
            .iter()
            .find(|g| g.summary.records > 0)
            .map(|g| g.summary.first_seq);
        out.push(match next {
            Some(n) if n <= seen + 1 => Finding::Harmless(i),
            _ => Finding::Damaged(i),
        });
    }
    out
}

/// The one-line refusal for damage in `f`.
pub fn refusal(f: &Scanned, data_dir: &Path) -> String {
    format!(
        "damaged log file {} at byte {} of {}: the records after it were acknowledged and \
         cannot be read; refusing to start. The file is kept. To start with what can be \
         read, stop here and run `webissued salvage --data {}` (RELIABILITY.md, \
         \"Damaged log\")",
        f.path.display(),
        f.summary.valid_bytes,
        f.summary.len,
        data_dir.display()
    )
}

/// Cuts the newest file back to its intact records, so that once a newer file exists the
/// torn tail cannot pass for damage.
pub fn cut_torn_tail(f: &Scanned) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(&f.path)?;
    file.set_len(f.summary.valid_bytes)?;
    file.sync_all()
}

/// A free name for `path` with `suffix` appended (`.damaged`, `.damaged.2`, ...).
fn aside_name(path: &Path, suffix: &str) -> PathBuf {
    let base = format!("{}{suffix}", path.display());
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            PathBuf::from(&base)
        } else {
            PathBuf::from(format!("{base}.{n}"))
        };
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

/// Keeps the damaged file as `<name>.damaged` and puts a copy of its intact records in its
/// place. At every moment the log name holds either the original or the copy (a hard link
/// keeps the original, a rename replaces it). Returns the kept file's name.
pub fn set_aside(f: &Scanned) -> std::io::Result<PathBuf> {
    let data = std::fs::read(&f.path)?;
    let dir = f.path.parent().unwrap_or(Path::new("."));
    let tmp = aside_name(&f.path, ".salvage");
    {
        use std::io::Write;
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(&data[..f.summary.valid_bytes as usize])?;
        out.sync_all()?;
    }
    let kept = aside_name(&f.path, ".damaged");
    std::fs::hard_link(&f.path, &kept)?;
    std::fs::rename(&tmp, &f.path)?;
    wal::sync_dir(dir)?;
    Ok(kept)
}

/// Salvages the log of the data directory `dir` (locked by the caller): keeps every record
/// up to the first damage, sets the damaged file aside, and moves the files after it aside
/// (their batches follow lost ones, so replaying them would give a history with a hole).
/// Returns the report printed to the operator.
pub fn salvage(dir: &Path) -> Result<String, String> {
    let wal_dir = dir.join("wal");
    if !wal_dir.is_dir() {
        return Ok(format!("{}: no log, nothing to salvage", wal_dir.display()));
    }
    let folded = {
        let (db, tree) = super::checkpoint::open_sled(&dir.join("db"), 16 << 20)
            .map_err(|e| format!("cannot open {}: {e}", dir.join("db").display()))?;
        let folded = super::checkpoint::folded_seq(&db, &tree).map_err(|e| e.to_string())?;
        drop((db, tree));
        folded
    };
    let err = |e: std::io::Error| e.to_string();
    let mut files = Vec::new();
    for (_, path) in wal::files(&wal_dir).map_err(err)? {
        let summary = wal::read_file(&path, |_, _| {}).map_err(err)?;
        files.push(Scanned { path, summary });
    }
    let findings = judge(&files, folded);
    let mut report = Vec::new();
    for finding in &findings {
        match *finding {
            Finding::TornTail(i) => report.push(format!(
                "{}: ends in an unfinished record at byte {} (a crash during a write that was \
                 never acknowledged); a normal start discards it",
                files[i].path.display(),
                files[i].summary.valid_bytes
            )),
            Finding::Harmless(i) => {
                let kept = set_aside(&files[i]).map_err(err)?;
                report.push(format!(
                    "{}: damaged at byte {} after its last record, nothing lost (the next \
                     file goes on at the next sequence); damaged copy kept as {}",
                    files[i].path.display(),
                    files[i].summary.valid_bytes,
                    kept.display()
                ));
            }
            Finding::Damaged(i) => {
                report.push(salvage_damaged(&files, i, folded).map_err(err)?);
                break;
            }
        }
    }
    let damaged = findings.iter().any(|f| matches!(f, Finding::Damaged(_)));
    if !damaged {
        let records: u64 = files.iter().map(|f| f.summary.records).sum();
        report.push(format!(
            "no damage that loses data: {} log files, {records} records; the server starts \
             as it is",
            files.len()
        ));
    }
    Ok(report.join("\n"))
}

fn salvage_damaged(files: &[Scanned], i: usize, folded: u64) -> std::io::Result<String> {
    let bad = &files[i];
    let kept_records: u64 = files[..=i].iter().map(|f| f.summary.records).sum();
    let kept_through = files[..=i]
        .iter()
        .filter(|f| f.summary.records > 0)
        .map(|f| f.summary.last_seq)
        .max()
        .unwrap_or(0)
        .max(folded);
    // What follows the damage: records still readable in the damaged file, and the
    // files after it.
    let data = std::fs::read(&bad.path)?;
    let (in_file, mut newest) = wal::resync(&data, bad.summary.valid_bytes as usize, kept_through);
    let mut later_records = 0;
    let mut moved = Vec::new();
    // The later files first: should this stop half-way, the damaged file is the newest
    // and a normal start keeps exactly what salvage keeps.
    for f in files[i + 1..].iter().rev() {
        later_records += f.summary.records;
        if f.summary.records > 0 {
            newest = newest.max(f.summary.last_seq);
        }
        let to = aside_name(&f.path, ".after-damage");
        std::fs::rename(&f.path, &to)?;
        moved.push(to);
    }
    if let Some(dir) = bad.path.parent() {
        wal::sync_dir(dir)?;
    }
    let kept = set_aside(bad)?;
    let lost = if newest > kept_through {
        format!(
            "{} acknowledged batches lost (sequences {} to {})",
            newest - kept_through,
            kept_through + 1,
            newest
        )
    } else {
        "an unknown number of batches lost (no intact record found after the damage)".into()
    };
    let mut lines = vec![
        format!(
            "{}: damaged at byte {} of {}",
            bad.path.display(),
            bad.summary.valid_bytes,
            bad.summary.len
        ),
        format!(
            "recovered {kept_records} records from the log (every batch through sequence \
             {kept_through}, with what the checkpoints had folded into db/)"
        ),
        format!(
            "{lost}: {} bytes unreadable in the damaged file ({in_file} intact records found \
             after the damage), {later_records} records in {} later files",
            bad.summary.len - bad.summary.valid_bytes,
            moved.len()
        ),
        format!("damaged file kept as {}", kept.display()),
    ];
    for m in moved.iter().rev() {
        lines.push(format!("moved aside: {}", m.display()));
    }
    lines.push(
        "the server now starts with the data as it was at the damage; ids handed out after \
         it will be handed out again"
            .into(),
    );
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(first: u64, last: u64, torn: bool) -> Scanned {
        Scanned {
            path: PathBuf::new(),
            summary: FileSummary {
                records: if first == 0 { 0 } else { last - first + 1 },
                first_seq: first,
                last_seq: last,
                valid_bytes: 10,
                torn,
                len: 20,
            },
        }
    }

    #[test]
    fn only_the_newest_file_may_be_torn_unless_the_sequence_goes_on() {
        // Torn newest file: a crash.
        let files = [scanned(1, 5, false), scanned(6, 7, true)];
        assert_eq!(judge(&files, 0), [Finding::TornTail(1)]);
        // A closed file cut at 7 whose successor starts at 20: batches 8..19 are gone.
        let files = [scanned(1, 7, true), scanned(20, 30, false)];
        assert_eq!(judge(&files, 0), [Finding::Damaged(0)]);
        // ... unless sled already holds them.
        assert_eq!(judge(&files, 19), [Finding::Harmless(0)]);
        // Damage after the last record: the next file goes on at 8.
        let files = [scanned(1, 7, true), scanned(8, 9, false)];
        assert_eq!(judge(&files, 0), [Finding::Harmless(0)]);
        // Damage at the first record, no later record to tell: damage.
        let files = [scanned(0, 0, true), scanned(0, 0, false)];
        assert_eq!(judge(&files, 0), [Finding::Damaged(0)]);
        // An empty newest file does not make its predecessor's bad tail a crash's.
        let files = [scanned(1, 7, true), scanned(0, 0, false)];
        assert_eq!(judge(&files, 0), [Finding::Damaged(0)]);
    }
}
