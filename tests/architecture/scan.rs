//! Reading sources for the architecture test: stripping comments, string
//! literals and `#[cfg(test)]` items, and scanning what is left for the
//! crate paths it uses.

/// Removes comments, string and char literals (keeping line breaks), so
/// that only code is scanned.
pub(crate) fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep_newlines = |out: &mut String, s: &[char]| {
        for &ch in s {
            if ch == '\n' {
                out.push('\n');
            }
        }
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_newlines(&mut out, &c[start..i.min(c.len())]);
            out.push(' ');
        } else if (ch == 'r' || (ch == 'b' && next == Some('r')))
            && !c[..i]
                .last()
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
            && {
                let mut j = i + if ch == 'b' { 2 } else { 1 };
                while c.get(j) == Some(&'#') {
                    j += 1;
                }
                c.get(j) == Some(&'"')
            }
        {
            // Raw string: r#"..."#.
            let mut j = i + if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            let start = j;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            keep_newlines(&mut out, &c[start..j.min(c.len())]);
            out.push_str("\"\"");
            i = (j + 1 + hashes).min(c.len());
        } else if ch == '"' {
            let start = i;
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            keep_newlines(&mut out, &c[start..i.min(c.len())]);
            out.push_str("\"\"");
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(ch);
                i += 1;
            }
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

/// Index just past the item starting at `i`: up to its `;`, or up to the
/// brace closing its body, whichever comes first.
fn item_end(s: &[u8], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < s.len() {
        match s[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b';' if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// Removes every item under `#[cfg(test)]`; returns the remaining code and
/// the names of child modules declared test-only (`#[cfg(test)] mod x;`).
pub(crate) fn drop_test_items(code: &str) -> (String, Vec<String>) {
    let b = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut test_mods = Vec::new();
    let mut i = 0;
    while let Some(off) = code[i..].find("#[cfg(test)]") {
        let at = i + off;
        out.push_str(&code[i..at]);
        let mut j = at + "#[cfg(test)]".len();
        // Further attributes of the same item.
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if code[j..].starts_with("#[") {
                j = code[j..].find(']').map_or(b.len(), |e| j + e + 1);
            } else {
                break;
            }
        }
        let end = item_end(b, j);
        let item = &code[j..end];
        let words: Vec<&str> = item
            .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(pos) = words.iter().position(|w| *w == "mod") {
            if item.trim_end().ends_with(';') {
                if let Some(name) = words.get(pos + 1) {
                    test_mods.push(name.to_string());
                }
            }
        }
        for _ in item.matches('\n') {
            out.push('\n');
        }
        i = end;
    }
    out.push_str(&code[i..]);
    (out, test_mods)
}

fn is_ident_char(ch: u8) -> bool {
    ch.is_ascii_alphanumeric() || ch == b'_'
}

/// A scanner over stripped code, yielding paths.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() && is_ident_char(self.s[self.i]) {
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap())
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    /// Parses a use tree after `prefix`; pushes (path, local name) pairs.
    fn use_tree(&mut self, prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        let mut path = prefix;
        loop {
            if self.eat("{") {
                loop {
                    if self.eat("}") {
                        return;
                    }
                    self.use_tree(path.clone(), out);
                    if !self.eat(",") {
                        self.eat("}");
                        return;
                    }
                }
            }
            if self.eat("*") {
                out.push((path, "*".to_string()));
                return;
            }
            let Some(id) = self.ident() else { return };
            path.push(id.to_string());
            if self.eat("::") {
                continue;
            }
            let save = self.i;
            let local = if self.ident() == Some("as") {
                self.ident().unwrap_or("_").to_string()
            } else {
                self.i = save;
                id.to_string()
            };
            if local == "self" {
                path.pop();
            }
            let name = if id == "self" {
                path.last().cloned().unwrap_or_default()
            } else {
                local
            };
            out.push((path, name));
            return;
        }
    }
}

/// What one file imports and uses.
#[derive(Debug, Default)]
pub(crate) struct Uses {
    /// `use` declarations: full path and the name it binds.
    pub(crate) imports: Vec<(Vec<String>, String)>,
    /// Paths in code (outside `use`), as written.
    pub(crate) paths: Vec<Vec<String>>,
    /// Child modules it declares (`mod x;`, `pub mod x;`, inline `mod x {}`
    /// included; test-only ones excluded).
    pub(crate) mods: Vec<String>,
}

pub(crate) fn scan(code: &str) -> Uses {
    let s = code.as_bytes();
    let mut uses = Uses::default();
    let mut sc = Scanner { s, i: 0 };
    while sc.i < s.len() {
        let ch = s[sc.i];
        if !is_ident_char(ch) {
            sc.i += 1;
            continue;
        }
        let preceded = sc.i >= 2 && &s[sc.i - 2..sc.i] == b"::"
            || sc.i >= 1 && (s[sc.i - 1] == b'.' || s[sc.i - 1] == b'\'');
        let start = sc.i;
        let word = sc.ident().unwrap_or_default();
        if preceded || word.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        match word {
            "use" => {
                let mut items = Vec::new();
                sc.use_tree(Vec::new(), &mut items);
                uses.imports.extend(items);
            }
            "mod" => {
                if let Some(name) = sc.ident() {
                    uses.mods.push(name.to_string());
                }
            }
            _ => {
                let mut path = vec![word.to_string()];
                while sc.eat("::") {
                    match sc.ident() {
                        Some(id) => path.push(id.to_string()),
                        None => break,
                    }
                }
                if path.len() > 1 {
                    uses.paths.push(path);
                } else {
                    sc.i = start + word.len();
                }
            }
        }
    }
    uses
}
