//! Rust types, default values and version conditions for fields.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::model::{Default, Field, Type};
use crate::naming::type_ident;
use crate::versions::Versions;

/// The Rust type of a value of `ty` (never optional).
pub fn base_type(ty: &Type) -> TokenStream {
    match ty {
        Type::Bool => quote!(bool),
        Type::Int8 => quote!(i8),
        Type::Int16 => quote!(i16),
        Type::Uint16 => quote!(u16),
        Type::Int32 => quote!(i32),
        Type::Uint32 => quote!(u32),
        Type::Int64 => quote!(i64),
        Type::Float64 => quote!(f64),
        Type::String => quote!(ByteString),
        Type::Uuid => quote!(Uuid),
        Type::Bytes | Type::Records => quote!(Bytes),
        Type::Struct(name) => {
            let name = type_ident(name);
            quote!(#name)
        }
        Type::Array(element) => {
            let element = base_type(element);
            quote!(Vec<#element>)
        }
    }
}

/// The Rust type of a field: `Option<T>` when it is nullable in some version.
pub fn field_type(field: &Field) -> TokenStream {
    let base = base_type(&field.ty);
    if field.is_optional() {
        quote!(Option<#base>)
    } else {
        base
    }
}

/// The zero value of a type when no default is given.
fn implicit_default(ty: &Type) -> TokenStream {
    match ty {
        Type::Bool => quote!(false),
        Type::Float64 => quote!(0.0),
        Type::Int8 | Type::Int16 | Type::Uint16 | Type::Int32 | Type::Uint32 | Type::Int64 => {
            quote!(0)
        }
        Type::String => quote!(ByteString::new()),
        Type::Uuid => quote!(Uuid::nil()),
        Type::Bytes | Type::Records => quote!(Bytes::new()),
        Type::Struct(name) => {
            let name = type_ident(name);
            quote!(<#name as Default>::default())
        }
        Type::Array(element) => {
            let element = base_type(element);
            quote!(Vec::<#element>::new())
        }
    }
}

/// The default value of a field, as an expression of its Rust type.
pub fn default_value(field: &Field) -> TokenStream {
    let value = match &field.default {
        Default::Null => return quote!(None),
        Default::Implicit => implicit_default(&field.ty),
        Default::Bool(b) => quote!(#b),
        Default::Int(i) => int_literal(&field.ty, *i),
        Default::Float(f) => {
            let lit = Literal::f64_suffixed(*f);
            quote!(#lit)
        }
        Default::Str(s) => quote!(ByteString::from_static(#s)),
        Default::Uuid(bytes) => quote!(Uuid::from_bytes([#(#bytes),*])),
    };
    if field.is_optional() {
        quote!(Some(#value))
    } else {
        value
    }
}

fn int_literal(ty: &Type, value: i64) -> TokenStream {
    // The model has checked that the value fits the type.
    let lit = match ty {
        Type::Int8 => Literal::i8_suffixed(value as i8),
        Type::Int16 => Literal::i16_suffixed(value as i16),
        Type::Uint16 => Literal::u16_suffixed(value as u16),
        Type::Int32 => Literal::i32_suffixed(value as i32),
        Type::Uint32 => Literal::u32_suffixed(value as u32),
        _ => Literal::i64_suffixed(value),
    };
    quote!(#lit)
}

/// A condition on the local `version` that is true exactly for `range` within `valid`.
///
/// Returns `None` when the range covers every valid version (no check needed), and
/// `Some(false)` when it covers none, so that only the checks a field needs are emitted.
pub fn version_condition(range: Versions, valid: Versions) -> Option<TokenStream> {
    let range = range.intersect(valid);
    if range.is_empty() {
        return Some(quote!(false));
    }
    let low = range.lowest > valid.lowest;
    let high = range.highest < valid.highest;
    let (lo, hi) = (
        Literal::i16_unsuffixed(range.lowest),
        Literal::i16_unsuffixed(range.highest),
    );
    match (low, high) {
        (false, false) => None,
        (true, false) => Some(quote!(version >= #lo)),
        (false, true) => Some(quote!(version <= #hi)),
        (true, true) if range.lowest == range.highest => Some(quote!(version == #lo)),
        (true, true) => Some(quote!((#lo..=#hi).contains(&version))),
    }
}

/// `condition` as an expression (`true` when there is none).
pub fn condition_expr(condition: &Option<TokenStream>) -> TokenStream {
    condition.clone().unwrap_or_else(|| quote!(true))
}

/// Human-readable versions for docs.
pub fn describe_field(field: &Field) -> String {
    let mut parts = vec![format!("versions {}", field.versions)];
    if !field.nullable.is_empty() {
        parts.push(format!("nullable {}", field.nullable));
    }
    if let Some(tag) = field.tag {
        parts.push(format!("tagged {} (tag {tag})", field.tagged));
    }
    if field.ignorable {
        parts.push("ignorable".into());
    }
    if field.map_key {
        parts.push("map key".into());
    }
    parts.join("; ")
}
