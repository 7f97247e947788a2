//! Open enums: the known values of a named string enum as variants, plus `Other(String)` for
//! any value this version does not know. Upstreams add values (finish reasons, effort levels)
//! faster than clients update, and an unknown value must never fail a response.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::dialect::OpenEnum;

pub fn generate(enums: &[OpenEnum]) -> Result<TokenStream, String> {
    enums.iter().map(one).collect()
}

fn one(e: &OpenEnum) -> Result<TokenStream, String> {
    let name = Ident::new(&e.name, Span::call_site());
    let doc = e.description.clone().unwrap_or_else(|| format!("`{}` values.", e.name));
    let variants: Vec<Ident> = e
        .values
        .iter()
        .map(|v| match e.variant_names.get(v) {
            Some(given) => Ident::new(given, Span::call_site()),
            None => variant_ident(v),
        })
        .collect();
    if let Some(clash) = variants.iter().find(|v| *v == "Other") {
        return Err(format!(
            "{}: the value named `{clash}` collides with the catch-all `Other(String)`; name it with x-rust-variants",
            e.name
        ));
    }
    let values = &e.values;
    let docs: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    Ok(quote! {
        #[doc = #doc]
        ///
        /// An open enum: a value this version does not know is kept in `Other`.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum #name {
            #( #[doc = #docs] #variants, )*
            /// A value not known to this version, kept as it came.
            Other(::std::string::String),
        }

        impl #name {
            /// The known values, in the order the description lists them.
            pub const KNOWN: &'static [#name] = &[ #( #name::#variants, )* ];

            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    #( Self::#variants => #values, )*
                    Self::Other(value) => value.as_str(),
                }
            }

            /// Whether this is one of the known values.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl ::std::convert::From<&str> for #name {
            fn from(value: &str) -> Self {
                match value {
                    #( #values => Self::#variants, )*
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl ::std::convert::From<::std::string::String> for #name {
            fn from(value: ::std::string::String) -> Self {
                match value.as_str() {
                    #( #values => Self::#variants, )*
                    _ => Self::Other(value),
                }
            }
        }

        impl ::std::str::FromStr for #name {
            type Err = ::std::convert::Infallible;
            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::std::fmt::Display for #name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                struct Visitor;
                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = #name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: ::serde::de::Error>(self, value: &str) -> ::std::result::Result<#name, E> {
                        Ok(#name::from(value))
                    }
                    fn visit_string<E: ::serde::de::Error>(self, value: ::std::string::String) -> ::std::result::Result<#name, E> {
                        Ok(#name::from(value))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    })
}

fn variant_ident(value: &str) -> Ident {
    let mut name = String::new();
    for word in value.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            // `MAX_TOKENS` -> `MaxTokens`; `inputAudio` keeps its inner capitals.
            if word.chars().all(|c| !c.is_ascii_lowercase()) {
                name.push_str(&chars.as_str().to_ascii_lowercase());
            } else {
                name.push_str(chars.as_str());
            }
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert(0, 'V');
    }
    Ident::new(&name, Span::call_site())
}
