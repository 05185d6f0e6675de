//! `interop-runtime -infer`: the crate's inference of a runtime's NRI
//! version, for `tests/interop/check-versions.sh`, which compares it with
//! what each runtime release's own go.mod requires.
//!
//! Reads lines `RUNTIME VERSION` (`containerd v2.2.0`) from stdin and
//! answers each with one line on stdout: `RUNTIME VERSION NRI_VERSION`
//! (what [`nri::api::NriVersion::infer_from_runtime`] returns), or
//! `RUNTIME VERSION - REASON` when it infers nothing. Blank lines are
//! skipped; a line without exactly two fields is an error (status 2).

use std::io::{BufRead, Write};

pub(crate) fn run() -> ! {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.unwrap_or_else(|e| fail(&format!("stdin: {e}")));
        let fields: Vec<&str> = line.split_whitespace().collect();
        let answer = match fields.as_slice() {
            [] => continue,
            [runtime, version] => {
                match nri::api::NriVersion::infer_from_runtime(runtime, version) {
                    Ok(v) => format!("{runtime} {version} {v}"),
                    Err(e) => format!("{runtime} {version} - {e}"),
                }
            }
            _ => fail(&format!("line {}: {line:?}: want RUNTIME VERSION", n + 1)),
        };
        if writeln!(out, "{answer}").is_err() {
            fail("stdout closed");
        }
    }
    let _ = out.flush();
    std::process::exit(0)
}

fn fail(msg: &str) -> ! {
    eprintln!("interop-runtime -infer: {msg}");
    std::process::exit(2)
}
