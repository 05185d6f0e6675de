//! The differential check: the same requests and the same contract plugins
//! (two answering randomized adjustments and updates drawn from a seed, one
//! validator recording what it is sent) under the reference Go adaptation
//! v0.12.5 (`tests/interop/differential`, run first, which writes every
//! request and its outcome) and under `nri::runtime`'s `PluginSet`
//! emulating v0.12.5; then, case by case: the same error text, or the same
//! merged reply, and the same validation requests (merged adjustment,
//! updates, owners, plugins), field by field.

use crate::*;
use nri::api::ValidateContainerAdjustmentRequest;

/// How long the reference run may take.
const REFERENCE_TIMEOUT: Duration = Duration::from_secs(240);

/// One case as the reference recorded it.
struct Case {
    op: String,
    pod: PodSandbox,
    ctr: Container,
    res: LinuxResources,
    error: String,
    response: Vec<u8>,
    validations: Vec<ValidateContainerAdjustmentRequest>,
}

/// Reads length-prefixed fields.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u32(&mut self) -> R<u32> {
        ensure!(self.0.len() >= 4, "truncated reference output");
        let (n, rest) = self.0.split_at(4);
        self.0 = rest;
        Ok(u32::from_be_bytes([n[0], n[1], n[2], n[3]]))
    }

    fn field(&mut self) -> R<&[u8]> {
        let n = self.u32()? as usize;
        ensure!(self.0.len() >= n, "truncated reference output");
        let (f, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(f)
    }

    fn msg<M: Message>(&mut self) -> R<M> {
        let b = self.field()?;
        M::parse_from_bytes(b).map_err(|e| format!("reference output: {}: {e}", M::NAME))
    }

    fn text(&mut self) -> R<String> {
        String::from_utf8(self.field()?.to_vec()).map_err(|e| format!("reference output: {e}"))
    }
}

fn read_cases(path: &Path) -> R<Vec<Case>> {
    let data = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let magic = b"NRIDIFF1";
    ensure!(
        data.starts_with(magic),
        "{} is not a differential output",
        path.display()
    );
    let mut r = Reader(&data[magic.len()..]);
    let mut cases = Vec::new();
    while !r.0.is_empty() {
        let op = r.text()?;
        let pod = r.msg()?;
        let ctr = r.msg()?;
        let res = r.msg()?;
        let error = r.text()?;
        let response = r.field()?.to_vec();
        let n = r.u32()?;
        let mut validations = Vec::new();
        for _ in 0..n {
            validations.push(r.msg()?);
        }
        cases.push(Case {
            op,
            pod,
            ctr,
            res,
            error,
            response,
            validations,
        });
    }
    Ok(cases)
}

/// Reads the validation requests our validator appended from byte
/// `offset` on; returns them and the new offset.
fn read_dump(path: &Path, offset: usize) -> R<(Vec<ValidateContainerAdjustmentRequest>, usize)> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut r = Reader(data.get(offset..).unwrap_or_default());
    let mut out = Vec::new();
    while !r.0.is_empty() {
        out.push(r.msg::<ValidateContainerAdjustmentRequest>()?);
    }
    Ok((out, data.len()))
}

/// Runs the check; prints a line per failed case (the first 20) and the
/// summary; returns (passed, failed).
pub(crate) fn run(opts: &Opts, reference: &Path, seed: u64, cases: usize) -> R<(usize, usize)> {
    ensure!(
        nri() == Emulation::V0_12_5,
        "the differential check compares with NRI v0.12.5: run it with -nri v0.12.5"
    );
    let dir = std::env::temp_dir().join(format!("nri-rt-differential-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = run_in(opts, &dir, reference, seed, cases);
    if opts.verbose {
        eprintln!("    (temp dir kept: {})", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(opts: &Opts, dir: &Path, reference: &Path, seed: u64, n: usize) -> R<(usize, usize)> {
    let started = Instant::now();
    let ref_out = dir.join("reference.bin");
    let mut child = Command::new(reference)
        .arg("-plugin")
        .arg(&opts.plugin)
        .args(["-seed", &seed.to_string(), "-cases", &n.to_string()])
        .arg("-out")
        .arg(&ref_out)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", reference.display()))?;
    let deadline = Instant::now() + REFERENCE_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the reference run took over {REFERENCE_TIMEOUT:?}"));
        }
        thread::sleep(Duration::from_millis(20));
    };
    ensure!(status.success(), "the reference run failed: {status}");
    let cases = read_cases(&ref_out)?;
    ensure!(
        cases.len() == n,
        "the reference recorded {} cases, want {n}",
        cases.len()
    );
    let reference_took = started.elapsed();

    // The same plugins, under nri::runtime.
    let mut ctx = Ctx::new(
        dir.to_path_buf(),
        opts.plugin.clone(),
        None,
        None,
        opts.verbose,
    );
    let rt = ctx.builder().build();
    let dump = dir.join("validations.bin");
    let l = rt.listen(dir.join("nri.sock")).map_err(|e| e.to_string())?;
    let set = PluginSet::new(&rt);
    let plugin = opts.plugin.clone();
    for (name, idx, cfg) in [
        (
            "a",
            "10",
            "tag=a\nevents=createcontainer,updatecontainer,stopcontainer\n".to_string(),
        ),
        (
            "b",
            "20",
            "tag=b\nevents=createcontainer,updatecontainer,stopcontainer\n".to_string(),
        ),
        (
            "v",
            "30",
            format!(
                "tag=v\nevents=validatecontaineradjustment\ndump={}\n",
                dump.display()
            ),
        ),
    ] {
        let (h, _) = ctx.external(&l, &plugin, name, idx, &cfg)?;
        set.add(h).map_err(|e| e.to_string())?;
    }

    let (mut passed, mut failed, mut seen) = (0, 0, 0);
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let mut conflicts = std::collections::BTreeMap::<String, usize>::new();
    for (i, c) in cases.iter().enumerate() {
        let outcome = replay(&set, c);
        let (validations, now) = read_dump(&dump, seen)?;
        seen = now;
        let problems = compare(c, outcome, &validations);
        let kind = if !c.error.is_empty() {
            format!("{} error", c.op)
        } else if !c.validations.is_empty() {
            format!("{} validated", c.op)
        } else {
            c.op.clone()
        };
        *kinds.entry(kind).or_default() += 1;
        if let Some(field) = c.error.split("both tried to set ").nth(1) {
            let field = field.split(' ').next().unwrap_or_default().to_string();
            *conflicts.entry(field).or_default() += 1;
        } else if c.error.contains("asked update of") {
            *conflicts
                .entry("update during creation".into())
                .or_default() += 1;
        } else if c.error.contains("rejected container adjustment") {
            *conflicts.entry("validator rejection".into()).or_default() += 1;
        } else if !c.error.is_empty() {
            *conflicts.entry(trunc(&c.error, 60)).or_default() += 1;
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failed += 1;
            if failed <= 20 {
                println!(
                    "FAIL differential case {i} ({} {}): {}",
                    c.op,
                    c.ctr.id,
                    join_diffs(&problems)
                );
            }
        }
        if set.len() != 3 {
            return Err(format!(
                "case {i}: a plugin left the set: {:?}",
                set.names()
            ));
        }
    }
    let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "differential (seed {seed}): {} cases ({}); reference {:.1}s, total {:.1}s",
        cases.len(),
        summary.join(", "),
        reference_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let errors: Vec<String> = conflicts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("differential errors by field: {}", errors.join(", "));
    Ok((passed, failed))
}

/// The outcome of one case under nri::runtime: an error text or the merged
/// reply's bytes.
enum Outcome {
    Error(String),
    Reply(Box<dyn MessageDyn>),
}

fn replay(set: &PluginSet, c: &Case) -> Outcome {
    let r: nri::Result<Box<dyn MessageDyn>> = match c.op.as_str() {
        "create" => set
            .create_container(&c.pod, &c.ctr)
            .map(|r| Box::new(r) as Box<dyn MessageDyn>),
        "update" => set
            .update_container(&c.pod, &c.ctr, &c.res)
            .map(|r| Box::new(r) as Box<dyn MessageDyn>),
        _ => set
            .stop_container(&c.pod, &c.ctr)
            .map(|r| Box::new(r) as Box<dyn MessageDyn>),
    };
    match r {
        Ok(m) => Outcome::Reply(m),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

fn compare(
    c: &Case,
    ours: Outcome,
    validations: &[ValidateContainerAdjustmentRequest],
) -> Vec<String> {
    let mut out = Vec::new();
    match ours {
        Outcome::Error(e) if e != c.error => {
            let want = if c.error.is_empty() {
                "success"
            } else {
                &c.error
            };
            out.push(format!("error: want {want:?}, got {e:?}"));
        }
        Outcome::Error(_) => {}
        Outcome::Reply(_) if !c.error.is_empty() => {
            out.push(format!("want error {:?}, got success", c.error));
        }
        Outcome::Reply(got) => {
            let want = match got.descriptor_dyn().parse_from_bytes(&c.response) {
                Ok(m) => m,
                Err(e) => return vec![format!("reference reply: {e}")],
            };
            out.extend(diff("reply", &*want, &*got));
        }
    }
    if validations.len() != c.validations.len() {
        out.push(format!(
            "validation requests: want {}, got {}",
            c.validations.len(),
            validations.len()
        ));
    } else {
        for (w, g) in c.validations.iter().zip(validations) {
            out.extend(diff("validation", w, g));
        }
    }
    out
}
