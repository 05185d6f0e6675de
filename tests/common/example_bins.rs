//! Example binaries for the tests that run examples as processes
//! (`tests/examples.rs`, `tests/example_ports.rs`), included by each with
//! `#[path]`.
//!
//! `cargo test --all-targets` builds examples as test harnesses only, so
//! they are built once per test binary with a nested `cargo build` into
//! `<target>/example-bins` (its own target directory, so it does not wait
//! for the outer cargo's lock). That also keeps them fresh when only one
//! test is run after editing an example. `NRI_EXAMPLE_BIN_DIR` names a
//! directory of prebuilt example binaries to use instead (CI points it at
//! statically linked release builds).

use std::path::PathBuf;
use std::sync::OnceLock;

/// The path of example `name`, one of `examples` (all built together the
/// first time).
pub fn example_binary(name: &str, examples: &[&str]) -> PathBuf {
    if let Some(dir) = std::env::var_os("NRI_EXAMPLE_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(
            path.is_file(),
            "NRI_EXAMPLE_BIN_DIR has no {}",
            path.display()
        );
        return path;
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // <target>/debug/deps/<test>-<hash>
        let target = exe
            .ancestors()
            .nth(3)
            .ok_or("cannot find the target directory")?;
        let target_dir = target.join("example-bins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--offline"])
            .env("CARGO_TARGET_DIR", &target_dir);
        for example in examples {
            cmd.args(["--example", example]);
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build of the examples failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(target_dir.join("debug").join("examples"))
    });
    match dir {
        Ok(dir) => dir.join(name),
        Err(e) => panic!("{e}"),
    }
}
