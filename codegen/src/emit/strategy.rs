//! Property-test strategies (behind the `proptest` feature of the generated crate): random
//! values that are valid for a given version, so every version can be round-tripped.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::field_member;
use super::types::{default_value, version_condition};
use crate::model::{Field, Message, Struct, Type};
use crate::naming::{snake, type_ident};

/// Largest tuple for which proptest implements `Strategy`.
const TUPLE_LIMIT: usize = 10;

/// Emits `VersionedStrategy` impls for every struct of `message`.
pub fn emit(message: &Message) -> TokenStream {
    let impls = message.structs.iter().map(|s| emit_struct(message, s));
    quote! {
        #[cfg(feature = "proptest")]
        const _: () = { #(#impls)* };
    }
}

fn emit_struct(message: &Message, strukt: &Struct) -> TokenStream {
    let name = type_ident(&strukt.name);
    let mut lets = Vec::new();
    let mut items = Vec::new();
    let mut inits = Vec::new();
    for field in &strukt.fields {
        let local = format_ident!("f_{}", snake(&field.name));
        let member = field_member(field);
        let strategy = field_strategy(message, field);
        lets.push(quote!(let #local = #strategy;));
        items.push((quote!(#local), quote!(#local)));
        inits.push(quote!(#member: #local));
    }
    if message.has_flexible() {
        let flexible = version_condition(message.flexible, message.valid).unwrap_or(quote!(true));
        let first_free = strukt
            .fields
            .iter()
            .filter_map(|f| f.tag)
            .max()
            .map_or(0, |t| t + 1);
        lets.push(quote! {
            let unknown_tagged_fields = if #flexible {
                unknown_tags(#first_free)
            } else {
                Just(Vec::new()).boxed()
            };
        });
        items.push((quote!(unknown_tagged_fields), quote!(unknown_tagged_fields)));
        inits.push(quote!(unknown_tagged_fields));
    }
    let (pattern, tuple) = nest(items);
    quote! {
        impl VersionedStrategy for #name {
            fn strategy(version: i16) -> BoxedStrategy<Self> {
                use crate::arbitrary::prelude::*;
                let _ = version;
                #(#lets)*
                (#tuple).prop_map(move |#pattern| #name { #(#inits),* }).boxed()
            }
        }
    }
}

/// Groups (pattern, strategy) pairs into nested tuples no larger than proptest supports.
fn nest(items: Vec<(TokenStream, TokenStream)>) -> (TokenStream, TokenStream) {
    if items.is_empty() {
        return (quote!(()), quote!(Just(())));
    }
    if items.len() <= TUPLE_LIMIT {
        let (patterns, strategies): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        // A one-element tuple needs its trailing comma.
        return (quote!((#(#patterns,)*)), quote!((#(#strategies,)*)));
    }
    let mut groups = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(TUPLE_LIMIT));
        groups.push(nest(rest));
        rest = tail;
    }
    nest(groups)
}

fn field_strategy(message: &Message, field: &Field) -> TokenStream {
    let value = value_strategy(&field.ty);
    let value = if field.is_optional() {
        match version_condition(field.nullable, field.versions) {
            None => quote!(nullable(#value)),
            Some(cond) => quote!(if #cond { nullable(#value) } else { some(#value) }),
        }
    } else {
        value
    };
    match version_condition(field.versions, message.valid) {
        None => value,
        Some(cond) => {
            let default = default_value(field);
            quote!(if #cond { #value } else { Just(#default).boxed() })
        }
    }
}

fn value_strategy(ty: &Type) -> TokenStream {
    match ty {
        Type::Bool => quote!(any::<bool>().boxed()),
        Type::Int8 => quote!(any::<i8>().boxed()),
        Type::Int16 => quote!(any::<i16>().boxed()),
        Type::Uint16 => quote!(any::<u16>().boxed()),
        Type::Int32 => quote!(any::<i32>().boxed()),
        Type::Uint32 => quote!(any::<u32>().boxed()),
        Type::Int64 => quote!(any::<i64>().boxed()),
        Type::Float64 => quote!(float64()),
        Type::String => quote!(string()),
        Type::Uuid => quote!(uuid()),
        Type::Bytes | Type::Records => quote!(bytes()),
        Type::Struct(name) => {
            let name = type_ident(name);
            quote!(<#name as VersionedStrategy>::strategy(version))
        }
        Type::Array(element) => {
            let element = value_strategy(element);
            quote!(array(#element))
        }
    }
}
