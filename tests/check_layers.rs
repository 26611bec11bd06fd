//! `.ci/check-layers`, which `.ci/run` runs, fails on what it exists to catch: an import circle
//! between two modules of a crate (also through `super::`), a crate that depends on one of its
//! own layer or above, and (with `--strict-functions`) a function over 60 lines. And it passes
//! on this workspace.

use std::path::Path;
use std::process::Command;

fn run(root: &Path, strict: bool) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/check-layers");
    let mut command = Command::new("python3");
    command.arg(script).arg("--root").arg(root);
    if strict {
        command.arg("--strict-functions");
    }
    let out = command.output().expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A workspace with a root package and one member crate `tollgate-http` (the lowest layer).
fn workspace(member_deps: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"tollgate\"\n[dependencies]\ntollgate-http = { path = \"crates/http\" }\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "").unwrap();
    let member = root.join("crates/http");
    std::fs::create_dir_all(member.join("src")).unwrap();
    std::fs::write(
        member.join("Cargo.toml"),
        format!("[package]\nname = \"tollgate-http\"\n[dependencies]\n{member_deps}"),
    )
    .unwrap();
    for (path, text) in files {
        let path = member.join("src").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn this_workspace_passes() {
    let (ok, out) = run(Path::new(env!("CARGO_MANIFEST_DIR")), true);
    assert!(ok, "{out}");
    assert!(out.contains("no import circle"), "{out}");
}

#[test]
fn a_circle_between_modules_fails() {
    let one_way = workspace(
        "",
        &[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
            ("b.rs", "pub struct B;\n"),
        ],
    );
    let (ok, out) = run(one_way.path(), false);
    assert!(ok, "{out}");
    let circle = workspace(
        "",
        &[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
            // Through `super::` from a file one level down: still the crate root's `a`.
            ("b/mod.rs", "mod inner;\npub struct B;\n"),
            ("b/inner.rs", "use super::super::a::A;\nfn f(_: A) {}\n"),
        ],
    );
    let (ok, out) = run(circle.path(), false);
    assert!(!ok, "{out}");
    assert!(
        out.contains("tollgate-http: import circle between modules a, b"),
        "{out}"
    );
}

#[test]
fn a_dependency_on_a_higher_layer_fails() {
    let upward = workspace(
        "tollgate-core = { path = \"../core\" }\n",
        &[("lib.rs", "")],
    );
    let (ok, out) = run(upward.path(), false);
    assert!(!ok, "{out}");
    assert!(
        out.contains("tollgate-http depends on tollgate-core, which is not in a lower layer"),
        "{out}"
    );
}

#[test]
fn a_long_function_fails_when_strict() {
    let body = "    let _ = 1;\n".repeat(61);
    let long = workspace("", &[("lib.rs", &format!("pub fn long() {{\n{body}}}\n"))]);
    assert!(run(long.path(), false).0);
    let (ok, out) = run(long.path(), true);
    assert!(!ok, "{out}");
    assert!(out.contains("63 crates/http/src/lib.rs long"), "{out}");
}
