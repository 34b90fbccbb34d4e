//! CI smoke of the load generator: seed a small data set, run every webissued mix for about
//! a second with 4 connections, and require completed operations and zero errors. No timing
//! assertions: CI machines are too noisy for those (scripts/bench measures).
//!
//! The generator (crates/bench) runs in this process, parsed from the same arguments as the
//! `webissued-bench` binary, so the test always runs the code as built with it.

mod support;

use clap::Parser;
use support::{ADMIN_PASSWORD, Server};

fn bench(server: &Server, args: &[&str]) -> String {
    let addr = server.addr.to_string();
    let target = ["--addr", &addr, "--password", ADMIN_PASSWORD];
    let argv = ["webissued-bench"].iter().chain(args).chain(&target);
    let cli = webissued_bench::Cli::try_parse_from(argv).expect("bench arguments");
    let mut out = Vec::new();
    let result = webissued_bench::run(cli, &mut out);
    let stdout = String::from_utf8_lossy(&out).into_owned();
    if let Err(e) = result {
        panic!(
            "bench {args:?} failed: {e}\n{stdout}\nserver log:\n{}",
            server.log()
        );
    }
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
