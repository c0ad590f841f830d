//! The documentation holds together: README.md stays short, and every relative link between
//! README.md and the pages under docs/ resolves, to a file that exists and, with an
//! `#anchor`, to a heading of that file.
//!
//! Links are markdown inline links, `[text](path)`, `[text](path#anchor)`, `[text](#anchor)`
//! and images `![alt](path)`, outside fenced code blocks and code spans (text there is not
//! a link). `http(s)://` and `mailto:` links are not followed. An anchor is checked against
//! the target's ATX headings (`#` to `######`) slugged as GitHub does: lower case, spaces to
//! `-`, every character other than letters, digits, `-` and `_` dropped, and `-1`, `-2`...
//! appended to repeated slugs; `id="..."`/`name="..."` attributes count too. A link must
//! stay inside the repository (GitHub does not follow one out of it). No markdown crate:
//! the subset above is what these files use, and the checker's own tests below pin it.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The README's length a newcomer reads in a few minutes; the reference lives in docs/.
const README_MAX_LINES: usize = 150;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, relative to `root`, sorted.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    if let Ok(dir) = std::fs::read_dir(root.join("docs")) {
        let mut pages: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .map(|p| Path::new("docs").join(p.file_name().unwrap()))
            .collect();
        pages.sort();
        files.extend(pages);
    }
    files
}

/// `text` with fenced code blocks and code spans blanked out (newlines kept, so line numbers
/// stay right): what is left is the text markdown reads links from.
fn prose(text: &str) -> String {
    // Fenced blocks: a line opening with 3+ backticks or tildes (indented at most 3 spaces)
    // until a line closing with at least as many of the same character.
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        let opens = ['`', '~']
            .into_iter()
            .map(|c| (c, run(c)))
            .find(|&(_, n)| n >= 3 && indent <= 3);
        let blank = match (fence, opens) {
            (None, Some(f)) => {
                fence = Some(f);
                true
            }
            (None, None) => false,
            (Some((c, n)), _) => {
                let closing = run(c);
                if indent <= 3 && closing >= n && trimmed[closing..].trim().is_empty() {
                    fence = None;
                }
                true
            }
        };
        if blank {
            out.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        } else {
            out.push_str(line);
        }
    }
    // Code spans: a run of n backticks up to the next run of exactly n (across lines, as in
    // a paragraph); a run with no match is literal.
    let chars: Vec<char> = out.chars().collect();
    let mut result: Vec<char> = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let n = chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = chars[j..].iter().take_while(|&&c| c == '`').count();
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &mut result[i..j + n] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = j + n;
            }
            None => i += n,
        }
    }
    result.into_iter().collect()
}

/// A link found in a file: its 1-based line and its destination.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    dest: String,
}

/// Every inline link's destination in `text` (already passed through [`prose`]).
fn links(text: &str) -> Vec<Link> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '[' => {
                // The matching `]`, brackets nested, then `(` right after it.
                let mut depth = 0;
                let mut j = i;
                let mut end = None;
                while j < chars.len() {
                    match chars[j] {
                        '\\' => j += 1,
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let Some(end) = end else {
                    i += 1;
                    continue;
                };
                if chars.get(end + 1) != Some(&'(') {
                    i += 1;
                    continue;
                }
                // The destination: `<...>`, or up to whitespace or the unmatched `)`.
                let start = end + 2;
                let mut k = start;
                let dest: String = if chars.get(k) == Some(&'<') {
                    k += 1;
                    let s = k;
                    while k < chars.len() && chars[k] != '>' && chars[k] != '\n' {
                        k += 1;
                    }
                    chars[s..k].iter().collect()
                } else {
                    let mut parens = 0;
                    while k < chars.len() && !chars[k].is_whitespace() {
                        match chars[k] {
                            '(' => parens += 1,
                            ')' if parens == 0 => break,
                            ')' => parens -= 1,
                            _ => {}
                        }
                        k += 1;
                    }
                    chars[start..k].iter().collect()
                };
                let line = chars[..i].iter().filter(|&&c| c == '\n').count() + 1;
                found.push(Link { line, dest });
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    found
}

/// GitHub's anchor for a heading's text: markup removed, lower case, spaces to `-`, and
/// everything but letters, digits, `-` and `_` dropped.
fn slug(heading: &str) -> String {
    // A link in a heading reads as its text.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors a markdown file offers: its headings' slugs (repeats numbered as GitHub
/// numbers them) and any `id`/`name` attributes.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = BTreeSet::new();
    let mut in_fence: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        for marker in ["```", "~~~"] {
            if t.starts_with(marker) {
                match &in_fence {
                    None => in_fence = Some(marker.to_string()),
                    Some(m) if m == marker => in_fence = None,
                    Some(_) => {}
                }
            }
        }
        if in_fence.is_some() || t.starts_with("```") || t.starts_with("~~~") {
            continue;
        }
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            let heading = t[hashes..].trim().trim_end_matches('#').trim();
            let base = slug(heading);
            let n = seen.iter().filter(|s| **s == base).count();
            seen.push(base.clone());
            out.insert(if n == 0 { base } else { format!("{base}-{n}") });
        }
        for attr in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(i) = rest.find(attr) {
                rest = &rest[i + attr.len()..];
                if let Some(end) = rest.find('"') {
                    out.insert(rest[..end].to_string());
                }
            }
        }
    }
    out
}

/// `base/rel` with `.` and `..` resolved lexically; None if it climbs above the root.
fn join_inside(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let start = if rel.starts_with('/') {
        Path::new("")
    } else {
        base
    };
    for c in start.join(rel.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// Every broken link of `files` (paths relative to `root`), one message each.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut errors = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(root.join(file)) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{}: cannot read: {e}", file.display()));
                continue;
            }
        };
        for Link { line, dest } in links(&prose(&text)) {
            let at = format!("{}:{line}: ({dest})", file.display());
            let lower = dest.to_ascii_lowercase();
            if ["http://", "https://", "mailto:"]
                .iter()
                .any(|s| lower.starts_with(s))
            {
                continue;
            }
            if dest.is_empty() {
                errors.push(format!("{at}: empty link"));
                continue;
            }
            let (path, anchor) = match dest.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (dest.as_str(), None),
            };
            let path = path.replace("%20", " ");
            let target = if path.is_empty() {
                file.clone()
            } else {
                match join_inside(file.parent().unwrap_or(Path::new("")), &path) {
                    Some(t) => t,
                    None => {
                        errors.push(format!("{at}: leaves the repository"));
                        continue;
                    }
                }
            };
            let full = root.join(&target);
            if !full.exists() {
                errors.push(format!("{at}: {} does not exist", target.display()));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if full.extension().is_some_and(|x| x == "md") {
                let offered = anchors(&std::fs::read_to_string(&full).unwrap_or_default());
                if !offered.contains(anchor) {
                    errors.push(format!(
                        "{at}: no heading of {} has the anchor `#{anchor}`",
                        target.display()
                    ));
                }
            } else {
                let line_ref = anchor.split('-').all(|p| {
                    p.strip_prefix('L')
                        .is_some_and(|n| !n.is_empty() && n.parse::<u32>().is_ok())
                });
                if !line_ref {
                    errors.push(format!(
                        "{at}: `#{anchor}` into {}, which is not markdown",
                        target.display()
                    ));
                }
            }
        }
    }
    errors
}

#[test]
fn every_relative_link_between_the_readme_and_docs_resolves() {
    let root = root();
    let files = doc_files(&root);
    assert!(
        files.len() > 1,
        "docs/ holds the reference pages the README links to"
    );
    let errors = broken_links(&root, &files);
    assert!(
        errors.is_empty(),
        "{} broken link(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn the_readme_fits_on_a_few_screens() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < README_MAX_LINES,
        "README.md has {lines} lines; keep it under {README_MAX_LINES} and move reference to docs/"
    );
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let linked: BTreeSet<PathBuf> = links(&prose(&readme))
        .into_iter()
        .filter_map(|l| join_inside(Path::new(""), l.dest.split('#').next().unwrap_or("")))
        .collect();
    let orphans: Vec<String> = doc_files(&root)
        .into_iter()
        .skip(1)
        .filter(|p| !linked.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        orphans.is_empty(),
        "pages no README link reaches: {orphans:?}"
    );
}

// The checker itself: what it reads as a link and an anchor, and that it reports what is
// broken (a checker that finds nothing would pass every tree).

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Event time and identity"), "event-time-and-identity");
    assert_eq!(
        slug("Days, lateness and the watermark"),
        "days-lateness-and-the-watermark"
    );
    assert_eq!(slug("`churnwatch replay`"), "churnwatch-replay");
    assert_eq!(slug("`[kafka]`"), "kafka");
    assert_eq!(
        slug("SCRAM-SHA-256 and SCRAM-SHA-512"),
        "scram-sha-256-and-scram-sha-512"
    );
    assert_eq!(slug("max_in_flight (bytes)"), "max_in_flight-bytes");
    assert_eq!(slug("See [the runbook](runbook.md)"), "see-the-runbook");
    assert_eq!(slug("Live: the engine judges"), "live-the-engine-judges");
    let a = anchors("# A\n## Notes\n```\n# not a heading\n```\n## Notes\n<a id=\"x\"></a>\n");
    assert!(
        a.contains("notes") && a.contains("notes-1") && a.contains("x"),
        "{a:?}"
    );
    assert!(!a.contains("not-a-heading"), "{a:?}");
}

#[test]
fn links_in_code_are_not_links() {
    let text = "see [a](a.md) and `[b](b.md)` and ``x ` [c](c.md)``\n\
                ```sh\n[d](d.md)\n```\n[e\ntext](e.md#top) \\[f](f.md) [g] (g.md) ![h](h.png \"t\")\n";
    let dests: Vec<String> = links(&prose(text)).into_iter().map(|l| l.dest).collect();
    assert_eq!(dests, ["a.md", "e.md#top", "h.png"]);
    assert_eq!(links(&prose(text))[1].line, 5);
}

#[test]
fn broken_links_and_anchors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(
        root.join("README.md"),
        "# R\n[ok](docs/a.md#the-part) [ok](docs/a.md) [web](https://example.org/x.md)\n\
         [gone](docs/missing.md) [bad anchor](docs/a.md#nope) [self](#r) [self bad](#q)\n\
         [out](../elsewhere.md) `[code](docs/none.md)`\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "# A\n## The part\n[up](../README.md#r) [cfg](../c.toml#L3) [cfg bad](../c.toml#x)\n",
    )
    .unwrap();
    std::fs::write(root.join("c.toml"), "x = 1\n").unwrap();
    let errors = broken_links(root, &doc_files(root));
    let expected = [
        "README.md:3: (docs/missing.md): docs/missing.md does not exist",
        "README.md:3: (docs/a.md#nope): no heading of docs/a.md has the anchor `#nope`",
        "README.md:3: (#q): no heading of README.md has the anchor `#q`",
        "README.md:4: (../elsewhere.md): leaves the repository",
        "docs/a.md:3: (../c.toml#x): `#x` into c.toml, which is not markdown",
    ];
    assert_eq!(errors, expected);
}
