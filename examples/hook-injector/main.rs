//! `hook-injector`: injects OCI hooks from hook files (see plugin.rs).
//!
//! ```text
//! cargo run --example hook-injector -- -idx 10 -hook-dir ./my-hooks.d
//! ```

mod plugin;

use std::path::PathBuf;
use std::process::ExitCode;

use nri::cli::{self, Cli, Flag};

const FLAGS: &[Flag] = &[Flag {
    name: "hook-dir",
    value: Some("DIR"),
    help: "directory of OCI hook files, repeatable, later ones override \
           (default /usr/share/containers/oci/hooks.d /etc/containers/oci/hooks.d)",
}];

fn main() -> ExitCode {
    let cli = Cli::parse(
        "hook-injector",
        "An NRI plugin that injects OCI hooks described by hook files.",
        FLAGS,
    );
    cli.init_logging("hook-injector");
    let mut dirs: Vec<PathBuf> = cli
        .values("hook-dir")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        dirs = plugin::DEFAULT_HOOK_DIRS
            .iter()
            .map(PathBuf::from)
            .collect();
    }
    log::info!("hook directories: {dirs:?}");
    let injector = match plugin::HookInjector::new(dirs) {
        Ok(injector) => injector,
        Err(e) => {
            // A broken hook file: restarting as is cannot help.
            log::error!("{e}");
            return ExitCode::from(nri::EXIT_CONFIG);
        }
    };
    cli::serve(cli.stub_builder(injector), &cli)
}
