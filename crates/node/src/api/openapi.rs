//! The OpenAPI 3 documents of both listeners, generated from the handlers' annotations
//! (utoipa): `public::PublicApi` and `control::control_openapi`, each served at its
//! listener's `/openapi.json`.
//!
//! The handlers document what they answer themselves; `doc_modifiers` then adds the
//! errors every operation of a kind shares and gives every error its real media type,
//! `application/problem+json`. `tests/schemathesis/run.sh` checks the documents against
//! what a running node answers.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use utoipa::OpenApi;

use super::control::control_openapi;
use super::public::PublicApi;

/// Both documents as the listeners serve them at `/openapi.json`, named by listener
/// (`tests/api_doc.rs` holds docs/API.md to them).
pub fn documents() -> [(&'static str, utoipa::openapi::OpenApi); 2] {
    [
        ("public", PublicApi::openapi()),
        ("control", control_openapi()),
    ]
}

/// The methods a route pattern answers (`Allow`), read from both documents; a route they
/// do not list (pages, assets, health, metrics) answers GET only.
pub fn allowed_methods(pattern: &str) -> String {
    static METHODS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    let methods = METHODS.get_or_init(|| {
        let mut methods = BTreeMap::new();
        for (_, document) in documents() {
            for (path, item) in document.paths.paths {
                let listed = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ];
                let allow: Vec<&str> = listed
                    .iter()
                    .filter(|(_, present)| *present)
                    .map(|(method, _)| *method)
                    .collect();
                methods.insert(path, allow.join(", "));
            }
        }
        methods
    });
    methods
        .get(pattern)
        .cloned()
        .unwrap_or_else(|| "GET".to_string())
}
