//! Replays every input kept in tests/fuzz-corpus/<target>/ through the same invariant checks
//! the fuzz targets run (`webissued_fuzz_checks`), so crashers found by `scripts/fuzz` stay
//! fixed on stable Rust with plain `cargo test`.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its invariants", path.display());
    }
}

#[test]
fn command_inputs() {
    replay("command", webissued_fuzz_checks::command);
}

#[test]
fn definition_inputs() {
    replay("definition", webissued_fuzz_checks::definition);
}

#[test]
fn mailto_inputs() {
    replay("mailto", webissued_fuzz_checks::mailto);
}

#[test]
fn codec_inputs() {
    replay("codec", webissued_fuzz_checks::codec);
}
