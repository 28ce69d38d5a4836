//! docs/API.md against the OpenAPI documents the listeners serve.
//!
//! Every operation of the public and the control document (`gavel::api::openapi::documents`)
//! must appear in docs/API.md as ``METHOD `path` ``, the path written exactly as the
//! document writes it, so a route added to a handler without its line in docs/API.md
//! fails here. The other way round, every route docs/API.md lists under `/api/v1/` or
//! `/control/v1/` must be an operation of the documents, so a route renamed or removed
//! in the code does not stay documented. The fault injection routes are left out of that
//! second check: they are in the control document only in builds with the `faults`
//! feature. And every schema the documents refer to (`$ref`) is in them.

use std::collections::BTreeSet;

/// Where docs/API.md is, whichever directory the test runs in.
const API_DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md");

/// The methods an OpenAPI path item can hold, as docs/API.md writes them.
const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
];

/// Routes present only in builds with the `faults` feature.
const FAULTS_PREFIX: &str = "/control/v1/faults/";

fn api_doc() -> String {
    std::fs::read_to_string(API_DOC_PATH)
        .unwrap_or_else(|error| panic!("cannot read {API_DOC_PATH}: {error}"))
}

/// Every operation of both documents: (listener, method, path).
fn documented_operations() -> Vec<(&'static str, &'static str, String)> {
    let mut operations = Vec::new();
    for (listener, document) in gavel::api::openapi::documents() {
        let before = operations.len();
        for (path, item) in document.paths.paths.iter() {
            let held = [
                item.get.is_some(),
                item.put.is_some(),
                item.post.is_some(),
                item.delete.is_some(),
                item.patch.is_some(),
                item.head.is_some(),
                item.options.is_some(),
                item.trace.is_some(),
            ];
            for (method, held) in METHODS.into_iter().zip(held) {
                if held {
                    operations.push((listener, method, path.clone()));
                }
            }
        }
        assert!(
            operations.len() > before,
            "the {listener} OpenAPI document lists no operation: nothing to hold docs/API.md to"
        );
    }
    operations
}

/// Every ``METHOD `path` `` that `text` writes, as (method, path).
fn routes_written_in(text: &str) -> BTreeSet<(&'static str, String)> {
    let mut routes = BTreeSet::new();
    for method in METHODS {
        let opening = format!("{method} `");
        for (at, _) in text.match_indices(&opening) {
            let word_starts_here = text[..at]
                .chars()
                .next_back()
                .is_none_or(|before| !before.is_alphanumeric() && before != '_');
            if !word_starts_here {
                continue;
            }
            let rest = &text[at + opening.len()..];
            if let Some(end) = rest.find('`') {
                routes.insert((method, rest[..end].to_string()));
            }
        }
    }
    routes
}

#[test]
fn every_route_of_the_served_openapi_documents_is_in_docs_api_md() {
    let doc = api_doc();
    let written = routes_written_in(&doc);
    let mut missing = Vec::new();
    for (listener, method, path) in documented_operations() {
        if !doc.contains(&format!("`{path}`")) {
            missing.push(format!(
                "{listener}: the path `{path}` does not appear verbatim"
            ));
        } else if !written.contains(&(method, path.clone())) {
            missing.push(format!(
                "{listener}: the path `{path}` appears, but not as {method} `{path}`"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/API.md lacks routes the listeners serve:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_api_route_docs_api_md_lists_is_served() {
    let doc = api_doc();
    let served: BTreeSet<(&'static str, String)> = documented_operations()
        .into_iter()
        .map(|(_, method, path)| (method, path))
        .collect();
    let listed: Vec<(&'static str, String)> = routes_written_in(&doc)
        .into_iter()
        .filter(|(_, path)| path.starts_with("/api/v1/") || path.starts_with("/control/v1/"))
        .collect();
    assert!(
        !listed.is_empty(),
        "docs/API.md lists no route under /api/v1/ or /control/v1/"
    );
    let stale: Vec<String> = listed
        .into_iter()
        .filter(|(_, path)| !path.starts_with(FAULTS_PREFIX))
        .filter(|route| !served.contains(route))
        .map(|(method, path)| format!("{method} `{path}`"))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/API.md lists routes no OpenAPI document has:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn routes_are_read_from_the_text_as_written() {
    let text = "| GET `/api/v1/time` | x |\nPOST `/a/{id}` and FORGET `/b` or XPOST `/c`\n";
    let routes = routes_written_in(text);
    assert_eq!(
        routes,
        BTreeSet::from([
            ("GET", "/api/v1/time".to_string()),
            ("POST", "/a/{id}".to_string()),
        ])
    );
}

/// Every `$ref` of `value` (a JSON document), collected into `refs`.
fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", serde_json::Value::String(target)) => refs.push(target.clone()),
                    _ => collect_refs(item, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[test]
fn every_schema_the_documents_refer_to_is_in_them() {
    for (listener, document) in gavel::api::openapi::documents() {
        let document = serde_json::to_value(&document).expect("the document as JSON");
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty(), "{listener}: no $ref at all");
        for target in refs {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{listener}: a $ref outside the schemas: {target}"));
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{listener}: {target} is referred to but not in the document"
            );
        }
    }
    let public = serde_json::to_value(gavel::api::openapi::documents()[0].1.clone()).unwrap();
    let receipt = &public["components"]["schemas"]["BidReceipt"]["properties"];
    assert!(receipt.get("receipt_batch").is_some(), "{receipt}");
}
