//! What the million-issue measurements rely on (BENCHMARKS.md, "A million issues"): the load
//! generator reports its own CPU beside the server's, and the streaming import reads any
//! valid dump (CRLF line ends, lower-case escapes) and refuses a damaged one by line.

mod support;

use support::{ADMIN_PASSWORD, Server, ok, tool};

/// Runs the load generator (crates/bench) in this process, as tests/bench_smoke.rs does.
fn bench(server: &Server, args: &[&str]) -> String {
    use clap::Parser;
    let addr = server.addr.to_string();
    let target = ["--addr", &addr, "--password", ADMIN_PASSWORD];
    let argv = ["webissued-bench"].iter().chain(args).chain(&target);
    let cli = webissued_bench::Cli::try_parse_from(argv).expect("bench arguments");
    let mut out = Vec::new();
    let result = webissued_bench::run(cli, &mut out);
    let stdout = String::from_utf8_lossy(&out).into_owned();
    if let Err(e) = result {
        panic!("bench {args:?} failed: {e}\n{stdout}");
    }
    stdout
}

/// The number after `"key":` in the generator's JSON line (None for `null`).
fn field(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    let end = json[at..].find([',', '}']).map_or(json.len(), |e| at + e);
    json[at..end].parse().ok()
}

#[test]
fn get_details_run_reports_the_generators_cpu_beside_the_servers() {
    let server = Server::start();
    bench(
        &server,
        &[
            "seed",
            "--users",
            "2",
            "--projects",
            "1",
            "--folders-per-project",
            "2",
            "--issues",
            "30",
            "--values-per-issue",
            "1",
            "--comments-per-issue",
            "2",
            "-c",
            "2",
        ],
    );
    let pid = server.pid().to_string();
    let json = bench(
        &server,
        &[
            "run",
            "--mix",
            "get-details",
            "-c",
            "4",
            "--duration",
            "1",
            "--server-pid",
            &pid,
            "--json",
        ],
    );
    let ops = field(&json, "ops").unwrap();
    assert!(ops > 0.0, "{json}");
    assert_eq!(field(&json, "errors"), Some(0.0), "{json}");
    // Both costs are figures (µs per operation), not null: the generator shares the
    // machine's cores with the server, so a latency figure needs both beside it.
    let server_cpu = field(&json, "server_cpu_us_per_op").expect("server CPU measured");
    let client_cpu = field(&json, "client_cpu_us_per_op").expect("generator CPU measured");
    assert!(server_cpu >= 0.0 && client_cpu >= 0.0, "{json}");
    // Without --server-pid the server's figure is absent, the generator's still there.
    let json = bench(
        &server,
        &[
            "run",
            "--mix",
            "get-details",
            "-c",
            "2",
            "--duration",
            "0.5",
            "--json",
        ],
    );
    assert_eq!(field(&json, "server_cpu_us_per_op"), None, "{json}");
    assert!(field(&json, "client_cpu_us_per_op").is_some(), "{json}");
}

/// A dump of a small tracker with values, comments (text with quotes, newlines and
/// non-ASCII) and preferences.
fn small_dump() -> Vec<u8> {
    let mut server = Server::start();
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD USER 'bob' 'Bob' 'bobpw'"), 2);
    assert_eq!(admin.id("ADD PROJECT 'P'"), 1);
    assert_eq!(admin.one("GRANT MEMBER 2 1 2"), "OK");
    assert_eq!(admin.id("ADD FOLDER 1 1 'F'"), 1);
    for i in 0..15 {
        let id = admin.id(&format!("ADD ISSUE 1 'Issue {i}'"));
        let r = admin.one(&format!("ADD COMMENT {id} 'it\\'s\\nbroken ü {i}'"));
        assert!(r.starts_with("ID "), "{r}");
    }
    assert_eq!(
        admin.one("SET PREFERENCE 2 'email' 'bob@example.org'"),
        "OK"
    );
    let data = server.data_dir();
    assert_eq!(server.terminate(), Some(0));
    let dump = ok(tool(&["export"], &data, b""));
    drop(server);
    dump
}

#[test]
fn import_reads_crlf_and_lower_case_escapes_and_names_the_bad_line() {
    let dump = small_dump();
    let text = String::from_utf8(dump.clone()).unwrap();
    assert!(text.contains('%'), "the dump has escapes to rewrite");
    let dir = tempfile::tempdir().unwrap();

    // CRLF line ends and lower-case hex: the same records, so the export is the original.
    let mut other = String::new();
    for line in text.lines() {
        let mut l = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            l.push(c);
            if c == '%' {
                l.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
            }
        }
        other.push_str(&l);
        other.push_str("\r\n");
    }
    assert_ne!(other.as_bytes(), &dump[..]);
    let a = dir.path().join("a");
    ok(tool(&["import"], &a, other.as_bytes()));
    let again = ok(tool(&["export"], &a, b""));
    assert!(again == dump, "re-export differs from the original dump");
    let check = tool(&["check"], &a, b"");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // A damaged escape is refused, naming its line; nothing that looks whole is left.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("r ") && l.contains('%'))
        .unwrap();
    let mut bad = lines.clone();
    let broken = lines[at].replacen('%', "%G", 1);
    bad[at] = &broken;
    let b = dir.path().join("b");
    let out = tool(&["import"], &b, (bad.join("\n") + "\n").as_bytes());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad escape"), "{err}");

    // Records out of order are refused with the line number (1 is the header).
    let first = lines.iter().position(|l| l.starts_with("r ")).unwrap();
    let mut swapped = lines.clone();
    swapped.swap(first, first + 1);
    let c = dir.path().join("c");
    let out = tool(&["import"], &c, (swapped.join("\n") + "\n").as_bytes());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("line {}: records out of key order", first + 2)),
        "{err}"
    );
}
