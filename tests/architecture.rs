//! The shape of the code (docs/DESIGN.md, Crates and modules).
//!
//! - The kernel is pure: `gavel-kernel`'s normal dependencies hold no async runtime, actor
//!   system, HTTP stack, Raft or storage engine (`cargo tree`).
//! - The node's modules form layers (`LAYERS`, bottom first): a module of
//!   `crates/node/src` uses only modules of its own layer or below, test code included.
//! - No two sibling modules of `crates/node/src` or `src/cli` use each other (outside
//!   their tests), except the pairs of `CYCLES_ALLOWED`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The node crate's top modules, bottom layer first. A module may use its own layer and
/// those before it; `gavel_kernel` is below them all.
const LAYERS: [&str; 15] = [
    "clock",
    "disk",
    "host",
    "private_files",
    "tls",
    "receipts",
    "config",
    "telemetry",
    "model",
    "exchange",
    "replication",
    "peer",
    "actors",
    "api",
    "node",
];

/// Uses of a higher layer that are known and accepted: (file under crates/node/src,
/// module used). None today.
const UPWARD_ALLOWED: [(&str, &str); 0] = [];

/// Sibling modules that use each other, known and accepted. None today: the actors
/// reach the Supervisor through `actors::messages`.
const CYCLES_ALLOWED: [(&str, &str); 0] = [];

/// Crates the kernel must not depend on, by name or name prefix: runtimes, actors, HTTP,
/// TLS, Raft, storage.
const NOT_IN_KERNEL: [&str; 22] = [
    "tokio",
    "actix",
    "async-std",
    "async-io",
    "smol",
    "mio",
    "futures",
    "hyper",
    "h2",
    "reqwest",
    "ureq",
    "axum",
    "tower",
    "rustls",
    "openraft",
    "sled",
    "rocksdb",
    "redb",
    "rusqlite",
    "sqlx",
    "prometheus",
    "utoipa",
];

fn forbidden_in_kernel(name: &str) -> bool {
    NOT_IN_KERNEL
        .iter()
        .any(|bad| name == *bad || name.starts_with(&format!("{bad}-")))
}

#[test]
fn the_kernel_depends_on_no_runtime_network_or_storage_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(ROOT)
        .args([
            "tree",
            "--offline",
            "-p",
            "gavel-kernel",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .expect("cargo tree runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let crates: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // The listing is the kernel's: it names the kernel and what it does use.
    assert!(crates.contains("gavel-kernel"), "{text}");
    assert!(crates.contains("serde"), "{text}");
    let bad: Vec<&&str> = crates
        .iter()
        .filter(|name| forbidden_in_kernel(name))
        .collect();
    assert!(bad.is_empty(), "gavel-kernel depends on {bad:?}:\n{text}");
}

#[test]
fn the_forbidden_names_catch_what_they_should() {
    for name in [
        "tokio",
        "tokio-util",
        "actix-web",
        "sled",
        "openraft",
        "futures-util",
    ] {
        assert!(forbidden_in_kernel(name), "{name}");
    }
    for name in ["serde", "sha2", "imbl", "thiserror", "miow-not", "hex"] {
        assert!(!forbidden_in_kernel(name), "{name}");
    }
}

/// One source file of a crate.
struct SourceFile {
    path: PathBuf,
    /// The module the file is, from the crate root: `["api", "control"]`.
    module: Vec<String>,
    text: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every .rs file under `crate_root`, with its module path (`a/mod.rs` is `a`; the
/// crate's root file, `lib.rs` or `main.rs`, is the empty path).
fn source_files(crate_root: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    rust_files(crate_root, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(crate_root).expect("under the root");
            let mut module: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            let last = module.last().cloned().unwrap_or_default();
            if last == "mod" || (module.len() == 1 && (last == "lib" || last == "main")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            SourceFile { path, module, text }
        })
        .collect()
}

/// Whether the file is a directory's `mod.rs` or the crate's root (its child modules'
/// files are then in its own directory).
fn owns_directory(file: &SourceFile) -> bool {
    let name = file.path.file_name().unwrap_or_default();
    name == "mod.rs" || name == "lib.rs" || name == "main.rs"
}

/// One use of a module path: the line, and the absolute path it names (segments).
struct Reference {
    line: usize,
    path: Vec<String>,
}

fn identifier(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// The paths of `prefix::rest`, where `rest` follows a `::`: `a::b::C` or a group
/// `{a::B, c::{D, E}}`. Only names are kept; `self`, `*` and `as` end a path.
fn expand(prefix: &[String], rest: &str, out: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0usize;
        let mut start = 0usize;
        for (index, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(prefix, &group[start..index], out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(prefix, &group[start..index], out);
                    start = index + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let (name, after) = identifier(rest);
    if name.is_empty() || name == "self" {
        if !prefix.is_empty() {
            out.push(prefix.to_vec());
        }
        return;
    }
    let mut path = prefix.to_vec();
    path.push(name.to_string());
    match after.trim_start().strip_prefix("::") {
        Some(more) => expand(&path, more, out),
        None => out.push(path),
    }
}

/// Lines that are code: comments, doc comments and strings of whole lines left out.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(index, line)| {
            // A trailing comment; "//" inside a string (a URL) is left alone.
            let code = match line.find(" // ") {
                Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
                _ => line,
            };
            (index + 1, code.to_string())
        })
        .collect()
}

/// The module paths `file` uses through `crate::` and `super::`, resolved from the crate
/// root. A `use` spread over several lines is read as one; its line is the first.
fn references(file: &SourceFile) -> Vec<Reference> {
    let lines = code_lines(&file.text);
    let joined: String = lines.iter().map(|(_, line)| format!("{line}\n")).collect();
    let mut starts = Vec::with_capacity(lines.len());
    let mut offset = 0;
    for (number, line) in &lines {
        starts.push((offset, *number));
        offset += line.len() + 1;
    }
    let line_of = |at: usize| {
        let index = starts.partition_point(|(start, _)| *start <= at);
        starts[index.saturating_sub(1)].1
    };
    // The module `super` names, from this file (a mod.rs is its directory's module).
    let parent: Vec<String> = file.module[..file.module.len().saturating_sub(1)].to_vec();
    let mut found = Vec::new();
    let bytes = joined.as_bytes();
    for keyword in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(position) = joined[from..].find(keyword) {
            let at = from + position;
            from = at + keyword.len();
            let preceded_by_name = at > 0 && {
                let before = bytes[at - 1] as char;
                before.is_alphanumeric() || before == '_' || before == ':'
            };
            if preceded_by_name {
                continue;
            }
            let (base, mut rest) = if keyword == "crate::" {
                (Vec::new(), &joined[from..])
            } else {
                let mut base = parent.clone();
                let mut rest = &joined[from..];
                while let Some(more) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = more;
                }
                (base, rest)
            };
            rest = &rest[..rest.find(';').unwrap_or(rest.len())];
            let mut paths = Vec::new();
            expand(&base, rest, &mut paths);
            for path in paths {
                found.push(Reference {
                    line: line_of(at),
                    path,
                });
            }
        }
    }
    found.sort_by_key(|reference| reference.line);
    found
}

#[test]
fn the_reference_reader_resolves_paths_and_groups() {
    let file = SourceFile {
        path: PathBuf::from("api/control.rs"),
        module: vec!["api".to_string(), "control".to_string()],
        text: [
            "//! Uses `crate::node` in prose only.",
            "use super::auth::Operator;",
            "use crate::{",
            "    model::error::ApiError,",
            "    actors::supervisor::{Propose, Supervisor},",
            "};",
            "fn f() { let url = \"http://x\"; crate::replication::open(); } // crate::node",
            "fn g() { super::super::tls::load(); }",
        ]
        .join("\n"),
    };
    let seen: Vec<(usize, String)> = references(&file)
        .into_iter()
        .map(|reference| (reference.line, reference.path.join("::")))
        .collect();
    let expected: Vec<(usize, String)> = [
        (2, "api::auth::Operator"),
        (3, "model::error::ApiError"),
        (3, "actors::supervisor::Propose"),
        (3, "actors::supervisor::Supervisor"),
        (7, "replication::open"),
        (8, "tls::load"),
    ]
    .into_iter()
    .map(|(line, path)| (line, path.to_string()))
    .collect();
    assert_eq!(seen, expected);
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|name| *name == module)
}

#[test]
fn no_module_of_the_node_uses_a_layer_above_its_own() {
    let root = Path::new(ROOT).join("crates/node/src");
    let mut offences = Vec::new();
    let mut checked = 0;
    for file in source_files(&root) {
        let Some(top) = file.module.first() else {
            continue; // lib.rs declares the modules.
        };
        let relative = file.path.strip_prefix(&root).expect("under the root");
        let relative = relative.to_string_lossy().replace('\\', "/");
        let own = layer(top).unwrap_or_else(|| {
            panic!("{relative}: module `{top}` is not in LAYERS; give it its layer")
        });
        let lines: Vec<&str> = file.text.lines().collect();
        for reference in references(&file) {
            checked += 1;
            let used = &reference.path[0];
            let Some(used_layer) = layer(used) else {
                continue; // Not a top module: a macro path or the like.
            };
            let allowed = UPWARD_ALLOWED
                .iter()
                .any(|(path, module)| *path == relative && module == used);
            if used_layer > own && !allowed {
                offences.push(format!(
                    "crates/node/src/{relative}:{}: `{top}` uses `{used}`, a layer above it: {}",
                    reference.line,
                    lines[reference.line - 1].trim()
                ));
            }
        }
    }
    assert!(checked > 500, "only {checked} references read");
    assert!(offences.is_empty(), "\n{}", offences.join("\n"));
}

/// The files of a crate that are test code: modules declared after `#[cfg(test)]` as
/// `mod name;` (with or without `#[path]`), and every file under their directories.
fn test_only_files(files: &[SourceFile]) -> BTreeSet<PathBuf> {
    let mut roots = Vec::new();
    for file in files {
        let directory = file.path.parent().expect("a directory");
        let own_directory = if owns_directory(file) {
            directory.to_path_buf()
        } else {
            directory.join(file.path.file_stem().expect("a file name"))
        };
        let lines: Vec<&str> = file.text.lines().map(str::trim).collect();
        for (index, line) in lines.iter().enumerate() {
            if *line != "#[cfg(test)]" {
                continue;
            }
            let mut path_attribute = None;
            for next in &lines[index + 1..] {
                if let Some(path) = next
                    .strip_prefix("#[path = \"")
                    .and_then(|rest| rest.strip_suffix("\")]"))
                {
                    path_attribute = Some(path.to_string());
                    continue;
                }
                if next.starts_with("#[") {
                    continue;
                }
                let declaration = next.strip_prefix("pub ").unwrap_or(next);
                if let Some(name) = declaration
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'))
                {
                    match &path_attribute {
                        Some(path) => roots.push(directory.join(path)),
                        None => {
                            roots.push(own_directory.join(format!("{name}.rs")));
                            roots.push(own_directory.join(name));
                        }
                    }
                }
                break;
            }
        }
    }
    files
        .iter()
        .filter(|file| roots.iter().any(|root| file.path.starts_with(root)))
        .map(|file| file.path.clone())
        .collect()
}

/// `text` without its `#[cfg(test)] mod name { … }` blocks (their lines left empty, so
/// line numbers hold).
fn without_test_blocks(text: &str) -> String {
    let mut out = Vec::new();
    let mut pending = false;
    let mut skipping_from: Option<i64> = None;
    let mut depth: i64 = 0;
    for line in text.lines() {
        let trimmed = line.trim();
        let opens = line.matches('{').count() as i64;
        let closes = line.matches('}').count() as i64;
        if skipping_from.is_none() && pending && trimmed.contains("mod ") && trimmed.ends_with('{')
        {
            skipping_from = Some(depth);
        }
        if !trimmed.starts_with("#[") {
            pending = false;
        }
        if trimmed == "#[cfg(test)]" {
            pending = true;
        }
        depth += opens - closes;
        if let Some(level) = skipping_from {
            out.push(String::new());
            if depth <= level {
                skipping_from = None;
            }
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n")
}

/// Pairs of sibling modules of the crate at `crate_root` that use each other, outside
/// test code, as "a <-> b" with a line of each.
fn sibling_cycles(crate_root: &Path) -> Vec<String> {
    let mut files = source_files(crate_root);
    let tests = test_only_files(&files);
    files.retain(|file| !tests.contains(&file.path));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|file| file.module.clone()).collect();
    let mut uses: BTreeMap<(Vec<String>, Vec<String>), String> = BTreeMap::new();
    for file in &files {
        let code = SourceFile {
            path: file.path.clone(),
            module: file.module.clone(),
            text: without_test_blocks(&file.text),
        };
        for reference in references(&code) {
            // The deepest module the path names.
            let target = (1..=reference.path.len())
                .rev()
                .map(|length| reference.path[..length].to_vec())
                .find(|candidate| modules.contains(candidate));
            let Some(target) = target else { continue };
            let related = target.starts_with(&file.module) || file.module.starts_with(&target);
            if !related {
                let place = format!(
                    "{}:{}",
                    file.path.strip_prefix(ROOT).unwrap_or(&file.path).display(),
                    reference.line
                );
                uses.entry((file.module.clone(), target)).or_insert(place);
            }
        }
    }
    let mut cycles = Vec::new();
    for ((from, to), place) in &uses {
        if from < to {
            if let Some(back) = uses.get(&(to.clone(), from.clone())) {
                let (a, b) = (from.join("::"), to.join("::"));
                if !CYCLES_ALLOWED.contains(&(a.as_str(), b.as_str())) {
                    cycles.push(format!("{a} <-> {b} ({place}, {back})"));
                }
            }
        }
    }
    cycles
}

#[test]
fn no_two_sibling_modules_use_each_other() {
    let mut cycles = sibling_cycles(&Path::new(ROOT).join("crates/node/src"));
    cycles.extend(sibling_cycles(&Path::new(ROOT).join("src")));
    assert!(cycles.is_empty(), "\n{}", cycles.join("\n"));
}

#[test]
fn test_blocks_are_left_out_of_the_cycle_check() {
    let text = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n    fn f() { }\n}\nuse crate::c;";
    let kept = without_test_blocks(text);
    assert_eq!(kept.lines().count(), 7);
    assert!(kept.contains("crate::a") && kept.contains("crate::c"));
    assert!(!kept.contains("crate::b"), "{kept}");
}

/// Longest a function of the product crates may be, from its `fn` line to its closing
/// brace: one that grows past it is split into steps with names.
const MAX_FUNCTION_LINES: usize = 80;

/// Functions of the product crates' non-test code longer than `MAX_FUNCTION_LINES`, as
/// "file:line name (N lines)". Reads rustfmt's layout: a body ends at the first line
/// that is its `fn` line's indentation followed by `}`.
fn long_functions(crate_root: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    rust_files(crate_root, &mut paths);
    let mut long = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name == "tests.rs"
            || name.ends_with("_tests.rs")
            || path.components().any(|part| part.as_os_str() == "tests")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        let lines: Vec<String> = without_test_blocks(&text)
            .lines()
            .map(str::to_string)
            .collect();
        for (index, line) in lines.iter().enumerate() {
            let Some(function) = function_name(line) else {
                continue;
            };
            let indent = line.len() - line.trim_start().len();
            let closing = format!("{}}}", " ".repeat(indent));
            // A declaration without a body (a trait's) ends in `;` before any `{`.
            let body_opens = lines[index..]
                .iter()
                .position(|line| line.trim_end().ends_with('{') || line.trim_end().ends_with(';'))
                .is_some_and(|at| lines[index + at].trim_end().ends_with('{'));
            if !body_opens || line.trim_end().ends_with('}') {
                continue;
            }
            let Some(length) = lines[index + 1..].iter().position(|line| *line == closing) else {
                continue;
            };
            let length = length + 2;
            if length > MAX_FUNCTION_LINES {
                long.push(format!(
                    "{}:{} {function} ({length} lines)",
                    path.strip_prefix(ROOT).unwrap_or(&path).display(),
                    index + 1
                ));
            }
        }
    }
    long
}

/// The name of the function a line declares, if it does.
fn function_name(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") {
        return None;
    }
    let mut words = trimmed.split_whitespace();
    loop {
        let word = words.next()?;
        if word == "fn" {
            let name = words.next()?;
            return Some(name.split(['(', '<']).next().unwrap_or(name));
        }
        let qualifier = word.starts_with("pub")
            || matches!(word, "async" | "const" | "unsafe" | "extern" | "\"C\"");
        if !qualifier {
            return None;
        }
    }
}

#[test]
fn the_function_reader_finds_declarations_and_measures_bodies() {
    assert_eq!(
        function_name("    pub(crate) async fn serve(config: Config) {"),
        Some("serve")
    );
    assert_eq!(
        function_name("fn apply<E>(state: &mut State)"),
        Some("apply")
    );
    assert_eq!(function_name("    // fn commented_out() {"), None);
    assert_eq!(function_name("    let f = |x| x;"), None);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let body: String = (0..MAX_FUNCTION_LINES)
        .map(|n| format!("    let _a{n} = {n};\n"))
        .collect();
    let short: String = (0..MAX_FUNCTION_LINES - 2)
        .map(|n| format!("    let _b{n} = {n};\n"))
        .collect();
    std::fs::write(
        dir.path().join("lib.rs"),
        format!("fn long() {{\n{body}}}\n\nfn short() {{\n{short}}}\n\n#[cfg(test)]\nmod tests {{\n    fn long_test() {{\n{body}    }}\n}}\n"),
    )
    .expect("write a source file");
    let found = long_functions(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(&format!("long ({} lines)", MAX_FUNCTION_LINES + 2)),
        "{found:?}"
    );
}

#[test]
fn no_function_of_the_product_crates_is_longer_than_80_lines() {
    let mut long = Vec::new();
    for crate_root in ["crates/kernel/src", "crates/node/src", "src"] {
        long.extend(long_functions(&Path::new(ROOT).join(crate_root)));
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them into named steps):\n  {}",
        long.join("\n  ")
    );
}
