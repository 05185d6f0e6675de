//! Command-line arguments of the subcommands, and how they print: one
//! `RESULT <key> <value>` line per figure, or a message and exit status 1.

pub fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("nri-bench: {msg}");
    std::process::exit(1)
}

pub fn result(key: &str, v: f64) {
    println!("RESULT {key} {v:.3}");
}

// ---------------------------------------------------------------------------
// Arguments

pub struct Args(pub Vec<String>);

impl Args {
    pub fn get(&self, name: &str) -> Option<String> {
        let flag = format!("--{name}");
        self.0
            .iter()
            .position(|a| *a == flag)
            .and_then(|i| self.0.get(i + 1).cloned())
    }
    pub fn has(&self, name: &str) -> bool {
        let flag = format!("--{name}");
        self.0.contains(&flag)
    }
    pub fn num(&self, name: &str, default: usize) -> usize {
        self.get(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| fail(format!("--{name}: not a number: {v}")))
        })
    }
    pub fn req(&self, name: &str) -> String {
        self.get(name)
            .unwrap_or_else(|| fail(format!("--{name} is required")))
    }
}

pub fn sizes_arg(s: &str) -> Vec<usize> {
    s.split(',')
        .filter(|x| !x.trim().is_empty() && x.trim() != "none")
        .map(|x| {
            x.trim()
                .parse()
                .unwrap_or_else(|_| fail(format!("bad size {x:?}")))
        })
        .collect()
}
