//! The module layers stay acyclic: no module of the engine, the CLI or the
//! benchmarks reaches (through its `use` lines and paths) a module that
//! reaches it back. Test modules (from the first `#[cfg(test)]` on) are not
//! part of the layering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`search::vector`) → source text before its tests.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text[..],
            };
            // Comments (doc links included) are not imports.
            let code: String = code
                .lines()
                .map(|line| line.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), code);
        }
    }
    out
}

/// Every `a::b::c` path in `code` whose first segment is `crate`, `super`,
/// `self` or a child module, with grouped imports expanded one level.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let boundary = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        if boundary && (c.is_alphabetic() || c == '_') {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let start = j;
                while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_') {
                    j += 1;
                }
                segs.push(bytes[start..j].iter().collect::<String>());
                if j + 2 < bytes.len() && bytes[j] == ':' && bytes[j + 1] == ':' {
                    j += 2;
                    if bytes[j] == '{' {
                        // `a::{b, c::d}`: one path per first-level item.
                        let close = (j..bytes.len()).find(|&k| bytes[k] == '}').unwrap_or(j);
                        let inner: String = bytes[j + 1..close].iter().collect();
                        for item in inner.split(',') {
                            let mut p = segs.clone();
                            p.extend(item.trim().split("::").map(|s| s.trim().to_string()));
                            found.push(p);
                        }
                        j = close;
                        break;
                    }
                    if !(bytes[j].is_alphabetic() || bytes[j] == '_') {
                        break;
                    }
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                found.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// The module each path of `module` names (the longest known prefix).
fn edges(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let here: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    };
    let mut out = BTreeSet::new();
    for path in paths(code) {
        let mut base: Vec<String> = Vec::new();
        let mut rest = path.as_slice();
        match rest.first().map(String::as_str) {
            Some("crate") => rest = &rest[1..],
            Some("super") => {
                base = here.clone();
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some("self") => {
                base = here.clone();
                rest = &rest[1..];
            }
            Some(first) => {
                let mut child = here.clone();
                child.push(first.to_string());
                if !known.contains(&child.join("::")) {
                    continue;
                }
                base = here.clone();
            }
            None => continue,
        }
        let mut full = base;
        full.extend(rest.iter().cloned());
        let target = (1..=full.len())
            .rev()
            .map(|n| full[..n].join("::"))
            .find(|m| known.contains(m));
        if let Some(target) = target {
            if target != module && !target.is_empty() {
                out.insert(target);
            }
        }
    }
    out
}

/// The module cycles among the sources under `src`, each as a sorted list.
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let modules = modules(src);
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(m, code)| (m.clone(), edges(m, code, &known)))
        .collect();
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, r) in &reaches {
        if r.contains(*m) {
            let cycle: Vec<String> = r
                .iter()
                .filter(|o| reaches.get(o).is_some_and(|back| back.contains(*m)))
                .cloned()
                .collect();
            found.insert(cycle);
        }
    }
    found.into_iter().collect()
}

#[test]
fn no_import_cycle_among_modules() {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for name in ["engine", "cli", "bench"] {
        let src = crates.join(name).join("src");
        if !src.exists() {
            continue;
        }
        checked += 1;
        let found = cycles(&src);
        assert!(
            found.is_empty(),
            "import cycles in crates/{name}: {found:?}"
        );
    }
    assert!(checked >= 2, "no sources found under {}", crates.display());
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::c::thing;\n").unwrap();
    std::fs::write(src.join("b/mod.rs"), "mod c;\nuse c::X;\n").unwrap();
    std::fs::write(
        src.join("b/c.rs"),
        "use super::super::a::{one, two};\n/// [`crate::b`]\n#[cfg(test)]\nuse crate::z;\n",
    )
    .unwrap();
    let found = cycles(src);
    assert_eq!(found, vec![vec!["a".to_string(), "b::c".to_string()]]);
}
