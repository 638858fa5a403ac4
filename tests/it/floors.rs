//! The floors keep their places: checks on the workspace's structure that
//! the compiler does not make by itself (it refuses a cycle between
//! crates, not a dependency that points the wrong way, nor a cycle between
//! the modules of one crate). Each failure says what to change.

use std::collections::{BTreeMap, BTreeSet};

use crate::tidy::{read, root, rust_files};

/// The package's name and its `[dependencies]` (not dev-dependencies),
/// from a manifest's text.
fn manifest(text: &str) -> (String, BTreeSet<String>) {
    let mut name = String::new();
    let mut deps = BTreeSet::new();
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[package]"
            && let Some(value) = line.strip_prefix("name = ")
        {
            name = value.trim_matches('"').to_string();
        }
        if section == "[dependencies]"
            && let Some(dep) = line.split(['=', '.', ' ']).next().filter(|d| !d.is_empty() && !d.starts_with('#'))
        {
            deps.insert(dep.to_string());
        }
    }
    (name, deps)
}

/// Every package of the host's workspace: its name and dependencies.
fn packages() -> BTreeMap<String, BTreeSet<String>> {
    let mut manifests = vec![root().join("Cargo.toml"), root().join("host/Cargo.toml")];
    for entry in std::fs::read_dir(root().join("host")).unwrap() {
        let path = entry.unwrap().path().join("Cargo.toml");
        if path.exists() {
            manifests.push(path);
        }
    }
    manifests.iter().map(|m| manifest(&std::fs::read_to_string(m).unwrap())).collect()
}

#[test]
fn each_floor_depends_only_on_the_floors_below_it() {
    let packages = packages();
    for name in ["hotline-common", "hotline-telemetry", "hotline-sandbox", "hotline-providers", "hotline-twilio"] {
        assert!(packages.contains_key(name), "{name} is a crate of the workspace (host/*/Cargo.toml)");
    }
    // Each floor, and the hotline crates it may depend on.
    let allowed: &[(&str, &[&str])] = &[
        ("hotline-common", &[]),
        ("hotline-telemetry", &[]),
        ("hotline-sandbox", &[]),
        ("hotline-providers", &["hotline-audio", "hotline-common"]),
        ("hotline-twilio", &["hotline-common", "hotline-twiml"]),
        ("hotline-store", &["hotline-audio", "hotline-common", "hotline-telemetry"]),
        ("hotline-sim", &["hotline-audio", "hotline-common", "hotline-providers", "hotline-twilio"]),
    ];
    let mut problems = Vec::new();
    for (name, deps) in &packages {
        if deps.contains("wasmtime") && name != "hotline-sandbox" {
            problems
                .push(format!("{name} depends on wasmtime: only hotline-sandbox may (ARCHITECTURE.md, Invariants)"));
        }
        let Some((_, may)) = allowed.iter().find(|(floor, _)| floor == name) else { continue };
        for dep in deps.iter().filter(|d| d.starts_with("hotline")) {
            if !may.contains(&dep.as_str()) {
                problems.push(format!(
                    "{name} depends on {dep}: a floor depends only on {may:?} (ARCHITECTURE.md, Crates)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The server crate's top-level modules (`host/*.rs` and the directories
/// that are not crates of their own), each with the modules its code (not
/// its tests) names as `crate::…`.
fn server_modules() -> BTreeMap<String, BTreeSet<String>> {
    let host = root().join("host");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&host).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_module = if path.is_dir() {
            !path.join("Cargo.toml").exists() && (path.join("mod.rs").exists())
        } else {
            path.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "build"
        };
        if is_module {
            modules.insert(name, path);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (name, path) in &modules {
        let relative = format!("host/{}", path.file_name().unwrap().to_string_lossy());
        let files = if path.is_dir() { rust_files(&relative) } else { vec![(relative.clone(), read(&relative))] };
        let mut uses = BTreeSet::new();
        for (_, text) in files.iter().filter(|(file, _)| !file.ends_with("/tests.rs")) {
            // Tests may reach anywhere: only the code before them counts.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for named in crate_paths(code) {
                if named != *name && names.contains(&named) {
                    uses.insert(named);
                }
            }
        }
        graph.insert(name.clone(), uses);
    }
    graph
}

/// The first segment after each `crate::` in `code`, including each
/// name of a `crate::{a, b::c}` group (comments skipped).
fn crate_paths(code: &str) -> Vec<String> {
    let code: String = code.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += (c == '{') as i32 - (c == '}') as i32;
                    depth < 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(group[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            out.push(ident(group[start..end].trim()));
        } else {
            out.push(ident(rest));
        }
    }
    out
}

/// A cycle in `graph`, as the modules around it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut found: Vec<String> = path[at..].iter().map(|n| n.to_string()).collect();
            found.push(node.to_string());
            return Some(found);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn a_cycle_is_found_and_a_group_import_is_read_whole() {
    let paths = crate_paths(
        "use crate::a::B;\nuse crate::{b, c::{D, E}, d as f};\n// crate::commented\nlet x = crate::e::f();",
    );
    assert_eq!(paths, ["a", "b", "c", "d", "e"]);
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(cycle(&graph(&[("app", "http"), ("http", "media")])), None);
    assert_eq!(
        cycle(&graph(&[("app", "http"), ("http", "media"), ("media", "app")])).unwrap(),
        ["app", "http", "media", "app"]
    );
}

#[test]
fn the_servers_modules_have_no_cycle() {
    let graph = server_modules();
    for module in ["app", "http", "media", "config", "fleet", "versions"] {
        assert!(graph.contains_key(module), "host/{module} is one of the server's modules");
    }
    if let Some(cycle) = cycle(&graph) {
        panic!(
            "host/: the modules {} name each other in a cycle (outside tests): a lower floor must not name a higher one \
             (ARCHITECTURE.md, Crates); pass it what it needs instead",
            cycle.join(" → ")
        );
    }
}

#[test]
fn calls_never_see_http_or_app() {
    let mut problems = Vec::new();
    for (file, text) in rust_files("host/media") {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            for word in ["crate::app", "crate::http", "crate::admission", "hyper", "http::", "App"] {
                let found = code.match_indices(word).any(|(at, _)| {
                    let before = code[..at].chars().next_back();
                    let after = code[at + word.len()..].chars().next();
                    let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                    boundary(before) && (word.ends_with("::") || boundary(after))
                });
                if found {
                    problems.push(format!(
                        "{file}:{}: names `{word}`: a call takes `Calls` (media/calls.rs), never App or HTTP",
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
