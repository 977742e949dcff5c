//! The block syntax keepalived.conf and the Corefile share: one statement per line (words),
//! `{ ... }` blocks, line comments, double-quoted words.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Word(String),
    Open,
    Close,
}

/// One statement: its words and, when it opens one, its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stmt {
    pub line: usize,
    pub words: Vec<String>,
    pub block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub fn keyword(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }

    pub fn arg(&self, n: usize) -> Option<&str> {
        self.words.get(n).map(String::as_str)
    }

    pub fn children(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or(&[])
    }

    pub fn text(&self) -> String {
        self.words.join(" ")
    }
}

/// Words, `{` and `}` with their 1-based line; a word starting with one of `comments` starts a
/// comment; double quotes group a word (and hide braces, as in Corefile templates).
pub(super) fn tokenize(text: &str, comments: &[char]) -> Vec<(usize, Token)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let mut chars = line.chars().peekable();
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut Vec<(usize, Token)>| {
            if !word.is_empty() {
                out.push((line_no, Token::Word(std::mem::take(word))));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                c if word.is_empty() && comments.contains(&c) => break,
                '"' => {
                    for q in chars.by_ref() {
                        if q == '"' {
                            break;
                        }
                        word.push(q);
                    }
                    out.push((line_no, Token::Word(std::mem::take(&mut word))));
                }
                '{' | '}' => {
                    flush(&mut word, &mut out);
                    out.push((line_no, if c == '{' { Token::Open } else { Token::Close }));
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut out);
    }
    out
}

/// Parses statements until the end or a `}`; returns them and whether a `}` ended the block.
pub(super) fn parse_block(tokens: &[(usize, Token)], pos: &mut usize) -> (Vec<Stmt>, bool) {
    let mut stmts: Vec<Stmt> = Vec::new();
    while let Some((line, token)) = tokens.get(*pos) {
        match token {
            Token::Close => {
                *pos += 1;
                return (stmts, true);
            }
            Token::Open => {
                // A `{` on a line of its own opens the previous statement's block.
                *pos += 1;
                let (block, closed) = parse_block(tokens, pos);
                match stmts.last_mut() {
                    Some(last) if last.block.is_none() => last.block = Some(block),
                    _ => stmts.push(Stmt {
                        line: *line,
                        words: Vec::new(),
                        block: Some(block),
                    }),
                }
                if !closed {
                    return (stmts, false);
                }
            }
            Token::Word(_) => {
                let mut words = Vec::new();
                while let Some((l, Token::Word(w))) = tokens.get(*pos) {
                    if l != line {
                        break;
                    }
                    words.push(w.clone());
                    *pos += 1;
                }
                let mut stmt = Stmt {
                    line: *line,
                    words,
                    block: None,
                };
                if let Some((_, Token::Open)) = tokens.get(*pos) {
                    *pos += 1;
                    let (block, closed) = parse_block(tokens, pos);
                    stmt.block = Some(block);
                    stmts.push(stmt);
                    if !closed {
                        return (stmts, false);
                    }
                } else {
                    stmts.push(stmt);
                }
            }
        }
    }
    (stmts, false)
}

/// A parsed file: its statements and where its braces do not match.
pub(super) struct Parsed {
    pub stmts: Vec<Stmt>,
    /// Lines of `}` that close nothing (skipped).
    pub stray_closes: Vec<usize>,
    /// Line of the first `{` never closed.
    pub unclosed: Option<usize>,
}

pub(super) fn parse(text: &str, comments: &[char]) -> Parsed {
    let tokens = tokenize(text, comments);
    let mut pos = 0;
    let mut stmts = Vec::new();
    let mut stray_closes = Vec::new();
    loop {
        let (mut part, closed) = parse_block(&tokens, &mut pos);
        stmts.append(&mut part);
        if !closed {
            break;
        }
        stray_closes.push(tokens.get(pos.saturating_sub(1)).map_or(0, |(l, _)| *l));
    }
    Parsed {
        stmts,
        stray_closes,
        unclosed: first_unclosed(&tokens),
    }
}

fn first_unclosed(tokens: &[(usize, Token)]) -> Option<usize> {
    let mut open: Vec<usize> = Vec::new();
    for (line, tok) in tokens {
        match tok {
            Token::Open => open.push(*line),
            Token::Close => {
                open.pop();
            }
            Token::Word(_) => {}
        }
    }
    open.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_quoted_words_and_drop_comments() {
        let toks = tokenize(
            "vrrp_script x { # c\n script \"/bin/a b\" ! c\n}\n",
            &['#', '!'],
        );
        assert_eq!(
            toks,
            vec![
                (1, Token::Word("vrrp_script".into())),
                (1, Token::Word("x".into())),
                (1, Token::Open),
                (2, Token::Word("script".into())),
                (2, Token::Word("/bin/a b".into())),
                (3, Token::Close),
            ]
        );
    }

    #[test]
    fn a_brace_on_its_own_line_opens_the_previous_statement() {
        let toks = tokenize("unicast_peer\n{\n192.0.2.12\n}\n", &['#']);
        let mut pos = 0;
        let (stmts, closed) = parse_block(&toks, &mut pos);
        assert!(!closed);
        assert_eq!(stmts.len(), 1);
        assert_eq!(stmts[0].children()[0].words, ["192.0.2.12"]);
    }
}
