//! Tidy checks, in the spirit of rust-analyzer's: the docs say what the
//! code does (every log event in `docs/logs.md`, every variable with its
//! default in `docs/configuration.md`), and the code keeps its structural
//! rules. Each failure says what to change, and where.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// Every `.rs` file under `dir` (relative to the repository), with its text.
pub(crate) fn rust_files(dir: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join(dir), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let relative = p.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            (relative, text)
        })
        .collect()
}

/// A page of `docs/`, whole: it must open with `# {title}` (the page is
/// the section a test reads).
fn doc_page(relative: &str, title: &str) -> String {
    let text = read(relative);
    assert!(text.starts_with(&format!("# {title}\n")), "{relative} opens with `# {title}`");
    text
}

/// The text of each `` `code span` `` in `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_event_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Byte offsets where `word` occurs as a whole identifier.
fn word_at<'a>(text: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).map(|(i, _)| i).filter(move |&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// The string literal that `text` starts with (after blanks), if any.
fn leading_literal(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    rest.find('"').map(|end| &rest[..end])
}

/// The text between the bracket at `open` and its match.
fn balanced(text: &str, open: usize) -> &str {
    let (o, c) = match text.as_bytes()[open] {
        b'(' => (b'(', b')'),
        b'{' => (b'{', b'}'),
        other => panic!("not a bracket: {}", other as char),
    };
    let mut depth = 0;
    for (i, &b) in text.as_bytes().iter().enumerate().skip(open) {
        if b == o {
            depth += 1;
        } else if b == c {
            depth -= 1;
            if depth == 0 {
                return &text[open + 1..i];
            }
        }
    }
    &text[open + 1..]
}

/// The expression `text` starts with: up to a `,`, `;`, closing bracket or
/// line end outside brackets.
fn expression(text: &str) -> &str {
    let text = text.trim_start();
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return text[..i].trim(),
            ')' | ']' | '}' => depth -= 1,
            ',' | ';' | '\n' if depth == 0 => return text[..i].trim(),
            _ => {}
        }
    }
    text.trim()
}

/// String literals in `text` that look like event names.
fn literals(text: &str) -> impl Iterator<Item = &str> {
    text.split('"').skip(1).step_by(2).filter(|s| is_event_name(s))
}

/// Every event name the host logs: `event = "name"` literals, the names
/// returned by `fn event(…)` (error types that name their log event), and
/// the literal arguments of functions that log a parameter
/// `event: &'static str` (`event,` in their macro).
fn host_events() -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let mut unknown = Vec::new();
    let files = rust_files("host");
    let mut passers = Vec::new();
    for (path, text) in &files {
        for at in word_at(text, "event") {
            let after = &text[at + "event".len()..];
            let Some(value) = after.trim_start().strip_prefix('=').filter(|v| !v.starts_with('=')) else { continue };
            if text[..at].trim_end().ends_with("let") || text[..at].trim_end().ends_with("let mut") {
                continue; // a variable, not a log field
            }
            let place = format!("{path}:{}", line_of(text, at));
            if let Some(name) = leading_literal(value).filter(|n| is_event_name(n)) {
                names.entry(name.to_string()).or_insert(place);
                continue;
            }
            let expr = expression(value);
            if value.lines().next().unwrap_or("").contains("=>") {
                continue; // a `select!` arm's binding
            }
            // `.event()` names come from `fn event`; `%entry.event` passes a guest's own name through.
            if !(expr.ends_with(".event()") || expr == "%entry.event" || expr.starts_with('"')) {
                unknown.push(format!("{place}: event = {expr}"));
            }
        }
        for (at, _) in text.match_indices("fn event(") {
            let body = &text[at..];
            let open = body.find('{').expect("fn event has a body");
            for name in literals(balanced(body, open)) {
                names.entry(name.to_string()).or_insert_with(|| format!("{path}:{}", line_of(text, at)));
            }
        }
        for (at, _) in text.match_indices("event: &'static str") {
            let signature = &text[..at];
            let Some(fn_at) = signature.rfind("fn ") else { continue };
            let name = signature[fn_at + 3..].split(['(', '<']).next().unwrap().trim().to_string();
            passers.push(name);
        }
    }
    for function in &passers {
        for (path, text) in &files {
            for (at, _) in text.match_indices(&format!("{function}(")) {
                if text[..at].ends_with("fn ") {
                    continue;
                }
                let args = balanced(text, at + function.len());
                for name in literals(args) {
                    names.entry(name.to_string()).or_insert_with(|| format!("{path}:{}", line_of(text, at)));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "tidy cannot tell which event names these log lines use; log a literal (`event = \"name\"`), \
         or teach tests/it/tidy.rs (host_events) where the names come from:\n  {}",
        unknown.join("\n  ")
    );
    names
}

/// Every event name the default guest logs: `log("name", …)` in `guest/agent/src`.
fn guest_events() -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for (path, text) in rust_files("guest/agent/src") {
        for at in word_at(&text, "log") {
            let Some(args) = text[at + 3..].strip_prefix('(') else { continue };
            if let Some(name) = leading_literal(args).filter(|n| is_event_name(n)) {
                names.entry(name.to_string()).or_insert_with(|| format!("{path}:{}", line_of(&text, at)));
            }
        }
    }
    names
}

/// The event names a list of `docs/logs.md` documents: the code spans of its items
/// (`- ` lines and their indented continuations; descriptions, in
/// parentheses, use no code spans).
fn listed(part: &str) -> BTreeSet<String> {
    part.lines()
        .filter(|l| l.starts_with("- ") || l.starts_with("  "))
        .flat_map(code_spans)
        .filter(|s| is_event_name(s))
        .map(str::to_string)
        .collect()
}

/// What differs between the names `side` logs and those its list in
/// `docs/logs.md` has.
fn compare_events(
    side: &str,
    list: &str,
    in_code: &BTreeMap<String, String>,
    in_docs: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, place) in in_code {
        if !in_docs.contains(name) {
            problems.push(format!("`{name}` (logged at {place}) is missing from the `{list}` list: add it there"));
        }
    }
    for name in in_docs.iter().filter(|n| !in_code.contains_key(*n)) {
        problems.push(format!("`{name}` is in the `{list}` list, but the {side} never logs it: remove it there"));
    }
    problems
}

#[test]
fn every_logged_event_is_documented_and_every_documented_one_is_logged() {
    let logs = doc_page("docs/logs.md", "Logs");
    let host_at = logs.find("\nHost events").expect("docs/logs.md has a `Host events` list");
    let guest_at = logs.find("\nGuest events").expect("docs/logs.md has a `Guest events` list");
    assert!(host_at < guest_at, "docs/logs.md: the host's list comes before the guest's");
    let mut problems = compare_events("host", "Host events", &host_events(), &listed(&logs[host_at..guest_at]));
    problems.extend(compare_events("default guest", "Guest events", &guest_events(), &listed(&logs[guest_at..])));
    assert!(problems.is_empty(), "docs/logs.md:\n  {}", problems.join("\n  "));
}

/// Every variable a setting reads, with its default, from the command
/// line's definitions (`config/defs.rs`, `providers/settings.rs`, the CLI).
fn defined_variables() -> BTreeMap<String, Option<String>> {
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, Option<String>>) {
        for arg in cmd.get_arguments() {
            let Some(var) = arg.get_env() else { continue };
            let var = var.to_string_lossy().into_owned();
            let default = arg.get_default_values().first().map(|d| d.to_string_lossy().into_owned());
            if let Some(seen) = out.insert(var.clone(), default.clone()) {
                assert_eq!(seen, default, "{var} is defined twice with different defaults: define it once");
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&hotline::cli::command(), &mut out);
    assert!(out.contains_key("HOTLINE_EOU_MS"), "the settings' definitions have variables");
    out
}

/// Variables read outside the settings' definitions: `env::var("X")`,
/// `env::var_os("X")` and `get("X")` (a lookup function standing for the
/// environment) in `host/`, and `RUST_LOG` for a tracing `from_default_env`.
fn other_variables() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // A build script's variables are cargo's, not the server's settings.
    for (path, text) in rust_files("host").into_iter().filter(|(path, _)| !path.ends_with("build.rs")) {
        for call in ["env::var(", "env::var_os(", "get("] {
            for (at, _) in text.match_indices(call) {
                let Some(name) = leading_literal(&text[at + call.len()..]) else { continue };
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                    out.entry(name.to_string()).or_insert_with(|| format!("{path}:{}", line_of(&text, at)));
                }
            }
        }
        if let Some(at) = text.find("from_default_env") {
            out.entry("RUST_LOG".into()).or_insert_with(|| format!("{path}:{}", line_of(&text, at)));
        }
    }
    out
}

/// The variable tables of `docs/configuration.md`: each row's variable
/// names, with its default cell.
fn documented_variables(section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        for name in code_spans(cells[0]) {
            out.insert(name.to_string(), cells.get(1).copied().unwrap_or("").to_string());
        }
    }
    out
}

#[test]
fn every_variable_is_in_the_configuration_tables_with_its_default() {
    let section = doc_page("docs/configuration.md", "Configuration");
    let documented = documented_variables(&section);
    let defined = defined_variables();
    let mut problems = Vec::new();
    for (var, default) in &defined {
        let Some(cell) = documented.get(var) else {
            problems.push(format!("{var} has no row in docs/configuration.md's tables: add one"));
            continue;
        };
        match default {
            Some(d) if cell != &format!("`{d}`") => problems.push(format!(
                "{var}: docs/configuration.md says the default is {cell}, the definition says `{d}`: fix the page"
            )),
            None if code_spans(cell).len() == 1
                && cell.starts_with('`')
                && cell.ends_with('`')
                && !cell.contains('$') =>
            {
                problems.push(format!(
                    "{var}: docs/configuration.md gives the default {cell}, but the definition has none (it is derived or unset): \
                     say where it comes from instead"
                ))
            }
            _ => {}
        }
    }
    let others = other_variables();
    for (var, place) in &others {
        if defined.contains_key(var) {
            continue;
        }
        if !documented.contains_key(var) && !code_spans(&section).iter().any(|s| word_at(s, var).next().is_some()) {
            problems.push(format!("{var} (read at {place}) is not in docs/configuration.md's tables: add it"));
        }
    }
    let filter = format!("`{}`", hotline_telemetry::DEFAULT_FILTER);
    match documented.get("RUST_LOG") {
        Some(cell) if *cell == filter => {}
        cell => problems.push(format!(
            "RUST_LOG: docs/configuration.md's default is {}, hotline-telemetry's DEFAULT_FILTER is {filter}: fix the page",
            cell.map_or("missing", String::as_str)
        )),
    }
    let known: BTreeSet<String> = defined.keys().cloned().chain(others.into_keys()).collect();
    for var in documented.keys().filter(|v| !known.contains(*v)) {
        problems.push(format!("{var} is in docs/configuration.md's tables, but nothing reads it: remove the row"));
    }
    assert!(problems.is_empty(), "docs/configuration.md:\n  {}", problems.join("\n  "));
}

#[test]
fn only_the_sandbox_names_wasmtime() {
    let mut found = Vec::new();
    for dir in ["host", "benches", "tests"] {
        for (path, text) in rust_files(dir) {
            // The tidy checks name it to look for it.
            if path.starts_with("host/sandbox/") || path == "tests/it/tidy.rs" || path == "tests/it/floors.rs" {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                if line.to_lowercase().contains("wasmtime") {
                    found.push(format!("{path}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "only hotline-sandbox (host/sandbox/) names wasmtime (ARCHITECTURE.md, Invariants); elsewhere, say \"the sandbox\" \
         or use sandbox::…, comments included:\n  {}",
        found.join("\n  ")
    );
}

/// The Markdown files whose links are checked: the README, ARCHITECTURE.md
/// and every page of `docs/`.
fn markdown_files() -> Vec<String> {
    let mut files = vec!["README.md".to_string(), "ARCHITECTURE.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("reading docs/")
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "md"))
        .map(|p| format!("docs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The anchor GitHub gives a heading: lower case, spaces as `-`, and
/// punctuation other than `-` and `_` left out (`A turn's latency` is
/// `a-turns-latency`).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Each line of `text` outside fenced code blocks, with its 1-based number,
/// and the text of inline code spans blanked out (a span may run over a
/// line break, not over a blank line).
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let (mut fenced, mut in_code) = (false, false);
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if line.trim().is_empty() {
            in_code = false;
        }
        let prose: String = line
            .chars()
            .map(|c| {
                if c == '`' {
                    in_code = !in_code;
                    ' '
                } else if in_code {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        out.push((n + 1, prose));
    }
    out
}

/// The anchors of a Markdown file's headings, GitHub's way (a repeated
/// heading's anchor gets `-1`, `-2`…).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        if fenced || !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// Every relative link `[text](target)` (and image) of a Markdown file
/// outside code: its line and its target.
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        for (at, _) in line.match_indices("](") {
            let rest = &line[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            // `[text](path "title")`: the target is the first word.
            let target = rest[..end].split_whitespace().next().unwrap_or("").trim_matches(|c| c == '<' || c == '>');
            if target.is_empty() || ["http://", "https://", "mailto:"].iter().any(|s| target.starts_with(s)) {
                continue;
            }
            out.push((n, target.to_string()));
        }
    }
    out
}

/// `base`'s directory joined with `relative`, `.` and `..` resolved, as a
/// path from the repository's root; `None` when it leaves the repository.
fn resolve(base: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let files = markdown_files();
    assert!(files.len() > 3, "the docs are found: {files:?}");
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = read(file);
        for (line, target) in relative_links(&text) {
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let linked = if path.is_empty() { Some(file.clone()) } else { resolve(file, path) };
            let Some(linked) = linked.filter(|l| root().join(l).exists()) else {
                problems.push(format!("{file}:{line}: ({target}): no such file in the repository: fix the link"));
                continue;
            };
            let Some(anchor) = anchor else { continue };
            if !linked.ends_with(".md") {
                continue;
            }
            if !anchors(&read(&linked)).contains(anchor) {
                problems.push(format!(
                    "{file}:{line}: ({target}): {linked} has no heading whose anchor is `#{anchor}`: \
                     link to a heading it has (lower case, spaces as `-`, no punctuation but `-` and `_`)"
                ));
            }
        }
    }
    assert!(checked > 50, "the links are found: only {checked}");
    assert!(problems.is_empty(), "broken links:\n  {}", problems.join("\n  "));
}

#[test]
fn the_slugs_are_githubs() {
    assert_eq!(slug("A turn's latency"), "a-turns-latency");
    assert_eq!(slug("Stop grace and `HOTLINE_DRAIN_SECS`"), "stop-grace-and-hotline_drain_secs");
    assert_eq!(slug("Fetch: HTTP requests for call logic"), "fetch-http-requests-for-call-logic");
    assert_eq!(slug("Turn-taking: hearing the caller"), "turn-taking-hearing-the-caller");
    let text = "# Title\n```sh\n# not a heading\n```\n## Same\n## Same\n#nospace\n";
    let expected: BTreeSet<String> = ["title", "same", "same-1"].into_iter().map(String::from).collect();
    assert_eq!(anchors(text), expected);
    let links = relative_links("[a](x.md) `[b](in-code.md)` [c](https://example.com)\n![d](e.png \"title\") [f](#g)\n");
    let targets: Vec<&str> = links.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(targets, ["x.md", "e.png", "#g"]);
    assert_eq!(resolve("docs/a.md", "../README.md").as_deref(), Some("README.md"));
    assert_eq!(resolve("docs/a.md", "screenshots/x.png").as_deref(), Some("docs/screenshots/x.png"));
    assert_eq!(resolve("README.md", "../outside.md"), None);
}

#[test]
fn the_readme_is_at_most_300_lines() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines, more than 300: it is the newcomer's page; move the detail to a page of docs/ \
         (listed in docs/README.md and in the README's Where to read on) and link it"
    );
}

/// `docs/endpoints.md`'s routes: the first cell of each row, `METHOD
/// /path` (a query shown after `?` is not part of the route).
fn documented_endpoints(page: &str) -> BTreeSet<(String, String)> {
    page.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|cell| cell.split('`').next())
        .filter_map(|route| route.split_once(' '))
        .map(|(method, path)| (method.to_string(), path.split('?').next().unwrap().to_string()))
        .collect()
}

#[test]
fn every_route_is_in_the_endpoints_page_and_every_row_is_a_route() {
    let page = doc_page("docs/endpoints.md", "Endpoints");
    let mut documented = documented_endpoints(&page);
    // The dashboard serves every path under `/app/` (no table to hold it to).
    assert!(documented.remove(&("GET".into(), "/app/...".into())), "docs/endpoints.md lists `GET /app/...`");
    // HEAD is served where GET is, for probes; the page lists the GET.
    let routes: BTreeSet<(String, String)> = hotline::http::endpoints()
        .into_iter()
        .filter(|(method, _)| *method != "HEAD")
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let mut problems = Vec::new();
    for (method, path) in routes.difference(&documented) {
        problems.push(format!("`{method} {path}` is served but has no row in docs/endpoints.md: add one"));
    }
    for (method, path) in documented.difference(&routes) {
        problems.push(format!(
            "`{method} {path}` is in docs/endpoints.md but no router's table has it (host/http/*.rs, ROUTES): \
             remove the row or add the route"
        ));
    }
    assert!(problems.is_empty(), "docs/endpoints.md:\n  {}", problems.join("\n  "));
}

#[test]
fn the_endpoints_page_is_read_row_by_row() {
    let page =
        "| route | what |\n|---|---|\n| `GET /a` | x |\n| `POST /b/{id}` | y |\n| `GET /c?hours=N` | z |\nnot a row\n";
    let want: BTreeSet<(String, String)> = [("GET", "/a"), ("POST", "/b/{id}"), ("GET", "/c")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented_endpoints(page), want);
}

/// `X.Y.Z` as numbers, to order versions.
fn version_of(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

#[test]
fn the_newest_contract_is_named_once_and_the_docs_follow_it() {
    let newest = hotline::sandbox::wit::NEWEST;
    let mut problems = Vec::new();
    let on_disk = std::fs::read_dir(root().join("wit"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(|n| n.strip_prefix('v')).map(str::to_string))
        .filter_map(|v| version_of(&v).map(|n| (n, v)))
        .max()
        .map(|(_, v)| v);
    if on_disk.as_deref() != Some(newest) {
        problems.push(format!("wit/'s newest directory is v{on_disk:?}, hotline_sandbox::wit::NEWEST is {newest}"));
    }
    let package = read(&format!("wit/v{newest}/call.wit"));
    if !package.contains(&format!("package hotline:call@{newest};")) {
        problems.push(format!("wit/v{newest}/call.wit does not declare `package hotline:call@{newest};`"));
    }
    if !read("host/sandbox/wit/mod.rs").contains(&format!("path: \"../../wit/v{newest}\"")) {
        problems.push(format!("host/sandbox/wit/mod.rs: the newest bindings' `bindgen!` path is not wit/v{newest}"));
    }
    if !read("wit/README.md").lines().any(|l| l.starts_with(&format!("| `v{newest}/` |"))) {
        problems.push(format!("wit/README.md's table has no row for v{newest}"));
    }
    // Where the docs send a reader to the contract, it is the newest.
    for page in ["README.md", "ARCHITECTURE.md", "docs/guests.md"] {
        let text = read(page);
        for (at, _) in text.match_indices("/call.wit") {
            let start = text[..at].rfind('v').unwrap_or(at);
            let named = &text[start + 1..at];
            if version_of(named).is_some() && named != newest {
                problems
                    .push(format!("{page}:{}: names v{named}/call.wit, the newest is v{newest}", line_of(&text, at)));
            }
        }
    }
    assert!(problems.is_empty(), "the newest contract:\n  {}", problems.join("\n  "));
}
