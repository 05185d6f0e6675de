//! A small reader of `.proto` files: the statements and declarations of a
//! file, each with its scope, its tokens and the comment right above it.
//!
//! It serves two masters, so it lives in its own file: `build.rs` (which
//! turns the comments into rustdoc on the generated Rust code) and
//! `tests/proto_upstream.rs` (which checks that our `proto/nri.proto` states
//! exactly what upstream's `api.proto` states, comments aside). It reads the
//! subset of the protobuf language those files use (messages, enums,
//! services, oneofs, fields, maps, options, imports) and refuses anything it
//! does not understand with an error naming the line, rather than guessing.

// Each includer uses a different part of this file.
#![allow(dead_code)]

/// What a statement or declaration declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `message Name {`
    Message,
    /// A field of a message (plain, `repeated`, `optional` or `map<…>`).
    Field,
    /// `enum Name {`
    Enum,
    /// A value of an enum.
    EnumValue,
    /// `service Name {`
    Service,
    /// `rpc Name(Request) returns (Response)`
    Rpc,
    /// `oneof name {`
    Oneof,
    /// Anything else: `syntax`, `package`, `import`, `option`, `reserved`.
    Other,
}

/// One statement or declaration of a proto file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// What it declares.
    pub kind: Kind,
    /// Fully qualified name (`package.Message.field`,
    /// `package.Enum.VALUE`), as protobuf-codegen's insertion points spell
    /// it; empty for [`Kind::Other`].
    pub name: String,
    /// The enclosing declarations, such as `LogRequest.Level`; empty at the
    /// top level.
    pub scope: String,
    /// The statement's tokens joined by single spaces, without its final
    /// `;` or `{`: `repeated string args = 7`, `message Container`.
    pub statement: String,
    /// The comment lines right above it (no blank line between), without
    /// `//` and one space after it.
    pub doc: Vec<String>,
    /// Its first line, counted from 1.
    pub line: usize,
}

/// A parsed proto file.
#[derive(Debug, Clone, Default)]
pub struct ProtoFile {
    /// The `package` statement's name; empty without one.
    pub package: String,
    /// Every statement and declaration, in file order.
    pub elements: Vec<Element>,
}

impl ProtoFile {
    /// The short names of the elements of `kind`: only those at the top
    /// level with `top_only`, else nested ones too.
    pub fn short_names(&self, kind: Kind, top_only: bool) -> Vec<String> {
        self.elements
            .iter()
            .filter(|e| e.kind == kind && (!top_only || e.scope.is_empty()))
            .map(|e| e.name.rsplit('.').next().unwrap_or(&e.name).to_string())
            .collect()
    }

    /// The fields of message `scope` (its short name), in file order.
    pub fn fields_of<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements
            .iter()
            .filter(move |e| e.kind == Kind::Field && e.scope == scope)
    }

    /// The element of `kind` named `name` (fully qualified).
    pub fn find(&self, kind: Kind, name: &str) -> Option<&Element> {
        self.elements
            .iter()
            .find(|e| e.kind == kind && e.name == name)
    }
}

/// A field's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// No label: a singular field.
    Singular,
    /// `repeated`.
    Repeated,
    /// `optional` (explicit presence).
    Optional,
}

/// The type of a field: a plain type name, or a map's key and value types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// `string`, `Container`, `LinuxResources`...
    Plain(String),
    /// `map<key, value>`.
    Map(String, String),
}

/// The parts of a field statement such as `repeated string args = 7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDecl {
    /// Its label (a map field has none).
    pub label: Label,
    /// Its type.
    pub ty: FieldType,
    /// Its name as written in the proto file.
    pub name: String,
    /// Its field number.
    pub number: u32,
}

impl Element {
    /// Splits a [`Kind::Field`] statement into its parts; the error names
    /// the line and the statement.
    pub fn field(&self) -> Result<FieldDecl, String> {
        let s = self
            .statement
            .replace(" < ", "<")
            .replace(" , ", ",")
            .replace(" >", ">");
        let bad = |what: &str| format!("line {}: {what} in field {s:?}", self.line);
        let (label, ty, rest) = if let Some(map) = s.strip_prefix("map<") {
            let (types, rest) = map.split_once('>').ok_or_else(|| bad("bad map type"))?;
            let (k, v) = types.split_once(',').ok_or_else(|| bad("bad map type"))?;
            let ty = FieldType::Map(k.trim().to_string(), v.trim().to_string());
            (Label::Singular, ty, rest.trim().to_string())
        } else {
            let words: Vec<&str> = s.split_whitespace().collect();
            let (label, ty, rest) = match words.as_slice() {
                ["repeated", ty, rest @ ..] => (Label::Repeated, *ty, rest),
                ["optional", ty, rest @ ..] => (Label::Optional, *ty, rest),
                [ty, rest @ ..] => (Label::Singular, *ty, rest),
                [] => return Err(bad("no type")),
            };
            (label, FieldType::Plain(ty.to_string()), rest.join(" "))
        };
        let (name, number) = rest.split_once('=').ok_or_else(|| bad("no field number"))?;
        let number = number
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| bad("no field number"))?;
        Ok(FieldDecl {
            label,
            ty,
            name: name.trim().to_string(),
            number,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Str(String),
    Punct(char),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Word(w) => w.clone(),
            Token::Str(s) => format!("\"{s}\""),
            Token::Punct(c) => c.to_string(),
        }
    }
}

enum Lexeme {
    Token(Token, usize),
    LineComment(String, usize),
    BlockComment,
}

fn lex(text: &str) -> Result<Vec<Lexeme>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                let start = i + 2;
                let mut end = start;
                while end < chars.len() && chars[end] != '\n' {
                    end += 1;
                }
                let body: String = chars[start..end].iter().collect();
                let body = body.strip_prefix(' ').unwrap_or(&body).trim_end();
                out.push(Lexeme::LineComment(body.to_string(), line));
                i = end;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let open = line;
                i += 2;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("line {open}: unterminated /* comment")),
                        Some('*') if chars.get(i + 1) == Some(&'/') => {
                            i += 2;
                            break;
                        }
                        Some('\n') => {
                            line += 1;
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
                out.push(Lexeme::BlockComment);
            }
            '"' | '\'' => {
                let quote = c;
                let mut end = i + 1;
                while end < chars.len() && chars[end] != quote {
                    if chars[end] == '\n' {
                        return Err(format!("line {line}: string literal runs past the line"));
                    }
                    if chars[end] == '\\' {
                        end += 1;
                    }
                    end += 1;
                }
                if end >= chars.len() {
                    return Err(format!("line {line}: unterminated string literal"));
                }
                let body: String = chars[i + 1..end].iter().collect();
                out.push(Lexeme::Token(Token::Str(body), line));
                i = end + 1;
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '+' => {
                let mut end = i;
                while end < chars.len()
                    && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '_' | '.'))
                    || (end == i && matches!(chars[end], '-' | '+'))
                {
                    end += 1;
                }
                let word: String = chars[i..end].iter().collect();
                out.push(Lexeme::Token(Token::Word(word), line));
                i = end;
            }
            '{' | '}' | ';' | '=' | '(' | ')' | '<' | '>' | ',' | '[' | ']' => {
                out.push(Lexeme::Token(Token::Punct(c), line));
                i += 1;
            }
            other => return Err(format!("line {line}: unexpected character {other:?}")),
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    Message,
    Enum,
    Service,
    Oneof,
    RpcBody,
}

struct Scope {
    kind: ScopeKind,
    name: String,
}

/// Parses the text of a proto file.
pub fn parse(text: &str) -> Result<ProtoFile, String> {
    let mut file = ProtoFile::default();
    let mut scopes: Vec<Scope> = Vec::new();
    let mut tokens: Vec<Token> = Vec::new();
    let mut first_line = 0;
    let mut doc: Vec<String> = Vec::new();
    // Comment lines seen since the last token: (line, text).
    let mut pending: Vec<(usize, String)> = Vec::new();
    let mut last_token_line = 0;

    for lexeme in lex(text)? {
        match lexeme {
            Lexeme::BlockComment => pending.clear(),
            Lexeme::LineComment(body, line) => {
                if line == last_token_line {
                    // A comment after code on the same line documents nothing.
                    continue;
                }
                if pending.last().is_some_and(|(l, _)| *l + 1 != line) {
                    pending.clear();
                }
                pending.push((line, body));
            }
            Lexeme::Token(token, line) => {
                last_token_line = line;
                if tokens.is_empty() && token != Token::Punct('}') {
                    first_line = line;
                    doc = match pending.last() {
                        Some((l, _)) if *l + 1 == line => {
                            pending.iter().map(|(_, t)| t.clone()).collect()
                        }
                        _ => Vec::new(),
                    };
                }
                pending.clear();
                match token {
                    Token::Punct(';') => {
                        if tokens.is_empty() {
                            continue; // an empty statement
                        }
                        let element = statement(&file, &scopes, &tokens, first_line, &doc)?;
                        if element.kind == Kind::Other {
                            if let [Token::Word(w), name] = &tokens[..] {
                                if w == "package" {
                                    file.package = name.text();
                                }
                            }
                        }
                        file.elements.push(element);
                        tokens.clear();
                    }
                    Token::Punct('{') => {
                        let (kind, scope) = match tokens.first() {
                            Some(Token::Word(w)) if w == "message" => {
                                (Kind::Message, ScopeKind::Message)
                            }
                            Some(Token::Word(w)) if w == "enum" => (Kind::Enum, ScopeKind::Enum),
                            Some(Token::Word(w)) if w == "service" => {
                                (Kind::Service, ScopeKind::Service)
                            }
                            Some(Token::Word(w)) if w == "oneof" => (Kind::Oneof, ScopeKind::Oneof),
                            Some(Token::Word(w)) if w == "rpc" => (Kind::Rpc, ScopeKind::RpcBody),
                            _ => {
                                return Err(format!(
                                    "line {first_line}: unexpected '{{' after {:?}",
                                    joined(&tokens)
                                ))
                            }
                        };
                        let element = if kind == Kind::Rpc {
                            statement(&file, &scopes, &tokens, first_line, &doc)?
                        } else {
                            let name = match tokens.as_slice() {
                                [_, Token::Word(name)] => name.clone(),
                                _ => {
                                    return Err(format!(
                                        "line {first_line}: malformed declaration {:?}",
                                        joined(&tokens)
                                    ))
                                }
                            };
                            let element = Element {
                                kind,
                                name: qualify(&file.package, &scopes, &name),
                                scope: scope_path(&scopes),
                                statement: joined(&tokens),
                                doc: doc.clone(),
                                line: first_line,
                            };
                            scopes.push(Scope { kind: scope, name });
                            file.elements.push(element);
                            tokens.clear();
                            continue;
                        };
                        file.elements.push(element);
                        scopes.push(Scope {
                            kind: ScopeKind::RpcBody,
                            name: String::new(),
                        });
                        tokens.clear();
                    }
                    Token::Punct('}') => {
                        if !tokens.is_empty() {
                            return Err(format!(
                                "line {first_line}: statement {:?} lacks its ';'",
                                joined(&tokens)
                            ));
                        }
                        if scopes.pop().is_none() {
                            return Err(format!("line {line}: '}}' closes nothing"));
                        }
                    }
                    other => tokens.push(other),
                }
            }
        }
    }
    if !tokens.is_empty() {
        return Err(format!(
            "line {first_line}: statement {:?} lacks its ';'",
            joined(&tokens)
        ));
    }
    if let Some(open) = scopes.last() {
        return Err(format!("end of file inside {:?}", open.name));
    }
    Ok(file)
}

fn joined(tokens: &[Token]) -> String {
    tokens.iter().map(Token::text).collect::<Vec<_>>().join(" ")
}

/// The names of the enclosing messages, enums and services (oneofs and rpc
/// bodies do not name anything).
fn named_scopes(scopes: &[Scope]) -> impl Iterator<Item = &str> {
    scopes
        .iter()
        .filter(|s| !matches!(s.kind, ScopeKind::Oneof | ScopeKind::RpcBody))
        .map(|s| s.name.as_str())
}

fn scope_path(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .filter(|s| s.kind != ScopeKind::RpcBody)
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

fn qualify(package: &str, scopes: &[Scope], name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !package.is_empty() {
        parts.push(package);
    }
    parts.extend(named_scopes(scopes));
    parts.push(name);
    parts.join(".")
}

fn statement(
    file: &ProtoFile,
    scopes: &[Scope],
    tokens: &[Token],
    line: usize,
    doc: &[String],
) -> Result<Element, String> {
    let first = match tokens.first() {
        Some(Token::Word(w)) => w.as_str(),
        _ => {
            return Err(format!(
                "line {line}: malformed statement {:?}",
                joined(tokens)
            ))
        }
    };
    let other = matches!(
        first,
        "syntax" | "package" | "import" | "option" | "reserved" | "extensions"
    );
    let kind = match scopes.last().map(|s| s.kind) {
        _ if other => Kind::Other,
        None => {
            return Err(format!(
                "line {line}: unexpected top-level statement {:?}",
                joined(tokens)
            ))
        }
        Some(ScopeKind::Message | ScopeKind::Oneof) => Kind::Field,
        Some(ScopeKind::Enum) => Kind::EnumValue,
        Some(ScopeKind::Service) if first == "rpc" => Kind::Rpc,
        Some(_) => {
            return Err(format!(
                "line {line}: unexpected statement {:?}",
                joined(tokens)
            ))
        }
    };
    let name = match kind {
        Kind::Other => String::new(),
        Kind::Rpc => match tokens.get(1) {
            Some(Token::Word(name)) => name.clone(),
            _ => return Err(format!("line {line}: rpc without a name")),
        },
        Kind::EnumValue => first.to_string(),
        _ => {
            // The field's name is the word right before `=`.
            let eq = tokens
                .iter()
                .position(|t| *t == Token::Punct('='))
                .ok_or_else(|| format!("line {line}: field {:?} has no number", joined(tokens)))?;
            match eq.checked_sub(1).and_then(|i| tokens.get(i)) {
                Some(Token::Word(name)) => name.clone(),
                _ => {
                    return Err(format!(
                        "line {line}: field {:?} has no name",
                        joined(tokens)
                    ))
                }
            }
        }
    };
    let name = if kind == Kind::Other {
        name
    } else {
        qualify(&file.package, scopes, &name)
    };
    Ok(Element {
        kind,
        name,
        scope: scope_path(scopes),
        statement: joined(tokens),
        doc: doc.to_vec(),
        line,
    })
}
