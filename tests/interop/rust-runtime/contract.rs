//! The contract's request log: parsing the lines plugins append and
//! checking event sequences.

use crate::*;

// ---------------------------------------------------------------------------
// The contract's request log.

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) prefix: String,
    pub(crate) event: String,
    pub(crate) kv: HashMap<String, String>,
    pub(crate) raw: String,
}

impl Entry {
    pub(crate) fn kv(&self, k: &str) -> &str {
        self.kv.get(k).map(String::as_str).unwrap_or("")
    }
}

pub(crate) const LOG_EVENTS: &[&str] = &[
    "Configure",
    "Synchronize",
    "RunPodSandbox",
    "StopPodSandbox",
    "RemovePodSandbox",
    "CreateContainer",
    "PostCreateContainer",
    "StartContainer",
    "PostStartContainer",
    "UpdateContainer",
    "PostUpdateContainer",
    "StopContainer",
    "RemoveContainer",
    "UpdatePodSandbox",
    "PostUpdatePodSandbox",
    "ValidateContainerAdjustment",
    "Unsolicited",
];

pub(crate) fn parse_entry(line: &str) -> R<Entry> {
    let mut e = Entry {
        prefix: String::new(),
        event: String::new(),
        kv: HashMap::new(),
        raw: line.to_string(),
    };
    let (mut word, mut rest) = line.split_once(' ').unwrap_or((line, ""));
    if !LOG_EVENTS.contains(&word) {
        e.prefix = word.to_string();
        (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    }
    ensure!(
        LOG_EVENTS.contains(&word),
        "unknown event in log line {line:?}"
    );
    e.event = word.to_string();
    while !rest.is_empty() {
        let tok;
        if rest.starts_with("err=") {
            (tok, rest) = (rest, "");
        } else {
            (tok, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        }
        let Some((k, v)) = tok.split_once('=') else {
            return Err(format!("malformed field {tok:?} in log line {line:?}"));
        };
        e.kv.insert(k.to_string(), v.to_string());
    }
    Ok(e)
}

pub(crate) fn read_log(path: &Path) -> R<Vec<Entry>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    // A partially written line is ignored until it is complete.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.is_empty())
        .map(parse_entry)
        .collect()
}

pub(crate) fn wait_entries(
    path: &Path,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[Entry]) -> bool,
) -> R<Vec<Entry>> {
    let deadline = Instant::now() + timeout;
    loop {
        let es = read_log(path)?;
        if pred(&es) {
            return Ok(es);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "plugin log {}: {what} not seen within {timeout:?} (log: {})",
                path.file_name().unwrap_or_default().to_string_lossy(),
                summarize(&es)
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn summarize(es: &[Entry]) -> String {
    let parts: Vec<String> = es.iter().map(|e| trunc(&e.raw, 80)).collect();
    format!("[{}]", trunc(&parts.join(" | "), 600))
}

/// The lines of pod and container events. Validation requests are left
/// out: the validation scenarios check them; elsewhere a plugin subscribed
/// to every event also validates each creation through a set.
pub(crate) fn event_lines(es: &[Entry]) -> Vec<Entry> {
    es.iter()
        .filter(|e| {
            !matches!(
                e.event.as_str(),
                "Configure" | "Synchronize" | "Unsolicited" | "ValidateContainerAdjustment"
            )
        })
        .cloned()
        .collect()
}

pub(crate) fn filter_event(es: &[Entry], event: &str) -> Vec<Entry> {
    es.iter().filter(|e| e.event == event).cloned().collect()
}

pub(crate) fn with_prefix(es: &[Entry], prefix: &str) -> Vec<Entry> {
    es.iter().filter(|e| e.prefix == prefix).cloned().collect()
}

/// `(event, pod id, container id)` of an expected event line.
pub(crate) type Expect = (String, String, String);

pub(crate) fn ex(event: &str, pod: &str, ctr: &str) -> Expect {
    (event.to_string(), pod.to_string(), ctr.to_string())
}

pub(crate) fn check_event_seq(es: &[Entry], want: &[Expect]) -> R {
    let got = event_lines(es);
    for i in 0..got.len().max(want.len()) {
        match (got.get(i), want.get(i)) {
            (None, Some(w)) => {
                return Err(format!(
                    "plugin log: line {} missing, want {} pod={} ctr={} (log: {})",
                    i + 1,
                    w.0,
                    w.1,
                    w.2,
                    summarize(&got)
                ))
            }
            (Some(g), None) => {
                return Err(format!(
                    "plugin log: unexpected extra line {:?} (log: {})",
                    g.raw,
                    summarize(&got)
                ))
            }
            (Some(g), Some(w)) => ensure!(
                g.event == w.0 && g.kv("pod") == w.1 && g.kv("ctr") == w.2,
                "plugin log: line {} is {:?}, want \"{} pod={} ctr={}\" (log: {})",
                i + 1,
                g.raw,
                w.0,
                w.1,
                w.2,
                summarize(&got)
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

/// Checks that `es` holds Configure (with our runtime's name and version)
/// then Synchronize with the given counts, from line `at` on.
pub(crate) fn check_preamble(es: &[Entry], at: usize, pods: usize, ctrs: usize) -> R {
    ensure!(
        es.len() >= at + 2,
        "plugin log: want Configure and Synchronize at line {}, log: {}",
        at + 1,
        summarize(es)
    );
    let (c, s) = (&es[at], &es[at + 1]);
    let (name, version) = runtime_identity();
    let want_rt = format!("{name}/{version}");
    ensure!(
        c.event == "Configure"
            && c.kv("pod") == "-"
            && c.kv("ctr") == "-"
            && c.kv("runtime") == want_rt,
        "plugin log line {}: got {:?}, want \"Configure pod=- ctr=- runtime={want_rt}\"",
        at + 1,
        c.raw
    );
    // Plugins on NRI v0.10+ also log the runtime's NRI version: the one
    // this runtime sends (v0.12+); before that, the one a plugin on a v0.12+
    // API infers from the runtime's identity, or none (an older stub
    // neither gets nor infers one)
    if let Some(got) = c.kv.get("nri") {
        let sent = nri_since(0, 12, 0);
        ensure!(
            got == nri().as_str() || (!sent && got == "-"),
            "plugin log line {}: runtime NRI version {got:?}, want {:?}",
            at + 1,
            if sent {
                nri().as_str()
            } else {
                "- or the inferred version"
            }
        );
    }
    ensure!(
        s.event == "Synchronize"
            && s.kv("pods") == pods.to_string()
            && s.kv("containers") == ctrs.to_string(),
        "plugin log line {}: got {:?}, want \"Synchronize pods={pods} containers={ctrs}\"",
        at + 2,
        s.raw
    );
    Ok(())
}
