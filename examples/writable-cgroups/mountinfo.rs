//! Reading a mount table (`/proc/<pid>/mountinfo`) as Go's
//! `github.com/moby/sys/mountinfo` v0.7.2 reads it, for the one question the
//! plugin asks: is the host's cgroup2 hierarchy mounted with `nsdelegate`?
//!
//! Each line is
//! `ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`,
//! fields separated by single spaces, with
//! `\NNN` octal escapes in the paths. A line Go refuses (fewer than ten
//! fields, no `-` separator, a bad escape, a device that is not
//! `major:minor`, a line of 64 KiB or more) ends the scan with Go's error,
//! unless the cgroup2 mount was found on an earlier line.

use std::io::Read;

/// The longest line Go's `bufio.Scanner` takes, without its newline.
pub const MAX_LINE: usize = 64 * 1024 - 1;

/// The fields of a mount table line the plugin looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Where it is mounted, unescaped.
    pub mountpoint: String,
    /// The filesystem type, unescaped.
    pub fs_type: String,
    /// The super block's options (`rw,nsdelegate`).
    pub vfs_options: String,
}

/// Whether the host's cgroup2 mount (at `/sys/fs/cgroup`, or at
/// `/sys/fs/cgroup/unified` in the hybrid layout) has the `nsdelegate`
/// option, read from the mount table at `path`: the Go plugin's
/// `checkHostNsDelegate`, with its errors.
pub fn check_host_ns_delegate(path: &str) -> Result<bool, String> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut text))
        .map_err(|e| {
            format!(
                "failed to open mount file {path:?}: open {path}: {}",
                go_errno(&e)
            )
        })?;
    ns_delegate_in(&text)
}

/// [`check_host_ns_delegate`] on a mount table's bytes.
pub fn ns_delegate_in(text: &[u8]) -> Result<bool, String> {
    let found = first_cgroup2_mount(text).map_err(|e| format!("error scanning mount file: {e}"))?;
    Ok(found.is_some_and(|m| m.vfs_options.split(',').any(|o| o == "nsdelegate")))
}

/// The first cgroup2 mount at `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`,
/// scanning as Go's `GetMountsFromReader` with the plugin's filter does:
/// every line up to that one must parse.
pub fn first_cgroup2_mount(text: &[u8]) -> Result<Option<MountInfo>, String> {
    for line in lines(text) {
        let line = line?;
        let info = parse_line(line)?;
        if info.fs_type == "cgroup2"
            && (info.mountpoint == "/sys/fs/cgroup" || info.mountpoint == "/sys/fs/cgroup/unified")
        {
            return Ok(Some(info));
        }
    }
    Ok(None)
}

/// The lines as `bufio.Scanner` splits them: at `\n`, a `\r` before it
/// dropped, a last line without `\n` kept, a line over [`MAX_LINE`] bytes
/// an error.
fn lines(text: &[u8]) -> impl Iterator<Item = Result<&[u8], String>> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest.take()?;
        if text.is_empty() {
            return None;
        }
        let (mut line, next) = match text.iter().position(|&b| b == b'\n') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        if line.len() > MAX_LINE {
            return Some(Err("bufio.Scanner: token too long".to_string()));
        }
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        rest = next;
        Some(Ok(line))
    })
}

/// One line, as Go parses it (the fields the plugin uses, and every check
/// that can fail).
fn parse_line(line: &[u8]) -> Result<MountInfo, String> {
    let text = String::from_utf8_lossy(line);
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let n = fields.len();
    if n < 10 {
        return Err(format!("parsing '{text}' failed: not enough fields ({n})"));
    }
    let mut sep = n - 4;
    while fields[sep] != b"-" {
        sep -= 1;
        if sep == 5 {
            return Err(format!("parsing '{text}' failed: missing - separator"));
        }
    }
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mountpoint = unescape(fields[4])
        .map_err(|e| format!("parsing '{}' failed: mount point: {e}", lossy(fields[4])))?;
    let fs_type = unescape(fields[sep + 1])
        .map_err(|e| format!("parsing '{}' failed: fstype: {e}", lossy(fields[sep + 1])))?;
    unescape(fields[sep + 2])
        .map_err(|e| format!("parsing '{}' failed: source: {e}", lossy(fields[sep + 2])))?;
    let vfs_options = lossy(fields[sep + 3]);
    let major_minor: Vec<&[u8]> = fields[2].splitn(3, |&b| b == b':').collect();
    if major_minor.len() != 2 {
        let shown: Vec<String> = major_minor.iter().map(|p| lossy(p)).collect();
        return Err(format!(
            "parsing '{text}' failed: unexpected major:minor pair [{}]",
            shown.join(" ")
        ));
    }
    unescape(fields[3]).map_err(|e| format!("parsing '{}' failed: root: {e}", lossy(fields[3])))?;
    Ok(MountInfo {
        mountpoint: lossy(&mountpoint),
        fs_type: lossy(&fs_type),
        vfs_options,
    })
}

/// Undoes the `\NNN` octal escapes of a path field, as Go's `unescape`
/// does: three octal digits make a byte (wrapping past 255, as Go's byte
/// arithmetic does), anything else after `\` is an error worded as Go words
/// it (two of its messages lack their argument: Go prints `%!q(MISSING)`).
fn unescape(path: &[u8]) -> Result<Vec<u8>, String> {
    if !path.contains(&b'\\') {
        return Ok(path.to_vec());
    }
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] != b'\\' {
            out.push(path[i]);
            i += 1;
            continue;
        }
        let s = &path[i..];
        if s.len() < 4 {
            return Err(format!(
                "bad escape sequence {}: too short",
                go_quote_bytes(s)
            ));
        }
        match s[1] {
            b'0'..=b'7' => {
                let mut v = s[1] - b'0';
                for &d in &s[2..4] {
                    if !(b'0'..=b'7').contains(&d) {
                        return Err(format!(
                            "bad escape sequence {}: not a digit",
                            go_quote_bytes(&s[..3])
                        ));
                    }
                    v = (v << 3) | (d - b'0');
                }
                out.push(v);
                i += 4;
            }
            _ => {
                return Err(go_format_without_args(&format!(
                    "bad escape sequence %q: not a digit{}",
                    String::from_utf8_lossy(&s[..3])
                )))
            }
        }
    }
    Ok(out)
}

/// What Go's `fmt.Errorf(format)` prints for a format given no arguments:
/// each verb becomes `%!v(MISSING)`, `%%` a `%`.
fn go_format_without_args(format: &str) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags, width and precision, then the verb.
        let mut spec = String::new();
        while let Some(&f) = chars.peek() {
            if matches!(f, '+' | '-' | '#' | ' ' | '0'..='9' | '.') {
                spec.push(f);
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some('%') if spec.is_empty() => out.push('%'),
            Some(verb) => out.push_str(&format!("%!{verb}(MISSING)")),
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

/// Bytes quoted as Go's `%q` quotes a string holding them.
fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_quoted(&mut out, valid);
                break;
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                push_quoted(&mut out, std::str::from_utf8(valid).unwrap_or_default());
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for b in &bad[..n] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                rest = &bad[n..];
            }
        }
    }
    out.push('"');
    out
}

fn push_quoted(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// An I/O error as Go prints an errno: lowercase, without Rust's `(os
/// error N)`.
fn go_errno(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
