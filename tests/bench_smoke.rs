//! CI smoke of the load generator: seed a small data set, run every webissued mix for about
//! a second with 4 connections, and require completed operations and zero errors. No timing
//! assertions: CI machines are too noisy for those (scripts/bench measures).

mod support;

use std::process::Command;
use support::{ADMIN_PASSWORD, Server};

fn bench(server: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .arg("bench")
        .args(args)
        .args(["--addr", &server.addr.to_string()])
        .args(["--password", ADMIN_PASSWORD])
        .output()
        .expect("run webissued bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {args:?} failed: {stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    stdout
}

/// The integer after `"key":` in the generator's JSON line.
fn field(json: &str, key: &str) -> f64 {
    let at = json.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    let end = json[at..]
        .find([',', '}'])
        .map(|e| at + e)
        .unwrap_or(json.len());
    json[at..end].parse().unwrap()
}

#[test]
fn load_generator_runs_every_mix_without_errors() {
    let server = Server::start();
    bench(
        &server,
        &[
            "seed",
            "--users",
            "3",
            "--projects",
            "2",
            "--folders-per-project",
            "2",
            "--issues",
            "40",
            "-c",
            "2",
        ],
    );
    for mix in ["read", "write", "mixed", "simple"] {
        let depth = if mix == "simple" { "4" } else { "1" };
        let json = bench(
            &server,
            &[
                "run",
                "--mix",
                mix,
                "-c",
                "4",
                "-d",
                depth,
                "--duration",
                "1",
                "--json",
            ],
        );
        assert!(field(&json, "ops") > 0.0, "{mix}: no operations: {json}");
        assert_eq!(field(&json, "errors"), 0.0, "{mix}: {json}");
    }
}
