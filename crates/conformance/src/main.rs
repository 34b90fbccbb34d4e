//! `webissued-conformance ADDR FILE…`: runs transcripts against a running, freshly
//! initialised server (scripts/conformance). The admin password comes from
//! WEBISSUED_ADMIN_PASSWORD (default: secret).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), files) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: webissued-conformance ADDR TRANSCRIPT...");
        return ExitCode::from(2);
    };
    if files.is_empty() || addr.starts_with('-') {
        eprintln!("usage: webissued-conformance ADDR TRANSCRIPT...");
        return ExitCode::from(2);
    }
    let password = std::env::var("WEBISSUED_ADMIN_PASSWORD").unwrap_or_else(|_| "secret".into());
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let result = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| webissued_conformance::run(&addr, &text, &password));
        match result {
            Ok(n) => {
                passed += 1;
                println!("ok   {file} ({n} commands)");
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {file}: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
