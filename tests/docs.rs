//! The documentation holds together: README.md stays a front page, every chapter the book's
//! SUMMARY.md lists exists, and every relative link in README.md and docs/src/*.md resolves.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every Markdown file in docs/src.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The text outside fenced code blocks (where `](` and `#` mean something else).
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The targets of inline Markdown links and images: `[text](target)`, `![alt](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let text = prose(text);
    let mut targets = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').expect("a closing parenthesis");
        targets.push(after[..end].to_owned());
        rest = &after[end..];
    }
    targets
}

/// The ids GitHub and mdBook give a document's headings: lower case, spaces to `-`, other
/// punctuation dropped. A file the page `{{#include}}`s contributes its headings too.
fn heading_ids(path: &Path) -> Vec<String> {
    let text = read(path);
    let mut text = prose(&text);
    for line in text.clone().lines() {
        if let Some(include) = line.strip_prefix("{{#include ") {
            let file = include.trim_end_matches("}}").split(':').next().unwrap();
            text.push_str(&prose(&read(&path.parent().unwrap().join(file))));
        }
    }
    text.lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| {
            line.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_readme_is_a_front_page() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= 400,
        "README.md has {lines} lines; at most 400 (move detail into docs/src)"
    );
}

#[test]
fn every_chapter_in_the_summary_exists() {
    let src = root().join("docs/src");
    let summary = read(&src.join("SUMMARY.md"));
    let chapters = link_targets(&summary);
    assert!(chapters.len() > 10, "{chapters:?}");
    for chapter in chapters {
        assert!(
            src.join(&chapter).is_file(),
            "docs/src/SUMMARY.md lists {chapter}, which does not exist"
        );
    }
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for document in documents() {
        let dir = document.parent().unwrap();
        for target in link_targets(&read(&document)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = if file.is_empty() {
                document.clone()
            } else {
                dir.join(file)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", document.display()));
            } else if !fragment.is_empty()
                && file.extension().is_some_and(|e| e == "md")
                && !heading_ids(&file).iter().any(|id| id == fragment)
            {
                broken.push(format!("{}: {target}: no such heading", document.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
