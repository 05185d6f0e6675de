//! The README's test snippet is the doctest of `nri::api::fixtures`.
//!
//! The README cannot be compiled as it stands (its snippet uses the plugin
//! defined in the block above it, and GitHub would show rustdoc's hidden
//! lines), so the compiled copy lives in `src/api/fixtures/mod.rs`, with the
//! setup hidden, and this test keeps the two the same.

const README: &str = include_str!("../README.md");
const FIXTURES: &str = include_str!("../src/api/fixtures/mod.rs");

/// The README's first ```` ```rust ```` block after `marker`.
fn readme_block(marker: &str) -> String {
    let after = README
        .split_once(marker)
        .unwrap_or_else(|| panic!("README has no {marker:?}"))
        .1;
    let body = after
        .split_once("```rust\n")
        .expect("a ```rust block follows")
        .1;
    body.split_once("```\n")
        .expect("the block ends")
        .0
        .to_string()
}

/// The visible lines of the first code block of a `//!` module doc.
fn module_doctest(source: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in source.lines().map_while(|l| l.strip_prefix("//!")) {
        let line = line.strip_prefix(' ').unwrap_or(line);
        if line.starts_with("```") {
            if inside {
                return out;
            }
            inside = true;
            continue;
        }
        if inside && line != "#" && !line.starts_with("# ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    panic!("no complete code block in the module doc");
}

#[test]
fn readme_test_snippet_is_the_fixtures_doctest_verbatim() {
    let readme = readme_block("Test a plugin without containerd");
    let doctest = module_doctest(FIXTURES);
    assert_eq!(
        readme, doctest,
        "README's test snippet and the doctest of src/api/fixtures/mod.rs differ: update one from the other"
    );
    assert!(readme.contains("fixtures::pod("), "{readme}");
    let lines = readme.lines().count();
    assert!(lines <= 16, "the snippet should stay short ({lines} lines)");
}

#[test]
fn doctest_extraction_drops_hidden_lines_only() {
    let source = "//! Text.\n//!\n//! ```\n//! # hidden\n//! #\n//! shown();\n//! #[attr]\n//! ```\n//! More.\n";
    assert_eq!(module_doctest(source), "shown();\n#[attr]\n");
}
