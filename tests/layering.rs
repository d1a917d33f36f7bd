//! The module map of DESIGN.md / STYLE.md §2, checked: each module may
//! import only the crate modules its row allows, so the layering cannot
//! erode one convenient `use` at a time.

use std::fs;
use std::path::{Path, PathBuf};

/// (module, the crate modules it may use besides itself). A module is
/// named by its path under `src/`; the longest matching row applies.
const RULES: &[(&str, &[&str])] = &[
    ("template", &[]),
    ("config", &["template"]),
    ("core", &["template"]),
    // The store persists templates as their printed text and reads them back.
    ("store", &["core", "template"]),
    ("drivers", &["core", "template"]),
    ("auth", &["core"]),
    ("api/common", &["core"]),
    ("api/occi", &["api/common", "core", "auth", "template"]),
    ("api/ec2", &["api/common", "core", "auth", "template"]),
    ("api/native", &["api/common", "core", "auth", "template"]),
    ("api", &["api", "core", "auth", "config"]),
    ("cli", &["*"]),
    ("main.rs", &["*"]),
    ("lib.rs", &["*"]),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn rule_for(module: &str) -> (&'static str, &'static [&'static str]) {
    RULES
        .iter()
        .filter(|(name, _)| module == *name || module.starts_with(&format!("{name}/")))
        .max_by_key(|(name, _)| name.len())
        .copied()
        .unwrap_or_else(|| panic!("src/{module} has no row in the layering table"))
}

/// The crate modules a file's code refers to, as `crate::a::b` → "a/b"
/// and "a". Comment lines are skipped: docs may name any module.
fn references(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        if let Some(first) = parts.first() {
            // `crate::api::common::x` is the module api/common.
            if *first == "api"
                && parts.len() > 1
                && ["common", "occi", "ec2", "native"].contains(&parts[1])
            {
                found.push(format!("api/{}", parts[1]));
            } else {
                found.push(first.to_string());
            }
        }
    }
    found
}

#[test]
fn modules_import_only_what_the_map_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut violations = Vec::new();
    for file in all {
        let module = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace(".rs", "");
        let module = module.strip_suffix("/mod").unwrap_or(&module).to_string();
        let (row, allowed) = rule_for(if module == "main" || module == "lib" {
            "main.rs"
        } else {
            &module
        });
        if allowed.contains(&"*") {
            continue;
        }
        let text = fs::read_to_string(&file).expect("read");
        for used in references(&text) {
            let own = used == row || used.starts_with(&format!("{row}/"));
            let ok = own
                || allowed
                    .iter()
                    .any(|a| used == *a || used.starts_with(&format!("{a}/")));
            if !ok {
                violations.push(format!(
                    "src/{module}.rs uses crate::{used} (row {row} allows {allowed:?})"
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_a_violation() {
    assert_eq!(references("use crate::store::SqliteStore;"), vec!["store"]);
    assert_eq!(references("crate::api::occi::x()"), vec!["api/occi"]);
    assert!(references("//! filled from `crate::config::Config`").is_empty());
    assert_eq!(rule_for("core/vm/state").0, "core");
    assert_eq!(rule_for("api/native/users").0, "api/native");
}
