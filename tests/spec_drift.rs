//! `switchyard spec drift`: the comparison on small descriptions written for the test, and
//! the report against the real upstream OpenAI description kept as a snapshot.

use std::path::{Path, PathBuf};

use switchyard::drift::{SchemaDrift, drift, drift_mapped};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drift").join(name)
}

fn entry<'a>(schemas: &'a [SchemaDrift], name: &str) -> &'a SchemaDrift {
    schemas.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no entry for {name}"))
}

#[test]
fn reports_fields_types_enum_values_and_variants_across_openapi_versions() -> switchyard::Result<()> {
    let report = drift(&fixture("ours.yaml"), &fixture("upstream_31.yaml"))?;
    assert_eq!(report.upstream_version, "OpenAPI 3.1.0, version 9.9");

    // allOf merged, $ref followed; a 3.1 `anyOf [number, null]` equals a 3.0 nullable number.
    let request = entry(&report.schemas, "Request");
    assert_eq!(request.upstream_only_fields, ["brand_new"]);
    assert_eq!(request.ours_only_fields, ["ours_extension"]);
    assert_eq!(request.type_changes, [("seed".to_string(), "integer".to_string(), "string".to_string())]);

    // A nullable enum upstream, and a new value.
    let effort = entry(&report.schemas, "Effort");
    assert_eq!(effort.upstream_only_values, ["medium"]);
    assert!(effort.ours_only_values.is_empty());

    // x-upstream paths through properties and array items; YAML 1.2 keeps `OFF` a string.
    let finish = entry(&report.schemas, "Finish");
    assert!(finish.found);
    assert_eq!(finish.upstream_only_values, ["OFF"]);

    // Union variants compared by tag, `const` included.
    let format = entry(&report.schemas, "Format");
    assert_eq!(format.upstream_only_tags, ["json_schema"]);
    assert!(format.ours_only_tags.is_empty());

    let gone = entry(&report.schemas, "Gone");
    assert!(!gone.found);
    let text = report.to_string();
    assert!(text.contains("5 schemas compared: 0 match, 4 differ, 1 not found upstream."), "{text}");
    assert!(text.contains("Gone\n  not found upstream"), "{text}");
    Ok(())
}

#[test]
fn the_same_description_has_no_drift() -> switchyard::Result<()> {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openai.yaml");
    let report = drift(&ours, &ours)?;
    let drifted: Vec<_> = report.schemas.iter().filter(|s| !s.is_clean()).map(|s| s.name.as_str()).collect();
    // Schemas paired by x-upstream with a location of another name cannot find it in our own
    // file; every schema paired by name must match itself exactly.
    for name in &drifted {
        let s = entry(&report.schemas, name);
        assert_ne!(s.upstream, s.name, "{name} drifts from itself: {s:?}");
    }
    Ok(())
}

#[test]
fn reads_json_descriptions_and_reports_unreadable_files() {
    let dir = std::env::temp_dir().join(format!("switchyard-drift-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let json = dir.join("upstream.json");
    std::fs::write(&json, r#"{"openapi":"3.0.0","info":{"version":"1"},"components":{"schemas":{"Effort":{"type":"string","enum":["low","high","max"]}}}}"#).ok();
    let report = drift(&fixture("ours.yaml"), &json).map_err(|e| e.to_string());
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(entry(&report.schemas, "Effort").upstream_only_values, ["max"]);
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "a: [unclosed").ok();
    let err = drift(&fixture("ours.yaml"), &broken).map(|_| ()).map_err(|e| e.to_string());
    assert!(err.as_ref().is_err_and(|e| e.contains("broken.yaml")), "{err:?}");
}

/// The reports against the upstream descriptions in `../shared/specs` (set
/// `SWITCHYARD_UPSTREAM_SPECS` to that folder; `.ci/run` does), one snapshot per kept pair in
/// `openapi/drift/<provider>.snap`. Without the folder there is nothing to compare against,
/// and the test says so rather than failing a fresh clone.
#[test]
fn upstream_drift_matches_its_snapshots() -> switchyard::Result<()> {
    let Some(dir) = std::env::var_os("SWITCHYARD_UPSTREAM_SPECS") else {
        eprintln!("SWITCHYARD_UPSTREAM_SPECS is not set: the upstream drift snapshots were not checked");
        return Ok(());
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root.join("openapi/drift"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for pair in switchyard::drift::upstreams() {
        let report = drift_mapped(
            &root.join(pair.spec),
            &Path::new(&dir).join(pair.upstream),
            pair.map.map(|m| root.join(m)).as_deref(),
        )?;
        assert!(report.schemas.iter().any(|s| s.found), "{}: nothing paired at all", pair.provider);
        settings.bind(|| insta::assert_snapshot!(pair.provider, report.to_string()));
    }
    Ok(())
}

#[test]
fn a_botocore_model_is_compared_shape_by_shape() -> switchyard::Result<()> {
    let report = drift(&fixture("ours_bedrock.yaml"), &fixture("botocore.json"))?;
    assert_eq!(report.upstream_version, "botocore model, rest-json, API version 2023-09-30");
    let message = entry(&report.schemas, "Message");
    assert!(message.found);
    assert!(message.upstream_only_fields.is_empty() && message.ours_only_fields.is_empty(), "{message:?}");
    let block = entry(&report.schemas, "ContentBlock");
    assert_eq!(block.upstream_only_fields, ["video"]);
    let reason = entry(&report.schemas, "StopReason");
    assert_eq!(reason.upstream_only_values, ["guardrail_intervened"]);
    Ok(())
}

#[test]
fn a_map_compares_only_the_schemas_it_names() -> switchyard::Result<()> {
    let dir = std::env::temp_dir().join(format!("switchyard-drift-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let map = dir.join("map.yaml");
    std::fs::write(&map, "Effort: Level\n").ok();
    let upstream = dir.join("vendor.json");
    std::fs::write(&upstream, r#"{"openapi":"3.1.0","info":{"version":"2"},"components":{"schemas":{"Level":{"type":"string","enum":["low","high","max"]}}}}"#).ok();
    let report = drift_mapped(&fixture("ours.yaml"), &upstream, Some(&map))?;
    assert_eq!(report.schemas.len(), 1);
    assert_eq!(entry(&report.schemas, "Effort").upstream_only_values, ["max"]);
    std::fs::write(&map, "NoSuchSchema: Level\n").ok();
    let err = drift_mapped(&fixture("ours.yaml"), &upstream, Some(&map)).map(|_| ()).map_err(|e| e.to_string());
    assert!(err.is_err_and(|e| e.contains("NoSuchSchema")));
    Ok(())
}

#[test]
fn list_shows_the_schemas_and_fields_of_a_description() -> switchyard::Result<()> {
    let schemas = switchyard::drift::list(&fixture("ours.yaml"))?;
    let request = schemas.iter().find(|s| s.name == "Request").unwrap_or_else(|| panic!("Request"));
    assert!(request.fields.contains(&"seed".to_string()), "{request:?}");
    let effort = schemas.iter().find(|s| s.name == "Effort").unwrap_or_else(|| panic!("Effort"));
    assert_eq!(effort.values, ["high", "low"]);
    let text = switchyard::drift::list_text(&fixture("ours.yaml"), &schemas);
    assert!(text.contains("5 schemas"), "{text}");
    Ok(())
}
