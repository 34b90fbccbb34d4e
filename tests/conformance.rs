//! Runs every transcript in tests/conformance/ against a fresh real server.

mod support;

use support::{ADMIN_PASSWORD, Server};

#[test]
fn transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        let server = Server::start();
        let text = std::fs::read_to_string(file).unwrap();
        match webissued_conformance::run(&server.addr.to_string(), &text, ADMIN_PASSWORD) {
            Ok(n) => eprintln!("{}: {n} commands ok", file.display()),
            Err(e) => failures.push(format!("{}: {e}", file.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
