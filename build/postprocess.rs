//! Adjusts typify's structs where typify's choices would lose or invent data on a round trip.
//!
//! - A required, nullable field: typify rejects a missing field (`deserialize_with`). Upstreams
//!   that omit, say, `logprobs` must still decode, so it becomes `#[serde(default)]`; it is
//!   still always written, as OpenAI writes it.
//! - An optional, nullable field: three states, so a `null` the upstream sent is sent back as
//!   `null` and an absent field stays absent (`crate::spec::ext::Nullable`).
//! - An optional array or map: typify uses an empty collection for "absent" and so drops an
//!   explicit `[]`; it becomes `Option<..>`.
//! - A struct whose every field is optional derives `Default`, so a union written the AWS way
//!   (an object with exactly one member set, e.g. Bedrock's content blocks) is built as
//!   `ContentBlock { text: Some(..), ..Default::default() }`.

use std::collections::BTreeMap;

use quote::quote;
use syn::{Attribute, Field, GenericArgument, Item, LitStr, PathArguments, Type, parse_quote};

use crate::dialect::FieldFix;

pub fn apply(file: &mut syn::File, fixes: &BTreeMap<(String, String), FieldFix>) {
    for item in &mut file.items {
        let Item::Struct(s) = item else { continue };
        let struct_name = s.ident.to_string();
        for field in s.fields.iter_mut() {
            let Some(json_name) = json_name(field) else {
                continue;
            };
            if let Some(fix) = fixes.get(&(struct_name.clone(), json_name.clone())) {
                fix_field(field, &json_name, *fix);
            }
        }
        if !s.fields.is_empty() && s.fields.iter().all(is_optional) {
            s.attrs.push(parse_quote!(#[derive(Default)]));
        }
    }
}

/// Whether a field may be absent: an `Option`, a `Nullable`, or the flattened `extra` map.
fn is_optional(field: &Field) -> bool {
    let Type::Path(path) = &field.ty else { return false };
    let Some(last) = path.path.segments.last() else { return false };
    last.ident == "Option"
        || last.ident == "Nullable"
        || field.ident.as_ref().is_some_and(|i| i == "extra") && last.ident == "Map"
}

fn fix_field(field: &mut Field, json_name: &str, fix: FieldFix) {
    let rename = field
        .ident
        .as_ref()
        .map(|i| i.to_string().trim_start_matches("r#").to_string())
        .filter(|ident| ident != json_name)
        .map(|_| quote!(rename = #json_name,));
    let ty = field.ty.clone();
    let (ty, attr): (Type, Attribute) = match fix {
        FieldFix::RequiredNullable => (ty, parse_quote!(#[serde(#rename default)])),
        FieldFix::TriState => {
            let inner = option_inner(&ty).unwrap_or(ty);
            (
                parse_quote!(crate::spec::ext::Nullable<#inner>),
                parse_quote!(#[serde(#rename default, skip_serializing_if = "crate::spec::ext::Nullable::is_absent")]),
            )
        }
        FieldFix::OptionalCollection => {
            let inner = option_inner(&ty).unwrap_or(ty);
            (
                parse_quote!(::std::option::Option<#inner>),
                parse_quote!(#[serde(#rename default, skip_serializing_if = "::std::option::Option::is_none")]),
            )
        }
    };
    field.attrs.retain(|a| !a.path().is_ident("serde"));
    field.attrs.push(attr);
    field.ty = ty;
}

/// The JSON name of a field: its serde rename, or its identifier.
fn json_name(field: &Field) -> Option<String> {
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let mut found = None;
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                found = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<proc_macro2::TokenStream>()?;
            }
            Ok(())
        });
        if found.is_some() {
            return found;
        }
    }
    field.ident.as_ref().map(|i| i.to_string().trim_start_matches("r#").to_string())
}

fn option_inner(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) => Some(inner.clone()),
        _ => None,
    }
}
