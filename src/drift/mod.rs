//! Spec drift: how an upstream API description differs from ours, for the schemas ours names.
//!
//! Each schema in our description is paired with the upstream schema of the same name, or
//! the one its `x-upstream` names (`CreateChatCompletionResponse.choices[].finish_reason`).
//! For each pair the report lists fields only upstream has (new upstream, or not typed by us:
//! they still pass through in `extra`), fields only we have (removed upstream, or our
//! extensions), fields whose JSON type differs, and enum values or union tags only one side
//! has. `switchyard spec drift` prints it; a snapshot of it against the upstream files makes
//! an upstream bump show up as a readable diff.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

mod botocore;
mod load;
mod shape;

pub use load::{load, parse};
use shape::{Shape, at_path, describe, shape};

/// The drift of one of our schemas.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SchemaDrift {
    /// Our schema's name.
    pub name: String,
    /// Where it is upstream.
    pub upstream: String,
    /// Whether the upstream location exists.
    pub found: bool,
    /// Fields only upstream has.
    pub upstream_only_fields: Vec<String>,
    /// Fields only we have.
    pub ours_only_fields: Vec<String>,
    /// Fields in both whose JSON types differ: (field, ours, upstream).
    pub type_changes: Vec<(String, String, String)>,
    /// Enum values only upstream has (new values).
    pub upstream_only_values: Vec<String>,
    /// Enum values only we have.
    pub ours_only_values: Vec<String>,
    /// Union tags only upstream has (new variants).
    pub upstream_only_tags: Vec<String>,
    /// Union tags only we have.
    pub ours_only_tags: Vec<String>,
}

impl SchemaDrift {
    /// Whether anything differs.
    pub fn is_clean(&self) -> bool {
        self.found
            && self.upstream_only_fields.is_empty()
            && self.ours_only_fields.is_empty()
            && self.type_changes.is_empty()
            && self.upstream_only_values.is_empty()
            && self.ours_only_values.is_empty()
            && self.upstream_only_tags.is_empty()
            && self.ours_only_tags.is_empty()
    }
}

/// The drift of a whole description.
#[derive(Debug, Serialize)]
pub struct DriftReport {
    /// Our description's file name.
    pub spec: String,
    /// The upstream file's name.
    pub upstream: String,
    /// The upstream's `openapi` version and `info.version`.
    pub upstream_version: String,
    /// One entry per schema of ours, in name order.
    pub schemas: Vec<SchemaDrift>,
}

/// One of our descriptions and the upstream description it is compared with.
#[derive(Clone, Copy, Debug)]
pub struct Upstream {
    /// The provider the upstream file describes.
    pub provider: &'static str,
    /// Our description, under the crate root.
    pub spec: &'static str,
    /// The upstream file's name in the folder of upstream descriptions (`../shared/specs`).
    pub upstream: &'static str,
    /// For a provider that speaks another's format (Mistral speaks OpenAI's): which of our
    /// schemas correspond to which upstream ones, under the crate root. Only those are
    /// compared.
    pub map: Option<&'static str>,
}

/// Every upstream description we keep a drift snapshot against
/// (`openapi/drift/<provider>.snap`): the `drift` of each native provider's descriptor.
pub fn upstreams() -> impl Iterator<Item = Upstream> {
    crate::catalog::NATIVE.iter().filter_map(|d| {
        let drift = d.drift?;
        Some(Upstream { provider: d.kind.id(), spec: drift.spec, upstream: drift.upstream, map: drift.map })
    })
}

/// Compares our description at `spec` with the upstream one at `upstream`.
pub fn drift(spec: &Path, upstream: &Path) -> Result<DriftReport> {
    drift_mapped(spec, upstream, None)
}

/// [`drift`] for the schemas a map file names (`OurSchema: UpstreamPath` lines), only.
pub fn drift_mapped(spec: &Path, upstream: &Path, map: Option<&Path>) -> Result<DriftReport> {
    let ours = load(spec)?;
    let theirs = load(upstream)?;
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let map = match map {
        Some(path) => {
            let value = load(path)?;
            let pairs = value
                .as_object()
                .ok_or_else(|| Error::Config(format!("{}: expected `OurSchema: UpstreamPath` lines", path.display())))?
                .iter()
                .map(|(k, v)| match v.as_str() {
                    Some(to) => Ok((k.clone(), to.to_string())),
                    None => Err(Error::Config(format!("{}: `{k}` must map to an upstream path", path.display()))),
                })
                .collect::<Result<std::collections::BTreeMap<_, _>>>()?;
            Some(pairs)
        }
        None => None,
    };
    let mut report = compare_with(&ours, &theirs, file_name(spec), file_name(upstream), map.as_ref())?;
    if let Some(map) = map {
        let unknown: Vec<&String> = map.keys().filter(|k| !report.schemas.iter().any(|s| &&s.name == k)).collect();
        if !unknown.is_empty() {
            return Err(Error::Config(format!(
                "the map names schemas {spec} does not have: {unknown:?}",
                spec = report.spec
            )));
        }
        report.spec = format!("{} (mapped)", report.spec);
    }
    Ok(report)
}

/// Compares two loaded descriptions.
pub fn compare(ours: &Value, theirs: &Value, spec: String, upstream: String) -> Result<DriftReport> {
    compare_with(ours, theirs, spec, upstream, None)
}

fn compare_with(
    ours: &Value,
    theirs: &Value,
    spec: String,
    upstream: String,
    map: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<DriftReport> {
    let schemas = ours
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Config(format!("{spec} has no components.schemas")))?;
    let version = |doc: &Value| {
        let text = |p: &str| doc.pointer(p).and_then(Value::as_str).unwrap_or("?").to_string();
        let format = text("/openapi");
        match format.strip_prefix("botocore ") {
            Some(protocol) => format!("botocore model, {protocol}, API version {}", text("/info/version")),
            None => format!("OpenAPI {format}, version {}", text("/info/version")),
        }
    };
    let mut report = DriftReport { spec, upstream, upstream_version: version(theirs), schemas: Vec::new() };
    for (name, schema) in schemas {
        let path = match map {
            Some(map) => match map.get(name) {
                Some(to) => to.as_str(),
                None => continue,
            },
            None => schema.get("x-upstream").and_then(Value::as_str).unwrap_or(name),
        };
        let mut entry = SchemaDrift { name: name.clone(), upstream: path.to_string(), ..SchemaDrift::default() };
        if let Some(upstream_schema) = at_path(theirs, path) {
            entry.found = true;
            let (mine, other) = (shape(ours, schema), shape(theirs, &upstream_schema));
            compare_shapes(ours, theirs, &mine, &other, &mut entry);
        }
        report.schemas.push(entry);
    }
    Ok(report)
}

fn compare_shapes(ours: &Value, theirs: &Value, mine: &Shape, other: &Shape, entry: &mut SchemaDrift) {
    if !mine.properties.is_empty() {
        let (a, b) = (keys(mine.properties.keys()), keys(other.properties.keys()));
        entry.upstream_only_fields = b.difference(&a).cloned().collect();
        entry.ours_only_fields = a.difference(&b).cloned().collect();
        for (field, schema) in &mine.properties {
            let Some(upstream_schema) = other.properties.get(field) else {
                continue;
            };
            let (t1, t2) = (shape(ours, schema).types, shape(theirs, upstream_schema).types);
            if !t1.is_empty() && !t2.is_empty() && t1 != t2 {
                entry.type_changes.push((field.clone(), describe(&t1), describe(&t2)));
            }
        }
    }
    if !mine.enum_values.is_empty() {
        entry.upstream_only_values = other.enum_values.difference(&mine.enum_values).cloned().collect();
        entry.ours_only_values = mine.enum_values.difference(&other.enum_values).cloned().collect();
    }
    if !mine.tags.is_empty() {
        entry.upstream_only_tags = other.tags.difference(&mine.tags).cloned().collect();
        entry.ours_only_tags = mine.tags.difference(&other.tags).cloned().collect();
    }
}

fn keys<'a>(it: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    it.cloned().collect()
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let missing = self.schemas.iter().filter(|s| !s.found).count();
        let drifted = self.schemas.iter().filter(|s| s.found && !s.is_clean()).count();
        writeln!(f, "Drift of {} against {} ({})", self.spec, self.upstream, self.upstream_version)?;
        writeln!(
            f,
            "{} schemas compared: {} match, {drifted} differ, {missing} not found upstream.",
            self.schemas.len(),
            self.schemas.len() - drifted - missing
        )?;
        for s in self.schemas.iter().filter(|s| !s.is_clean()) {
            let pairing = if s.upstream == s.name { String::new() } else { format!(" (upstream {})", s.upstream) };
            writeln!(f, "\n{}{pairing}", s.name)?;
            if !s.found {
                writeln!(f, "  not found upstream")?;
                continue;
            }
            list_line(f, "fields only upstream", &s.upstream_only_fields)?;
            list_line(f, "fields only ours", &s.ours_only_fields)?;
            for (field, mine, theirs) in &s.type_changes {
                writeln!(f, "  type of {field}: ours {mine}, upstream {theirs}")?;
            }
            list_line(f, "values only upstream", &s.upstream_only_values)?;
            list_line(f, "values only ours", &s.ours_only_values)?;
            list_line(f, "variants only upstream", &s.upstream_only_tags)?;
            list_line(f, "variants only ours", &s.ours_only_tags)?;
        }
        Ok(())
    }
}

fn list_line(f: &mut fmt::Formatter<'_>, label: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() { Ok(()) } else { writeln!(f, "  {label}: {}", items.join(", ")) }
}

/// One schema of a description as `switchyard spec list` shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SchemaSummary {
    /// The schema's name.
    pub name: String,
    /// Its JSON types (`object`, `string`, ...), without `null`.
    pub types: Vec<String>,
    /// Its fields (with `allOf` merged and references followed).
    pub fields: Vec<String>,
    /// Its enum values.
    pub values: Vec<String>,
    /// The tags of its union's variants.
    pub variants: Vec<String>,
    /// The upstream schema it is compared with, when it names one (`x-upstream`).
    pub upstream: Option<String>,
}

/// The schemas a description defines, in name order, with their fields, values and variants.
pub fn list(spec: &Path) -> Result<Vec<SchemaSummary>> {
    let doc = load(spec)?;
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Config(format!("{} has no components.schemas", spec.display())))?;
    let mut out: Vec<SchemaSummary> = schemas
        .iter()
        .map(|(name, schema)| {
            let s = shape(&doc, schema);
            SchemaSummary {
                name: name.clone(),
                types: s.types.into_iter().collect(),
                fields: s.properties.into_keys().collect(),
                values: s.enum_values.into_iter().collect(),
                variants: s.tags.into_iter().collect(),
                upstream: schema.get("x-upstream").and_then(Value::as_str).map(str::to_string),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// [`list`] as text: one line per schema.
pub fn list_text(spec: &Path, schemas: &[SchemaSummary]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{}: {} schemas\n", spec.display(), schemas.len());
    for s in schemas {
        let kind = if s.types.is_empty() { "any".to_string() } else { s.types.join("|") };
        let _ = write!(out, "  {} ({kind})", s.name);
        if let Some(upstream) = &s.upstream {
            let _ = write!(out, " [upstream {upstream}]");
        }
        for (label, items) in [("fields", &s.fields), ("values", &s.values), ("variants", &s.variants)] {
            if !items.is_empty() {
                let _ = write!(out, "\n      {label}: {}", items.join(", "));
            }
        }
        out.push('\n');
    }
    out
}
