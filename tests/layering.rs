//! The module layering of ARCHITECTURE.md: `scripts/imports` finds no import cycle between
//! top-level modules and no `store/` import of an upper layer.

#[test]
fn module_imports_have_no_cycle_and_store_imports_no_upper_layer() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/imports");
    let out = std::process::Command::new("python3")
        .arg(script)
        .output()
        .expect("python3 runs scripts/imports");
    assert!(
        out.status.success(),
        "scripts/imports failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
