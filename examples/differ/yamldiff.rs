//! The `-yaml` form of the differ's output: the two YAML dumps compared
//! line by line, lines only in the first marked `-`, lines only in the
//! second `+`, runs of unchanged lines shortened to the two around each
//! change. (The Go differ prints go-cmp's report of the two documents,
//! whose format go-cmp keeps deliberately unstable.)

/// The difference of `a` and `b`, or `None` when they are the same.
pub fn diff(a: &str, b: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    // Longest common subsequence, by dynamic programming (dumps are small:
    // a few hundred lines; bounded at 4,000 lines a side, beyond which the
    // whole of both is shown).
    let ops = if x.len() * y.len() <= 16_000_000 {
        lcs_ops(&x, &y)
    } else {
        x.iter()
            .map(|l| ('-', *l))
            .chain(y.iter().map(|l| ('+', *l)))
            .collect()
    };
    const CONTEXT: usize = 2;
    let mut out = String::new();
    let near_change = |i: usize| {
        let lo = i.saturating_sub(CONTEXT);
        let hi = (i + CONTEXT).min(ops.len() - 1);
        ops[lo..=hi].iter().any(|(op, _)| *op != ' ')
    };
    let mut skipped = 0;
    for (i, (op, line)) in ops.iter().enumerate() {
        if *op == ' ' && !near_change(i) {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            out.push_str(&format!("  ... // {skipped} identical lines\n"));
            skipped = 0;
        }
        out.push(*op);
        out.push(' ');
        out.push_str(line);
        out.push('\n');
    }
    if skipped > 0 {
        out.push_str(&format!("  ... // {skipped} identical lines\n"));
    }
    Some(out)
}

fn lcs_ops<'a>(x: &[&'a str], y: &[&'a str]) -> Vec<(char, &'a str)> {
    let (n, m) = (x.len(), y.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if x[i] == y[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n && j < m {
        if x[i] == y[j] {
            ops.push((' ', x[i]));
            i += 1;
            j += 1;
        } else if table[at(i + 1, j)] >= table[at(i, j + 1)] {
            ops.push(('-', x[i]));
            i += 1;
        } else {
            ops.push(('+', y[j]));
            j += 1;
        }
    }
    ops.extend(x[i..].iter().map(|l| ('-', *l)));
    ops.extend(y[j..].iter().map(|l| ('+', *l)));
    ops
}
