//! The house's plan holds: no module of `app` or `server` uses another that uses it back
//! (directly or round a longer loop), so each stage reads forward to the next.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The crate's top-level modules (files and folders under `src`, but the crate root) and, for
/// each, the other top-level modules its code names as `crate::…`, tests left out.
fn uses(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let roots = ["lib.rs", "main.rs"];
    let module_of = |path: &Path| -> Option<String> {
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next()?.as_os_str().to_string_lossy().into_owned();
        (!roots.contains(&first.as_str())).then(|| first.trim_end_matches(".rs").to_owned())
    };
    let modules: BTreeSet<String> = sources(src).iter().filter_map(|p| module_of(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in sources(src) {
        let Some(module) = module_of(&file) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        // A file's own tests may reach anywhere.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let mut named = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::X, b, c::{…}}`: the first name of each entry.
                let group = &group[..group.find("};").or_else(|| group.find('}')).unwrap_or(group.len())];
                for entry in group.split(',') {
                    let name = entry.split("::").next().unwrap_or_default();
                    named.insert(name.trim_matches(|c: char| c == '{' || c == '}' || c.is_whitespace()).to_owned());
                }
            } else {
                named.insert(rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap().to_owned());
            }
        }
        let edges = graph.get_mut(&module).unwrap();
        edges.extend(named.into_iter().filter(|m| *m != module && modules.contains(m)));
    }
    graph
}

/// A loop in `graph`, if there is one: the modules round it.
fn a_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut round = path[start..].to_vec();
            round.push(module.to_owned());
            return Some(round);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in &graph[module] {
            if let Some(round) = visit(graph, next, path, done) {
                return Some(round);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|m| visit(graph, m, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for krate in ["app", "server"] {
        let graph = uses(&root.join(krate).join("src"));
        assert!(graph.len() > 5, "{krate}: the modules were found: {graph:?}");
        if let Some(round) = a_loop(&graph) {
            panic!("{krate}: modules use each other round a loop: {}\n{graph:#?}", round.join(" → "));
        }
    }
}

#[test]
fn the_loop_finder_finds_a_loop() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
            .into_iter()
            .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(a_loop(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
